"""Weights & Biases tracking: the built-in tracker, registered through the same hook as a plugin's.

Picked with ``tracking: wandb`` (or ``tracking: {kind: wandb, project: ..., group: ...}``). One
W&B run per stage run, named ``<stage>-<tag>`` (``finetune-dapt-seed43``) and grouped by the
pipeline's run directory (a hash of its absolute path keeps two experiments named ``run`` apart).
What a run holds:

* config: the stage's resolved config (corpus, chunker, masker, budget ...), variant, seed,
  ``init_from``, and, once it finished, its data report (what was read, kept, deduplicated,
  excluded) and fingerprint;
* curves: every training event (loss, learning rate, grad norm, tokens/s, eval loss and
  perplexity);
* summary: the final metrics, eval and holdout alike, and ``<head>_collapsed_to`` (the one class
  a head predicted for everything, when that happened: also a ``collapsed`` event);
* with ``log_checkpoints: true``, the stage's output directory as a ``model`` artifact.

After the pipeline, an ``lineage`` run keeps ``lineage.json`` as an artifact; after an ablation,
an ``ablation`` run holds the table as a ``wandb.Table`` and the chart as an image. The
Trainer's own W&B integration stays off (``report_to="none"``): it would open a second run per
stage with the Trainer's arguments as config.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from sec_cybert.errors import OptionalDependencyError
from sec_cybert.host.collapse import collapsed_heads
from sec_cybert.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from sec_cybert.core.context import StageContext, StageResult

log = structlog.get_logger(__name__)


def _wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise OptionalDependencyError("the wandb tracker", extra="wandb", package="wandb") from None
    return wandb


def _numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


@attrs.define
class WandbTracker:
    """Records each stage run as a W&B run. ``group`` defaults to the run directory's name plus a
    short hash of its absolute path, so two experiments named ``run`` do not share a group."""

    project: str = "sec-cybert"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = attrs.field(factory=list)
    mode: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(("online", "offline", "disabled")))
    )
    #: Upload each finished stage's output directory (weights, tokenizer, card) as an artifact.
    log_checkpoints: bool = False
    _run: Any = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        _wandb()  # fail before training when the package is missing

    def _group(self, run_dir: Path) -> str:
        if self.group:
            return self.group
        digest = hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:6]
        return f"{Path(run_dir).name}-{digest}"

    def _init(self, run_dir: Path, name: str, job_type: str, config: Mapping[str, Any]) -> Any:
        run = _wandb().init(
            project=self.project,
            entity=self.entity,
            group=self._group(run_dir),
            name=name,
            job_type=job_type,
            tags=list(self.tags),
            config=dict(config),
            mode=self.mode,
            reinit="finish_previous",
            # W&B's banners and run summaries (about 7 lines a run) would break our log lines and
            # JSON; its console capture would rewrap our streams. Where the run is, we say below.
            settings={"silent": True, "console": "off"},
        )
        # A stand-in run (a plugin's test double, wandb's own disabled run) may not carry these.
        settings = getattr(run, "settings", None)
        mode = getattr(settings, "mode", self.mode)
        if mode == "offline":
            log.info("wandb run", run=name, mode=mode, sync=f"wandb sync {getattr(settings, 'sync_dir', '')}")
        elif mode != "disabled":
            log.info("wandb run", run=name, mode=mode, url=getattr(run, "url", None))
        return run

    def start_stage(self, context: StageContext, config: Mapping[str, Any]) -> None:
        self._run = self._init(
            context.run_dir,
            f"{context.stage_name}-{context.tag}",
            str(config.get("kind", "stage")),
            {"stage": dict(config), "variant": context.variant, "seed": context.seed, "init_from": context.init_from},
        )

    def log(self, context: StageContext, event: str, step: int, metrics: Mapping[str, float]) -> None:
        if self._run is not None:
            self._run.log(_numbers(metrics), step=step)

    def finish_stage(self, context: StageContext, result: StageResult | None) -> None:
        if self._run is None:
            return
        if result is not None:
            self._run.summary.update(_numbers(result.metrics))
            # The class a collapsed head predicted for everything (the "collapsed" event said when).
            self._run.summary.update({f"{head}_collapsed_to": label for head, label in collapsed_heads(result.metrics).items()})
            self._run.config.update(
                {"report": dict(result.report), "fingerprint": result.fingerprint}, allow_val_change=True
            )
            if self.log_checkpoints:
                wandb = _wandb()
                artifact = wandb.Artifact(f"{context.stage_name}-{context.tag}", type="model")
                for path in sorted(Path(result.output_dir).iterdir()):
                    if path.is_file():  # the model, tokenizer and records; not checkpoints/
                        artifact.add_file(str(path))
                self._run.log_artifact(artifact)
        self._run.finish(exit_code=0 if result is not None else 1)
        self._run = None

    def finish_run(self, run_dir: Path, summary: Mapping[str, Any]) -> None:
        wandb = _wandb()
        lineage = Path(run_dir) / "lineage.json"
        if "lineage" in summary and lineage.is_file():
            run = self._init(run_dir, "lineage", "lineage", {"plugins": summary["lineage"].get("plugins", {})})
            artifact = wandb.Artifact("lineage", type="lineage")
            artifact.add_file(str(lineage))
            run.log_artifact(artifact)
            run.finish()
        table = summary.get("ablation")
        if not table:
            return
        run = self._init(run_dir, "ablation", "ablation", {"seeds": table["seeds"]})
        # Each metric with its interval's ends (None where the run kept no per-item predictions).
        columns = ["task", "variant"]
        for column in table["columns"]:
            columns += [column, f"{column} low", f"{column} high"]
        rows = []
        for row in table["rows"]:
            cells = [row["task"], row["variant"]]
            for column in table["columns"]:
                interval = row.get("intervals", {}).get(column, {})
                cells += [row["metrics"].get(column, {}).get("mean"), interval.get("low"), interval.get("high")]
            rows.append(cells)
        logged: dict[str, Any] = {"ablation": wandb.Table(columns=columns, data=rows)}
        differences = [
            [task, d["metric"], d["variant"], d["baseline"], d["estimate"], d["low"], d["high"], d["p_value"]]
            for task, comparison in table.get("comparisons", {}).items()
            for d in comparison["differences"]
        ]
        if differences:
            logged["paired_differences"] = wandb.Table(
                columns=["task", "metric", "variant", "baseline", "difference", "low", "high", "p_value"],
                data=differences,
            )
        chart = Path(run_dir) / "ablation.png"
        if chart.is_file():
            logged["ablation_chart"] = wandb.Image(str(chart))
        run.log(logged)
        run.finish()


@hookimpl
def register_trackers(register):
    register("wandb", WandbTracker)

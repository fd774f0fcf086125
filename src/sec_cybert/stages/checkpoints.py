"""A stage's output directory: resume what was started, reuse what finished, refuse a mix.

A stage records a fingerprint of its resolved config, its input checkpoint and the seed when
it starts (``stage-started.json``) and when it finishes (``stage.json``). Re-running the same
stage into the same directory reuses a finished result, or lets the Trainer resume from its last
checkpoint; a *different* config in that directory is refused, because resuming one run's
optimizer state under another run's settings would silently mix the two.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import attrs
import structlog

from sec_cybert.distributed import is_main_process, wait_for_everyone
from sec_cybert.errors import ConfigError
from sec_cybert.stages.context import StageContext, StageResult

STARTED_RECORD = "stage-started.json"

log = structlog.get_logger(__name__)


def fingerprint_of(stage: Any, context: StageContext) -> str:
    """Hash of what makes a run this run: settings that differ from their defaults, input, seed,
    and what the contamination check removed from its corpus.

    Defaults are left out so that a setting added in a later release (with a default that keeps
    the old behaviour) does not make every earlier run directory look like a different run.
    """
    from sec_cybert.config import unstructure
    from sec_cybert.plugins import get_registry

    settings = unstructure(stage, get_registry(context.plugin_manager), omit_defaults=True)
    identity: dict[str, Any] = {
        "config": settings,
        "init_from": _portable(context.init_from, context.run_dir),
        "seed": context.seed,
    }
    if context.exclusions:
        # Other holdout texts removed from the corpus make another run.
        identity["exclusions"] = context.exclusions.digest
    payload = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _portable(init_from: str, run_dir: Path) -> str:
    """The input checkpoint as the fingerprint sees it: relative to the run when inside it.

    So 'runs/demo' and '/home/me/runs/demo' are the same run, and a run directory can move.
    """
    path = Path(init_from)
    if not path.exists():
        return init_from  # a hub id
    resolved = path.resolve()
    try:
        return "<run>/" + resolved.relative_to(Path(run_dir).resolve()).as_posix()
    except ValueError:
        return str(resolved)


def prepare_output_dir(
    out: Path, stage: Any, config: Any, context: StageContext
) -> tuple[Path, str, StageResult | None]:
    """Create ``out``; return it, the run's fingerprint, and the finished result if there is one."""
    fingerprint = fingerprint_of(stage, context)
    if is_main_process():
        out.mkdir(parents=True, exist_ok=True)
    wait_for_everyone()
    finished = StageResult.load(out)
    started_path = out / STARTED_RECORD
    recorded = finished.fingerprint if finished else None
    if recorded is None and started_path.is_file():
        recorded = json.loads(started_path.read_text()).get("fingerprint")
    if recorded is not None and recorded != fingerprint:
        raise ConfigError(
            f"{out} holds a run of this stage with a different config, input or seed; "
            "use another output directory, or delete that one to start over"
        )
    if finished is not None:
        # Where the record is now, not where it was written: a run directory can move.
        return out, fingerprint, attrs.evolve(finished, output_dir=out)
    wait_for_everyone()  # every rank has read the old record before the main process replaces it
    if is_main_process():
        record = {"fingerprint": fingerprint, "config": config, "init_from": context.init_from}
        started_path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return out, fingerprint, None


@attrs.frozen
class StageRun:
    """A stage under way: its resolved config, its directory, its fingerprint.

    ``finished`` holds the earlier result when the same run already completed here.
    """

    stage: Any
    context: StageContext
    config: dict[str, Any]
    output_dir: Path
    fingerprint: str
    finished: StageResult | None

    def finish(self, metrics: dict[str, Any], report: dict[str, Any], **log_fields: Any) -> StageResult:
        """Record the result (main process), wait for every rank, and log the metrics."""
        result = StageResult(
            stage=self.stage.name,
            kind=self.stage.kind,
            output_dir=self.output_dir,
            init_from=self.context.init_from,
            metrics=metrics,
            config=self.config,
            report=report,
            fingerprint=self.fingerprint,
        )
        if is_main_process():
            result.save()
        wait_for_everyone()
        scalars = {
            k: round(v, 4) if isinstance(v, float) else v
            for k, v in metrics.items()
            if isinstance(v, (int, float))
        }
        log.info("stage complete", stage=result.stage, **log_fields, **scalars)
        return result


def begin_stage(stage: Any, context: StageContext) -> StageRun:
    """What every stage does first: resolve its config, claim its directory, reuse a finished run."""
    from sec_cybert.config import unstructure
    from sec_cybert.plugins import get_registry

    config = unstructure(stage, get_registry(context.plugin_manager))
    out, fingerprint, done = prepare_output_dir(stage.output_dir(context), stage, config, context)
    if done is not None:
        log.info("stage already complete; reusing it", stage=stage.name, output_dir=str(out))
    return StageRun(stage, context, config, out, fingerprint, done)


def train_resuming(trainer: Any, out: Path, stage_name: str) -> Any:
    """``trainer.train``, resuming from the newest checkpoint under ``out/checkpoints`` if any."""
    from transformers.trainer_utils import get_last_checkpoint

    directory = out / "checkpoints"
    last = get_last_checkpoint(str(directory)) if directory.is_dir() else None
    if last:
        log.info("resuming from checkpoint", stage=stage_name, checkpoint=last)
    return trainer.train(resume_from_checkpoint=last)

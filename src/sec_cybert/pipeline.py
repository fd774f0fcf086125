"""Pipeline: chain pretraining stages into variants, fine-tune them, and record the lineage.

A pipeline's MLM stages run in order, each starting from the previous one's checkpoint; every
MLM stage yields a new *variant* of the encoder (``base``, ``+DAPT``, ``+DAPT+TAPT``). Fine-tune
stages train on the last variant in :meth:`Pipeline.run`, and on every variant, seed by seed,
in :meth:`Pipeline.ablation`. Each stage resumes or reuses what an earlier run into the same
directory left (see :mod:`sec_cybert.stages.checkpoints`).
"""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import structlog
from attrs import validators as v

from sec_cybert.components import ReadReport
from sec_cybert.corpus.contamination import ContaminationPolicy, ContaminationReport, Exclusions
from sec_cybert.distributed import is_main_process, wait_for_everyone
from sec_cybert.errors import ConfigError
from sec_cybert.stages.context import StageContext, StageResult

log = structlog.get_logger(__name__)

LINEAGE_FILE = "lineage.json"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


@attrs.frozen
class Variant:
    """A pretrained encoder to fine-tune: its row name, directory tag and checkpoint."""

    name: str
    tag: str
    checkpoint: str
    mlm_result: StageResult | None = None

    def extended_by(self, stage_name: str, result: StageResult) -> Variant:
        """The variant an MLM stage makes of this one: base -> +DAPT -> +DAPT+TAPT."""
        suffix = stage_name.upper()
        name = f"+{suffix}" if self.name == "base" else f"{self.name}+{suffix}"
        tag = stage_name if self.tag == "base" else f"{self.tag}-{stage_name}"
        return Variant(name=name, tag=tag, checkpoint=str(result.output_dir), mlm_result=result)


def variant_chain(checkpoint: str) -> list[Variant]:
    """The variants that led to ``checkpoint``, oldest first, read from the stages' records.

    So a pipeline that starts from a TAPT output (a per-stage config) still names its variant
    ``+DAPT+TAPT`` and can ablate against the earlier ones.
    """
    directory = Path(checkpoint)
    record = StageResult.load(directory) if directory.is_dir() else None
    if record is None or record.kind != "mlm":
        return [Variant(name="base", tag="base", checkpoint=checkpoint)]
    chain = variant_chain(record.init_from)
    return [*chain, chain[-1].extended_by(record.stage, record)]


@attrs.frozen
class Pipeline:
    """DAPT -> TAPT -> fine-tune, assembled from components.

    ``encoder`` is a registered encoder name (``tiny-modernbert``, ``modernbert-large``, or a
    plugin's), a local checkpoint directory, or a hub id. ``hardware`` is a registered profile
    name or ``auto``.
    """

    encoder: str
    stages: tuple[Any, ...] = attrs.field(converter=tuple, validator=v.min_len(1))
    hardware: str = "auto"
    seed: int = 42
    tracking: Literal["none", "wandb"] = attrs.field(default="none", validator=v.in_(("none", "wandb")))
    encoder_options: Mapping[str, Any] = attrs.field(factory=dict)
    contamination: ContaminationPolicy = attrs.field(factory=ContaminationPolicy)
    plugin_manager: Any = attrs.field(default=None, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"stage names must be unique (they name output directories), got {names}")
        kinds = [stage.kind for stage in self.stages]
        first_finetune = kinds.index("finetune") if "finetune" in kinds else len(kinds)
        if "mlm" in kinds[first_finetune:]:
            raise ConfigError("fine-tune stages must come after every MLM stage")

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_config(
        cls, data: Mapping[str, Any], *, plugin_manager: Any = None, source: str | None = None
    ) -> Pipeline:
        """Build from a parsed YAML mapping, reporting every problem at once (see :mod:`sec_cybert.config`)."""
        return load_run_config(data, plugin_manager=plugin_manager, source=source).pipeline

    @property
    def pm(self) -> Any:
        from sec_cybert.plugins import get_plugin_manager

        return self.plugin_manager or get_plugin_manager()

    @property
    def mlm_stages(self) -> list[Any]:
        return [s for s in self.stages if s.kind == "mlm"]

    @property
    def finetune_stages(self) -> list[Any]:
        return [s for s in self.stages if s.kind == "finetune"]

    # -- running -----------------------------------------------------------------------------
    def run(self, run_dir: Path | str) -> PipelineResult:
        """Run every MLM stage, then fine-tune the last variant. Resumes what ``run_dir`` holds."""
        run_dir = Path(run_dir)
        if is_main_process():
            run_dir.mkdir(parents=True, exist_ok=True)
        lineage = Lineage.start(self, run_dir)
        profile = self._hardware()
        lineage.hardware = profile.name
        # Before anything trains -- the tokenizer of a tiny encoder included -- so a refused
        # overlap costs seconds, not a finished DAPT.
        contamination = self.contamination_check()
        contamination.enforce()
        lineage.contamination = contamination.as_dict()
        # The main process builds a local base (tiny encoders); the others then find it built.
        base = self._materialize_encoder(run_dir, contamination) if is_main_process() else None
        wait_for_everyone()
        base = base or self._materialize_encoder(run_dir, contamination)
        variants = variant_chain(base)
        lineage.base = variants[0].checkpoint
        for stage in self.mlm_stages:
            previous = variants[-1]
            result = self._run_stage(stage, run_dir, previous, profile, self.seed, previous.tag, lineage, contamination)
            variants.append(previous.extended_by(stage.name, result))
        finetuned = {}
        for stage in self.finetune_stages:
            finetuned[(stage.name, variants[-1].name, self.seed)] = self._run_stage(
                stage, run_dir, variants[-1], profile, self.seed, variants[-1].tag, lineage, contamination
            )
        return PipelineResult(
            pipeline=self,
            run_dir=run_dir,
            variants=tuple(variants),
            finetuned=finetuned,
            profile=profile,
            lineage=lineage,
            contamination=contamination,
        )

    def contamination_check(self) -> ContaminationReport:
        """Pretraining corpora and fine-tune files against the fine-tune eval and holdout texts
        (:mod:`sec_cybert.corpus.contamination`); counts only, ``enforce`` applies the policy."""
        from sec_cybert.corpus.contamination import check_contamination

        pretraining = {stage.name: stage.documents for stage in self.mlm_stages}
        finetune = {stage.name: stage.labeled_documents() for stage in self.finetune_stages}
        return check_contamination(pretraining, finetune, self.contamination)

    def ablation(self, run_dir: Path | str, seeds: Sequence[int] | None = None) -> Any:
        """``run`` then fine-tune every variant with the same seeds; write the ablation table."""
        return self.run(run_dir).ablation(seeds)

    def _hardware(self, *, check: bool = True) -> Any:
        from sec_cybert.hardware import resolve_profile
        from sec_cybert.plugins import get_registry

        return resolve_profile(self.hardware, get_registry(self.plugin_manager), self.pm, check=check)

    def _materialize_encoder(self, run_dir: Path, contamination: ContaminationReport | None = None) -> str:
        from sec_cybert.plugins import get_registry

        registry = get_registry(self.plugin_manager)
        if self.encoder in registry.entries["encoder"]:
            factory = registry.factory("encoder", self.encoder)
            exclusions = contamination.exclusions if contamination else {}
            return factory(run_dir, self._corpus_texts(exclusions), **dict(self.encoder_options))
        plugin_hint = (
            "; if it is an encoder from a plugin, that plugin is not installed or is excluded by SEC_CYBERT_PLUGINS"
            if "/" not in self.encoder
            else ""
        )
        if self.encoder_options:
            raise ConfigError(
                f"encoder_options apply to registered encoders only; {self.encoder!r} is a path or hub id{plugin_hint}"
            )
        if Path(self.encoder).exists() or _HUB_ID.match(self.encoder):
            return self.encoder
        raise ConfigError(
            f"encoder {self.encoder!r} is not a registered encoder ({', '.join(registry.names('encoder'))}), "
            f"an existing checkpoint directory, or a hub id (org/name){plugin_hint}"
        )

    def _corpus_texts(self, exclusions: Mapping[str, Exclusions]) -> Iterator[str]:
        """Texts to train a tokenizer on, read only if an encoder asks: the MLM corpora (less
        what the contamination check excludes), or the fine-tune training texts when the
        pipeline has no MLM stage."""
        for stage in self.mlm_stages:
            excluded = exclusions.get(stage.name)
            for position, document in enumerate(stage.documents(ReadReport())):
                kept = excluded.apply(position, document) if excluded else document
                if kept is not None:
                    yield kept.text
        if not self.mlm_stages:
            for stage in self.finetune_stages:
                yield from (document.text for document in stage.labeled_documents()["train"])

    def _run_stage(
        self,
        stage: Any,
        run_dir: Path,
        variant: Variant,
        profile: Any,
        seed: int,
        tag: str,
        lineage: Lineage,
        contamination: ContaminationReport,
    ) -> StageResult:
        context = StageContext(
            run_dir=run_dir,
            init_from=variant.checkpoint,
            hardware=profile,
            seed=seed,
            plugin_manager=self.pm,
            variant=variant.name,
            tag=tag,
            tracking=self.tracking,
            exclusions=contamination.exclusions.get(stage.name),
            contamination=contamination.for_stage(stage.name),
        )
        log.info(
            "stage starting",
            stage=stage.name,
            kind=stage.kind,
            variant=variant.name,
            init_from=variant.checkpoint,
        )
        result = self.pm.hook.stage_run(stage=stage, context=context)
        lineage.record(result, variant=variant.name)
        return result


@attrs.frozen
class RunConfig:
    """A pipeline config file: the pipeline, and where and how to run it."""

    pipeline: Pipeline
    output_dir: Path | None
    ablation_seeds: tuple[int, ...] | None


def load_run_config(
    data: Mapping[str, Any], *, plugin_manager: Any = None, source: str | None = None
) -> RunConfig:
    """Validate a whole pipeline config; raise one ConfigError listing every problem."""
    from sec_cybert.config import PipelineSettings, Problems, build, build_component, check
    from sec_cybert.plugins import get_registry

    registry = get_registry(plugin_manager)
    problems = Problems()
    settings = build(
        PipelineSettings, {k: val for k, val in data.items() if k != "stages"}, "", registry, problems
    )
    stages_data = data.get("stages")
    built_stages = []
    if not isinstance(stages_data, list) or not stages_data:
        problems.add("stages", f"got {stages_data!r}; expected a non-empty list of stages")
    else:
        built_stages = [
            build_component("stage", s, f"stages[{i}]", registry, problems) for i, s in enumerate(stages_data)
        ]
    hardware = data.get("hardware", "auto")
    if isinstance(hardware, str) and hardware != "auto" and hardware not in registry.names("hardware"):
        known = ", ".join(["auto", *registry.names("hardware")])
        problems.add("hardware", f"unknown hardware profile {hardware!r}; known: {known}")
    check(problems, source)
    try:
        pipeline = Pipeline(
            encoder=settings.encoder,
            stages=tuple(built_stages),
            hardware=settings.hardware,
            seed=settings.seed,
            tracking=settings.tracking,
            encoder_options=settings.encoder_options,
            contamination=settings.contamination,
            plugin_manager=plugin_manager,
        )
    except (ValueError, TypeError, ConfigError) as exc:
        raise ConfigError(str(exc), source=source) from None
    seeds = tuple(settings.ablation_seeds) if settings.ablation_seeds else None
    return RunConfig(pipeline=pipeline, output_dir=settings.output_dir, ablation_seeds=seeds)


@attrs.define
class Lineage:
    """Which checkpoint fed which stage, with each stage's resolved config; saved after every stage."""

    path: Path
    header: dict[str, Any]
    stages: list[dict[str, Any]] = attrs.field(factory=list)
    hardware: str | None = None
    base: str | None = None
    contamination: dict[str, Any] | None = None

    @classmethod
    def start(cls, pipeline: Pipeline, run_dir: Path) -> Lineage:
        import torch
        import transformers

        from sec_cybert import __version__

        header = {
            "encoder": pipeline.encoder,
            "encoder_options": dict(pipeline.encoder_options),
            "seed": pipeline.seed,
            "versions": {
                "sec_cybert": __version__,
                "transformers": transformers.__version__,
                "torch": torch.__version__,
                "python": platform.python_version(),
            },
        }
        path = run_dir / LINEAGE_FILE
        # Per-stage commands (dapt, then tapt, then finetune) share one lineage file.
        earlier = json.loads(path.read_text()).get("stages", []) if path.is_file() else []
        return cls(path=path, header=header, stages=earlier)

    def record(self, result: StageResult, *, variant: str) -> None:
        entry = {
            "stage": result.stage,
            "kind": result.kind,
            "variant": variant,
            "input": result.init_from,
            "output": str(result.output_dir),
            "config": result.config,
            "metrics": result.metrics,
            "fingerprint": result.fingerprint,
        }
        self.stages = [s for s in self.stages if s["output"] != entry["output"]] + [entry]
        self.save()

    def save(self) -> None:
        if not is_main_process():
            return
        data = {
            **self.header,
            "hardware": self.hardware,
            "base_checkpoint": self.base,
            "contamination": self.contamination,
            "stages": self.stages,
        }
        self.path.write_text(json.dumps(data, indent=2, default=str) + "\n")


@attrs.frozen
class PipelineResult:
    """What :meth:`Pipeline.run` produced; :meth:`ablation` fine-tunes the other variants too."""

    pipeline: Pipeline
    run_dir: Path
    variants: tuple[Variant, ...]
    finetuned: dict[tuple[str, str, int], StageResult]
    profile: Any
    lineage: Lineage
    contamination: ContaminationReport

    def ablation(self, seeds: Sequence[int] | None = None) -> Any:
        from sec_cybert.ablation import AblationTable

        seeds = list(seeds or [self.pipeline.seed])
        if not self.pipeline.finetune_stages:
            raise ConfigError("an ablation needs a fine-tune stage in the pipeline")
        results = dict(self.finetuned)
        for stage in self.pipeline.finetune_stages:
            for variant in self.variants:
                for seed in seeds:
                    key = (stage.name, variant.name, seed)
                    if key in results:
                        continue
                    tag = (
                        variant.tag
                        if len(seeds) == 1 and seed == self.pipeline.seed
                        else f"{variant.tag}-seed{seed}"
                    )
                    results[key] = self.pipeline._run_stage(
                        stage, self.run_dir, variant, self.profile, seed, tag, self.lineage, self.contamination
                    )
        table = AblationTable.from_results(self.pipeline, self.variants, results, seeds)
        if is_main_process():
            table.write(self.run_dir)
        return table

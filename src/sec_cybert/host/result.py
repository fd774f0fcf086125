"""What a pipeline run produced, and the ablation that fine-tunes the other variants too."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from sec_cybert.core.components import HardwareProfile, Stage, Tracker
from sec_cybert.core.context import StageContext, StageResult
from sec_cybert.core.distributed import is_main_process
from sec_cybert.core.files import read_json_record, write_json_atomic
from sec_cybert.core.lineage import Lineage, Variant
from sec_cybert.corpus.contamination import ContaminationReport
from sec_cybert.errors import ConfigError
from sec_cybert.host.tracking import trackers_attached

if TYPE_CHECKING:
    from sec_cybert.results.ablation import AblationTable


@attrs.frozen
class PipelineResult:
    """What :meth:`Pipeline.run` produced; :meth:`ablation` runs the other variants too."""

    #: The ``Pipeline`` that ran (typed loosely: host.pipeline imports this module, not the reverse).
    pipeline: Any
    run_dir: Path
    variants: tuple[Variant, ...]
    finetuned: dict[tuple[str, str, int], StageResult]
    profile: HardwareProfile
    lineage: Lineage
    contamination: ContaminationReport
    #: The run's trackers: attached to the plugin manager again while an ablation runs.
    trackers: tuple[Tracker, ...] = attrs.field(default=(), eq=False, repr=False)

    def run_stage(self, stage: Stage, variant: Variant, seed: int, tag: str) -> StageResult:
        """One stage on ``variant`` through the host lifecycle; recorded in the lineage."""
        from sec_cybert.host.lifecycle import run_stage

        context = StageContext(
            run_dir=self.run_dir,
            init_from=variant.checkpoint,
            hardware=self.profile,
            seed=seed,
            plugin_manager=self.pipeline.pm,
            registry=self.pipeline.registry,
            variant=variant.name,
            tag=tag,
            exclusions=self.contamination.exclusions.get(stage.name),
            contamination=self.contamination.for_stage(stage.name),
        )
        result = run_stage(
            stage,
            context,
            registry=self.pipeline.registry,
            plugin_manager=self.pipeline.pm,
            on_input_change=self.pipeline.on_input_change,
        )
        self.lineage.record(result, variant=variant.name)
        return result

    def mlm_evaluation(self) -> dict[str, dict[str, float]]:
        """Every variant's MLM loss on every validation set a variant-producing stage kept: the
        same masked targets for all, base included, so the column compares like with like.
        ``{set: {variant: loss}}``; remembered in ``mlm-evaluation.json`` by the variants' and
        sets' fingerprints, so an ablation run again does not score again."""
        from sec_cybert.stages.mlm_evaluation import masked_lm_loss

        sets = {
            v.mlm_result.stage: Path(v.mlm_result.output_dir) / v.mlm_result.report["validation_set"]
            for v in self.variants
            if v.mlm_result is not None and v.mlm_result.report.get("validation_set")
        }
        cache_path = self.run_dir / "mlm-evaluation.json"
        cache = read_json_record(cache_path, "the MLM evaluation of the variants") if cache_path.is_file() else {}
        scores: dict[str, dict[str, float]] = {}
        for name, path in sets.items():
            if not path.is_dir():
                continue
            import datasets

            dataset = datasets.load_from_disk(str(path))
            for variant in self.variants:
                key = f"{name}|{variant.mlm_result.fingerprint if variant.mlm_result else variant.checkpoint}"
                if key not in cache:
                    cache[key] = masked_lm_loss(variant.checkpoint, dataset, profile=self.profile)
                scores.setdefault(name, {})[variant.name] = cache[key]
        if is_main_process() and sets:
            write_json_atomic(cache_path, cache)
        return scores

    def ablation(self, seeds: Sequence[int] | None = None, uncertainty: Any = None) -> AblationTable:
        """Fine-tune every variant with ``seeds`` and write the ablation table, with intervals and
        paired tests as ``uncertainty`` (:class:`sec_cybert.results.ablation_intervals.Settings`) says.
        The run's trackers hear it as they heard the run."""
        with trackers_attached(self.pipeline.pm, self.trackers):
            return self._ablation(seeds, uncertainty)

    def _ablation(self, seeds: Sequence[int] | None, uncertainty: Any) -> AblationTable:
        from sec_cybert.results.ablation import AblationTable

        seeds = list(seeds or [self.pipeline.seed])
        consumers = self.pipeline.consumers
        if not consumers:
            raise ConfigError("an ablation needs a stage that uses the variants (a fine-tune) in the pipeline")
        results = dict(self.finetuned)
        for stage in consumers:
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
                    results[key] = self.run_stage(stage, variant, seed, tag)
        table = AblationTable.from_results(
            consumers, self.variants, results, seeds, mlm_evaluation=self.mlm_evaluation(), uncertainty=uncertainty
        )
        if is_main_process():
            table.write(self.run_dir)
            self.pipeline.pm.hook.on_run_finish(run_dir=self.run_dir, summary={"ablation": table.as_dict()})
        return table

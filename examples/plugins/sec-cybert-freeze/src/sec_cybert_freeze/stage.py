"""The ``freeze-embeddings`` stage: an MLM stage whose input embeddings stay frozen for the first
``steps`` optimizer steps, then train with the rest of the model.

It is built by composition: the MLM stage does the data and the training, this class adds one
Trainer callback through ``MLMStage.run_with`` and forwards the Stage capabilities to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import attrs
from attrs import validators as v
from sec_cybert.stages import MLMStage, StageOutcome

if TYPE_CHECKING:
    from sec_cybert.core.components import Document, ReadReport
    from sec_cybert.planning.plan import PlanContext, StagePlan
    from sec_cybert.stages import StageContext


@attrs.frozen
class FreezeEmbeddingsStage:
    """MLM pretraining (``mlm``: the settings of a ``kind: mlm`` stage) with the input embeddings
    frozen until ``steps`` optimizer steps are done: the encoder adapts to the new domain before
    its gradients may move the pretrained vocabulary. ``steps: 0`` trains them from the start."""

    mlm: MLMStage
    steps: int = attrs.field(validator=[v.instance_of(int), v.ge(0)])

    #: The output is a new encoder variant: later stages start from it, the ablation compares it.
    produces_variant: ClassVar[bool] = True

    @property
    def name(self) -> str:
        """The MLM settings' name: it names the directory and the variant (``dapt`` -> ``+DAPT``)."""
        return self.mlm.name

    def output_dir(self, context: StageContext) -> Path:
        return self.mlm.output_dir(context)

    def pretraining_documents(self, report: ReadReport) -> Iterator[Document]:
        """The MLM corpus: the contamination check reads it, a tokenizer-training encoder learns from it."""
        return self.mlm.pretraining_documents(report)

    def data_files(self) -> list[Path]:
        """The corpus files: the host fingerprints them and notices a corpus changed since."""
        return self.mlm.data_files()

    def plan(self, planning: PlanContext) -> StagePlan:
        plan = self.mlm.plan(planning)
        frozen = min(self.steps, plan.optimizer_steps)
        note = f"input embeddings frozen for the first {frozen:,} of {plan.optimizer_steps:,} optimizer steps"
        if self.steps >= plan.optimizer_steps:
            note += " (all of them: they will not train)"
        return attrs.evolve(plan, notes=(*plan.notes, note))

    def run(self, context: StageContext) -> StageOutcome:
        from sec_cybert_freeze.callbacks import FreezeEmbeddings  # imports transformers: only when training

        freeze = FreezeEmbeddings(self.steps)
        outcome = self.mlm.run_with(context, callbacks=[freeze])
        report = {**outcome.report, "freeze_embeddings": freeze.report()}
        return StageOutcome(metrics=outcome.metrics, report=report)

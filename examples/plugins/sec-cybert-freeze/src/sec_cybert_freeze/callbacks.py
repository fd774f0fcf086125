"""The Trainer callback behind ``freeze-embeddings``. It imports transformers, so the stage
imports this module only when it runs."""

from __future__ import annotations

from typing import Any

import structlog
from transformers import TrainerCallback

log = structlog.get_logger(__name__)


class FreezeEmbeddings(TrainerCallback):
    """Keeps the model's input embeddings out of training for the first ``steps`` optimizer steps.

    The Trainer builds its optimizer before ``on_train_begin`` (``Trainer._prepare_for_training``
    in transformers 5), from the parameters that require a gradient at that moment: the
    embeddings are in it. Frozen, they get no gradient, and AdamW skips a parameter without one
    (weight decay included), so they do not move; from step ``steps + 1`` they train again with
    the optimizer settings of the rest. An output layer tied to the input embeddings (ModernBERT's
    decoder) is the same tensor, so it is frozen with them.

    On resume, ``state.global_step`` in ``on_train_begin`` is the checkpoint's step: a run resumed
    at or past ``steps`` leaves the embeddings trainable, one resumed before it freezes them for
    the steps that remain.
    """

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.frozen: list[Any] = []
        self.started_at_step = 0
        self.frozen_steps = 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.started_at_step = state.global_step
        if state.global_step >= self.steps:
            return
        self.frozen = [p for p in model.get_input_embeddings().parameters() if p.requires_grad]
        for parameter in self.frozen:
            parameter.requires_grad_(False)
        log.info("input embeddings frozen", until_step=self.steps, from_step=state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if not self.frozen:
            return
        self.frozen_steps += 1
        if state.global_step >= self.steps:
            self._release()
            log.info("input embeddings trainable", after_step=state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self._release()  # training ended first (max_steps <= steps): hand the model back as it came

    def _release(self) -> None:
        for parameter in self.frozen:
            parameter.requires_grad_(True)
        self.frozen = []

    def report(self) -> dict[str, int]:
        """What happened, for ``stage.json``: the optimizer steps of this run with frozen embeddings."""
        return {
            "steps": self.steps,
            "started_at_step": self.started_at_step,
            "frozen_steps": self.frozen_steps,
        }

"""Resuming a stage: what sec_cybert takes up again beside the Trainer's own state, and a stage
whose newest checkpoint is already its last step.

The Trainer resumes a run from ``checkpoint-N`` by skipping N steps' batches and then training
*one step before* it checks whether any are left. A run killed right after saving its final
checkpoint (before ``stage.json`` was written) would therefore train a step past ``max_steps``,
write ``checkpoint-<max+1>`` and record other weights and another ``global_step`` than the run
that was never interrupted. So a checkpoint whose ``global_step`` has reached the ``max_steps``
it was trained for is not resumed but taken as it is: its weights are loaded (the best
checkpoint's, with best-model selection, as the Trainer would at the end), its state becomes
the Trainer's, and nothing trains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

from sec_cybert.stages.checkpointing import read_run_state
from sec_cybert.stages.throughput import RunTotals

log = structlog.get_logger(__name__)

TRAINER_STATE = "trainer_state.json"


def restore_totals(totals: RunTotals, checkpoint: Path | None) -> bool:
    """Take up the loss sum and target counts of the run that wrote ``checkpoint``; whether the
    totals now cover the run from its first step (not so from a checkpoint written before
    sec_cybert kept them)."""
    if checkpoint is None:
        return True
    saved = read_run_state(checkpoint)
    if not saved:
        log.info("checkpoint written before its run state was kept: train_loss is the Trainer's")
        return False
    totals.loss_sum = float(saved.get("loss_sum", 0.0))
    totals.targets = saved.get("targets")
    totals.batches_without_targets = int(saved.get("batches_without_targets", 0))
    return True


def run_state(totals: RunTotals) -> dict[str, Any]:
    """What :func:`restore_totals` reads back (written into each checkpoint)."""
    return {
        "loss_sum": totals.loss_sum,
        "targets": totals.targets,
        "batches_without_targets": totals.batches_without_targets,
    }


def finished_state(checkpoint: Path | None) -> Any | None:
    """The Trainer state saved in ``checkpoint`` when that run had reached its last step."""
    if checkpoint is None:
        return None
    from transformers import TrainerState

    state = TrainerState.load_from_json(str(Path(checkpoint) / TRAINER_STATE))
    return state if state.max_steps and state.global_step >= state.max_steps else None


def finish_without_training(trainer: Any, checkpoint: Path, state: Any, totals: RunTotals, *, counted: bool) -> Any:
    """Make ``trainer`` what it was when the run that wrote ``checkpoint`` (its last step) ended,
    without a step of training; returns the ``TrainOutput`` that run's ``train()`` gave.
    ``counted``: ``totals`` cover the run from its first step (else train_loss is the mean of the
    logged losses)."""
    from transformers.trainer_utils import TrainOutput

    log.info("the last checkpoint is the final step: nothing left to train", checkpoint=str(checkpoint))
    # The Trainer's own loader: single-file, sharded, safetensors or not, tied weights kept tied.
    trainer._load_from_checkpoint(str(checkpoint))
    trainer.state = state
    best = state.best_model_checkpoint
    if trainer.args.load_best_model_at_end and best:
        if Path(best).is_dir():
            trainer._load_from_checkpoint(best)
        else:
            log.warning("the best checkpoint is gone: the final step's weights are kept", best=best)
    if counted:
        train_loss = totals.train_loss(state.global_step)
    else:
        logged = [entry["loss"] for entry in state.log_history if "loss" in entry]
        train_loss = sum(logged) / len(logged) if logged else float("nan")
    trainer.log({"train_loss": train_loss})  # the summary line an uninterrupted run logs last
    return TrainOutput(state.global_step, train_loss, {"train_loss": train_loss})

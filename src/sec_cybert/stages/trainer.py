"""The one place a stage builds and runs the HF Trainer.

Every Trainer-based stage -- the built-in MLM and fine-tune stages, and a plugin's -- calls
:func:`run_trainer`. It builds the Trainer with our callbacks: the event callback (progress
lines, ``on_train_event``, trackers) instead of the Trainer's stdout printer, checkpoint
manifests and our own rotation (:mod:`~sec_cybert.stages.checkpointing`), the numerical guard
and SIGTERM handling (:mod:`~sec_cybert.stages.guards`). It resumes from the newest checkpoint
whose manifest verifies, and refuses to hand back a model with non-finite weights.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import structlog

from sec_cybert.errors import DataError, NumericalError, Preempted
from sec_cybert.stages.context import StageContext

log = structlog.get_logger(__name__)

CHECKPOINTS = "checkpoints"


def checkpoint_dir(context: StageContext) -> Path:
    """Where the Trainer writes ``checkpoint-N`` directories for this stage."""
    return Path(context.output_dir) / CHECKPOINTS


@attrs.frozen
class TrainerRun:
    """What :func:`run_trainer` did: the Trainer (for evaluation and saving), its output, and
    what the stage report should say about resuming and skipped steps."""

    trainer: Any
    output: Any
    resumed_from: str | None
    checkpoints_skipped: tuple[str, ...]
    nonfinite_steps_skipped: tuple[int, ...]
    warnings: tuple[str, ...] = ()
    #: ``auto_micro_batch``: the micro-batch and accumulation chosen, and the sizes tried.
    micro_batch: Mapping[str, Any] | None = None

    def report(self) -> Mapping[str, Any]:
        return {
            "resumed_from": self.resumed_from,
            "checkpoints_skipped": list(self.checkpoints_skipped),
            "nonfinite_steps_skipped": list(self.nonfinite_steps_skipped),
            "warnings": list(self.warnings),
            **({"micro_batch": dict(self.micro_batch)} if self.micro_batch else {}),
        }


def run_trainer(
    context: StageContext,
    *,
    training: Any,
    model: Any,
    args: Any,
    train_dataset: Any,
    eval_dataset: Any = None,
    data_collator: Any = None,
    compute_metrics: Any = None,
    perplexity: bool = False,
    callbacks: Sequence[Any] = (),
) -> TrainerRun:
    """Build the Trainer, resume or start, train; see the module docstring.

    ``training`` is the stage's :class:`~sec_cybert.stages.training.Training` (its guard settings
    apply) and ``args`` what its ``trainer_arguments`` made, with ``checkpoint_dir(context)`` as
    the output directory. ``perplexity`` adds ``eval_perplexity`` (e^eval_loss) to evaluation
    events: only an MLM loss has one. Extra ``callbacks`` are Trainer callbacks of the stage's own.
    """
    import torch
    from transformers.trainer_callback import PrinterCallback

    from sec_cybert.flops import device_peak_flops
    from sec_cybert.stages.callbacks import EventCallback
    from sec_cybert.stages.checkpointing import CheckpointManifest, checkpoints, last_verified_checkpoint
    from sec_cybert.stages.guards import NumericalGuard, Preemption, nonfinite_tensors
    from sec_cybert.stages.throughput import CountingTrainer, TokenCounts

    directory = checkpoint_dir(context)
    last, skipped = last_verified_checkpoint(directory)
    # Rotation is ours: it counts only checkpoints whose manifest was written.
    keep, args.save_total_limit = args.save_total_limit, None

    def last_good() -> str | None:
        done = [path for _, path in checkpoints(directory) if (path / "manifest.json").is_file()]
        return str(done[-1]) if done else None

    guard = NumericalGuard(
        on_nonfinite=training.on_nonfinite,
        grad_norm_alarm=training.grad_norm_alarm,
        alarm_steps=training.grad_norm_alarm_steps,
        last_checkpoint=last_good,
        batch_rows=lambda: getattr(data_collator, "last_rows", None),
    )
    preemption = Preemption()
    fitted = None
    if getattr(training, "auto_micro_batch", False):  # before the Trainer reads the batch sizes
        from sec_cybert.stages.autobatch import fit_run_micro_batch

        fitted = fit_run_micro_batch(training, model, args, train_dataset, data_collator, resume_from=last)
        if fitted is not None and attrs.has(type(training)):  # the degenerate-run check sees what runs
            training = attrs.evolve(
                training,
                per_device_train_batch_size=fitted.micro_batch,
                gradient_accumulation_steps=fitted.gradient_accumulation_steps,
            )
    # Token slots, real tokens and model FLOPs, counted by the Trainer and read by EventCallback.
    counts = TokenCounts()
    trainer = CountingTrainer(
        counts=counts,
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=data_collator,
        compute_metrics=compute_metrics,
        callbacks=[
            EventCallback(
                context, perplexity=perplexity, counts=counts, peak_flops=device_peak_flops(args.device)
            ),
            CheckpointManifest(directory, keep),
            guard,
            preemption,
            *callbacks,
        ],
    )
    trainer.remove_callback(PrinterCallback)  # EventCallback logs the same through structlog
    warnings = _degenerate(context, training, train_dataset, args.world_size)
    if last:
        log.info("resuming from checkpoint", stage=context.stage_name, checkpoint=str(last))
    try:
        with preemption:
            output = trainer.train(resume_from_checkpoint=str(last) if last else None)
    except torch.OutOfMemoryError as exc:
        from sec_cybert.stages.autobatch import out_of_memory_error

        raise out_of_memory_error(
            context.stage_name, exc, training, model, args, train_dataset, data_collator
        ) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DataError(
                f"no space left on the device while training {context.stage_name} into {directory}: "
                f"free some space and run the same command again; it resumes from {last_good() or 'the start'} "
                "(a checkpoint cut short is set aside)"
            ) from None
        raise
    if preemption.stopped_at is not None:
        raise Preempted(
            f"stopped by SIGTERM after step {preemption.stopped_at} of {context.stage_name}, with a checkpoint "
            f"({last_good()}); run the same command again to resume"
        )
    bad = nonfinite_tensors(trainer.model)
    if bad:
        raise NumericalError(
            f"{context.stage_name} ended with non-finite weights in {len(bad)} tensors (e.g. {bad[0]}); "
            f"the model is not saved. Lower learning_rate, or resume from {last_good() or 'the start'}"
        )
    return TrainerRun(
        trainer=trainer,
        output=output,
        resumed_from=str(last) if last else None,
        checkpoints_skipped=tuple(skipped),
        nonfinite_steps_skipped=tuple(guard.skipped_steps),
        warnings=tuple(warnings),
        micro_batch=fitted.as_dict() if fitted is not None else None,
    )


def _degenerate(context: StageContext, training: Any, train_dataset: Any, world_size: int) -> list[str]:
    """What makes this stage's run degenerate (learning rate stuck at 0 or never at its peak, data
    under one batch), from the numbers the Trainer is about to use; logged as warnings. ``plan``
    and ``--strict`` check the same before a run starts."""
    from sec_cybert.plan import StagePlan, degenerate_stage_problems, step_settings, warmup_steps

    steps = training.optimizer_steps(len(train_dataset), world_size)
    planned = StagePlan(
        stage=context.stage_name,
        sequences_train=len(train_dataset),
        optimizer_steps=steps,
        warmup_steps=warmup_steps(training.warmup_ratio, steps),
        sequences_per_step=training.effective_batch_size * world_size,
        settings=step_settings(training),
    )
    problems = degenerate_stage_problems(planned, world_size)
    for line in problems:
        log.warning("degenerate run", problem=line)
    return problems

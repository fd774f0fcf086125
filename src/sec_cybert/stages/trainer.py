"""The one place a stage builds and runs the HF Trainer.

Every Trainer-based stage -- the built-in MLM and fine-tune stages, and a plugin's -- calls
:func:`run_trainer`. It builds the Trainer with our callbacks: the event callback (progress
lines, ``on_train_event``, trackers) instead of the Trainer's stdout printer, checkpoint
manifests and our own rotation (:mod:`~sec_cybert.stages.checkpointing`), the numerical guard
and SIGTERM handling (:mod:`~sec_cybert.stages.guards`). It resumes from the newest checkpoint
whose manifest verifies, and refuses to hand back a model with non-finite weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import structlog

from sec_cybert.core.context import StageContext
from sec_cybert.errors import NumericalError, Preempted

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
    #: Micro-batches (over all ranks) without an MLM target; ``None`` where labels are not per token.
    batches_without_targets: int | None = None

    def report(self) -> Mapping[str, Any]:
        return {
            "resumed_from": self.resumed_from,
            "checkpoints_skipped": list(self.checkpoints_skipped),
            "nonfinite_steps_skipped": list(self.nonfinite_steps_skipped),
            "warnings": list(self.warnings),
            **({"micro_batch": dict(self.micro_batch)} if self.micro_batch else {}),
            **(
                {"batches_without_targets": self.batches_without_targets}
                if self.batches_without_targets is not None
                else {}
            ),
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
    from safetensors import SafetensorError
    from transformers.trainer_callback import PrinterCallback

    from sec_cybert.planning.flops import device_peak_flops
    from sec_cybert.stages.batchcheck import describe_masker, run_registry
    from sec_cybert.stages.callbacks import EventCallback
    from sec_cybert.stages.checkpointing import CheckpointManifest, checkpoints, last_verified_checkpoint
    from sec_cybert.stages.diskfull import checkpoint_size, disk_full_error
    from sec_cybert.stages.guards import NumericalGuard, Preemption, TargetGuard, nonfinite_tensors
    from sec_cybert.stages.resume import finish_without_training, finished_state, restore_totals, run_state
    from sec_cybert.stages.throughput import CountingTrainer, RunTotals, TokenCounts

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
    finished = finished_state(last)
    fitted = None
    if getattr(training, "auto_micro_batch", False) and finished is None:  # before the Trainer reads the batch sizes
        from sec_cybert.stages.autobatch import fit_run_micro_batch

        fitted = fit_run_micro_batch(training, model, args, train_dataset, data_collator, resume_from=last)
        if fitted is not None and attrs.has(type(training)):  # the degenerate-run check sees what runs
            training = attrs.evolve(
                training,
                per_device_train_batch_size=fitted.micro_batch,
                gradient_accumulation_steps=fitted.gradient_accumulation_steps,
            )
    # Token slots, real tokens and model FLOPs, counted by the Trainer and read by EventCallback;
    # MLM targets and the loss summed from the run's first step, resumes included.
    counts = TokenCounts()
    totals = RunTotals()
    counted_from_start = restore_totals(totals, last)
    masker = getattr(data_collator, "masker", None)
    trainer = CountingTrainer(
        counts=counts,
        totals=totals,
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=data_collator,
        compute_metrics=compute_metrics,
        callbacks=[
            EventCallback(
                context,
                perplexity=perplexity,
                counts=counts,
                peak_flops=device_peak_flops(args.device),
                train_loss=totals.train_loss if counted_from_start else None,
            ),
            CheckpointManifest(directory, keep, run_state=lambda: run_state(totals)),
            guard,
            *(
                [TargetGuard(totals, stage=context.stage_name, masker=describe_masker(masker, run_registry(context)))]
                if masker is not None
                else []
            ),
            preemption,
            *callbacks,
        ],
    )
    trainer.remove_callback(PrinterCallback)  # EventCallback logs the same through structlog
    warnings = _degenerate(context, training, train_dataset, args.world_size)
    if last and finished is None:
        log.info("resuming from checkpoint", stage=context.stage_name, checkpoint=str(last))
    try:
        if finished is not None:
            output = finish_without_training(trainer, last, finished, totals, counted=counted_from_start)
        else:
            with preemption:
                output = trainer.train(resume_from_checkpoint=str(last) if last else None)
            if counted_from_start:
                # The Trainer's own averages only the steps of this train() call.
                loss = totals.train_loss(output.global_step)
                output = output._replace(training_loss=loss, metrics={**output.metrics, "train_loss": loss})
    except torch.OutOfMemoryError as exc:
        from sec_cybert.stages.autobatch import out_of_memory_error

        raise out_of_memory_error(
            context.stage_name, exc, training, model, args, train_dataset, data_collator
        ) from None
    except (OSError, RuntimeError, SafetensorError) as exc:
        # A full disk during a save, in whichever form the saver wrapped it (stages.diskfull).
        full = disk_full_error(
            exc,
            stage=context.stage_name,
            directory=directory,
            checkpoint_bytes=checkpoint_size(directory, model),
            resume_from=last_good(),
        )
        if full is None:
            raise
        raise full from None
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
    if totals.batches_without_targets:
        log.warning(
            "batches without a masked-LM target (their loss is 0)",
            stage=context.stage_name,
            batches=totals.batches_without_targets,
        )
    return TrainerRun(
        trainer=trainer,
        output=output,
        resumed_from=str(last) if last else None,
        checkpoints_skipped=tuple(skipped),
        nonfinite_steps_skipped=tuple(guard.skipped_steps),
        warnings=tuple(warnings),
        micro_batch=fitted.as_dict() if fitted is not None else None,
        batches_without_targets=totals.batches_without_targets if totals.targets is not None else None,
    )


def _degenerate(context: StageContext, training: Any, train_dataset: Any, world_size: int) -> list[str]:
    """What makes this stage's run degenerate (learning rate stuck at 0 or never at its peak, data
    under one batch), from the numbers the Trainer is about to use; logged as warnings. ``plan``
    and ``--strict`` check the same before a run starts."""
    from sec_cybert.planning.plan import StagePlan, degenerate_stage_problems, step_settings, warmup_steps

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

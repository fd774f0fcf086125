"""The one place a stage builds and runs the HF Trainer.

Every Trainer-based stage -- the built-in MLM and fine-tune stages, and a plugin's -- calls
:func:`run_trainer`: it builds the Trainer with our event callback (progress lines, ``on_train_event``,
trackers) instead of the Trainer's stdout printer, resumes from the newest checkpoint under
``<output_dir>/checkpoints`` when there is one, and trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from sec_cybert.stages.context import StageContext

log = structlog.get_logger(__name__)

CHECKPOINTS = "checkpoints"


def checkpoint_dir(context: StageContext) -> Any:
    """Where the Trainer writes ``checkpoint-N`` directories for this stage."""
    return context.output_dir / CHECKPOINTS


def run_trainer(
    context: StageContext,
    *,
    model: Any,
    args: Any,
    train_dataset: Any,
    eval_dataset: Any = None,
    data_collator: Any = None,
    compute_metrics: Any = None,
    perplexity: bool = False,
    callbacks: Sequence[Any] = (),
) -> tuple[Any, Any]:
    """Build the Trainer, resume or start, train; return ``(trainer, train_output)``.

    ``args`` comes from :meth:`Training.trainer_arguments` with ``checkpoint_dir(context)`` as its
    output directory. ``perplexity`` adds ``eval_perplexity`` (e^eval_loss) to evaluation
    events: only an MLM loss has one. Extra ``callbacks`` are Trainer callbacks of the stage's own.
    """
    from transformers import Trainer
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_utils import get_last_checkpoint

    from sec_cybert.stages.callbacks import EventCallback

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=data_collator,
        compute_metrics=compute_metrics,
        callbacks=[EventCallback(context, perplexity=perplexity), *callbacks],
    )
    # EventCallback logs the same through structlog.
    trainer.remove_callback(PrinterCallback)
    directory = checkpoint_dir(context)
    last = get_last_checkpoint(str(directory)) if directory.is_dir() else None
    if last:
        log.info("resuming from checkpoint", stage=context.stage_name, checkpoint=last)
    return trainer, trainer.train(resume_from_checkpoint=last)

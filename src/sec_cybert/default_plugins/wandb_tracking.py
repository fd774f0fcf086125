"""Weights & Biases tracking, attached as a plugin around each stage.

Active only when a pipeline asks for ``tracking: wandb``. The Trainer's own W&B integration
logs the training curves (``report_to="wandb"``); this wrapper gives every stage its own run,
grouped by the pipeline's output directory, and records the stage's final metrics on it.
"""

from __future__ import annotations

from sec_cybert.errors import OptionalDependencyError
from sec_cybert.hookspecs import hookimpl


@hookimpl(wrapper=True)
def stage_run(stage, context):
    if context.tracking != "wandb":
        return (yield)
    try:
        import wandb
    except ImportError:
        raise OptionalDependencyError("tracking: wandb", extra="wandb", package="wandb") from None
    run = wandb.init(
        project="sec-cybert",
        group=context.run_dir.name,
        name=f"{stage.name}-{context.tag}" if stage.kind == "finetune" else stage.name,
        job_type=stage.kind,
        reinit="finish_previous",
    )
    try:
        result = yield
        run.summary.update({k: v for k, v in result.metrics.items() if isinstance(v, (int, float))})
        return result
    finally:
        run.finish()

"""``sec-cybert plan``: what a run will do, computed by the code that will do it.

The plan reads and tokenizes each stage's data with the stage's own ``prepare_data``, so its
counts are the run's counts; step and warmup arithmetic mirror the HF Trainer's (steps per epoch
= ceil(batches / accumulation); warmup = ceil(ratio x steps)). The reference procedure's own step
counts disagree with each other (docs/configs.md works through them); this is the source of truth.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import attrs

from sec_cybert.components import ReadReport


@attrs.frozen
class StagePlan:
    stage: str
    kind: str
    documents: int | None
    tokens: int | None
    sequences_train: int
    sequences_validation: int
    optimizer_steps: int
    warmup_steps: int
    sequences_per_step: int
    tokens_per_step: int | None
    estimated_seconds: float | None
    notes: tuple[str, ...] = ()
    parameters: int | None = None
    #: Weights, gradients and AdamW's two moments per process (activations come on top).
    static_memory_gib: float | None = None


@attrs.frozen
class Plan:
    hardware: str
    world_size: int
    tokens_per_second: float | None
    throughput_source: str | None
    stages: tuple[StagePlan, ...]
    #: The contamination check's counts, and what the policy would refuse (the run stops on it).
    contamination: tuple[str, ...] = ()
    refused: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def to_text(self) -> str:
        lines = [f"hardware: {self.hardware}   world size: {self.world_size}"]
        if self.tokens_per_second:
            lines.append(f"throughput: {self.tokens_per_second:,.0f} tokens/s ({self.throughput_source})")
        else:
            lines.append("throughput: unknown for this profile (no duration estimate)")
        lines.extend(f"contamination: {line}" for line in self.contamination)
        if self.refused:
            lines.append(f"contamination: the run would stop here: {self.refused}")
        for s in self.stages:
            lines.append(f"\n[{s.stage}] ({s.kind})")
            if s.documents is not None:
                lines.append(f"  documents kept            {s.documents:>14,}")
            if s.tokens is not None:
                lines.append(f"  tokens kept               {s.tokens:>14,}")
            lines.append(f"  sequences train / val     {s.sequences_train:>14,} / {s.sequences_validation:,}")
            lines.append(f"  sequences per step        {s.sequences_per_step:>14,}")
            if s.tokens_per_step is not None:
                lines.append(f"  tokens per step (max)     {s.tokens_per_step:>14,}")
            lines.append(f"  optimizer steps           {s.optimizer_steps:>14,}")
            lines.append(f"  warmup steps              {s.warmup_steps:>14,}")
            if s.estimated_seconds is not None:
                lines.append(f"  estimated duration        {s.estimated_seconds / 3600:>13.1f}h")
            if s.static_memory_gib is not None:
                lines.append(f"  parameters                {s.parameters:>14,}")
                lines.append(
                    f"  weights+grads+AdamW       {s.static_memory_gib:>12.1f} GiB per process, before activations"
                )
            lines.extend(f"  note: {note}" for note in s.notes)
        return "\n".join(lines)


def warmup_steps(ratio: float, steps: int) -> int:
    return math.ceil(steps * ratio)


def plan_pipeline(pipeline: Any, *, world_size: int = 1) -> Plan:
    """Plan every stage of ``pipeline`` without training anything."""
    from sec_cybert.errors import DataError
    from sec_cybert.stages.loading import load_tokenizer

    # Planning an rtx3090 run on a laptop is the point: do not require the GPU here.
    profile = pipeline._hardware(check=False)
    contamination = pipeline.contamination_check()
    try:
        contamination.enforce()
        refused = None
    except DataError as exc:
        refused = str(exc)
    with tempfile.TemporaryDirectory(prefix="sec-cybert-plan-") as scratch:
        base = pipeline._materialize_encoder(Path(scratch), contamination)
        # Pretraining stages keep the tokenizer, so the base tokenizer plans every stage.
        tokenizer = load_tokenizer(base)
        plans = []
        for stage in pipeline.stages:
            if stage.kind == "mlm":
                exclusions = contamination.exclusions.get(stage.name)
                plans.append(_plan_mlm(stage, tokenizer, pipeline.seed, world_size, profile, exclusions))
            elif stage.kind == "finetune":
                plans.append(_plan_finetune(stage, world_size))
            else:
                plans.append(
                    StagePlan(
                        stage=stage.name,
                        kind=stage.kind,
                        documents=None,
                        tokens=None,
                        sequences_train=0,
                        sequences_validation=0,
                        optimizer_steps=0,
                        warmup_steps=0,
                        sequences_per_step=0,
                        tokens_per_step=None,
                        estimated_seconds=None,
                        notes=("no planner for this stage kind",),
                    )
                )
        parameters = parameter_count(base)
        plans = [
            _with_memory(plan, stage, parameters, profile)
            for plan, stage in zip(plans, pipeline.stages, strict=True)
        ]
    return Plan(
        hardware=profile.name,
        world_size=world_size,
        tokens_per_second=profile.tokens_per_second,
        throughput_source=profile.throughput_source,
        stages=tuple(plans),
        contamination=tuple(contamination.summary_lines()),
        refused=refused,
    )


def _plan_mlm(
    stage: Any, tokenizer: Any, seed: int, world_size: int, profile: Any, exclusions: Any
) -> StagePlan:
    train, validation, report = stage.prepare_data(tokenizer, seed, exclusions)
    training = stage.training
    steps = training.optimizer_steps(len(train), world_size)
    per_step = training.effective_batch_size * world_size
    block = getattr(stage.chunker, "seq_len", None) or getattr(stage.chunker, "max_length", None)
    tokens_per_step = per_step * block if block else None
    epochs = training.num_train_epochs
    total_tokens = report["selection"]["tokens_kept"] * epochs
    estimate = total_tokens / profile.tokens_per_second if profile.tokens_per_second else None
    notes = []
    if report["read"]["skipped"]:
        notes.append(f"records skipped: {report['read']['skipped']}")
    if report["duplicates"]["dropped"]:
        notes.append(
            f"copies dropped ({report['duplicates']['mode']} duplicates): {report['duplicates']['dropped']:,}"
        )
    if report["truncated"]["documents"]:
        notes.append(
            f"documents truncated: {report['truncated']['documents']:,} "
            f"({report['truncated']['tokens']:,} tokens cut off)"
        )
    notes.append(
        f"validation holds {report['validation']['documents']:,} whole documents "
        f"({report['validation']['tokens']:,} tokens)"
    )
    if profile.tokens_per_second:
        notes.append(
            "duration scales the profile's throughput; it was measured for one model and sequence length"
        )
    return StagePlan(
        stage=stage.name,
        kind=stage.kind,
        documents=report["selection"]["documents_kept"],
        tokens=report["selection"]["tokens_kept"],
        sequences_train=len(train),
        sequences_validation=len(validation) if validation is not None else 0,
        optimizer_steps=steps,
        warmup_steps=warmup_steps(training.warmup_ratio, steps),
        sequences_per_step=per_step,
        tokens_per_step=tokens_per_step,
        estimated_seconds=estimate,
        notes=tuple(notes),
    )


def _plan_finetune(stage: Any, world_size: int) -> StagePlan:
    report = ReadReport()
    train = stage.read_labeled(stage.train_file, report)
    validation = stage.read_labeled(stage.eval_file, ReadReport()) if stage.eval_file else {"text": []}
    steps = stage.training.optimizer_steps(len(train["text"]), world_size)
    notes = (f"records skipped: {dict(report.skipped)}",) if report.total_skipped else ()
    return StagePlan(
        stage=stage.name,
        kind=stage.kind,
        documents=len(train["text"]),
        tokens=None,
        sequences_train=len(train["text"]),
        sequences_validation=len(validation["text"]),
        optimizer_steps=steps,
        warmup_steps=warmup_steps(stage.training.warmup_ratio, steps),
        sequences_per_step=stage.training.effective_batch_size * world_size,
        tokens_per_step=None,
        estimated_seconds=None,
        notes=notes + ("runs once per variant and seed in an ablation",),
    )


#: Bytes per parameter for training with AdamW: weights, gradients, and two moments, all kept in
#: the weights' dtype by torch's AdamW.
BYTES_PER_PARAMETER = {"float32": 4 * 4, "bfloat16": 2 * 4}


def parameter_count(reference: str) -> int | None:
    """Parameters of the MLM model at ``reference``, counted on the meta device (no weights read).

    ``None`` when its config cannot be read (a hub model not in the cache, offline).
    """
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM

    try:
        config = AutoConfig.from_pretrained(reference)
        with torch.device("meta"):
            model = AutoModelForMaskedLM.from_config(config)
    except (OSError, ValueError):
        return None
    return sum(p.numel() for p in model.parameters())


def _with_memory(plan: StagePlan, stage: Any, parameters: int | None, profile: Any) -> StagePlan:
    training = getattr(stage, "training", None)
    if parameters is None or training is None:
        return plan
    gib = parameters * BYTES_PER_PARAMETER[training.model_dtype] / 2**30
    notes = plan.notes
    if profile.memory_gib and gib > 0.8 * profile.memory_gib:
        notes += (
            f"weights, gradients and optimizer states alone take {gib:.1f} of the profile's "
            f"{profile.memory_gib:.0f} GiB: shard them (FSDP) or set model_dtype: bfloat16",
        )
    return attrs.evolve(plan, parameters=parameters, static_memory_gib=gib, notes=notes)

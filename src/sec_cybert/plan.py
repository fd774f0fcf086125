"""``sec-cybert plan``: what a run will do, computed by the code that will do it.

Each stage plans itself (its ``plan`` method), reading and tokenizing its data with its own data
path, so the counts are the run's counts; step and warmup arithmetic mirror the HF Trainer's (steps per epoch
= ceil(batches / accumulation); warmup = ceil(ratio x steps)). The reference procedure's own step
counts disagree with each other (docs/configs.md works through them); this is the source of truth.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import attrs


@attrs.frozen
class StagePlan:
    """What a run of one stage will do. A stage's ``plan`` method returns it, computed by the
    stage's own data path; fields it cannot know stay ``None`` (or 0 for counts)."""

    stage: str
    documents: int | None = None
    tokens: int | None = None
    sequences_train: int = 0
    sequences_validation: int = 0
    optimizer_steps: int = 0
    warmup_steps: int = 0
    sequences_per_step: int = 0
    tokens_per_step: int | None = None
    estimated_seconds: float | None = None
    notes: tuple[str, ...] = ()
    #: The dtype of the weights it trains ("float32", "bfloat16"): the host then adds the
    #: parameter count and the memory of weights, gradients and AdamW states.
    model_dtype: str | None = None
    #: Filled in by the host: the stage's registered name, the model's parameters, and weights +
    #: gradients + AdamW's two moments per process (activations come on top).
    kind: str = ""
    parameters: int | None = None
    static_memory_gib: float | None = None


@attrs.frozen
class PlanContext:
    """What a stage's ``plan`` gets: the base tokenizer (pretraining keeps it, so it plans every
    stage), the run's seed, the data-parallel world size, the hardware profile, and what the
    contamination check removes from the stage's corpus."""

    tokenizer: Any
    seed: int
    world_size: int
    profile: Any
    exclusions: Any = None


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
    from sec_cybert.config import registered_name
    from sec_cybert.errors import DataError
    from sec_cybert.plugins import get_registry
    from sec_cybert.stages.loading import load_tokenizer

    # Planning an rtx3090 run on a laptop is the point: do not require the GPU here.
    profile = pipeline._hardware(check=False)
    contamination = pipeline.contamination_check()
    try:
        contamination.enforce()
        refused = None
    except DataError as exc:
        refused = str(exc)
    registry = get_registry(pipeline.plugin_manager)
    with tempfile.TemporaryDirectory(prefix="sec-cybert-plan-") as scratch:
        base = pipeline._materialize_encoder(Path(scratch), contamination)
        tokenizer = load_tokenizer(base)
        parameters = parameter_count(base)
        plans = []
        for stage in pipeline.stages:
            planning = PlanContext(
                tokenizer=tokenizer,
                seed=pipeline.seed,
                world_size=world_size,
                profile=profile,
                exclusions=contamination.exclusions.get(stage.name),
            )
            planner = getattr(stage, "plan", None)
            plan = planner(planning) if planner else StagePlan(stage=stage.name, notes=("this stage has no plan method",))
            kind = registered_name(type(stage), registry) or type(stage).__name__
            plans.append(_with_memory(attrs.evolve(plan, kind=kind), parameters, profile))
    return Plan(
        hardware=profile.name,
        world_size=world_size,
        tokens_per_second=profile.tokens_per_second,
        throughput_source=profile.throughput_source,
        stages=tuple(plans),
        contamination=tuple(contamination.summary_lines()),
        refused=refused,
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


def _with_memory(plan: StagePlan, parameters: int | None, profile: Any) -> StagePlan:
    if parameters is None or plan.model_dtype not in BYTES_PER_PARAMETER:
        return plan
    gib = parameters * BYTES_PER_PARAMETER[plan.model_dtype] / 2**30
    notes = plan.notes
    if profile.memory_gib and gib > 0.8 * profile.memory_gib:
        notes += (
            f"weights, gradients and optimizer states alone take {gib:.1f} of the profile's "
            f"{profile.memory_gib:.0f} GiB: shard them (FSDP) or set model_dtype: bfloat16",
        )
    return attrs.evolve(plan, parameters=parameters, static_memory_gib=gib, notes=notes)

"""``sec-cybert plan``: what a run will do, computed by the code that will do it.

Each stage plans itself (its ``plan`` method), reading and tokenizing its data with its own data
path, so the counts are the run's counts; step and warmup arithmetic mirror the HF Trainer's (steps per epoch
= ceil(batches / accumulation); warmup = ceil(ratio x steps)). The reference procedure's own step
counts disagree with each other (docs/configs.md works through them); this is the source of truth.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from sec_cybert.core.components import HardwareProfile, Stage

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from sec_cybert.planning.memory import MemoryEstimate, StepShape


@runtime_checkable
class StepSettings(Protocol):
    """What :func:`degenerate_problems` reads of a stage's ``training`` to check and name its
    optimizer steps and learning rate. Not a schema of its own: ``sec_cybert.stages.Training``
    (and a plugin stage's settings with these attributes) is one, so a plan holds the stage's
    very settings object."""

    lr_scheduler_type: str
    learning_rate: float
    warmup_ratio: float
    max_steps: int | None
    num_train_epochs: float
    per_device_train_batch_size: int
    gradient_accumulation_steps: int


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
    #: Filled in by the host from the stage's ``training`` (``None`` for a stage without one).
    settings: StepSettings | None = None
    #: Filled in by the host: the estimated peak memory of one training step per device
    #: (:func:`sec_cybert.planning.memory.estimate_step_memory`), for a stage whose settings it can read,
    #: and what :func:`degenerate_problems` says when it exceeds the profile's memory.
    memory: MemoryEstimate | None = None
    memory_problem: str | None = None


@attrs.frozen
class PlanContext:
    """What a stage's ``plan`` gets: the base tokenizer (pretraining keeps it, so it plans every
    stage), the run's seed, the data-parallel world size, the hardware profile, and what the
    contamination check removes from the stage's corpus."""

    tokenizer: PreTrainedTokenizerBase
    seed: int
    world_size: int
    profile: HardwareProfile
    exclusions: Any = None
    #: The run's registry (a ``sec_cybert.plugins.Registry``), for what a stage looks up in it.
    registry: Any = None


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
    #: The profile's memory per device (what each stage's ``memory`` is compared with).
    memory_gib: float | None = None

    @property
    def warnings(self) -> list[str]:
        """What makes this run degenerate (:func:`degenerate_problems`): one line per problem."""
        return degenerate_problems(self)

    def as_dict(self) -> dict[str, Any]:
        stages = [
            {**attrs.asdict(stage, filter=_leave_out("settings")), "settings": _settings_dict(stage.settings)}
            for stage in self.stages
        ]
        return {**attrs.asdict(self, filter=_leave_out("stages")), "stages": stages, "warnings": self.warnings}

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
            if s.parameters is not None:
                lines.append(f"  parameters                {s.parameters:>14,}")
            if s.static_memory_gib is not None and s.memory is None:
                # Without a step estimate (a config the count cannot read), what is known.
                lines.append(
                    f"  weights+grads+AdamW       {s.static_memory_gib:>12.1f} GiB per process, before activations"
                )
            if s.memory is not None:
                lines.append(f"  peak memory per device    {s.memory.describe(self.memory_gib)}")
            lines.extend(f"  note: {note}" for note in s.notes)
        warnings = self.warnings
        if warnings:
            lines.append("")
            lines.extend(f"warning: {line}" for line in warnings)
        return "\n".join(lines)


def warmup_steps(ratio: float, steps: int) -> int:
    return math.ceil(steps * ratio)


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


def with_static_memory(plan: StagePlan, parameters: int | None, profile: HardwareProfile) -> StagePlan:
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


def model_config(reference: str) -> Any:
    """The transformers config of the model at ``reference`` (its config.json: no weights read);
    ``None`` when it cannot be read (a hub model not in the cache, offline)."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(reference)
    except (OSError, ValueError):
        return None


def stage_step_shape(stage: Stage, profile: HardwareProfile) -> StepShape | None:
    """What decides the memory of ``stage``'s training step, read from its settings (duck-typed:
    a ``training``; a ``chunker`` with ``seq_len`` or ``max_length``, or a ``max_length`` of its
    own; a ``masker`` makes it MLM) and the profile, as the run will resolve them. ``None`` for a
    stage without those."""
    from sec_cybert.planning.memory import StepShape

    training = getattr(stage, "training", None)
    chunker = getattr(stage, "chunker", None)
    block = getattr(chunker, "seq_len", None)
    seq_len = block or getattr(chunker, "max_length", None) or getattr(stage, "max_length", None)
    if not isinstance(seq_len, int) or not hasattr(training, "per_device_train_batch_size"):
        return None
    masker = getattr(stage, "masker", None)
    device = profile.device
    attn = getattr(training, "attn_implementation", None) or profile.attn_implementation
    if attn == "flash_attention_2" and device != "cuda":
        attn = "sdpa"  # resolve_runtime's fallback; on CUDA the profile's choice is planned
    optim = getattr(training, "optim", None) or profile.optim
    bf16 = getattr(training, "bf16", None)
    return StepShape(
        seq_len=seq_len,
        micro_batch=training.per_device_train_batch_size,
        weight_dtype=getattr(training, "model_dtype", "float32"),
        autocast_dtype="bfloat16" if (profile.bf16 if bf16 is None else bf16) else None,
        attn_implementation=attn,
        gradient_checkpointing=bool(getattr(training, "gradient_checkpointing", False)),
        sparse_prediction=bool(getattr(stage, "sparse_prediction", False)),
        mask_probability=float(getattr(masker, "probability", 0.15)),
        optimizer=optim if device == "cuda" else optim.removesuffix("_fused"),
        # Concatenated blocks are full; paragraphs are padded, packed rows carry boundaries.
        padded=block is None or bool(getattr(chunker, "provides_position_ids", False)),
        head="mlm" if masker is not None else "pooled",
        device=device,
    )


def with_step_memory(plan: StagePlan, stage: Stage, config: Any, profile: HardwareProfile) -> StagePlan:
    from sec_cybert.errors import SecCybertError
    from sec_cybert.planning.fitting import largest_fitting_batch, memory_fixes
    from sec_cybert.planning.memory import GIB, estimate_for_shape

    shape = stage_step_shape(stage, profile) if config is not None else None
    if shape is None:
        return plan
    try:
        estimate = estimate_for_shape(config, shape)
    except (SecCybertError, ValueError, TypeError, KeyError, AttributeError) as exc:
        # A config the count cannot read: the plan says so rather than stopping.
        return attrs.evolve(plan, notes=(*plan.notes, f"no memory estimate: {exc}"))
    problem = None
    budget = profile.memory_gib
    notes = (*plan.notes, *estimate.notes)
    effective = getattr(stage.training, "effective_batch_size", shape.micro_batch)
    if budget and getattr(stage.training, "auto_micro_batch", False) and shape.device == "cuda":
        # The run searches from the largest micro-batch the estimate fits into the device.
        start = largest_fitting_batch(
            lambda b: estimate_for_shape(config, attrs.evolve(shape, micro_batch=b)), effective, budget * GIB
        )
        estimate = estimate_for_shape(config, attrs.evolve(shape, micro_batch=start))
        notes += (
            f"auto_micro_batch: starts from {start} per device x {effective // start} accumulation "
            "(the largest the estimate fits); the run confirms it with real steps",
        )
    if budget and estimate.total > budget * GIB:
        fixes = memory_fixes(config, estimate, budget_bytes=budget * GIB, effective_batch=effective)
        problem = (
            f"{plan.stage}: one training step needs {estimate.describe()}, more than the profile's "
            f"{budget:g} GiB per device ({estimate.shape.describe()}); it would stop with an out-of-memory "
            f"error. Set {'; or '.join(fixes)}"
        )
    return attrs.evolve(plan, memory=estimate, memory_problem=problem, notes=notes)


# -- degenerate runs ----------------------------------------------------------------------------


def _leave_out(name: str) -> Callable[[attrs.Attribute, Any], bool]:
    return lambda attribute, _value: attribute.name != name


def _settings_dict(settings: StepSettings | None) -> dict[str, Any] | None:
    """What a plan's JSON says of a stage's settings: the :class:`StepSettings` attributes only."""
    return None if settings is None else {name: getattr(settings, name) for name in StepSettings.__annotations__}


def step_settings(training: Any) -> StepSettings | None:
    """A stage's ``training`` when it has the :class:`StepSettings` attributes, else ``None``."""
    return training if isinstance(training, StepSettings) else None


def lr_multiplier(scheduler: str, warmup: int, steps: int) -> Callable[[int], float] | None:
    """The learning rate of each optimizer step as a fraction of ``learning_rate``, from the
    scheduler transformers builds for the run (step ``i`` trains at ``multiplier(i)``).

    ``None`` for a scheduler that is not a function of the step (``reduce_lr_on_plateau``,
    ``greedy``: both start at the peak). One that transformers cannot build without
    ``lr_scheduler_kwargs`` (which a stage does not pass, so its run would stop too) is read as
    ``linear``, whose warmup is the ramp from 0 that the others share.
    """
    import torch
    from transformers import get_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    try:
        built = get_scheduler(scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=steps)
    except (ValueError, TypeError, ZeroDivisionError):
        built = get_scheduler("linear", optimizer, num_warmup_steps=warmup, num_training_steps=steps)
    lambdas = getattr(built, "lr_lambdas", None)
    return lambdas[0] if lambdas else None


def degenerate_problems(plan: Plan) -> list[str]:
    """What makes a planned run train badly or not at all, one line per problem, each naming the
    stage, the numbers and the fix:

    - the learning rate never leaves 0 (one optimizer step with any warmup: the step trains at
      lr 0, so the weights do not move);
    - the optimizer steps are no more than the warmup steps, so the learning rate never reaches
      its peak (``warmup = ceil(warmup_ratio x steps)`` equals the steps once
      ``warmup_ratio > (steps - 1) / steps``);
    - the training sequences are fewer than one effective batch (per device x accumulation x
      processes), so every step sees the whole training set, a smaller batch than configured;
    - one training step's estimated peak memory (:mod:`sec_cybert.planning.memory`) exceeds the
      profile's ``memory_gib``: the run would stop with an out-of-memory error.

    The learning rate is read from transformers' own scheduler, so ``constant`` (which ignores
    warmup) is not flagged. ``plan`` prints these as warnings; ``--strict`` refuses the run.
    """
    return [
        line
        for stage in plan.stages
        for line in [
            *degenerate_stage_problems(stage, plan.world_size),
            *filter(None, [stage.memory_problem]),
        ]
    ]


def degenerate_stage_problems(stage: StagePlan, world_size: int = 1) -> list[str]:
    """:func:`degenerate_problems` for one stage: what a stage checks of itself as it starts."""
    if stage.optimizer_steps <= 0:
        return []  # a stage that did not plan its steps
    return [*_schedule_problems(stage), *_batch_problems(stage, world_size)]


def _steps_fix(settings: StepSettings | None) -> str:
    if settings is None:
        return "raise its steps"
    if settings.max_steps:
        return f"raise max_steps (now {settings.max_steps:,})"
    epochs = settings.num_train_epochs
    return f"raise num_train_epochs (now {epochs:g}) or lower the batch for more steps per epoch"


def _ratio_fix(steps: int, settings: StepSettings | None) -> str:
    now = f" (now {settings.warmup_ratio:g})" if settings else ""
    if steps == 1:
        return f"set warmup_ratio: 0{now}"
    bound = math.floor((steps - 1) / steps * 1000) / 1000
    while bound > 0 and warmup_steps(bound, steps) >= steps:
        bound = round(bound - 0.001, 3)
    return f"lower warmup_ratio to {bound:g} or less{now}"


def _schedule_problems(stage: StagePlan) -> list[str]:
    steps, warmup = stage.optimizer_steps, stage.warmup_steps
    settings = stage.settings
    scheduler = settings.lr_scheduler_type if settings else "linear"
    multiplier = lr_multiplier(scheduler, warmup, steps)
    if multiplier is None:
        return []
    where = (
        f"{stage.stage}: {steps:,} optimizer step{'s' if steps != 1 else ''}, "
        f"{warmup:,} warmup step{'s' if warmup != 1 else ''}"
    )
    if all(multiplier(step) == 0 for step in range(steps)):
        return [
            f"{where} ({scheduler} schedule): the learning rate is 0 at every step, so the weights "
            f"never change; {_ratio_fix(steps, settings)}, or {_steps_fix(settings)}"
        ]
    highest = max(multiplier(step) for step in range(min(steps, warmup + 2)))
    if highest < 1 - 1e-9:
        peak = f" {settings.learning_rate:g}" if settings else ""
        return [
            f"{where} ({scheduler} schedule): the warmup takes the whole run, so the learning rate "
            f"never reaches its peak{peak} (at most {highest:.0%} of it); "
            f"{_ratio_fix(steps, settings)}, or {_steps_fix(settings)}"
        ]
    return []


def _batch_problems(stage: StagePlan, world_size: int) -> list[str]:
    sequences, per_step = stage.sequences_train, stage.sequences_per_step
    if per_step <= 0 or sequences >= per_step:
        return []
    settings = stage.settings
    processes = f"{world_size} process{'es' if world_size != 1 else ''}"
    batch = (
        f"{settings.per_device_train_batch_size:,} per device x {settings.gradient_accumulation_steps:,} "
        f"accumulation x {processes}"
        if settings
        else processes
    )
    most = sequences // world_size
    fix = (
        f"lower per_device_train_batch_size x gradient_accumulation_steps to at most {most:,}"
        if most >= 1
        else f"use fewer than {world_size} processes"
    )
    return [
        f"{stage.stage}: {sequences:,} training sequences, fewer than one effective batch of {per_step:,} "
        f"({batch}): every optimizer step sees the whole training set, a smaller batch than configured; "
        f"add data, or {fix}"
    ]

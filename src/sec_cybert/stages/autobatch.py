"""The micro-batch a Trainer run uses on its device, and what an out-of-memory error says.

:func:`run_trainer <sec_cybert.stages.trainer.run_trainer>` calls :func:`fit_run_micro_batch`
before it builds the Trainer when a stage's ``training.auto_micro_batch`` is on, and
:func:`out_of_memory_error` when training raises ``torch.OutOfMemoryError``. Both read the
step's settings off the objects the Trainer is about to use (:func:`run_step_shape`), so the
estimate (:mod:`sec_cybert.planning.memory`) is of the step that runs.

The search by real steps is accelerate's ``find_executable_batch_size``; ours are its starting
point (the analytic estimate), the sizes it steps down through (divisors of the effective
batch) and what is said when not even one row fits.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import attrs
import structlog

from sec_cybert.errors import ConfigError, HardwareError
from sec_cybert.planning.fitting import divisors_descending, largest_fitting_batch
from sec_cybert.planning.memory import (
    CUDA_CONTEXT_BYTES,
    GIB,
    MemoryEstimate,
    StepShape,
    estimate_for_shape,
)

log = structlog.get_logger(__name__)

#: Rows looked at for the longest one: the trial batch repeats it, so it is the worst case of
#: a padded corpus without reading all of a large one.
SAMPLED_ROWS = 1024


@attrs.frozen
class MicroBatchFit:
    """What :func:`fit_micro_batch` chose, and the micro-batches it tried (size, fitted)."""

    micro_batch: int
    gradient_accumulation_steps: int
    tried: tuple[tuple[int, bool], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "per_device_train_batch_size": self.micro_batch,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "tried": [{"micro_batch": b, "fits": ok} for b, ok in self.tried],
        }


def fit_micro_batch(
    try_step: Callable[[int], None],
    *,
    effective_batch: int,
    start: int,
    release: Callable[[], None] = lambda: None,
    describe: Callable[[int], str] = lambda b: "",
) -> MicroBatchFit:
    """The largest micro-batch, from ``start`` down, for which ``try_step(b)`` (one real forward
    and backward pass of ``b`` rows) raises no out-of-memory error.

    accelerate's ``find_executable_batch_size`` runs the tries and tells an out-of-memory error
    from any other (which is raised as it is). Only divisors of ``effective_batch`` are tried, so
    ``micro_batch x accumulation`` stays the configured effective batch exactly; after an
    out-of-memory error the next smaller divisor is tried. ``release()`` runs once after every
    try (free the gradients and the allocator's cache). When even 1 does not fit:
    :class:`~sec_cybert.errors.HardwareError`, with ``describe(1)``.
    """
    from accelerate.utils import find_executable_batch_size

    if effective_batch < 1:
        raise ConfigError(f"effective batch must be at least 1, got {effective_batch}")
    candidates = divisors_descending(effective_batch, max(1, start))
    tried: list[tuple[int, bool]] = []

    def smaller() -> int:
        # Called while the failed try's exception (and the frames holding its tensors) is still
        # alive: its memory is released at the start of the next try, when they are gone.
        failed = candidates[len(tried)]
        tried.append((failed, False))
        log.info("micro-batch tried", micro_batch=failed, fits=False)
        if len(tried) == len(candidates):
            release()
            raise HardwareError(
                f"not even a micro-batch of 1 fits this device ({describe(1) or 'no estimate'}): set "
                "gradient_checkpointing: true, sparse_prediction: true and bf16: true, or shorten the "
                "sequences (the chunker's seq_len / max_length)"
            )
        return candidates[len(tried)]

    def attempt(batch_size: int) -> int:
        if tried:
            release()  # what the failed try before this one held
        try_step(batch_size)
        return batch_size

    fitted = find_executable_batch_size(
        attempt, starting_batch_size=candidates[0], reduce_batch_size_fn=smaller
    )()
    release()
    tried.append((fitted, True))
    log.info("micro-batch tried", micro_batch=fitted, fits=True)
    return MicroBatchFit(fitted, effective_batch // fitted, tuple(tried))


def model_config(model: Any) -> Any:
    """The transformers config of ``model``, or of its ``encoder`` (a fine-tune's classifier)."""
    return getattr(model, "config", None) or getattr(getattr(model, "encoder", None), "config", None)


def _longest_row(dataset: Any) -> tuple[int, int, bool]:
    """(index, length, whether lengths vary) of the longest of the first rows of ``dataset``."""
    lengths = [len(dataset[i]["input_ids"]) for i in range(min(len(dataset), SAMPLED_ROWS))]
    longest = max(range(len(lengths)), key=lengths.__getitem__)
    return longest, lengths[longest], min(lengths) != max(lengths)


def run_step_shape(
    training: Any,
    model: Any,
    args: Any,
    train_dataset: Any,
    data_collator: Any,
    *,
    rows: tuple[int, int, bool] | None = None,
) -> StepShape:
    """The :class:`~sec_cybert.planning.memory.StepShape` of the step the Trainer will run (``rows``:
    what :func:`_longest_row` found, when the caller has it)."""
    _, length, varies = rows or _longest_row(train_dataset)
    config = model_config(model)
    parameter = next(model.parameters())
    head = (
        "mlm"
        if callable(getattr(model, "get_output_embeddings", None))
        and model.get_output_embeddings() is not None
        else "pooled"
    )
    optim = getattr(args.optim, "value", args.optim)
    return StepShape(
        seq_len=length,
        micro_batch=args.per_device_train_batch_size,
        weight_dtype=parameter.dtype,
        autocast_dtype="bfloat16" if args.bf16 else "float16" if args.fp16 else None,
        attn_implementation=getattr(config, "_attn_implementation", None) or "sdpa",
        gradient_checkpointing=bool(getattr(training, "gradient_checkpointing", False)),
        sparse_prediction=bool(getattr(model, "sparse_prediction", False)),
        mask_probability=float(getattr(getattr(data_collator, "masker", None), "probability", 0.15)),
        optimizer=str(optim),
        padded=varies or "position_ids" in getattr(train_dataset, "column_names", ()),
        head=head,
        device="cuda" if args.device.type == "cuda" else "cpu",
    )


def _estimate(config: Any, shape: StepShape) -> MemoryEstimate | None:
    try:
        return estimate_for_shape(config, shape)
    except Exception as exc:  # noqa: BLE001 -- an architecture the count cannot read: no estimate, no failure
        log.debug("no memory estimate", error=f"{type(exc).__name__}: {exc}")
        return None


def fit_run_micro_batch(
    training: Any, model: Any, args: Any, train_dataset: Any, data_collator: Any, *, resume_from: Any = None
) -> MicroBatchFit | None:
    """``training.auto_micro_batch``: on CUDA, set ``args``' micro-batch to the largest that fits,
    with ``gradient_accumulation_steps`` keeping the effective batch; ``None`` (a log line) on a CPU.

    The search (:func:`~sec_cybert.planning.memory.fit_micro_batch`) starts from the largest divisor of
    the effective batch whose estimate fits the memory this process can have (free + what torch
    holds) and confirms it with real steps: the longest of the first rows repeated, two forward
    and backward passes (the second with the first's gradients resident, as under
    accumulation) next to a placeholder for AdamW's moments. Under ``torchrun`` every process
    takes the smallest micro-batch any of them found, so they accumulate alike. A run resuming
    from ``resume_from`` keeps the micro-batch its checkpoint trained with, so it sees the same
    batches as the run it continues.
    """
    import torch

    effective = args.per_device_train_batch_size * args.gradient_accumulation_steps
    if args.device.type != "cuda":
        log.info(
            "auto_micro_batch does nothing off CUDA",
            device=args.device.type,
            micro_batch=args.per_device_train_batch_size,
        )
        return None
    kept = _checkpoint_micro_batch(resume_from)
    if kept is not None and effective % kept == 0:
        log.info(
            "auto_micro_batch: kept the checkpoint's micro-batch",
            micro_batch=kept,
            checkpoint=str(resume_from),
        )
        fit = MicroBatchFit(kept, effective // kept, ())
        args.per_device_train_batch_size, args.gradient_accumulation_steps = kept, effective // kept
        return fit
    free, _ = torch.cuda.mem_get_info(args.device)
    # What this process can have: the free memory and what its allocator holds, plus the CUDA
    # context the estimate's total counts but which this process has already paid for.
    budget = free + torch.cuda.memory_reserved(args.device) + CUDA_CONTEXT_BYTES
    fit = search_micro_batch(training, model, args, train_dataset, data_collator, budget_bytes=budget)
    fit = _agree(fit, effective)
    args.per_device_train_batch_size = fit.micro_batch
    args.gradient_accumulation_steps = fit.gradient_accumulation_steps
    log.info(
        "micro-batch fitted",
        per_device_train_batch_size=fit.micro_batch,
        gradient_accumulation_steps=fit.gradient_accumulation_steps,
        device_gib=round(budget / GIB, 1),
    )
    return fit


def search_micro_batch(
    training: Any, model: Any, args: Any, train_dataset: Any, data_collator: Any, *, budget_bytes: float
) -> MicroBatchFit:
    """:func:`fit_run_micro_batch`'s search on ``args.device`` within ``budget_bytes``: the
    start from the estimate, and the real steps (see there). Leaves ``args`` as it was."""
    import torch
    from accelerate.utils import send_to_device

    effective = args.per_device_train_batch_size * args.gradient_accumulation_steps
    device, budget = args.device, budget_bytes
    config = model_config(model)
    rows = _longest_row(train_dataset)
    shape = run_step_shape(training, model, args, train_dataset, data_collator, rows=rows)
    estimate = _estimate(config, shape)
    if estimate is not None:
        start = largest_fitting_batch(
            lambda b: estimate_for_shape(config, attrs.evolve(shape, micro_batch=b)), effective, budget
        )
    else:
        start = effective  # no estimate: real steps decide from the top
    model.to(device)
    if args.activation_checkpointing:
        model.activation_checkpointing_enable(
            activation_checkpointing_kwargs=args.activation_checkpointing_kwargs
        )
    model.train()
    row = train_dataset[rows[0]]
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(shape.autocast_dtype or "")
    moments = estimate.optimizer if estimate is not None else 0

    def try_step(b: int) -> None:
        placeholder = torch.empty(moments, dtype=torch.uint8, device=device)  # AdamW's moments
        for _ in range(2):
            batch = send_to_device(data_collator([row] * b), device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = model(**batch)["loss"]
            loss.backward()
            del batch, loss
        del placeholder

    def release() -> None:
        model.zero_grad(set_to_none=True)
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()

    def describe(b: int) -> str:
        at = _estimate(config, attrs.evolve(shape, micro_batch=b))
        estimated = at.describe(budget / GIB, "this process's") if at else "no estimate"
        return f"{attrs.evolve(shape, micro_batch=b).describe()}: {estimated}"

    log.info(
        "micro-batch search",
        estimated_start=start,
        effective_batch=effective,
        budget_gib=round(budget / GIB, 1),
    )
    return fit_micro_batch(
        try_step, effective_batch=effective, start=start, release=release, describe=describe
    )


def _checkpoint_micro_batch(checkpoint: Any) -> int | None:
    """The per-device micro-batch a checkpoint's run trained with (its ``trainer_state.json``)."""
    import json
    from pathlib import Path

    if checkpoint is None:
        return None
    try:
        state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return None
    value = state.get("train_batch_size")
    return value if isinstance(value, int) and value >= 1 else None


def _agree(fit: MicroBatchFit, effective: int) -> MicroBatchFit:
    """The smallest micro-batch of all processes (their gradient accumulation must match)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return fit
    smallest = torch.tensor([fit.micro_batch], device="cuda")
    dist.all_reduce(smallest, op=dist.ReduceOp.MIN)
    b = int(smallest.item())
    return (
        fit
        if b == fit.micro_batch
        else attrs.evolve(fit, micro_batch=b, gradient_accumulation_steps=effective // b)
    )


def out_of_memory_error(
    stage: str,
    error: BaseException,
    training: Any,
    model: Any,
    args: Any,
    train_dataset: Any,
    data_collator: Any,
) -> HardwareError:
    """One paragraph for a step that ran out of device memory: the device's memory, what torch
    said of it, the preflight estimate, the step's settings and what to change."""
    import torch

    try:
        shape = run_step_shape(training, model, args, train_dataset, data_collator)
    except Exception:  # noqa: BLE001 -- the message must not fail: say less
        shape = None
    estimate = _estimate(model_config(model), shape) if shape is not None else None
    if args.device.type == "cuda":
        total = torch.cuda.get_device_properties(args.device).total_memory / GIB
        device = f"the device's {total:.1f} GiB ({torch.cuda.get_device_name(args.device)})"
    else:
        device = "the machine's memory"
    settings = shape.describe() if shape is not None else "settings unknown"
    # torch's own figures (what it tried to allocate, what was free), without its advice on the allocator.
    said = " ".join(str(error).split()).split(" If reserved")[0].rstrip(".")
    preflight = (
        f"the preflight estimate is {estimate.describe()}"
        if estimate is not None
        else "no preflight estimate for this model"
    )
    accumulation = args.gradient_accumulation_steps
    savers = ["auto_micro_batch: true"] if args.device.type == "cuda" else []
    if shape is None or not shape.gradient_checkpointing:
        savers.append("gradient_checkpointing: true")
    if shape is None or (shape.head == "mlm" and not shape.sparse_prediction):
        savers.append("sparse_prediction: true (an MLM stage)")
    if shape is None or shape.autocast_dtype is None:
        savers.append("bf16: true")
    return HardwareError(
        f"{stage} ran out of memory: one training step ({settings}) needs more than {device} "
        f"(torch: {said}); {preflight}. Lower per_device_train_batch_size (now {args.per_device_train_batch_size}) "
        f"and raise gradient_accumulation_steps (now {accumulation}) by the same factor to keep the effective "
        f"batch, or set {', '.join([*savers, ''])}or shorten the sequences (the chunker's seq_len / max_length); "
        "`sec-cybert plan` shows the estimate for each change"
    )

"""The micro-batch that fits a memory budget, what to change when none does, and the measured peak
of a real step that checks the estimate (:mod:`sec_cybert.planning.memory`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from sec_cybert.planning.memory import GIB, MemoryEstimate, StepShape, dtype_name, estimate_for_shape
from sec_cybert.planning.model_shape import arch_of


def divisors_descending(n: int, at_most: int | None = None) -> list[int]:
    """The divisors of ``n`` (no larger than ``at_most``), largest first."""
    cap = n if at_most is None else min(n, at_most)
    return [d for d in range(cap, 0, -1) if n % d == 0]


def largest_fitting_batch(
    estimate_for: Callable[[int], MemoryEstimate], effective_batch: int, budget_bytes: float
) -> int:
    """The largest micro-batch dividing ``effective_batch`` whose estimated ``total`` fits
    ``budget_bytes``; 1 when none does (a real step then decides)."""
    for b in divisors_descending(effective_batch):
        if estimate_for(b).total <= budget_bytes:
            return b
    return 1


def memory_fixes(
    model_config: Any, estimate: MemoryEstimate, *, budget_bytes: float, effective_batch: int
) -> list[str]:
    """What to change so a step fits ``budget_bytes``, each with its own estimate: a smaller
    micro-batch with more accumulation (the same effective batch), then each memory saver not
    yet on. Setting names are the stage's ``training`` keys (``sparse_prediction`` the stage's)."""
    shape = estimate.shape

    def gib(changed: StepShape) -> str:
        return f"≈ {estimate_for_shape(model_config, changed).total / GIB:.1f} GiB"

    fixes = []
    fitting = [
        b
        for b in divisors_descending(effective_batch, shape.micro_batch - 1)
        if estimate_for_shape(model_config, attrs.evolve(shape, micro_batch=b)).total <= budget_bytes
    ]
    if fitting:
        b = fitting[0]
        fixes.append(
            f"per_device_train_batch_size: {b} with gradient_accumulation_steps: {effective_batch // b} "
            f"(the same effective batch of {effective_batch}; {gib(attrs.evolve(shape, micro_batch=b))})"
        )
    if not shape.gradient_checkpointing:
        fixes.append(
            f"gradient_checkpointing: true ({gib(attrs.evolve(shape, gradient_checkpointing=True))})"
        )
    if shape.head == "mlm" and not shape.sparse_prediction and arch_of(model_config).sparse_capable:
        fixes.append(f"sparse_prediction: true ({gib(attrs.evolve(shape, sparse_prediction=True))})")
    if shape.autocast_dtype is None:
        fixes.append(f"bf16: true ({gib(attrs.evolve(shape, autocast_dtype='bfloat16'))})")
    savers = {"gradient_checkpointing": True, "autocast_dtype": shape.autocast_dtype or "bfloat16"}
    if shape.head == "mlm" and arch_of(model_config).sparse_capable:
        savers["sparse_prediction"] = True
    if len(fixes) - bool(fitting) > 1:  # more than one saver is off: what they do together
        names = ", ".join(
            {"gradient_checkpointing": "gradient_checkpointing", "autocast_dtype": "bf16"}.get(k, k)
            for k, value in savers.items()
            if getattr(shape, k) != value
        )
        fixes.append(f"all of {names} ({gib(attrs.evolve(shape, **savers))})")
    if shape.weight_dtype == "float32":
        fixes.append(
            f"model_dtype: bfloat16 ({gib(attrs.evolve(shape, weight_dtype='bfloat16'))}; see its caveat)"
        )
    if shape.device == "cuda":
        fixes.append("auto_micro_batch: true (finds the largest micro-batch that fits by real steps)")
    return fixes


# -- measuring ----------------------------------------------------------------------------------


def measure_step_memory(
    model: Any,
    batch: dict[str, Any],
    *,
    autocast_dtype: Any = None,
    fused: bool | None = None,
    lr: float = 1e-4,
) -> int:
    """The peak bytes of one real training step of ``model`` on ``batch``, as the Trainer runs it
    with gradient accumulation: a forward and backward pass with the gradients of an earlier
    micro-batch resident, then an AdamW step (whose moments exist from an earlier step).

    CUDA: ``torch.cuda.max_memory_allocated``; CPU: ``MemTracker``'s peak (every tensor storage
    the step holds). ``fused`` picks torch's AdamW kernel (``adamw_torch_fused``); ``None`` its
    default. It trains ``model`` for two steps: use a throwaway one.
    """
    import torch

    device = next(model.parameters()).device
    dtype = None if autocast_dtype is None else getattr(torch, dtype_name(autocast_dtype))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, fused=fused)

    def micro() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = model(**batch).loss
        loss.backward()

    micro()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    micro()  # gradients resident, as from the second micro-batch of an accumulation on
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        micro()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device))
    from torch.distributed._tools.mem_tracker import MemTracker

    tracker = MemTracker()
    tracker.track_external(model, optimizer, batch)
    with tracker:
        micro()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return int(sum(snapshot["Total"] for snapshot in tracker.get_tracker_snapshot("peak").values()))

"""The micro-batch search by real steps (accelerate's find_executable_batch_size), on a CPU:
out-of-memory errors are injected by the step, as a CUDA device would raise them."""

from __future__ import annotations

import weakref

import pytest
import torch

from sec_cybert.errors import HardwareError
from sec_cybert.stages.autobatch import MicroBatchFit, fit_micro_batch

CUDA_OOM = "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.65 GiB"
CPU_OOM = "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to allocate 4294967296 bytes."


def _step(fits_up_to, calls, error=lambda: torch.cuda.OutOfMemoryError(CUDA_OOM)):
    def try_step(b):
        calls.append(b)
        if b > fits_up_to:
            raise error()

    return try_step


def test_the_search_is_accelerates(monkeypatch):
    import accelerate.utils

    used = []
    real = accelerate.utils.find_executable_batch_size

    def spy(*args, **kwargs):
        used.append(kwargs.get("starting_batch_size"))
        return real(*args, **kwargs)

    monkeypatch.setattr(accelerate.utils, "find_executable_batch_size", spy)
    calls = []
    fit = fit_micro_batch(_step(3, calls), effective_batch=12, start=12)
    assert used == [12] and calls == [12, 6, 4, 3]
    assert fit == MicroBatchFit(3, 4, ((12, False), (6, False), (4, False), (3, True)))


def test_a_cpu_allocator_failure_steps_down_like_a_cuda_one():
    calls = []
    fit = fit_micro_batch(_step(4, calls, lambda: RuntimeError(CPU_OOM)), effective_batch=16, start=16)
    assert calls == [16, 8, 4] and (fit.micro_batch, fit.gradient_accumulation_steps) == (4, 4)


@pytest.mark.parametrize(
    "error",
    [lambda: ValueError("labels have the wrong shape"), lambda: RuntimeError("CUDA error: device-side assert triggered")],
)
def test_an_error_that_is_not_out_of_memory_is_raised_at_once(error):
    calls = []
    with pytest.raises((ValueError, RuntimeError)) as raised:
        fit_micro_batch(_step(0, calls, error), effective_batch=8, start=8)
    assert not isinstance(raised.value, HardwareError) and calls == [8]


def test_each_try_is_released_once_and_after_its_tensors_are_gone():
    held: list[weakref.ref] = []
    released: list[bool] = []

    def try_step(b):
        activations = torch.empty(1024)  # what a failed step's frames would still hold
        held.append(weakref.ref(activations))
        if b > 2:
            raise torch.cuda.OutOfMemoryError(CUDA_OOM)

    def release():
        released.append(all(ref() is None for ref in held))

    fit = fit_micro_batch(try_step, effective_batch=8, start=8, release=release)
    assert fit.tried == ((8, False), (4, False), (2, True))
    assert released == [True, True, True]  # one per try, each when nothing of it is reachable


def test_not_even_one_row_fitting_says_so_with_the_estimate_and_releases_the_last_try():
    calls, released = [], []
    with pytest.raises(HardwareError, match=r"not even a micro-batch of 1 fits this device \(1 row: 31 GiB\)"):
        fit_micro_batch(
            _step(0, calls),
            effective_batch=6,
            start=4,
            release=lambda: released.append(1),
            describe=lambda b: f"{b} row: 31 GiB",
        )
    assert calls == [3, 2, 1] and len(released) == 3

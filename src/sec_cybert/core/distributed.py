"""Just enough multi-process awareness for ``torchrun``/``accelerate launch`` runs.

The HF Trainer runs DDP/FSDP inside a stage; between stages every rank must agree on what is
on disk. Files that describe a run (records, lineage, tokenizer, tables) are written by the main
process only, and every rank waits for it before the next stage reads them.
"""

from __future__ import annotations

import os


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


#: Seconds a rank waits at a barrier or in any collective before the run fails.
TIMEOUT_ENV = "SEC_CYBERT_DISTRIBUTED_TIMEOUT"
#: Two hours: the other ranks wait while the main process prepares data (a cold contamination
#: check and tokenization of a full DAPT corpus take tens of minutes), and torch's own default
#: for NCCL, 10 minutes, would end the run there.
DEFAULT_TIMEOUT_SECONDS = 7200


def timeout_seconds() -> int:
    """``$SEC_CYBERT_DISTRIBUTED_TIMEOUT``, else :data:`DEFAULT_TIMEOUT_SECONDS`."""
    value = os.environ.get(TIMEOUT_ENV)
    if not value:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = int(value)
        if seconds < 1:
            raise ValueError
    except ValueError:
        from sec_cybert.errors import ConfigError

        raise ConfigError(f"{TIMEOUT_ENV}={value!r} is not a whole number of seconds >= 1; e.g. 7200") from None
    return seconds


def wait_for_everyone() -> None:
    """A barrier across ranks; a no-op in a single process. The first one creates the process
    group, with :func:`timeout_seconds` as its timeout (the Trainer's then finds it made)."""
    if world_size() > 1:
        from datetime import timedelta

        import torch
        from accelerate import PartialState

        # Without cpu=True, accelerate takes CPU processes for a single one and its barrier
        # returns at once (the Trainer's arguments make the state again, for CPU or GPUs).
        state = PartialState(cpu=not torch.cuda.is_available(), timeout=timedelta(seconds=timeout_seconds()))
        state.wait_for_everyone()

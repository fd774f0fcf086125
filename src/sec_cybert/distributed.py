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


def wait_for_everyone() -> None:
    """A barrier across ranks; a no-op in a single process."""
    if world_size() > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()

"""A save that failed for lack of disk space, recognised in the forms it takes.

``OSError(ENOSPC)`` is the plain one. The savers wrap it: safetensors raises ``SafetensorError``
(``IoError(Os { code: 28, kind: StorageFull ... })``), and ``torch.save`` a ``RuntimeError``
whose message has no errno at all (``basic_ios::clear: iostream error``, ``PytorchStreamWriter
failed writing file``). So: an ENOSPC anywhere in the exception's chain, or a message that says
so, is a full disk; an I/O-shaped error from a saver is one when the disk holding the
checkpoints has less free space than a checkpoint takes. Anything else is left as it was.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from sec_cybert.errors import DataError

#: Errnos that mean "no room to write": a full device, or a user's quota.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
#: What a saver's message says when the disk is full (safetensors' Rust I/O error included).
_SAYS_FULL = ("no space left", "storagefull", "code: 28", "os error 28", "disk quota exceeded")
#: What a saver's message says when a write failed without saying why.
_WRITE_FAILED = ("basic_ios::clear", "iostream error", "file write failed", "pytorchstreamwriter", "error while serializing")


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _readable(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _free(directory: Path) -> int | None:
    for path in (directory, *directory.parents):
        if path.exists():
            return shutil.disk_usage(path).free
    return None


def disk_full_error(
    exc: BaseException, *, stage: str, directory: Path, checkpoint_bytes: int, resume_from: str | None
) -> DataError | None:
    """The one-line error for ``exc`` when it is a save that ran out of space, else ``None``.

    ``checkpoint_bytes``: about what one checkpoint of this run takes (the newest one's size, or
    the weights and optimizer state); less free space than that after an I/O-shaped failure of a
    saver is taken as the cause.
    """
    chain = _chain(exc)
    messages = " ".join(str(e).lower() for e in chain)
    full = any(isinstance(e, OSError) and e.errno in _NO_SPACE for e in chain) or any(
        marker in messages for marker in _SAYS_FULL
    )
    free = _free(Path(directory))
    if not full and any(marker in messages for marker in _WRITE_FAILED):
        full = free is not None and free < checkpoint_bytes
    if not full:
        return None
    room = f" ({_readable(free)} free there; a checkpoint takes about {_readable(checkpoint_bytes)})" if free is not None else ""
    return DataError(
        f"no space left on the device while training {stage} into {directory}{room}: free some space and run "
        f"the same command again; it resumes from {resume_from or 'the start'} (a checkpoint cut short is set aside)"
    )


def checkpoint_size(directory: Path, model: object) -> int:
    """About what one checkpoint takes: the newest complete one's size, else the weights plus an
    optimizer state twice their size (AdamW's two moments)."""
    from sec_cybert.stages.checkpointing import MANIFEST, checkpoints

    done = [path for _, path in checkpoints(Path(directory)) if (path / MANIFEST).is_file()]
    if done:
        return _size(done[-1])
    parameters = getattr(model, "parameters", None)
    weights = sum(p.numel() * p.element_size() for p in parameters()) if callable(parameters) else 0
    return 3 * weights

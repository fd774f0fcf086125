"""Writing records so that a kill never leaves half of one: write aside, flush, rename into place."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: readers see the old file or the new, never a torn one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, payload: Any, **dumps: Any) -> None:
    write_text_atomic(path, json.dumps(payload, **{"indent": 2, "default": str, **dumps}) + "\n")


def read_json_record(path: Path, what: str) -> Any:
    """A JSON record the library wrote, or one clear error naming it and the way out."""
    from sec_cybert.errors import DataError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path} ({what}) is not readable JSON ({type(exc).__name__}: {exc}); it was cut short or edited: "
            "delete it to redo what it records"
        ) from None


_DIGESTS: dict[tuple[Any, ...], str] = {}
#: A file changed less than this long before it was hashed is hashed again next time: a change
#: made just after, within one tick of the file system's clock, could leave its stat as it was.
RACY_NS = 2_000_000_000


def file_signature(path: Path) -> tuple[Any, ...]:
    """What a change to a file's content changes: its path, device, inode, size, mtime and ctime.
    A write sets mtime and ctime to the present; setting mtime back (``os.utime``, ``touch -d``)
    sets ctime to the present too, and nothing short of the system clock sets ctime back."""
    stat = Path(path).stat()
    return (str(Path(path).resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def file_digest(path: Path) -> str:
    """BLAKE2 of a file's content, remembered for the process by :func:`file_signature`.

    Every caller in a process (the contamination check's cache, the tokenization cache, a
    stage's fingerprint) shares the memo, so a file is read once per process. It is remembered
    only when its signature was the same after the read as before, and its last change is over
    :data:`RACY_NS` old (an edit that lands in the same clock tick as the one hashed would leave
    the signature unchanged)."""
    import time

    path = Path(path)
    key = file_signature(path)
    known = _DIGESTS.get(key)
    if known is not None:
        return known
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "blake2b").hexdigest()[:32]
    if file_signature(path) == key and time.time_ns() - max(key[4], key[5]) > RACY_NS:
        _DIGESTS[key] = digest
    return digest


def files_under(paths: Iterable[Path]) -> list[Path]:
    """The files named, and every file under the directories named (sorted, dot-files left out)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            found.append(path)
    return found

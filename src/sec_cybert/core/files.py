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


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """BLAKE2 of a file's content, remembered for the process by (path, size, mtime)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        with path.open("rb") as handle:
            _DIGESTS[key] = hashlib.file_digest(handle, "blake2b").hexdigest()[:32]
    return _DIGESTS[key]


def files_under(paths: Iterable[Path]) -> list[Path]:
    """The files named, and every file under the directories named (sorted, dot-files left out)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            found.append(path)
    return found

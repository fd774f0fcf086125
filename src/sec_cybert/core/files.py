"""Writing records so that a kill never leaves half of one: write aside, flush, rename into place."""

from __future__ import annotations

import json
import os
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

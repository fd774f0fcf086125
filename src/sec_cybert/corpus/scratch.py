"""Where data preparation keeps its files on disk: the cache root, and one scratch directory per process.

``SEC_CYBERT_CACHE`` names the root (default ``~/.cache/sec_cybert``). Tokenized corpora are
kept under ``tokenized/`` (:mod:`~sec_cybert.corpus.token_cache`); a process's working files --
the documents it read, their tokens, its training blocks -- under ``scratch/``, in a directory of
its own that is removed when it exits. They are Arrow files that ``datasets`` memory-maps, so a
corpus larger than memory streams through instead of being held in it. A scratch directory
left behind by a killed process is removed by the next process on the same host.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

#: The environment variable naming the cache root.
CACHE_ENV = "SEC_CYBERT_CACHE"
_OWNER = "owner.json"
_current: tuple[Path, int, Path] | None = None  # (scratch root, pid, directory)


def cache_root() -> Path:
    """``$SEC_CYBERT_CACHE``, or ``~/.cache/sec_cybert``."""
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "sec_cybert"


def scratch_dir() -> Path:
    """This process's scratch directory (created on first use, removed at exit)."""
    global _current
    root = cache_root() / "scratch"
    pid = os.getpid()
    # A forked child (a map worker) makes its own: the parent removes the one it inherited.
    if _current is not None and _current[:2] == (root, pid) and _current[2].is_dir():
        return _current[2]
    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_orphans(root)
        directory = Path(tempfile.mkdtemp(prefix=f"{pid}-", dir=root))
        (directory / _OWNER).write_text(json.dumps({"host": socket.gethostname(), "pid": pid}))
    except OSError as exc:
        from sec_cybert.errors import DataError

        raise DataError(
            f"cannot create the data-preparation scratch directory under {root} ({exc.strerror or exc}): "
            f"set {CACHE_ENV} to a writable directory with room for about twice the corpus's text and tokens"
        ) from None
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    _current = (root, pid, directory)
    return directory


def scratch_path(stem: str, suffix: str = ".arrow") -> Path:
    """A new file name in :func:`scratch_dir` (nothing is created)."""
    return scratch_dir() / f"{stem}-{uuid.uuid4().hex[:12]}{suffix}"


def _remove_orphans(root: Path) -> None:
    """Remove the scratch directories of processes on this host that are gone (killed: their
    exit handler never ran). Another host's directories on a shared disk are left alone."""
    host = socket.gethostname()
    for directory in root.iterdir():
        try:
            owner = json.loads((directory / _OWNER).read_text())
        except (OSError, ValueError):
            continue  # being created, or not ours
        if not isinstance(owner, dict) or owner.get("host") != host or _alive(owner.get("pid")):
            continue
        shutil.rmtree(directory, ignore_errors=True)
        log.info("removed the scratch directory of a process that is gone", directory=str(directory))


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # unknown: keep it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True

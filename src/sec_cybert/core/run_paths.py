"""How a run's records name paths: relative to the run directory when inside it, so that a run
directory moved to another disk or shared with a colleague still names its own parts rightly.

``lineage.json`` stores each stage's input and output this way, and the run report shows them
so. What lies outside the run directory (a corpus, a local base model) keeps its absolute path;
what is not a local path at all (a hub id such as ``answerdotai/ModernBERT-base``) is kept as
written.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path


def run_relative(value: str | PathLike[str] | None, *run_dirs: Path) -> str | None:
    """``value`` as a run record stores it: relative (POSIX) to the first of ``run_dirs`` that
    holds it, else absolute when it is a local path, else unchanged. Further ``run_dirs`` name
    where the run directory was when an older record was written (see :func:`recorded_run_dirs`)."""
    if value is None:
        return None
    text = str(value)
    path = Path(text)
    if not (path.is_absolute() or path.exists()):
        return text  # a hub id, or a relative path that names nothing here
    resolved = path.resolve()
    for run_dir in run_dirs:
        for root in dict.fromkeys((Path(run_dir).absolute(), Path(run_dir).resolve())):
            for candidate in (path.absolute(), resolved):
                try:
                    return candidate.relative_to(root).as_posix()
                except ValueError:
                    continue
    return str(resolved)


def resolve_recorded(value: str, run_dir: Path) -> Path:
    """Where a path a run record names is now: a relative one is inside ``run_dir``; an
    absolute one from before paths were stored relative, where it was, or -- when the run
    directory has moved since -- the entry of the same name in ``run_dir``."""
    path = Path(value)
    if not path.is_absolute():
        return Path(run_dir) / path
    return path if path.exists() else Path(run_dir) / path.name


def recorded_run_dirs(outputs: list[str]) -> list[Path]:
    """The run directories that stage outputs recorded with absolute paths lived in (their
    parents): where an older ``lineage.json`` was written, even if it has moved since."""
    return list(dict.fromkeys(Path(o).parent for o in outputs if Path(o).is_absolute()))

"""Where output goes: log lines on stderr in one format, and stdout left to results.

The command line calls :func:`configure_logging` once; a script does the same to log as the
CLI does (``configure_logging()``: console lines on stderr). It renders structlog events, the
standard-library records of the libraries underneath (datasets, huggingface_hub, a
transformers logger that propagates) and Python warnings in one format, ``console`` or
``json``, on stderr, and turns off the libraries' own progress bars unless ``-v``.

Some libraries print past logging: transformers prints ``[INFO] Running in WANDB offline
mode`` on stdout when it is imported, W&B writes its banners to stderr. :func:`library_output`
catches what is written to ``sys.stdout`` (and, in JSON mode, to ``sys.stderr``) while a
command works, and logs each line as an event, so stdout holds only the command's result and
every stderr line of a JSON run is a JSON object.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

import structlog

#: Read by the training progress bar (sec_cybert.stages.callbacks.progress_bar_wanted); kept
#: here as a string so that `--help` imports nothing heavy.
PROGRESS_ENV = "SEC_CYBERT_PROGRESS"

_LIBRARY_BARS = ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS")


class _Settings:
    """What configure_logging chose, for the CLI to quiet a phase and to word its errors."""

    level: int = logging.INFO
    format: str = "console"
    stream: TextIO | None = None
    handler: logging.Handler | None = None
    #: transformers' own stderr handler was taken off (its records propagate to ours instead).
    took_transformers_handler: bool = False


settings = _Settings()


def _add_rank(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """``rank=N`` on every line of a multi-process run (torchrun sets RANK and WORLD_SIZE), so
    two ranks' lines can be told apart; nothing is added to a single-process run."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        event.setdefault("rank", int(os.environ.get("RANK", "0") or 0))
    return event


def _progress_bars(verbosity: int, fmt: str) -> None:
    """The training bar (stages.callbacks) shows on a terminal; ``--quiet`` and JSON lines turn
    it off. The libraries' bars (datasets: tokenizing, mapping; the hub: loading weights) only
    interleave with our lines: ``-v`` brings them back, except in JSON, where a bar is no line."""
    if verbosity < 0 or fmt == "json":
        os.environ[PROGRESS_ENV] = "off"
    if verbosity > 0 and fmt != "json":
        return
    for name in _LIBRARY_BARS:
        os.environ.setdefault(name, "1")
    # Both read their variable once, at import: when imported already (main() called from
    # Python), tell them directly. Not importing them keeps `--help` fast.
    hub = sys.modules.get("transformers.utils.logging")
    if hub is not None and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1":
        hub.disable_progress_bar()
    bars = sys.modules.get("datasets.utils.tqdm")
    if bars is not None and os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] == "1":
        bars.disable_progress_bars()


def configure_logging(verbosity: int = 0, fmt: str = "console", *, stream: TextIO | None = None) -> None:
    """Log to ``stream`` (stderr): ``-1`` warnings only, ``0`` info, ``1`` debug; ``fmt`` is
    ``console`` or ``json``. Calling it again replaces what the last call set."""
    stream = stream if stream is not None else sys.stderr
    _progress_bars(verbosity, fmt)
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    shared = [_add_rank, structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True)]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    settings.level, settings.format, settings.stream = level, fmt, stream
    _route_standard_logging(verbosity, shared, renderer, stream)


def _route_standard_logging(verbosity: int, shared: list[Any], renderer: Any, stream: TextIO) -> None:
    """The libraries' logging records and Python warnings, rendered as our own lines: their
    warnings by default, their info with ``-v``."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    if settings.handler is not None:
        root.removeHandler(settings.handler)
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbosity > 0 else logging.WARNING)
    settings.handler = handler
    logging.captureWarnings(True)
    # transformers logs through a handler of its own, bound to stderr at its import: when it is
    # imported already, send its records to ours instead.
    hf_logging = sys.modules.get("transformers.utils.logging")
    if hf_logging is not None and not settings.took_transformers_handler:
        hf_logging.disable_default_handler()
        hf_logging.enable_propagation()
        settings.took_transformers_handler = True


def unconfigure_logging() -> None:
    """Undo :func:`configure_logging`'s standard-library routing (the CLI called from Python
    leaves the process's logging as it found it)."""
    if settings.handler is not None:
        logging.getLogger().removeHandler(settings.handler)
        settings.handler = None
    logging.captureWarnings(False)
    if settings.took_transformers_handler:
        hf_logging = sys.modules["transformers.utils.logging"]
        hf_logging.disable_propagation()
        hf_logging.enable_default_handler()
        settings.took_transformers_handler = False
    settings.level, settings.format, settings.stream = logging.INFO, "console", None


class _LinesToLog(io.TextIOBase):
    """A text stream whose every line becomes a log event (``stream`` says which)."""

    def __init__(self, source: str, level: str, replaced: TextIO) -> None:
        self._source, self._level, self._replaced = source, level, replaced
        self._pending = ""
        self._lock = threading.Lock()
        self._log = structlog.get_logger("sec_cybert.output")

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False  # no live bars into a log

    def fileno(self) -> int:
        # Code that asks for the descriptor (faulthandler, a subprocess) gets the real one.
        return self._replaced.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._replaced, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            line, self._pending = self._pending, ""
        self._emit(line)

    def _emit(self, line: str) -> None:
        line = line.rsplit("\r", 1)[-1].rstrip()  # a bar redrawn with \r: its last state
        if line:
            getattr(self._log, self._level)(line, stream=self._source)


@contextlib.contextmanager
def library_output(*, stdout: bool = True) -> Iterator[None]:
    """While a command works: what libraries print on stdout becomes info events (``stdout``),
    and in JSON mode what they write on stderr becomes warning events, so that neither stream
    carries a stray line. Our own log lines go to the stream configure_logging was given."""
    saved = sys.stdout, sys.stderr
    if stdout:
        sys.stdout = _LinesToLog("stdout", "info", saved[0])  # type: ignore[assignment]
    if settings.format == "json" and not isinstance(sys.stderr, _LinesToLog):
        sys.stderr = _LinesToLog("stderr", "warning", saved[1])  # type: ignore[assignment]
    try:
        yield
    finally:
        for routed in {sys.stdout, sys.stderr} - set(saved):
            routed.flush()
        sys.stdout, sys.stderr = saved


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Errors only (unless -v), for work the run repeats with its own log lines."""
    if settings.level <= logging.DEBUG:
        yield
        return
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    try:
        yield
    finally:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(settings.level))

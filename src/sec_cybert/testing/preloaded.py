"""Python processes forked from one that imported torch, transformers and sec_cybert once.

A test that needs a process of its own (to kill it mid-step, to send it SIGTERM, to train the
same seed twice) used to start a fresh interpreter, and paid ~5 s of imports each time on a
2-core machine: eleven of them in one file. :class:`PreloadedPython` runs the same command line
in a process forked from multiprocessing's *forkserver*, whose server imported :data:`PRELOAD`
once. Each process still starts clean -- nothing of an earlier run is in its memory, its exit
status, stdout and stderr are its own (file descriptors 1 and 2, so a library writing to them
directly is captured too), ``os._exit`` and signals end it as they would end an interpreter --
and :meth:`PreloadedPython.run` answers with a :class:`subprocess.CompletedProcess`, so a test
swaps ``subprocess.run([sys.executable, ...])`` for ``preloaded.run([...])``.

    preloaded = PreloadedPython()
    done = preloaded.run(["runner.py", "--out", "run"], env={**os.environ, "X": "1"}, timeout=600)
    done.returncode, done.stdout, done.stderr

What differs from a fresh interpreter: the preloaded modules were imported in the server's
environment, so a variable they read at import time (``HF_HUB_OFFLINE``, for one) is the
server's, not the one passed to :meth:`~PreloadedPython.run` (the variables read at run time are
the ones passed; ``OMP_NUM_THREADS`` is applied to torch); and a module the script imports may
already be imported. Where that matters (a test that a fresh interpreter can load an export with
transformers alone), start a real interpreter. The :mod:`atexit` functions run at the script's
end, as at an interpreter's exit (a forked process would skip them).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

#: What the server imports once: what a training run in a test would import first.
PRELOAD = (
    "torch",
    "transformers",
    "transformers.trainer",
    "transformers.models.modernbert.modeling_modernbert",
    "datasets",
    "sec_cybert.cli",
    "sec_cybert.host.pipeline",
    "sec_cybert.stages.mlm",
    "sec_cybert.stages.finetune",
    "sec_cybert.testing",
)


class PreloadedPython:
    """``python ARGS`` as forked processes of one preloaded server (started at the first run).

    ``ARGS`` is a Python command line: a script's path or ``-c CODE``, then its arguments.
    multiprocessing keeps one forkserver a process: the first ``PreloadedPython`` to run sets
    what it preloads.
    """

    def __init__(self, preload: Sequence[str] = PRELOAD) -> None:
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(list(preload))

    def run(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run it to its end; like ``subprocess.run(..., capture_output=True, text=True)``."""
        args = [str(a) for a in args]
        if not args or (args[0] == "-c" and len(args) < 2):
            raise ValueError("args: a script's path or -c CODE, then the script's arguments")
        with tempfile.TemporaryDirectory(prefix="sec-cybert-preloaded-") as captured:
            stdout, stderr = Path(captured) / "stdout", Path(captured) / "stderr"
            process = self._context.Process(
                target=_run_command_line,
                args=(args, dict(os.environ if env is None else env), str(cwd or os.getcwd()), str(stdout), str(stderr)),
                name="preloaded-python",
            )
            process.start()
            process.join(timeout)
            if process.exitcode is None:
                process.kill()
                process.join()
                raise subprocess.TimeoutExpired([sys.executable, *args], timeout or 0, _read(stdout), _read(stderr))
            return subprocess.CompletedProcess([sys.executable, *args], process.exitcode, _read(stdout), _read(stderr))


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def _run_command_line(args: list[str], env: dict[str, str], cwd: str, stdout: str, stderr: str) -> None:
    """In the forked process: become ``python ARGS`` in ``cwd`` with ``env``, output to the files."""
    import runpy
    import types

    for fd, path in ((1, stdout), (2, stderr)):
        with open(path, "wb") as handle:
            os.dup2(handle.fileno(), fd)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    if "OMP_NUM_THREADS" in env:  # torch read it when the server imported it
        import torch

        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    # A fresh interpreter's start method, not the server's (a pool the script makes is its own).
    multiprocessing.set_start_method(None, force=True)
    try:
        if args[0] == "-c":
            sys.argv = ["-c", *args[2:]]
            main = sys.modules["__main__"] = types.ModuleType("__main__")  # what pickle finds there
            exec(compile(args[1], "<string>", "exec"), main.__dict__)
        else:
            sys.argv = list(args)
            sys.path.insert(0, str(Path(args[0]).resolve().parent))
            runpy.run_path(args[0], run_name="__main__")
    finally:
        atexit._run_exitfuncs()  # as an interpreter's exit does; multiprocessing's would skip them

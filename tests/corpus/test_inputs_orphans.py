"""A killed ``corpus build`` takes its worker processes with it.

Before the fix, SIGKILLing a build left its pool workers running as orphans (for 25+ minutes on
a real corpus: each finished its filing, then waited on a queue nobody would ever fill).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

#: The build's worker function is replaced by one that records its pid and then works for far
#: longer than the test waits, so only dying with the parent can make it go away in time.
SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import sec_cybert.corpus.build as build
    import sec_cybert.corpus.worker_lifetime as lifetime

    pids = Path(sys.argv[1])
    if sys.argv[4] == "watchdog-only":  # as where prctl is missing: the watchdog alone must do it
        lifetime._ask_kernel_to_kill_on_parent_death = lambda: False

    def slow_worker(task):
        (pids / str(os.getpid())).write_text("")
        time.sleep(600)

    build._build_worker = slow_worker
    build.build_shards(Path(sys.argv[2]), Path(sys.argv[3]), workers=2, min_chars=0)
    """
)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may wait for a reaper that never comes)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _wait_for(condition, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.parametrize("mode", ["prctl", "watchdog-only"])
def test_a_killed_build_takes_its_workers_with_it(tmp_path, mode):
    pids = tmp_path / "pids"
    pids.mkdir()
    html = tmp_path / "html"
    html.mkdir()
    for i in range(6):
        (html / f"f{i}.htm").write_text(f"<html><body><p>filing {i}</p></body></html>")
    script = tmp_path / "build.py"
    script.write_text(SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(pids), str(html), str(tmp_path / "out"), mode])
    workers: list[int] = []
    try:
        # Generous: importing the library on a busy machine can take many seconds.
        assert _wait_for(lambda: len(list(pids.iterdir())) >= 2, 120), "the workers never started"
        workers = [int(p.name) for p in pids.iterdir()]
        assert all(_running(pid) for pid in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        gone = _wait_for(lambda: not any(_running(pid) for pid in workers), 60)
        assert gone, f"workers {[p for p in workers if _running(p)]} outlived their killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in workers:  # processes this test started, by id: never left behind
            if _running(pid):
                os.kill(pid, signal.SIGKILL)

"""Pool workers that die with the process that started them.

A ``corpus build`` killed with SIGKILL (an OOM kill, a scheduler's time limit, ``kill -9``) runs
no clean-up, so its ``ProcessPoolExecutor`` workers lived on as orphans: each finished the
filing it held and then waited on a queue nobody would fill, for as long as it took the OS to
notice (25+ minutes were seen), holding memory and a CPU share meanwhile.

:func:`die_with_parent` is the pool's initializer. On Linux it asks the kernel to SIGKILL the
worker when its parent exits (``prctl(PR_SET_PDEATHSIG)``); everywhere, a daemon thread checks
the parent once a second and ends the worker when the parent is gone, in case the kernel call is
not available.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

#: From <sys/prctl.h>.
PR_SET_PDEATHSIG = 1
#: Seconds between the watchdog's looks at the parent.
WATCH_INTERVAL_S = 1.0


def _ask_kernel_to_kill_on_parent_death() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _parent_gone(parent_pid: int, started_under: int) -> bool:
    """Reparented (the parent died: the worker now hangs under init or a subreaper), or the
    process that made the pool no longer exists (a pool under a fork server)."""
    if os.getppid() != started_under:
        return True
    try:
        os.kill(parent_pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _watch(parent_pid: int, started_under: int) -> None:
    while not _parent_gone(parent_pid, started_under):
        time.sleep(WATCH_INTERVAL_S)
    os._exit(1)  # no clean-up: there is no one left to hand results to


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: end this worker when ``parent_pid`` (the pool's owner) goes away."""
    started_under = os.getppid()
    _ask_kernel_to_kill_on_parent_death()
    # The parent may have died before the kernel was asked: then no signal will ever come.
    if _parent_gone(parent_pid, started_under):
        os._exit(1)
    threading.Thread(
        target=_watch, args=(parent_pid, started_under), name="die-with-parent", daemon=True
    ).start()

"""Trackers on the one event channel: the plugin manager's hooks.

The host announces a stage's start, its training events, its end and the end of a run through
hooks (``on_stage_start``, ``on_train_event``, ``on_stage_finish``, ``on_run_finish``) and
nothing else. A pipeline's trackers hear them because, for as long as the run or the ablation
lasts, each one is registered on the plugin manager as a small plugin (:class:`TrackerPlugin`)
that turns those hooks into the ``Tracker`` Protocol's methods. So a plugin observer and a
tracker learn the same things, in the same call, and a new hook reaches both.

Tracking never stops training: a tracker whose method raises is logged once and left out of the
rest of the stage (the next stage tries it again).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pluggy
import structlog

from sec_cybert.core.components import Tracker
from sec_cybert.core.context import StageContext, StageResult
from sec_cybert.plugins.hookspecs import hookimpl

log = structlog.get_logger(__name__)

#: The name each tracker is registered under while a run lasts (``pm.get_name`` shows it).
PLUGIN_PREFIX = "sec_cybert.tracker"


class TrackerPlugin:
    """One tracker as a plugin of the run's hooks; its failures stay inside it."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self._failed = False

    def _call(self, method: str, *args: Any) -> None:
        if self._failed:
            return
        try:
            getattr(self.tracker, method)(*args)
        except Exception as exc:  # a tracker must never stop training
            self._failed = True
            log.warning(
                "tracker failed; it is off for the rest of this stage",
                tracker=type(self.tracker).__name__,
                method=method,
                error=f"{type(exc).__name__}: {exc}",
            )

    # trylast: plugin observers hear an event before the trackers record it, as before.
    @hookimpl(trylast=True)
    def on_stage_start(self, context: StageContext, config: Mapping[str, Any]) -> None:
        self._failed = False
        self._call("start_stage", context, config)

    @hookimpl(trylast=True)
    def on_train_event(self, event: str, step: int, metrics: Mapping[str, float], context: StageContext) -> None:
        self._call("log", context, event, step, metrics)

    @hookimpl(trylast=True)
    def on_stage_finish(self, context: StageContext, result: StageResult | None) -> None:
        self._call("finish_stage", context, result)
        self._failed = False

    @hookimpl(trylast=True)
    def on_run_finish(self, run_dir: Path, summary: Mapping[str, Any]) -> None:
        self._call("finish_run", run_dir, summary)


@contextlib.contextmanager
def trackers_attached(pm: pluggy.PluginManager, trackers: Sequence[Tracker]) -> Iterator[None]:
    """Register ``trackers`` on ``pm`` for the ``with`` block, then take them off again (also when
    it raises), so a process-wide plugin manager carries no tracker of a finished run. A tracker
    already attached (an ablation inside a run) is left to the outer block."""
    attached = []
    try:
        for tracker in trackers:
            name = f"{PLUGIN_PREFIX}.{id(tracker)}"
            if pm.get_plugin(name) is None:
                pm.register(TrackerPlugin(tracker), name=name)
                attached.append(name)
        yield
    finally:
        for name in reversed(attached):
            pm.unregister(name=name)

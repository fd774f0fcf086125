"""The ``jsonl`` tracker: every call the host makes, as one JSON line in ``<run_dir>/tracking.jsonl``."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs


def _numbers(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The numeric metrics of a training event."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _plain(value: Any) -> Any:
    """``value`` as strict JSON data: NaN and infinity become null, paths and the rest strings."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@attrs.frozen
class JsonlTracker:
    """Appends one JSON object per call to ``path``: ``tracking.jsonl`` in the run directory by
    default; a relative ``path`` is taken inside the run directory, an absolute one as it is.

    Each line has ``call`` (``start_stage``, ``log``, ``finish_stage`` or ``finish_run``) and
    ``time``; the calls about a stage add ``stage``, ``variant``, ``tag`` and ``seed``, which tell
    the fine-tunes of an ablation apart.
    """

    path: Path | None = None

    def file(self, run_dir: Path) -> Path:
        if self.path is None:
            return Path(run_dir) / "tracking.jsonl"
        return self.path if self.path.is_absolute() else Path(run_dir) / self.path

    def _write(self, run_dir: Path, record: Mapping[str, Any]) -> None:
        file = self.file(run_dir)
        file.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(_plain({**record, "time": round(time.time(), 3)}), allow_nan=False)
        with file.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def _about(self, context: Any) -> dict[str, Any]:
        """Which stage run a line belongs to."""
        return {
            "stage": context.stage_name,
            "variant": context.variant,
            "tag": context.tag,
            "seed": context.seed,
        }

    def start_stage(self, context: Any, config: Mapping[str, Any]) -> None:
        record = {"call": "start_stage", **self._about(context), "init_from": context.init_from}
        self._write(context.run_dir, {**record, "config": dict(config)})

    def log(self, context: Any, event: str, step: int, metrics: Mapping[str, float]) -> None:
        record = {"call": "log", **self._about(context), "event": event, "step": step}
        self._write(context.run_dir, {**record, "metrics": _numbers(metrics)})

    def finish_stage(self, context: Any, result: Any) -> None:
        record: dict[str, Any] = {"call": "finish_stage", **self._about(context)}
        if result is None:
            record["status"] = "failed"
        else:
            record.update(status="finished", output_dir=str(result.output_dir), metrics=dict(result.metrics))
        self._write(context.run_dir, record)

    def finish_run(self, run_dir: Path, summary: Mapping[str, Any]) -> None:
        self._write(run_dir, {"call": "finish_run", "run_dir": str(run_dir), **summary})

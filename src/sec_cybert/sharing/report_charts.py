"""The report's per-stage chart: training and eval loss, and the learning rate, by optimizer step.

A curve needs two points: a series with one logged point is drawn as a marker, and the report
says so beside the chart instead of showing an empty-looking panel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: What the report says when it draws no chart because matplotlib is missing.
PLOT_HINT = "pip install 'sec-cybert[plot]'"


def pyplot() -> Any | None:
    """matplotlib's pyplot on the file-only backend, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def series(events: Sequence[Mapping[str, Any]], key: str, event: str = "log") -> tuple[list[int], list[float]]:
    points = [(e["step"], e[key]) for e in events if e.get("event") == event and isinstance(e.get(key), (int, float))]
    return [p[0] for p in points], [float(p[1]) for p in points]


def stage_notes(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """What the chart of these events cannot show as a curve, in words."""
    notes = []
    for label, (steps, values) in (
        ("training loss", series(events, "loss")),
        ("learning rate", series(events, "learning_rate")),
    ):
        if len(steps) == 1:
            notes.append(f"{label}: one logged point (step {steps[0]}, {values[0]:.4g}), drawn as a dot, not a curve")
    if series(events, "loss")[0] and not series(events, "learning_rate")[0]:
        notes.append("learning rate: none logged")
    return notes


def stage_figure(plt: Any, name: str, events: Sequence[Mapping[str, Any]]) -> Any | None:
    """The stage's figure (loss on the left, learning rate on the right); None with nothing to draw."""
    steps, loss = series(events, "loss")
    lr_steps, lr = series(events, "learning_rate")
    eval_steps, eval_loss = series(events, "eval_loss", "evaluate")
    if not steps and not eval_steps:
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    # A line through one point draws nothing: such a series gets a marker.
    left.plot(steps, loss, marker="o" if len(steps) == 1 else None, label="train loss")
    if eval_steps:
        left.plot(eval_steps, eval_loss, "o-", label="eval loss")
    left.set_xlabel("optimizer step")
    left.set_ylabel("loss (nats)")
    left.legend()
    right.plot(lr_steps, lr, marker="o" if len(lr_steps) == 1 else None, color="tab:green")
    if not lr_steps:
        right.text(0.5, 0.5, "no learning rate logged", ha="center", va="center", transform=right.transAxes)
    right.set_xlabel("optimizer step")
    right.set_ylabel("learning rate")
    figure.suptitle(name, fontsize=10)
    figure.tight_layout()
    return figure


def plot_stage(plt: Any, name: str, events: Sequence[Mapping[str, Any]], out: Path) -> Path | None:
    """Save the stage's chart as ``out/<name>.png``; None when there was nothing to draw."""
    figure = stage_figure(plt, name, events)
    if figure is None:
        return None
    path = out / f"{name}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path

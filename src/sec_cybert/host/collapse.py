"""A fine-tune that predicts one class for everything, said the moment it finishes.

Its macro F1 and QWK still look like numbers; only ``<head>_collapsed_to`` in its metrics
(:func:`sec_cybert.stages.metrics.head_metrics`) shows that the head learnt nothing. The host
turns that into a warning line naming the stage, variant, seed, head and class, and into a
``"collapsed"`` event on the event channel, so observers (``on_train_event``) and trackers
(``Tracker.log``) learn it as they learn every other event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from sec_cybert.core.context import StageContext

log = structlog.get_logger(__name__)

COLLAPSED_EVENT = "collapsed"
_SUFFIX = "_collapsed_to"


def collapsed_heads(metrics: Mapping[str, Any]) -> dict[str, str]:
    """``{head: class}`` for every head whose final predictions all fell in one class."""
    return {
        key.removesuffix(_SUFFIX): ", ".join(map(str, value))
        for key, value in metrics.items()
        if key.endswith(_SUFFIX) and value
    }


def warn_if_collapsed(stage: str, metrics: Mapping[str, Any], context: StageContext) -> None:
    """Log a warning per collapsed head and send one ``collapsed`` event with
    ``{"<head>_collapsed": 1.0}`` per head (event metrics are numbers; the class is in the
    warning and in the stage's ``<head>_collapsed_to`` metric)."""
    heads = collapsed_heads(metrics)
    for head, label in heads.items():
        log.warning(
            "fine-tune collapsed: every prediction in one class",
            stage=stage,
            variant=context.variant,
            seed=context.seed,
            head=head,
            **{"class": label},
            split=metrics.get("evaluated_on"),
        )
    if heads:
        step = int(metrics.get("global_step") or 0)
        context.emit(COLLAPSED_EVENT, step, {f"{head}_collapsed": 1.0 for head in heads})

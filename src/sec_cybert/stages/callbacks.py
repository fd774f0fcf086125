"""The Trainer callback that turns the Trainer's events into ours: progress lines and ``context.emit``."""

from __future__ import annotations

import math
import time
from typing import Any

import structlog
from transformers import TrainerCallback

from sec_cybert.stages.training import perplexity

log = structlog.get_logger(__name__)


class EventCallback(TrainerCallback):
    """Forwards Trainer events to ``context.emit`` (the ``on_train_event`` hook and the trackers)
    and logs progress through structlog.

    Adds ``tokens_per_second`` (from the Trainer's count of non-padding input tokens) and, for MLM
    stages, ``eval_perplexity`` (= e^eval_loss, the loss being a mean cross-entropy in nats).
    """

    def __init__(self, context: Any, *, perplexity: bool = False) -> None:
        self.context = context
        self.report_perplexity = perplexity  # only an MLM loss has a perplexity
        self.stage_name = context.stage_name
        self._last: tuple[float, int] | None = None

    def _emit(self, event: str, state: Any, metrics: dict[str, float]) -> None:
        if state.is_world_process_zero:
            self.context.emit(event, state.global_step, metrics)

    def on_log(self, args, state, control, logs=None, **kwargs):
        metrics = dict(logs or {})
        tokens = int(state.num_input_tokens_seen or 0)
        now = time.perf_counter()
        if self._last is not None and now > self._last[0] and tokens > self._last[1]:
            metrics["tokens_per_second"] = (tokens - self._last[1]) / (now - self._last[0])
        self._last = (now, tokens)
        metrics["tokens_seen"] = tokens
        if self.report_perplexity and "eval_loss" in metrics:
            metrics["eval_perplexity"] = perplexity(metrics["eval_loss"])
        if state.is_world_process_zero:
            log.info("train", stage=self.stage_name, step=state.global_step, **_rounded(metrics))
        self._emit("log", state, metrics)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self._emit("evaluate", state, dict(metrics or {}))

    def on_save(self, args, state, control, **kwargs):
        self._emit("checkpoint", state, {"step": float(state.global_step)})


def _rounded(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(val, 6) if isinstance(val, float) else val) for k, val in metrics.items()}


class EpochToCollator(TrainerCallback):
    """Tells a :class:`~sec_cybert.collator.MaskingCollator` which epoch is starting.

    The Trainer calls ``on_epoch_begin`` before it creates the epoch's DataLoader iterator (and
    with it the worker processes, which get a copy of the collator), so every copy sees it. On a
    run resumed mid-epoch ``state.epoch`` is fractional; its floor is the epoch.
    """

    def __init__(self, collator: Any) -> None:
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.collator.epoch = int(math.floor((state.epoch or 0.0) + 1e-6))

"""The Trainer callbacks that turn the Trainer's events into ours: progress, ``context.emit``,
the stage's training log, and the collator's epoch."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from transformers import TrainerCallback

from sec_cybert.stages.throughput import TokenCounts, interval_rates
from sec_cybert.stages.training import perplexity

if TYPE_CHECKING:
    from sec_cybert.core.context import StageContext

log = structlog.get_logger(__name__)

#: Where a stage's training events are kept, one JSON object per line (``sec-cybert report`` reads it).
TRAINING_LOG = "training-log.jsonl"
PROGRESS_ENV = "SEC_CYBERT_PROGRESS"  # the CLI's name for it too (sec_cybert.cli.PROGRESS_ENV)


def progress_bar_wanted() -> bool:
    """A live bar on a terminal; periodic lines elsewhere. ``SEC_CYBERT_PROGRESS`` (set by the
    CLI: ``--quiet`` turns it off) overrides: ``on``/``off``, or ``auto``."""
    value = os.environ.get(PROGRESS_ENV, "auto").strip().lower()
    if value in ("0", "off", "false", "no"):
        return False
    if value in ("1", "on", "true", "yes"):
        return True
    return sys.stderr.isatty()


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class EventCallback(TrainerCallback):
    """Forwards Trainer events to ``context.emit`` (the ``on_train_event`` hook and the
    trackers), appends them to ``<output_dir>/training-log.jsonl``, and shows progress: a tqdm
    bar (step/total, loss, real tokens/s, ETA) on a terminal, else one ``train`` line per
    logging step with step/total and ETA.

    Adds ``tokens_seen`` (real, non-padding input tokens so far) and, over the time since the
    last log (evaluation and saving left out), from the ``counts`` a
    :class:`~sec_cybert.stages.throughput.CountingTrainer` keeps: ``tokens_per_second`` (every
    token slot, padding included), ``real_tokens_per_second``, ``padding_efficiency`` (real /
    all) and, when ``peak_flops`` (one device's) is known, ``mfu`` (model FLOPs utilisation,
    :mod:`sec_cybert.planning.flops`). For MLM stages it adds ``eval_perplexity`` (= e^eval_loss, the
    loss being a mean cross-entropy in nats).
    """

    def __init__(
        self,
        context: StageContext,
        *,
        perplexity: bool = False,
        counts: TokenCounts | None = None,
        peak_flops: float | None = None,
        train_loss: Callable[[int], float] | None = None,
    ) -> None:
        self.context = context
        #: The run's train_loss at a step, from its first step (resumes included), when known: it
        #: replaces the Trainer's, which averages the steps of its last train() call only.
        self.train_loss = train_loss
        self.report_perplexity = perplexity  # only an MLM loss has a perplexity
        self.stage_name = context.stage_name
        self.counts = counts if counts is not None else TokenCounts()
        self.peak_flops = peak_flops
        self._last: tuple[float, TokenCounts] | None = None
        self._start: tuple[float, int] | None = None
        self._bar: Any = None
        self._log_path = Path(context.output_dir) / TRAINING_LOG if context.output_dir else None

    def _emit(self, event: str, state: Any, metrics: dict[str, float]) -> None:
        if not state.is_world_process_zero:
            return
        self.context.emit(event, state.global_step, metrics)
        if self._log_path is not None:
            record = {"event": event, "step": state.global_step, "time": time.time(), **metrics}
            with self._log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, default=float) + "\n")

    def _eta(self, state: Any) -> str | None:
        if self._start is None or state.global_step <= self._start[1]:
            return None
        per_step = (time.perf_counter() - self._start[0]) / (state.global_step - self._start[1])
        return _duration(per_step * (state.max_steps - state.global_step))

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = (time.perf_counter(), state.global_step)
        if not state.is_world_process_zero:
            return
        if self._log_path is not None:
            drop_entries_after(self._log_path, state.global_step)
        log.info(
            "training",
            stage=self.stage_name,
            variant=self.context.variant,
            steps=state.max_steps,
            **({"resumed_at": state.global_step} if state.global_step else {}),
        )
        if progress_bar_wanted():
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=state.max_steps,
                initial=state.global_step,
                desc=f"{self.stage_name} ({self.context.variant})",
                unit="step",
                dynamic_ncols=True,
                file=sys.stderr,
            )

    def on_step_end(self, args, state, control, **kwargs):
        if self._bar is not None:
            self._bar.update(state.global_step - self._bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        metrics = dict(logs or {})
        counts = self.counts.snapshot()
        now = time.perf_counter()
        if self._last is not None:
            metrics.update(
                interval_rates(
                    self._last[1],
                    counts,
                    now - self._last[0],
                    peak_flops=self.peak_flops,
                    devices=args.world_size,
                )
            )
        self._last = (now, counts)
        metrics["tokens_seen"] = int(state.num_input_tokens_seen or 0)
        if self.train_loss is not None and "train_loss" in metrics:
            metrics["train_loss"] = self.train_loss(state.global_step)
        if self.report_perplexity and "eval_loss" in metrics:
            metrics["eval_perplexity"] = perplexity(metrics["eval_loss"])
        if state.is_world_process_zero:
            progress = {"step": f"{state.global_step}/{state.max_steps}", "eta": self._eta(state)}
            if self._bar is not None:
                shown = {
                    k: metrics[k]
                    for k in ("loss", "eval_loss", "real_tokens_per_second", "mfu")
                    if k in metrics
                }
                self._bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
                log.debug("train", stage=self.stage_name, **progress, **_rounded(metrics))
            else:
                log.info("train", stage=self.stage_name, **progress, **_rounded(metrics))
        self._emit("log", state, metrics)

    def _restart_clock(self) -> None:
        # Evaluation and saving are not training: the next tokens/s starts after them.
        if self._last is not None:
            self._last = (time.perf_counter(), self._last[1])

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self._emit("evaluate", state, dict(metrics or {}))
        self._restart_clock()

    def on_save(self, args, state, control, **kwargs):
        self._emit("checkpoint", state, {"step": float(state.global_step)})
        self._restart_clock()

    def on_train_end(self, args, state, control, **kwargs):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def drop_entries_after(path: Path, step: int) -> int:
    """Drop the training-log entries of steps after ``step`` (the step training starts from): a
    resumed run logs the steps after its checkpoint again, so the log holds each step once. A
    ``train_loss`` summary goes too, whatever its step: it closed a ``train()`` that stopped
    early (a SIGTERM at step 3 logs one at step 3), and the resumed run writes the stage's own
    at its end. A line cut short by a kill goes too. Returns how many entries were dropped."""
    if not path.is_file():
        return 0
    kept: list[str] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines:
        try:
            entry = json.loads(line)
            entry_step = entry["step"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(entry_step, (int, float)) and entry_step <= step and "train_loss" not in entry:
            kept.append(line)
    dropped = len(lines) - len(kept)
    if dropped:
        tmp = path.with_name(path.name + ".part")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(tmp, path)
        log.info("training log: entries after the resumed step dropped", step=step, dropped=dropped)
    return dropped


def _rounded(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(val, 6) if isinstance(val, float) else val) for k, val in metrics.items()}


class EpochToCollator(TrainerCallback):
    """Tells a :class:`~sec_cybert.datapath.collator.MaskingCollator` which epoch is starting.

    The Trainer calls ``on_epoch_begin`` before it creates the epoch's DataLoader iterator (and
    with it the worker processes, which get a copy of the collator), so every copy sees it. On a
    run resumed mid-epoch ``state.epoch`` is fractional; its floor is the epoch.
    """

    def __init__(self, collator: Any) -> None:
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.collator.epoch = int(math.floor((state.epoch or 0.0) + 1e-6))

"""Training that stops on bad numbers, and on SIGTERM with a checkpoint.

* :class:`NumericalGuard` checks every optimizer step's gradients before the step is taken: a
  non-finite gradient (a NaN or inf loss makes every gradient one) stops the stage -- naming the
  step, the batch's training rows and the last good checkpoint -- or, with
  ``on_nonfinite: skip``, zeroes that step's gradients and counts it. A gradient norm above
  ``grad_norm_alarm`` at ``grad_norm_alarm_steps`` logging steps in a row stops it too (the
  norm the Trainer logs, before clipping, so set ``logging_steps: 1`` to watch every step).
* :func:`require_finite` refuses weights with a NaN or inf: before a final model is saved, and
  when a checkpoint is loaded as ``init_from``.
* :class:`TargetGuard` stops an MLM stage whose batches never carry a target (a masker that
  chooses none trains at loss 0 with zero gradients, and would "finish" having learned nothing):
  after ``patience`` steps with none, or at the last step of a shorter run, naming the step.
* :class:`Preemption` turns SIGTERM (a cluster's preemption notice) into "finish this step,
  save a checkpoint, stop", then :class:`~sec_cybert.errors.Preempted`; the CLI says that the
  same command resumes. Ranks agree on the step to stop at (the flag is all-reduced), so none
  waits for another at a collective. SIGINT keeps its default: Ctrl-C stops at once.
* :class:`StopOnSigterm` covers the rest of a stage -- reading and tokenizing its corpus,
  loading the model, saving the final one -- where there is no step to finish: SIGTERM there
  raises :class:`~sec_cybert.errors.Preempted` at once (one line, status 143) instead of ending
  the process silently. Inside it, :class:`Preemption` takes over for the training steps.
"""

from __future__ import annotations

import math
import signal
import threading
from typing import Any

import structlog
import torch
from transformers import TrainerCallback

from sec_cybert.errors import DataError, NumericalError, Preempted

log = structlog.get_logger(__name__)


def nonfinite_tensors(model: Any) -> list[str]:
    """Names of the parameters holding a NaN or an inf."""
    return [name for name, p in model.named_parameters() if not torch.isfinite(p.detach()).all()]


def require_finite(model: Any, what: str) -> None:
    bad = nonfinite_tensors(model)
    if bad:
        raise DataError(
            f"{what} has non-finite weights (NaN or inf) in {len(bad)} tensors, e.g. {bad[0]}; "
            "use an earlier checkpoint, or retrain the stage that wrote it"
        )


def _all_finite(tensors: list[Any]) -> bool:
    """One fused norm over every gradient, one device sync: the norm is NaN or inf exactly when
    some element is (or when finite values overflow it, which is a divergence as well)."""
    total_norm = getattr(torch.nn.utils, "get_total_norm", None)  # torch >= 2.6
    if total_norm is None:
        return all(bool(torch.isfinite(t).all()) for t in tensors)
    return bool(torch.isfinite(total_norm(tensors)))


class NumericalGuard(TrainerCallback):
    """See the module docstring. ``last_checkpoint`` names where a stopped run resumes from;
    ``batch_rows`` returns the training rows of the batch just collated (when known)."""

    def __init__(
        self,
        *,
        on_nonfinite: str,
        grad_norm_alarm: float | None,
        alarm_steps: int,
        last_checkpoint: Any,
        batch_rows: Any,
    ) -> None:
        self.on_nonfinite = on_nonfinite
        self.grad_norm_alarm = grad_norm_alarm
        self.alarm_steps = alarm_steps
        self.last_checkpoint = last_checkpoint
        self.batch_rows = batch_rows
        self.skipped_steps: list[int] = []
        self._over = 0

    def _where(self, step: int) -> str:
        rows = self.batch_rows()
        checkpoint = self.last_checkpoint()
        resume = f"the last good checkpoint is {checkpoint}" if checkpoint else "no checkpoint was written yet"
        return f"at step {step} (training rows {rows if rows else 'unknown'}); {resume}"

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads or _all_finite(grads):
            return
        step = state.global_step + 1
        if self.on_nonfinite == "skip":
            for g in grads:
                g.zero_()
            self.skipped_steps.append(step)
            log.warning("non-finite gradients: batch skipped", step=step, rows=self.batch_rows())
            return
        raise NumericalError(
            f"non-finite loss or gradients {self._where(step)}: lower learning_rate or check the data "
            "of that batch; on_nonfinite: skip skips such batches instead"
        )

    def on_log(self, args, state, control, logs=None, **kwargs):
        norm = (logs or {}).get("grad_norm")
        if norm is None:
            return
        if not math.isfinite(norm) and self.on_nonfinite != "skip":
            raise NumericalError(f"non-finite gradient norm {self._where(state.global_step)}")
        if self.grad_norm_alarm is None:
            return
        self._over = self._over + 1 if norm > self.grad_norm_alarm else 0
        if self._over >= self.alarm_steps:
            raise NumericalError(
                f"gradient norm above grad_norm_alarm={self.grad_norm_alarm} for {self._over} logged steps "
                f"(last {norm:.3g}) {self._where(state.global_step)}: lower learning_rate, raise the alarm, "
                "or check the data"
            )


class TargetGuard(TrainerCallback):
    """See the module docstring. ``totals`` is the run's
    :class:`~sec_cybert.stages.throughput.RunTotals`; ``masker`` names what chose the targets."""

    def __init__(self, totals: Any, *, stage: str, masker: str, patience: int = 10) -> None:
        self.totals = totals
        self.stage = stage
        self.masker = masker
        self.patience = patience
        self._first_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._first_step = state.global_step + 1

    def on_step_end(self, args, state, control, **kwargs):
        if self.totals.targets != 0:  # some seen, or not an MLM batch (None)
            return
        steps = state.global_step - self._first_step + 1
        if steps >= self.patience or state.global_step >= state.max_steps:
            raise DataError(
                f"no masked-LM targets in any batch of steps {self._first_step}-{state.global_step} of "
                f"{self.stage}: {self.masker} chose none, so the loss is 0 and nothing is learned; check its "
                "settings (probability), the plugin that provides it, and that the texts are not all "
                "special or unknown tokens"
            )


class _SigtermHandler:
    """Installs ``self._handle`` for SIGTERM while the ``with`` block runs, then restores the
    handler it replaced (signals can only be handled in the main thread)."""

    _previous: Any = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: Any) -> None:
        raise NotImplementedError


class StopOnSigterm(_SigtermHandler):
    """SIGTERM outside the training steps of ``stage``: stop now (see the module docstring).
    ``during`` names another phase (the pipeline's start-up) in the message instead."""

    def __init__(self, stage: str, *, during: str | None = None) -> None:
        self.stage = stage
        self.during = during or (
            f"in {stage} outside its training steps (while it prepared its data or model, or saved)"
        )

    def _handle(self, signum: int, frame: Any) -> None:
        raise Preempted(
            f"stopped by SIGTERM {self.during}; run the same command again to resume from its last checkpoint"
        )


class Preemption(_SigtermHandler, TrainerCallback):
    """SIGTERM -> save and stop at the end of the current step (see the module docstring)."""

    def __init__(self) -> None:
        self.requested = False
        self.stopped_at: int | None = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def _agreed(self) -> bool:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([1.0 if self.requested else 0.0])
            if torch.distributed.get_backend() == "nccl":
                flag = flag.cuda()
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            return bool(flag.item())
        return self.requested

    def on_step_end(self, args, state, control, **kwargs):
        if self._agreed():
            self.requested = True
            self.stopped_at = state.global_step
            control.should_save = True
            control.should_training_stop = True
        return control

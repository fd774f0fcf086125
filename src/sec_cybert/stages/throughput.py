"""What the training steps process: token slots, real (non-padding) tokens and model FLOPs.

The Trainer's own count (``include_num_input_tokens_seen``) keeps one number, and in its
``non_padding`` mode sums ``attention_mask``, which a packed batch (a mask per attention kind)
does not have as a tensor. So a Trainer subclass counts both itself, in ``training_step``: in
the main process, from the batch the model trains on. (A counter on the collator would miss
what DataLoader workers collate: each holds its own copy.) The counts are summed over ranks
with one gather per micro-batch, as the Trainer's own count does. The batch is read before the
step is queued (its copy to the host waits for the batch alone) and the gather is issued after
it; the Trainer waits for the step's loss right after anyway (its NaN filter).

``state.num_input_tokens_seen`` keeps its meaning (real tokens so far; saved in checkpoints,
so it survives a resume). :class:`~sec_cybert.stages.callbacks.EventCallback` turns the
counts into rates at each logging step (:func:`interval_rates`).

The same gather carries two more numbers of each micro-batch: its MLM targets (labels that are
not -100, so a batch without any is counted, and a stage where targets never appear is stopped)
and its loss, summed in float64 into :class:`RunTotals`. That sum is kept in every checkpoint
(:data:`~sec_cybert.stages.checkpointing.RUN_STATE`) and taken up again on resume, so
``train_loss`` (``loss_sum / global_step``) of a resumed run is the uninterrupted run's; the
Trainer's own averages only the steps of its last ``train()`` call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs
import structlog
import torch
from transformers import Trainer

from sec_cybert.datapath.masking import IGNORE_INDEX
from sec_cybert.planning.flops import EncoderShape, training_flops

log = structlog.get_logger(__name__)


@attrs.define
class TokenCounts:
    """Running totals of one training run, over all ranks.

    ``tokens``: every slot of every batch, padding included (what the device computed on);
    ``real_tokens``: the non-padding ones; ``flops``: the model FLOPs of the real tokens
    (:func:`sec_cybert.planning.flops.training_flops`), 0 when the architecture has no formula.
    """

    tokens: int = 0
    real_tokens: int = 0
    flops: int = 0

    def snapshot(self) -> TokenCounts:
        return TokenCounts(self.tokens, self.real_tokens, self.flops)


@attrs.define
class RunTotals:
    """What a run keeps from its first step on, resumes included (saved in each checkpoint).

    ``targets``: MLM targets seen, ``None`` while no batch had per-token labels (a fine-tune's
    labels are per sequence: nothing to count); ``batches_without_targets``: micro-batches (over
    all ranks) that had none; ``loss_sum``: the sum of the micro-batches' losses (each the mean
    over ranks), in float64.
    """

    targets: int | None = None
    batches_without_targets: int = 0
    loss_sum: float = 0.0

    def train_loss(self, global_step: int) -> float:
        """The mean loss per optimizer step over the whole run."""
        return self.loss_sum / max(global_step, 1)


def _real_mask(inputs: Mapping[str, Any], pad_token_id: int | None) -> torch.Tensor:
    ids = inputs["input_ids"]
    mask = inputs.get("attention_mask")
    if isinstance(mask, torch.Tensor) and mask.shape == ids.shape:
        return mask != 0
    if pad_token_id is None:
        return torch.ones_like(ids, dtype=torch.bool)
    # A packed batch's mask is a dict of per-layer-kind masks: padding is then the pad token.
    # (A masker's random replacement can draw the pad id: ~1e-6 of tokens, not worth more.)
    return ids != pad_token_id


def segment_lengths(real: torch.Tensor, position_ids: torch.Tensor | None = None) -> list[int]:
    """Lengths of the independent attention segments of a batch: each row's real tokens, or,
    with ``position_ids`` (packed paragraphs), each run of consecutive positions -- a segment
    ends where the next position is not this one + 1, as in
    :func:`sec_cybert.datapath.document_attention.segment_ids`."""
    if position_ids is None or position_ids.shape != real.shape:
        return [int(n) for n in real.sum(dim=1).tolist() if n]
    starts = torch.ones_like(real)
    starts[:, 1:] = position_ids[:, 1:] - position_ids[:, :-1] != 1  # a row always starts a segment
    flat_starts = starts[real]
    if flat_starts.numel() == 0:
        return []
    segment = torch.cumsum(flat_starts.long(), dim=0) - 1
    return [int(n) for n in torch.bincount(segment).tolist() if n]


def batch_counts(
    inputs: Mapping[str, Any],
    *,
    pad_token_id: int | None,
    shape: EncoderShape | None,
    head: str,
) -> tuple[int, int, int]:
    """(token slots, real tokens, model FLOPs) of one micro-batch. ``head``: ``"dense"`` (an
    MLM head decoding every real token), ``"sparse"`` (the masked ones: ``labels != -100``)
    or ``"none"`` (a sequence-level head, too small to count)."""
    ids = inputs["input_ids"]
    # One copy to the host each: the segment arithmetic is small and branchy, not GPU work.
    real = _real_mask(inputs, pad_token_id).cpu()
    n_real = int(real.sum())
    flops = 0
    if shape is not None:
        boundaries = inputs.get("cu_seq_lens_q")
        positions = inputs.get("position_ids")
        if isinstance(boundaries, torch.Tensor):
            # Flash-attn's flattened batch: one row, the segments given outright.
            lengths = [int(n) for n in torch.diff(boundaries.cpu()).tolist() if n]
        else:
            positions = positions.cpu() if isinstance(positions, torch.Tensor) else None
            lengths = segment_lengths(real, positions)
        predicted = 0
        if head == "dense":
            predicted = n_real
        elif head == "sparse" and isinstance(inputs.get("labels"), torch.Tensor):
            predicted = int((inputs["labels"] != IGNORE_INDEX).sum())
        flops = training_flops(shape, lengths, predicted_tokens=min(predicted, n_real))
    return int(ids.numel()), n_real, flops


def _head_kind(model: Any) -> str:
    if not type(model).__name__.endswith("ForMaskedLM"):
        return "none"
    return "sparse" if getattr(model, "sparse_prediction", False) else "dense"


def _shape_of(model: Any) -> EncoderShape | None:
    try:
        return EncoderShape.from_config(model.config)
    except (ValueError, AttributeError, TypeError) as exc:
        log.info("no FLOPs formula for this model: MFU not reported", reason=str(exc))
        return None


class CountingTrainer(Trainer):
    """``transformers.Trainer`` that counts token slots, real tokens and model FLOPs into
    ``counts`` (see the module docstring). Give it ``include_num_input_tokens_seen="no"``:
    it keeps ``state.num_input_tokens_seen`` itself."""

    def __init__(self, *args: Any, counts: TokenCounts, totals: RunTotals | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counts = counts
        self.totals = totals if totals is not None else RunTotals()
        self._shape = _shape_of(self.model)
        self._head = _head_kind(self.model)
        tokenizer = getattr(self.data_collator, "tokenizer", None) or self.processing_class
        pad = getattr(tokenizer, "pad_token_id", None)
        if pad is None:
            pad = getattr(getattr(self.model, "config", None), "pad_token_id", None)
        self._pad_token_id = pad

    def training_step(
        self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        # Counted before the step is queued: the batch's copy to the host then waits for the
        # batch alone, not for its forward and backward.
        counted = batch_counts(inputs, pad_token_id=self._pad_token_id, shape=self._shape, head=self._head)
        targets = _target_count(inputs, self.args.device)
        loss = super().training_step(model, inputs, num_items_in_batch)
        device = self.args.device
        # One gather for all of it: the loss travels as the bits of a float64 in an int64 slot.
        local = torch.cat(
            [
                torch.tensor(counted, dtype=torch.int64, device=device),
                targets,
                loss.detach().to(device=device, dtype=torch.float64).reshape(1).view(torch.int64),
            ]
        )
        gathered = self.accelerator.gather(local).view(-1, 5).cpu()
        tokens, real, flops, n_targets = (int(n) for n in gathered[:, :4].sum(dim=0).tolist())
        step_loss = float(gathered[:, 4].contiguous().view(torch.float64).mean())
        self.counts.tokens += tokens
        self.counts.real_tokens += real
        self.counts.flops += flops
        totals = self.totals
        if n_targets >= 0:  # every rank's batch has per-token labels
            totals.targets = (totals.targets or 0) + n_targets
            totals.batches_without_targets += n_targets == 0
        if math.isfinite(step_loss):  # a skipped non-finite step adds nothing (the guard counts it)
            totals.loss_sum += step_loss
        self.state.num_input_tokens_seen += real
        return loss


def _target_count(inputs: Mapping[str, Any], device: Any) -> torch.Tensor:
    """``[targets]`` of a batch with one label per token (-100: none), else ``[-1]``; left on the
    device, so that counting waits for nothing."""
    labels, ids = inputs.get("labels"), inputs.get("input_ids")
    if not isinstance(labels, torch.Tensor) or not isinstance(ids, torch.Tensor) or labels.shape != ids.shape:
        # Far below zero: the sum over ranks stays negative, read as "not counted".
        return torch.full((1,), -(1 << 40), dtype=torch.int64, device=device)
    return (labels != IGNORE_INDEX).sum().to(device=device, dtype=torch.int64).reshape(1)


def interval_rates(
    before: TokenCounts,
    after: TokenCounts,
    seconds: float,
    *,
    peak_flops: float | None = None,
    devices: int = 1,
) -> dict[str, float]:
    """The rates between two counts ``seconds`` apart: ``tokens_per_second`` (all slots),
    ``real_tokens_per_second``, ``padding_efficiency`` (real / all) and, when the peak of one
    device is known, ``mfu`` (model FLOP/s over the ``devices``' summed peak)."""
    tokens = after.tokens - before.tokens
    if seconds <= 0 or tokens <= 0:
        return {}
    real = after.real_tokens - before.real_tokens
    rates = {
        "tokens_per_second": tokens / seconds,
        "real_tokens_per_second": real / seconds,
        "padding_efficiency": real / tokens,
    }
    flops = after.flops - before.flops
    if peak_flops and flops > 0:
        rates["mfu"] = flops / seconds / (peak_flops * max(1, devices))
    return rates

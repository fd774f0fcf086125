"""The MLM data collator: pads token blocks to a batch and lets a Masker choose the targets.

Masks are drawn at collate time, so every epoch sees a fresh masking of the same text
(RoBERTa's dynamic masking). With ``seed`` set a batch's masks are a function of
``(seed, epoch, batch)`` alone, where the batch is named by its features' ``row`` (their
indices in the training set) when every feature carries one, else by its token ids: the same
batch gets the same masks whichever process or DataLoader worker collates it, however many
workers there are and whatever the global RNG or the loader's generator holds -- so a run
resumed from a checkpoint masks exactly as the uninterrupted run did.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import torch
from attrs import validators as v

from sec_cybert.datapath.document_attention import DocumentAttention
from sec_cybert.datapath.masking import IGNORE_INDEX
from sec_cybert.errors import DataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from sec_cybert.core.components import Masker

__all__ = ["MaskingCollator"]


def _optional_positive_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer or None, got {value!r}")


def _optional_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"{attribute.name} must be an integer or None, got {value!r}")


def _row(values: Any, what: str, index: int) -> torch.Tensor:
    try:
        row = torch.as_tensor(values, dtype=torch.long)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise DataError(f"feature {index}: {what} must be a list of integers ({exc})") from exc
    if row.dim() != 1:
        raise DataError(
            f"feature {index}: {what} must be a flat list of integers, got shape {tuple(row.shape)}"
        )
    return row


def _padded_column(
    features: Sequence[Mapping[str, Any]], key: str, lengths: list[int], width: int, *, fill: int, fix: str
) -> torch.Tensor:
    """``[B, width]`` of every feature's ``key`` (one value per token), padded with ``fill``."""
    out = torch.full((len(features), width), fill, dtype=torch.long)
    for i, f in enumerate(features):
        row = _row(f[key], key, i)
        if len(row) != lengths[i]:
            raise DataError(f"feature {i}: {key} has {len(row)} entries but input_ids has {lengths[i]}; {fix}")
        out[i, : lengths[i]] = row
    return out


@attrs.define
class MaskingCollator:
    """Collate ``{"input_ids": [...], "word_ids": [...]?, ...}`` features into an MLM batch.

    Returns ``input_ids`` (corrupted), ``attention_mask`` and ``labels`` (-100 where no loss is
    taken). Rows are padded to the longest in the batch (rounded up to ``pad_to_multiple_of``),
    ``input_ids`` with the tokenizer's pad token and ``word_ids`` with -1. Special tokens (any
    id in ``tokenizer.all_special_ids``, ``[UNK]`` included, as in transformers) and padding
    are never targets. Other keys in a feature (``id``, ``n_tokens`` ...) are ignored. Features
    that already carry ``labels`` (see :func:`premask`) are padded and passed through unmasked.

    ``word_ids`` are passed to the masker when every feature has them, and are required when
    the masker's ``needs_word_ids`` is true.

    Features with ``position_ids`` (packed rows: positions restart at 0 where a document
    starts) need ``attention``, the model's :class:`~sec_cybert.datapath.document_attention.DocumentAttention`:
    the batch then carries ``position_ids`` (shifted where the model's position table starts
    past 0) and attention that never crosses a document: a dict of 4D masks (ModernBERT), one
    ``[B, 1, T, T]`` mask (BERT, RoBERTa and the other single-mask encoders), or for flash-attn
    one flattened row with varlen kwargs. Masks are drawn on the padded rows either way, so a
    packed batch masks the same under every implementation.
    """

    tokenizer: PreTrainedTokenizerBase
    masker: Masker
    pad_to_multiple_of: int | None = attrs.field(default=None, validator=_optional_positive_int)
    seed: int | None = attrs.field(default=None, validator=_optional_int)
    #: The training epoch, set by ``stages.callbacks.EpochToCollator`` at each epoch's start, so a batch that
    #: recurs in another epoch is masked afresh. Outside the Trainer, set it yourself each epoch: a
    #: seeded collator masks the same batch alike within an epoch.
    epoch: int = 0
    #: How the model keeps the documents of a packed row apart; needed when features carry
    #: ``position_ids`` (``DocumentAttention.from_config(model.config)``).
    attention: DocumentAttention | None = attrs.field(
        default=None, validator=v.optional(v.instance_of(DocumentAttention))
    )
    _special_ids: torch.Tensor = attrs.field(init=False, repr=False)
    #: The training rows of the batch collated last in this process (a numerical guard names them).
    last_rows: list[int] | None = attrs.field(init=False, default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        name = type(self.tokenizer).__name__
        if self.tokenizer.mask_token_id is None:
            raise DataError(
                f"the tokenizer ({name}) has no mask token, which masked-language modelling needs: "
                "use an encoder whose tokenizer defines one, or add it with "
                "tokenizer.add_special_tokens({'mask_token': '[MASK]'}) and resize the model's embeddings"
            )
        if self.tokenizer.pad_token_id is None:
            raise DataError(
                f"the tokenizer ({name}) has no pad token, which batching paragraphs of different "
                "lengths needs: set one, e.g. tokenizer.add_special_tokens({'pad_token': '[PAD]'}) "
                "(and resize the model's embeddings), or tokenizer.pad_token = tokenizer.eos_token"
            )
        special = sorted({int(i) for i in self.tokenizer.all_special_ids if i is not None})
        self._special_ids = torch.tensor(special, dtype=torch.long)

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if len(features) == 0:
            raise DataError("cannot collate an empty batch")
        needs_word_ids = bool(getattr(self.masker, "needs_word_ids", False))
        has_word_ids = [f.get("word_ids") is not None for f in features]
        premasked = all("labels" in f for f in features)
        if needs_word_ids and not premasked and not all(has_word_ids):
            raise DataError(
                f"the masker {type(self.masker).__name__} needs word ids but "
                f"{has_word_ids.count(False)} of {len(features)} features have no `word_ids`: use a "
                "chunker that provides them (e.g. `paragraph`), and keep the column in the dataset "
                "(a transformers Trainer drops it unless remove_unused_columns=False)"
            )
        ids_rows = [
            _row(f["input_ids"], "input_ids", i) if "input_ids" in f else None for i, f in enumerate(features)
        ]
        missing = [i for i, r in enumerate(ids_rows) if r is None]
        if missing:
            raise DataError(
                f"features {missing[:10]} have no `input_ids`; a chunker must produce that column"
            )
        lengths = [len(r) for r in ids_rows]
        if min(lengths) == 0:
            raise DataError(f"feature {lengths.index(0)} has no tokens; chunkers must drop empty texts")
        width = max(lengths)
        if self.pad_to_multiple_of is not None:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of

        input_ids = torch.full((len(features), width), int(self.tokenizer.pad_token_id), dtype=torch.long)
        attention_mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, row in enumerate(ids_rows):
            input_ids[i, : len(row)] = row
            attention_mask[i, : len(row)] = 1
        position_ids = self._position_ids(features, lengths, width)
        if premasked:
            # Already masked (a fixed validation set): pad, never re-mask.
            labels = _padded_column(
                features, "labels", lengths, width, fill=IGNORE_INDEX,
                fix="a premasked row holds one label per token (-100 where no loss is taken)",
            )
            return self._model_inputs(input_ids, attention_mask, labels, position_ids, lengths)
        special_tokens_mask = torch.isin(input_ids, self._special_ids) | (attention_mask == 0)

        word_ids = None
        if all(has_word_ids):
            word_ids = _padded_column(
                features, "word_ids", lengths, width, fill=-1, fix="the chunker must write one word id per token"
            )

        self.last_rows = [int(f["row"]) for f in features] if all("row" in f for f in features) else None
        corrupted, labels = self.masker.mask(
            input_ids,
            special_tokens_mask,
            mask_token_id=int(self.tokenizer.mask_token_id),
            vocab_size=len(self.tokenizer),
            word_ids=word_ids,
            generator=self._batch_generator(features, ids_rows),
        )
        return self._model_inputs(corrupted, attention_mask, labels, position_ids, lengths)

    def _model_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        position_ids: torch.Tensor | None,
        lengths: list[int],
    ) -> dict[str, Any]:
        if position_ids is None:
            return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        assert self.attention is not None  # _position_ids refused the batch otherwise
        return self.attention.batch(input_ids, labels, position_ids, lengths)

    def _position_ids(
        self, features: Sequence[Mapping[str, Any]], lengths: list[int], width: int
    ) -> torch.Tensor | None:
        """The padded ``position_ids`` of a packed batch (None when no feature has them).

        Padding counts 0, 1, ... from its first slot: a restart, so it is a segment of its own
        and no query row of the masks is empty.
        """
        has = [f.get("position_ids") is not None for f in features]
        if not any(has):
            return None
        if not all(has):
            raise DataError(
                f"{has.count(False)} of {len(features)} features have no `position_ids` and the others do: "
                "a batch is either packed or not; build both sides of a split with the same chunker"
            )
        if self.attention is None:
            raise DataError(
                "the features carry `position_ids` (packed documents) but the collator has no `attention` "
                "to keep them apart: pass attention=DocumentAttention.from_config(model.config)"
            )
        positions = _padded_column(
            features, "position_ids", lengths, width, fill=0, fix="the chunker must write one position per token"
        )
        for i, n in enumerate(lengths):
            if int(positions[i, :n].min()) < 0:
                raise DataError(f"feature {i}: position_ids must be >= 0, got {int(positions[i, :n].min())}")
            positions[i, n:] = torch.arange(width - n)
        return positions

    def _batch_generator(
        self, features: Sequence[Mapping[str, Any]], ids_rows: Sequence[torch.Tensor]
    ) -> torch.Generator | None:
        """A generator seeded by ``(seed, epoch, the batch)``; ``None`` without a seed.

        The batch is its rows when every feature names one, else its token ids. Nothing of the
        process enters: a generator kept per process (or per DataLoader worker, seeded from the
        loader's) made the masks depend on the worker count and the loader's generator.
        """
        if self.seed is None:
            return None
        digest = hashlib.blake2b(f"{self.seed}:{self.epoch}:".encode(), digest_size=8)
        if all("row" in f for f in features):
            digest.update(",".join(str(int(f["row"])) for f in features).encode())
        else:
            for row in ids_rows:
                # The length first: rows [1, 2] + [3] and [1] + [2, 3] are different batches.
                digest.update(len(row).to_bytes(8, "little"))
                digest.update(row.cpu().numpy().tobytes())
        return torch.Generator().manual_seed(int.from_bytes(digest.digest(), "little") & ((1 << 63) - 1))


def premask(
    dataset: Any, tokenizer: PreTrainedTokenizerBase, masker: Masker, *, seed: int, batch_size: int = 64
) -> Any:
    """Mask a validation set once, so every evaluation scores the same targets.

    Re-masking at each evaluation would add sampling noise to the eval loss curve (and to the
    perplexity that the ablation compares across variants). Returns a dataset with
    ``input_ids`` (corrupted) and ``labels``, which :class:`MaskingCollator` only pads, and the
    rows' ``position_ids`` when they have them, so a packed set is scored with its boundaries.
    """
    collator = MaskingCollator(tokenizer=tokenizer, masker=masker, seed=seed)

    def mask_batch(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        keys = [k for k in ("input_ids", "word_ids") if k in batch]
        features = [
            dict(zip(keys, values, strict=True)) for values in zip(*(batch[k] for k in keys), strict=True)
        ]
        out = collator(features)
        lengths = [len(ids) for ids in batch["input_ids"]]
        masked = {
            "input_ids": [out["input_ids"][i, :n].tolist() for i, n in enumerate(lengths)],
            "labels": [out["labels"][i, :n].tolist() for i, n in enumerate(lengths)],
        }
        # Masking never reads positions (only the model does), so they pass through unchanged.
        if "position_ids" in batch:
            masked["position_ids"] = batch["position_ids"]
        return masked

    # Named by what decides the masked set, not by pickling mask_batch: datasets would dill the
    # masker, and a masker class defined in a script (__main__) cannot be pickled by reference:
    # a PicklingWarning on every run, and a random name no cache could find again.
    decided_by = [
        dataset._fingerprint, type(masker).__module__, type(masker).__qualname__, repr(masker), seed, batch_size,
        tokenizer.name_or_path, len(tokenizer), tokenizer.mask_token_id, tokenizer.all_special_ids,
    ]
    fingerprint = hashlib.sha256(repr(decided_by).encode()).hexdigest()[:16]
    return dataset.map(
        mask_batch, batched=True, batch_size=batch_size, remove_columns=dataset.column_names, new_fingerprint=fingerprint
    )

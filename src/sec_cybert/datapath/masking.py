"""Maskers: choose MLM targets in a padded batch and corrupt them (BERT's 80/10/10 recipe).

Both maskers satisfy :class:`sec_cybert.core.components.Masker`. A chosen target is replaced by
the mask token with probability ``mask_replace_prob``, by a token drawn uniformly from
``range(vocab_size)`` with probability ``random_replace_prob``, and kept unchanged otherwise;
the loss is taken on every target either way. Random replacements may draw special-token ids,
as ``transformers.DataCollatorForLanguageModeling`` does: the Protocol passes only
``vocab_size``, and a handful of special ids in a vocabulary of tens of thousands changes
nothing measurable. See ``docs/masking.md``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import attrs

from sec_cybert.errors import DataError

if TYPE_CHECKING:
    import torch

__all__ = ["TokenMasker", "WholeWordMasker"]

IGNORE_INDEX = -100  # what transformers' MLM losses skip


def _check_number(value: Any, name: str) -> float:
    # bool is an int subclass; `probability: true` in YAML is a mistake, not 1.0.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if math.isnan(value):
        raise ValueError(f"{name} must be a number, got NaN")
    return float(value)


def _open_unit(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not 0.0 < _check_number(value, attribute.name) < 1.0:
        raise ValueError(f"{attribute.name} must be strictly between 0 and 1, got {value!r}")


def _closed_unit(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not 0.0 <= _check_number(value, attribute.name) <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


def _shares_sum(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    # attrs runs validators after every field is set, so the sibling field is available here.
    # The config layer checks fields one at a time with no instance; the constructor checks the sum.
    if instance is None:
        return
    total = instance.mask_replace_prob + value
    if total > 1.0 + 1e-9:
        raise ValueError(
            f"mask_replace_prob + random_replace_prob must be at most 1 (the rest keeps the "
            f"original token), got {instance.mask_replace_prob!r} + {value!r} = {total:g}"
        )


def _check_batch(input_ids: torch.Tensor, special_tokens_mask: torch.Tensor, vocab_size: int) -> None:
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be a padded batch [B, T], got shape {tuple(input_ids.shape)}")
    if special_tokens_mask.shape != input_ids.shape:
        raise ValueError(
            f"special_tokens_mask has shape {tuple(special_tokens_mask.shape)}, "
            f"input_ids {tuple(input_ids.shape)}"
        )
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    import torch

    # Draw where the generator lives (a CPU generator cannot fill a CUDA tensor), then move.
    gen_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


def _corrupt(
    input_ids: torch.Tensor,
    targets: torch.Tensor,
    action: torch.Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    mask_replace_prob: float,
    random_replace_prob: float,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the 80/10/10 recipe to ``targets``; ``action`` is one U(0,1) draw per position.

    One draw split into three intervals gives exactly the configured shares (HF draws two
    Bernoullis, which yields the same shares; this is simpler and lets a caller share one draw
    across all tokens of a word).
    """
    import torch

    labels = torch.where(targets, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    to_mask = targets & (action < mask_replace_prob)
    to_random = targets & ~to_mask & (action < mask_replace_prob + random_replace_prob)
    corrupted = input_ids.masked_fill(to_mask, mask_token_id)
    if random_replace_prob > 0.0:
        gen_device = generator.device if generator is not None else input_ids.device
        random_ids = torch.randint(
            vocab_size, input_ids.shape, generator=generator, device=gen_device, dtype=input_ids.dtype
        ).to(input_ids.device)
        corrupted = torch.where(to_random, random_ids, corrupted)
    return corrupted, labels


@attrs.frozen
class TokenMasker:
    """BERT/RoBERTa masking: each non-special token is a target with probability ``probability``.

    Targets are replaced by the mask token (``mask_replace_prob``), a random token
    (``random_replace_prob``) or kept (the rest).
    """

    probability: float = attrs.field(default=0.15, validator=_open_unit)
    mask_replace_prob: float = attrs.field(default=0.8, validator=_closed_unit)
    random_replace_prob: float = attrs.field(default=0.1, validator=[_closed_unit, _shares_sum])
    needs_word_ids: bool = attrs.field(default=False, init=False)

    def mask(
        self,
        input_ids: torch.Tensor,
        special_tokens_mask: torch.Tensor,
        *,
        mask_token_id: int,
        vocab_size: int,
        word_ids: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        _check_batch(input_ids, special_tokens_mask, vocab_size)
        special = special_tokens_mask.to(device=input_ids.device, dtype=torch.bool)
        targets = (_rand(tuple(input_ids.shape), generator, input_ids.device) < self.probability) & ~special
        action = _rand(tuple(input_ids.shape), generator, input_ids.device)
        return _corrupt(
            input_ids,
            targets,
            action,
            mask_token_id=mask_token_id,
            vocab_size=vocab_size,
            mask_replace_prob=self.mask_replace_prob,
            random_replace_prob=self.random_replace_prob,
            generator=generator,
        )


@attrs.frozen
class WholeWordMasker:
    """Whole-word masking: each word is a target with probability ``probability``.

    Every token of a chosen word is a target, so the expected share of targets among
    non-special tokens equals ``probability`` whatever the words' lengths. The replacement is
    decided once per word: all its tokens become the mask token, or all random tokens, or all
    stay. The defaults (every target becomes the mask token) match the reference procedure,
    which used ``DataCollatorForWholeWordMask``; set ``mask_replace_prob=0.8,
    random_replace_prob=0.1`` for BERT's 80/10/10.

    Needs ``word_ids`` ([B, T], -1 for special and padding; equal ids within a row are one word).
    """

    probability: float = attrs.field(default=0.15, validator=_open_unit)
    mask_replace_prob: float = attrs.field(default=1.0, validator=_closed_unit)
    random_replace_prob: float = attrs.field(default=0.0, validator=[_closed_unit, _shares_sum])
    needs_word_ids: bool = attrs.field(default=True, init=False)

    def mask(
        self,
        input_ids: torch.Tensor,
        special_tokens_mask: torch.Tensor,
        *,
        mask_token_id: int,
        vocab_size: int,
        word_ids: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        if word_ids is None:
            raise DataError(
                "whole-word masking needs word ids: use a chunker that provides them, e.g. `paragraph`, "
                "or switch to `masker: {kind: token}`"
            )
        _check_batch(input_ids, special_tokens_mask, vocab_size)
        if word_ids.shape != input_ids.shape:
            raise ValueError(
                f"word_ids has shape {tuple(word_ids.shape)}, input_ids {tuple(input_ids.shape)}"
            )
        device = input_ids.device
        special = special_tokens_mask.to(device=device, dtype=torch.bool)
        word_ids = word_ids.to(device=device, dtype=torch.long)
        # A special token is never a target, even if a chunker gave it a word id.
        in_word = (word_ids >= 0) & ~special
        n_words, unit = self._number_words(word_ids, in_word)
        if n_words == 0:
            return input_ids.clone(), torch.full_like(input_ids, IGNORE_INDEX)
        # One draw per word for "is it a target" and one for "what happens to it".
        chosen = _rand((n_words,), generator, device) < self.probability
        action_per_word = _rand((n_words,), generator, device)
        targets = chosen[unit] & in_word
        action = action_per_word[unit]
        return _corrupt(
            input_ids,
            targets,
            action,
            mask_token_id=mask_token_id,
            vocab_size=vocab_size,
            mask_replace_prob=self.mask_replace_prob,
            random_replace_prob=self.random_replace_prob,
            generator=generator,
        )

    @staticmethod
    def _number_words(word_ids: torch.Tensor, in_word: torch.Tensor) -> tuple[int, torch.Tensor]:
        """Give every (row, word id) pair one index in ``0 .. n_words-1``; positions outside words get 0.

        Word ids are only meaningful within a row and need not be contiguous (a chunk cut from
        a long text keeps the text's numbering), so they are renumbered over the whole batch.
        """
        import torch

        n_rows, _ = word_ids.shape
        clean = torch.where(in_word, word_ids, torch.zeros_like(word_ids))
        stride = int(clean.max().item()) + 1 if in_word.any() else 1
        rows = torch.arange(n_rows, device=word_ids.device).unsqueeze(1)
        keys = torch.where(in_word, rows * stride + clean, torch.full_like(clean, -1))
        uniq, unit = torch.unique(keys, return_inverse=True)
        # unique() sorts, so the -1 key (positions outside words), when present, is index 0.
        has_outside = bool((~in_word).any())
        if has_outside:
            unit = (unit - 1).clamp(min=0)
        n_words = uniq.numel() - int(has_outside)
        return n_words, unit

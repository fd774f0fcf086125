"""Word boundaries for whole-word masking, from any fast tokenizer's character offsets.

A *word* is a maximal whitespace-free span of the original text. Punctuation does not split
words: ``"cyber-security,"`` is one word, ``"Board's"`` is one word. This is why we do not use
``tokenizers.Encoding.word_ids``: that reports *pre-tokens*, and pre-tokenizers disagree about
them (BERT's splits every punctuation mark off, byte-level BPE splits ``'s`` off, Metaspace only
splits on spaces), so the same text would mask differently depending on the encoder. Offsets
into the original text are the one thing all three families report consistently.

Whitespace that a token carries (byte-level BPE's ``Ġword``, SentencePiece's ``▁word``) belongs
to the word that follows it, and so do tokens that cover only whitespace or nothing at all
(``Ċ``, a lone ``▁``, a trimmed ``Ġ`` with a zero-width span): masking a word hides its leading
space too. Whitespace-only tokens at the end of a text form a word of their own, so they stay
maskable. See ``docs/masking.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["word_ids_for_batch", "word_ids_from_offsets"]


def _has_space(s: str) -> bool:
    # Gaps between tokens are almost always empty or one space; isspace() answers those fast.
    return bool(s) and (s.isspace() or any(c.isspace() for c in s))


def word_ids_from_offsets(
    text: str,
    offsets: Sequence[tuple[int, int]] | Sequence[Sequence[int]],
    special_tokens_mask: Sequence[int] | Sequence[bool],
) -> list[int]:
    """Number the words of one encoded text: one id per token, -1 for special tokens.

    ``offsets`` are ``(start, end)`` character offsets into ``text`` (a fast tokenizer's
    ``offset_mapping``); ``special_tokens_mask`` is truthy for tokens the post-processor added
    (``[CLS]``, ``<s>`` ...). Words are numbered 0, 1, 2 ... in order of appearance.

    A token starts a new word when whitespace lies between the end of the previous non-blank
    token and its own start, when its own span starts with whitespace, when the previous
    non-blank token's span ends with whitespace, or when a special token came in between.
    A token is never split, so one whose span has whitespace in its middle (rare; a
    SentencePiece piece spanning ``"New York"``) joins the words either side of it.
    """
    if len(offsets) != len(special_tokens_mask):
        raise ValueError(
            f"offsets ({len(offsets)}) and special_tokens_mask ({len(special_tokens_mask)}) "
            "must have one entry per token"
        )
    ids = [-1] * len(offsets)
    word = -1
    # Blank tokens (whitespace-only or zero-width) wait here until we know which word they lead.
    pending: list[int] = []
    last_end: int | None = None  # end of the previous non-blank token in this run of text
    last_ends_with_space = False
    for i, ((start, end), special) in enumerate(zip(offsets, special_tokens_mask, strict=True)):
        if special:
            # Specials never join the words either side of them (pair inputs, packed documents).
            word = _close_pending(ids, pending, word)
            last_end = None
            last_ends_with_space = False
            continue
        span = text[start:end]
        if not span or span.isspace():
            pending.append(i)
            continue
        boundary = (
            last_end is None or last_ends_with_space or span[0].isspace() or _has_space(text[last_end:start])
        )
        if boundary:
            word += 1
        for j in pending:
            ids[j] = word
        pending.clear()
        ids[i] = word
        last_end = max(end, last_end) if last_end is not None else end
        last_ends_with_space = span[-1].isspace()
    _close_pending(ids, pending, word)
    return ids


def _close_pending(ids: list[int], pending: list[int], word: int) -> int:
    # Trailing whitespace has no word to lead; it is a unit of its own so it stays maskable.
    if pending:
        word += 1
        for j in pending:
            ids[j] = word
        pending.clear()
    return word


def word_ids_for_batch(texts: Sequence[str], encodings: Any) -> list[list[int]]:
    """Word ids for a batch encoded by a fast tokenizer.

    ``encodings`` is either what ``tokenizer(texts, return_offsets_mapping=True,
    return_special_tokens_mask=True)`` returns (a mapping with ``offset_mapping`` and
    ``special_tokens_mask``; overflowing chunks must carry ``overflow_to_sample_mapping``), or
    a sequence of ``tokenizers.Encoding`` objects, one per text.
    """
    if isinstance(encodings, Mapping):
        missing = [k for k in ("offset_mapping", "special_tokens_mask") if k not in encodings]
        if missing:
            raise ValueError(
                f"encodings lack {', '.join(missing)}: call the tokenizer with "
                "return_offsets_mapping=True, return_special_tokens_mask=True"
            )
        all_offsets = list(encodings["offset_mapping"])
        all_special = list(encodings["special_tokens_mask"])
        # With return_overflowing_tokens, several rows come from one text.
        mapping = encodings.get("overflow_to_sample_mapping")
        sample_of_row = [int(s) for s in mapping] if mapping is not None else list(range(len(all_offsets)))
    else:
        all_offsets = [e.offsets for e in encodings]
        all_special = [e.special_tokens_mask for e in encodings]
        sample_of_row = list(range(len(all_offsets)))
    if len(sample_of_row) != len(all_offsets) or len(all_special) != len(all_offsets):
        raise ValueError(
            "offset_mapping, special_tokens_mask and overflow_to_sample_mapping disagree in length"
        )
    if sample_of_row and max(sample_of_row) >= len(texts):
        raise ValueError(f"{len(texts)} texts but the encodings refer to text {max(sample_of_row)}")
    return [
        word_ids_from_offsets(texts[s], _as_pairs(offs), [int(m) for m in _as_list(spec)])
        for s, offs, spec in zip(sample_of_row, all_offsets, all_special, strict=True)
    ]


def _as_list(values: Any) -> list[Any]:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _as_pairs(offsets: Any) -> list[tuple[int, int]]:
    # offset_mapping may come back as a tensor or numpy array when return_tensors is set.
    return [(int(a), int(b)) for a, b in _as_list(offsets)]

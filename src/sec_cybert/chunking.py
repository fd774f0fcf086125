"""Built-in chunkers: concatenate-and-chunk (DAPT) and one block per paragraph (TAPT).

Tokenization runs through ``datasets.Dataset.map`` (batched, optionally in parallel), so a
large corpus streams through Arrow files instead of Python lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from attrs import validators as v

from sec_cybert.wordsplit import word_ids_from_offsets

if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedTokenizerBase


def _tokenize_batch(
    batch: dict[str, list[Any]],
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int | None,
    with_word_ids: bool,
) -> dict[str, list[Any]]:
    encoded = tokenizer(
        batch["text"],
        truncation=max_length is not None,
        max_length=max_length,
        return_offsets_mapping=with_word_ids,
        return_special_tokens_mask=with_word_ids,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    out: dict[str, list[Any]] = {
        "input_ids": encoded["input_ids"],
        "n_tokens": [len(ids) for ids in encoded["input_ids"]],
    }
    if max_length is not None:
        out["tokens_truncated"] = count_truncated_tokens(batch["text"], out["n_tokens"], tokenizer, max_length)
    if with_word_ids:
        out["word_ids"] = [
            word_ids_from_offsets(text, offsets, special)
            for text, offsets, special in zip(
                batch["text"], encoded["offset_mapping"], encoded["special_tokens_mask"], strict=True
            )
        ]
    return out


def count_truncated_tokens(
    texts: list[str], lengths: list[int], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> list[int]:
    """Tokens cut off each text by truncation. Only texts that filled ``max_length`` can have
    been cut, so only those are tokenized again, in full."""
    cut = [0] * len(texts)
    full = [i for i, n in enumerate(lengths) if n >= max_length]
    if full:
        whole = tokenizer([texts[i] for i in full], return_attention_mask=False, verbose=False)["input_ids"]
        for i, ids in zip(full, whole, strict=True):
            cut[i] = len(ids) - lengths[i]
    return cut


def _tokenize(
    documents: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int | None,
    with_word_ids: bool,
    num_proc: int | None,
) -> datasets.Dataset:
    if not getattr(tokenizer, "is_fast", False):
        from sec_cybert.errors import DataError

        raise DataError(
            "the tokenizer must be a fast (Rust) tokenizer: word boundaries come from its offsets"
        )
    return documents.map(
        _tokenize_batch,
        batched=True,
        fn_kwargs={"tokenizer": tokenizer, "max_length": max_length, "with_word_ids": with_word_ids},
        num_proc=num_proc,
        desc="tokenizing",
    )


@attrs.frozen
class ConcatChunker:
    """Concatenate tokenized documents and cut them into ``seq_len`` blocks (the reference's DAPT).

    Each document keeps its own special tokens ([CLS] ... [SEP]), so document boundaries stay
    visible inside a block. The last, shorter block is kept unless ``drop_remainder``: the
    collator pads it, and no tokens are lost. With ``word_ids`` the blocks carry word ids too
    (renumbered so two documents never share one), which makes whole-word masking possible in
    DAPT as well -- the reference believed concatenation rules it out.
    """

    seq_len: int = attrs.field(default=8192, validator=[v.instance_of(int), v.ge(8)])
    word_ids: bool = False
    drop_remainder: bool = False
    num_proc: int | None = attrs.field(default=None, validator=v.optional(v.ge(1)))

    @property
    def provides_word_ids(self) -> bool:
        return self.word_ids

    def tokenize(self, documents: datasets.Dataset, tokenizer: PreTrainedTokenizerBase) -> datasets.Dataset:
        return _tokenize(
            documents, tokenizer, max_length=None, with_word_ids=self.word_ids, num_proc=self.num_proc
        )

    def group(self, tokenized: datasets.Dataset) -> datasets.Dataset:
        import datasets

        # A budget or a validation split hands over a *selection* of rows (an indices mapping
        # over the full Arrow table); the table itself must not be read past it.
        tokenized = tokenized.flatten_indices()
        flat_ids = _flatten(tokenized, "input_ids")
        columns = {"input_ids": self._cut(flat_ids)}
        if self.word_ids:
            columns["word_ids"] = self._cut(_renumbered_word_ids(tokenized))
        return datasets.Dataset.from_dict(columns)

    def _cut(self, flat: np.ndarray) -> list[np.ndarray]:
        full = len(flat) // self.seq_len
        blocks = list(flat[: full * self.seq_len].reshape(full, self.seq_len)) if full else []
        tail = flat[full * self.seq_len :]
        if len(tail) and not self.drop_remainder:
            blocks.append(tail)
        return blocks


def _flatten(dataset: datasets.Dataset, column: str) -> np.ndarray:
    chunked = dataset.data.column(column)
    if chunked.num_chunks == 0:
        return np.zeros(0, dtype=np.int64)
    return chunked.combine_chunks().flatten().to_numpy(zero_copy_only=False)


def _renumbered_word_ids(tokenized: datasets.Dataset) -> np.ndarray:
    """Word ids made unique across documents, so concatenation never merges two words."""
    parts = []
    offset = 0
    for ids in tokenized["word_ids"]:
        array = np.asarray(ids, dtype=np.int64)
        words = array >= 0
        array = np.where(words, array + offset, -1)
        parts.append(array)
        if words.any():
            offset = int(array[words].max()) + 1
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


@attrs.frozen
class ParagraphChunker:
    """One block per paragraph, truncated at ``max_length`` (the reference's TAPT at 512).

    Each paragraph is tokenized on its own, so offsets survive and every block carries word ids
    for whole-word masking. Paragraphs longer than ``max_length`` are truncated; ``tokenize``
    writes the tokens cut off each one (``tokens_truncated``), which ``plan`` and the stage
    report count.
    """

    max_length: int = attrs.field(default=512, validator=[v.instance_of(int), v.ge(8)])
    num_proc: int | None = attrs.field(default=None, validator=v.optional(v.ge(1)))

    @property
    def provides_word_ids(self) -> bool:
        return True

    def tokenize(self, documents: datasets.Dataset, tokenizer: PreTrainedTokenizerBase) -> datasets.Dataset:
        return _tokenize(
            documents, tokenizer, max_length=self.max_length, with_word_ids=True, num_proc=self.num_proc
        )

    def group(self, tokenized: datasets.Dataset) -> datasets.Dataset:
        return tokenized.select_columns(["input_ids", "word_ids"])

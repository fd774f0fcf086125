"""Sequence packing for TAPT: several whole paragraphs per row, attention stopped at each one's end.

The reference TAPT ran one Item 1C paragraph per row (mean 127 tokens, P99 386) padded to the
longest of a batch of 32, so about 62 % of the computed tokens were padding. Packing fills rows
of ``max_length`` with whole paragraphs instead. Each paragraph keeps its own [CLS] ... [SEP],
its word ids (renumbered so no two paragraphs of a row share one) and its positions, which
restart at 0 where it starts: the collator turns each restart into an attention boundary
(:mod:`sec_cybert.datapath.document_attention`), so a packed row computes exactly what its paragraphs
would one by one (tests/test_packing.py proves it for ModernBERT, tests/test_bert_packing.py for
BERT and the encoders built like it, to 1e-5, loss and gradients).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import structlog
from attrs import validators as v

from sec_cybert.datapath.chunking import ParagraphChunker

if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedTokenizerBase

log = structlog.get_logger(__name__)

__all__ = ["PackingChunker", "pack_lengths", "padding_efficiency"]


def pack_lengths(lengths: np.ndarray | list[int], max_length: int) -> list[list[int]]:
    """Best-fit decreasing: the indices of ``lengths`` in each row, no row above ``max_length``.

    Paragraphs are placed longest first (ties by index), each in the open row with the least
    room that still holds it (ties: the oldest row), or in a new row. The result depends on the
    lengths alone, so the same selection always packs the same way. Best fit leaves at most one
    row per ~max_length/mean-length paragraphs partly empty; on Item 1C-like lengths rows are
    > 99 % full (see :class:`PackingChunker`).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) and (lengths.max() > max_length or lengths.min() < 1):
        raise ValueError(f"every length must lie in 1..{max_length}, got {lengths.min()}..{lengths.max()}")
    order = np.lexsort((np.arange(len(lengths)), -lengths))
    rows: list[list[int]] = []
    # (room left, row index), kept sorted: the best fit is the first entry with room >= length.
    open_rows: list[tuple[int, int]] = []
    for index in order.tolist():
        length = int(lengths[index])
        at = bisect.bisect_left(open_rows, (length, -1))
        if at < len(open_rows):
            room, row = open_rows.pop(at)
        else:
            room, row = max_length, len(rows)
            rows.append([])
        rows[row].append(index)
        if room - length > 0:
            bisect.insort(open_rows, (room - length, row))
    return rows


def padding_efficiency(row_lengths: list[int] | np.ndarray, batch_size: int) -> float:
    """Real tokens / computed slots when consecutive rows are batched ``batch_size`` at a time
    and each batch is padded to its longest row (what the collator does)."""
    lengths = np.asarray(row_lengths, dtype=np.int64)
    if not len(lengths):
        return 1.0
    slots = sum(
        int(lengths[i : i + batch_size].max()) * len(lengths[i : i + batch_size])
        for i in range(0, len(lengths), batch_size)
    )
    return float(lengths.sum()) / slots


def _read_paragraphs(tokenized: datasets.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every token id and word id of the given rows, flat, and each row's length.

    ``iter`` reads the rows of a selection (a budget, a validation side: an indices mapping over
    the full table) and only those, one Arrow batch at a time.
    """
    rows = tokenized.select_columns(["input_ids", "word_ids"]).with_format("arrow")
    ids, words, lengths = [], [], []
    for table in rows.iter(batch_size=10_000):
        column = table.column("input_ids").combine_chunks()
        lengths.append(column.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64))
        ids.append(column.flatten().to_numpy(zero_copy_only=False))
        words.append(table.column("word_ids").combine_chunks().flatten().to_numpy(zero_copy_only=False))
    if not lengths:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(ids), np.concatenate(words).astype(np.int64), np.concatenate(lengths)


@attrs.frozen
class PackingChunker:
    """Whole paragraphs packed into rows of at most ``max_length`` tokens (TAPT without padding).

    ``tokenize`` is :class:`~sec_cybert.datapath.chunking.ParagraphChunker`'s: one paragraph at a time,
    truncated at ``max_length`` (``tokens_truncated`` counts the cut), with word ids. ``group``
    packs the paragraphs best-fit decreasing (:func:`pack_lengths`): every paragraph lands in
    exactly one row, whole, and a row holds ``input_ids`` (its paragraphs one after another,
    each with its own [CLS] ... [SEP]), ``word_ids`` (-1 for special tokens, renumbered so two
    paragraphs never share one: whole-word masking never spans a boundary) and ``position_ids``
    (0, 1, ... again at each paragraph: where attention stops, and what the positions see).

    Padding efficiency: on a lognormal length distribution of mean ~127 tokens (Item 1C's),
    rows of 512 come out > 99 % full and a batch padded to its longest row computes >= 97 %
    real tokens (tests/test_packing.py measures it), against ~38 % for one paragraph per row.
    A row now holds ~4 paragraphs, so a batch of rows is ~4x the tokens of a batch of
    paragraphs: the packed TAPT config divides the batch accordingly.

    Needs an encoder that takes document masks and ``position_ids``: ModernBERT, or BERT and
    the encoders built like it (RoBERTa, XLM-RoBERTa, CamemBERT, ELECTRA, DistilBERT, ALBERT,
    MPNet; :data:`~sec_cybert.datapath.document_attention.DOCUMENT_ATTENTION_MODEL_TYPES`). The
    MLM stage refuses another (DeBERTa among them) with a ConfigError before it reads the corpus.
    """

    max_length: int = attrs.field(default=512, validator=[v.instance_of(int), v.ge(8)])
    num_proc: int | None = attrs.field(default=None, validator=v.optional(v.ge(1)))

    @property
    def provides_word_ids(self) -> bool:
        return True

    @property
    def provides_position_ids(self) -> bool:
        """Rows carry ``position_ids`` that restart at each document: the stage checks the
        encoder can keep them apart before anything is read."""
        return True

    def _paragraphs(self) -> ParagraphChunker:
        return ParagraphChunker(max_length=self.max_length, num_proc=self.num_proc)

    def tokenize_settings(self) -> dict[str, Any]:
        """What ``tokenize`` depends on (the tokenization cache's key): ParagraphChunker's."""
        return self._paragraphs().tokenize_settings()

    def tokenize(self, documents: datasets.Dataset, tokenizer: PreTrainedTokenizerBase) -> datasets.Dataset:
        return self._paragraphs().tokenize(documents, tokenizer)

    def group(self, tokenized: datasets.Dataset) -> datasets.Dataset:
        import datasets

        ids, words, lengths = _read_paragraphs(tokenized)
        starts = np.cumsum(lengths) - lengths
        columns: dict[str, list[np.ndarray]] = {"input_ids": [], "word_ids": [], "position_ids": []}
        for members in pack_lengths(lengths, self.max_length):
            parts_ids, parts_words, parts_positions = [], [], []
            offset = 0
            for index in members:
                span = slice(int(starts[index]), int(starts[index] + lengths[index]))
                word = words[span]
                inside = word >= 0
                parts_ids.append(ids[span])
                parts_words.append(np.where(inside, word + offset, -1))
                parts_positions.append(np.arange(lengths[index], dtype=np.int64))
                if inside.any():
                    offset = int(word[inside].max()) + offset + 1
            columns["input_ids"].append(np.concatenate(parts_ids))
            columns["word_ids"].append(np.concatenate(parts_words))
            columns["position_ids"].append(np.concatenate(parts_positions))
        row_lengths = [len(r) for r in columns["input_ids"]]
        if row_lengths:
            log.info(
                "paragraphs packed",
                paragraphs=len(lengths),
                rows=len(row_lengths),
                fill=round(float(sum(row_lengths)) / (len(row_lengths) * self.max_length), 4),
            )
        return datasets.Dataset.from_dict(columns)

"""Built-in chunkers: concatenate-and-chunk (DAPT) and one block per paragraph (TAPT).

Tokenization runs through ``datasets.Dataset.map`` (batched, optionally in parallel), so a
large corpus streams through Arrow files instead of Python lists; a batch holds a few MB of text
(:func:`~sec_cybert.corpus.dataset.text_batch_size`), whole filings or paragraphs alike.
Concatenation streams too: ``ConcatChunker.group`` reads the tokens in Arrow batches, carries the
unfinished block from one batch to the next, and writes the blocks to a scratch Arrow file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from attrs import validators as v

from sec_cybert.datapath.wordsplit import word_ids_from_offsets

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
    if not with_word_ids and max_length is None:
        ids = _backend_ids(batch["text"], tokenizer)
        if ids is not None:
            return {"input_ids": ids, "n_tokens": [len(row) for row in ids]}
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


def _backend_ids(texts: list[str], tokenizer: PreTrainedTokenizerBase) -> list[list[int]] | None:
    """Each text's token ids (special tokens added) straight from the Rust tokenizer's
    ``encode_batch_fast``, which computes no offsets: what ``tokenizer(texts)`` gives, for about
    two thirds of its CPU time. ``None`` (ask ``tokenizer(...)``) unless that is sure to be the
    same: a fast tokenizer whose class changes nothing of how transformers calls its backend, with
    no truncation or padding set on the backend, and special tokens split as the tokenizer says."""
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

    backend = getattr(tokenizer, "backend_tokenizer", None)
    encode = getattr(backend, "encode_batch_fast", None)
    cls = type(tokenizer)
    if (
        encode is None
        or not isinstance(tokenizer, PreTrainedTokenizerFast)
        or cls.__call__ is not PreTrainedTokenizerBase.__call__
        or any(
            getattr(cls, name, None) is not getattr(PreTrainedTokenizerFast, name, None)
            for name in (
                "_encode_plus", "_batch_encode_plus", "_call_one", "encode_plus", "batch_encode_plus",
                "_switch_to_input_mode",  # a seq2seq tokenizer sets its language tokens there
            )
        )
        or backend.truncation is not None
        or backend.padding is not None
        or backend.encode_special_tokens != bool(getattr(tokenizer, "split_special_tokens", False))
    ):
        return None
    return [encoding.ids for encoding in encode(texts, add_special_tokens=True)]


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
    from sec_cybert.corpus.dataset import text_batch_size

    return documents.map(
        _tokenize_batch,
        batched=True,
        batch_size=text_batch_size(documents),
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

    Attention crosses documents inside a block, as in the reference. With
    ``document_attention`` the blocks carry ``position_ids`` that restart at 0 where a document
    starts, and at the start of every block (a document cut across two blocks goes on from 0 in
    the second, as ModernBERT's own unpadded pre-training does); the collator turns each restart
    into an attention boundary, so a token attends only to its own document's tokens.
    """

    seq_len: int = attrs.field(default=8192, validator=[v.instance_of(int), v.ge(8)])
    word_ids: bool = False
    drop_remainder: bool = False
    num_proc: int | None = attrs.field(default=None, validator=v.optional(v.ge(1)))
    document_attention: bool = False

    @property
    def provides_word_ids(self) -> bool:
        return self.word_ids

    @property
    def provides_position_ids(self) -> bool:
        """Its blocks carry ``position_ids`` restarting at each document: attention boundaries."""
        return self.document_attention

    def tokenize_settings(self) -> dict[str, Any]:
        """What ``tokenize`` depends on (the tokenization cache's key): not the block length,
        so another ``seq_len`` reuses the tokens."""
        return {"word_ids": self.word_ids}

    def tokenize(self, documents: datasets.Dataset, tokenizer: PreTrainedTokenizerBase) -> datasets.Dataset:
        return _tokenize(
            documents, tokenizer, max_length=None, with_word_ids=self.word_ids, num_proc=self.num_proc
        )

    def group(self, tokenized: datasets.Dataset) -> datasets.Dataset:
        import datasets

        from sec_cybert.corpus.scratch import scratch_path

        columns = ["input_ids", *(["word_ids"] if self.word_ids else [])]
        # ``iter`` reads the rows of a *selection* (a budget, a validation side: an indices
        # mapping over the full table) and only those, one Arrow batch at a time.
        rows = tokenized.select_columns(columns).with_format("arrow")
        path = scratch_path("blocks")
        blocks = _BlockWriter(self, path, ids_feature=tokenized.features["input_ids"])
        for table in rows.iter(batch_size=_documents_per_batch(tokenized)):
            blocks.add(table)
        blocks.finish()
        return datasets.Dataset.from_file(str(path))


#: Tokens read per batch when concatenating: a few MB of int64 per column, whatever the documents.
_GROUP_TOKENS = 1 << 20


def _documents_per_batch(tokenized: datasets.Dataset) -> int:
    if not len(tokenized) or "n_tokens" not in tokenized.column_names:
        return 64
    mean = sum(tokenized["n_tokens"]) / len(tokenized) or 1
    return max(1, min(10_000, int(_GROUP_TOKENS // mean)))


class _BlockWriter:
    """Cuts a stream of tokenized documents, fed in Arrow batches, into ``seq_len`` blocks
    written to an Arrow file; what does not fill a block is carried to the next batch."""

    def __init__(self, chunker: ConcatChunker, path: Any, *, ids_feature: Any) -> None:
        import datasets
        import pyarrow as pa
        from datasets.arrow_writer import ArrowWriter

        self.chunker = chunker
        self.seq_len = chunker.seq_len
        features = {"input_ids": ids_feature}  # the tokens keep their type
        if chunker.word_ids:
            features["word_ids"] = datasets.List(datasets.Value("int64"))
        if chunker.document_attention:
            features["position_ids"] = datasets.List(datasets.Value("int64"))
        self.features = datasets.Features(features)
        self.writer = ArrowWriter(features=self.features, path=str(path))
        self.schema = self.features.arrow_schema
        self.id_type = self.schema.field("input_ids").type.value_type
        self.carry: dict[str, np.ndarray] = {}
        self.next_word = 0  # the first word id of the next document
        self._pa = pa

    def add(self, table: Any) -> None:
        ids = table.column("input_ids").combine_chunks()
        lengths = ids.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
        stream = {"input_ids": ids.flatten().to_numpy(zero_copy_only=False)}
        starts = np.cumsum(lengths) - lengths  # where each document begins in the batch
        if self.chunker.word_ids:
            words = table.column("word_ids").combine_chunks().flatten().to_numpy(zero_copy_only=False)
            stream["word_ids"] = self._renumber(words.astype(np.int64), lengths, starts)
        if self.chunker.document_attention:
            first = np.zeros(len(stream["input_ids"]), dtype=bool)
            first[starts[lengths > 0]] = True
            stream["document_start"] = first
        for key, values in stream.items():
            self.carry[key] = np.concatenate([self.carry[key], values]) if key in self.carry else values
        full = len(self.carry["input_ids"]) // self.seq_len
        if full:
            cut = full * self.seq_len
            self._write({key: values[:cut].reshape(full, self.seq_len) for key, values in self.carry.items()})
            self.carry = {key: values[cut:] for key, values in self.carry.items()}

    def finish(self) -> None:
        tail = self.carry.get("input_ids")
        if tail is not None and len(tail) and not self.chunker.drop_remainder:
            self._write({key: values[None, :] for key, values in self.carry.items()})
        self.writer.finalize()

    def _renumber(self, words: np.ndarray, lengths: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Word ids made unique across documents, so concatenation never merges two words: each
        document's words take the ids after the previous document's last one."""
        last = np.full(len(lengths), -1, dtype=np.int64)
        present = lengths > 0
        if present.any():
            last[present] = np.maximum.reduceat(words, starts[present])
        span = np.maximum(last + 1, 0)  # a document without words takes no ids
        first = self.next_word + np.cumsum(span) - span
        self.next_word += int(span.sum())
        return np.where(words >= 0, words + np.repeat(first, lengths), -1)

    def _write(self, blocks: dict[str, np.ndarray]) -> None:
        pa = self._pa
        count, width = blocks["input_ids"].shape
        offsets = pa.array(np.arange(0, count * width + 1, width, dtype=np.int32))
        values = {"input_ids": pa.array(blocks["input_ids"].ravel(), self.id_type)}
        if "word_ids" in blocks:
            values["word_ids"] = pa.array(blocks["word_ids"].ravel())
        if "document_start" in blocks:
            values["position_ids"] = pa.array(_positions(blocks["document_start"]).ravel())
        columns = {name: pa.ListArray.from_arrays(offsets, array) for name, array in values.items()}
        self.writer.write_table(pa.table(columns, schema=self.schema))


def _positions(document_start: np.ndarray) -> np.ndarray:
    """Per block (a row), each token's distance from the last document start at or before it;
    a block's first token starts a segment too."""
    starts = document_start.copy()
    starts[:, 0] = True
    index = np.broadcast_to(np.arange(starts.shape[1], dtype=np.int64), starts.shape)
    return index - np.maximum.accumulate(np.where(starts, index, 0), axis=1)


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

    def tokenize_settings(self) -> dict[str, Any]:
        """What ``tokenize`` depends on (the tokenization cache's key)."""
        return {"max_length": self.max_length}

    def tokenize(self, documents: datasets.Dataset, tokenizer: PreTrainedTokenizerBase) -> datasets.Dataset:
        return _tokenize(
            documents, tokenizer, max_length=self.max_length, with_word_ids=True, num_proc=self.num_proc
        )

    def group(self, tokenized: datasets.Dataset) -> datasets.Dataset:
        return tokenized.select_columns(["input_ids", "word_ids"])

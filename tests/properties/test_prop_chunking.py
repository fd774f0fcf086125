"""Properties of the chunkers (tokenize + group) over arbitrary documents: no token is lost or
duplicated, blocks stay within their length, word ids line up with the tokens."""

from __future__ import annotations

import datasets
from hypothesis import given, settings
from hypothesis import strategies as st
from prop_support import examples, messy_text

from sec_cybert.datapath.chunking import ConcatChunker, ParagraphChunker

datasets.disable_progress_bars()

documents = st.lists(messy_text, min_size=1, max_size=6)


def _encode(tokenizer, texts, **kwargs):
    return tokenizer(
        texts, return_special_tokens_mask=True, return_attention_mask=False, verbose=False, **kwargs
    )


def _check_word_ids(ids: list[int], word_ids: list[int], special: list[int]) -> None:
    assert len(word_ids) == len(ids)
    assert [w == -1 for w in word_ids] == [bool(s) for s in special], "-1 exactly at special tokens"


@settings(max_examples=examples(60))
@given(
    documents,
    st.integers(8, 40),
    st.booleans(),
    st.booleans(),
    st.one_of(st.none(), st.lists(st.integers(0, 5), max_size=8)),  # [] : an empty selection
)
def test_concat_blocks_are_the_documents_tokens_cut_to_length(
    tokenizer, texts, seq_len, word_ids, drop, selection
):
    chunker = ConcatChunker(seq_len=seq_len, word_ids=word_ids, drop_remainder=drop)
    tokenized = chunker.tokenize(datasets.Dataset.from_dict({"text": texts}), tokenizer)
    encoded = _encode(tokenizer, texts)
    assert tokenized["input_ids"] == encoded["input_ids"]
    assert tokenized["n_tokens"] == [len(ids) for ids in encoded["input_ids"]]
    if selection is not None:
        # A token budget or a validation split hands over a selection of rows.
        selection = [i % len(texts) for i in selection]
        tokenized = tokenized.select(selection)
        encoded = {k: [encoded[k][i] for i in selection] for k in ("input_ids", "special_tokens_mask")}
    blocks = chunker.group(tokenized)

    flat = [t for ids in encoded["input_ids"] for t in ids]
    cut = [list(b) for b in blocks["input_ids"]]
    assert all(len(b) == seq_len for b in cut[:-1])
    assert all(0 < len(b) <= seq_len for b in cut)
    joined = [t for b in cut for t in b]
    if drop:
        assert all(len(b) == seq_len for b in cut)
        assert joined == flat[: len(flat) // seq_len * seq_len]
    else:
        assert joined == flat, "a token was lost or duplicated"

    if word_ids:
        flat_special = [s for mask in encoded["special_tokens_mask"] for s in mask][: len(joined)]
        flat_words = [w for b in blocks["word_ids"] for w in b]
        assert [len(w) for w in blocks["word_ids"]] == [len(b) for b in cut]
        _check_word_ids(joined, flat_words, flat_special)
        # Renumbered across documents: ids only grow, so two documents never share a word.
        words = [w for w in flat_words if w >= 0]
        assert words == sorted(words)
        per_doc, start = [], 0
        for ids in encoded["input_ids"]:
            per_doc.append({w for w in flat_words[start : start + len(ids)] if w >= 0})
            start += len(ids)
        for a, b in zip(per_doc, per_doc[1:], strict=False):
            assert a.isdisjoint(b)
    else:
        assert blocks.column_names == ["input_ids"]


@settings(max_examples=examples(60))
@given(documents, st.integers(8, 40))
def test_paragraph_blocks_are_each_document_truncated(tokenizer, texts, max_length):
    chunker = ParagraphChunker(max_length=max_length)
    tokenized = chunker.tokenize(datasets.Dataset.from_dict({"text": texts}), tokenizer)
    blocks = chunker.group(tokenized)
    assert blocks.column_names == ["input_ids", "word_ids"]
    assert len(blocks) == len(texts), "one block per paragraph"
    full = _encode(tokenizer, texts)
    truncated = _encode(tokenizer, texts, truncation=True, max_length=max_length)
    for i, (ids, words) in enumerate(zip(blocks["input_ids"], blocks["word_ids"], strict=True)):
        assert 0 < len(ids) <= max_length
        assert ids == truncated["input_ids"][i]
        whole = full["input_ids"][i]
        if len(whole) <= max_length:
            assert ids == whole, "a paragraph that fits is kept whole"
        else:
            # Truncation keeps the start of the text and the closing special token.
            assert ids[:-1] == whole[: max_length - 1] and ids[-1] == whole[-1]
        assert tokenized["n_tokens"][i] + tokenized["tokens_truncated"][i] == len(whole)
        _check_word_ids(ids, words, truncated["special_tokens_mask"][i])
        assert words[0] == -1 and words[-1] == -1  # [CLS] ... [SEP]
        inner = [w for w in words if w >= 0]
        assert inner == sorted(inner) and (not inner or inner[0] == 0)
        assert all(b - a <= 1 for a, b in zip(inner, inner[1:], strict=False)), "words numbered 0, 1, 2 ..."

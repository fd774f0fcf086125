"""Corpus sources, selection and chunkers."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest

from sec_cybert.core.components import ReadReport
from sec_cybert.core.encoders import train_bpe_tokenizer
from sec_cybert.corpus import JsonlShards, Paragraphs
from sec_cybert.corpus.dataset import documents_dataset
from sec_cybert.corpus.select import drop_exact_duplicates, newest_first
from sec_cybert.datapath.chunking import ConcatChunker, ParagraphChunker
from sec_cybert.errors import DataError
from sec_cybert.testing import write_jsonl


@pytest.fixture(scope="module")
def tokenizer():
    texts = ["The audit committee oversees cybersecurity risk and the CISO reports quarterly."] * 50
    return train_bpe_tokenizer(texts, vocab_size=300)


def _read(source):
    report = ReadReport()
    return list(source.iter_documents(report)), report


def test_jsonl_shards_read_every_shard_in_order_with_metadata(tiny_corpus):
    documents, report = _read(JsonlShards(tiny_corpus.shards))
    assert len(documents) == 12 and report.kept == 12 and report.total_skipped == 0
    assert documents[0].metadata["filing_date"].startswith("202")
    assert documents[0].metadata["form"] == "10-K"


def test_missing_path_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        JsonlShards(tmp_path / "nowhere")


def test_directory_without_shards_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no files matching"):
        _read(JsonlShards(tmp_path))


def test_malformed_line_raises_with_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"text": "fine"}\n{"text": broken\n')
    with pytest.raises(DataError, match=r"p\.jsonl:2: malformed JSON.*on_bad_record: skip"):
        _read(Paragraphs(path))


def test_skipped_records_are_counted_never_dropped_silently(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"text": "kept paragraph"}, {"id": 3}, {"text": ""}, ["not", "an", "object"]])
    with path.open("a") as handle:
        handle.write("{not json\n")
    documents, report = _read(Paragraphs(path, on_bad_record="skip"))
    assert [d.text for d in documents] == ["kept paragraph"]
    assert report.kept == 1 and report.total_skipped == 4
    assert report.skipped["malformed JSON"] == 1 and report.skipped["no string field 'text'"] == 1
    assert any(example.startswith(f"{path}:5") for example in report.examples)


def test_min_chars_filter_is_counted(tiny_corpus):
    documents, report = _read(JsonlShards(tiny_corpus.shards, min_chars=10**9))
    assert documents == [] and report.skipped["shorter than min_chars=1000000000"] == 12


def test_empty_corpus_is_a_data_error_that_says_why(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"text": "x"}])
    with pytest.raises(DataError, match="yielded no documents .1 records skipped"):
        documents_dataset(Paragraphs(path, min_chars=5), ReadReport())


def test_newest_first_uses_dates_not_corpus_order():
    dataset = datasets.Dataset.from_dict(
        {"n_tokens": [100, 100, 100, 100], "filing_date": ["2023-05-01", "2025-02-01", "", "2024-03-01"]}
    )
    kept, summary = newest_first(dataset, 250)
    assert kept["filing_date"] == ["2025-02-01", "2024-03-01"]
    assert (summary.tokens_kept, summary.documents_kept, summary.undated) == (200, 2, 1)
    everything, summary = newest_first(dataset, None)
    assert everything["filing_date"][-1] == "" and summary.tokens_kept == 400


def test_exact_duplicates_ignore_layout_whitespace():
    dataset = datasets.Dataset.from_dict({"text": ["a  b\nc", "a b c", "other"]})
    kept, removed = drop_exact_duplicates(dataset)
    assert removed == 1 and kept["text"] == ["a  b\nc", "other"]


def test_concat_chunker_cuts_blocks_and_keeps_the_tail(tokenizer):
    texts = ["the audit committee oversees risk " * 7, "the CISO reports quarterly " * 3]
    dataset = datasets.Dataset.from_dict({"text": texts})
    chunker = ConcatChunker(seq_len=16, word_ids=True)
    tokenized = chunker.tokenize(dataset, tokenizer)
    total = sum(tokenized["n_tokens"])
    blocks = chunker.group(tokenized)
    lengths = [len(ids) for ids in blocks["input_ids"]]
    assert sum(lengths) == total and all(n == 16 for n in lengths[:-1]) and 0 < lengths[-1] <= 16
    flat = np.concatenate([np.asarray(ids) for ids in tokenized["input_ids"]])
    assert np.array_equal(np.concatenate([np.asarray(b) for b in blocks["input_ids"]]), flat)
    # Word ids are renumbered so the two documents never share a word.
    word_ids = np.concatenate([np.asarray(w) for w in blocks["word_ids"]])
    first_doc = tokenized["n_tokens"][0]
    assert set(word_ids[:first_doc][word_ids[:first_doc] >= 0]).isdisjoint(word_ids[first_doc:][word_ids[first_doc:] >= 0])
    dropped = ConcatChunker(seq_len=16, drop_remainder=True).group(tokenized)
    assert all(len(ids) == 16 for ids in dropped["input_ids"])


def test_paragraph_chunker_truncates_and_provides_word_ids(tokenizer):
    dataset = datasets.Dataset.from_dict({"text": ["short text", "the audit committee " * 40]})
    chunker = ParagraphChunker(max_length=12)
    blocks = chunker.group(chunker.tokenize(dataset, tokenizer))
    assert blocks.column_names == ["input_ids", "word_ids"]
    assert len(blocks[1]["input_ids"]) == 12 and blocks[1]["input_ids"][-1] == tokenizer.sep_token_id
    assert blocks[0]["word_ids"][0] == -1 and blocks[0]["word_ids"][1] == 0
    assert json.dumps(blocks[0]["word_ids"])  # plain ints, storable


def test_filings_without_a_filing_date_sort_by_their_period_end():
    from sec_cybert.corpus.select import document_date

    assert document_date({"filing_date": "2025-02-20", "period_end": "2024-12-31"}) == "2025-02-20"
    assert document_date({"filing_date": None, "period_end": "2024-12-31"}) == "2024-12-31"
    assert document_date({}) == ""


def test_lines_that_are_not_utf8_are_counted(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"text": "kept"}\n{"text": "caf\xe9"}\n')
    documents, report = _read(Paragraphs(path, on_bad_record="skip"))
    assert [d.text for d in documents] == ["kept"] and report.skipped == {"not UTF-8": 1}


@pytest.mark.parametrize("metadata", ["filed 2024", ["cik", "123"], 7])
def test_metadata_that_is_not_a_mapping_is_a_bad_record(tmp_path, metadata):
    path = write_jsonl(tmp_path / "p.jsonl", [{"text": "kept paragraph"}, {"text": "bad", "metadata": metadata}])
    with pytest.raises(DataError, match=r"p\.jsonl:2: 'metadata' is \w+, not a mapping.*on_bad_record: skip"):
        _read(Paragraphs(path))
    documents, report = _read(JsonlShards(path, on_bad_record="skip"))
    assert [d.text for d in documents] == ["kept paragraph"]
    assert report.kept == 1 and report.total_skipped == 1
    assert any(example.startswith(f"{path}:2") for example in report.examples)

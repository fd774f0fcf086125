"""Tokenize once: the tokenization cache, streaming concatenation, and document-boundary positions."""

from __future__ import annotations

import json
import os
import random

import datasets
import numpy as np
import pytest
import structlog

from sec_cybert.core.encoders import train_bpe_tokenizer
from sec_cybert.corpus import JsonlShards, token_cache
from sec_cybert.corpus import scratch as scratch_module
from sec_cybert.corpus.dedup import Deduplication
from sec_cybert.corpus.scratch import cache_root, scratch_dir
from sec_cybert.corpus.token_cache import (
    DATA,
    META,
    TokenCache,
    documents_digest,
    tokenize_once,
    tokenizer_digest,
)
from sec_cybert.datapath import chunking
from sec_cybert.datapath.chunking import ConcatChunker, ParagraphChunker
from sec_cybert.datapath.masking import TokenMasker
from sec_cybert.stages.mlm import MLMStage
from sec_cybert.testing import FILING_WORDS, filing_records, write_jsonl

WORDS = FILING_WORDS


@pytest.fixture(scope="module")
def tokenizer():
    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(30)]
    return train_bpe_tokenizer(texts, vocab_size=300)


def _stage(shards, **overrides):
    settings = {
        "corpus": JsonlShards(shards),
        "chunker": ConcatChunker(seq_len=16),
        "masker": TokenMasker(),
        "validation_split": 0.25,
        **overrides,
    }
    return MLMStage(**settings)


def _rows(dataset):
    return None if dataset is None else dataset.to_dict()


@pytest.fixture
def shards(tmp_path):
    return write_jsonl(tmp_path / "shards" / "shard-00000.jsonl", filing_records()).parent


@pytest.fixture
def counted(monkeypatch):
    """How many times a chunker tokenized."""
    calls = []
    for cls in (ConcatChunker, ParagraphChunker):
        original = cls.tokenize

        def tokenize(self, documents, tok, _original=original):
            calls.append(len(documents))
            return _original(self, documents, tok)

        monkeypatch.setattr(cls, "tokenize", tokenize)
    return calls


# -- the cache through prepare_data ---------------------------------------------------------------


def test_a_second_preparation_hits_the_cache_and_gives_the_same_blocks(shards, tokenizer, counted):
    train, validation, report = _stage(shards).prepare_data(tokenizer, seed=0)
    assert report["tokenization"]["cache"] == "miss" and counted == [8]
    entry = cache_root() / "tokenized" / report["tokenization"]["key"]
    assert (entry / DATA).is_file() and (entry / META).is_file()
    # A resumed run is a new stage object reading the same corpus with the same tokenizer.
    again_train, again_validation, again = _stage(shards).prepare_data(tokenizer, seed=0)
    assert again["tokenization"]["cache"] == "hit" and counted == [8]
    assert again["tokenization"]["key"] == report["tokenization"]["key"]
    assert _rows(again_train) == _rows(train) and _rows(again_validation) == _rows(validation)
    same = {k: v for k, v in report.items() if k != "tokenization"}
    assert {k: v for k, v in again.items() if k != "tokenization"} == same


def test_the_entry_keeps_no_text_and_nothing_is_written_beside_it(shards, tokenizer):
    _, _, report = _stage(shards).prepare_data(tokenizer, seed=0)
    _stage(shards, max_tokens=900).prepare_data(tokenizer, seed=1)  # a hit, other selections
    entry = cache_root() / "tokenized" / report["tokenization"]["key"]
    assert sorted(p.name for p in entry.iterdir()) == [DATA, META]
    meta = json.loads((entry / META).read_text())
    assert "text" not in meta["columns"] and {"input_ids", "n_tokens", "cluster"} <= set(meta["columns"])
    assert meta["duplicates"]["dropped"] == 0 and meta["blank_documents"] == 0


def test_budget_split_and_block_length_reuse_the_tokens(shards, tokenizer, counted):
    _stage(shards).prepare_data(tokenizer, seed=0)
    for stage in (
        _stage(shards, max_tokens=900),
        _stage(shards, validation_split=0.5),
        _stage(shards, chunker=ConcatChunker(seq_len=32)),
        _stage(shards, chunker=ConcatChunker(seq_len=16, document_attention=True)),
    ):
        assert stage.prepare_data(tokenizer, seed=3)[2]["tokenization"]["cache"] == "hit"
    assert counted == [8]


def test_a_changed_corpus_tokenizer_chunker_or_dedup_misses(tmp_path, shards, tokenizer, counted):
    key = _stage(shards).prepare_data(tokenizer, seed=0)[2]["tokenization"]["key"]
    records = filing_records()
    records[3]["text"] += " One more sentence."
    changed = write_jsonl(tmp_path / "changed" / "shard-00000.jsonl", records).parent
    other_tokenizer = train_bpe_tokenizer([r["text"] for r in records], vocab_size=280)
    variants = [
        (_stage(changed), tokenizer),
        (_stage(shards, corpus=JsonlShards(shards, min_chars=200)), tokenizer),
        (_stage(shards), other_tokenizer),
        (_stage(shards, chunker=ConcatChunker(seq_len=16, word_ids=True)), tokenizer),
        (_stage(shards, deduplicate=Deduplication(mode="none")), tokenizer),
        (_stage(shards, validation_group_field="cik"), tokenizer),
    ]
    keys = {key}
    for stage, tok in variants:
        tokenization = stage.prepare_data(tok, seed=0)[2]["tokenization"]
        assert tokenization["cache"] == "miss"
        keys.add(tokenization["key"])
    assert len(keys) == len(variants) + 1 and len(counted) == len(variants) + 1


def test_blank_documents_and_copies_are_left_out_on_a_hit_as_on_a_miss(tmp_path, tokenizer):
    records = filing_records()
    records[2]["text"] = "   \n"
    records[5]["text"] = ""
    records[6]["text"] = records[4]["text"].upper()  # an exact copy, after normalisation
    shards = write_jsonl(tmp_path / "blank" / "shard-00000.jsonl", records).parent
    reports = [_stage(shards).prepare_data(tokenizer, seed=0)[2] for _ in range(2)]
    assert [r["tokenization"]["cache"] for r in reports] == ["miss", "hit"]
    for report in reports:
        assert report["blank_documents"] == 2
        assert report["duplicates"] == {
            "mode": "exact",
            "texts": 6,
            "clusters": 5,
            "exact_copies": 1,
            "near_copies": 0,
            "dropped": 1,
        }
        assert report["selection"]["documents_kept"] == 5
    entry = cache_root() / "tokenized" / reports[0]["tokenization"]["key"]
    kept = datasets.Dataset.from_file(str(entry / DATA))
    # Of the copies filing-4 (2014) and filing-6 (2016), the newer is kept (the selection's order).
    assert kept["id"] == ["filing-0", "filing-1", "filing-3", "filing-6", "filing-7"]
    assert kept["cluster"] == [0, 1, 2, 3, 5]  # as before blank rows were found in the same pass


def test_the_cache_can_be_turned_off(shards, tokenizer, counted):
    for _ in range(2):
        report = _stage(shards, cache_tokenization=False).prepare_data(tokenizer, seed=0)[2]
        assert report["tokenization"]["cache"] == "off" and report["tokenization"]["key"] is None
    assert len(counted) == 2 and not (cache_root() / "tokenized").exists()


@pytest.mark.parametrize("damage", ["truncate", "meta", "remove"])
def test_a_damaged_entry_is_rebuilt_with_a_warning(shards, tokenizer, counted, damage):
    train, _, report = _stage(shards).prepare_data(tokenizer, seed=0)
    entry = cache_root() / "tokenized" / report["tokenization"]["key"]
    if damage == "truncate":
        data = (entry / DATA).read_bytes()
        (entry / DATA).write_bytes(data[: len(data) // 2])
    elif damage == "meta":
        (entry / META).write_text('{"format": 1, "ke')
    else:
        (entry / DATA).unlink()
    with structlog.testing.capture_logs() as logs:
        again_train, _, again = _stage(shards).prepare_data(tokenizer, seed=0)
    assert again["tokenization"]["cache"] == "miss" and len(counted) == 2
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert any("damaged" in e["event"] and e["entry"] == str(entry) for e in warnings)
    assert _rows(again_train) == _rows(train)
    assert _stage(shards).prepare_data(tokenizer, seed=0)[2]["tokenization"]["cache"] == "hit"


def test_a_store_cut_short_leaves_no_entry(shards, tokenizer, monkeypatch):
    from datasets.arrow_writer import ArrowWriter

    original = ArrowWriter.finalize
    cache = TokenCache.default()

    def killed(self, *args, **kwargs):
        if str(cache.directory) in str(getattr(self, "_path", "")):
            raise KeyboardInterrupt  # the process dies in the middle of writing the entry
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ArrowWriter, "finalize", killed)
    with pytest.raises(KeyboardInterrupt):
        _stage(shards).prepare_data(tokenizer, seed=0)
    assert list(cache.directory.iterdir()) == []  # no entry, and the .part directory is gone
    monkeypatch.setattr(ArrowWriter, "finalize", original)
    assert _stage(shards).prepare_data(tokenizer, seed=0)[2]["tokenization"]["cache"] == "miss"


def test_plan_then_run_tokenizes_once(tmp_path, counted, plugin_manager):
    from sec_cybert.host.pipeline import load_run_config
    from sec_cybert.host.planner import plan_pipeline
    from sec_cybert.testing import TINY_ENCODER_OPTIONS, TINY_TRAINING

    shards = write_jsonl(tmp_path / "shards" / "shard-00000.jsonl", filing_records()).parent
    config = {
        "encoder": "tiny-modernbert",
        "encoder_options": dict(TINY_ENCODER_OPTIONS),
        "hardware": "cpu",
        "seed": 3,
        "stages": [
            {
                "kind": "mlm",
                "name": "dapt",
                "corpus": {"kind": "jsonl-shards", "path": str(shards)},
                "chunker": {"kind": "concat", "seq_len": 32},
                "masker": {"kind": "token", "probability": 0.3},
                "validation_split": 0.25,
                "training": {**TINY_TRAINING, "max_steps": 1, "save_strategy": "no"},
            }
        ],
    }
    pipeline = load_run_config(config, plugin_manager=plugin_manager).pipeline
    plan = plan_pipeline(pipeline).stages[0]
    assert counted == [8]
    pipeline.run(tmp_path / "run")
    report = json.loads((tmp_path / "run" / "dapt" / "stage.json").read_text())["report"]
    assert report["tokenization"]["cache"] == "hit" and counted == [8]
    assert plan.sequences_train == report["train_blocks"]

    # The cache changes how fast, not what, a stage trains: turning it off keeps the finished
    # stage the same run, so it is reused rather than refused as a changed config.
    config["stages"][0]["cache_tokenization"] = False
    finished = load_run_config(config, plugin_manager=plugin_manager).pipeline.run(tmp_path / "run")
    assert counted == [8]  # reused: nothing read or tokenized again
    assert json.loads((tmp_path / "run" / "dapt" / "stage.json").read_text())["report"] == report
    assert finished is not None


# -- distributed: the main process builds, the others load ----------------------------------------


def _fake_build(calls):
    def build():
        calls.append(os.environ.get("RANK", "0"))
        dataset = datasets.Dataset.from_dict({"input_ids": [[1, 2, 3]], "n_tokens": [3]})
        return dataset, {"blank_documents": 0}

    return build


def test_other_ranks_wait_for_the_main_process_then_load_its_entry(monkeypatch):
    barriers, calls = [], []
    monkeypatch.setattr(token_cache, "wait_for_everyone", lambda: barriers.append(os.environ.get("RANK")))
    monkeypatch.setenv("RANK", "0")
    dataset, _, report = tokenize_once({"corpus": "x"}, _fake_build(calls))
    assert report["cache"] == "miss" and barriers == ["0"]
    monkeypatch.setenv("RANK", "1")
    dataset, meta, report = tokenize_once({"corpus": "x"}, _fake_build(calls))
    assert report["cache"] == "hit" and barriers == ["0", "1"] and calls == ["0"]
    assert dataset["input_ids"] == [[1, 2, 3]] and meta["blank_documents"] == 0


def test_a_rank_without_the_main_processs_entry_builds_it_itself(monkeypatch):
    calls = []
    monkeypatch.setattr(token_cache, "wait_for_everyone", lambda: None)
    monkeypatch.setenv("RANK", "1")
    _, _, report = tokenize_once({"corpus": "y"}, _fake_build(calls))
    assert report["cache"] == "miss" and calls == ["1"]


def test_the_main_process_reaches_the_barrier_even_when_building_fails(monkeypatch):
    barriers = []
    monkeypatch.setattr(token_cache, "wait_for_everyone", lambda: barriers.append("main"))

    def failing():
        raise ValueError("no documents")

    with pytest.raises(ValueError, match="no documents"):
        tokenize_once({"corpus": "z"}, failing)
    assert barriers == ["main"]  # the other ranks are not left waiting


# -- what the key hashes ----------------------------------------------------------------------------


def _documents(ids, texts):
    n = len(ids)
    return datasets.Dataset.from_dict({"id": ids, "text": texts, "filing_date": [""] * n, "group": [""] * n})


def test_documents_digest_sees_content_not_layout():
    ids, texts = ["a", "b", "c"], ["first text", "second", "third text here"]
    whole = _documents(ids, texts)
    chunked = datasets.concatenate_datasets([_documents(ids[:1], texts[:1]), _documents(ids[1:], texts[1:])])
    assert documents_digest(whole) == documents_digest(chunked)
    assert documents_digest(whole.select([0, 1, 2])) == documents_digest(whole)
    assert documents_digest(whole) != documents_digest(
        _documents(ids, ["first text", "second", "third text hers"])
    )
    # A character moved across a boundary is another corpus.
    assert documents_digest(_documents(["a", "b"], ["xy", "z"])) != documents_digest(
        _documents(["a", "b"], ["x", "yz"])
    )
    assert documents_digest(whole.select([0, 1])) != documents_digest(whole)


def test_tokenizer_digest_ignores_the_last_calls_truncation(tokenizer):
    before = tokenizer_digest(tokenizer)
    tokenizer(["audit committee risk"], truncation=True, max_length=4)
    assert tokenizer_digest(tokenizer) == before
    assert tokenizer_digest(object()) is None


# -- streaming concatenation ------------------------------------------------------------------------


def _reference_group(tokenized, seq_len, word_ids, drop_remainder):
    """ConcatChunker.group before it streamed: the whole stream as one array, then cut."""
    rows = tokenized.flatten_indices()
    flat = np.concatenate([np.asarray(ids, dtype=np.int64) for ids in rows["input_ids"]])
    columns = {"input_ids": flat}
    if word_ids:
        parts, offset = [], 0
        for ids in rows["word_ids"]:
            array = np.asarray(ids, dtype=np.int64)
            words = array >= 0
            array = np.where(words, array + offset, -1)
            parts.append(array)
            if words.any():
                offset = int(array[words].max()) + 1
        columns["word_ids"] = np.concatenate(parts)
    out = {}
    for name, values in columns.items():
        full = len(values) // seq_len
        blocks = [b.tolist() for b in values[: full * seq_len].reshape(full, seq_len)] if full else []
        tail = values[full * seq_len :]
        if len(tail) and not drop_remainder:
            blocks.append(tail.tolist())
        out[name] = blocks
    return out


@pytest.mark.parametrize("word_ids", [False, True])
@pytest.mark.parametrize("drop_remainder", [False, True])
@pytest.mark.parametrize("batch_tokens", [1, 37, 1 << 20])
def test_streaming_concatenation_gives_the_blocks_it_gave_whole(
    tokenizer, monkeypatch, word_ids, drop_remainder, batch_tokens
):
    rng = random.Random(7)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 40))) for _ in range(25)]
    tokenized = ConcatChunker(seq_len=16, word_ids=True).tokenize(
        datasets.Dataset.from_dict({"text": texts}), tokenizer
    )
    selection = tokenized.select([i for i in range(25) if i % 3])  # an indices mapping, as after a budget
    monkeypatch.setattr(chunking, "_GROUP_TOKENS", batch_tokens)  # 1: a document per batch
    chunker = ConcatChunker(seq_len=16, word_ids=word_ids, drop_remainder=drop_remainder)
    blocks = chunker.group(selection)
    expected = _reference_group(selection, 16, word_ids, drop_remainder)
    assert blocks.to_dict() == expected
    assert blocks.features["input_ids"] == tokenized.features["input_ids"]


def test_grouping_nothing_gives_no_blocks(tokenizer):
    tokenized = ConcatChunker(seq_len=16).tokenize(datasets.Dataset.from_dict({"text": ["short"]}), tokenizer)
    assert len(ConcatChunker(seq_len=16, drop_remainder=True).group(tokenized)) == 0
    assert len(ConcatChunker(seq_len=16).group(tokenized.select([]))) == 0


def test_blocks_are_written_to_scratch_not_held_in_memory(tokenizer):
    tokenized = ConcatChunker(seq_len=16).tokenize(
        datasets.Dataset.from_dict({"text": ["audit risk"] * 20}), tokenizer
    )
    blocks = ConcatChunker(seq_len=16).group(tokenized)
    assert [f["filename"].startswith(str(scratch_dir())) for f in blocks.cache_files] == [True]


# -- document_attention: position ids that restart at each document ---------------------------------


def test_position_ids_restart_where_a_document_starts_and_at_every_block(monkeypatch):
    lengths = [5, 7, 6, 8]  # documents of 5, 7, 6 and 8 tokens; blocks of 8
    ids = [[100 * d + t for t in range(n)] for d, n in enumerate(lengths)]
    tokenized = datasets.Dataset.from_dict({"input_ids": ids, "n_tokens": lengths})
    monkeypatch.setattr(chunking, "_GROUP_TOKENS", 8)  # a block straddles two batches too
    blocks = ConcatChunker(seq_len=8, document_attention=True).group(tokenized)
    assert blocks["input_ids"] == [
        [0, 1, 2, 3, 4, 100, 101, 102],
        [103, 104, 105, 106, 200, 201, 202, 203],
        [204, 205, 300, 301, 302, 303, 304, 305],
        [306, 307],
    ]
    assert blocks["position_ids"] == [
        [0, 1, 2, 3, 4, 0, 1, 2],  # the second document starts at its sixth token
        [0, 1, 2, 3, 0, 1, 2, 3],  # the second goes on from 0 at the block start; the third starts
        [0, 1, 0, 1, 2, 3, 4, 5],
        [0, 1],  # the fourth, cut at the block boundary
    ]
    # Every restart inside a row is a document start: a segment never holds two documents.
    for row_ids, row_positions in zip(blocks["input_ids"], blocks["position_ids"], strict=True):
        segments = np.cumsum(np.asarray(row_positions) == 0)
        for segment in set(segments.tolist()):
            owners = {token // 100 for token, s in zip(row_ids, segments, strict=True) if s == segment}
            assert len(owners) == 1


def test_document_attention_blocks_from_real_tokens(tokenizer):
    texts = ["audit committee risk " * 3, "vendor incident", "board officer program " * 4]
    chunker = ConcatChunker(seq_len=16, word_ids=True, document_attention=True)
    tokenized = chunker.tokenize(datasets.Dataset.from_dict({"text": texts}), tokenizer)
    assert chunker.provides_position_ids and not ConcatChunker().provides_position_ids
    blocks = chunker.group(tokenized)
    flat_ids = [t for row in blocks["input_ids"] for t in row]
    flat_positions = [p for row in blocks["position_ids"] for p in row]
    # Each document opens with [CLS]: every [CLS] sits at position 0.
    assert all(p == 0 for t, p in zip(flat_ids, flat_positions, strict=True) if t == tokenizer.cls_token_id)
    assert [len(r) for r in blocks["position_ids"]] == [len(r) for r in blocks["input_ids"]]
    assert blocks.column_names == ["input_ids", "word_ids", "position_ids"]


def test_a_dapt_run_with_document_attention_trains_on_blocks_with_positions(
    tmp_path, plugin_manager, monkeypatch
):
    import transformers

    from sec_cybert.host.pipeline import load_run_config
    from sec_cybert.testing import TINY_ENCODER_OPTIONS, TINY_TRAINING

    seen = {}
    original = transformers.Trainer.train

    def train(self, *args, **kwargs):
        seen["train"] = self.train_dataset
        return original(self, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "train", train)
    shards = write_jsonl(tmp_path / "shards" / "shard-00000.jsonl", filing_records()).parent
    config = {
        "encoder": "tiny-modernbert",
        "encoder_options": dict(TINY_ENCODER_OPTIONS),
        "hardware": "cpu",
        "stages": [
            {
                "kind": "mlm",
                "name": "dapt",
                "corpus": {"kind": "jsonl-shards", "path": str(shards)},
                "chunker": {"kind": "concat", "seq_len": 64, "document_attention": True},
                "masker": {"kind": "token"},
                "validation_split": 0.25,
                "training": {**TINY_TRAINING, "max_steps": 1, "save_strategy": "no"},
            }
        ],
    }
    load_run_config(config, plugin_manager=plugin_manager).pipeline.run(tmp_path / "run")
    record = json.loads((tmp_path / "run" / "dapt" / "stage.json").read_text())
    assert np.isfinite(record["metrics"]["train_loss"]) and np.isfinite(record["metrics"]["eval_loss"])
    rows = seen["train"]
    assert "position_ids" in rows.column_names
    assert all(positions[0] == 0 for positions in rows["position_ids"])


# -- scratch ----------------------------------------------------------------------------------------


def test_a_killed_processs_scratch_is_removed_by_the_next_one(tmp_path, monkeypatch):
    import socket

    monkeypatch.setenv("SEC_CYBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(scratch_module, "_current", None)
    root = tmp_path / "cache" / "scratch"
    dead, other_host = root / "999999999-dead", root / "1-elsewhere"
    for directory, host in ((dead, socket.gethostname()), (other_host, "another-host")):
        directory.mkdir(parents=True)
        (directory / "owner.json").write_text(json.dumps({"host": host, "pid": 999999999}))
    mine = scratch_dir()
    assert mine.parent == root and mine.is_dir()
    assert not dead.exists() and other_host.exists()


def test_a_cache_root_that_cannot_be_written_is_one_line_naming_the_variable(tmp_path, monkeypatch):
    from sec_cybert.errors import DataError

    not_a_directory = tmp_path / "a-file"
    not_a_directory.write_text("")
    monkeypatch.setenv("SEC_CYBERT_CACHE", str(not_a_directory))
    monkeypatch.setattr(scratch_module, "_current", None)
    with pytest.raises(DataError, match=r"cannot create the data-preparation scratch directory .*set SEC_CYBERT_CACHE"):
        scratch_dir()

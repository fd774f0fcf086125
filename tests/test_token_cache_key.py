"""The tokenization cache's key by file content: a warm plan reads no document, and any changed
byte of a corpus file misses (also with its mtime set back)."""

from __future__ import annotations

import json
import os
import random
import time

import pytest

from sec_cybert.core import files as core_files
from sec_cybert.core.encoders import train_bpe_tokenizer
from sec_cybert.corpus import JsonlShards
from sec_cybert.corpus import dataset as dataset_module
from sec_cybert.corpus import sources as sources_module
from sec_cybert.datapath.chunking import ConcatChunker, ParagraphChunker
from sec_cybert.datapath.masking import TokenMasker
from sec_cybert.errors import DataError
from sec_cybert.stages.mlm import MLMStage
from sec_cybert.testing import FILING_WORDS, filing_records, write_jsonl

WORDS = FILING_WORDS


@pytest.fixture(scope="module")
def tokenizer():
    rng = random.Random(0)
    return train_bpe_tokenizer(
        [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(30)], vocab_size=300
    )


def _stage(corpus, **overrides):
    return MLMStage(
        corpus=corpus,
        chunker=ConcatChunker(seq_len=16),
        masker=TokenMasker(),
        validation_split=0.25,
        **overrides,
    )


@pytest.fixture
def reads(monkeypatch):
    """Every time a corpus's documents are read: the stage's read into a dataset, and each JSONL
    file's lines read (by whoever: the contamination check, an encoder, the stage)."""
    seen = {"documents_dataset": 0, "files": []}
    original_dataset, original_lines = dataset_module.documents_dataset, sources_module.iter_text_lines

    def documents_dataset(*args, **kwargs):
        seen["documents_dataset"] += 1
        return original_dataset(*args, **kwargs)

    def iter_text_lines(path, *args, **kwargs):
        seen["files"].append(path.name)
        return original_lines(path, *args, **kwargs)

    monkeypatch.setattr(dataset_module, "documents_dataset", documents_dataset)
    monkeypatch.setattr(sources_module, "iter_text_lines", iter_text_lines)
    return seen


@pytest.fixture
def tokenized(monkeypatch):
    calls = []
    for cls in (ConcatChunker, ParagraphChunker):

        def tokenize(self, documents, tok, _original=cls.tokenize):
            calls.append(len(documents))
            return _original(self, documents, tok)

        monkeypatch.setattr(cls, "tokenize", tokenize)
    return calls


def _same_size_edit(path, old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` (as long) in ``path`` and set its atime and mtime back."""
    assert len(old) == len(new)
    before = path.stat()
    data = path.read_bytes()
    assert data.count(old) == 1
    path.write_bytes(data.replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


# -- a warm plan reads no document -------------------------------------------------------------------


def _planned_pipeline(tmp_path, plugin_manager):
    """A DAPT + TAPT + fine-tune pipeline whose encoder is a directory (a registered encoder would
    read the corpus to train its tokenizer), with a holdout paragraph copied into a filing so the
    contamination check excludes lines."""
    from sec_cybert.host.pipeline import load_run_config
    from sec_cybert.testing import tiny_pipeline_config, write_tiny_corpus

    corpus = write_tiny_corpus(tmp_path / "corpus")
    holdout = [json.loads(line) for line in corpus.holdout.read_text().splitlines()]
    shard = corpus.shards / "shard-00000.jsonl"
    filings = [json.loads(line) for line in shard.read_text().splitlines()]
    filings[1]["text"] += "\n" + holdout[0]["text"]
    write_jsonl(shard, filings)
    config = tiny_pipeline_config(corpus)
    first = load_run_config(config, plugin_manager=plugin_manager).pipeline
    encoder = first.materialize_encoder(tmp_path / "enc")
    config = {**{k: v for k, v in config.items() if k != "encoder_options"}, "encoder": str(encoder)}
    return corpus, lambda: load_run_config(config, plugin_manager=plugin_manager).pipeline


def test_a_second_plan_reads_no_document_and_plans_the_same(tmp_path, plugin_manager, reads, tokenized):
    from sec_cybert.host.planner import plan_pipeline

    corpus, pipeline = _planned_pipeline(tmp_path, plugin_manager)
    reads["files"].clear()
    first = plan_pipeline(pipeline())
    assert reads["documents_dataset"] == 2 and len(tokenized) == 2  # DAPT and TAPT, cold
    assert "shard-00000.jsonl" in reads["files"] and "paragraphs.jsonl" in reads["files"]
    assert any(line.startswith("dapt vs finetune.holdout: 1 exact") for line in first.contamination)
    reads.update(documents_dataset=0, files=[])

    second = plan_pipeline(pipeline())  # a new pipeline, as a second `sec-cybert plan` builds
    corpus_files = {"shard-00000.jsonl", "shard-00001.jsonl", "paragraphs.jsonl"}
    assert reads["documents_dataset"] == 0 and not corpus_files & set(reads["files"])
    assert len(tokenized) == 2  # nothing tokenized either
    assert second.stages == first.stages and second.contamination == first.contamination


def test_each_corpus_file_is_hashed_once_per_plan(tmp_path, plugin_manager, monkeypatch):
    """The contamination check's cache key and the tokenization cache's hash the same files: the
    second finds the first's digests (the memo of core.files.file_digest)."""
    from sec_cybert.host.planner import plan_pipeline

    corpus, pipeline = _planned_pipeline(tmp_path, plugin_manager)
    plan_pipeline(pipeline())
    time.sleep(0.05)
    monkeypatch.setattr(core_files, "RACY_NS", 10_000_000)  # the test's files are new: remember them
    monkeypatch.setattr(core_files, "_DIGESTS", {})
    hashed = []
    original = core_files.hashlib.file_digest

    def file_digest(handle, *args, **kwargs):
        hashed.append(os.path.basename(handle.name))
        return original(handle, *args, **kwargs)

    monkeypatch.setattr(core_files.hashlib, "file_digest", file_digest)
    plan_pipeline(pipeline())
    corpus_files = ["shard-00000.jsonl", "shard-00001.jsonl", "paragraphs.jsonl"]
    assert sorted(name for name in hashed if name in corpus_files) == sorted(corpus_files)


# -- any changed byte misses ---------------------------------------------------------------------------


def test_a_same_size_edit_with_the_mtime_set_back_misses(tmp_path, tokenizer, reads, tokenized):
    shards = write_jsonl(tmp_path / "shards" / "shard-00000.jsonl", filing_records(first_line_end="\n")).parent
    shard = shards / "shard-00000.jsonl"
    stage = _stage(JsonlShards(shards))
    first = stage.prepare_data(tokenizer, seed=0)[2]
    assert first["tokenization"]["cache"] == "miss" and reads["documents_dataset"] == 1
    assert _stage(JsonlShards(shards)).prepare_data(tokenizer, seed=0)[2]["tokenization"]["cache"] == "hit"
    assert reads["documents_dataset"] == 1  # the hit read nothing

    _same_size_edit(shard, b"Filing 3.", b"Filing 9.")
    train, _, again = _stage(JsonlShards(shards)).prepare_data(tokenizer, seed=0)
    assert (
        again["tokenization"]["cache"] == "miss"
        and again["tokenization"]["key"] != first["tokenization"]["key"]
    )
    assert reads["documents_dataset"] == 2 and tokenized == [8, 8]
    # What trains is the new text: the same as a stage that never saw the old one.
    fresh, _, _ = _stage(JsonlShards(shards), cache_tokenization=False).prepare_data(tokenizer, seed=0)
    assert train.to_dict() == fresh.to_dict()


def test_file_digest_sees_a_same_size_edit_with_the_mtime_set_back_after_remembering(tmp_path, monkeypatch):
    """The process's memo of digests is keyed by ctime too, which setting mtime back moves on."""
    monkeypatch.setattr(core_files, "RACY_NS", 50_000_000)
    path = tmp_path / "shard.jsonl"
    path.write_bytes(b'{"id": "a", "text": "audit committee"}\n')
    time.sleep(0.2)  # older than RACY_NS: its digest is remembered
    before = core_files.file_digest(path)
    assert core_files.file_signature(path) in core_files._DIGESTS
    _same_size_edit(path, b"audit", b"AUDIT")
    assert core_files.file_digest(path) != before
    assert (
        core_files.file_digest(path)
        == core_files.hashlib.file_digest(path.open("rb"), "blake2b").hexdigest()[:32]
    )


def test_a_file_changed_within_the_racy_window_is_not_remembered(tmp_path):
    path = tmp_path / "shard.jsonl"
    path.write_bytes(b"new\n")
    core_files.file_digest(path)
    assert core_files.file_signature(path) not in core_files._DIGESTS


def test_a_corpus_changed_while_it_is_read_is_an_error_and_not_stored(tmp_path, tokenizer, monkeypatch):
    from sec_cybert.corpus.scratch import cache_root

    shards = write_jsonl(tmp_path / "shards" / "shard-00000.jsonl", filing_records(first_line_end="\n")).parent
    original = dataset_module.documents_dataset

    def documents_dataset(*args, **kwargs):
        documents = original(*args, **kwargs)
        _same_size_edit(shards / "shard-00000.jsonl", b"Filing 2.", b"Filing 7.")  # after the key hashed it
        return documents

    monkeypatch.setattr(dataset_module, "documents_dataset", documents_dataset)
    with pytest.raises(DataError, match="changed while it was read"):
        _stage(JsonlShards(shards)).prepare_data(tokenizer, seed=0)
    assert not any((cache_root() / "tokenized").glob("[!.]*"))


def test_other_exclusions_another_group_field_or_other_settings_miss(tmp_path, tokenizer, tokenized):
    from sec_cybert.corpus.contamination import Exclusions

    shards = write_jsonl(tmp_path / "shards" / "shard-00000.jsonl", filing_records(first_line_end="\n")).parent
    keys = set()
    for stage, exclusions in (
        (_stage(JsonlShards(shards)), None),
        (_stage(JsonlShards(shards)), Exclusions("s", {2: ("filing-2", (0,))})),
        (_stage(JsonlShards(shards)), Exclusions("s", {2: ("filing-2", None)})),
        (_stage(JsonlShards(shards), validation_group_field="cik"), None),
        (_stage(JsonlShards(shards, min_chars=100)), None),
    ):
        report = stage.prepare_data(tokenizer, seed=0, exclusions=exclusions)[2]
        assert report["tokenization"]["cache"] == "miss"
        keys.add(report["tokenization"]["key"])
    assert len(keys) == 5 and len(tokenized) == 5
    # No exclusions and empty ones are the same documents: the same entry.
    again = _stage(JsonlShards(shards)).prepare_data(tokenizer, seed=0, exclusions=Exclusions("s"))[2]
    assert again["tokenization"]["cache"] == "hit"


def test_a_hit_reports_what_the_read_skipped(tmp_path, tokenizer, reads):
    shard = write_jsonl(tmp_path / "shards" / "shard-00000.jsonl", filing_records(first_line_end="\n"))
    with shard.open("a") as handle:
        handle.write("{not json\n")
    corpus = JsonlShards(shard.parent, on_bad_record="skip", min_chars=60)
    miss = _stage(corpus).prepare_data(tokenizer, seed=0)[2]
    hit = _stage(corpus).prepare_data(tokenizer, seed=0)[2]
    assert (miss["tokenization"]["cache"], hit["tokenization"]["cache"]) == ("miss", "hit")
    assert reads["documents_dataset"] == 1
    assert miss["read"]["skipped"] and hit["read"] == miss["read"]
    assert {k: v for k, v in hit.items() if k != "tokenization"} == {
        k: v for k, v in miss.items() if k != "tokenization"
    }


def test_a_source_that_does_not_say_its_files_make_its_documents_is_read_every_time(
    tmp_path, tokenizer, reads
):
    import attrs

    @attrs.frozen
    class Listed:  # a plugin's source: files() names what it reads, but it may read more
        inner: JsonlShards

        def files(self):
            return self.inner.files()

        def iter_documents(self, report):
            return self.inner.iter_documents(report)

        def describe(self):
            return "listed"

    shards = write_jsonl(tmp_path / "shards" / "shard-00000.jsonl", filing_records(first_line_end="\n")).parent
    reports = [_stage(Listed(JsonlShards(shards))).prepare_data(tokenizer, seed=0)[2] for _ in range(2)]
    assert [r["tokenization"]["cache"] for r in reports] == ["miss", "hit"]
    assert reads["documents_dataset"] == 2  # keyed by the documents read, as before

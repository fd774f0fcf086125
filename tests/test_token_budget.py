"""The DAPT token budget is what trains: the newest documents, exactly their tokens, whole documents held out.

Checked against what the Trainer received (its train and eval datasets), not against the report.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import transformers

from sec_cybert.host.pipeline import load_run_config
from sec_cybert.host.planner import plan_pipeline
from sec_cybert.stages.loading import load_tokenizer
from sec_cybert.testing import TINY_ENCODER_OPTIONS, TINY_TRAINING, write_jsonl

WORDS = ["audit", "committee", "cybersecurity", "risk", "vendor", "incident", "board", "officer", "program", "assessment"]


def _dated_corpus(root, documents=10):
    """Filings with distinct dates (shuffled in the file, so file order is not date order) and
    distinct texts, so each document's tokens are recognisable."""
    rng = random.Random(5)
    records = []
    for i in range(documents):
        words = [rng.choice(WORDS) for _ in range(30 + 7 * i)]
        records.append(
            {
                "id": f"filing-{i}",
                "text": f"Filing number {i} of company {i}. " + " ".join(words) + ".",
                "metadata": {"filing_date": f"20{15 + i}-03-01", "cik": str(100 + i)},
            }
        )
    rng.shuffle(records)
    write_jsonl(root / "shards" / "shard-00000.jsonl", records[:5])
    write_jsonl(root / "shards" / "shard-00001.jsonl", records[5:])
    return root / "shards", records


def _config(shards, **stage):
    return {
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
                "training": {**TINY_TRAINING, "max_steps": 1, "save_strategy": "no"},
                **stage,
            }
        ],
    }


@pytest.fixture
def captured(monkeypatch):
    """What the Trainer was given when ``train`` was called."""
    seen = {}
    original = transformers.Trainer.train

    def train(self, *args, **kwargs):
        seen["train"], seen["eval"] = self.train_dataset, self.eval_dataset
        return original(self, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "train", train)
    return seen


def _flat(dataset):
    """The original tokens of a dataset's rows, concatenated (a premasked validation set keeps
    the masked tokens' originals in its labels)."""
    if dataset is None:
        return []
    if "labels" not in dataset.column_names:
        return [t for ids in dataset["input_ids"] for t in ids]
    return [
        label if label != -100 else token
        for ids, labels in zip(dataset["input_ids"], dataset["labels"], strict=True)
        for token, label in zip(ids, labels, strict=True)
    ]


def test_the_trainer_gets_exactly_the_newest_documents_tokens(tmp_path, captured, plugin_manager):
    shards, records = _dated_corpus(tmp_path)
    newest_first = sorted(records, key=lambda r: r["metadata"]["filing_date"], reverse=True)
    pipeline = load_run_config(_config(shards), plugin_manager=plugin_manager).pipeline
    tokenizer = load_tokenizer(pipeline.materialize_encoder(tmp_path / "base-probe"))
    lengths = [len(tokenizer(r["text"])["input_ids"]) for r in newest_first]
    budget = sum(lengths[:4]) + lengths[4] // 2  # room for four whole documents, not five
    config = _config(shards, max_tokens=budget, validation_split=0.25)
    pipeline = load_run_config(config, plugin_manager=plugin_manager).pipeline
    plan = plan_pipeline(pipeline).stages[0]
    pipeline.run(tmp_path / "run")
    tokenizer = load_tokenizer(str(tmp_path / "run" / "base"))

    kept = newest_first[:4]
    expected = {r["id"]: tokenizer(r["text"])["input_ids"] for r in kept}
    record = json.loads((tmp_path / "run" / "dapt" / "stage.json").read_text())["report"]
    assert record["selection"]["tokens_kept"] == sum(map(len, expected.values())) <= budget
    assert record["selection"]["oldest_kept"] == kept[-1]["metadata"]["filing_date"]

    # The Trainer's train and eval blocks, concatenated, are whole kept documents, newest first
    # within each side: every token of the four newest filings, and no other token.
    train_tokens, eval_tokens = _flat(captured["train"]), _flat(captured["eval"])
    assert len(train_tokens) + len(eval_tokens) == record["selection"]["tokens_kept"]
    validation_ids = [r["id"] for r in kept if _contains(eval_tokens, expected[r["id"]])]
    assert len(validation_ids) == record["validation"]["documents"] == 1  # ceil(0.25 * 4), a whole filing
    train_ids = [r["id"] for r in kept if r["id"] not in validation_ids]
    assert train_tokens == [t for i in train_ids for t in expected[i]]
    assert eval_tokens == expected[validation_ids[0]]
    assert all(len(ids) <= 32 for ids in captured["train"]["input_ids"])

    # plan reads the same data path: its counts are the Trainer's.
    assert (plan.sequences_train, plan.sequences_validation) == (len(captured["train"]), len(captured["eval"]))
    assert plan.tokens == record["selection"]["tokens_kept"] and plan.documents == 4


def _contains(haystack, needle):
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def test_concat_with_word_ids_under_a_budget_attaches_each_documents_own_words(tmp_path, plugin_manager):
    shards, records = _dated_corpus(tmp_path)
    config = _config(shards, max_tokens=150, validation_split=0.0)
    config["stages"][0]["chunker"]["word_ids"] = True
    config["stages"][0]["masker"] = {"kind": "whole-word", "probability": 0.3}
    stage = load_run_config(config, plugin_manager=plugin_manager).pipeline.stages[0]
    pipeline = load_run_config(config, plugin_manager=plugin_manager).pipeline
    tokenizer = load_tokenizer(pipeline.materialize_encoder(tmp_path / "base"))
    train, validation, report = stage.prepare_data(tokenizer, seed=0)
    assert validation is None
    flat_ids = np.concatenate([np.asarray(b) for b in train["input_ids"]])
    flat_words = np.concatenate([np.asarray(w) for w in train["word_ids"]])
    assert len(flat_ids) == len(flat_words) == report["selection"]["tokens_kept"]
    # Special tokens carry no word; every document's words are its own (renumbered, increasing).
    special = np.isin(flat_ids, tokenizer.all_special_ids)
    assert (flat_words[special] == -1).all() and (flat_words[~special] >= 0).all()
    assert (np.diff(flat_words[~special]) >= 0).all()


def test_dapt_validation_holds_out_whole_companies_when_asked(tmp_path, plugin_manager):
    shards, records = _dated_corpus(tmp_path)
    # Two filings per company: a company never sits on both sides.
    for record in records:
        record["metadata"]["cik"] = str(int(record["id"].split("-")[1]) // 2)
    write_jsonl(shards / "shard-00000.jsonl", records[:5])
    write_jsonl(shards / "shard-00001.jsonl", records[5:])
    config = _config(shards, validation_split=0.2, validation_group_field="cik")
    pipeline = load_run_config(config, plugin_manager=plugin_manager).pipeline
    tokenizer = load_tokenizer(pipeline.materialize_encoder(tmp_path / "base"))
    stage = pipeline.stages[0]
    _, _, report = stage.prepare_data(tokenizer, seed=0)
    assert report["validation"]["documents"] == 2 and report["train"]["documents"] == 8
    texts = {r["id"]: r["text"] for r in records}
    by_company = {}
    for r in records:
        by_company.setdefault(r["metadata"]["cik"], []).append(r["id"])
    train, validation, _ = stage.prepare_data(tokenizer, seed=0)
    held = tokenizer.decode([t for ids in validation["input_ids"] for t in ids])
    held_ids = [i for i, text in texts.items() if text.split(".")[0] in held]
    assert len(held_ids) == 2 and any(sorted(held_ids) == sorted(ids) for ids in by_company.values())


def test_truncated_paragraphs_are_counted_in_plan_and_stage_report(tmp_path, plugin_manager):
    from sec_cybert.testing import tiny_pipeline_config, write_tiny_corpus

    tiny = write_tiny_corpus(tmp_path / "corpus")
    paragraphs = [json.loads(line) for line in tiny.paragraphs.read_text().splitlines()]
    huge = " ".join(random.Random(1).choice(WORDS) for _ in range(3000))  # one paragraph of 3,000 words
    write_jsonl(tiny.paragraphs, [*paragraphs, {"id": "huge", "text": huge}])
    config = tiny_pipeline_config(tiny)
    config["stages"] = config["stages"][1:]  # TAPT (max_length 64) and the fine-tune
    train = [json.loads(line) for line in tiny.train.read_text().splitlines()]
    train[0]["text"] = huge + " unique tail words for the fine-tune"
    write_jsonl(tiny.train, train)
    pipeline = load_run_config(config, plugin_manager=plugin_manager).pipeline
    plan = plan_pipeline(pipeline)
    pipeline.run(tmp_path / "run")
    tokenizer = load_tokenizer(str(tmp_path / "run" / "base"))
    lengths = [len(tokenizer(p["text"])["input_ids"]) for p in [*paragraphs, {"text": huge}]]
    cut = [n - 64 for n in lengths if n > 64]
    report = json.loads((tmp_path / "run" / "tapt" / "stage.json").read_text())["report"]
    assert report["duplicates"]["dropped"] == 0 and lengths[-1] > 3000
    assert report["truncated"] == {"documents": len(cut), "tokens": sum(cut)}
    assert f"documents truncated: {len(cut)} ({sum(cut):,} tokens cut off)" in plan.stages[0].notes
    finetune = json.loads((tmp_path / "run" / "finetune-tapt" / "stage.json").read_text())["report"]
    train_cut = [len(tokenizer(r["text"])["input_ids"]) - 64 for r in train]
    assert finetune["train"]["truncated"] == {"documents": sum(n > 0 for n in train_cut), "tokens": sum(n for n in train_cut if n > 0)}

"""Which copy of a duplicated filing an MLM stage keeps: the newest (then the lowest id), whatever
the order of the shards, so reordering them cannot change what DAPT trains on."""

from __future__ import annotations

import random

import pytest

from sec_cybert.core.components import ReadReport
from sec_cybert.core.encoders import train_bpe_tokenizer
from sec_cybert.corpus import JsonlShards
from sec_cybert.corpus.dataset import documents_dataset
from sec_cybert.datapath.chunking import ConcatChunker
from sec_cybert.datapath.masking import TokenMasker
from sec_cybert.stages.mlm import MLMStage
from sec_cybert.testing import write_jsonl

WORDS = ["audit", "committee", "cybersecurity", "risk", "vendor", "incident", "board", "officer", "program"]
COPIED = "The same risk factor text, filed again word for word. " + " ".join(WORDS * 4)


@pytest.fixture(scope="module")
def tokenizer():
    rng = random.Random(0)
    return train_bpe_tokenizer([" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(30)], vocab_size=300)


def _filings():
    """Two shards: the older copy of a text in the first, the newer copy (and a same-day copy with a
    later id) in the second, each beside documents of its own."""
    rng = random.Random(2)

    def own(i, date):
        text = f"Filing {i}. " + " ".join(rng.choice(WORDS) for _ in range(25 + 5 * i)) + "."
        return {"id": f"filing-{i}", "text": text, "metadata": {"filing_date": date}}

    first = [
        own(1, "2021-03-01"),
        {"id": "copy-2021", "text": COPIED, "metadata": {"filing_date": "2021-02-11"}},
        own(2, "2022-03-01"),
    ]
    second = [
        own(3, "2023-03-01"),
        {"id": "copy-2024-b", "text": COPIED, "metadata": {"filing_date": "2024-02-14"}},
        {"id": "copy-2024-a", "text": COPIED, "metadata": {"filing_date": "2024-02-14"}},
        own(4, "2024-03-01"),
    ]
    return first, second


def _shards(root, order):
    for index, records in enumerate(order):
        write_jsonl(root / f"shard-{index:05d}.jsonl", records)
    return root


def _stage(shards, **overrides):
    return MLMStage(
        corpus=JsonlShards(shards),
        chunker=ConcatChunker(seq_len=16),
        masker=TokenMasker(),
        validation_split=0.25,
        **overrides,
    )


def _kept_ids(stage, tokenizer):
    documents = documents_dataset(stage.corpus, ReadReport())
    tokenized, prepared = stage._tokenized_documents(documents, tokenizer)
    return sorted(tokenized["id"]), prepared["duplicates"]


def test_the_newest_copy_is_kept_whatever_the_shard_order(tmp_path, tokenizer):
    first, second = _filings()
    forward = _stage(_shards(tmp_path / "forward", [first, second]))
    backward = _stage(_shards(tmp_path / "backward", [second[::-1], first[::-1]]))
    kept, duplicates = _kept_ids(forward, tokenizer)
    assert kept == _kept_ids(backward, tokenizer)[0]
    # Of the three copies: the 2024 ones are newest, and of those the lower id.
    assert "copy-2024-a" in kept and "copy-2021" not in kept and "copy-2024-b" not in kept
    assert duplicates["dropped"] == 2 and duplicates["exact_copies"] == 2


def test_reordered_shards_train_on_the_same_blocks(tmp_path, tokenizer):
    first, second = _filings()
    # Documents train newest first: the kept copy's date decides where its tokens fall.
    stage = {"cache_tokenization": False}
    forward = _stage(_shards(tmp_path / "forward", [first, second]), **stage).prepare_data(tokenizer, seed=0)
    backward = _stage(_shards(tmp_path / "backward", [second, first]), **stage).prepare_data(tokenizer, seed=0)
    for ours, theirs in zip(forward[:2], backward[:2], strict=True):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            assert ours.to_dict() == theirs.to_dict()
    assert forward[2]["selection"] == backward[2]["selection"]


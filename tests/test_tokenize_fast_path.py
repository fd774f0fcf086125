"""DAPT's tokenization straight from the Rust backend (no offsets) gives the very tokens, and so
the very blocks, that ``tokenizer(...)`` gave."""

from __future__ import annotations

import hashlib
import random

import pytest

from sec_cybert.core.encoders import train_bpe_tokenizer
from sec_cybert.corpus import JsonlShards
from sec_cybert.datapath import chunking
from sec_cybert.datapath.chunking import ConcatChunker
from sec_cybert.datapath.masking import TokenMasker
from sec_cybert.stages.mlm import MLMStage
from sec_cybert.testing import write_jsonl

WORDS = ["audit", "committee", "cybersecurity", "risk", "vendor", "incident", "board", "officer", "program"]
ODD = [
    "",
    "   \n\t ",
    "Straße ﬁle — “quoted” naïve café 10-K § 1.05 ½ ①",
    "[CLS] a text that names [SEP] and [MASK] and <mask> tokens [PAD]",
    "emoji 🔒 and CJK 網絡安全 and Arabic الأمن السيبراني",
    "x" * 5000,
]


@pytest.fixture(scope="module")
def tokenizer():
    rng = random.Random(0)
    return train_bpe_tokenizer(
        [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(30)], vocab_size=300
    )


def _texts():
    rng = random.Random(3)
    return ODD + [
        " ".join(rng.choice(WORDS + ["\n", "Ä", "42"]) for _ in range(rng.randint(1, 400))) for _ in range(30)
    ]


def test_the_backends_ids_are_the_tokenizers(tokenizer):
    texts = _texts()
    fast = chunking._backend_ids(texts, tokenizer)
    assert fast is not None  # the path this test is about is taken
    reference = tokenizer(texts, return_attention_mask=False, return_token_type_ids=False, verbose=False)
    assert fast == reference["input_ids"]
    out = chunking._tokenize_batch({"text": texts}, tokenizer, max_length=None, with_word_ids=False)
    assert out == {
        "input_ids": reference["input_ids"],
        "n_tokens": [len(ids) for ids in reference["input_ids"]],
    }


def test_a_backend_set_to_truncate_or_split_special_tokens_goes_through_the_tokenizer(tokenizer):
    texts = _texts()
    expected = tokenizer(texts, verbose=False)["input_ids"]
    backend = tokenizer.backend_tokenizer
    backend.enable_truncation(max_length=8)  # as a saved tokenizer.json may carry
    assert chunking._backend_ids(texts, tokenizer) is None
    out = chunking._tokenize_batch({"text": texts}, tokenizer, max_length=None, with_word_ids=False)
    assert out["input_ids"] == expected and backend.truncation is None  # not cut; tokenizer reset it
    backend.encode_special_tokens = True
    try:
        assert chunking._backend_ids(texts, tokenizer) is None
    finally:
        backend.encode_special_tokens = False


def _digest(dataset) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(dataset.features).encode())
    for table in dataset.with_format("arrow").iter(batch_size=1000):
        for column in table.columns:
            digest.update(repr(column.to_pylist()).encode())
    return digest.hexdigest()


@pytest.mark.parametrize("document_attention", [False, True])
def test_dapt_blocks_are_the_same_with_and_without_the_fast_path(
    tmp_path, tokenizer, monkeypatch, document_attention
):
    rng = random.Random(5)
    records = [
        {
            "id": f"filing-{i}",
            "text": (ODD[i % len(ODD)] + "\n" if i % 3 else "")
            + " ".join(rng.choice(WORDS) for _ in range(30 + 37 * i)),
            "metadata": {"filing_date": f"20{10 + i % 12}-0{1 + i % 9}-01"},
        }
        for i in range(24)
    ]
    shards = write_jsonl(tmp_path / "shards" / "shard-00000.jsonl", records).parent

    def blocks():
        stage = MLMStage(
            corpus=JsonlShards(shards),
            chunker=ConcatChunker(seq_len=64, document_attention=document_attention),
            masker=TokenMasker(),
            validation_split=0.2,
            cache_tokenization=False,
        )
        train, validation, report = stage.prepare_data(tokenizer, seed=0)
        return _digest(train), _digest(validation), report["selection"]

    taken = []
    original = chunking._backend_ids
    monkeypatch.setattr(chunking, "_backend_ids", lambda *a: taken.append(1) or original(*a))
    fast = blocks()
    assert taken
    monkeypatch.setattr(chunking, "_backend_ids", lambda *a: None)
    assert blocks() == fast

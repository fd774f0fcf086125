# ruff: noqa: E501  (fixture lines are long on purpose: they mirror real filing text)
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sec_cybert.core.components import ReadReport
from sec_cybert.corpus.build import select_corpus
from sec_cybert.corpus.stats import corpus_stats, load_tokenizer, read_shards
from sec_cybert.errors import ConfigError, DataError

WORDS = [
    "the",
    "board",
    "oversees",
    "cybersecurity",
    "risk",
    "and",
    "the",
    "audit",
    "committee",
    "receives",
    "reports",
]


def _doc(i: int, date: str | None, n_words: int, text: str | None = None) -> dict:
    body = text or " ".join(WORDS[(i + k) % len(WORDS)] for k in range(n_words)) + f" filing{i}"
    return {"id": f"doc-{i}", "text": body, "metadata": {"filing_date": date, "cik": str(i)}}


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    out = tmp_path / "shards"
    out.mkdir()
    # Shard order is deliberately not date order: the newest filing sits in the first shard's middle.
    first = [_doc(0, "2023-03-01", 40), _doc(1, "2025-02-14", 40), _doc(2, None, 40)]
    second = [_doc(3, "2024-02-20", 40), _doc(4, "2023-03-01", 0, text=first[0]["text"])]  # exact duplicate
    (out / "shard-00000.jsonl").write_text("\n".join(json.dumps(d) for d in first) + "\n")
    (out / "shard-00001.jsonl").write_text(
        "\n".join(json.dumps(d) for d in second) + '\n{"id": "broken", "text": "unterminated\n[1, 2]\n'
    )
    return out


def test_read_shards_counts_broken_lines(shards):
    report = ReadReport()
    records = list(read_shards(shards, report))
    assert len(records) == 5 and report.kept == 5
    assert report.skipped == {"malformed JSON": 1, "the line is JSON but not an object": 1}
    assert report.examples[0].endswith("shard-00001.jsonl:3: malformed JSON")


def test_stats_table(shards, tiny_tokenizer_dir):
    tok = load_tokenizer(str(tiny_tokenizer_dir))
    stats = corpus_stats(shards, tok, seq_len=32, tokenizer_name="tiny")
    lengths = [
        len(tok(r["text"], add_special_tokens=False)["input_ids"]) for r in read_shards(shards, ReadReport())
    ]
    assert stats.documents == 5 and stats.tokens == sum(lengths)
    assert stats.median_document_tokens == sorted(lengths)[2]
    assert stats.sequences_at_seq_len == sum(lengths) // 32
    assert stats.share_longer_than_seq_len == sum(n > 32 for n in lengths) / 5
    assert stats.chars_per_token == pytest.approx(stats.chars / stats.tokens)
    table = stats.table()
    assert "chars/token" in table and "documents > 32 tokens" in table and "malformed JSON: 1" in table


def test_select_newest_first_by_date_not_shard_order(shards, tiny_tokenizer_dir, tmp_path):
    tok = load_tokenizer(str(tiny_tokenizer_dir))
    per_doc = len(tok(_doc(1, None, 40)["text"], add_special_tokens=False)["input_ids"])
    out = tmp_path / "selected"
    result = select_corpus(shards, out, tokenizer=tok, max_tokens=per_doc * 2 + 5)
    kept = [
        json.loads(line) for p in sorted(out.glob("shard-*.jsonl")) for line in p.read_text().splitlines()
    ]
    assert [r["id"] for r in kept] == ["doc-1", "doc-3"]  # 2025-02-14, then 2024-02-20
    assert result.duplicates_removed == 1
    assert result.selection["newest_kept"] == "2025-02-14" and result.selection["undated"] == 1
    assert all(r["metadata"]["n_tokens"] > 0 for r in kept)
    assert json.loads((out / "selection.json").read_text())["read"]["skipped"]["malformed JSON"] == 1
    assert not list(out.glob(".select-*"))


def test_errors_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match="corpus build"):
        list(read_shards(tmp_path, ReadReport()))
    with pytest.raises(ConfigError, match="tokenizer"):
        load_tokenizer(str(tmp_path / "no-such-tokenizer"))


def _selected_ids(out: Path) -> list[str]:
    return [json.loads(line)["id"] for p in sorted(out.glob("shard-*.jsonl")) for line in p.read_text().splitlines()]


def test_equal_filing_dates_are_broken_by_id_not_by_shard_order(tmp_path, tiny_tokenizer_dir):
    """Reversing the shards must not change which of two same-day filings a budget keeps."""
    tok = load_tokenizer(str(tiny_tokenizer_dir))
    same_day = [_doc(i, "2024-03-01", 40) for i in (7, 5, 6)]
    # An exact copy filed the same day under another id: which copy is kept must not depend on order.
    same_day.append({**_doc(9, "2024-03-01", 0, text=same_day[1]["text"]), "id": "doc-4"})
    per_doc = len(tok(same_day[0]["text"], add_special_tokens=False)["input_ids"])
    selections = []
    for name, order in (("forward", same_day), ("reversed", same_day[::-1])):
        shards = tmp_path / name
        shards.mkdir()
        for number, start in enumerate(range(0, len(order), 2)):
            (shards / f"shard-{number:05d}.jsonl").write_text(
                "".join(json.dumps(d) + "\n" for d in order[start : start + 2])
            )
        select_corpus(shards, tmp_path / f"{name}-out", tokenizer=tok, max_tokens=per_doc * 2 + 5)
        selections.append(_selected_ids(tmp_path / f"{name}-out"))
    assert selections[0] == selections[1] == ["doc-4", "doc-6"]


def test_the_dapt_budget_uses_the_same_ordering():
    """``MLMStage.prepare_data`` and ``corpus select`` both call ``newest_first``: ties by id."""
    import datasets

    from sec_cybert.corpus.select import newest_first

    rows = {
        "id": ["b", "c", "a", "old", "undated"],
        "filing_date": ["2024-01-01", "2024-01-01", "2024-01-01", "2020-01-01", ""],
        "n_tokens": [10, 10, 10, 10, 10],
    }
    forward = datasets.Dataset.from_dict(rows)
    backward = datasets.Dataset.from_dict({key: values[::-1] for key, values in rows.items()})
    for dataset in (forward, backward):
        kept, summary = newest_first(dataset, 25)
        assert kept["id"] == ["a", "b"] and summary.tokens_kept == 20
        assert newest_first(dataset, None)[0]["id"] == ["a", "b", "c", "old", "undated"]

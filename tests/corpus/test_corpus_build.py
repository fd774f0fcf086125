from __future__ import annotations

import json
from pathlib import Path

import pytest

from sec_cybert.core.components import CorpusSource, ReadReport
from sec_cybert.corpus.build import build_item1c, build_shards, select_corpus
from sec_cybert.corpus.edgar_source import EdgarHtmlFilings, iso_date, load_filing, sidecar_path
from sec_cybert.errors import DataError, OptionalDependencyError

ACME = "123456_10K_2024_0000123456-25-000007.htm"


def _records(out: Path) -> list[dict]:
    return [
        json.loads(line)
        for shard in sorted(out.glob("shard-*.jsonl"))
        for line in shard.read_text().splitlines()
    ]


def test_every_file_is_kept_or_skipped_with_reason(html_dir, tmp_path):
    out = tmp_path / "shards"
    summary = build_shards(html_dir, out, min_chars=200, docs_per_shard=1, workers=2)
    assert summary.files == 7
    assert summary.kept + sum(summary.skipped.values()) == summary.files
    assert summary.skipped == {
        "empty file": 1,
        "image-only filing (no text layer)": 1,
        "exhibit-only wrapper (no 10-K body)": 1,
        "shorter than min_chars (200)": 1,  # the cp1252 one-paragraph file
    }
    assert summary.warnings == {
        "not valid UTF-8 (decoded as cp1252)": 1,
        "truncated HTML (no closing </html>)": 1,
    }
    skipped = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    assert {s["file"] for s in skipped if "reason" in s} == {
        "empty.htm",
        "scan.htm",
        "exhibits.htm",
        "cp1252.htm",
    }
    assert json.loads((out / "report.json").read_text())["kept"] == 3
    # Reference layout: shard-*.jsonl, one {id, text, metadata} document per line, in file order.
    assert [p.name for p in sorted(out.glob("shard-*.jsonl"))] == [
        "shard-00000.jsonl",
        "shard-00001.jsonl",
        "shard-00002.jsonl",
    ]
    records = _records(out)
    acme = next(r for r in records if r["metadata"]["source_file"] == ACME)
    assert acme["id"] == "0000123456-25-000007"
    assert acme["metadata"] | {"n_chars": 0} == {
        "cik": "123456",
        "company": "ACME WIDGETS, INC.",
        "form": "10-K",
        "fiscal_year": 2024,
        "filing_date": None,
        "period_end": "2024-12-31",
        "accession": "0000123456-25-000007",
        "source_file": ACME,
        "n_chars": 0,
    }
    legacy = next(r for r in records if r["metadata"]["source_file"] == "legacy_10k.htm")
    assert (
        legacy["id"] == "legacy_10k"
        and legacy["metadata"]["cik"] is None
        and legacy["metadata"]["fiscal_year"] is None
    )


def test_default_min_chars_filters_short_documents(html_dir, tmp_path):
    summary = build_shards(html_dir, tmp_path / "out", workers=1)
    assert summary.kept == 0 and summary.skipped["shorter than min_chars (10000)"] == 4


def test_sidecar_metadata_wins_and_overwrite_is_required(html_dir, tmp_path):
    sidecar_path(html_dir / ACME).write_text(
        json.dumps(
            {
                "cik": "123456",
                "company": "Acme Widgets, Inc.",
                "form": "10-K",
                "accession": "0000123456-25-000007",
                "filing_date": "2025-02-14",
                "report_date": "2024-12-31",
                "fiscal_year": None,
            }
        )
    )
    out = tmp_path / "shards"
    build_shards(html_dir, out, min_chars=200, workers=1)
    acme = next(r for r in _records(out) if r["metadata"]["source_file"] == ACME)
    assert (
        acme["metadata"]["filing_date"] == "2025-02-14"
        and acme["metadata"]["company"] == "Acme Widgets, Inc."
    )
    assert acme["metadata"]["fiscal_year"] == 2024  # null in the sidecar, read from dei
    with pytest.raises(DataError, match="--overwrite"):
        build_shards(html_dir, out, min_chars=200, workers=1)
    build_shards(html_dir, out, min_chars=200, workers=1, overwrite=True)


def test_item1c_paragraphs_and_missing_report(html_dir, tmp_path):
    out = tmp_path / "para" / "item1c.jsonl"
    summary = build_item1c(html_dir, out, workers=2)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # The truncated copy still holds part of Item 1C: kept, and flagged as cut off.
    assert summary.with_item1c == 2 and summary.unterminated_sections == 1
    assert summary.paragraphs == len(rows)
    acme = [r for r in rows if r["metadata"]["source_file"] == ACME]
    assert [r["id"] for r in acme] == [f"0000123456-25-000007-{i:03d}" for i in range(6)]
    assert acme[0]["metadata"]["fiscal_year"] == 2024 and acme[0]["metadata"]["form"] == "10-K"
    missing = [
        json.loads(line) for line in (tmp_path / "para" / "item1c.missing.jsonl").read_text().splitlines()
    ]
    assert len(missing) == summary.filings - 2 == 5
    assert {m["file"]: m["reason"] for m in missing}["empty.htm"] == "empty file"
    report = json.loads((tmp_path / "para" / "item1c.report.json").read_text())
    assert sum(report["without_item1c"].values()) == 5


def test_edgar_source_yields_documents_and_counts_skips(html_dir):
    source = EdgarHtmlFilings(html_dir, min_chars=200)
    assert isinstance(source, CorpusSource)
    report = ReadReport()
    docs = list(source.iter_documents(report))
    assert report.kept == len(docs) == 3 and report.total_skipped == 4
    assert "min_chars" in source.describe() or "200" in source.describe()
    with pytest.raises(DataError):
        EdgarHtmlFilings(html_dir / "missing")
    with pytest.raises(ValueError):
        EdgarHtmlFilings(html_dir, min_chars=-1)


def test_edgar_source_without_selectolax_fails_before_reading(without_selectolax, html_dir):
    report = ReadReport()
    with pytest.raises(OptionalDependencyError, match="pip install 'sec-cybert\\[corpus\\]'"):
        next(EdgarHtmlFilings(html_dir).iter_documents(report))
    assert report.kept == 0 and report.total_skipped == 0
    # Nor is one filing blamed for it: the error is not a "cleaning failed" skip.
    with pytest.raises(OptionalDependencyError):
        load_filing(html_dir / ACME, html_dir)


def test_iso_dates():
    assert iso_date("December 31, 2024") == "2024-12-31"
    assert iso_date("Dec 31,2024") == "2024-12-31"
    assert iso_date("2025-02-14") == "2025-02-14"
    assert iso_date("fiscal 2024") is None and iso_date(None) is None


class _Killed(BaseException):
    """Stands in for SIGKILL/Ctrl-C: nothing after it runs, no cleanup is polite about it."""


def _kill_after(monkeypatch, n_records: int) -> None:
    from sec_cybert.corpus import build

    write = build.ShardWriter.write
    seen = []

    def dying_write(self, record):
        if len(seen) == n_records:
            raise _Killed
        seen.append(record)
        write(self, record)

    monkeypatch.setattr(build.ShardWriter, "write", dying_write)


def test_a_killed_build_is_refused_until_rebuilt(html_dir, tmp_path, monkeypatch, tiny_tokenizer_dir):
    from sec_cybert.corpus import JsonlShards
    from sec_cybert.corpus.stats import corpus_stats, load_tokenizer

    out = tmp_path / "shards"
    build_shards(html_dir, out, min_chars=200, docs_per_shard=1, workers=1)
    assert len(list(JsonlShards(out).iter_documents(ReadReport()))) == 3
    # Killed while overwriting: a complete-looking shard, last run's report gone, marker left.
    _kill_after(monkeypatch, 2)
    with pytest.raises(_Killed):
        build_shards(html_dir, out, min_chars=200, docs_per_shard=1, workers=1, overwrite=True)
    monkeypatch.undo()
    assert [p.name for p in sorted(out.glob("shard-*.jsonl"))] == ["shard-00000.jsonl"]
    assert not (out / "report.json").exists()
    for read in (
        lambda: JsonlShards(out).files(),
        lambda: JsonlShards(out / "shard-00000.jsonl").files(),
        lambda: corpus_stats(out, load_tokenizer(str(tiny_tokenizer_dir))),
        lambda: select_corpus(out, tmp_path / "sel", tokenizer=load_tokenizer(str(tiny_tokenizer_dir)), max_tokens=None),
    ):
        with pytest.raises(DataError, match=r"did not finish .BUILD-IN-PROGRESS\.json.*--overwrite") as caught:
            read()
        assert "\n" not in str(caught.value)
    # Re-run to the end: accepted again, marker gone, report written.
    build_shards(html_dir, out, min_chars=200, docs_per_shard=1, workers=1, overwrite=True)
    assert not (out / "BUILD-IN-PROGRESS.json").exists() and (out / "report.json").exists()
    assert len(JsonlShards(out).files()) == 3


def test_shards_written_by_hand_are_read_as_they_are(tmp_path):
    from sec_cybert.corpus import JsonlShards

    out = tmp_path / "mine"
    out.mkdir()
    (out / "part-a.jsonl").write_text('{"text": "one"}\n')
    (out / "part-b.jsonl").write_text('{"text": "two"}\n')
    report = ReadReport()
    assert [d.text for d in JsonlShards(out).iter_documents(report)] == ["one", "two"]


def test_a_build_directory_reads_its_shards_not_its_skip_log(html_dir, tmp_path):
    from sec_cybert.corpus import JsonlShards

    out = tmp_path / "shards"
    build_shards(html_dir, out, min_chars=200, docs_per_shard=1, workers=1)
    assert (out / "skipped.jsonl").read_text()  # not empty: four files were skipped
    report = ReadReport()
    assert len(list(JsonlShards(out).iter_documents(report))) == 3 and report.total_skipped == 0
    (out / "shard-00001.jsonl").unlink()
    with pytest.raises(DataError, match=r"lists 1 shard\(s\) that are missing \(shard-00001\.jsonl\)"):
        JsonlShards(out).files()

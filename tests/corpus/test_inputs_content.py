"""Inputs that are not what they claim: binary bodies, UTF-16 filings, byte-order marks.

A response or a cached file that is not text must be refused and counted with its reason, never
kept as a document of mojibake; a filing or shard written in UTF-16, or with a BOM, is decoded.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from sec_cybert.core.components import ReadReport
from sec_cybert.corpus.build import build_shards
from sec_cybert.corpus.edgar_source import load_filing
from sec_cybert.corpus.sources import JsonlShards, Paragraphs
from sec_cybert.corpus.text_decode import decode_document, not_text_reason

FIXTURES = Path(__file__).parent / "fixtures"
ACME = "123456_10K_2024_0000123456-25-000007.htm"
#: A PNG's signature and first chunks, then compressed-looking bytes: what a CDN sends for a logo.
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00"
    + random.Random(1).randbytes(3000)
)


def _random_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


# --- build: binary content is skipped with its reason ---------------------------------------


@pytest.fixture
def mixed_dir(tmp_path: Path) -> Path:
    root = tmp_path / "html"
    root.mkdir()
    acme = (FIXTURES / "acme_10k_ixbrl.htm").read_bytes()
    shutil.copy(FIXTURES / "acme_10k_ixbrl.htm", root / ACME)
    (root / "random.htm").write_bytes(_random_bytes(200_000))
    (root / "logo.htm").write_bytes(PNG)
    (root / "utf16le.htm").write_bytes(acme.decode("ascii").encode("utf-16"))  # BOM + LE on x86
    (root / "utf16be.htm").write_bytes(b"\xfe\xff" + acme.decode("ascii").encode("utf-16-be"))
    return root


def test_binary_files_are_skipped_with_a_reason_and_utf16_filings_are_kept(mixed_dir, tmp_path):
    out = tmp_path / "shards"
    summary = build_shards(mixed_dir, out, min_chars=200, workers=1)
    assert summary.files == 5 and summary.kept == 3, summary
    reasons = {reason for reason in summary.skipped}
    assert len(reasons) == 1 and summary.skipped[reasons.pop()] == 2
    assert all(reason.startswith("not text") for reason in summary.skipped), summary.skipped
    assert summary.warnings == {}  # a UTF-16 filing is not "truncated HTML"
    report = json.loads((out / "report.json").read_text())
    assert report["skipped"] == summary.skipped
    skipped = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    assert sorted(s["file"] for s in skipped if "reason" in s) == ["logo.htm", "random.htm"]
    texts = {
        json.loads(line)["metadata"]["source_file"]: json.loads(line)["text"]
        for shard in out.glob("shard-*.jsonl")
        for line in shard.read_text(encoding="utf-8").splitlines()
    }
    assert texts["utf16le.htm"] == texts["utf16be.htm"] == texts[ACME]


def test_the_reason_names_the_share_of_control_characters():
    filing = load_filing(Path("x"), Path("."))  # a missing file: unreadable, not binary
    assert filing.skip_reason.startswith("unreadable")
    text, _ = decode_document(_random_bytes(50_000))
    reason = not_text_reason(text)
    assert reason is not None and "control" in reason
    assert not_text_reason((FIXTURES / "acme_10k_ixbrl.htm").read_text()) is None
    assert not_text_reason("We sell \u201cwidgets\u201d \u2014 since 1952.\f\t\r\n" * 50) is None


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        ("<html>caf\u00e9</html>".encode("utf-8-sig"), "utf-8"),
        ("<html>caf\u00e9</html>".encode("utf-16"), "utf-16"),
        (b"\xfe\xff" + "<html>caf\u00e9</html>".encode("utf-16-be"), "utf-16"),
        (b"\xff\xfe" + "<html>caf\u00e9</html>".encode("utf-16-le"), "utf-16"),
        ("<html>caf\u00e9</html>".encode("utf-16-le"), "utf-16"),  # no BOM, ASCII markup gives it away
        ("<html>caf\u00e9</html>".encode("cp1252"), "cp1252"),
    ],
)
def test_decode_sniffs_byte_order_marks(raw, encoding):
    text, used = decode_document(raw)
    assert text == "<html>caf\u00e9</html>" and used == encoding


# --- JSONL: a BOM or UTF-16 is decoded, not "malformed JSON" --------------------------------


def _records(n: int) -> list[dict]:
    return [{"id": f"d{i}", "text": f"document number {i} about cybersecurity risk"} for i in range(n)]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be-bom"])
def test_jsonl_with_a_byte_order_mark_is_read(tmp_path, encoding):
    text = "".join(json.dumps(r) + "\n" for r in _records(3))
    raw = b"\xfe\xff" + text.encode("utf-16-be") if encoding == "utf-16-be-bom" else text.encode(encoding)
    path = tmp_path / "shard-00000.jsonl"
    path.write_bytes(raw)
    report = ReadReport()
    documents = list(JsonlShards(path).iter_documents(report))
    assert [d.id for d in documents] == ["d0", "d1", "d2"] and report.skipped == {}
    assert list(Paragraphs(path).iter_documents(ReadReport()))[0].text.startswith("document number 0")


def test_a_bad_line_in_a_utf16_file_is_still_counted_by_line(tmp_path):
    text = json.dumps(_records(1)[0]) + "\n{broken\n" + json.dumps(_records(2)[1]) + "\n"
    path = tmp_path / "p.jsonl"
    path.write_bytes(text.encode("utf-16"))
    report = ReadReport()
    assert [d.id for d in Paragraphs(path, on_bad_record="skip").iter_documents(report)] == ["d0", "d1"]
    assert report.skipped == {"malformed JSON": 1} and report.examples[0].endswith(
        "p.jsonl:2: malformed JSON"
    )


# --- fetch: a 200 that is not HTML is refused, counted by reason -----------------------------


@pytest.fixture
def edgar():
    pytest.importorskip("httpx")
    from test_corpus_fetch import EdgarStub

    stub = EdgarStub()
    stub.thread.start()
    stub.timer.start()
    try:
        yield stub
    finally:
        stub.timer.cancel()
        stub.server.shutdown()
        stub.server.server_close()


def test_fetch_refuses_bodies_that_are_not_html_and_counts_them(edgar, tmp_path):
    from test_corpus_fetch import DOC_2023, DOC_2024, FILE_2023, FILE_2024, UA

    from sec_cybert.corpus.fetch import RetryPolicy, fetch_filings

    edgar.routes[DOC_2024] = PNG
    edgar.content_types[DOC_2024] = "image/png"
    edgar.routes[DOC_2023] = json.dumps({"error": "not here"}).encode()
    edgar.content_types[DOC_2023] = "application/json"
    summary = fetch_filings(
        tmp_path,
        user_agent=UA,
        ciks=[123456],
        endpoints=edgar.endpoints(),
        retry=RetryPolicy(max_retries=3, backoff_base=0.01),
        timeout=10,
    )
    assert summary.downloaded == 0 and summary.failed == {}
    assert summary.skipped == {
        FILE_2024: "not HTML (Content-Type image/png)",
        FILE_2023: "not HTML (Content-Type application/json)",
    }
    assert summary.skipped_by_reason == {
        "not HTML (Content-Type image/png)": 1,
        "not HTML (Content-Type application/json)": 1,
    }
    assert edgar.hits[DOC_2024] == 1  # a definite answer: not retried
    assert not (tmp_path / FILE_2024).exists() and not (tmp_path / FILE_2023).exists()


def test_fetch_refuses_a_binary_body_sent_as_html(edgar, tmp_path):
    from test_corpus_fetch import DOC_2024, FILE_2023, FILE_2024, UA

    from sec_cybert.corpus.fetch import RetryPolicy, fetch_filings

    edgar.routes[DOC_2024] = _random_bytes(20_000)
    summary = fetch_filings(
        tmp_path,
        user_agent=UA,
        ciks=[123456],
        endpoints=edgar.endpoints(),
        retry=RetryPolicy(max_retries=1, backoff_base=0.01),
        timeout=10,
    )
    assert list(summary.skipped) == [FILE_2024] and summary.skipped[FILE_2024].startswith("not text")
    assert summary.downloaded == 1 and (tmp_path / FILE_2023).exists() and not (tmp_path / FILE_2024).exists()


def test_fetch_keeps_a_whole_utf16_filing_sent_without_a_length(edgar, tmp_path):
    """Whether an unframed body was cut short is read in its own encoding, not as UTF-8 bytes."""
    from test_corpus_fetch import DOC_2023, DOC_2024, FILE_2023, FILE_2024, UA

    from sec_cybert.corpus.fetch import RetryPolicy, fetch_filings

    utf16 = "<html><body><p>FY2024 10-K in UTF-16</p></body></html>".encode("utf-16")
    edgar.routes[DOC_2024] = utf16
    edgar.faults[DOC_2024] = ["nolength"]
    edgar.faults[DOC_2023] = ["cut"] * 10
    summary = fetch_filings(
        tmp_path,
        user_agent=UA,
        ciks=[123456],
        endpoints=edgar.endpoints(),
        retry=RetryPolicy(max_retries=1, backoff_base=0.01),
        timeout=10,
    )
    assert (tmp_path / FILE_2024).read_bytes() == utf16 and edgar.hits[DOC_2024] == 1
    assert list(summary.failed) == [FILE_2023] and "cut short" in summary.failed[FILE_2023]

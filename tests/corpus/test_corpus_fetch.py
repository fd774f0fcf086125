"""fetch against a local EDGAR-shaped HTTP server on 127.0.0.1, faults included."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("httpx")

from sec_cybert.corpus.fetch import EdgarEndpoints, RateLimiter, RetryPolicy, fetch_filings, parse_years  # noqa: E402
from sec_cybert.errors import ConfigError  # noqa: E402

UA = "Test Runner tests@example.com"
DOC_2024 = "/Archives/edgar/data/123456/000012345625000007/acme-20241231.htm"
DOC_2023 = "/Archives/edgar/data/123456/000012345624000003/acme-20231231.htm"
SUBMISSIONS = {
    "cik": "0000123456",
    "name": "Acme Widgets, Inc.",
    "filings": {
        "recent": {
            "accessionNumber": ["0000123456-25-000007", "0000123456-25-000002", "0000123456-22-000004"],
            "filingDate": ["2025-02-14", "2025-01-10", "2022-02-11"],
            "reportDate": ["2024-12-31", "2025-01-09", "2021-12-31"],
            "form": ["10-K", "8-K", "10-K"],
            "primaryDocument": ["acme-20241231.htm", "acme-8k.htm", "acme-20211231.htm"],
        },
        "files": [
            {
                "name": "CIK0000123456-submissions-001.json",
                "filingFrom": "2023-01-01",
                "filingTo": "2024-12-31",
            },
            {
                "name": "CIK0000123456-submissions-002.json",
                "filingFrom": "2001-01-01",
                "filingTo": "2014-12-31",
            },
        ],
    },
}
OLDER_PAGE = {
    "accessionNumber": ["0000123456-24-000003"],
    "filingDate": ["2024-02-20"],
    "reportDate": ["2023-12-31"],
    "form": ["10-K"],
    "primaryDocument": ["acme-20231231.htm"],
}
TICKERS = {"0": {"cik_str": 123456, "ticker": "ACME", "title": "Acme Widgets, Inc."}}


class EdgarStub:
    """Serves EDGAR-shaped routes; ``faults[path]`` is a queue of failures served before success."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {
            "/submissions/CIK0000123456.json": json.dumps(SUBMISSIONS).encode(),
            "/submissions/CIK0000123456-submissions-001.json": json.dumps(OLDER_PAGE).encode(),
            "/submissions/CIK0000123456-submissions-002.json": b"{}",
            "/files/company_tickers.json": json.dumps(TICKERS).encode(),
            DOC_2024: b"<html><body><p>FY2024 10-K</p></body></html>",
            DOC_2023: b"<html><body><p>FY2023 10-K</p></body></html>",
        }
        self.faults: dict[str, list[str]] = {}
        self.hits: Counter[str] = Counter()
        self.user_agents: set[str] = set()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):  # noqa: N802
                stub.hits[self.path] += 1
                stub.user_agents.add(self.headers.get("User-Agent", ""))
                queue = stub.faults.get(self.path) or []
                fault = queue.pop(0) if queue else None
                if fault == "slow":
                    time.sleep(0.6)
                if fault == "drop":  # promise more bytes than are sent, then hang up
                    self.send_response(200)
                    self.send_header("Content-Length", "5000")
                    self.end_headers()
                    self.wfile.write(b"<html>partial")
                    self.close_connection = True
                    return
                if fault and fault.isdigit():
                    self.send_response(int(fault))
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = stub.routes.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        # Safety net: the server stops itself even if a test hangs.
        self.timer = threading.Timer(60, self.server.shutdown)
        self.timer.daemon = True

    def endpoints(self) -> EdgarEndpoints:
        return EdgarEndpoints(self.base, f"{self.base}/Archives", f"{self.base}/files/company_tickers.json")


@pytest.fixture
def edgar():
    stub = EdgarStub()
    stub.thread.start()
    stub.timer.start()
    try:
        yield stub
    finally:
        stub.timer.cancel()
        stub.server.shutdown()
        stub.server.server_close()


def _fetch(stub: EdgarStub, cache: Path, **kwargs):
    options = dict(
        user_agent=UA,
        tickers=["acme"],
        years=(2023, 2025),
        endpoints=stub.endpoints(),
        retry=RetryPolicy(max_retries=3, backoff_base=0.01),
        timeout=0.3,
        threads=2,
    )
    options.update(kwargs)
    return fetch_filings(cache, **options)


def test_fetch_retries_faults_writes_sidecars_and_resumes(edgar, tmp_path):
    edgar.faults[DOC_2024] = ["429", "503", "slow"]
    edgar.faults[DOC_2023] = ["drop"]
    summary = _fetch(edgar, tmp_path)
    assert (summary.filings, summary.downloaded, summary.cached, summary.failed) == (2, 2, 0, {})
    assert edgar.hits[DOC_2024] == 4 and edgar.hits[DOC_2023] == 2
    assert edgar.hits["/submissions/CIK0000123456-submissions-002.json"] == 0  # page ends before 2023
    assert edgar.user_agents == {UA}
    html = tmp_path / "123456_10K_2024_0000123456-25-000007.htm"
    assert html.read_bytes() == edgar.routes[DOC_2024]
    meta = json.loads((tmp_path / (html.name + ".meta.json")).read_text())
    assert meta["accession"] == "0000123456-25-000007" and meta["filing_date"] == "2025-02-14"
    assert meta["company"] == "Acme Widgets, Inc." and meta["fiscal_year"] is None
    assert not list(tmp_path.glob("*.part"))

    again = _fetch(edgar, tmp_path)
    assert (again.downloaded, again.cached) == (0, 2)
    assert edgar.hits[DOC_2024] == 4  # nothing downloaded twice


def test_persistent_failure_is_reported_and_leaves_no_file(edgar, tmp_path):
    edgar.faults[DOC_2023] = ["500"] * 10
    summary = _fetch(edgar, tmp_path, ciks=[123456], tickers=[])
    assert list(summary.failed) == ["123456_10K_2023_0000123456-24-000003.htm"]
    assert "4 attempts" in summary.failed["123456_10K_2023_0000123456-24-000003.htm"]
    assert edgar.hits[DOC_2023] == 4  # bounded: 1 try + 3 retries
    assert not (tmp_path / "123456_10K_2023_0000123456-24-000003.htm").exists()
    assert not list(tmp_path.glob("*.part"))
    # Once EDGAR recovers, a later run picks up exactly the missing filing.
    edgar.faults[DOC_2023] = []
    assert _fetch(edgar, tmp_path, ciks=[123456], tickers=[]).downloaded == 1


def test_refuses_without_user_agent_or_with_unknown_ticker(edgar, tmp_path):
    for bad in ("", "python-httpx/0.28", "no-email-here please"):
        with pytest.raises(ConfigError, match="User-Agent"):
            _fetch(edgar, tmp_path, user_agent=bad)
    assert sum(edgar.hits.values()) == 0
    with pytest.raises(ConfigError, match="NOPE"):
        _fetch(edgar, tmp_path, tickers=["acme", "nope"])
    with pytest.raises(ConfigError, match="at most 10"):
        _fetch(edgar, tmp_path, max_requests_per_second=50)


def test_rate_limiter_spaces_requests():
    limiter = RateLimiter(20.0)
    start = time.monotonic()
    for _ in range(6):
        limiter.wait()
    assert time.monotonic() - start >= 5 / 20 - 0.01


def test_parse_years():
    assert parse_years("2023-2025") == (2023, 2025) and parse_years("2024") == (2024, 2024)
    for bad in ("2025-2023", "23-25", ""):
        with pytest.raises(ConfigError):
            parse_years(bad)

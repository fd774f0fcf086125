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
from sec_cybert.errors import ConfigError, DataError  # noqa: E402

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
#: What EDGAR (and the CDN in front of it) sends with status 200 instead of a filing.
ERROR_PAGES = {
    "ratelimit": b"<!DOCTYPE html><html><head><title>SEC.gov | Request Rate Threshold Exceeded</title></head>"
    b"<body><h1>Your Request Originates from an Undeclared Automated Tool</h1><p>To allow for equitable "
    b"access to all users, SEC reserves the right to limit requests.</p></body></html>",
    "denied": b"<HTML><HEAD>\n<TITLE>Access Denied</TITLE>\n</HEAD><BODY>\n<H1>Access Denied</H1>\n"
    b"You don't have permission to access this resource on this server.<P>\nReference #18.1234\n</BODY>\n</HTML>\n",
    "blank": b"<html><head></head><body></body></html>",
}


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
        self.content_types: dict[str, str] = {}
        #: How long a "slow" response waits before its headers: far past the test's read timeout.
        self.slow_seconds = 8.0
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
                body = stub.routes.get(self.path)
                if fault == "slow":
                    time.sleep(stub.slow_seconds)
                if fault in ERROR_PAGES:  # a 200 whose body is an error page, not the document
                    self._send(200, ERROR_PAGES[fault])
                    return
                if fault == "nolength":  # the whole body, framed only by closing the connection
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(body or b"")
                    self.close_connection = True
                    return
                if fault == "cut":  # no Content-Length: the body ends where the connection does
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write((body or b"")[: len(body or b"") // 2])
                    self.close_connection = True
                    return
                if fault == "trickle":  # a byte every 0.05 s, each well inside the read timeout, for 60 s
                    self.send_response(200)
                    self.send_header("Content-Length", "1200")
                    self.end_headers()
                    try:
                        for _ in range(1200):
                            self.wfile.write(b"<")
                            self.wfile.flush()
                            time.sleep(0.05)
                    except OSError:  # the client gave up: that is the point
                        pass
                    return
                if fault == "badgzip":  # says gzip, is not
                    self.send_response(200)
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Content-Length", str(len(body or b"")))
                    self.end_headers()
                    self.wfile.write(body or b"")
                    return
                if fault == "loop":  # a redirect to itself, forever
                    self.send_response(302)
                    self.send_header("Location", self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
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
                self._send(200 if body is not None else 404, body or b"")

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if self.path in stub.content_types:
                    self.send_header("Content-Type", stub.content_types[self.path])
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        # Polled every 50 ms, not 0.5 s: shutdown() waits for the next poll, after every test.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
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
        # Generous: a busy machine must not turn a local request into a timeout. The tests that
        # want a timeout set a short one and make the server far slower than it.
        timeout=10.0,
        threads=2,
    )
    options.update(kwargs)
    return fetch_filings(cache, **options)


@pytest.mark.slow
def test_fetch_retries_faults_writes_sidecars_and_resumes(edgar, tmp_path):
    edgar.faults[DOC_2024] = ["429", "503", "slow"]
    edgar.faults[DOC_2023] = ["drop"]
    summary = _fetch(edgar, tmp_path, timeout=2.0)  # the slow response waits 8 s
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
    with pytest.raises(ConfigError, match="--deadline must be a positive number of seconds, got 0"):
        _fetch(edgar, tmp_path, deadline=0)
    with pytest.raises(ConfigError, match="--timeout must be a positive number of seconds, got -1"):
        _fetch(edgar, tmp_path, timeout=-1)


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


FILE_2023 = "123456_10K_2023_0000123456-24-000003.htm"
FILE_2024 = "123456_10K_2024_0000123456-25-000007.htm"


@pytest.mark.parametrize("fault", ["cut", "ratelimit", "denied", "blank"])
def test_a_cut_body_or_a_200_error_page_is_retried_never_cached(edgar, tmp_path, fault):
    edgar.faults[DOC_2024] = [fault]
    edgar.faults[DOC_2023] = [fault] * 10
    summary = _fetch(edgar, tmp_path, ciks=[123456], tickers=[])
    # Once: retried, and the good body that follows is what is cached.
    assert edgar.hits[DOC_2024] == 2
    assert (tmp_path / FILE_2024).read_bytes() == edgar.routes[DOC_2024]
    # Every time: counted as failed with the reason, and nothing written.
    assert list(summary.failed) == [FILE_2023] and summary.downloaded == 1
    reason = summary.failed[FILE_2023]
    assert "4 attempts" in reason
    expected = {
        "cut": "cut short",
        "ratelimit": "Request Rate Threshold Exceeded",
        "denied": "Access Denied",
        "blank": "no text",
    }[fault]
    assert expected in reason, reason
    assert not (tmp_path / FILE_2023).exists() and not list(tmp_path.glob("*.part"))


def test_a_trickling_server_hits_the_overall_deadline(edgar, tmp_path):
    edgar.faults[DOC_2023] = ["trickle"] * 10  # 60 s a response, each read well inside the timeout
    start = time.monotonic()
    summary = _fetch(edgar, tmp_path, ciks=[123456], tickers=[], deadline=0.5, retry=RetryPolicy(max_retries=1, backoff_base=0.01))
    # Two attempts without the deadline would take 120 s; with it, about 1 s (generous for busy CI).
    assert time.monotonic() - start < 40
    assert list(summary.failed) == [FILE_2023]
    assert "0.5 s deadline" in summary.failed[FILE_2023]
    assert edgar.hits[DOC_2023] == 2 and not (tmp_path / FILE_2023).exists()


def test_tickers_file_is_fetched_only_for_tickers(edgar, tmp_path):
    edgar.faults["/files/company_tickers.json"] = ["403"] * 10
    summary = _fetch(edgar, tmp_path, ciks=[123456], tickers=[])
    assert summary.failed == {} and summary.downloaded == 2
    assert edgar.hits["/files/company_tickers.json"] == 0


@pytest.mark.parametrize(
    ("fault", "expected"),
    [("badgzip", "could not decode the body"), ("loop", "redirect")],
)
def test_decode_and_redirect_errors_are_counted_failures(edgar, tmp_path, fault, expected):
    edgar.faults[DOC_2023] = [fault] * 50
    summary = _fetch(edgar, tmp_path, ciks=[123456], tickers=[])
    assert list(summary.failed) == [FILE_2023] and summary.downloaded == 1
    assert expected in summary.failed[FILE_2023], summary.failed
    assert not (tmp_path / FILE_2023).exists()


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (b"[]", "not a JSON object"),
        (b"not json at all", "not JSON"),
        (json.dumps({"name": "Acme", "filings": {"recent": ["oops"]}}).encode(), "filings.recent"),
        (
            json.dumps(
                {"filings": {"recent": {**SUBMISSIONS["filings"]["recent"], "form": ["10-K"]}}}
            ).encode(),
            "columns of different lengths",
        ),
        (json.dumps({"filings": {"recent": {}, "files": [{"filingTo": "2025-01-01"}]}}).encode(), "files[0]"),
    ],
)
def test_a_malformed_submissions_index_is_a_counted_failure(edgar, tmp_path, index, expected):
    edgar.routes["/submissions/CIK0000999999.json"] = index
    summary = _fetch(edgar, tmp_path, ciks=[999999, 123456], tickers=[])
    assert list(summary.failed) == ["CIK0000999999.json"], summary.failed
    assert expected in summary.failed["CIK0000999999.json"]
    assert summary.downloaded == 2  # the other company is fetched all the same


def test_a_malformed_row_is_counted_and_unsafe_names_never_reach_the_cache(edgar, tmp_path):
    recent = {
        "accessionNumber": ["../../escape", "0000123456-25-000007"],
        "filingDate": ["2025-02-14", "2025-02-14"],
        "reportDate": ["2024-12-31", "2024-12-31"],
        "form": ["10-K", "10-K"],
        "primaryDocument": ["x.htm", "acme-20241231.htm"],
    }
    edgar.routes["/submissions/CIK0000123456.json"] = json.dumps({"name": "Acme", "filings": {"recent": recent}}).encode()
    summary = _fetch(edgar, tmp_path, ciks=[123456], tickers=[])
    assert summary.downloaded == 1 and summary.filings == 1
    (key,) = summary.failed
    assert key == "CIK0000123456.json recent[0]" and "accession" in summary.failed[key]
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE_2024, FILE_2024 + ".meta.json"]


def test_a_failing_older_page_costs_only_that_page(edgar, tmp_path):
    edgar.faults["/submissions/CIK0000123456-submissions-001.json"] = ["500"] * 10
    summary = _fetch(edgar, tmp_path, ciks=[123456], tickers=[])
    assert list(summary.failed) == ["CIK0000123456-submissions-001.json"]
    assert summary.downloaded == 1 and (tmp_path / FILE_2024).exists()  # "recent" still fetched


def test_a_malformed_tickers_file_is_one_clear_error(edgar, tmp_path):
    edgar.routes["/files/company_tickers.json"] = json.dumps({"0": {"cik_str": "abc", "ticker": "ACME"}}).encode()
    with pytest.raises(DataError, match=r"company_tickers\.json.*malformed.*--ciks"):
        _fetch(edgar, tmp_path)


def test_an_index_without_an_optional_column_is_still_read(edgar, tmp_path):
    recent = {k: v for k, v in SUBMISSIONS["filings"]["recent"].items() if k != "filingDate"}
    edgar.routes["/submissions/CIK0000123456.json"] = json.dumps({"name": "Acme", "filings": {"recent": recent}}).encode()
    summary = _fetch(edgar, tmp_path, ciks=[123456], tickers=[])
    assert summary.failed == {} and summary.downloaded == 1
    assert json.loads((tmp_path / (FILE_2024 + ".meta.json")).read_text())["filing_date"] is None

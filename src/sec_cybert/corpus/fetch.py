"""Download 10-K primary documents from SEC EDGAR into a local cache, politely and resumably.

* The SEC requires a User-Agent naming the requester with a contact e-mail; we refuse to start
  without one rather than be blocked part-way through.
* At most ``max_requests_per_second`` (10 is the SEC's published limit) across all threads.
* 429, 5xx, timeouts and dropped connections are retried with exponential backoff (honouring
  ``Retry-After``), a bounded number of times; then the filing is reported as failed.
* A body is cached only when it is whole and is the document: one shorter than its
  ``Content-Length``, an HTML document cut short where no length was sent (no ``</html>`` near
  its end), and a status-200 error page (SEC's "Request Rate Threshold Exceeded", a CDN's
  "Access Denied", an HTML page with no text) are retried like a 503, then reported as failed.
* A body that is not a document at all -- served as ``image/png`` or ``application/json``, or
  bytes that decode to no text -- is not retried: the filing is skipped, with the reason
  (:mod:`~sec_cybert.corpus.fetch_checks`), and counted by reason in the report.
* Besides the per-read ``timeout``, every request has an overall ``deadline``: a server that
  trickles a byte at a time cannot hold a thread for ever.
* Each file is written to ``<name>.part`` and renamed into place, so a cached file is always
  complete; a re-run skips every filing whose HTML and ``.meta.json`` sidecar both exist.
* A malformed submissions index (or one malformed row of it) is reported as failed, by name, and
  the other companies are fetched all the same; a malformed ``company_tickers.json`` stops the run
  with one line, since the tickers asked for cannot be resolved without it.

Filings are selected by the year of their period of report (EDGAR's ``reportDate``), which for
nearly every filer is the fiscal year; the fiscal year recorded in the corpus comes from the
filing's own ``dei:DocumentFiscalYearFocus`` at build time.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import structlog

from sec_cybert.corpus.edgar_source import sidecar_path
from sec_cybert.corpus.fetch_checks import not_a_document_reason
from sec_cybert.corpus.text_decode import sniff_encoding
from sec_cybert.errors import ConfigError, DataError, OptionalDependencyError

log = structlog.get_logger(__name__)

_USER_AGENT = re.compile(r"\S+.*\s\S+@\S+\.\S+|\S+@\S+\.\S+.*\s\S+")
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
#: The overall deadline of one request is this many per-read timeouts unless given.
DEFAULT_DEADLINE_TIMEOUTS = 20

_ACCESSION_NUMBER = re.compile(r"\d{10}-\d{2}-\d{6}")
_DOCUMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HTML_SUFFIXES = (".htm", ".html", ".xhtml")
#: Status-200 pages that are not the document asked for: (phrase in the page, what it is).
_ERROR_PAGE_PHRASES = (
    (b"request rate threshold exceeded", "SEC's 'Request Rate Threshold Exceeded' page (lower --rate)"),
    (b"undeclared automated tool", "SEC's 'Request Rate Threshold Exceeded' page (lower --rate)"),
    (b"access denied", "an 'Access Denied' page"),
    (b"you don't have permission to access", "an 'Access Denied' page"),
)
_ERROR_TITLE = re.compile(
    rb"<title[^>]*>\s*(?:sec\.gov\s*\|\s*)?(access denied|forbidden|page not found|not found|"
    rb"too many requests|service unavailable|request rate threshold exceeded|"
    rb"[45]\d\d\s*-?\s*(?:not found|forbidden|unauthorized|too many requests|internal server error|"
    rb"bad gateway|service unavailable|gateway time-?out))\s*</title",
    re.I,
)
#: Only pages this small are searched for the phrases: a filing may quote them; an error page is short.
_ERROR_PAGE_MAX_BYTES = 32 * 1024


class FetchError(DataError):
    """EDGAR kept failing for one URL after every retry."""


class NotADocument(FetchError):
    """The server answered with something that is not a filing (an image, JSON, binary data).

    A definite answer, so not retried; the filing is counted as skipped with ``reason``."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.reason = reason


class _BadBody(Exception):
    """A status-200 body that must not be used (cut short, an error page); retried like a 503."""


class _GiveUp(Exception):
    """A failure that another attempt cannot fix (a redirect loop, a URL httpx refuses)."""


def error_page_reason(body: bytes) -> str | None:
    """What ``body`` is, when it is an HTML error page rather than a document; else ``None``."""
    if not body.strip():
        return "an empty body"
    head = body[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"<"):
        return None  # JSON, plain text: not an HTML page
    small = body.lower() if len(body) <= _ERROR_PAGE_MAX_BYTES else b""
    for phrase, what in _ERROR_PAGE_PHRASES:
        if phrase in small:
            return what
    title = _ERROR_TITLE.search(head)
    if title:
        return f"an error page titled {title.group(1).decode('ascii', 'replace').strip()!r}"
    if not small:
        return None
    if re.search(rb"http-equiv\s*=\s*[\"']?refresh", small):
        return "a redirect page (meta refresh), not the document"
    text = re.sub(rb"<(script|style)\b.*?</\1\s*>", b"", small, flags=re.S)
    if b"<img" not in text and not re.sub(rb"<[^>]*>|&nbsp;|&#160;|\s", b"", text):
        return "an HTML page with no text (not the document)"
    return None


def html_cut_short(body: bytes) -> bool:
    """An HTML document that does not end with ``</html>`` (give or take trailing whitespace)."""
    codec, skip, _ = sniff_encoding(body[:64])
    if codec is not None and codec != "utf-8":  # UTF-16/32: the tag is not those bytes
        return re.search(r"</html\s*>", body[skip:].decode(codec, errors="replace")[-2048:], re.I) is None
    return re.search(rb"</html\s*>", body[-2048:], re.I) is None


def _httpx():
    try:
        import httpx
    except ImportError as exc:
        raise OptionalDependencyError("downloading from EDGAR", extra="corpus", package="httpx") from exc
    return httpx


def check_user_agent(user_agent: str | None) -> str:
    """The SEC blocks anonymous clients: a name and a contact e-mail are required."""
    value = (user_agent or "").strip()
    if not _USER_AGENT.fullmatch(value):
        raise ConfigError(
            "EDGAR needs a User-Agent with your name and e-mail, "
            "e.g. --user-agent 'Jane Doe jane@example.com' "
            "(or set SEC_CYBERT_USER_AGENT); see https://www.sec.gov/os/accessing-edgar-data"
        )
    return value


def parse_years(spec: str) -> tuple[int, int]:
    """``"2023-2025"`` or ``"2024"`` → inclusive (first, last)."""
    match = re.fullmatch(r"\s*(\d{4})\s*(?:-\s*(\d{4})\s*)?", spec or "")
    if not match:
        raise ConfigError(f"--years {spec!r}: expected YEAR or FIRST-LAST, e.g. 2023-2025")
    first, last = int(match.group(1)), int(match.group(2) or match.group(1))
    if first > last:
        raise ConfigError(f"--years {spec!r}: the first year is after the last")
    return first, last


@attrs.frozen
class EdgarEndpoints:
    """Base URLs, injectable so tests (or a mirror) can stand in for sec.gov."""

    data_base: str = "https://data.sec.gov"
    archives_base: str = "https://www.sec.gov/Archives"
    tickers_url: str = "https://www.sec.gov/files/company_tickers.json"

    def submissions(self, cik: int) -> str:
        return f"{self.data_base}/submissions/CIK{cik:010d}.json"

    def submissions_page(self, name: str) -> str:
        return f"{self.data_base}/submissions/{name}"

    def document(self, cik: int, accession: str, primary_document: str) -> str:
        return f"{self.archives_base}/edgar/data/{cik}/{accession.replace('-', '')}/{primary_document}"


@attrs.define
class RateLimiter:
    """Spaces request starts at least ``1/rate`` seconds apart, across threads."""

    rate: float = attrs.field(validator=attrs.validators.gt(0))
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)
    _next: float = attrs.field(default=0.0, init=False)

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + 1.0 / self.rate
        if start > now:
            time.sleep(start - now)


@attrs.frozen
class RetryPolicy:
    max_retries: int = attrs.field(default=5, validator=attrs.validators.ge(0))
    backoff_base: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    backoff_max: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after), self.backoff_max)
        return min(self.backoff_base * 2**attempt, self.backoff_max)


class EdgarClient:
    """A rate-limited, retrying GET for EDGAR. Thread-safe (one shared httpx client)."""

    def __init__(
        self,
        user_agent: str,
        *,
        max_requests_per_second: float = 10.0,
        retry: RetryPolicy = RetryPolicy(),
        timeout: float = 30.0,
        deadline: float | None = None,
    ) -> None:
        httpx = _httpx()
        self._httpx = httpx
        self._limiter = RateLimiter(max_requests_per_second)
        self._retry = retry
        self.deadline = deadline if deadline is not None else timeout * DEFAULT_DEADLINE_TIMEOUTS
        self._client = httpx.Client(
            headers={"User-Agent": check_user_agent(user_agent), "Accept-Encoding": "gzip, deflate"},
            timeout=timeout,
            follow_redirects=True,
        )
        self.requests = 0

    def close(self) -> None:
        self._client.close()

    def get(self, url: str, check: Callable[[bytes, Any], Any] | None = None) -> Any:
        """The body of ``url`` (or ``check(body, headers)`` of it); raises FetchError after the last
        retry, or at once on a 4xx other than 429 and on failures a retry cannot fix.

        ``check`` raises :class:`_BadBody` for a status-200 body that must not be used, which is
        then retried like a 503.
        """
        httpx = self._httpx
        last = "no attempt"
        for attempt in range(self._retry.max_retries + 1):
            self._limiter.wait()
            self.requests += 1
            retry_after = None
            try:
                status, headers, body = self._get_once(url)
                if status == 200:
                    if (reason := error_page_reason(body)) is not None:
                        raise _BadBody(reason)
                    return check(body, headers) if check is not None else body
                last = f"HTTP {status}"
                if status not in RETRY_STATUS:
                    raise FetchError(f"{url}: {last}")
                retry_after = headers.get("Retry-After")
            except _BadBody as exc:
                last = str(exc)
            except _GiveUp as exc:
                raise FetchError(f"{url}: {exc}") from None
            except httpx.TooManyRedirects:
                raise FetchError(f"{url}: too many redirects (a redirect loop?)") from None
            except httpx.UnsupportedProtocol as exc:
                raise FetchError(f"{url}: redirected to a URL that is not http(s) ({exc})") from None
            except httpx.DecodingError as exc:
                last = f"could not decode the body ({exc})"
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = exc.__class__.__name__
            if attempt < self._retry.max_retries:
                delay = self._retry.delay(attempt, retry_after)
                log.info("edgar_retry", url=url, reason=last, attempt=attempt + 1, delay_s=delay)
                time.sleep(delay)
        raise FetchError(f"{url}: gave up after {self._retry.max_retries + 1} attempts ({last})")

    def _get_once(self, url: str) -> tuple[int, Any, bytes]:
        """One GET, streamed, within the overall deadline: (status, headers, body)."""
        httpx = self._httpx
        started = time.monotonic()
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    return response.status_code, response.headers, b""
                chunks = []
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() - started > self.deadline:
                        raise _BadBody(
                            f"no complete response within the {self.deadline:g} s deadline "
                            "(the server is sending very slowly)"
                        )
                body = b"".join(chunks)
                expected = response.headers.get("Content-Length", "").strip()
                if expected.isdigit() and response.num_bytes_downloaded < int(expected):
                    raise _BadBody(f"body cut short: {response.num_bytes_downloaded} of {expected} bytes")
                return 200, response.headers, body
        except httpx.InvalidURL as exc:
            raise _GiveUp(f"not a valid URL ({exc})") from None

    def get_json(self, url: str) -> Any:
        def parse(body: bytes, headers: Any) -> Any:
            try:
                return json.loads(body)
            except ValueError as exc:
                raise _BadBody(f"response is not JSON ({exc})") from None

        return self.get(url, parse)

    def get_document(self, url: str) -> bytes:
        """A filing's primary document: HTML must end with ``</html>`` when no length was sent;
        a body that is not an HTML or text document raises :class:`NotADocument` at once."""
        html = Path(url.rsplit("?", 1)[0]).suffix.lower() in _HTML_SUFFIXES

        def whole(body: bytes, headers: Any) -> bytes:
            if (reason := not_a_document_reason(body, headers.get("content-type"))) is not None:
                raise NotADocument(url, reason)
            framed = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower()
            if html and not framed and html_cut_short(body):
                raise _BadBody(
                    "body cut short: the HTML ends before </html> and the server sent no Content-Length"
                )
            return body

        return self.get(url, whole)


@attrs.frozen
class FilingRef:
    """One filing from a company's submissions index."""

    cik: int
    company: str | None
    form: str
    accession: str
    filing_date: str | None
    report_date: str | None
    primary_document: str

    def file_name(self) -> str:
        form = re.sub(r"[^A-Za-z0-9]+", "", self.form)
        year = (self.report_date or "")[:4] or "unknown"
        suffix = Path(self.primary_document).suffix.lower() or ".htm"
        return f"{self.cik}_{form}_{year}_{self.accession}{suffix}"

    def sidecar(self) -> dict[str, Any]:
        return {
            "cik": str(self.cik),
            "company": self.company,
            "form": self.form,
            "accession": self.accession,
            "filing_date": self.filing_date,
            "report_date": self.report_date,
            "fiscal_year": None,  # EDGAR's index does not say; build reads dei:DocumentFiscalYearFocus
            "primary_document": self.primary_document,
        }


def resolve_tickers(client: EdgarClient, endpoints: EdgarEndpoints, tickers: Sequence[str]) -> list[int]:
    """Ticker symbols → CIKs with EDGAR's company_tickers.json; unknown tickers are a ConfigError.

    The file is fetched only when there are tickers to resolve. A malformed file is one DataError:
    without it the tickers cannot be resolved, and ``--ciks`` does not need it.
    """
    wanted = [t.strip().upper() for t in tickers if t.strip()]
    if not wanted:
        return []
    try:
        table = client.get_json(endpoints.tickers_url)
    except FetchError as exc:
        raise FetchError(
            f"{exc}; --tickers cannot be resolved without it: retry later, or pass --ciks"
        ) from None
    rows = table.values() if isinstance(table, dict) else table
    by_ticker: dict[str, int] = {}
    try:
        for row in rows:
            if "cik_str" in row:
                by_ticker[str(row.get("ticker", "")).upper()] = int(row["cik_str"])
    except (TypeError, ValueError, AttributeError) as exc:
        raise DataError(
            f"{endpoints.tickers_url}: company_tickers.json is malformed ({exc.__class__.__name__}: {exc}); "
            "retry later, or pass the companies as --ciks instead of --tickers"
        ) from None
    unknown = [t for t in wanted if t not in by_ticker]
    if unknown:
        raise ConfigError(
            f"unknown ticker(s) {', '.join(unknown)} in EDGAR's company_tickers.json; check the symbols"
        )
    return [by_ticker[t] for t in wanted]


class MalformedIndex(Exception):
    """A submissions index (or page of one) is not shaped as EDGAR documents it."""


_COLUMNS = ("accessionNumber", "filingDate", "reportDate", "form", "primaryDocument")


def _rows(block: Any, where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row) of a columnar block; a block not shaped so is MalformedIndex."""
    if not isinstance(block, dict):
        raise MalformedIndex(f"{where} is {type(block).__name__}, not a JSON object")
    values = [block.get(c) or [] for c in _COLUMNS]
    for column, value in zip(_COLUMNS, values, strict=True):
        if not isinstance(value, list):
            raise MalformedIndex(f"{where}.{column} is {type(value).__name__}, not a list")
    lengths = {len(v) for v in values if v}
    if len(lengths) > 1:
        raise MalformedIndex(
            f"{where} has columns of different lengths "
            f"({', '.join(f'{c}: {len(v)}' for c, v in zip(_COLUMNS, values, strict=True))})"
        )
    rows = max(lengths, default=0)
    # A column left out altogether is empty in every row (each row is then checked on its own).
    values = [v or [None] * rows for v in values]
    for number, row in enumerate(zip(*values, strict=True)):
        yield number, dict(zip(_COLUMNS, row, strict=True))


def _row_problem(row: dict[str, Any]) -> str | None:
    accession, document = row.get("accessionNumber"), row.get("primaryDocument")
    if not isinstance(accession, str) or not _ACCESSION_NUMBER.fullmatch(accession):
        return f"accession number {accession!r} is not of the form 0000000000-00-000000"
    if not isinstance(document, str) or not _DOCUMENT_NAME.fullmatch(document):
        return f"primary document {document!r} is not a plain file name"
    for key in ("filingDate", "reportDate"):
        if row.get(key) is not None and not isinstance(row.get(key), str):
            return f"{key} {row.get(key)!r} is not a date string"
    return None


@attrs.frozen
class FilingListing:
    """A company's wanted filings, and what of its index could not be read (name -> reason)."""

    refs: list[FilingRef]
    failed: dict[str, str]


def list_filings(
    client: EdgarClient,
    endpoints: EdgarEndpoints,
    cik: int,
    forms: Sequence[str],
    years: tuple[int, int],
) -> FilingListing:
    """This company's filings of ``forms`` whose period of report falls in ``years``.

    An index that cannot be fetched or is malformed raises FetchError; an older page that cannot,
    and a malformed row, are listed in ``failed`` while the rest of the index is used.
    """
    index_name = f"CIK{cik:010d}.json"
    url = endpoints.submissions(cik)
    data = client.get_json(url)
    failed: dict[str, str] = {}
    try:
        if not isinstance(data, dict):
            raise MalformedIndex(f"the index is {type(data).__name__}, not a JSON object")
        company = data.get("name") if isinstance(data.get("name"), str) else None
        filings = data.get("filings") or {}
        if not isinstance(filings, dict):
            raise MalformedIndex("filings is not a JSON object")
        blocks: list[tuple[str, Any]] = [("recent", filings.get("recent") or {})]
        pages = filings.get("files") or []
        if not isinstance(pages, list):
            raise MalformedIndex("filings.files is not a list")
        # "recent" holds only the last ~1000 filings; older ones are in extra pages. Pages that end
        # before the first wanted year cannot hold its filings (a filing follows its period end).
        for number, page in enumerate(pages):
            if not isinstance(page, dict) or not (
                isinstance(page.get("name"), str) and _DOCUMENT_NAME.fullmatch(page["name"])
            ):
                raise MalformedIndex(f"filings.files[{number}] has no file name: {page!r}")
            if str(page.get("filingTo", "9999")) >= f"{years[0]}-01-01":
                try:
                    blocks.append((page["name"], client.get_json(endpoints.submissions_page(page["name"]))))
                except FetchError as exc:
                    failed[page["name"]] = str(exc)
        wanted = {f.upper() for f in forms}
        found: dict[str, FilingRef] = {}
        for block_name, block in blocks:
            where = "filings.recent" if block_name == "recent" else block_name
            try:
                rows = list(_rows(block, where))
            except MalformedIndex as exc:
                if block_name == "recent":
                    raise
                failed[block_name] = (
                    f"{endpoints.submissions_page(block_name)}: malformed submissions page ({exc})"
                )
                continue
            for number, row in rows:
                year = str(row.get("reportDate") or "")[:4]
                if str(row.get("form", "")).upper() not in wanted or not row.get("primaryDocument"):
                    continue
                if not year.isdigit() or not years[0] <= int(year) <= years[1]:
                    continue
                if (problem := _row_problem(row)) is not None:
                    if block_name == "recent":
                        key, source = f"{index_name} recent[{number}]", url
                    else:
                        key, source = f"{block_name}[{number}]", endpoints.submissions_page(block_name)
                    failed[key] = f"{source}: malformed row ({problem})"
                    continue
                ref = FilingRef(
                    cik=cik,
                    company=company,
                    form=str(row["form"]),
                    accession=row["accessionNumber"],
                    filing_date=row.get("filingDate") or None,
                    report_date=row.get("reportDate") or None,
                    primary_document=row["primaryDocument"],
                )
                found.setdefault(ref.accession, ref)
    except MalformedIndex as exc:
        raise FetchError(f"{url}: malformed submissions index ({exc})") from None
    return FilingListing(list(found.values()), failed)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@attrs.frozen
class FetchSummary:
    companies: int
    filings: int
    downloaded: int
    cached: int
    failed: dict[str, str]  # file name -> reason
    requests: int
    #: Answered with something that is not a filing (file name -> reason): not cached, not retried.
    skipped: dict[str, str] = attrs.field(factory=dict)

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(self.skipped.values()))

    def as_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "skipped_by_reason": self.skipped_by_reason}


def fetch_filings(
    cache: Path,
    *,
    user_agent: str,
    ciks: Iterable[int] = (),
    tickers: Iterable[str] = (),
    forms: Sequence[str] = ("10-K",),
    years: tuple[int, int] = (2023, 2025),
    endpoints: EdgarEndpoints = EdgarEndpoints(),
    max_requests_per_second: float = 10.0,
    retry: RetryPolicy = RetryPolicy(),
    timeout: float = 30.0,
    deadline: float | None = None,
    threads: int = 4,
    progress: bool = False,
) -> FetchSummary:
    """Download every matching filing into ``cache`` (with a ``.meta.json`` sidecar each).

    ``timeout`` bounds each read, ``deadline`` (default: 20 timeouts) each whole request.
    """
    check_user_agent(user_agent)
    if max_requests_per_second <= 0 or max_requests_per_second > 10:
        raise ConfigError("max_requests_per_second must be in (0, 10]: the SEC allows at most 10 requests/s")
    cache.mkdir(parents=True, exist_ok=True)
    if not timeout > 0:
        raise ConfigError(f"--timeout must be a positive number of seconds, got {timeout!r}")
    if deadline is not None and not deadline > 0:
        raise ConfigError(f"--deadline must be a positive number of seconds, got {deadline!r}")
    client = EdgarClient(
        user_agent,
        max_requests_per_second=max_requests_per_second,
        retry=retry,
        timeout=timeout,
        deadline=deadline,
    )
    try:
        cik_list = list(
            dict.fromkeys([int(c) for c in ciks] + resolve_tickers(client, endpoints, list(tickers)))
        )
        if not cik_list:
            raise ConfigError("nothing to fetch: pass --ciks and/or --tickers")
        failed: dict[str, str] = {}
        skipped: dict[str, str] = {}
        refs: list[FilingRef] = []
        for cik in cik_list:
            try:
                listing = list_filings(client, endpoints, cik, forms, years)
            except FetchError as exc:
                failed[f"CIK{cik:010d}.json"] = str(exc)
                continue
            refs.extend(listing.refs)
            failed.update(listing.failed)
        todo = [
            r
            for r in refs
            if not (cache / r.file_name()).exists() or not sidecar_path(cache / r.file_name()).exists()
        ]
        counts: Counter[str] = Counter()
        lock = threading.Lock()

        def download(ref: FilingRef) -> None:
            path = cache / ref.file_name()
            try:
                if not path.exists():
                    _write_atomic(
                        path,
                        client.get_document(endpoints.document(ref.cik, ref.accession, ref.primary_document)),
                    )
                    with lock:
                        counts["downloaded"] += 1
                _write_atomic(sidecar_path(path), json.dumps(ref.sidecar(), indent=2).encode("utf-8"))
            except NotADocument as exc:
                log.warning("edgar_not_a_document", file=path.name, reason=exc.reason)
                with lock:
                    skipped[path.name] = exc.reason
            except FetchError as exc:
                with lock:
                    failed[path.name] = str(exc)
            except OSError as exc:
                raise DataError(f"cannot write to {cache}: {exc}") from exc

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            jobs = pool.map(download, todo)
            if progress:
                from tqdm.auto import tqdm

                jobs = tqdm(jobs, total=len(todo), desc="fetch", unit="filing")
            for _ in jobs:
                pass
        summary = FetchSummary(
            companies=len(cik_list),
            filings=len(refs),
            downloaded=counts["downloaded"],
            cached=len(refs) - len(todo),
            failed=failed,
            requests=client.requests,
            skipped=skipped,
        )
    finally:
        client.close()
    log.info(
        "edgar_fetch_done",
        **{k: v for k, v in summary.as_dict().items() if k not in ("failed", "skipped")},
        failed=len(failed),
        skipped=len(skipped),
    )
    return summary

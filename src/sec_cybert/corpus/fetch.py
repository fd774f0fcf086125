"""Download 10-K primary documents from SEC EDGAR into a local cache, politely and resumably.

* The SEC requires a User-Agent naming the requester with a contact e-mail; we refuse to start
  without one rather than be blocked part-way through.
* At most ``max_requests_per_second`` (10 is the SEC's published limit) across all threads.
* 429, 5xx, timeouts and dropped connections are retried with exponential backoff (honouring
  ``Retry-After``), a bounded number of times; then the filing is reported as failed.
* Each file is written to ``<name>.part`` and renamed into place, so a cached file is always
  complete; a re-run skips every filing whose HTML and ``.meta.json`` sidecar both exist.

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
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import structlog

from sec_cybert.corpus.edgar_source import sidecar_path
from sec_cybert.errors import ConfigError, DataError, OptionalDependencyError

log = structlog.get_logger(__name__)

_USER_AGENT = re.compile(r"\S+.*\s\S+@\S+\.\S+|\S+@\S+\.\S+.*\s\S+")
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class FetchError(DataError):
    """EDGAR kept failing for one URL after every retry."""


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
    ) -> None:
        httpx = _httpx()
        self._httpx = httpx
        self._limiter = RateLimiter(max_requests_per_second)
        self._retry = retry
        self._client = httpx.Client(
            headers={"User-Agent": check_user_agent(user_agent), "Accept-Encoding": "gzip, deflate"},
            timeout=timeout,
            follow_redirects=True,
        )
        self.requests = 0

    def close(self) -> None:
        self._client.close()

    def get(self, url: str) -> bytes:
        """The body of ``url``; raises FetchError after the last retry, or at once on a 4xx other than 429."""
        httpx = self._httpx
        last = "no attempt"
        for attempt in range(self._retry.max_retries + 1):
            self._limiter.wait()
            self.requests += 1
            retry_after = None
            try:
                response = self._client.get(url)
                if response.status_code == 200:
                    return response.content
                last = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUS:
                    raise FetchError(f"{url}: {last}")
                retry_after = response.headers.get("Retry-After")
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = exc.__class__.__name__
            if attempt < self._retry.max_retries:
                delay = self._retry.delay(attempt, retry_after)
                log.info("edgar_retry", url=url, reason=last, attempt=attempt + 1, delay_s=delay)
                time.sleep(delay)
        raise FetchError(f"{url}: gave up after {self._retry.max_retries + 1} attempts ({last})")

    def get_json(self, url: str) -> Any:
        body = self.get(url)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise FetchError(f"{url}: response is not JSON ({exc})") from exc


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
    """Ticker symbols → CIKs with EDGAR's company_tickers.json; unknown tickers are a ConfigError."""
    table = client.get_json(endpoints.tickers_url)
    rows = table.values() if isinstance(table, dict) else table
    by_ticker = {str(r.get("ticker", "")).upper(): int(r["cik_str"]) for r in rows if "cik_str" in r}
    wanted = [t.strip().upper() for t in tickers if t.strip()]
    unknown = [t for t in wanted if t not in by_ticker]
    if unknown:
        raise ConfigError(
            f"unknown ticker(s) {', '.join(unknown)} in EDGAR's company_tickers.json; check the symbols"
        )
    return [by_ticker[t] for t in wanted]


def _rows(block: dict[str, Any]) -> Iterator[dict[str, Any]]:
    columns = ("accessionNumber", "filingDate", "reportDate", "form", "primaryDocument")
    values = [block.get(c) or [] for c in columns]
    for row in zip(*values, strict=False):
        yield dict(zip(columns, row, strict=True))


def list_filings(
    client: EdgarClient,
    endpoints: EdgarEndpoints,
    cik: int,
    forms: Sequence[str],
    years: tuple[int, int],
) -> list[FilingRef]:
    """This company's filings of ``forms`` whose period of report falls in ``years``."""
    data = client.get_json(endpoints.submissions(cik))
    company = data.get("name")
    filings = data.get("filings") or {}
    blocks = [filings.get("recent") or {}]
    # "recent" holds only the last ~1000 filings; older ones are in extra pages. Pages that end
    # before the first wanted year cannot hold its filings (a filing follows its period end).
    for page in filings.get("files") or []:
        if str(page.get("filingTo", "9999")) >= f"{years[0]}-01-01":
            blocks.append(client.get_json(endpoints.submissions_page(page["name"])))
    wanted = {f.upper() for f in forms}
    found: dict[str, FilingRef] = {}
    for block in blocks:
        for row in _rows(block):
            year = str(row.get("reportDate") or "")[:4]
            if str(row.get("form", "")).upper() not in wanted or not row.get("primaryDocument"):
                continue
            if not year.isdigit() or not years[0] <= int(year) <= years[1]:
                continue
            ref = FilingRef(
                cik=cik,
                company=company,
                form=row["form"],
                accession=row["accessionNumber"],
                filing_date=row.get("filingDate") or None,
                report_date=row.get("reportDate") or None,
                primary_document=row["primaryDocument"],
            )
            found.setdefault(ref.accession, ref)
    return list(found.values())


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

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


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
    threads: int = 4,
    progress: bool = False,
) -> FetchSummary:
    """Download every matching filing into ``cache`` (with a ``.meta.json`` sidecar each)."""
    check_user_agent(user_agent)
    if max_requests_per_second <= 0 or max_requests_per_second > 10:
        raise ConfigError("max_requests_per_second must be in (0, 10]: the SEC allows at most 10 requests/s")
    cache.mkdir(parents=True, exist_ok=True)
    client = EdgarClient(
        user_agent, max_requests_per_second=max_requests_per_second, retry=retry, timeout=timeout
    )
    try:
        cik_list = list(
            dict.fromkeys([int(c) for c in ciks] + resolve_tickers(client, endpoints, list(tickers)))
        )
        if not cik_list:
            raise ConfigError("nothing to fetch: pass --ciks and/or --tickers")
        failed: dict[str, str] = {}
        refs: list[FilingRef] = []
        for cik in cik_list:
            try:
                refs.extend(list_filings(client, endpoints, cik, forms, years))
            except FetchError as exc:
                failed[f"CIK{cik:010d}.json"] = str(exc)
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
                        path, client.get(endpoints.document(ref.cik, ref.accession, ref.primary_document))
                    )
                    with lock:
                        counts["downloaded"] += 1
                _write_atomic(sidecar_path(path), json.dumps(ref.sidecar(), indent=2).encode("utf-8"))
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
        )
    finally:
        client.close()
    log.info(
        "edgar_fetch_done",
        **{k: v for k, v in summary.as_dict().items() if k != "failed"},
        failed=len(failed),
    )
    return summary

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

The HTTP side -- rate limit, retries (tenacity), error pages and the deadline -- is
:mod:`~sec_cybert.corpus.edgar_client`; reading the submissions index is
:mod:`~sec_cybert.corpus.edgar_index`. This module chooses the filings and writes the cache.

Filings are selected by the year of their period of report (EDGAR's ``reportDate``), which for
nearly every filer is the fiscal year; the fiscal year recorded in the corpus comes from the
filing's own ``dei:DocumentFiscalYearFocus`` at build time.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import structlog

from sec_cybert.corpus.edgar_client import (
    EdgarClient,
    EdgarEndpoints,
    FetchError,
    NotADocument,
    RateLimiter,
    RetryPolicy,
    check_user_agent,
)
from sec_cybert.corpus.edgar_index import FilingListing, FilingRef, list_filings, resolve_tickers
from sec_cybert.corpus.edgar_source import sidecar_path
from sec_cybert.corpus.fetch_checks import error_page_reason, html_cut_short
from sec_cybert.errors import ConfigError, DataError

__all__ = [
    "EdgarClient",
    "EdgarEndpoints",
    "FetchError",
    "FetchSummary",
    "FilingListing",
    "FilingRef",
    "NotADocument",
    "RateLimiter",
    "RetryPolicy",
    "check_user_agent",
    "error_page_reason",
    "fetch_filings",
    "html_cut_short",
    "list_filings",
    "parse_years",
    "resolve_tickers",
]

log = structlog.get_logger(__name__)


def parse_years(spec: str) -> tuple[int, int]:
    """``"2023-2025"`` or ``"2024"`` → inclusive (first, last)."""
    match = re.fullmatch(r"\s*(\d{4})\s*(?:-\s*(\d{4})\s*)?", spec or "")
    if not match:
        raise ConfigError(f"--years {spec!r}: expected YEAR or FIRST-LAST, e.g. 2023-2025")
    first, last = int(match.group(1)), int(match.group(2) or match.group(1))
    if first > last:
        raise ConfigError(f"--years {spec!r}: the first year is after the last")
    return first, last


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
    endpoints: EdgarEndpoints = EdgarEndpoints(),  # noqa: B008 -- frozen, so safe to share
    max_requests_per_second: float = 10.0,
    retry: RetryPolicy = RetryPolicy(),  # noqa: B008 -- frozen, so safe to share
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

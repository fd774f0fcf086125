"""A polite, retrying GET for SEC EDGAR: what ``corpus fetch`` asks every URL through.

The machinery is delegated: retries and exponential backoff to tenacity, the request rate to
pyrate-limiter, HTTP to httpx. What stays here is what is particular to EDGAR:

* the SEC blocks anonymous clients, so a User-Agent naming the requester with an e-mail is
  required before the first request;
* 429, 5xx, timeouts and dropped connections are retried, honouring a ``Retry-After`` in seconds;
* a status-200 body that must not be used -- an error page, one shorter than its
  ``Content-Length`` (:mod:`~sec_cybert.corpus.fetch_checks`) -- is retried like a 503;
* besides httpx's per-read ``timeout``, each request has an overall ``deadline``, so a server that
  trickles a byte at a time cannot hold a thread for ever;
* failures another attempt cannot fix (a 404, a redirect loop, a body that is not a document)
  are not retried.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import structlog

from sec_cybert.corpus.fetch_checks import error_page_reason, html_cut_short, not_a_document_reason
from sec_cybert.errors import ConfigError, DataError, OptionalDependencyError

log = structlog.get_logger(__name__)

_USER_AGENT = re.compile(r"\S+.*\s\S+@\S+\.\S+|\S+@\S+\.\S+.*\s\S+")
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
#: The overall deadline of one request is this many per-read timeouts unless given.
DEFAULT_DEADLINE_TIMEOUTS = 20
_HTML_SUFFIXES = (".htm", ".html", ".xhtml")
#: The ``corpus`` extra's packages this client needs: module -> what ``pip install`` calls it.
_EXTRA_PACKAGES = {"httpx": "httpx", "tenacity": "tenacity", "pyrate_limiter": "pyrate-limiter"}


class FetchError(DataError):
    """EDGAR kept failing for one URL after every retry."""


class NotADocument(FetchError):
    """The server answered with something that is not a filing (an image, JSON, binary data).

    A definite answer, so not retried; the filing is counted as skipped with ``reason``."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.reason = reason


class _Retryable(Exception):
    """One attempt's failure that another attempt may fix; ``retry_after`` is the server's wish."""

    def __init__(self, reason: str, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _BadBody(_Retryable):
    """A status-200 body that must not be used (cut short, an error page); retried like a 503."""


def _extra(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise OptionalDependencyError(
            "downloading from EDGAR", extra="corpus", package=_EXTRA_PACKAGES[module]
        ) from exc


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
    """Request starts at least ``1/rate`` seconds apart, across threads.

    pyrate-limiter's bucket of one request per interval: evenly spaced rather than a burst of
    ``rate`` at the start of each second, which is the gentler reading of SEC's "10 requests/s".
    """

    rate: float = attrs.field(validator=attrs.validators.gt(0))
    _limiter: Any = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        pyrate = _extra("pyrate_limiter")
        # Rounded up, so the interval never allows more than ``rate``; no extra buffer on a local clock.
        self._limiter = pyrate.Limiter(pyrate.Rate(1, math.ceil(1000 / self.rate)), buffer_ms=0)

    def wait(self) -> None:
        self._limiter.try_acquire("edgar")

    def close(self) -> None:
        """Stop the limiter's background thread."""
        self._limiter.close()


@attrs.frozen
class RetryPolicy:
    """How often and how patiently one URL is asked again (``Retry-After`` in seconds wins)."""

    max_retries: int = attrs.field(default=5, validator=attrs.validators.ge(0))
    backoff_base: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    backoff_max: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))

    def retrying(self, url: str, *, sleep: Callable[[float], None] = time.sleep) -> Any:
        """A tenacity ``Retrying`` for one URL: :class:`_Retryable` failures are tried again,
        anything else is raised at once, and the last failure becomes a :class:`FetchError`."""
        tenacity = _extra("tenacity")
        backoff = tenacity.wait_exponential(multiplier=self.backoff_base, max=self.backoff_max)

        def wait(state: Any) -> float:
            retry_after = getattr(state.outcome.exception(), "retry_after", None)
            if retry_after and retry_after.strip().isdigit():
                return min(float(retry_after), self.backoff_max)
            return backoff(state)

        def log_retry(state: Any) -> None:
            log.info(
                "edgar_retry",
                url=url,
                reason=str(state.outcome.exception()),
                attempt=state.attempt_number,
                delay_s=state.next_action.sleep,
            )

        def give_up(state: Any) -> None:
            raise FetchError(
                f"{url}: gave up after {state.attempt_number} attempts ({state.outcome.exception()})"
            )

        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            before_sleep=log_retry,
            retry_error_callback=give_up,
            sleep=sleep,
        )


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
        agent = check_user_agent(user_agent)
        httpx = _extra("httpx")
        self._httpx = httpx
        self._retry = retry
        # Before the httpx client: a missing extra then leaves nothing open behind it.
        self._limiter = RateLimiter(max_requests_per_second)
        self.deadline = deadline if deadline is not None else timeout * DEFAULT_DEADLINE_TIMEOUTS
        self._client = httpx.Client(
            headers={"User-Agent": agent, "Accept-Encoding": "gzip, deflate"},
            timeout=timeout,
            follow_redirects=True,
        )
        self._count_lock = threading.Lock()
        self.requests = 0

    def close(self) -> None:
        self._client.close()
        self._limiter.close()

    def get(self, url: str, check: Callable[[bytes, Any], Any] | None = None) -> Any:
        """The body of ``url`` (or ``check(body, headers)`` of it); raises FetchError after the last
        retry, or at once on a 4xx other than 429 and on failures a retry cannot fix.

        ``check`` raises :class:`_BadBody` for a status-200 body that must not be used, which is
        then retried like a 503.
        """
        return self._retry.retrying(url)(self._attempt, url, check)

    def _attempt(self, url: str, check: Callable[[bytes, Any], Any] | None) -> Any:
        """One request: the checked body, or :class:`_Retryable` / :class:`FetchError`."""
        httpx = self._httpx
        self._limiter.wait()
        with self._count_lock:
            self.requests += 1
        try:
            status, headers, body = self._get_once(url)
        except httpx.TooManyRedirects:
            raise FetchError(f"{url}: too many redirects (a redirect loop?)") from None
        except httpx.UnsupportedProtocol as exc:
            raise FetchError(f"{url}: redirected to a URL that is not http(s) ({exc})") from None
        except httpx.DecodingError as exc:
            raise _Retryable(f"could not decode the body ({exc})") from None
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise _Retryable(exc.__class__.__name__) from None
        if status == 200:
            if (reason := error_page_reason(body)) is not None:
                raise _BadBody(reason)
            return check(body, headers) if check is not None else body
        if status not in RETRY_STATUS:
            raise FetchError(f"{url}: HTTP {status}")
        raise _Retryable(f"HTTP {status}", retry_after=headers.get("Retry-After"))

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
            raise FetchError(f"{url}: not a valid URL ({exc})") from None

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

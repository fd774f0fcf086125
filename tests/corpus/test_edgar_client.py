"""The EDGAR client's retry schedule (tenacity) and rate limit (pyrate-limiter), without a network.

Sleeps are recorded, not slept, so nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import sys
import threading
import time

import pytest

pytest.importorskip("tenacity")
pytest.importorskip("pyrate_limiter")

from sec_cybert.corpus.edgar_client import (  # noqa: E402
    FetchError,
    RateLimiter,
    RetryPolicy,
    _Retryable,
)


def _flaky(outcomes):
    """A request whose n-th call raises ``outcomes[n]`` (or returns it, when not an exception)."""
    calls = []

    def attempt():
        outcome = outcomes[len(calls)]
        calls.append(outcome)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return attempt, calls


def test_retry_after_in_seconds_wins_capped_else_exponential_backoff():
    attempt, calls = _flaky(
        [
            _Retryable("HTTP 429", retry_after="2"),
            _Retryable("HTTP 503", retry_after="120"),  # longer than backoff_max: capped
            _Retryable("ReadTimeout"),
            _Retryable("HTTP 503", retry_after="Wed, 21 Oct 2015 07:28:00 GMT"),  # a date: backoff
            b"body",
        ]
    )
    slept: list[float] = []
    policy = RetryPolicy(max_retries=5, backoff_base=0.5, backoff_max=10.0)
    assert policy.retrying("https://example.test/x", sleep=slept.append)(attempt) == b"body"
    assert len(calls) == 5
    # Attempts 3 and 4 back off as 0.5 * 2**(attempt - 1): 2 s, then 4 s.
    assert slept == [2.0, 10.0, 2.0, 4.0]


def test_the_last_failure_is_reported_with_the_attempt_count():
    attempt, calls = _flaky([_Retryable("HTTP 500")] * 10)
    slept: list[float] = []
    retrying = RetryPolicy(max_retries=2, backoff_base=1.0, backoff_max=60.0).retrying(
        "https://example.test/doc.htm", sleep=slept.append
    )
    with pytest.raises(FetchError, match=r"^https://example.test/doc.htm: gave up after 3 attempts \(HTTP 500\)$"):
        retrying(attempt)
    assert len(calls) == 3 and slept == [1.0, 2.0]


def test_a_failure_another_attempt_cannot_fix_is_raised_at_once():
    attempt, calls = _flaky([FetchError("https://example.test/x: HTTP 404"), b"never"])
    slept: list[float] = []
    with pytest.raises(FetchError, match="HTTP 404"):
        RetryPolicy(max_retries=5).retrying("https://example.test/x", sleep=slept.append)(attempt)
    assert len(calls) == 1 and slept == []


def test_no_retries_means_one_attempt():
    attempt, calls = _flaky([_Retryable("HTTP 503")] * 3)
    with pytest.raises(FetchError, match="gave up after 1 attempts"):
        RetryPolicy(max_retries=0).retrying("u", sleep=lambda s: None)(attempt)
    assert len(calls) == 1


def test_the_rate_limit_holds_across_threads():
    limiter = RateLimiter(20.0)
    starts: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(3):
            limiter.wait()
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        limiter.close()
    # Nine starts at 20/s span at least eight intervals of 50 ms (the limiter counts whole ms).
    assert len(starts) == 9
    assert max(starts) - min(starts) >= 8 / 20 - 0.02


def test_the_rate_is_validated():
    with pytest.raises(ValueError):
        RateLimiter(0)


@pytest.mark.parametrize(("module", "package"), [("tenacity", "tenacity"), ("pyrate_limiter", "pyrate-limiter")])
def test_a_missing_corpus_extra_names_the_install(monkeypatch, module, package):
    from sec_cybert.errors import OptionalDependencyError

    monkeypatch.setitem(sys.modules, module, None)  # import of it now fails
    with pytest.raises(OptionalDependencyError, match=rf"'{package}'.*sec-cybert\[corpus\]"):
        RetryPolicy().retrying("u") if module == "tenacity" else RateLimiter(10.0)

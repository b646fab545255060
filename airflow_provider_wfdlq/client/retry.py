"""When to send a request again, and how long to wait first. Sans-IO: no sleeping here.

Retried: network errors and timeouts, 429 (until the advertised reset), 502/503/504 (capped
exponential backoff with full jitter). Never retried: 500 (the server decided) and every
other 4xx (sending the same request again cannot change the answer).

ACTION calls (resume, restart, delete, callback retry/cancel) are at most once: they are
re-sent only after an outcome that provably did not act (429, 503, a connection never
made); any outcome for which :func:`may_have_acted` is True ends the call instead (the
operations raise ``OutcomeUnknownError``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from random import random as _random_unit

import httpx

from airflow_provider_wfdlq.client.errors import ValidationError

__all__ = [
    "AMBIGUOUS_STATUSES",
    "RETRIED_STATUSES",
    "RetryPolicy",
    "may_have_acted",
    "rate_limit_wait",
]

RETRIED_STATUSES = frozenset({429, 502, 503, 504})
GATEWAY_STATUSES = frozenset({502, 503, 504})

_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_NOT_RETRIED = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the client tries. ``max_attempts`` counts the first attempt too.

    ``clock``, ``sleep``, ``async_sleep`` and ``random`` are seams for tests.
    """

    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_rate_limit_wait: float = 60.0
    jitter: bool = True
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    async_sleep: Callable[[float], Awaitable[None]] = field(
        default=asyncio.sleep, repr=False, compare=False
    )
    random: Callable[[], float] = field(default=_random_unit, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not self.max_attempts >= 1:
            raise ValidationError("max_attempts", self.max_attempts, "an integer", "must be >= 1")
        for name in ("backoff_base", "backoff_max", "max_rate_limit_wait"):
            seconds = getattr(self, name)
            if not seconds >= 0:  # also NaN, which no comparison lets through
                raise ValidationError(name, seconds, "a number of seconds", "must be >= 0")

    def backoff(self, attempt: int) -> float:
        """Wait after failed attempt ``attempt`` (1-based): full jitter over a capped doubling."""
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** min(attempt - 1, 64))
        return ceiling * self.random() if self.jitter else ceiling

    def wait_before_retry(
        self, attempt: int, outcome: httpx.Response | httpx.RequestError
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to stop and report."""
        if attempt >= self.max_attempts:
            return None
        if isinstance(outcome, httpx.RequestError):
            retried = isinstance(outcome, httpx.TransportError)
            return (
                self.backoff(attempt) if retried and not isinstance(outcome, _NOT_RETRIED) else None
            )
        if outcome.status_code == 429:
            wait = rate_limit_wait(outcome.headers, self.clock())
            if wait is None:
                return self.backoff(attempt)
            return wait if wait <= self.max_rate_limit_wait else None
        if outcome.status_code in GATEWAY_STATUSES:
            return self.backoff(attempt)
        return None


AMBIGUOUS_STATUSES = frozenset({502, 504})
"""A proxy's answer: the request may have reached the server and been carried out."""


def may_have_acted(outcome: httpx.Response | httpx.RequestError) -> bool:
    """Could the server have carried out a request whose outcome we did not learn?

    A connection that was never made carried nothing (ConnectError, ConnectTimeout,
    PoolTimeout, or a request httpx refused to build); a 429 and a 503 are answers of the
    server refusing the work. Any other network error (read timeout, dropped connection,
    an answer that could not be read) or a 502/504 from a proxy may hide a request that
    was done.
    """
    if isinstance(outcome, httpx.RequestError):
        return not isinstance(outcome, _NEVER_SENT + _NOT_RETRIED)
    return outcome.status_code in AMBIGUOUS_STATUSES


_MS_THRESHOLD = 1e11
"""A reset above this is unix MILLISECONDS (1e11 s is the year 5138); Upstash documents
``*-RateLimit-Reset`` only as "Time (in unix timestamp)" (qstash/api/api-ratelimiting.mdx)."""


def _seconds_until(reset: str | None, now: float) -> float | None:
    try:
        moment = float(reset) if reset is not None else None
    except ValueError:
        return None
    if moment is None or moment != moment:  # missing, or NaN
        return None
    if moment > _MS_THRESHOLD:
        moment /= 1000.0
    return max(0.0, moment - now)


def _retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds, or as an HTTP date."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError):
        return None


def rate_limit_wait(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until a 429's limit resets, or None if the answer says nothing usable.

    A window whose ``*-Remaining`` is 0 is the one that was hit, so its reset wins (the
    longest if both are exhausted: waiting for the shorter one would only earn another 429).
    Otherwise the first of ``Burst-RateLimit-Reset``, ``RateLimit-Reset`` (unix seconds, or
    ms if above 1e11) and ``Retry-After`` that is present and readable.
    """
    windows = {
        prefix: _seconds_until(headers.get(f"{prefix}-Reset"), now)
        for prefix in ("Burst-RateLimit", "RateLimit")
    }
    exhausted = [
        wait
        for prefix, wait in windows.items()
        if wait is not None and headers.get(f"{prefix}-Remaining", "").strip() == "0"
    ]
    if exhausted:
        return max(exhausted)
    for wait in (*windows.values(), _retry_after(headers.get("Retry-After"), now)):
        if wait is not None:
            return wait
    return None

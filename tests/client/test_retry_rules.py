"""The retry policy's rules, one at a time, sans IO: which outcomes are sent again, how long
to wait first, which outcomes may hide a request that was carried out, and which settings
are refused. The client-level retry behaviour is in test_retry.py and test_at_most_once.py."""

from __future__ import annotations

import math
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from airflow_provider_wfdlq.client import RetryPolicy, ValidationError
from airflow_provider_wfdlq.client.retry import (
    AMBIGUOUS_STATUSES,
    RETRIED_STATUSES,
    may_have_acted,
    rate_limit_wait,
)

NOW = 1_752_829_000.0
REQUEST = httpx.Request("POST", "https://dlq.example/v2/workflows/dlq/resume")


def policy(**settings: Any) -> RetryPolicy:
    """No jitter unless asked for, a fixed clock."""
    settings.setdefault("jitter", False)
    return RetryPolicy(clock=lambda: NOW, **settings)


def response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers={k.replace("_", "-"): v for k, v in headers.items()})


def error(kind: type[httpx.RequestError]) -> httpx.RequestError:
    return kind("boom", request=REQUEST)


# --- network errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "retried", "acted"),
    [
        # A connection never made carried nothing: retried, and it did not act.
        (httpx.ConnectError, True, False),
        (httpx.ConnectTimeout, True, False),
        (httpx.PoolTimeout, True, False),
        # The request may have arrived: retried only where safe, and it may have acted.
        (httpx.ReadTimeout, True, True),
        (httpx.WriteTimeout, True, True),
        (httpx.ReadError, True, True),
        (httpx.WriteError, True, True),
        (httpx.RemoteProtocolError, True, True),
        (httpx.ProxyError, True, True),
        # A request httpx refused to build: sending it again cannot help, and it never left.
        (httpx.UnsupportedProtocol, False, False),
        (httpx.LocalProtocolError, False, False),
        # Not a transport error: an answer that could not be decoded, too many redirects.
        (httpx.DecodingError, False, True),
        (httpx.TooManyRedirects, False, True),
    ],
)
def test_network_errors(kind: type[httpx.RequestError], retried: bool, acted: bool) -> None:
    wait = policy(backoff_base=0.5).wait_before_retry(1, error(kind))
    assert wait == (0.5 if retried else None)
    assert may_have_acted(error(kind)) is acted


# --- statuses ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_statuses_back_off(status: int) -> None:
    assert policy(backoff_base=0.5).wait_before_retry(2, response(status)) == 1.0


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 409, 412, 489, 500, 501, 505])
def test_other_statuses_are_never_sent_again(status: int) -> None:
    assert policy().wait_before_retry(1, response(status)) is None


def test_the_status_sets() -> None:
    assert frozenset({429, 502, 503, 504}) == RETRIED_STATUSES
    assert frozenset({502, 504}) == AMBIGUOUS_STATUSES
    assert [may_have_acted(response(s)) for s in (429, 500, 502, 503, 504)] == [
        False,
        False,
        True,
        False,
        True,
    ]


def test_the_last_attempt_is_never_followed_by_another() -> None:
    p = policy(max_attempts=3, backoff_base=1.0)
    assert p.wait_before_retry(2, response(503)) == 2.0
    assert p.wait_before_retry(3, response(503)) is None
    assert p.wait_before_retry(4, response(503)) is None
    assert p.wait_before_retry(3, error(httpx.ConnectError)) is None
    assert p.wait_before_retry(3, response(429, Retry_After="1")) is None
    assert policy(max_attempts=1).wait_before_retry(1, response(503)) is None


# --- 429 -----------------------------------------------------------------------------------


def test_retry_after_zero_means_retry_at_once() -> None:
    p = policy(backoff_base=5.0)
    assert rate_limit_wait({"Retry-After": "0"}, NOW) == 0.0
    assert p.wait_before_retry(1, response(429, Retry_After="0")) == 0.0  # not the backoff


def test_a_429_waits_up_to_max_rate_limit_wait_and_not_longer() -> None:
    p = policy(max_rate_limit_wait=10.0, backoff_base=0.5)
    assert p.wait_before_retry(1, response(429, Retry_After="10")) == 10.0
    assert p.wait_before_retry(1, response(429, Retry_After="10.5")) is None
    assert p.wait_before_retry(1, response(429)) == 0.5  # nothing advertised: backoff
    assert (
        policy(max_rate_limit_wait=0.0).wait_before_retry(1, response(429, Retry_After="0")) == 0.0
    )


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "-5"}, 0.0),
        ({"Retry-After": "2.5"}, 2.5),
        ({"Retry-After": formatdate(NOW + 9, usegmt=True)}, 9.0),
        ({"Retry-After": formatdate(NOW - 60, usegmt=True)}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": ""}, None),
        ({}, None),
        ({"RateLimit-Reset": str(NOW + 4)}, 4.0),
        ({"RateLimit-Reset": str(NOW - 4)}, 0.0),  # already past
        ({"RateLimit-Reset": str(int((NOW + 6) * 1000))}, 6.0),  # milliseconds
        ({"RateLimit-Reset": "1e11"}, 1e11 - NOW),  # exactly 1e11 is still seconds
        ({"RateLimit-Reset": "100000000001"}, 0.0),  # above it: ms, so 1973, long past
        ({"RateLimit-Reset": "nan"}, None),
        ({"RateLimit-Reset": "nan", "Retry-After": "3"}, 3.0),
        ({"RateLimit-Reset": "later", "Retry-After": "3"}, 3.0),
        # The first readable of Burst, RateLimit, Retry-After when no window is exhausted.
        ({"Burst-RateLimit-Reset": str(NOW + 2), "RateLimit-Reset": str(NOW + 8)}, 2.0),
        ({"RateLimit-Reset": str(NOW + 8), "Retry-After": "1"}, 8.0),
        # An exhausted window wins; the longest of two exhausted ones.
        (
            {
                "Burst-RateLimit-Reset": str(NOW + 2),
                "RateLimit-Reset": str(NOW + 8),
                "RateLimit-Remaining": "0",
            },
            8.0,
        ),
        (
            {
                "Burst-RateLimit-Reset": str(NOW + 9),
                "Burst-RateLimit-Remaining": " 0 ",
                "RateLimit-Reset": str(NOW + 8),
                "RateLimit-Remaining": "0",
            },
            9.0,
        ),
        (
            {
                "Burst-RateLimit-Reset": str(NOW + 2),
                "Burst-RateLimit-Remaining": "3",
                "RateLimit-Reset": str(NOW + 8),
                "RateLimit-Remaining": "0",
            },
            8.0,
        ),
        ({"RateLimit-Remaining": "0", "Retry-After": "4"}, 4.0),  # exhausted, but no reset
    ],
)
def test_rate_limit_wait(headers: dict[str, str], wait: float | None) -> None:
    assert rate_limit_wait(headers, NOW) == (None if wait is None else pytest.approx(wait))


# --- backoff -------------------------------------------------------------------------------


def test_backoff_doubles_up_to_its_cap() -> None:
    p = policy(backoff_base=0.5, backoff_max=3.0)
    assert [p.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert p.backoff(10_000) == 3.0  # no overflow however many attempts
    # The exponent stops at 64 (2.0 ** 10_000 would overflow), whatever the cap.
    assert policy(backoff_base=1.0, backoff_max=math.inf).backoff(10_000) == 2.0**64


def test_full_jitter_scales_the_ceiling() -> None:
    p = policy(backoff_base=1.0, backoff_max=30.0, jitter=True, random=lambda: 0.25)
    assert p.backoff(3) == 1.0  # 4 * 0.25
    assert policy(backoff_base=1.0, jitter=True, random=lambda: 0.0).backoff(3) == 0.0


def test_the_defaults() -> None:
    p = RetryPolicy()
    assert (p.max_attempts, p.backoff_base, p.backoff_max, p.max_rate_limit_wait) == (
        5,
        0.5,
        30.0,
        60.0,
    )
    assert p.jitter is True


# --- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": -1}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"backoff_base": -0.1}, "backoff_base"),
        ({"backoff_max": -1.0}, "backoff_max"),
        ({"backoff_max": math.nan}, "backoff_max"),
        ({"max_rate_limit_wait": -1.0}, "max_rate_limit_wait"),
        ({"max_rate_limit_wait": -0.001}, "max_rate_limit_wait"),
        ({"max_rate_limit_wait": math.nan}, "max_rate_limit_wait"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        RetryPolicy(**settings)
    assert err.value.field == field


def test_zero_waits_and_one_attempt_are_accepted() -> None:
    p = RetryPolicy(max_attempts=1, backoff_base=0, backoff_max=0, max_rate_limit_wait=0)
    assert p.backoff(3) == 0.0

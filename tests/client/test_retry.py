"""Retries: 429 until the advertised reset (capped), 502/503/504 and network errors with
capped exponential backoff, and never a second send after 400/401/403/404/500."""

from __future__ import annotations

import logging
from collections.abc import Callable
from email.utils import formatdate

import httpx
import pytest

from airflow_provider_wfdlq.client import (
    APIError,
    AuthError,
    BadRequestError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from airflow_provider_wfdlq.client.retry import rate_limit_wait
from tests.client.conftest import NOW, TOKEN, Api, Sleeps, answer

DLQ_ID = "1752829295505-0"
MESSAGE = {"dlqId": DLQ_ID}


def limited(**headers: str) -> httpx.Response:
    return answer(
        429, {"error": "Too many requests"}, {k.replace("_", "-"): v for k, v in headers.items()}
    )


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Burst-RateLimit-Reset": str(int(NOW) + 3)}, 3.0),
        ({"RateLimit-Reset": str(int(NOW) + 5)}, 5.0),
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": formatdate(NOW + 9, usegmt=True)}, 9.0),
        ({"Burst-RateLimit-Reset": str(int(NOW) - 10)}, 0.0),
    ],
)
async def test_429_waits_until_the_advertised_reset(
    make_api: Callable[..., Api], sleeps: Sleeps, headers: dict[str, str], wait: float
) -> None:
    api = make_api(answer(429, {"error": "slow down"}, headers), answer(json=MESSAGE))
    message = await api.call("get_message", DLQ_ID)
    assert message.dlq_id == DLQ_ID
    assert list(sleeps) == pytest.approx([wait])
    assert len(api.server.requests) == 2


async def test_429_beyond_the_cap_raises_at_once(
    make_api: Callable[..., Api], sleeps: Sleeps
) -> None:
    api = make_api(answer(429, {"error": "daily"}, {"RateLimit-Reset": str(int(NOW) + 3600)}))
    with pytest.raises(RateLimitedError) as caught:
        await api.call("get_message", DLQ_ID)
    assert caught.value.retry_after == pytest.approx(3600)
    assert caught.value.status == 429
    assert caught.value.error == "daily"
    assert sleeps == []
    assert len(api.server.requests) == 1


async def test_429_cap_is_configurable(make_api: Callable[..., Api], sleeps: Sleeps) -> None:
    reset = {"Burst-RateLimit-Reset": str(int(NOW) + 20)}
    api = make_api(answer(429, {}, reset), answer(json=MESSAGE), max_rate_limit_wait=10.0)
    with pytest.raises(RateLimitedError):
        await api.call("get_message", DLQ_ID)
    api = make_api(answer(429, {}, reset), answer(json=MESSAGE), max_rate_limit_wait=20.0)
    await api.call("get_message", DLQ_ID)
    assert sleeps == [20.0]


async def test_429_until_attempts_run_out(make_api: Callable[..., Api], sleeps: Sleeps) -> None:
    api = make_api(*[answer(429, {}, {"Retry-After": "1"})] * 3, max_attempts=3)
    with pytest.raises(RateLimitedError) as caught:
        await api.call("get_message", DLQ_ID)
    assert caught.value.retry_after == 1.0
    assert sleeps == [1.0, 1.0]
    assert len(api.server.requests) == 3


async def test_429_without_hint_backs_off(make_api: Callable[..., Api], sleeps: Sleeps) -> None:
    api = make_api(answer(429, {}), answer(json=MESSAGE))
    await api.call("get_message", DLQ_ID)
    assert sleeps == [0.5]


def test_the_exhausted_window_wins() -> None:
    headers = {
        "Burst-RateLimit-Remaining": "4",
        "Burst-RateLimit-Reset": str(int(NOW) + 1),
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": str(int(NOW) + 30),
    }
    assert rate_limit_wait(headers, NOW) == 30.0
    headers["Burst-RateLimit-Remaining"] = "0"
    assert rate_limit_wait(headers, NOW) == 30.0
    del headers["RateLimit-Remaining"]
    assert rate_limit_wait(headers, NOW) == 1.0
    assert rate_limit_wait({"Retry-After": "soon"}, NOW) is None


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_errors_back_off_exponentially_with_a_cap(
    make_api: Callable[..., Api], sleeps: Sleeps, status: int
) -> None:
    replies = [answer(status, {"error": "gateway"})] * 5 + [answer(json=MESSAGE)]
    api = make_api(*replies, max_attempts=6, backoff_base=0.5, backoff_max=4.0)
    await api.call("get_message", DLQ_ID)
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert len(api.server.requests) == 6


async def test_gateway_errors_until_attempts_run_out(
    make_api: Callable[..., Api], sleeps: Sleeps
) -> None:
    api = make_api(*[answer(503, {"error": "unavailable"})] * 3, max_attempts=3)
    with pytest.raises(ServerError, match="503: unavailable"):
        await api.call("list_messages")
    assert len(api.server.requests) == 3
    assert len(sleeps) == 2


async def test_full_jitter_scales_the_backoff(make_api: Callable[..., Api], sleeps: Sleeps) -> None:
    api = make_api(answer(502), answer(502), answer(json=MESSAGE), jitter=True, random=lambda: 0.25)
    await api.call("get_message", DLQ_ID)
    assert sleeps == [0.125, 0.25]


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow connect"),
        httpx.ReadTimeout("slow read"),
        httpx.RemoteProtocolError("peer closed"),
    ],
)
async def test_network_errors_are_retried(
    make_api: Callable[..., Api], sleeps: Sleeps, error: Exception
) -> None:
    api = make_api(error, answer(json=MESSAGE))
    assert (await api.call("get_message", DLQ_ID)).dlq_id == DLQ_ID
    assert sleeps == [0.5]


async def test_network_errors_until_attempts_run_out(
    make_api: Callable[..., Api], sleeps: Sleeps
) -> None:
    api = make_api(*[httpx.ReadTimeout("slow read")] * 2, max_attempts=2)
    with pytest.raises(TransportError, match=r"GET /v2/workflows/dlq/.*ReadTimeout") as caught:
        await api.call("get_message", DLQ_ID)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert sleeps == [0.5]


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequestError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (409, BadRequestError),
        (422, BadRequestError),
        (500, ServerError),
    ],
)
@pytest.mark.parametrize("method", ["get_message", "resume", "delete"])
async def test_never_resent(
    make_api: Callable[..., Api],
    sleeps: Sleeps,
    status: int,
    error_class: type[APIError],
    method: str,
) -> None:
    api = make_api(answer(status, {"error": "nope"}))
    with pytest.raises(error_class) as caught:
        await api.call(method, DLQ_ID)
    assert type(caught.value) is error_class
    assert caught.value.status == status
    assert caught.value.error == "nope"
    assert caught.value.path.startswith("/v2/workflows/dlq/")
    assert len(api.server.requests) == 1
    assert sleeps == []


async def test_error_text_falls_back_to_a_body_excerpt(make_api: Callable[..., Api]) -> None:
    api = make_api(httpx.Response(502, text="<html>" + "x" * 500 + "</html>"), max_attempts=1)
    with pytest.raises(ServerError) as caught:
        await api.call("get_message", DLQ_ID)
    assert caught.value.error.startswith("<html>xxx")
    assert len(caught.value.error) < 250


async def test_retries_are_logged_without_secrets(
    make_api: Callable[..., Api], caplog: pytest.LogCaptureFixture
) -> None:
    api = make_api(answer(503), httpx.ReadError("reset"), answer(json=MESSAGE))
    with caplog.at_level(logging.WARNING, logger="airflow_provider_wfdlq.client"):
        await api.call("get_message", DLQ_ID)
    records = [r for r in caplog.records if r.name == "airflow_provider_wfdlq.client"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    first, second = (r.getMessage() for r in records)
    assert first == f"GET /v2/workflows/dlq/{DLQ_ID}: HTTP 503 on attempt 1 of 5; retrying in 0.50s"
    assert (
        second == f"GET /v2/workflows/dlq/{DLQ_ID}: ReadError on attempt 2 of 5; retrying in 1.00s"
    )
    assert all(TOKEN not in r.getMessage() and "Bearer" not in r.getMessage() for r in records)


def test_policy_checks_its_settings() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="must be >= 0"):
        RetryPolicy(backoff_base=-1)
    assert RetryPolicy(jitter=False).backoff(200) == 30.0

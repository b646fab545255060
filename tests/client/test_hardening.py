"""Hardening: no token in clear over the network, bounded calls, bounded answers, tokens
that cannot leak, case-insensitive redaction, authentication errors that say what to check."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_wfdlq.client import (
    AsyncWorkflowDLQClient,
    AuthError,
    BadRequestError,
    OutcomeUnknownError,
    RetryPolicy,
    TransportError,
    UnexpectedAnswerError,
    ValidationError,
    WorkflowDLQClient,
)
from tests.client.conftest import BASE, TOKEN, Api, answer

ONE_ATTEMPT = RetryPolicy(max_attempts=1)
MESSAGE = b'{"dlqId": "1-0"}'


def make_client(kind: str, handler: Callable[..., Any], **kwargs: Any) -> Any:
    if kind == "sync":
        return WorkflowDLQClient(
            TOKEN, BASE, retry=ONE_ATTEMPT, transport=httpx.MockTransport(handler), **kwargs
        )
    return AsyncWorkflowDLQClient(
        TOKEN, BASE, retry=ONE_ATTEMPT, transport=httpx.MockTransport(handler), **kwargs
    )


async def call(client: Any, name: str, *args: Any) -> Any:
    result = getattr(client, name)(*args)
    return await result if asyncio.iscoroutine(result) else result


# --- 10. no token in clear to a remote plain-http host ----------------------------------------


@pytest.mark.parametrize("cls", [WorkflowDLQClient, AsyncWorkflowDLQClient])
@pytest.mark.parametrize(
    "url", ["http://dlq.example", "http://10.0.0.5:8080", "http://qstash.upstash.io"]
)
def test_plain_http_to_a_remote_host_is_refused(cls: type, url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        cls(TOKEN, url)
    assert caught.value.field == "base_url"
    assert url in str(caught.value)
    assert "allow_insecure_http" in str(caught.value)
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.5.5.5",
        "http://localhost:8080",
        "http://api.localhost",
        "http://[::1]:8080",
        "https://dlq.example",
    ],
)
def test_loopback_and_https_need_no_opt_in(url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        WorkflowDLQClient(TOKEN, url).close()
    assert "INSECURE" not in caplog.text


def test_the_opt_in_is_loud(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="airflow_provider_wfdlq.client"):
        WorkflowDLQClient(TOKEN, "http://dlq.example", allow_insecure_http=True).close()
    assert "INSECURE" in caplog.text
    assert "http://dlq.example" in caplog.text
    assert TOKEN not in caplog.text


def test_the_opt_in_is_a_bool() -> None:
    with pytest.raises(ValidationError, match="allow_insecure_http"):
        WorkflowDLQClient(TOKEN, "http://dlq.example", allow_insecure_http="yes")  # type: ignore[arg-type]


# --- 11. a whole-request deadline, not only a per-read timeout ---------------------------------


def trickle(kind: str, delay: float = 0.05, chunks: int = 200) -> Callable[[httpx.Request], Any]:
    """A server that sends one byte every ``delay`` seconds: never a per-read timeout."""

    def sync_body() -> Iterator[bytes]:
        for _ in range(chunks):
            time.sleep(delay)
            yield b" "

    async def async_body() -> AsyncIterator[bytes]:
        for _ in range(chunks):
            await asyncio.sleep(delay)
            yield b" "

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=sync_body() if kind == "sync" else async_body())

    return handler


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_trickling_answer_hits_the_deadline(kind: str) -> None:
    client = make_client(kind, trickle(kind), timeout=5.0, total_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TransportError, match=r"whole-request deadline of 0\.3s") as caught:
        await call(client, "get_message", "1-0")
    assert time.monotonic() - started < 2.0  # not the 10 s the trickle would take
    assert "GET /v2/workflows/dlq/1-0" in str(caught.value)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_trickling_answer_to_an_action_is_an_unknown_outcome(kind: str) -> None:
    client = make_client(kind, trickle(kind), timeout=5.0, total_timeout=0.3)
    with pytest.raises(OutcomeUnknownError, match="whole-request deadline") as caught:
        await call(client, "resume", "1-0")
    assert caught.value.dlq_ids == ("1-0",)


async def test_the_async_deadline_also_covers_a_stalled_server() -> None:
    async def stall(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, content=MESSAGE)

    client = make_client("async", stall, timeout=10.0, total_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(TransportError, match="whole-request deadline"):
        await client.get_message("1-0")
    assert time.monotonic() - started < 2.0


def test_the_deadline_defaults_to_the_timeout() -> None:
    assert WorkflowDLQClient(TOKEN, timeout=7)._ops.total_timeout == 7.0
    with pytest.raises(ValidationError, match="total_timeout"):
        WorkflowDLQClient(TOKEN, total_timeout=0)


# --- 12. bounded answers ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_an_answer_above_the_cap_is_refused_unread(kind: str) -> None:
    sent: list[int] = []

    def sync_body() -> Iterator[bytes]:
        for _ in range(100):
            sent.append(1)
            yield b"x" * 1024

    async def async_body() -> AsyncIterator[bytes]:
        for _ in range(100):
            sent.append(1)
            yield b"x" * 1024

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=sync_body() if kind == "sync" else async_body())

    client = make_client(kind, handler, max_answer_bytes=4096)
    with pytest.raises(UnexpectedAnswerError, match="cap of 4096 bytes") as caught:
        await call(client, "get_message", "1-0")
    assert caught.value.status == 200
    assert len(sent) <= 6  # stopped reading soon after the cap, not after 100 KiB


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_declared_length_above_the_cap_is_refused_before_reading(kind: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * 10_000)

    client = make_client(kind, handler, max_answer_bytes=1000)
    with pytest.raises(UnexpectedAnswerError, match="declares 10000 bytes"):
        await call(client, "get_message", "1-0")


def test_the_default_cap_is_32_mib() -> None:
    assert WorkflowDLQClient(TOKEN)._ops.max_answer_bytes == 32 * 1024 * 1024
    with pytest.raises(ValidationError, match="max_answer_bytes"):
        WorkflowDLQClient(TOKEN, max_answer_bytes=0)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_gzipped_answer_is_read(kind: str) -> None:
    import gzip

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=gzip.compress(MESSAGE), headers={"Content-Encoding": "gzip"}
        )

    client = make_client(kind, handler)
    assert (await call(client, "get_message", "1-0")).dlq_id == "1-0"


# --- 13. tokens that would leak ---------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        f"{TOKEN}\x00",
        f"{TOKEN[:5]}\x1b[31m{TOKEN[5:]}",
        f"{TOKEN}\x7f",
        f"{TOKEN}\n",
        f" {TOKEN}",
        f"{TOKEN[:5]} {TOKEN[5:]}",
        f"{TOKEN}\u2028",
        "",
    ],
)
def test_a_token_that_would_break_the_header_is_refused_unshown(token: str) -> None:
    with pytest.raises(ValidationError) as caught:
        WorkflowDLQClient(token)
    assert caught.value.field == "token"
    message = str(caught.value)
    assert TOKEN not in message
    assert TOKEN[5:] not in message
    assert "control character" in message or "whitespace" in message or "empty" in message


# --- 14. case-insensitive redaction -------------------------------------------------------------


@pytest.mark.parametrize("echo", [TOKEN.upper(), TOKEN.lower(), TOKEN.swapcase()])
async def test_a_case_changed_echo_is_redacted(make_api: Callable[..., Api], echo: str) -> None:
    api = make_api(answer(400, {"error": f"bad token {echo}"}))
    with pytest.raises(BadRequestError) as caught:
        await api.call("list_messages")
    assert echo not in str(caught.value)
    assert "bad token ***" in str(caught.value)


# --- 15. authentication errors say what to check --------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_errors_name_the_host_and_what_to_check(
    make_api: Callable[..., Api], status: int
) -> None:
    api = make_api(answer(status, {"error": "unauthorized"}))
    with pytest.raises(AuthError) as caught:
        await api.call("list_messages")
    message = str(caught.value)
    assert BASE in message
    assert "token" in message
    assert "region" in message
    assert TOKEN not in message


async def test_the_auth_hint_is_settable(kind: str) -> None:
    client = make_client(
        kind, lambda request: answer(401, {"error": "no"}), auth_hint="check connection 'x'"
    )
    with pytest.raises(AuthError, match="check connection 'x'"):
        await call(client, "get_message", "1-0")

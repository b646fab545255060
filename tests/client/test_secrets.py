"""The token never shows: not in reprs, exception messages, log records or URLs."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable

import httpx
import pytest

from airflow_provider_wfdlq.client import (
    APIError,
    AsyncWorkflowDLQClient,
    AuthError,
    RateLimitedError,
    TransportError,
    ValidationError,
    WorkflowDLQClient,
)
from tests.client.conftest import TOKEN, Api, answer


async def test_client_reprs_hide_the_token() -> None:
    sync_client = WorkflowDLQClient(TOKEN, "http://127.0.0.1:8080")
    async_client = AsyncWorkflowDLQClient(TOKEN)
    assert repr(sync_client) == "<WorkflowDLQClient base_url='http://127.0.0.1:8080'>"
    assert repr(async_client) == "<AsyncWorkflowDLQClient base_url='https://qstash.upstash.io'>"
    assert TOKEN not in str(sync_client)
    sync_client.close()
    await async_client.aclose()


async def test_server_text_echoing_the_token_is_redacted(
    make_api: Callable[..., Api], caplog: pytest.LogCaptureFixture
) -> None:
    api = make_api(
        answer(503, {"error": f"upstream saw {TOKEN}"}),
        answer(401, {"error": f"invalid token {TOKEN}"}),
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as caught:
        await api.call("list_messages")
    assert caught.value.error == "invalid token ***"
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value)
    assert caplog.records  # the retry was logged ...
    assert TOKEN not in caplog.text  # ... without the token, by us or by httpx


async def test_body_excerpt_is_redacted(make_api: Callable[..., Api]) -> None:
    api = make_api(httpx.Response(400, text=f"Bearer {TOKEN} rejected"))
    with pytest.raises(APIError) as caught:
        await api.call("list_messages")
    assert caught.value.error == "Bearer *** rejected"


async def test_transport_errors_are_redacted(make_api: Callable[..., Api]) -> None:
    api = make_api(httpx.ReadError(f"socket said {TOKEN}"), max_attempts=1)
    with pytest.raises(TransportError) as caught:
        await api.call("list_messages")
    assert TOKEN not in str(caught.value)
    assert "socket said ***" in str(caught.value)


async def test_request_urls_never_carry_the_token(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"messages": []}))
    await api.call("list_messages", {"label": "x"})
    assert TOKEN not in str(api.server.requests[0].url)
    assert "qstash_token" not in str(api.server.requests[0].url)


def test_token_validation_does_not_echo_it() -> None:
    with pytest.raises(ValidationError) as caught:
        WorkflowDLQClient(f"{TOKEN} trailing-junk")
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value.value)


def test_errors_survive_pickling() -> None:
    error = RateLimitedError(429, "slow", "GET", "/v2/workflows/dlq", retry_after=3.0)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.retry_after) == (str(error), 3.0)
    validation = ValidationError("delay", "10x", "a duration", "is not a valid duration")
    assert str(pickle.loads(pickle.dumps(validation))) == str(validation)
    transport = TransportError("ReadTimeout: x", "GET", "/p")
    assert str(pickle.loads(pickle.dumps(transport))) == str(transport)

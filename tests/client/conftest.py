"""One fake server (httpx.MockTransport) and one adapter that drives the sync OR async client.

Tests are written once against :class:`Api` and run for both clients through the ``api``
fixture, so sync/async parity is checked by every wire, retry and lost-answer test.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from airflow_provider_wfdlq.client import AsyncWorkflowDLQClient, RetryPolicy, WorkflowDLQClient

TOKEN = "sekret-token-0123456789"
BASE = "https://dlq.example"
NOW = 1_752_829_000.0

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def answer(
    status: int = 200, json: Any = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json=json, headers=headers)


class FakeServer:
    """Answers with a script (one reply per request) or a router; records every request."""

    def __init__(self, *replies: Reply, router: Callable[[httpx.Request], Reply] | None = None):
        self.script = list(replies)
        self.router = router
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.router is not None:
            reply = self.router(request)
        else:
            assert self.script, f"unexpected extra request {request.method} {request.url}"
            reply = self.script.pop(0)
        if isinstance(reply, Exception):
            raise reply
        response = reply(request) if callable(reply) else reply
        # A fresh copy: a Response object can be shared by parametrized cases and by the
        # sync and async clients, but httpx binds a response's stream to the first client.
        return httpx.Response(
            response.status_code, headers=response.headers, content=response.content
        )

    @property
    def calls(self) -> list[tuple[str, str, list[tuple[str, str]]]]:
        """(method, path, ordered query) of every request."""
        return [(r.method, r.url.path, r.url.params.multi_items()) for r in self.requests]


class Api:
    """Drives either client with the same awaitable interface."""

    def __init__(self, kind: str, server: FakeServer, policy: RetryPolicy) -> None:
        self.kind = kind
        self.server = server
        transport = httpx.MockTransport(server)
        cls = WorkflowDLQClient if kind == "sync" else AsyncWorkflowDLQClient
        self.client: Any = cls(TOKEN, BASE, retry=policy, transport=transport)

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, name)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def collect(self, name: str, *args: Any, **kwargs: Any) -> list[Any]:
        iterator = getattr(self.client, name)(*args, **kwargs)
        if hasattr(iterator, "__aiter__"):
            return [item async for item in iterator]
        return list(iterator)


class Sleeps(list[float]):
    """Records the waits instead of waiting (both the sync and the async seam)."""

    def sync(self, seconds: float) -> None:
        self.append(seconds)

    async def async_(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_policy(sleeps: Sleeps, **overrides: Any) -> RetryPolicy:
    settings: dict[str, Any] = {"jitter": False, "backoff_base": 0.5, "backoff_max": 4.0}
    settings.update(overrides)
    return RetryPolicy(clock=lambda: NOW, sleep=sleeps.sync, async_sleep=sleeps.async_, **settings)


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_api(kind: str, sleeps: Sleeps) -> Callable[..., Api]:
    """``make_api(*replies, router=..., **policy)``: a client of the current kind."""

    def make(*replies: Reply, router: Any = None, **policy: Any) -> Api:
        return Api(kind, FakeServer(*replies, router=router), make_policy(sleeps, **policy))

    return make

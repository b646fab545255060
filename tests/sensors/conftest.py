"""Fixtures for the failure-callback sensor tests: a frozen dev server and fast clients.

The dev server's clock is frozen, so a seeded ``CALLBACK_INPROGRESS`` entry stays in
progress until a test moves it (``set_callback_state``, ``advance_time``): nothing settles
behind a test's back while Airflow starts up.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

from airflow_provider_wfdlq.client import RetryPolicy, WorkflowDLQClient
from airflow_provider_wfdlq.devserver import DevServer
from airflow_provider_wfdlq.devserver.seed import callback_info
from airflow_provider_wfdlq.triggers._polling import PollingTrigger

IN_PROGRESS = "CALLBACK_INPROGRESS"
CONN_ID = "qstash_default"

TriggerT = TypeVar("TriggerT", bound=PollingTrigger[Any])
#: What every trigger of the provider serializes (the triggerer rebuilds it from these).
TRIGGER_KWARGS = {"watch", "qstash_conn_id", "poll_interval", "deadline", "known", "max_backoff"}


@pytest.fixture
def server(wfdlq_devserver: DevServer) -> DevServer:
    wfdlq_devserver.control.freeze_time()
    return wfdlq_devserver


@contextmanager
def fast_client(server: DevServer, *, max_rate_limit_wait: float) -> Iterator[WorkflowDLQClient]:
    """Retries once without waiting, so a fault outlasts the retries at no cost in time."""
    policy = RetryPolicy(max_attempts=2, backoff_base=0.0, max_rate_limit_wait=max_rate_limit_wait)
    with WorkflowDLQClient(server.token, server.url, retry=policy) as c:
        yield c


@pytest.fixture
def client(server: DevServer) -> Iterator[WorkflowDLQClient]:
    """Retries without waiting, and gives up fast, so fault tests cost no time."""
    with fast_client(server, max_rate_limit_wait=1.0) as c:
        yield c


@pytest.fixture
def qstash_conn(server: DevServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The Airflow connection to the dev server, with few and quick retries."""
    conn = {
        "conn_type": "qstash",
        "host": server.url,
        "password": server.token,
        "extra": {"max_attempts": 2, "backoff_max": 0.05, "max_rate_limit_wait": 1},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    return CONN_ID


def seed(server: DevServer, state: str | None, count: int = 1, **fields: Any) -> list[str]:
    """Entries with a failure callback in ``state`` (None: no failure callback at all)."""
    if state is None:
        fields.update(failureCallback=None, failureCallbackInfo=None)
    else:
        fields.update(
            failureCallback="https://app.example.com/api/workflow/failure",
            failureCallbackInfo=callback_info(state),
        )
    return [entry["dlqId"] for entry in server.control.seed_entries(count, **fields)]


def settle(server: DevServer, states: dict[str, str]) -> None:
    for dlq_id, state in states.items():
        server.control.set_callback_state(dlq_id, state)


def api_requests(server: DevServer) -> list[tuple[str, str]]:
    """(method, path) of every real-API request since the last clear."""
    return [(r["method"], r["path"]) for r in server.control.requests()]


# --- triggers, driven directly -------------------------------------------------------------------


def fast_trigger(
    trigger_class: type[TriggerT], watch: Any, *, seconds: float = 10.0, **kwargs: Any
) -> TriggerT:
    """A trigger over ``watch`` (a CallbackWatch / RunWatch) that polls fast and ends soon."""
    return trigger_class(
        watch=watch.to_json(),
        qstash_conn_id=CONN_ID,
        poll_interval=0.05,
        deadline=time.time() + seconds,
        **kwargs,
    )


async def first_event(trigger: PollingTrigger[Any]) -> dict[str, Any]:
    event = await asyncio.wait_for(anext(trigger.run()), timeout=30)
    payload: dict[str, Any] = event.payload
    return payload


def assert_round_trips_without_secrets(trigger: PollingTrigger[Any], server: DevServer) -> None:
    """Serialized kwargs are JSON, carry no token, and rebuild the same trigger."""
    classpath, kwargs = trigger.serialize()
    text = json.dumps(kwargs)
    assert server.token not in text
    assert "password" not in text
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(text))
    assert rebuilt.serialize() == (classpath, kwargs)

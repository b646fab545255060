"""Fixtures for the failure-callback sensor tests: a frozen dev server and fast clients.

The dev server's clock is frozen, so a seeded ``CALLBACK_INPROGRESS`` entry stays in
progress until a test moves it (``set_callback_state``, ``advance_time``): nothing settles
behind a test's back while Airflow starts up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_wfdlq.client import RetryPolicy, WorkflowDLQClient
from airflow_provider_wfdlq.devserver import DevServer
from airflow_provider_wfdlq.devserver.seed import callback_info

IN_PROGRESS = "CALLBACK_INPROGRESS"
CONN_ID = "qstash_default"


@pytest.fixture
def server(wfdlq_devserver: DevServer) -> DevServer:
    wfdlq_devserver.control.freeze_time()
    return wfdlq_devserver


@pytest.fixture
def client(server: DevServer) -> Iterator[WorkflowDLQClient]:
    """Retries without waiting, and gives up fast, so fault tests cost no time."""
    policy = RetryPolicy(max_attempts=2, backoff_base=0.0, max_rate_limit_wait=1.0)
    with WorkflowDLQClient(server.token, server.url, retry=policy) as c:
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

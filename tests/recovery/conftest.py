from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_wfdlq.client import RetryPolicy, WorkflowDLQClient


@pytest.fixture
def client(wfdlq_devserver: Any) -> Iterator[WorkflowDLQClient]:
    """A real client over loopback; retries without waiting so faults cost no time."""
    policy = RetryPolicy(backoff_base=0.0, max_rate_limit_wait=2.0)
    with WorkflowDLQClient(wfdlq_devserver.token, wfdlq_devserver.url, retry=policy) as c:
        yield c


def resumed_ids(server: Any, action: str = "resume") -> list[str]:
    """Every dlqId the dev server resumed, in order, from its action log."""
    return [a["dlqId"] for a in server.control.actions() if a["action"] == action]

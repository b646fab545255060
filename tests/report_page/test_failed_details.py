"""The failed-again entries looked up on the dev server: their status and body, escaped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_wfdlq.client import RetryPolicy, WorkflowDLQClient
from airflow_provider_wfdlq.recovery.morning import BODY_EXCERPT, failed_again_details
from airflow_provider_wfdlq.report_page import page_data, render
from tests.report_page.night import HOSTILE_BODY, records, summary


@pytest.fixture
def client(wfdlq_devserver: Any) -> Iterator[WorkflowDLQClient]:
    policy = RetryPolicy(backoff_base=0.0, max_rate_limit_wait=2.0)
    with WorkflowDLQClient(wfdlq_devserver.token, wfdlq_devserver.url, retry=policy) as c:
        yield c


def test_a_failed_again_body_with_a_script_shows_as_text(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    (entry,) = wfdlq_devserver.control.seed_entries(
        responseStatus=502, responseBody=HOSTILE_BODY + "x" * 1000
    )
    night = summary()
    night["failed"][0]["dlq_id"] = entry["dlqId"]
    failed = [*night["failed"], {"dlq_id": "999-0"}, {"dlq_id": entry["dlqId"]}]

    night["failed"], missed = failed_again_details(client.get_message, failed, limit=2)

    assert missed == 1  # 999-0 is not there (404): left as it was
    assert night["failed"][0]["response_status"] == 502
    assert len(night["failed"][0]["response_body"]) == BODY_EXCERPT
    assert night["failed"][1] == {"dlq_id": "999-0"}
    assert night["failed"][2] == {"dlq_id": entry["dlqId"]}  # beyond the limit
    page = render(page_data(night, records()))
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page
    assert "<script" not in page.lower()

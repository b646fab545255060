"""The connection form's Test button runs the doctor's read-only checks."""

from __future__ import annotations

from typing import Any

from airflow_provider_wfdlq.devserver import READINGS
from airflow_provider_wfdlq.hooks.dlq import WorkflowDLQHook


def test_summary_names_the_checks_and_the_reading(
    wfdlq_devserver: Any, wfdlq_connection: str
) -> None:
    wfdlq_devserver.control.reset(entries=30, config=READINGS["newest_first"])
    wfdlq_devserver.control.clear_requests()
    ok, message = WorkflowDLQHook(wfdlq_connection).test_connection()
    assert ok, message
    assert message.startswith(f"Connected to the workflow DLQ at {wfdlq_devserver.url}: ")
    assert "reading: newest_first" in message
    assert "list_order differs" in message
    assert "wfdlq-doctor" in message
    requests = wfdlq_devserver.control.requests()
    assert sum(r["path"] == "/v2/workflows/dlq" for r in requests) == 1  # one list page
    assert {r["method"] for r in requests} == {"GET"}
    assert wfdlq_devserver.token not in message


def test_default_world_is_ok(wfdlq_devserver: Any, wfdlq_connection: str) -> None:
    ok, message = WorkflowDLQHook(wfdlq_connection).test_connection()
    assert ok, message
    assert "reading: default" in message

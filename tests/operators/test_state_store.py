"""The ledger's durable home before Airflow 3.3: files next to the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_wfdlq.client import DLQFilters, Overrides, WorkflowDLQClient
from airflow_provider_wfdlq.devserver import READINGS
from airflow_provider_wfdlq.operators.dlq import PathStateStore, TaskStateStore, state_store_for
from airflow_provider_wfdlq.recovery import MemoryStore, Redrive, RedrivePlan
from airflow_provider_wfdlq.recovery.selection import ErrorSelection
from tests.recovery.invariants import assert_counts_add_up, assert_never_twice


class Died(BaseException):
    pass


def test_task_state_store_wins_then_report_files_then_memory(tmp_path: Path) -> None:
    report = f"file://{tmp_path}/night.jsonl"
    context: Any = {"task_state_store": MemoryStore()}
    assert isinstance(state_store_for(context, report), TaskStateStore)
    assert isinstance(state_store_for({}, report), PathStateStore)  # type: ignore[arg-type]
    assert isinstance(state_store_for({}, None), MemoryStore)  # type: ignore[arg-type]


def test_a_retry_on_report_files_sends_no_id_twice_where_resumed_entries_stay(
    wfdlq_devserver: Any, tmp_path: Path
) -> None:
    """Airflow 3.1/3.2: no task_state_store. The first try dies mid-call on a server that
    keeps resumed entries; the retry reads the ledger from the report's state folder."""
    server = wfdlq_devserver
    server.control.reset(entries=120, config=dict(READINGS["keep_resumed"]))
    plan = RedrivePlan(
        filters=DLQFilters.build(from_date="2020-01-01T00:00:00Z"),
        overrides=Overrides(),
        selection=ErrorSelection(include_non_retryable=True),
    )
    report = f"file://{tmp_path}/night.jsonl"

    with WorkflowDLQClient(server.token, server.url) as client:
        real, calls = client.resume_bulk, {"n": 0}

        def dying(*args: Any, **kwargs: Any) -> Any:
            answer = real(*args, **kwargs)
            calls["n"] += 1
            if calls["n"] == 2:
                raise Died
            return answer

        client.resume_bulk = dying  # type: ignore[method-assign]
        with pytest.raises(Died):
            Redrive(client, plan, store=state_store_for({}, report)).run()  # type: ignore[arg-type]
        client.resume_bulk = real  # type: ignore[method-assign]
        assert (tmp_path / "night.jsonl.state" / "wfdlq_ledger.json").exists()

        result = Redrive(client, plan, store=state_store_for({}, report)).run()  # type: ignore[arg-type]

    assert result.stopped == "done"
    assert_never_twice(server)
    assert_counts_add_up(result)
    assert result.counts["answer_lost_unknown"] == 50  # the batch in flight when it died
    assert result.counts["resumed"] == 70

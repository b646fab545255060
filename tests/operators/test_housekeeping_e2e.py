"""The housekeeping operators through Airflow itself (``dag.test()``) against the dev
server: one run checks each action's dry run, a cap and a refusal (each run costs 5-10 s)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.dagrun import dagbag, run_dag
from tests.dags.wfdlq_housekeeping_dags import CALLBACK_URL, CLEANUP_URL

pytestmark = pytest.mark.airflow


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _kept(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    return {
        ln["dlq_id"]: ln["entry"] for ln in _lines(path) if ln["event"] == "entry_before_delete"
    }


def test_delete_and_callback_housekeeping_in_a_dag(
    airflow_db: Path, wfdlq_devserver: Any, wfdlq_connection: str, tmp_path: Path
) -> None:
    server = wfdlq_devserver
    server.control.reset(entries=0)
    server.control.set_config(callback_seconds=3600)  # no callback settles during the run
    at = 1_790_000_000_000
    doomed = server.control.seed_entries(count=5, workflowUrl=CLEANUP_URL, responseStatus=489)
    kept_alive = server.control.seed_entries(count=3, workflowUrl=CLEANUP_URL, responseStatus=500)
    states = ["CALLBACK_FAIL"] * 4 + ["CALLBACK_SUCCESS"] * 2 + ["CALLBACK_INPROGRESS"]
    callbacks = [
        server.control.seed_entries(
            count=1,
            workflowUrl=CALLBACK_URL,
            createdAt=at + n,
            failureCallbackInfo={"state": state},
        )[0]
        for n, state in enumerate(states)
    ]
    before = {e["dlqId"]: e for e in server.control.entries()}
    failed = [c["dlqId"] for c in callbacks[:4]]
    delete_report = tmp_path / "delete.jsonl"
    seen_at_delete: list[bool] = []

    def on_action(record: dict[str, Any]) -> None:
        # In the server's thread, as the server acts: never call it over HTTP here.
        if record["action"] == "delete":
            seen_at_delete.append(
                _kept(delete_report).get(record["dlqId"]) == before[record["dlqId"]]
            )
        if record["action"] == "callback_retry" and record["dlqId"] == failed[0]:
            # The newest failed callback settles between the listing and its call: 400.
            server.world.set_callback_state(failed[-1], "CALLBACK_SUCCESS")

    server.world.on_action = on_action
    try:
        outcome = run_dag(
            dagbag(str(Path(__file__).resolve().parents[1] / "dags")).dags["wfdlq_housekeeping"],
            conf={"report_dir": str(tmp_path)},
        )
    finally:
        server.world.on_action = None

    states_now = outcome.task_states
    assert states_now["refuses_the_whole_dlq"] == "failed"
    assert states_now["refuses_a_cap_that_renders_to_nothing"] == "failed"
    assert outcome.tries["refuses_a_cap_that_renders_to_nothing"] == 1  # not retried
    for task in ("preview_delete", "delete", "preview_callbacks", "retry_callbacks"):
        assert states_now[task] == "success", task
    assert states_now["cancel_callbacks"] == "success"
    x = outcome.xcom

    # Delete: the dry run names exactly the five 489s; the cap of 3 takes the oldest three,
    # each written whole to the report (and on disk when the server deleted it).
    assert x["preview_delete"]["counts"] == {"would_delete": 5, "skipped_status": 3}
    would = {ln["dlq_id"] for ln in _lines(tmp_path / "preview_delete.jsonl")}
    assert would >= {e["dlqId"] for e in doomed}
    oldest = sorted(doomed, key=lambda e: (e["createdAt"], e["dlqId"]))[:3]
    actions = server.control.actions()
    deleted = [a["dlqId"] for a in actions if a["action"] == "delete"]
    assert sorted(deleted) == sorted(e["dlqId"] for e in oldest)
    assert x["delete"]["counts"] == {"deleted": 3, "left_max_resumes": 2, "skipped_status": 3}
    assert seen_at_delete == [True, True, True]
    assert set(_kept(delete_report)) == set(deleted)
    left = {e["dlqId"] for e in server.control.entries()}
    assert {e["dlqId"] for e in kept_alive} <= left

    # Callbacks: only CALLBACK_FAIL is retried; one settled meanwhile (the server's 400).
    assert x["preview_callbacks"]["counts"] == {
        "would_retry_failure_callback": 4,
        "skipped_callback_state": 3,
    }
    retried = [a["dlqId"] for a in actions if a["action"] == "callback_retry"]
    assert retried == failed[:3]
    assert x["retry_callbacks"]["counts"] == {
        "callback_retried": 3,
        "not_acted": 1,
        "skipped_callback_state": 3,
    }
    assert x["retry_callbacks"]["runs"] == []  # a callback retry makes no run
    # Cancel: 4 in progress (3 just retried + 1), capped at 2, oldest first.
    canceled = [a["dlqId"] for a in actions if a["action"] == "callback_cancel"]
    assert canceled == failed[:2]
    assert x["cancel_callbacks"]["counts"] == {
        "callback_canceled": 2,
        "left_max_resumes": 2,
        "skipped_callback_state": 3,
    }


def test_errors_name_the_arguments_as_each_operator_calls_them(wfdlq_connection: str) -> None:
    from airflow_provider_wfdlq._compat import AirflowFailException
    from airflow_provider_wfdlq.operators.dlq import ResumeDLQOperator
    from airflow_provider_wfdlq.operators.housekeeping import (
        DeleteDLQOperator,
        RetryFailureCallbackOperator,
    )

    with pytest.raises(AirflowFailException, match=r"delete_all=True") as whole:
        DeleteDLQOperator(task_id="d").build_plan()
    assert "resume_all" not in str(whole.value)
    with pytest.raises(AirflowFailException, match=r"max_deletes"):
        DeleteDLQOperator(task_id="d", filters={"label": "x"}, max_deletes=0).build_plan()
    with pytest.raises(AirflowFailException, match=r"max_callbacks"):
        RetryFailureCallbackOperator(
            task_id="r", filters={"label": "x"}, max_callbacks=-1
        ).build_plan()
    with pytest.raises(AirflowFailException, match=r"overrides"):
        DeleteDLQOperator(
            task_id="d", filters={"label": "x"}, overrides={"retries": 1}
        ).build_plan()
    # A typo in ResumeDLQOperator's action can never turn a resume into a deletion.
    with pytest.raises(AirflowFailException, match=r"action"):
        ResumeDLQOperator(task_id="r", filters={"label": "x"}, action="delete").build_plan()


def test_the_nightly_example_housekeeping_branch_retries_callbacks_and_deletes_old_489s(
    airflow_db: Path, wfdlq_devserver: Any, wfdlq_connection: str, tmp_path: Path
) -> None:
    import pendulum

    server = wfdlq_devserver
    server.control.reset(entries=0)
    server.control.set_config(run_seconds=0, success_ratio=1.0)
    night = pendulum.now("UTC").start_of("day")
    in_window = int(night.subtract(hours=12).timestamp() * 1000)
    long_ago = int(night.subtract(days=30).timestamp() * 1000)
    do_not_retry = {
        "responseStatus": 489,
        "responseHeader": {"Upstash-NonRetryable-Error": ["true"]},
    }
    (retryable,) = server.control.seed_entries(count=1, createdAt=in_window, responseStatus=500)
    failed_callbacks = server.control.seed_entries(
        count=2,
        createdAt=in_window + 1,
        failureCallbackInfo={"state": "CALLBACK_FAIL"},
        **do_not_retry,
    )
    old = server.control.seed_entries(count=2, createdAt=long_ago, **do_not_retry)
    (old_500,) = server.control.seed_entries(count=1, createdAt=long_ago, responseStatus=500)
    before = {e["dlqId"]: e for e in server.control.entries()}

    outcome = run_dag(
        dagbag(str(Path(__file__).resolve().parents[2] / "example_dags")).dags[
            "nightly_dlq_recovery"
        ],
        conf={"report_dir": str(tmp_path), "housekeeping": True, "delete_after_days": 7},
        logical_date=night,
    )

    assert outcome.state == "success", outcome.task_states
    actions = server.control.actions()
    assert [a["dlqId"] for a in actions if a["action"] == "resume"] == [retryable["dlqId"]]
    retried = sorted(a["dlqId"] for a in actions if a["action"] == "callback_retry")
    assert retried == sorted(e["dlqId"] for e in failed_callbacks)
    deleted = sorted(a["dlqId"] for a in actions if a["action"] == "delete")
    assert deleted == sorted(e["dlqId"] for e in old)  # old 489s only: not the old 500
    assert old_500["dlqId"] in {e["dlqId"] for e in server.control.entries()}
    date = night.subtract(days=1).to_date_string()
    copies = _kept(tmp_path / "nightly_dlq_recovery" / f"{date}.deleted.jsonl")
    assert copies == {i: before[i] for i in deleted}
    morning = outcome.xcom["morning_report"]
    house = morning["housekeeping"]
    assert (house["deleted"], house["callbacks_retried"]) == (2, 2)
    assert sorted(house["callbacks_retried_ids"]) == retried
    assert "  housekeeping:" in morning["lines"]

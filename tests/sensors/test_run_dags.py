"""WorkflowRunSensor and the morning report through ``dag.test()`` over the dev server.

One run covers: runs that partly fail again (their new dlqIds reported), poke, reschedule
and deferrable modes, ``min_success_ratio`` failing the task, runs still running at the
timeout under both ``on_timeout`` policies, a 429 storm on the run logs, and the report
written after a failed follow-up. The all-recover case is the nightly DAG's test
(tests/operators/test_resume_dlq_e2e.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_wfdlq.devserver import DevServer
from tests.airflow.dagrun import run_dag

pytestmark = pytest.mark.airflow

LOGS = "/v2/workflows/logs"
MIXED, HELD = 16, 3


def pause(server: DevServer, key: str) -> None:
    response = httpx.post(
        f"{server.url}/v2/flowControl/{key}/pause",
        headers={"Authorization": f"Bearer {server.token}"},
    )
    response.raise_for_status()


def test_followed_runs_report_their_outcome_in_every_mode(
    airflow_db: Any, wfdlq_devserver: DevServer, qstash_conn: str, tmp_path: Path
) -> None:
    from tests.dags.wfdlq_run_dags import HELD_KEY, follow_dag

    server = wfdlq_devserver
    server.control.unfreeze_time()  # runs finish on the real clock, while sensors poll
    server.control.set_config(run_seconds=1.0, success_ratio=0.5)
    retryable = {"responseStatus": 500, "responseHeader": {"Content-Type": ["text/plain"]}}
    mixed = {e["dlqId"] for e in server.control.seed_entries(MIXED, labels=["mixed"], **retryable)}
    held = {e["dlqId"] for e in server.control.seed_entries(HELD, labels=["held"], **retryable)}
    pause(server, HELD_KEY)
    server.control.add_fault("429", path_prefix=LOGS, ratio=0.3, reset_seconds=0)
    report_path = tmp_path / "night.jsonl"

    outcome = run_dag(follow_dag, conf={"report_path": f"file://{report_path}"})

    states = outcome.task_states
    runs = {r["workflowRunId"]: r for r in server.control.runs()}
    resumed = outcome.xcom["resume"]["runs"]
    assert {r["dlq_id"] for r in resumed} == mixed
    new_runs = [runs[r["workflow_run_id"]] for r in resumed]
    failed_runs = {
        r["workflowRunId"]: r["dlqId"] for r in new_runs if r["workflowState"] == "RUN_FAILED"
    }
    assert 0 < len(failed_runs) < MIXED  # success_ratio 0.5 over 16 runs
    entries = {e["dlqId"]: e for e in server.control.entries()}

    # Poke and reschedule modes wait until every run is final and agree on the outcome.
    for task_id in ("follow_poke", "follow_reschedule"):
        assert states[task_id] == "success", task_id
        result = outcome.xcom[task_id]
        assert result["counts"] == {
            "RUN_SUCCESS": MIXED - len(failed_runs),
            "RUN_FAILED": len(failed_runs),
            "RUN_CANCELED": 0,
        }
        assert result["still_running"] == 0
        # Each run that failed again names the NEW entry it is in the DLQ as, and its origin.
        named = {f["workflow_run_id"]: f for f in result["failed"]}
        assert {i: f["dlq_id"] for i, f in named.items()} == failed_runs
        for run_id, item in named.items():
            assert entries[item["dlq_id"]]["workflowRunId"] == run_id
            assert item["resumed_from"] in mixed
            assert item["dlq_id"] not in mixed

    # Deferrable, with a ratio the night did not reach: failed, the outcome still pushed.
    assert states["follow_ratio"] == "failed"
    # The report ran anyway (all_done), wrote the summary, and failed the run on purpose.
    assert states["report"] == "failed"
    summary = json.loads((tmp_path / "night.summary.json").read_text())
    assert summary["recovered"] == MIXED - len(failed_runs)
    assert summary["failed_again"] == len(failed_runs)
    assert {f["dlq_id"] for f in summary["failed"]} == set(failed_runs.values())
    assert any("min_success_ratio 0.95" in p for p in summary["problems"])
    text = "\n".join(summary["lines"])
    assert all(dlq_id in text for dlq_id in failed_runs.values())

    # Held runs never finish: a timeout fails, or reports what is still running.
    assert states["held_times_out"] == "failed"
    assert states["held_reported"] == "success"
    held_result = outcome.xcom["held_reported"]
    assert held_result["still_running"] == HELD
    assert held_result["timed_out"] is True
    assert held_result["success_ratio"] == 0.0
    assert {r["dlq_id"] for r in outcome.xcom["resume_held"]["runs"]} == held

    # Bad input fails before any request, even with soft_fail.
    assert states["bad_input"] == "failed"

    # The 429s really hit the run-log polls, and a poll asks about its runs 10 at a time
    # (Upstash's most per workflowRuns call).
    log_calls = [r for r in server.control.requests() if r["path"] == LOGS]
    assert any(r["status"] == 429 for r in log_calls)
    sizes = [len(v.split(",")) for r in log_calls for k, v in r["query"] if k == "workflowRuns"]
    assert len(sizes) == len(log_calls)
    assert max(sizes) == 10
    assert MIXED - 10 in sizes
    assert HELD in sizes

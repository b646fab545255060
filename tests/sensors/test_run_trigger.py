"""WorkflowRunTrigger: serialisation and run(), driven directly against the dev server
(whose clock is frozen: runs finish only when a test advances it)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from airflow_provider_wfdlq.client import ResumedRun, WorkflowDLQClient
from airflow_provider_wfdlq.devserver import DevServer
from airflow_provider_wfdlq.recovery.runs import RunWatch
from airflow_provider_wfdlq.triggers.runs import WorkflowRunTrigger
from tests.sensors.conftest import (
    CONN_ID,
    TRIGGER_KWARGS,
    assert_round_trips_without_secrets,
    fast_trigger,
    first_event,
)

LOGS = "/v2/workflows/logs"


def make_trigger(watch: RunWatch, **kwargs: Any) -> WorkflowRunTrigger:
    return fast_trigger(WorkflowRunTrigger, watch, **kwargs)


def resume(client: WorkflowDLQClient, server: DevServer, n: int) -> list[ResumedRun]:
    ids = [e["dlqId"] for e in server.control.entries()][:n]
    return list(client.resume_bulk({"dlq_ids": ids}).runs)


def test_serialize_is_json_safe_importable_and_carries_no_token(
    server: DevServer, qstash_conn: str
) -> None:
    watch = RunWatch.build(runs="wfr_AAAAAAAAAAAAAAAAAAAAA@1752829295505", min_success_ratio=0.5)
    trigger = make_trigger(
        watch, known={"wfr_AAAAAAAAAAAAAAAAAAAAA": ["RUN_SUCCESS", None, 1, None, None]}
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_wfdlq.triggers.runs.WorkflowRunTrigger"
    assert set(kwargs) == TRIGGER_KWARGS
    assert_round_trips_without_secrets(trigger, server)


async def test_run_waits_through_429s_until_the_runs_are_final(
    server: DevServer, client: WorkflowDLQClient, qstash_conn: str
) -> None:
    server.control.set_config(run_seconds=30, success_ratio=0.5)
    runs = resume(client, server, 12)
    server.control.add_fault("429", path_prefix=LOGS, ratio=0.5, reset_seconds=0)

    async def finish_later() -> None:
        # Once the trigger has polled through a 429 and seen the runs still running
        # (however long its connection lookup took), the runs finish.
        for _ in range(200):
            statuses = [r["status"] for r in server.control.requests() if r["path"] == LOGS]
            if 429 in statuses and 200 in statuses:
                break
            await asyncio.sleep(0.05)
        await asyncio.to_thread(server.control.advance_time, 31)

    trigger = make_trigger(RunWatch.build(runs=runs))
    event, _ = await asyncio.gather(first_event(trigger), finish_later())

    assert event["status"] == "success"
    outcome = event["outcome"]
    truth = {r["workflowRunId"]: r for r in server.control.runs()}
    failed = {r.workflow_run_id: truth[r.workflow_run_id].get("dlqId") for r in runs}
    failed = {k: v for k, v in failed.items() if v}
    assert outcome["failed_again"] == len(failed)
    assert {f["workflow_run_id"]: f["dlq_id"] for f in outcome["failed"]} == failed
    statuses = [r["status"] for r in server.control.requests() if r["path"] == LOGS]
    assert 429 in statuses
    assert statuses.count(200) >= 2  # it polled while the runs were running, then again


async def test_run_ends_at_its_own_deadline_under_on_timeout(
    server: DevServer, client: WorkflowDLQClient, qstash_conn: str
) -> None:
    runs = resume(client, server, 3)  # the clock is frozen: they never finish
    failing = await first_event(make_trigger(RunWatch.build(runs=runs), seconds=0.3))
    assert failing["status"] == "timeout"
    assert failing["outcome"]["still_running"] == 3
    assert runs[0].workflow_run_id in failing["message"]
    watch = RunWatch.build(runs=runs, on_timeout="report")
    reported = await first_event(make_trigger(watch, seconds=0.3))
    assert reported["status"] == "success"
    assert reported["outcome"]["timed_out"] is True


async def test_a_wrong_token_ends_with_an_error_that_does_not_leak_it(
    server: DevServer, client: WorkflowDLQClient, monkeypatch: Any
) -> None:
    runs = resume(client, server, 1)
    conn = {"conn_type": "qstash", "host": server.url, "password": "not-the-token-sekrit"}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    event = await first_event(make_trigger(RunWatch.build(runs=runs)))
    assert event["status"] == "error"
    assert "not-the-token-sekrit" not in json.dumps(event)

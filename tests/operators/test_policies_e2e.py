"""Recovery policies through Airflow: one ``dag.test()`` run of ``wfdlq_policies``, and a
task killed mid-walk."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pendulum
import pytest

from airflow_provider_wfdlq.client import WorkflowDLQClient
from airflow_provider_wfdlq.operators.dlq import ResumeDLQOperator
from tests.airflow.dagrun import run_dag
from tests.dags.wfdlq_policy_dags import URLS
from tests.operators.test_resume_dlq_e2e import load_dag

pytestmark = pytest.mark.airflow
LOGICAL_DATE = pendulum.datetime(2026, 11, 25, tz="UTC")


def _ids(entries: list[dict[str, Any]]) -> set[str]:
    return {e["dlqId"] for e in entries}


def test_each_policy_through_airflow(
    airflow_db: Path, wfdlq_devserver: Any, wfdlq_connection: str
) -> None:
    server = wfdlq_devserver
    server.control.reset(
        entries=0,
        config={
            "run_seconds": 0.3,
            "success_ratio": 1.0,
            "success_ratio_by_url": {URLS["broken"]: 0.0, URLS["flaky"]: 0.0},
        },
    )
    seed = server.control.seed_entries
    retryable = _ids(seed(count=4, workflowUrl=URLS["mixed-489"], responseStatus=503))
    do_not_retry = _ids(seed(count=3, workflowUrl=URLS["mixed-489"], responseStatus=489))
    broken = _ids(seed(count=10, workflowUrl=URLS["broken"], responseStatus=500))
    labelled = _ids(
        seed(count=2, workflowUrl=URLS["labelled"], responseStatus=500, labels=["tenant-acme"])
    )
    flaky = _ids(seed(count=20, workflowUrl=URLS["flaky"], responseStatus=500))
    day = 86_400_000
    now = server.control.now_ms()
    ageing = seed(count=2, workflowUrl=URLS["ageing"], responseStatus=489, createdAt=now - 3 * day)
    seed(count=1, workflowUrl=URLS["ageing"], responseStatus=489, createdAt=now - day)
    paced = _ids(seed(count=6, workflowUrl=URLS["paced"], responseStatus=500))

    outcome = run_dag(load_dag("wfdlq_policies"), logical_date=LOGICAL_DATE)

    actions = server.control.actions()
    resumed = {a["dlqId"] for a in actions if a["action"] == "resume"}
    states, xcom = outcome.task_states, outcome.xcom

    # 489s are skipped by default; the others are resumed.
    assert states["skips_489_by_default"] == "success"
    assert retryable <= resumed
    assert not do_not_retry & resumed
    assert xcom["skips_489_by_default"]["counts"]["skipped_non_retryable"] == 3

    # The canary over a workflow whose resumed runs all fail: stops after 3, pauses the
    # key, fails the task without retrying, and still hands over its result.
    key = f"airflow-canary-{LOGICAL_DATE.format('YYYYMMDD')}"
    assert states["canary_trips"] == "failed"
    assert outcome.tries["canary_trips"] == 1
    assert len(broken & resumed) == 3
    canary = xcom["canary_trips"]
    assert canary["stopped"] == "canary"
    assert canary["safety"]["canary"]["succeeded"] == 0
    assert canary["safety"]["paused"] == {"key": key, "by": "canary"}
    with WorkflowDLQClient(server.token, server.url) as client:
        assert client.flow_control_state(key).is_paused is True

    # The audit label is appended to each run's own labels.
    assert states["labels_appended"] == "success"
    new_runs = [r for r in server.control.runs() if r.get("resumedFromDlqId") in labelled]
    run_id = xcom["labels_appended"]["policies"]["labels"]
    assert len(new_runs) == 2
    for run in new_runs:
        assert run["labels"][:2] == ["tenant-acme", "redrive"]
        assert run["labels"][2].startswith("airflow:wfdlq_policies:manual__")
    assert "append" in run_id

    # The breaker trips once enough resumed runs failed again, and pauses the default key.
    assert states["breaker_trips"] == "failed"
    breaker = xcom["breaker_trips"]
    assert breaker["stopped"] == "circuit_breaker"
    assert 0 < len(flaky & resumed) < len(flaky)
    paused = breaker["safety"]["paused"]
    assert paused["by"] == "circuit_breaker"
    assert paused["key"].startswith("airflow-redrive-wfdlq_policies-manual__")  # one per run
    assert "+" not in paused["key"]
    assert " " not in paused["key"]

    # Retention: the 489s left behind that expire before the next run are named.
    expiring = xcom["retention_reported"]["expiring"]
    assert {item["dlq_id"] for item in expiring} == _ids(ageing)
    assert xcom["retention_reported"]["counts"]["expiring_before_next_run"] == 2

    # Pacing: every entry resumed, the calls spaced at least 1/20 s apart.
    assert paced <= resumed
    calls = sorted(
        r["at"]
        for r in server.control.requests()
        if ("workflowUrl", URLS["paced"]) in [tuple(p) for p in r["query"]]
        or any(k == "dlqIds" and v in paced for k, v in r["query"])
    )
    assert len(calls) >= 6  # 3 pages of 2, each listed then resumed
    # At most 20 per second overall (single gaps jitter on a loaded machine).
    assert calls[-1] - calls[0] >= (len(calls) - 1) * 45


class _Store:
    """The task_state_store's interface over a dict (the operator is run by hand here)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


def test_killing_the_task_mid_walk_leaves_a_complete_report(
    airflow_db: Path, wfdlq_devserver: Any, wfdlq_connection: str, tmp_path: Path
) -> None:
    """SIGTERM mid-walk, as a worker gets when the task is killed: Airflow's handler calls
    ``on_kill``; the walk stops between pages, the task fails, the report names exactly
    what was resumed, and the key is paused."""
    server = wfdlq_devserver
    server.control.reset(entries=0)
    server.control.seed_entries(count=400, responseStatus=500)
    server.control.add_fault("latency", path_prefix="/v2/workflows/dlq/resume", latency_ms=40)
    report = tmp_path / "report.jsonl"

    def kill_after_some_work() -> None:
        deadline = time.monotonic() + 60
        while len(server.control.actions()) < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)  # the task runs in this process under dag.test

    killer = threading.Thread(target=kill_after_some_work)
    previous = signal.getsignal(signal.SIGTERM)
    killer.start()
    try:
        outcome = run_dag(
            load_dag("wfdlq_killed_mid_walk"), conf={"report_path": f"file://{report}"}
        )
    finally:
        killer.join()
        signal.signal(signal.SIGTERM, previous)

    done = {a["dlqId"] for a in server.control.actions() if a["action"] == "resume"}
    assert outcome.task_states["killed"] == "failed"
    result = outcome.xcom["killed"]
    assert result["stopped"] == "stopped"
    assert 30 <= len(done) < 400
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert {x["dlq_id"] for x in lines if x["event"] == "resumed"} == done
    assert result["counts"]["resumed"] == len(done)
    # Everything was listed first; what the stop left is counted, nothing by cursor.
    assert result["cursor"] is None
    assert result["found"] == result["selected"] == 400
    assert result["counts"]["left_stopped"] == 400 - len(done)
    assert len(lines) == 400 + 1  # one line per entry, and the pause
    key = "airflow-redrive-killed"
    assert lines[-1] == {"event": "paused", "flow_control_key": key, "by": "on_kill"}
    with WorkflowDLQClient(server.token, server.url) as client:
        assert client.flow_control_state(key).is_paused is True


def test_counts_go_to_airflow_stats(
    wfdlq_devserver: Any, wfdlq_connection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_wfdlq._compat import Stats

    server = wfdlq_devserver
    server.control.reset(entries=0)
    server.control.seed_entries(count=3, responseStatus=500)
    server.control.seed_entries(count=2, responseStatus=489)
    seen: list[tuple[str, int, dict[str, str]]] = []
    monkeypatch.setattr(
        Stats, "incr", lambda name, count=1, tags=None, **_: seen.append((name, count, tags))
    )
    operator = ResumeDLQOperator(task_id="metered", filters={"from_date": "2020-01-01"})

    context: Any = {"task_state_store": _Store()}
    operator.execute(context)

    totals: dict[str, int] = {}
    for name, count, tags in seen:
        totals[name] = totals.get(name, 0) + count
        assert tags == {"dag_id": operator.dag_id, "task_id": "metered"}
    assert totals == {
        "wfdlq.redrive.matched": 5,
        "wfdlq.redrive.resumed": 3,
        "wfdlq.redrive.skipped_non_retryable": 2,
    }


def test_on_kill_after_an_execution_timeout_still_pauses_the_key(
    wfdlq_devserver: Any, wfdlq_connection: str
) -> None:
    """On ``execution_timeout`` Airflow interrupts ``execute`` and only then calls
    ``on_kill``: the pause must happen there."""
    server = wfdlq_devserver
    server.control.reset(entries=0)
    server.control.seed_entries(count=2, responseStatus=500)
    operator = ResumeDLQOperator(
        task_id="timed_out",
        filters={"from_date": "2020-01-01"},
        overrides={"flow_control_key": "airflow-redrive-timeout"},
        safety={"pause_on_kill": True},
    )
    context: Any = {"task_state_store": _Store()}
    operator.execute(context)  # stands for the interrupted execute: it has returned

    operator.on_kill()

    with WorkflowDLQClient(server.token, server.url) as client:
        assert client.flow_control_state("airflow-redrive-timeout").is_paused is True

"""The nightly example DAG in a real Airflow deployment, triggered through the REST API.

The deployment (tests/deployment/conftest.py) runs the scheduler, dag-processor and
api-server from the installed package on PostgreSQL. This test seeds the dev server with a
night of failures, some of whose failure callbacks are still running, triggers
``nightly_dlq_recovery`` for that night and checks:

* the run succeeds and every task in it succeeded;
* ``callbacks_final`` really deferred and the triggerer resumed it. The dev server's clock
  is frozen, so its check in the worker sees callbacks in progress and defers; only then
  do the callbacks settle and the triggerer start, so the trigger's first poll finds them
  final and the event can only have come from the triggerer. (With the triggerer already
  running, its first poll could race the settling and wait out the DAG's 60 s
  ``poke_interval``.) Task states seen over REST, the task log and the triggerer's log show
  it;
* each entry in the night's window was resumed exactly once and nothing outside it was
  touched (the dev server's action log).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pendulum
import pytest

from airflow_provider_wfdlq.devserver import DevServer
from tests.deployment.airflow_deployment import files_containing
from tests.deployment.conftest import CALLBACK_SECONDS, Deployment
from tests.deployment.processes import wait_until

pytestmark = pytest.mark.deployment

DAG_ID = "nightly_dlq_recovery"
SENSOR = "callbacks_final"
FINAL_RUN_STATES = {"success", "failed"}


def _ms(moment: pendulum.DateTime) -> int:
    return int(moment.timestamp() * 1000)


def seed_night(
    devserver: DevServer, start: pendulum.DateTime, end: pendulum.DateTime
) -> tuple[list[str], list[str]]:
    """A night of failures in [start, end] (both ends inclusive) and a few around it.

    Every failed step answered 503, which any recovery policy retries: the test is about
    the deployment, not about which failures are worth resuming.
    """
    seed = devserver.control.seed_entries
    hour = 3_600_000
    failed: dict[str, Any] = {
        "responseStatus": 503,
        "responseHeader": {"Content-Type": ["text/plain"]},
        "responseBody": "Service Unavailable",
    }
    in_progress = {"state": "CALLBACK_INPROGRESS"}
    inside: list[dict[str, Any]] = []
    for offset in (0, 2 * hour, 9 * hour, 23 * hour, _ms(end) - _ms(start)):
        inside += seed(createdAt=_ms(start) + offset, failureCallbackInfo=in_progress, **failed)
    for state in ("CALLBACK_SUCCESS", "CALLBACK_FAIL"):
        inside += seed(
            count=2, createdAt=_ms(start) + 5 * hour, failureCallbackInfo={"state": state}, **failed
        )
    inside += seed(createdAt=_ms(start) + 7 * hour, failureCallbackInfo=None, **failed)
    outside: list[dict[str, Any]] = []
    for created in (_ms(start) - 1, _ms(start) - 30 * hour, _ms(end) + 1):
        outside += seed(createdAt=created, failureCallbackInfo=in_progress, **failed)
    return [e["dlqId"] for e in inside], [e["dlqId"] for e in outside]


def task_instances(api: httpx.Client, run_id: str) -> dict[str, dict[str, Any]]:
    response = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
    response.raise_for_status()
    return {ti["task_id"]: ti for ti in response.json()["task_instances"]}


def task_log(api: httpx.Client, run_id: str, task_id: str, try_number: int) -> list[dict[str, Any]]:
    """The task's log as Airflow's REST API serves it: the worker's and the trigger's lines."""
    response = api.get(
        f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
        params={"full_content": "true"},
        headers={"Accept": "application/json"},
    )
    response.raise_for_status()
    return [i if isinstance(i, dict) else {"event": str(i)} for i in response.json()["content"]]


def extra_links(api: httpx.Client, run_id: str, task_id: str) -> dict[str, str | None]:
    response = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/links")
    response.raise_for_status()
    links: dict[str, str | None] = response.json()["extra_links"]
    return links


def first_index(lines: list[dict[str, Any]], text: str) -> int:
    """Where the first log line starting with ``text`` is; fails naming it if none is."""
    for number, line in enumerate(lines):
        if str(line.get("event", "")).startswith(text):
            return number
    raise AssertionError(f"no log line starts with {text!r}: {[x.get('event') for x in lines]}")


def test_nightly_dag_run_in_a_real_deployment(
    deployment: Deployment, devserver: DevServer, tmp_path: Path
) -> None:
    airflow = deployment.airflow
    control = devserver.control
    end = pendulum.now("UTC").start_of("day")
    start = end.subtract(days=1)
    control.freeze_time()  # callbacks in progress stay so until the sensor has deferred
    inside, outside = seed_night(devserver, start, end)
    report_dir = tmp_path / "reports"
    seen: dict[str, list[str]] = {}

    with deployment.phase("DAG run (trigger -> done)"), airflow.client() as api:
        api.patch(f"/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()
        response = api.post(
            f"/dags/{DAG_ID}/dagRuns",
            json={
                "dag_run_id": f"deployment-test-{start.to_date_string()}",
                "logical_date": start.isoformat(),
                "data_interval_start": start.isoformat(),
                "data_interval_end": end.isoformat(),
                "conf": {"report_dir": str(report_dir)},
            },
        )
        assert response.status_code == 200, response.text
        run_id = response.json()["dag_run_id"]

        def watch(*states: str) -> bool:
            deployment.processes.check_alive()
            for task_id, ti in task_instances(api, run_id).items():
                history = seen.setdefault(task_id, [])
                if not history or history[-1] != str(ti["state"]):
                    history.append(str(ti["state"]))
            return seen.get(SENSOR, [""])[-1] in states

        def deferred_or_ended() -> bool:  # no waiting out a timeout when it never defers
            return watch("deferred", "success", "failed", "skipped", "upstream_failed")

        wait_until(f"{SENSOR} deferred", deferred_or_ended, timeout=120, interval=0.2)
        assert seen[SENSOR][-1] == "deferred", f"{SENSOR} did not defer: {seen}"
        assert "triggerer" not in [p.name for p in deployment.processes.started]
        control.unfreeze_time()
        control.advance_time(CALLBACK_SECONDS + 1)  # every watched callback is final now
        airflow.start_components("triggerer")

        def run_done() -> str | None:
            watch()
            state = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}").json()["state"]
            return state if state in FINAL_RUN_STATES else None

        final_state = wait_until("the DAG run finished", run_done, timeout=180, interval=0.5)
        tis = task_instances(api, run_id)
        sensor_log = task_log(api, run_id, SENSOR, tis[SENSOR]["try_number"])
        links = {task: extra_links(api, run_id, task) for task in ("resume", "morning_report")}

    print(f"[deployment] task states as polled: {seen}")
    (tmp_path / f"{SENSOR}.log.json").write_text(json.dumps(sensor_log, indent=1, default=str))
    states = {task_id: ti["state"] for task_id, ti in tis.items()}
    assert final_state == "success", f"DAG run {final_state}; task states {states}"
    # The housekeeping branch is off by default: its two tasks are skipped, all else ran.
    branch = {"retry_callbacks", "delete_old_489s"}
    assert {states.get(task) for task in branch} == {"skipped"}, states
    assert all(state == "success" for t, state in states.items() if t not in branch), states
    assert {"preview", SENSOR, "resume"} <= states.keys()

    # Deferred in the worker, resumed by the triggerer's event, in one try.
    assert "deferred" in seen[SENSOR], seen[SENSOR]
    assert seen[SENSOR][-1] == "success", seen[SENSOR]
    assert tis[SENSOR]["try_number"] == 1, tis[SENSOR]
    deferred = first_index(sensor_log, "Pausing task as DEFERRED")
    trigger_started = first_index(sensor_log, "trigger ")
    fired = first_index(sensor_log, "Trigger fired event")
    assert deferred < trigger_started < fired, sensor_log
    assert "'status': 'success'" in str(sensor_log[fired].get("result")), sensor_log[fired]
    sources = json.dumps(sensor_log[:5])
    assert ".log.trigger." in sources, "no log written by the triggerer: " + sources

    # Exactly once: every entry of the window resumed once, nothing else touched.
    actions = control.actions()
    resumed = Counter(a["dlqId"] for a in actions if a["action"] == "resume")
    assert resumed == Counter(inside), f"resumed {dict(resumed)}, window {sorted(inside)}"
    touched_outside = [a for a in actions if a["dlqId"] in outside]
    assert not touched_outside, touched_outside
    left = {entry["dlqId"] for entry in control.entries()}
    assert set(outside) <= left
    assert not set(inside) & left

    report = report_dir / DAG_ID / f"{start.to_date_string()}.jsonl"
    assert len(report.read_text().splitlines()) == len(inside), report

    # The "DLQ recovery report" link on both tasks opens the page the report task wrote.
    page = report.with_suffix(".html")
    assert page.is_file()
    for task_id, task_links in links.items():
        assert task_links == {"DLQ recovery report": page.as_uri()}, task_id

    # The token is in the deployment's environment, and in none of its logs.
    assert not files_containing(deployment.work, devserver.token)
    assert not files_containing(report_dir, devserver.token)

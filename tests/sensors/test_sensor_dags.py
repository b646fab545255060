"""The sensor through ``dag.test()``: poke, reschedule and deferrable modes, policies,
timeouts and soft_fail, with a 429 storm during polling. Two runs cover it all."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from airflow_provider_wfdlq.devserver import DevServer
from airflow_provider_wfdlq.devserver.control_client import DevServerControl
from tests.airflow.dagrun import HAS_TASK_STATE_STORE, run_dag
from tests.sensors.conftest import IN_PROGRESS, seed

pytestmark = pytest.mark.airflow

DLQ = "/v2/workflows/dlq"


def url(name: str) -> str:
    return f"https://{name}.example.com/api/workflow"


@contextmanager
def settle_when_polled(
    server: DevServer, groups: dict[str, dict[str, str]], after_s: dict[str, float] | None = None
) -> Iterator[set[str]]:
    """Move each group's entries to their final states once a listing filtered by the
    group's workflow URL reaches the server: a sensor only narrows its listing that way
    after it has seen the entries in progress, so every flip proves a real wait. Groups in
    ``after_s`` flip after that many seconds instead (a sensor that cannot narrow)."""
    flipped: set[str] = set()
    stop = threading.Event()
    started = time.monotonic()

    def watch() -> None:
        with DevServerControl(server.url) as control:
            while not stop.wait(0.05) and len(flipped) < len(groups):
                polled = {
                    value
                    for request in control.requests()
                    if request["path"] == DLQ
                    for name, value in request["query"]
                    if name == "workflowUrl"
                }
                elapsed = time.monotonic() - started
                polled |= {u for u, s in (after_s or {}).items() if elapsed >= s}
                for group_url in polled & set(groups) - flipped:
                    for dlq_id, state in groups[group_url].items():
                        control.set_callback_state(dlq_id, state)
                    flipped.add(group_url)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield flipped
    finally:
        stop.set()
        thread.join(timeout=5)


def final(ids: list[str], state: str, status: int | None) -> dict[str, Any]:
    return {i: {"state": state, "response_status": status} for i in ids}


def test_every_mode_waits_for_callbacks_through_a_429_storm(
    airflow_db: Any, server: DevServer, qstash_conn: str
) -> None:
    from tests.dags.wfdlq_sensor_dags import modes_dag

    ids = {
        mode: seed(server, IN_PROGRESS, count=3, workflowUrl=url(mode))
        for mode in ("poke", "reschedule", "deferred", "filtered")
    }
    groups = {
        url("poke"): dict.fromkeys(ids["poke"], "CALLBACK_SUCCESS"),
        url("reschedule"): dict.fromkeys(ids["reschedule"], "CALLBACK_FAIL"),
        url("deferred"): dict.fromkeys(ids["deferred"], "CALLBACK_CANCELED"),
        url("filtered"): dict.fromkeys(ids["filtered"], "CALLBACK_SUCCESS"),
    }
    server.control.add_fault("429", ratio=0.3, reset_seconds=0)
    conf = {
        "poke_ids": ids["poke"],
        "reschedule_ids": ids["reschedule"],
        "deferred_ids": ids["deferred"],
        "filters": {"workflow_url": url("filtered")},
    }
    # Before Airflow 3.3 a rescheduled sensor has no task_state_store to remember what it
    # saw, so it never narrows its listing: its group settles on a timer instead.
    late = {} if HAS_TASK_STATE_STORE else {url("reschedule"): 4.0}
    with settle_when_polled(server, groups, late) as flipped:
        outcome = run_dag(modes_dag, conf)

    assert flipped == set(groups)
    assert outcome.task_states == dict.fromkeys(
        ("resumed", "poke", "reschedule", "deferred", "filtered"), "success"
    )
    assert outcome.xcom["poke"] == final(ids["poke"], "CALLBACK_SUCCESS", 200)
    assert outcome.xcom["reschedule"] == final(ids["reschedule"], "CALLBACK_FAIL", 500)
    assert outcome.xcom["deferred"] == final(ids["deferred"], "CALLBACK_CANCELED", None)
    assert outcome.xcom["filtered"] == final(ids["filtered"], "CALLBACK_SUCCESS", 200)
    assert any(r["status"] == 429 for r in server.control.requests())


def test_failures_policies_timeouts_and_soft_fail(
    airflow_db: Any, server: DevServer, qstash_conn: str
) -> None:
    from tests.dags.wfdlq_sensor_dags import outcomes_dag

    fail_ids = seed(server, IN_PROGRESS, count=2, workflowUrl=url("fail"))
    (done,) = seed(server, "CALLBACK_SUCCESS")
    (bare,) = seed(server, None)
    (stuck,) = seed(server, IN_PROGRESS)
    conf = {
        "fail_ids": fail_ids,
        "policy_ids": [done, bare, "1-0"],
        "vanished_ids": [done, "1-0"],
        "bare_ids": [bare],
        "stuck_ids": [stuck],
    }
    groups = {url("fail"): {fail_ids[0]: "CALLBACK_SUCCESS", fail_ids[1]: "CALLBACK_FAIL"}}
    with settle_when_polled(server, groups) as flipped:
        outcome = run_dag(outcomes_dag, conf)

    assert flipped == set(groups)
    assert outcome.task_states == {
        "fails_on_callback_fail": "failed",
        "default_policies": "success",
        "fails_on_vanished": "failed",
        "fails_on_missing_callback": "failed",
        "times_out_poking": "failed",
        "times_out_rescheduled_soft": "skipped",
        "times_out_deferred": "failed",
        "times_out_deferred_soft": "skipped",
        "bad_input_fails_even_soft": "failed",
    }
    assert outcome.xcom["default_policies"] == {
        done: {"state": "CALLBACK_SUCCESS", "response_status": 200},
        bare: {"state": None, "response_status": None},
    }

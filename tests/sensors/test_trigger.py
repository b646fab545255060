"""DLQFailureCallbackTrigger: serialization and run(), driven directly against the dev server."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from airflow_provider_wfdlq.devserver import DevServer
from airflow_provider_wfdlq.recovery.callbacks import CallbackWatch
from airflow_provider_wfdlq.triggers.dlq import DLQFailureCallbackTrigger
from tests.sensors.conftest import (
    CONN_ID,
    IN_PROGRESS,
    TRIGGER_KWARGS,
    assert_round_trips_without_secrets,
    fast_trigger,
    first_event,
    seed,
    settle,
)


def make_trigger(watch: CallbackWatch, **kwargs: Any) -> DLQFailureCallbackTrigger:
    return fast_trigger(DLQFailureCallbackTrigger, watch, **kwargs)


async def later(seconds: float, action: Any, *args: Any) -> None:
    await asyncio.sleep(seconds)
    await asyncio.to_thread(action, *args)


def test_serialize_is_json_safe_importable_and_carries_no_token(
    server: DevServer, qstash_conn: str
) -> None:
    watch = CallbackWatch.build(dlq_ids=["1-0", "2-0"], failure_states="CALLBACK_FAIL")
    trigger = make_trigger(watch, known={"1-0": ["CALLBACK_SUCCESS", 200, False, 5, None]})
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_wfdlq.triggers.dlq.DLQFailureCallbackTrigger"
    assert set(kwargs) == TRIGGER_KWARGS
    assert_round_trips_without_secrets(trigger, server)


async def test_run_ends_with_the_final_states_once_callbacks_finish(
    server: DevServer, qstash_conn: str
) -> None:
    ids = seed(server, IN_PROGRESS, count=3)
    settled = {ids[0]: "CALLBACK_SUCCESS", ids[1]: "CALLBACK_FAIL", ids[2]: "CALLBACK_CANCELED"}
    trigger = make_trigger(CallbackWatch.build(dlq_ids=ids))
    event, _ = await asyncio.gather(first_event(trigger), later(0.3, settle, server, settled))
    assert event["status"] == "success"
    assert {i: r["state"] for i, r in event["results"].items()} == settled


async def test_run_fails_on_a_failure_state(server: DevServer, qstash_conn: str) -> None:
    ids = seed(server, IN_PROGRESS, count=2)
    trigger = make_trigger(CallbackWatch.build(dlq_ids=ids, failure_states=["CALLBACK_FAIL"]))
    flip = later(0.2, settle, server, {ids[1]: "CALLBACK_FAIL"})
    event, _ = await asyncio.gather(first_event(trigger), flip)
    assert event["status"] == "failed"
    assert f"{ids[1]}: CALLBACK_FAIL, callback answered HTTP 500" in event["message"]
    assert event["pending"] == [ids[0]]


async def test_its_own_deadline_ends_the_wait_naming_what_is_open(
    server: DevServer, qstash_conn: str
) -> None:
    ids = seed(server, IN_PROGRESS, count=2)
    started = time.monotonic()
    # Long enough for a first poll on every supported Airflow (3.1's first async connection
    # lookup alone can take longer than 0.4 s), far shorter than the callbacks take.
    event = await first_event(make_trigger(CallbackWatch.build(dlq_ids=ids), seconds=2.0))
    assert time.monotonic() - started < 8
    assert event["status"] == "timeout"
    assert sorted(event["pending"]) == sorted(ids)
    assert ids[0] in event["message"]


async def test_a_slow_answer_cannot_hold_the_wait_past_its_deadline(
    server: DevServer, qstash_conn: str
) -> None:
    ids = seed(server, IN_PROGRESS)
    server.control.add_fault("latency", latency_ms=5000, ratio=1.0)
    started = time.monotonic()
    event = await first_event(make_trigger(CallbackWatch.build(dlq_ids=ids), seconds=0.5))
    assert time.monotonic() - started < 3
    assert event["status"] == "timeout"
    assert "No poll finished in time" in event["message"]


async def test_a_429_storm_is_waited_out_not_fatal(server: DevServer, qstash_conn: str) -> None:
    ids = seed(server, IN_PROGRESS, count=5)
    server.control.add_fault("429", ratio=1.0, reset_seconds=0)

    async def storm_passes() -> None:
        await asyncio.sleep(1.2)
        await asyncio.to_thread(server.control.clear_faults)
        await asyncio.to_thread(settle, server, dict.fromkeys(ids, "CALLBACK_SUCCESS"))

    trigger = make_trigger(CallbackWatch.build(dlq_ids=ids), max_backoff=0.1)
    event, _ = await asyncio.gather(first_event(trigger), storm_passes())
    assert event["status"] == "success"
    assert sorted(event["results"]) == sorted(ids)
    assert sum(1 for r in server.control.requests() if r["status"] == 429) >= 2


async def test_a_wrong_token_ends_with_an_error_event_without_the_token(
    server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "not-the-token-0123456789"
    conn = {"conn_type": "qstash", "host": server.url, "password": wrong}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    event = await first_event(make_trigger(CallbackWatch.build(dlq_ids="1-0")))
    assert event["status"] == "error"
    assert "401" in event["message"]
    assert wrong not in event["message"]


async def test_a_missing_connection_ends_with_an_error_event(
    server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", raising=False)
    event = await first_event(make_trigger(CallbackWatch.build(dlq_ids="1-0")))
    assert event["status"] == "error"
    assert CONN_ID in event["message"]


async def test_filters_mode_runs_in_the_trigger_too(server: DevServer, qstash_conn: str) -> None:
    ids = seed(server, IN_PROGRESS, count=2, labels=["tonight"])
    trigger = make_trigger(CallbackWatch.build(filters={"label": "tonight"}))
    flip = later(0.2, settle, server, dict.fromkeys(ids, "CALLBACK_SUCCESS"))
    event, _ = await asyncio.gather(first_event(trigger), flip)
    assert event["status"] == "success"
    assert sorted(event["results"]) == sorted(ids)

"""DLQFailureCallbackSensor without a scheduler: validation, poke mode, deferral, resuming."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_wfdlq._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from airflow_provider_wfdlq.client import AuthError
from airflow_provider_wfdlq.devserver import DevServer
from airflow_provider_wfdlq.sensors.dlq import DEFERRAL_GRACE_SECONDS, DLQFailureCallbackSensor
from airflow_provider_wfdlq.triggers.dlq import DLQFailureCallbackTrigger
from tests.sensors.conftest import CONN_ID, IN_PROGRESS, api_requests, seed


def make(**kwargs: Any) -> DLQFailureCallbackSensor:
    kwargs.setdefault("poke_interval", 0.05)
    kwargs.setdefault("timeout", 30)
    return DLQFailureCallbackSensor(task_id="wait", qstash_conn_id=CONN_ID, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"dlq_ids": "wfr_abc"}, "dlq_ids: 'wfr_abc' is not a DLQ id"),
        ({"dlq_ids": "1-0", "on_vanished": "skip"}, "on_vanished: 'skip' is not valid"),
        ({"filters": "{'lable': 'x'}"}, "did you mean 'label'"),
        ({}, "or filters instead"),
    ],
)
def test_bad_input_fails_before_any_request_even_with_soft_fail(
    server: DevServer, qstash_conn: str, kwargs: dict[str, Any], words: str
) -> None:
    server.control.clear_requests()
    with pytest.raises(AirflowFailException, match=words):
        make(soft_fail=True, deferrable=True, **kwargs).execute({})  # type: ignore[arg-type]
    assert api_requests(server) == []


def test_poke_mode_returns_the_states(server: DevServer, qstash_conn: str) -> None:
    ids = seed(server, "CALLBACK_SUCCESS", count=2)
    result = make(dlq_ids=ids).execute({})  # type: ignore[arg-type]
    assert result == {key: {"state": "CALLBACK_SUCCESS", "response_status": 200} for key in ids}


def test_a_final_wait_does_not_defer(server: DevServer, qstash_conn: str) -> None:
    (dlq_id,) = seed(server, "CALLBACK_CANCELED")
    result = make(dlq_ids=dlq_id, deferrable=True).execute({})  # type: ignore[arg-type]
    assert result == {dlq_id: {"state": "CALLBACK_CANCELED", "response_status": None}}


def test_an_open_wait_defers_with_what_it_saw_and_a_deadline(
    server: DevServer, qstash_conn: str
) -> None:
    (running,) = seed(server, IN_PROGRESS)
    (final,) = seed(server, "CALLBACK_SUCCESS")
    sensor = make(dlq_ids=[running, final], deferrable=True, timeout=120, poke_interval=7)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, DLQFailureCallbackTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == timedelta(seconds=120 + DEFERRAL_GRACE_SECONDS)
    _, kwargs = trigger.serialize()
    assert kwargs["watch"]["dlq_ids"] == [running, final]
    assert kwargs["poll_interval"] == 7
    assert set(kwargs["known"]) == {running, final}
    assert server.token not in repr(kwargs)


def test_a_failure_found_before_deferring_is_skipped_with_soft_fail(
    server: DevServer, qstash_conn: str
) -> None:
    (failed,) = seed(server, "CALLBACK_FAIL")
    sensor = make(dlq_ids=failed, failure_states="CALLBACK_FAIL", deferrable=True, soft_fail=True)
    with pytest.raises(AirflowSkipException, match=f"{failed}: CALLBACK_FAIL"):
        sensor.execute({})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("failed", AirflowFailException),
        ("timeout", AirflowSensorTimeout),
        ("error", AirflowException),
    ],
)
def test_execute_complete_turns_events_into_airflow_outcomes(
    status: str, error: type[Exception]
) -> None:
    event = {"status": status, "message": f"the {status} message", "results": {}, "pending": []}
    with pytest.raises(error, match=f"the {status} message"):
        make(dlq_ids="1-0").execute_complete({}, event)  # type: ignore[arg-type]
    results = {"1-0": {"state": "CALLBACK_SUCCESS", "response_status": 200}}
    success = {"status": "success", "message": "ok", "results": results}
    assert make(dlq_ids="1-0").execute_complete({}, success) == results  # type: ignore[arg-type]


def test_transient_errors_make_a_poke_wait_not_fail(server: DevServer, qstash_conn: str) -> None:
    (dlq_id,) = seed(server, "CALLBACK_SUCCESS")
    server.control.add_fault("503", times=2)  # the connection allows 2 attempts: one poke fails
    sensor = make(dlq_ids=dlq_id)
    assert sensor.poke({}).is_done is False  # type: ignore[arg-type]
    assert sensor.poke({}).is_done is True  # type: ignore[arg-type]
    sensor.hook.close()  # execute() closes it; a bare poke() leaves that to its caller


def test_other_api_errors_fail_the_poke_without_the_token(
    server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "not-the-token-0123456789"
    conn = json.dumps({"conn_type": "qstash", "host": server.url, "password": wrong})
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", conn)
    sensor = make(dlq_ids="1-0")
    with pytest.raises(AuthError) as caught:
        sensor.poke({})  # type: ignore[arg-type]
    sensor.hook.close()
    assert wrong not in str(caught.value)


def test_deferrable_defaults_to_airflow_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert make(dlq_ids="1-0").deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert make(dlq_ids="1-0").deferrable is False
    assert make(dlq_ids="1-0", deferrable=True).deferrable is True

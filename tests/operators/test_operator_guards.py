"""Guards a newcomer meets in the first hour: a wrong token fails without retries and says
what to check; a zero-length window is refused instead of "nothing matched"."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_wfdlq._compat import AirflowFailException
from airflow_provider_wfdlq.operators.dlq import ResumeDLQOperator
from airflow_provider_wfdlq.recovery import MemoryStore

DAY = "2026-11-29T00:00:00Z"


def test_a_zero_length_window_is_refused_before_any_request(
    wfdlq_devserver: Any, wfdlq_connection: str
) -> None:
    operator = ResumeDLQOperator(task_id="zero", filters={"from_date": DAY, "to_date": DAY})
    with pytest.raises(AirflowFailException, match="zero-length window") as caught:
        operator.build_plan()
    assert "CronDataIntervalTimetable" in str(caught.value)
    assert wfdlq_devserver.control.requests() == []


def test_a_wrong_token_fails_without_retry_naming_the_connection_and_host(
    wfdlq_devserver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "not-the-right-token-0123"
    conn = {"conn_type": "qstash", "host": wfdlq_devserver.url, "password": wrong}
    monkeypatch.setenv("AIRFLOW_CONN_QSTASH_WRONG", json.dumps(conn))
    operator = ResumeDLQOperator(
        task_id="wrong", filters={"from_date": DAY}, qstash_conn_id="qstash_wrong"
    )
    context: Any = {"task_state_store": MemoryStore()}
    with pytest.raises(AirflowFailException) as caught:  # fails; Airflow does not retry it
        operator.execute(context)
    message = str(caught.value)
    assert "401" in message
    assert "qstash_wrong" in message
    assert wfdlq_devserver.url.split("://", 1)[1] in message
    assert wrong not in message
    assert wfdlq_devserver.control.actions() == []


def test_a_second_run_for_the_same_date_does_not_overwrite_the_first_report(
    wfdlq_devserver: Any, wfdlq_connection: str, tmp_path: Any
) -> None:
    report = tmp_path / "2026-11-29.jsonl"
    results = []
    for _ in range(2):  # two DAG runs for one date: fresh task state each
        operator = ResumeDLQOperator(
            task_id="twice", filters={"from_date": "2020-01-01"}, report_path=f"file://{report}"
        )
        context: Any = {"task_state_store": MemoryStore()}
        results.append(operator.execute(context))
    first, second = results
    assert first["report_path"] == f"file://{report}"
    assert second["report_path"].endswith("2026-11-29.1.jsonl")
    assert report.read_text().count("\n") == first["found"]  # the first night's, intact
    assert (tmp_path / "2026-11-29.1.jsonl").exists()


def test_a_retry_appends_to_the_report_its_first_try_chose(
    wfdlq_devserver: Any, wfdlq_connection: str, tmp_path: Any
) -> None:
    report = tmp_path / "night.jsonl"
    report.write_text("")  # an earlier DAG run's report of the same name
    store = MemoryStore()
    store.set("wfdlq_report_path", f"file://{tmp_path}/night.1.jsonl")  # the first try's
    store.set("wfdlq_redrive", {"version": 0})  # a checkpoint was written: a retry
    operator = ResumeDLQOperator(
        task_id="retried", filters={"from_date": "2020-01-01"}, report_path=f"file://{report}"
    )
    context: Any = {"task_state_store": store}
    result = operator.execute(context)
    assert result["report_path"] == f"file://{tmp_path}/night.1.jsonl"
    assert report.read_text() == ""

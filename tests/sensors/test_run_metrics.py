"""The followed outcome's counts reach Airflow ``Stats``."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_wfdlq._compat import Stats
from airflow_provider_wfdlq.sensors.runs import WorkflowRunSensor


def test_outcome_counts_are_stats_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int, Any]] = []
    monkeypatch.setattr(
        Stats, "incr", lambda name, count=1, tags=None, **_: seen.append((name, count, tags))
    )
    sensor = WorkflowRunSensor(task_id="follow", runs=["wfr_a@1"])

    sensor._count_outcome({"recovered": 7, "failed_again": 2, "still_running": 0})

    tags = {"dag_id": sensor.dag_id, "task_id": "follow"}
    assert seen == [("wfdlq.runs.recovered", 7, tags), ("wfdlq.runs.failed_again", 2, tags)]

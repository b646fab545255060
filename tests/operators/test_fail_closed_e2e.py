"""Templated limits fail closed through Airflow (``dag.test()``): a limit whose template
renders null, "" or nothing fails its task before any request and is not retried.

One ``dag.test()`` run per way of giving nothing; each run's four tasks each take one
limit from the run's conf (``tests/dags/wfdlq_fail_closed_dags.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.dagrun import HAS_TASK_STATE_STORE, run_dag
from tests.dags.wfdlq_fail_closed_dags import FIELDS, LIMITS
from tests.operators.test_resume_dlq_e2e import load_dag

pytestmark = pytest.mark.airflow

#: What an API user's conf gives for every limit.
NOTHING: dict[str, dict[str, Any]] = {
    "null": dict.fromkeys(LIMITS, None),
    "empty": dict.fromkeys(LIMITS, ""),
    "missing": {},
}


@pytest.mark.parametrize("given", sorted(NOTHING))
def test_a_limit_rendered_from_nothing_fails_before_any_request(
    given: str, airflow_db: Path, wfdlq_devserver: Any, wfdlq_connection: str, tmp_path: Path
) -> None:
    server = wfdlq_devserver
    assert server.control.entries(), "the seeded DLQ must hold entries the tasks could act on"
    server.control.clear_requests()
    failures = tmp_path / "failures.jsonl"
    conf: dict[str, Any] = {**NOTHING[given], "failures": str(failures)}

    outcome = run_dag(load_dag("wfdlq_limits_from_conf"), conf=conf)

    assert outcome.state == "failed"
    assert outcome.task_states == dict.fromkeys(LIMITS, "failed")
    # Nothing reached the dev server: no list call, no action.
    requests = server.control.requests()
    assert not [r for r in requests if r["path"].startswith("/v2/")], requests
    assert server.control.actions() == []
    if not HAS_TASK_STATE_STORE:
        # Airflow 3.1/3.2: a missing key already fails Jinja's rendering (UndefinedError,
        # retried like any error), and failure callbacks get no exception to record. What
        # matters held above: every limit failed closed, before any request.
        return
    # Each task failed once (bad input is not retried), with an error naming its field.
    lines = [json.loads(line) for line in failures.read_text().splitlines()]
    by_task = {line["task_id"]: line for line in lines}
    assert sorted(by_task) == sorted(LIMITS)
    assert len(lines) == len(LIMITS), lines
    for task_id, line in by_task.items():
        assert outcome.tries[task_id] == 1, line
        assert line["type"] == "AirflowFailException", line
        assert FIELDS[task_id] in line["message"], line

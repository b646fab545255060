"""A DAG whose limits all come from the run's conf, for the fail-closed tests.

Each task takes one limit from ``dag_run.conf`` (``max_resumes``, ``select``,
``safety.canary``, ``safety.breaker_max_failure_ratio``). A run whose conf gives null, ""
or nothing for them must fail every task before a single request, without retrying:
a missing value never switches a limit off. Each failure is written as one JSON line to
``dag_run.conf['failures']``, so the test can read what failed and why.
"""

from __future__ import annotations

import json
from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_provider_wfdlq.operators.dlq import ResumeDLQOperator

WINDOW = {"from_date": "2020-01-01T00:00:00Z"}


def conf(name: str) -> str:
    """``dag_run.conf['name']``: None for null, "" for "", Jinja's Undefined when missing."""
    return "{{ dag_run.conf['" + name + "'] }}"


def record_failure(context: Any) -> None:
    exception = context.get("exception")
    line = {
        "task_id": context["ti"].task_id,
        "try_number": context["ti"].try_number,
        "type": type(exception).__name__,
        "message": str(exception),
    }
    with open(context["dag_run"].conf["failures"], "a") as out:
        out.write(json.dumps(line) + "\n")


#: Task id -> the operator argument whose template renders to nothing.
LIMITS: dict[str, dict[str, Any]] = {
    "max_resumes": {"max_resumes": conf("max_resumes")},
    "select": {"select": conf("select")},
    "canary": {"safety": {"canary": conf("canary")}},
    "breaker": {"safety": {"breaker_max_failure_ratio": conf("breaker")}},
}
#: The field each task's error must name.
FIELDS = {
    "max_resumes": "max_resumes",
    "select": "select",
    "canary": "safety.canary",
    "breaker": "safety.breaker_max_failure_ratio",
}

with DAG(
    dag_id="wfdlq_limits_from_conf",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    render_template_as_native_obj=True,
):
    for task_id, limit in LIMITS.items():
        ResumeDLQOperator(
            task_id=task_id,
            filters=WINDOW,  # with its limit, each task would act on the whole seeded DLQ
            on_failure_callback=record_failure,
            retries=1,  # a missing limit is bad input: failed at once, never retried
            retry_delay=pendulum.duration(seconds=0),
            **limit,
        )

"""One DAG whose tasks each exercise a recovery policy through Airflow (``dag.test()``).

Each task selects its own workflow URL, so one run covers them all: the default skip of
489s, a canary over a workflow whose resumed runs all fail (and the pause of its key),
the audit label appended to each run's labels, the circuit breaker, retention awareness
and client-side pacing. Safety settings go in ``safety={...}``, call sizes and pacing in
``pacing={...}``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_wfdlq.operators.dlq import ResumeDLQOperator

BASE = "https://policies.example.com/api/"
URLS = {
    name: BASE + name
    for name in (
        "mixed-489",
        "broken",
        "labelled",
        "flaky",
        "ageing",
        "paced",
    )
}
WINDOW = {"from_date": "2020-01-01T00:00:00Z"}
CANARY_KEY = "airflow-canary-{{ ds_nodash }}"

with DAG(
    dag_id="wfdlq_policies",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    ResumeDLQOperator(
        task_id="skips_489_by_default",
        filters={**WINDOW, "workflow_url": URLS["mixed-489"]},
    )
    ResumeDLQOperator(
        task_id="canary_trips",
        filters={**WINDOW, "workflow_url": URLS["broken"]},
        overrides={"flow_control_key": CANARY_KEY, "flow_control": "parallelism=2"},
        safety={
            "canary": 3,
            "canary_min_success_ratio": 0.9,
            "canary_timeout": 60,
            "poll_interval": 0.2,
            "pause_on_trip": True,
        },
        retries=2,  # a tripped canary fails at once anyway: retrying would feed the bug
    )
    ResumeDLQOperator(
        task_id="labels_appended",
        filters={**WINDOW, "workflow_url": URLS["labelled"]},
        overrides={"label": "redrive"},
        audit_label=True,
    )
    ResumeDLQOperator(
        task_id="breaker_trips",
        filters={**WINDOW, "workflow_url": URLS["flaky"]},
        # Batches of 2 at 10 requests a second: slower than the runs, so some finish
        # mid-walk and the breaker sees them between batches.
        pacing={"batch_size": 2, "requests_per_second": 10},
        safety={
            "breaker_max_failure_ratio": 0.5,
            "breaker_min_finished": 3,
            "pause_on_trip": True,  # no key in the overrides: the default key per DAG run
        },
    )
    ResumeDLQOperator(
        task_id="retention_reported",
        filters={**WINDOW, "workflow_url": URLS["ageing"]},
        retention="3d",
    )
    ResumeDLQOperator(
        task_id="paced",
        filters={**WINDOW, "workflow_url": URLS["paced"]},
        pacing={"page_size": 2, "batch_size": 2, "requests_per_second": 20},
    )

with DAG(
    dag_id="wfdlq_killed_mid_walk",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
) as killed_dag:
    ResumeDLQOperator(
        task_id="killed",
        filters=WINDOW,
        overrides={"flow_control_key": "airflow-redrive-killed"},
        pacing={"batch_size": 10},
        report_path="{{ dag_run.conf['report_path'] }}",
        safety={"pause_on_kill": True},
    )

"""
### Nightly recovery over several Upstash accounts or regions

One connection per account or region (`qstash_eu`, `qstash_us`, ...: each its own token
and host); one mapped task per connection, so each account is resumed, followed and
reported on its own workers, and one account's outage or tripped breaker does not hold up
the others.

- **resume** resumes the night's entries of that account. Each mapped instance
  has its own ledger, its own report file (`<date>.<map_index>.jsonl`) and its own default
  flow-control key (`...-<map_index>`); keys are per account anyway.
- **follow** follows that account's runs through the same connection.
- **morning_report** sums every account and lists each one (in the order of
  `CONNECTIONS`): the mapped results of both tasks, one summary.

Add an account by adding its connection id to `CONNECTIONS`.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_wfdlq.operators.dlq import ResumeDLQOperator
from airflow_provider_wfdlq.operators.report import DLQRecoveryReportOperator
from airflow_provider_wfdlq.sensors.runs import WorkflowRunSensor

try:
    from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable
except ImportError:  # Airflow 3.1 keeps it in core
    from airflow.timetables.interval import (  # type: ignore[assignment,no-redef]
        CronDataIntervalTimetable,
    )

#: One ``qstash`` connection per account or region.
CONNECTIONS = ["qstash_eu", "qstash_us"]
REPORT = "file://{{ params.report_dir }}/{{ dag.dag_id }}/{{ data_interval_start | ds }}.jsonl"
WINDOW = {"from_date": "{{ data_interval_start }}", "to_date": "{{ data_interval_end }}"}


def follow_kwargs(pair: Any) -> dict[str, Any]:
    """(an account's resume result, its connection id) -> the follow task's arguments."""
    result, conn_id = pair
    return {"runs": result, "qstash_conn_id": conn_id}


with DAG(
    dag_id="fan_out_over_accounts",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    params={"report_dir": "/tmp/wfdlq-reports"},
    tags=["upstash", "dlq", "recovery", "fan-out"],
) as dag:

    @task
    def connections() -> list[str]:
        return CONNECTIONS

    accounts = connections()
    # ``qstash_conn_id`` is not templated: it is mapped with .expand(), not passed through a
    # mapped task group's argument (only templated fields resolve those).
    resume = ResumeDLQOperator.partial(
        task_id="resume",
        filters=WINDOW,
        overrides={"retries": 3, "flow_control": "parallelism=5, rate=20, period=1m"},
        audit_label=True,
        max_resumes=5000,
        report_path=REPORT,  # each account writes <date>.<map_index>.jsonl
        retries=2,
        retry_delay=pendulum.duration(minutes=5),
    ).expand(qstash_conn_id=accounts)
    # Each account's runs, followed through that account's connection.
    follow = WorkflowRunSensor.partial(
        task_id="follow",
        on_timeout="report",
        deferrable=True,
        poke_interval=60,
        timeout=4 * 60 * 60,
    ).expand_kwargs(resume.output.zip(accounts).map(follow_kwargs))

    morning_report = DLQRecoveryReportOperator(
        task_id="morning_report",
        resume="{{ ti.xcom_pull(task_ids='resume') }}",
        # One outcome per account: the report splits recovered / failed again per account.
        follow="{{ ti.xcom_pull(task_ids='follow', key='outcome') }}",
        title="Morning report: {{ dag.dag_id }}, night of {{ data_interval_start | ds }}",
        trigger_rule="all_done",
    )
    follow >> morning_report

"""
### Nightly recovery fanned out over partitions

When one worker is not enough for a night's DLQ (hours of paced resumes, or a canary and a
breaker that should judge each workflow on its own), split the night into disjoint
partitions and let Airflow's executor run one mapped task per partition, on any workers.

1. **preview** lists the night's entries (a dry run: nothing is resumed).
2. **plan** turns the preview into at most 8 disjoint `filters` mappings with
   `plan_partitions`: by exact `workflow_url` (the URLs spread by entry count), or, when the
   preview cannot name every URL (more than 50), by equal time slices of the window
   (`[from, s1 - 1], [s1, s2 - 1], ...`: the API's dates are inclusive, so no millisecond
   is in two slices). No entry can be in two partitions.
3. **resume** is `ResumeDLQOperator.partial(...).expand(filters=...)`: one mapped task per
   partition. Each has its own ledger (its task state), its own report file (`night.jsonl`
   becomes `night.<map_index>.jsonl`) and its own default flow-control key
   (`airflow-redrive-<dag>-<run>-<map_index>`), so a tripped breaker pauses only its own
   partition. A retried partition never sends an entry it sent before.
4. **follow** follows every partition's runs in one sensor, and splits the outcome per
   partition (`partitions` in its result).
5. **morning_report** sums the partitions and lists each one, in one summary next to the
   reports (`night.summary.json`).

`max_active_tis_per_dagrun` caps how many partitions run at once; the connection's rate
limit is shared by all of them, so `pacing` is per partition (here 5 calls a second each).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_wfdlq.client import ValidationError
from airflow_provider_wfdlq.operators.dlq import ResumeDLQOperator
from airflow_provider_wfdlq.operators.report import DLQRecoveryReportOperator
from airflow_provider_wfdlq.recovery.partitions import plan_partitions
from airflow_provider_wfdlq.sensors.runs import WorkflowRunSensor

try:
    from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable
except ImportError:  # Airflow 3.1 keeps it in core
    from airflow.timetables.interval import (  # type: ignore[assignment,no-redef]
        CronDataIntervalTimetable,
    )

REPORT = "file://{{ params.report_dir }}/{{ dag.dag_id }}/{{ data_interval_start | ds }}.jsonl"
WINDOW = {"from_date": "{{ data_interval_start }}", "to_date": "{{ data_interval_end }}"}


@task
def plan(preview: Any, **context: Any) -> list[dict[str, Any]]:
    """Disjoint partitions of the night: by workflow URL if the preview names them all."""
    window = (context["data_interval_start"], context["data_interval_end"])
    try:
        return plan_partitions(preview, by="workflow_url", max_partitions=8, window=window)
    except ValidationError:
        return plan_partitions(preview, by="time", max_partitions=8, window=window)


with DAG(
    dag_id="fan_out_over_partitions",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    params={"report_dir": "/tmp/wfdlq-reports"},
    tags=["upstash", "dlq", "recovery", "fan-out"],
) as dag:
    preview = ResumeDLQOperator(task_id="preview", filters=WINDOW, dry_run=True)

    resume = ResumeDLQOperator.partial(
        task_id="resume",
        overrides={"retries": 3, "flow_control": "parallelism=5, rate=20, period=1m"},
        safety={"breaker_max_failure_ratio": 0.5, "pause_on_trip": True},
        pacing={"requests_per_second": 5},
        audit_label=True,
        max_resumes=5000,  # per partition
        report_path=REPORT,  # each partition writes <date>.<map_index>.jsonl
        retries=2,
        retry_delay=pendulum.duration(minutes=5),
        max_active_tis_per_dagrun=4,
    ).expand(filters=plan(preview.output))

    follow = WorkflowRunSensor(
        task_id="follow",
        runs=resume.output,  # every partition's results
        min_success_ratio=0.5,
        on_timeout="report",
        deferrable=True,
        poke_interval=60,
        timeout=4 * 60 * 60,
    )

    morning_report = DLQRecoveryReportOperator(
        task_id="morning_report",
        preview=preview.output,
        resume=resume.output,
        follow="{{ ti.xcom_pull(task_ids='follow', key='outcome') }}",
        title="Morning report: {{ dag.dag_id }}, night of {{ data_interval_start | ds }}",
        trigger_rule="all_done",
    )

    follow >> morning_report

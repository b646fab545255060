"""A recovery fanned out over partitions: preview, plan, ``.expand()``, follow, report.

The window (``[from_ms, to_ms]``) and the report path come from the run's conf.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_wfdlq.operators.dlq import ResumeDLQOperator
from airflow_provider_wfdlq.operators.report import DLQRecoveryReportOperator
from airflow_provider_wfdlq.recovery.partitions import plan_partitions
from airflow_provider_wfdlq.sensors.runs import WorkflowRunSensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")
WINDOW = {
    "from_date": "{{ dag_run.conf['window'][0] }}",
    "to_date": "{{ dag_run.conf['window'][1] }}",
}


@task
def plan(preview: Any, **context: Any) -> list[dict[str, Any]]:
    conf = context["dag_run"].conf
    return plan_partitions(
        preview, by=conf.get("by", "time"), max_partitions=4, window=conf["window"]
    )


with DAG(
    dag_id="wfdlq_fan_out",
    schedule=None,
    start_date=START,
    render_template_as_native_obj=True,
):
    preview = ResumeDLQOperator(task_id="preview", filters=WINDOW, dry_run=True)
    resume = ResumeDLQOperator.partial(
        task_id="resume",
        # The same path for every partition: each mapped task writes <stem>.<map_index>.jsonl.
        report_path="{{ dag_run.conf['report_path'] }}",
        # A flow control and no key: each mapped task gets the default key plus -<map_index>.
        overrides={"flow_control": "parallelism=5, rate=100, period=1m"},
        pacing={"batch_size": 5},
        retries=4,
        retry_delay=pendulum.duration(seconds=0),
    ).expand(filters=plan(preview.output))
    follow = WorkflowRunSensor(
        task_id="follow", runs=resume.output, poke_interval=0.2, timeout=60, deferrable=False
    )
    report = DLQRecoveryReportOperator(
        task_id="report",
        preview=preview.output,
        resume=resume.output,
        follow="{{ ti.xcom_pull(task_ids='follow', key='outcome') }}",
        trigger_rule="all_done",
    )
    follow >> report
    # The same, from templates (text when not rendered as native objects).
    report_text = DLQRecoveryReportOperator(
        task_id="report_text",
        resume="{{ ti.xcom_pull(task_ids='resume') | string }}",
        fail_on_problems=False,
        report_path="{{ dag_run.conf['report_path'] | replace('.jsonl', '-text.jsonl') }}",
        trigger_rule="all_done",
    )
    resume >> report_text

"""DAGs for the run-follow tests: resume real entries, follow the new runs, report.

One ``dag.test()`` run covers many cases: ``resume`` resumes the entries labelled
``mixed`` (their runs finish after the dev server's ``run_seconds``, some failing again),
``resume_held`` resumes those labelled ``held`` under a flow-control key the test pauses
(their runs never finish). Each sensor follows one of them in a different mode or policy.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_provider_wfdlq.operators.dlq import ResumeDLQOperator
from airflow_provider_wfdlq.operators.report import DLQRecoveryReportOperator
from airflow_provider_wfdlq.sensors.runs import WorkflowRunSensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")
HELD_KEY = "wfdlq-test-held"


def sensor(task_id: str, **kwargs: Any) -> WorkflowRunSensor:
    kwargs.setdefault("poke_interval", 0.2)
    kwargs.setdefault("timeout", 60)
    kwargs.setdefault("deferrable", False)
    return WorkflowRunSensor(task_id=task_id, **kwargs)


with DAG(
    dag_id="wfdlq_run_follow",
    schedule=None,
    start_date=START,
    render_template_as_native_obj=True,
) as follow_dag:
    resume = ResumeDLQOperator(task_id="resume", filters={"label": "mixed"})
    resume_held = ResumeDLQOperator(
        task_id="resume_held",
        filters={"label": "held"},
        overrides={"flow_control_key": HELD_KEY},
    )
    # The operator's result as it is: an XComArg, and a rendered template.
    follow_poke = sensor("follow_poke", runs=resume.output)
    resume >> sensor(
        "follow_reschedule",
        runs="{{ ti.xcom_pull(task_ids='resume')['runs'] }}",
        mode="reschedule",
        poke_interval=1,
    )
    follow_ratio = sensor(
        "follow_ratio",
        runs="{{ ti.xcom_pull(task_ids='resume') }}",
        min_success_ratio="{{ dag_run.conf.get('min_success_ratio', 0.95) }}",
        deferrable=True,
    )
    resume >> follow_ratio
    sensor("held_times_out", runs=resume_held.output, timeout=2, on_timeout="fail")
    sensor(
        "held_reported",
        runs=resume_held.output,
        timeout=2,
        on_timeout="report",
        deferrable=True,
    )
    report = DLQRecoveryReportOperator(
        task_id="report",
        resume="{{ ti.xcom_pull(task_ids='resume') }}",
        follow="{{ ti.xcom_pull(task_ids='follow_ratio', key='outcome') }}",
        report_path="{{ dag_run.conf['report_path'] }}",
        trigger_rule="all_done",
    )
    follow_ratio >> report
    sensor("bad_input", runs="wfr_no-created-at", soft_fail=True)

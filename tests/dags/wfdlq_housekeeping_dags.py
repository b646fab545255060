"""The housekeeping operators through ``dag.test()``: each action with its dry run, a cap,
and refusals (the whole DLQ, a cap that renders to nothing, a callback in another state)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_wfdlq.operators.housekeeping import (
    CancelFailureCallbackOperator,
    DeleteDLQOperator,
    RetryFailureCallbackOperator,
)

CLEANUP_URL = "https://house.example.com/api/workflow/cleanup"
CALLBACK_URL = "https://house.example.com/api/workflow/refund"
REPORTS = "file://{{ dag_run.conf['report_dir'] }}"

with DAG(
    dag_id="wfdlq_housekeeping",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    render_template_as_native_obj=True,
):
    only_489 = {"statuses": [489]}
    preview_delete = DeleteDLQOperator(
        task_id="preview_delete",
        filters={"workflow_url": CLEANUP_URL},
        select=only_489,
        dry_run=True,
        report_path=f"{REPORTS}/preview_delete.jsonl",
    )
    delete = DeleteDLQOperator(
        task_id="delete",
        filters={"workflow_url": CLEANUP_URL},
        select=only_489,
        max_deletes="{{ dag_run.conf.get('max_deletes', 3) }}",
        report_path=f"{REPORTS}/delete.jsonl",
    )
    preview_delete >> delete
    DeleteDLQOperator(task_id="refuses_the_whole_dlq", select=only_489)
    DeleteDLQOperator(
        task_id="refuses_a_cap_that_renders_to_nothing",
        filters={"workflow_url": CLEANUP_URL},
        max_deletes="{{ dag_run.conf.get('no_such_key') }}",
    )

    preview_callbacks = RetryFailureCallbackOperator(
        task_id="preview_callbacks",
        filters={"workflow_url": CALLBACK_URL},
        dry_run=True,
    )
    retry_callbacks = RetryFailureCallbackOperator(
        task_id="retry_callbacks",
        filters={"workflow_url": CALLBACK_URL},
        max_callbacks=10,
        pacing={"concurrency": 1},
    )
    cancel_callbacks = CancelFailureCallbackOperator(
        task_id="cancel_callbacks",
        filters={"workflow_url": CALLBACK_URL},
        max_callbacks=2,
    )
    preview_callbacks >> retry_callbacks >> cancel_callbacks

"""
### Nightly recovery of failed Upstash Workflow runs

Every night this DAG takes the workflow runs that failed during the data interval out of
the workflow dead-letter queue and resumes them from the step that failed.

1. **preview** lists what would be resumed (a dry run): a table of the entries and counts
   per workflow URL and response status in the task log. Nothing is resumed.
2. **callbacks_final** waits until the failure callbacks (failure functions) of the same
   entries are final: resuming a run while its failure function still runs races with it.
   It waits in the triggerer (`deferrable=True`), so hours of waiting hold no worker slot,
   and fails after two hours rather than skipping: tomorrow's window will not cover
   tonight's entries.
3. **resume** lists exactly the data interval's entries first (no side effects), then
   resumes the selected ones oldest first, by `dlqIds` in batches of up to 50, with:
   - `retries: 3`: a resumed run gets a few more tries than a first run might;
   - a flow-control key per night (`airflow-redrive-<date>`) with `parallelism=5,
     rate=20, period=1m`, so a large backlog drains without starving live traffic, and
     the whole redrive can be paused in Upstash under one key;
   - `max_resumes: 5000` so a night that went badly wrong does not redrive without bound:
     the 5000 oldest are resumed, the rest are left in the DLQ and counted
     (`left_max_resumes`);
   - task `retries: 2`: every id sent is written to a ledger in the task's durable state
     first, so a retried task lists again and never sends an entry twice;
   - safe-recovery policies (`safety={...}`): entries that answered 489 ("do not retry")
     are skipped; a **canary** of 20 runs is resumed first and must reach 75% success
     within 30 minutes; a **circuit breaker** stops the walk when more than half of the
     finished runs failed again; a trip (or killing the task) **pauses** the night's
     flow-control key and fails the task without retrying; each new run gets the label
     `airflow:<dag_id>:<run_id>` appended to its own labels; API calls are paced at 10 per
     second (`pacing={...}`); with the connection's `retention` extra, entries left behind
     that would expire before the next night are named in the result;
   - a JSON-lines report per night under `params.report_dir`, one line per entry.
4. **follow** follows the resumed runs to their outcome (`WorkflowRunSensor`, deferrable):
   one run-logs request per 100 runs still running, every minute, for up to 4 hours.
   It fails the night when fewer than half of the runs recover (`min_success_ratio=0.5`:
   something systematic is wrong, a human should look); runs still running after 4 hours
   are reported, not failed (`on_timeout="report"`): the flow control paces big nights.
5. **morning_report** writes one summary: found, resumed, recovered, failed again (with
   the NEW dlqIds those runs are in the DLQ as), still running, skipped by reason. It goes
   to the task log and next to the JSON-lines report (`<date>.summary.json`). It runs even
   when `follow` failed (`trigger_rule="all_done"`), then fails too, so the DAG run shows
   that the night's recovery did not succeed.
6. **housekeeping** (optional, off by default: trigger with `{"housekeeping": true}` or set
   the `housekeeping` param): after the resume,
   - **retry_callbacks** calls the failure callbacks (failure functions) of the night's
     entries again where they failed (`CALLBACK_FAIL`; the others are skipped and counted),
     so the refunds and alerts they do happen after all;
   - **delete_old_489s** deletes 489 "do not retry" entries older than
     `params.delete_after_days` days (at most 1000 a night). Those were in earlier nights'
     reports (skipped as non-retryable); each one is also written in full (body, headers,
     response) to `<date>.deleted.jsonl` before the delete call, so it can still be read,
     and replayed by hand.
   The morning report then also counts what was deleted and which callbacks were retried.

The window is the data interval: the day before the run, inclusive at both ends as the API
compares dates (an entry stamped exactly at midnight is resumed the first night and is gone
by the second). The schedule is a `CronDataIntervalTimetable` on purpose: in Airflow 3 a
plain `"@daily"` has zero-length data intervals, which would select nothing.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import DAG, Param

from airflow_provider_wfdlq.operators.dlq import ResumeDLQOperator
from airflow_provider_wfdlq.operators.housekeeping import (
    DeleteDLQOperator,
    RetryFailureCallbackOperator,
)
from airflow_provider_wfdlq.operators.report import DLQRecoveryReportOperator
from airflow_provider_wfdlq.sensors.dlq import DLQFailureCallbackSensor
from airflow_provider_wfdlq.sensors.runs import WorkflowRunSensor

try:
    from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable
except ImportError:  # Airflow 3.1 keeps it in core
    from airflow.timetables.interval import (  # type: ignore[assignment,no-redef]
        CronDataIntervalTimetable,
    )

REPORT = "file://{{ params.report_dir }}/{{ dag.dag_id }}/{{ data_interval_start | ds }}.jsonl"
WINDOW = {"from_date": "{{ data_interval_start }}", "to_date": "{{ data_interval_end }}"}

with DAG(
    dag_id="nightly_dlq_recovery",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    params={
        "report_dir": "/tmp/wfdlq-reports",
        # The housekeeping branch (retry failed callbacks, delete old 489s): off by default.
        "housekeeping": Param(False, type="boolean"),
        "delete_after_days": Param(14, type="integer", minimum=1),
    },
    tags=["upstash", "dlq", "recovery"],
) as dag:
    preview = ResumeDLQOperator(task_id="preview", filters=WINDOW, dry_run=True)

    resume = ResumeDLQOperator(
        task_id="resume",
        filters=WINDOW,
        overrides={
            "retries": 3,
            "flow_control_key": "airflow-redrive-{{ data_interval_start | ds }}",
            "flow_control": "parallelism=5, rate=20, period=1m",
        },
        # Safe recovery (README "Safe recovery"): 489 "do not retry" entries are skipped by
        # default; a canary of 20 must mostly recover before the rest goes; the breaker
        # stops the walk if half of what finished failed again; either one, or killing the
        # task, pauses the night's flow-control key; every new run is labelled with this
        # DAG run; API calls are paced; the connection's `retention` extra names what would
        # expire before tomorrow.
        safety={
            "canary": 20,
            "canary_min_success_ratio": 0.75,
            "canary_timeout": 30 * 60,
            "poll_interval": 10,
            "breaker_max_failure_ratio": 0.5,
            "breaker_min_finished": 50,
            "pause_on_trip": True,
            "pause_on_kill": True,
        },
        pacing={"requests_per_second": 10},
        audit_label=True,
        max_resumes=5000,
        report_path=REPORT,
        retries=2,
        retry_delay=pendulum.duration(minutes=5),
    )

    callbacks_final = DLQFailureCallbackSensor(
        task_id="callbacks_final",
        filters=WINDOW,  # exactly the entries `resume` will touch
        deferrable=True,
        poke_interval=60,
        timeout=2 * 60 * 60,
    )

    follow = WorkflowRunSensor(
        task_id="follow",
        runs=resume.output,  # the resume's result as it is: its "runs" are followed
        min_success_ratio=0.5,
        on_timeout="report",
        deferrable=True,
        poke_interval=60,
        timeout=4 * 60 * 60,
    )

    morning_report = DLQRecoveryReportOperator(
        task_id="morning_report",
        preview="{{ ti.xcom_pull(task_ids='preview') }}",
        resume="{{ ti.xcom_pull(task_ids='resume') }}",
        follow="{{ ti.xcom_pull(task_ids='follow', key='outcome') }}",  # pushed even on failure
        title="Morning report: {{ dag.dag_id }}, night of {{ data_interval_start | ds }}",
        # What housekeeping did, when it is on (a list of the two results).
        housekeeping="{{ ti.xcom_pull(task_ids=['retry_callbacks', 'delete_old_489s']) "
        "if params.housekeeping else None }}",
        trigger_rule="all_done",
    )

    preview >> callbacks_final >> resume >> follow >> morning_report

    # Housekeeping, off unless the param (or the run's conf) turns it on. Skipping it leaves
    # the morning report alone (ignore_downstream_trigger_rules=False: "all_done" runs).
    housekeeping = ShortCircuitOperator(
        task_id="housekeeping",
        # The param itself (a real bool), not its rendered text ("False" is a true string).
        python_callable=lambda params: params["housekeeping"] is True,
        ignore_downstream_trigger_rules=False,
    )
    retry_callbacks = RetryFailureCallbackOperator(
        task_id="retry_callbacks",
        filters={**WINDOW, "failure_function_state": "CALLBACK_FAIL"},
        report_path=REPORT.replace(".jsonl", ".callbacks.jsonl"),
    )
    delete_old_489s = DeleteDLQOperator(
        task_id="delete_old_489s",
        filters={
            "to_date": "{{ data_interval_start - macros.timedelta(days=params.delete_after_days) }}"
        },
        select={"statuses": [489]},
        max_deletes=1000,
        report_path=REPORT.replace(".jsonl", ".deleted.jsonl"),
    )
    resume >> housekeeping >> [retry_callbacks, delete_old_489s] >> morning_report

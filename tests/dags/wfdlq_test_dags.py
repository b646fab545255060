"""DAGs the end-to-end tests run through ``dag.test()``; every argument comes from the run's conf.

``render_template_as_native_obj`` lets a whole mapping come from one template, so one DAG
serves every filter, override, pacing and safety test. A templated argument that renders to
nothing fails the task (it never switches a limit off), so every template here has a real
default, and ``report_path`` is templated only where the test always gives one.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_provider_wfdlq._compat import CronDataIntervalTimetable
from airflow_provider_wfdlq.hooks.dlq import WorkflowDLQHook
from airflow_provider_wfdlq.operators.dlq import ResumeDLQOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")


def conf(name: str, default: str) -> str:
    return "{{ dag_run.conf.get('" + name + "', " + default + ") }}"


#: "No cap" as a template: a template rendering None would fail the task (fail closed).
NO_CAP = "1000000"


def _redrive(
    task_id: str, operator: type[ResumeDLQOperator] = ResumeDLQOperator, **kwargs: Any
) -> Any:
    arguments: dict[str, Any] = {
        "filters": conf("filters", "{}"),
        "overrides": conf("overrides", "{}"),
        "action": conf("action", "'resume'"),
        "resume_all": conf("resume_all", "False"),
        "max_resumes": conf("max_resumes", NO_CAP),
        "dry_run": conf("dry_run", "False"),
        "pacing": conf("pacing", "{}"),
        "safety": conf("safety", "{}"),
        **kwargs,
    }
    return operator(task_id=task_id, **arguments)


with DAG(
    dag_id="wfdlq_redrive_from_conf",
    schedule=None,
    start_date=START,
    render_template_as_native_obj=True,
):
    _redrive("redrive")


class _DyingClient:
    """Passes calls through; the Nth bulk call reaches the server, then the 'worker' dies."""

    def __init__(self, client: Any, die_on_call: int) -> None:
        self._client = client
        self._die_on_call = die_on_call
        self._calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def resume_bulk(self, *args: Any, **kwargs: Any) -> Any:
        self._calls += 1
        result = self._client.resume_bulk(*args, **kwargs)
        if self._calls == self._die_on_call:
            raise RuntimeError("worker died after the server resumed, before the answer was kept")
        return result


class DiesOnFirstTry(ResumeDLQOperator):
    """Its first try dies mid-walk with a bulk answer lost; the retry must finish the job."""

    def execute(self, context: Any) -> Any:
        if context["ti"].try_number == 1:
            hook = WorkflowDLQHook(self.qstash_conn_id)
            hook.__dict__["client"] = _DyingClient(hook.client, die_on_call=3)
            self.__dict__["hook"] = hook
        return super().execute(context)


with DAG(
    dag_id="wfdlq_redrive_dies_once",
    schedule=None,
    start_date=START,
    render_template_as_native_obj=True,
):
    _redrive(
        "redrive",
        DiesOnFirstTry,
        report_path="{{ dag_run.conf['report_path'] }}",
        retries=1,
        retry_delay=pendulum.duration(seconds=0),
    )


with DAG(
    dag_id="wfdlq_templated_everything",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START,
    catchup=False,
    params={
        "url": "https://shop.example.com/api/workflow/checkout",
        "run_id": "wfr_TemplatedRunId0000001",
        "created_at": 1764547200000,
        "callback": "https://shop.example.com/api/workflow/failure",
    },
):
    ResumeDLQOperator(
        task_id="resume_every_filter",
        filters={
            "from_date": "{{ data_interval_start }}",
            "to_date": "{{ data_interval_end }}",
            "workflow_url": ["{{ params.url }}"],
            "workflow_run_id": "{{ params.run_id }}",
            "workflow_created_at": "{{ params.created_at }}",
            "label": ["tenant-{{ 'acme' }}", "nightly"],
            "failure_function_state": ["CALLBACK_SUCCESS", "CALLBACK_FAIL"],
            "caller_ip": "198.51.100.7",
            "flow_control_key": "{{ 'checkout' }}-api",
        },
        overrides={
            "retries": "{{ 2 + 1 }}",
            "delay": "5m",
            "retry_delay": "1000 * pow(2, retried)",
            "flow_control_key": "airflow-redrive-{{ ds }}",
            "flow_control": {"parallelism": "{{ 4 }}", "rate": 10, "period": "1m"},
            "label": "redrive-{{ ds_nodash }}",
            "failure_callback": "{{ params.callback }}",
        },
        pacing={"page_size": "{{ 25 }}"},
    )
    ResumeDLQOperator(task_id="refuses_the_whole_dlq")
    ResumeDLQOperator(
        task_id="refuses_a_bad_delay",
        filters={"label": "nightly"},
        overrides={"delay": "{{ '10x' }}"},
    )
    ResumeDLQOperator(
        task_id="dry_run_resumes_nothing",
        filters={"label": "nightly"},
        dry_run="{{ True }}",
    )


#: The hostile-reading DAG's workflows, one per task.
HOSTILE_URLS = {
    "bulk": "https://hostile.example.com/api/workflow/bulk",
    "exact": "https://hostile.example.com/api/workflow/exact",
}

with DAG(
    dag_id="wfdlq_redrive_hostile",
    schedule=None,
    start_date=START,
    render_template_as_native_obj=True,
):
    # Bulk calls of up to 50 ids; the first try dies mid-walk after the server acted on a
    # call, and the retry must never send an id the first try sent.
    bulk = DiesOnFirstTry(
        task_id="bulk",
        filters={"from_date": "2020-01-01T00:00:00Z", "workflow_url": HOSTILE_URLS["bulk"]},
        # Before Airflow 3.3 (no task_state_store) the ledger lives next to the report.
        report_path="file://{{ dag_run.conf['report_dir'] }}/bulk.jsonl",
        retries=1,
        retry_delay=pendulum.duration(seconds=0),
    )
    # One id per call: every dlqId -> run pair is a fact.
    exact = ResumeDLQOperator(
        task_id="exact",
        filters={"from_date": "2020-01-01T00:00:00Z", "workflow_url": HOSTILE_URLS["exact"]},
        pacing={"exact_pairing": True, "concurrency": 4},
        retries=1,
        retry_delay=pendulum.duration(seconds=0),
        trigger_rule="all_done",
    )
    bulk >> exact

"""DAGs for the failure-callback sensor tests; every id and filter comes from the run's conf.

Several sensors share one DAG so one ``dag.test()`` run covers many cases: the tasks are
independent, and the test reads each task's state and XCom.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_wfdlq.sensors.dlq import DLQFailureCallbackSensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")


def conf(name: str, default: str = "None") -> str:
    return "{{ dag_run.conf.get('" + name + "', " + default + ") }}"


def sensor(task_id: str, **kwargs: Any) -> DLQFailureCallbackSensor:
    kwargs.setdefault("poke_interval", 0.2)
    kwargs.setdefault("timeout", 60)
    kwargs.setdefault("deferrable", False)
    return DLQFailureCallbackSensor(task_id=task_id, **kwargs)


with DAG(
    dag_id="wfdlq_sensor_modes",
    schedule=None,
    start_date=START,
    render_template_as_native_obj=True,
) as modes_dag:

    @task
    def resumed(**context: Any) -> dict[str, Any]:
        """Stands in for a ResumeDLQOperator result: the sensor reads its ``runs``."""
        ids = context["dag_run"].conf["poke_ids"]
        return {"counts": {"resumed": len(ids)}, "runs": [{"dlq_id": i} for i in ids]}

    resumed() >> sensor("poke", dlq_ids="{{ ti.xcom_pull(task_ids='resumed') }}")
    sensor("reschedule", dlq_ids=conf("reschedule_ids"), mode="reschedule", poke_interval=1)
    sensor("deferred", dlq_ids="{{ dag_run.conf['deferred_ids'] | join(',') }}", deferrable=True)
    sensor("filtered", filters=conf("filters"), deferrable=True)


with DAG(
    dag_id="wfdlq_sensor_outcomes",
    schedule=None,
    start_date=START,
    render_template_as_native_obj=True,
) as outcomes_dag:
    sensor(
        "fails_on_callback_fail",
        dlq_ids=conf("fail_ids"),
        failure_states=["CALLBACK_FAIL"],
        deferrable=True,
    )
    sensor("default_policies", dlq_ids=conf("policy_ids"))
    sensor("fails_on_vanished", dlq_ids=conf("vanished_ids"), on_vanished="fail")
    sensor("fails_on_missing_callback", dlq_ids=conf("bare_ids"), on_missing_callback="fail")
    sensor("times_out_poking", dlq_ids=conf("stuck_ids"), timeout=1)
    sensor(
        "times_out_rescheduled_soft",
        dlq_ids=conf("stuck_ids"),
        mode="reschedule",
        poke_interval=0.5,
        timeout=1,
        soft_fail=True,
    )
    sensor("times_out_deferred", dlq_ids=conf("stuck_ids"), timeout=1, deferrable=True)
    sensor(
        "times_out_deferred_soft",
        dlq_ids=conf("stuck_ids"),
        timeout=1,
        deferrable=True,
        soft_fail=True,
    )
    sensor("bad_input_fails_even_soft", dlq_ids="not-an-id", soft_fail=True)

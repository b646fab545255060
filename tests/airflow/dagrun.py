"""Run a DAG through ``dag.test()`` and read back what each task did."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pendulum
from packaging.version import Version


@dataclass
class DagRunOutcome:
    state: str
    task_states: dict[str, str | None]
    tries: dict[str, int]
    xcom: dict[str, Any]


def run_dag(
    dag: Any, conf: dict[str, Any] | None = None, logical_date: Any = None
) -> DagRunOutcome:
    """One ``dag.test()`` run (5-10 s); returns states, try numbers and return values."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    if _airflow_older_than("3.2"):
        _write_bundles_to_db(dag.dag_id)
        _validate_reschedule_start_dates()
    dr = dag.test(
        logical_date=logical_date or pendulum.now("UTC").start_of("day").subtract(days=1),
        run_conf=conf or {},
    )
    with create_session() as session:
        tis = dr.get_task_instances(session=session)
        rows: Any = session.scalars(
            XComModel.get_many(run_id=dr.run_id, dag_ids=dag.dag_id, key="return_value")
        ).all()
        xcom: dict[str, Any] = {row.task_id: XComModel.deserialize_value(row) for row in rows}
        return DagRunOutcome(
            state=str(dr.state),
            task_states={ti.task_id: None if ti.state is None else str(ti.state) for ti in tis},
            tries={ti.task_id: ti.try_number for ti in tis},
            xcom=xcom,
        )


# Airflow 3.1.0 shims for dag.test(), fixed in later 3.1.x (3.1.8 has neither problem).
# Both are test-harness gaps only: a real scheduler serializes DAGs, and a real supervisor
# validates every message it sends to the task.


def _airflow_older_than(version: str) -> bool:
    from airflow import __version__

    return Version(__version__) < Version(version)


def _write_bundles_to_db(dag_id: str) -> None:
    """Airflow 3.1.0's ``dag.test()`` refuses to create a run for a DAG that is not serialized
    in the metadata DB yet. Do what later versions do first: parse the configured bundles
    (tests/conftest.py) and write their DAGs; idempotent per DAG hash."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.models.dag_version import DagVersion
    from airflow.models.dagbag import DagBag, sync_bag_to_db  # type: ignore[attr-defined]

    manager = DagBundlesManager()  # type: ignore[no-untyped-call]
    manager.sync_bundles_to_db()
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        bag = DagBag(dag_folder=bundle.path, bundle_path=bundle.path, include_examples=False)
        sync_bag_to_db(bag, bundle.name, bundle.version)
        if DagVersion.get_version(dag_id):
            return


def _validate_reschedule_start_dates() -> None:
    """Airflow 3.1.0 builds the answer to "when did this rescheduled task first start?" with
    ``model_construct`` (no validation). The in-process supervisor of ``dag.test()`` passes
    that object straight to the task, so a sensor in reschedule mode gets a string and fails
    on ``utcnow() - start_date``. Validate the answer as later versions do."""
    from airflow.sdk.api.client import TaskInstanceOperations
    from airflow.sdk.execution_time.comms import TaskRescheduleStartDate

    original = TaskInstanceOperations.get_reschedule_start_date
    if getattr(original, "wfdlq_validated", False):
        return

    def get_reschedule_start_date(self: Any, id: Any, try_number: int = 1) -> Any:
        answer = original(self, id, try_number)
        return TaskRescheduleStartDate.model_validate({"start_date": answer.start_date})

    get_reschedule_start_date.wfdlq_validated = True  # type: ignore[attr-defined]
    TaskInstanceOperations.get_reschedule_start_date = get_reschedule_start_date  # type: ignore[method-assign]


def dagbag(folder: str) -> Any:
    """A DagBag over ``folder`` (the class moved to ``airflow.dag_processing`` in 3.2)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    return DagBag(dag_folder=folder)


def _airflow_at_least(major: int, minor: int) -> bool:
    from importlib.metadata import version

    parts = version("apache-airflow").split(".")
    return (int(parts[0]), int(parts[1])) >= (major, minor)


#: ``context["task_state_store"]`` (durable per-try state) exists from Airflow 3.3.
HAS_TASK_STATE_STORE = _airflow_at_least(3, 3)

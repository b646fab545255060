"""Run a DAG through ``dag.test()`` and read back what each task did."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pendulum


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

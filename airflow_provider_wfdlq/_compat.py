"""What moved between Airflow 3.1 and 3.3, imported once.

Airflow 3.1's task SDK (1.1) keeps the task exceptions and ``Stats`` in core only; later
releases have them in ``airflow.sdk``. Everything here works on 3.1 through the newest 3.x.
"""

from __future__ import annotations

try:
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )
except ImportError:  # pragma: no cover - Airflow 3.1
    from airflow.exceptions import (  # type: ignore[attr-defined,no-redef]
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )

try:
    from airflow.sdk.observability.stats import Stats
except ImportError:  # pragma: no cover - Airflow 3.1
    from airflow.stats import Stats  # type: ignore[no-redef]

try:
    from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable
except ImportError:  # pragma: no cover - Airflow 3.1 keeps it in core
    from airflow.timetables.interval import (  # type: ignore[assignment,no-redef]
        CronDataIntervalTimetable,
    )

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "CronDataIntervalTimetable",
    "Stats",
    "TaskDeferred",
]

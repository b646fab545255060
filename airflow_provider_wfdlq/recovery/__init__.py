"""The redrive engine: walks the DLQ page by page and resumes what it selects.

Airflow-free on purpose (the operator is thin glue around it), so it can be tested and
benchmarked over plain clients, and reused outside Airflow.
"""

from airflow_provider_wfdlq.recovery.checkpoint import CheckpointStore, MemoryCheckpoint
from airflow_provider_wfdlq.recovery.redrive import Redrive, RedrivePlan
from airflow_provider_wfdlq.recovery.report import JsonLinesSink, RedriveReport, ReportSink
from airflow_provider_wfdlq.recovery.runs import RunOutcome, RunWatch, follow_runs

__all__ = [
    "CheckpointStore",
    "JsonLinesSink",
    "MemoryCheckpoint",
    "Redrive",
    "RedrivePlan",
    "RedriveReport",
    "ReportSink",
    "RunOutcome",
    "RunWatch",
    "follow_runs",
]

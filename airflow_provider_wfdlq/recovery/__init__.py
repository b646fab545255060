"""The redrive engine: plans (lists and selects) first, then acts by ``dlqIds`` in batches.

Airflow-free on purpose (the operator is thin glue around it), so it can be tested and
benchmarked over plain clients, and reused outside Airflow.
"""

from airflow_provider_wfdlq.recovery.checkpoint import Ledger, MemoryStore, StateStore
from airflow_provider_wfdlq.recovery.pacing import Pacing
from airflow_provider_wfdlq.recovery.plan import ListingError
from airflow_provider_wfdlq.recovery.redrive import Redrive, RedrivePlan
from airflow_provider_wfdlq.recovery.report import JsonLinesSink, RedriveReport, ReportSink
from airflow_provider_wfdlq.recovery.runs import RunOutcome, RunWatch, follow_runs
from airflow_provider_wfdlq.recovery.states import Action, Outcome, PairedBy, Stop

__all__ = [
    "Action",
    "JsonLinesSink",
    "Ledger",
    "ListingError",
    "MemoryStore",
    "Outcome",
    "Pacing",
    "PairedBy",
    "Redrive",
    "RedrivePlan",
    "RedriveReport",
    "ReportSink",
    "RunOutcome",
    "RunWatch",
    "StateStore",
    "Stop",
    "follow_runs",
]

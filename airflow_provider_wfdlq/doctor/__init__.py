"""``wfdlq-doctor``: check a real account against what the redrive engine assumes.

Read-only by default (token and region URL, list and get parse, listing order, cursors,
run-logs page size, a flow-control key's state, rate-limit headers); ``--probe-resume``
and ``--probe-bulk`` resume entries the user names to see whether resumed entries leave the
DLQ, how fast, what the answers look like and how many ids one bulk call acts on. Each
check that differs names the dev-server reading it matches
(:data:`airflow_provider_wfdlq.devserver.READINGS`).

Airflow is imported only for ``--conn-id`` (through ``WorkflowDLQHook``).
"""

from airflow_provider_wfdlq.doctor.checks import (
    DIFFERS,
    OK,
    UNKNOWN,
    Check,
    Doctor,
    ProbeRefused,
    Report,
)
from airflow_provider_wfdlq.doctor.cli import main

__all__ = ["DIFFERS", "OK", "UNKNOWN", "Check", "Doctor", "ProbeRefused", "Report", "main"]

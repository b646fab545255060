"""Restart what resume cannot fix: a workflow whose code changed before its failed step.

Upstash's resume call does not refuse such an entry: it answers 200, and the resumed run
fails at the changed step inside the application (the workflow SDK answers with an
"Incompatible step name" error), then, after its retries, lands in the DLQ again as a NEW
entry whose failed step's response says so. When the canary or the breaker sees a run
that failed again, this reads the NEW entry it became and, if the failure is that error,
restarts it from the first step (opt-in, at most ``max_restarts`` per task). Such runs are
not "the bug is still live": the canary and the breaker do not count them as failures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from airflow_provider_wfdlq.client import (
    APIError,
    NotFoundError,
    OutcomeUnknownError,
    Overrides,
    WorkflowDLQClient,
)
from airflow_provider_wfdlq.recovery.checkpoint import Ledger

log = logging.getLogger("airflow_provider_wfdlq.recovery")

#: What the workflow SDK's error says when a step's name no longer matches the code.
INCOMPATIBLE = "Incompatible step name"


class IncompatibleRestarts:
    """Finds failed-again runs that hit a changed step, and restarts their new entries."""

    def __init__(
        self,
        client: WorkflowDLQClient,
        ledger: Ledger,
        overrides: Overrides,
        *,
        max_restarts: int,
        done: int = 0,
        pace: Callable[[], None] = lambda: None,
        record: Callable[[dict[str, Any]], None] = lambda record: None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.overrides = overrides
        self.max_restarts = max_restarts
        self.done = done
        self.pace = pace
        self.record = record

    def handle(self, failed: Iterable[Mapping[str, Any]]) -> set[str]:
        """Restart the incompatible ones among these failed runs; their run ids."""
        forgiven: set[str] = set()
        for run in failed:
            dlq_id, run_id = run.get("dlq_id"), str(run.get("workflow_run_id"))
            if not dlq_id or dlq_id in self.ledger or not self._incompatible(dlq_id):
                continue
            forgiven.add(run_id)
            if self.done >= self.max_restarts:
                self.record(
                    {
                        "event": "skipped_incompatible",
                        "dlq_id": dlq_id,
                        "reason": f"max_restarts ({self.max_restarts}) reached",
                    }
                )
                continue
            self.done += 1
            self.ledger.record([dlq_id])
            self.pace()
            try:
                new = self.client.restart(dlq_id, self.overrides)
            except (OutcomeUnknownError, APIError) as exc:
                log.error("Restarting %s (incompatible step) failed: %s", dlq_id, exc)
                self.record(
                    {"event": "answer_lost_unknown", "dlq_id": dlq_id, "reason": f"restart: {exc}"}
                )
                continue
            log.warning(
                "%s failed again at a changed step; restarted it as %s.",
                dlq_id,
                new.workflow_run_id,
            )
            self.record(
                {
                    "event": "restarted_incompatible",
                    "dlq_id": dlq_id,
                    "resumed_run": run_id,
                    "new_workflow_run_id": new.workflow_run_id,
                    "new_workflow_created_at": new.workflow_created_at,
                    "paired_by": "single_id",
                }
            )
        return forgiven

    def _incompatible(self, dlq_id: str) -> bool:
        self.pace()
        try:
            entry = self.client.get_message(dlq_id)
        except NotFoundError:
            return False
        return INCOMPATIBLE in (entry.response_body or "")

"""Where every entry's state goes: the report's counts and runs, the JSON-lines sink, and
the metrics. One place, so each entry is counted once and written once (I4)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_provider_wfdlq.recovery.actor import Result
from airflow_provider_wfdlq.recovery.plan import Item
from airflow_provider_wfdlq.recovery.report import RedriveReport, ReportSink, format_table
from airflow_provider_wfdlq.recovery.retention import Retention
from airflow_provider_wfdlq.recovery.states import Action, Outcome, Stop, count_key

log = logging.getLogger("airflow_provider_wfdlq.recovery")

#: The report event of an entry written in full before it is deleted (recovery.actions).
ENTRY_BEFORE_DELETE = "entry_before_delete"

#: Counts a listing makes; a retry lists again, so a checkpoint does not keep them.
LISTING_COUNTS = ("skipped_", "expiring_", "left_", "would_")


class Recorder:
    """Counts and writes what became of each entry."""

    def __init__(
        self,
        report: RedriveReport,
        sink: ReportSink,
        action: Action,
        *,
        retention: Retention | None,
        now_ms: Callable[[], int],
        metrics: Callable[[str, int], None] | None,
        describe_time: Callable[[int | None], str],
    ) -> None:
        self.report = report
        self.sink = sink
        self.action = action
        self.makes_run = action in (Action.RESUME, Action.RESTART)
        self.retention = retention
        self.now_ms = now_ms
        self.metrics = metrics
        self.describe_time = describe_time
        #: Entries acted on that no listing found (restarted incompatible ones).
        self.found_extra = 0
        #: An earlier try finished listing and wrote its skipped entries to the report.
        self.skips_written = False
        #: Acting while listing: skipped entries are held, and written once the listing
        #: ends (a try that dies mid-listing has written none; its retry writes them once).
        self.held_skips: list[tuple[Item, str]] | None = None
        self._started = time.monotonic()

    def record(self, result: Result) -> None:
        """An entry the walk decided on: acted, unknown, not acted, vanished, or refused."""
        extra: dict[str, Any] = {}
        if result.run is not None:
            run = result.run
            paired = result.paired_by.value if result.paired_by else None
            extra = {
                "new_workflow_run_id": run.workflow_run_id,
                "new_workflow_created_at": run.workflow_created_at,
                "paired_by": paired,
            }
            self.report.add_run(
                result.item.dlq_id, run.workflow_run_id, run.workflow_created_at, paired
            )
        if result.reason:
            extra["reason"] = result.reason
        if result.outcome is Outcome.LEFT:
            self.left(result.item, count_key(Outcome.LEFT, self.action, "refused"), **extra)
            return
        key = count_key(result.outcome, self.action)
        self.count(key)
        if result.outcome in (Outcome.ACTED, Outcome.ACTED_RUN_UNKNOWN) and not self.makes_run:
            item = result.item
            named = {"dlq_id": item.dlq_id, "workflow_run_id": item.workflow_run_id}
            self.report.add_entry({**named, "workflow_url": item.workflow_url, "event": key})
        self.sink.write(result.item.record(key, **extra))

    def left(self, item: Item, event: str, write: bool = True, **extra: Any) -> None:
        """Count an entry that stays in the DLQ, and say if it expires before the next run."""
        retention = self.retention
        if retention is not None and item.created_at is not None:
            expires = item.created_at + retention.retention_ms
            extra["expires_at"] = expires
            if expires <= self.now_ms() + retention.horizon_ms:
                extra["expiring_before_next_run"] = True
                self.count("expiring_before_next_run")
                self.report.add_expiring(
                    {"dlq_id": item.dlq_id, "expires_at": expires, "why": event}
                )
        self.count(event)
        if write:
            self.sink.write(item.record(event, **extra))

    def skipped(self, item: Item, reason: str) -> None:
        # A retry lists the same window again: what it skips, an earlier try that finished
        # listing has skipped and written already (no entry can appear below the bound).
        if self.held_skips is not None:
            self.held_skips.append((item, reason))
            return
        self.left(item, "skipped_" + reason, write=not self.skips_written)

    def release_skips(self, write: bool = True) -> None:
        """The listing ended: count the held skipped entries and write them (not when it
        was stopped: the retry lists again and writes them)."""
        held, self.held_skips = self.held_skips or [], None
        for item, reason in held:
            self.left(item, "skipped_" + reason, write=write and not self.skips_written)

    def restarted(self, record: dict[str, Any]) -> None:
        """A failed-again run's NEW entry, restarted (or not) for a changed step."""
        self.count(record["event"])
        self.found_extra += 1  # an entry no listing found: it came after the walk began
        if record.get("new_workflow_run_id"):
            run_id, at = record["new_workflow_run_id"], record["new_workflow_created_at"]
            self.report.add_run(record["dlq_id"], run_id, at, record["paired_by"])
        self.sink.write(record)

    def preview(self, items: list[Item], max_resumes: int | None) -> None:
        """A dry run: what would be acted on (within ``max_resumes``) and what would not."""
        room = len(items) if max_resumes is None else max_resumes
        shown, rest = items[:room], items[room:]
        for item in shown:
            self.report.groups[(item.workflow_url or "", item.response_status)] += 1
            self.left(item, count_key(Outcome.WOULD, self.action))
        for item in rest:
            self.left(item, count_key(Outcome.LEFT, self.action, Stop.MAX_RESUMES.value))
        self.report.stopped = (Stop.MAX_RESUMES if rest else Stop.DONE).value
        if shown:
            log.info("Would %s:\n%s", self.action.value, format_table(shown, self.describe_time))

    def entries(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Entries about to be deleted, each in full (all the API gives: body, headers,
        response), written and synced to the report before the call goes out."""
        for entry in entries:
            self.sink.write(
                {"event": ENTRY_BEFORE_DELETE, "dlq_id": entry.get("dlqId"), "entry": entry}
            )
        sync = getattr(self.sink, "sync", None)
        (sync or self.sink.flush)()

    def event(self, record: dict[str, Any]) -> None:
        """A walk event (a trip, a pause) in the JSON-lines report."""
        self.sink.write(record)

    def count(self, key: str, n: int = 1) -> None:
        self.report.counts[key] += n
        self.metric(key, n)

    def metric(self, key: str, n: int) -> None:
        """A metric only (``matched``, ``failed_again``): the report says these otherwise."""
        if self.metrics is not None and n:
            self.metrics(key, n)

    def progress(self, n: int, sent: int) -> None:
        self.sink.flush()
        elapsed = max(time.monotonic() - self._started, 1e-6)
        log.info(
            "batch %d: %d entr%s (%d sent so far, %.1f/s)",
            self.report.pages,
            n,
            "y" if n == 1 else "ies",
            sent,
            sent / elapsed,
        )

    def state(self, by_ids: bool) -> dict[str, Any]:
        """What a retry keeps: what was done. Listing counts are the next listing's (named
        ids that vanished are found vanished again)."""
        state = self.report.to_state()
        listing = LISTING_COUNTS + (("vanished",) if by_ids else ())
        state["counts"] = {k: n for k, n in state["counts"].items() if not k.startswith(listing)}
        return state

"""The redrive loop: list a page, resume exactly those entries by id, record, checkpoint.

Why list first and resume by ``dlqIds`` instead of one bulk call with the filters: the bulk
answer does not say which entry became which new run, and after a lost answer nobody knows
which entries the call took. Listing first costs one more request per page but names every
entry before it is touched, so the report maps each dlqId to its new run, and a crash
between "sent" and "answered" leaves a checkpoint naming the entries in flight; the next try
asks the DLQ which of them are gone (they were resumed) and which remain (they are resumed
again, once). Resumed entries leave the DLQ, so walking again never resumes one twice.

Entries created after the walk started are never touched: a resumed run that fails again
re-enters the DLQ as a new entry, and without that bound a walk could chase its own tail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_wfdlq.client import (
    BadRequestError,
    BulkResult,
    DLQFilters,
    DLQMessage,
    NotFoundError,
    Overrides,
    ValidationError,
    WorkflowDLQClient,
)
from airflow_provider_wfdlq.recovery.checkpoint import CheckpointStore, MemoryCheckpoint
from airflow_provider_wfdlq.recovery.report import (
    NullSink,
    RedriveReport,
    ReportSink,
    entry_record,
    format_table,
)

ACTIONS = ("resume", "restart")
#: The list endpoint's largest page; also the most ids one bulk call names.
MAX_PAGE = 100
#: How often a walk may start over after the server rejected a stale cursor.
MAX_WALK_RESTARTS = 3
CHECKPOINT_VERSION = 1

log = logging.getLogger("airflow_provider_wfdlq.recovery")


@dataclass(frozen=True)
class RedrivePlan:
    """What to act on and how. Validated by :meth:`check` before the first request."""

    filters: DLQFilters
    overrides: Overrides
    action: str = "resume"
    cursor: str | None = None
    count: int = 50
    max_resumes: int | None = None
    dry_run: bool = False
    resume_all: bool = False

    def check(self) -> None:
        """Refuse what would surprise: an unknown action, an unbounded walk nobody asked for."""
        if self.action not in ACTIONS:
            raise ValidationError("action", self.action, "'resume' or 'restart'")
        if not 1 <= self.count <= MAX_PAGE:
            raise ValidationError("count", self.count, f"an integer from 1 to {MAX_PAGE}")
        if self.max_resumes is not None and self.max_resumes < 1:
            raise ValidationError("max_resumes", self.max_resumes, "an integer >= 1, or None")
        if self.filters.is_empty() and not self.resume_all:
            raise ValidationError(
                "filters",
                {},
                "at least one filter or dlq_ids; acting on the whole DLQ needs resume_all=True",
            )
        if self.cursor is not None and self.filters.dlq_ids:
            raise ValidationError("cursor", self.cursor, "no cursor together with dlq_ids")


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class Redrive:
    """One walk over the DLQ for one plan. Not thread-safe; make one per task try."""

    def __init__(
        self,
        client: WorkflowDLQClient,
        plan: RedrivePlan,
        *,
        checkpoint: CheckpointStore | None = None,
        sink: ReportSink | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        max_runs_in_result: int | None = None,
        describe_time: Callable[[int | None], str] = str,
    ) -> None:
        plan.check()
        self.client = client
        self.plan = plan
        self.checkpoint = checkpoint or MemoryCheckpoint()
        self.sink = sink or NullSink()
        self.should_stop = should_stop
        self.now_ms = now_ms
        self.describe_time = describe_time
        self.report = RedriveReport(action=plan.action, dry_run=plan.dry_run)
        if max_runs_in_result is not None:
            self.report.max_runs = max_runs_in_result
        self._started = time.monotonic()
        self._acted = 0
        self._passed: set[str] = set()  # listed but left in the DLQ (dry run): never twice
        self._settled: set[str] = set()  # taken by an earlier try whose answer was lost

    # -- the walk ---------------------------------------------------------------------------

    def run(self) -> RedriveReport:
        """Walk to the end, the cap, or a stop request; the report says which."""
        state = self.checkpoint.load()
        if state and state.get("version") == CHECKPOINT_VERSION:
            position = self._restore(state)
        else:
            position = {"cursor": self.plan.cursor, "index": 0, "bound": self.now_ms()}
        try:
            if self.plan.filters.dlq_ids:
                self._walk_ids(int(position["index"]))
            else:
                self._walk_filters(position["cursor"], int(position["bound"]))
        finally:
            self.sink.flush()
        if self.report.stopped == "done":
            self.checkpoint.clear()
        log.info("%s", self.report.summary())
        return self.report

    def _walk_filters(self, cursor: str | None, bound: int) -> None:
        to_date = (
            bound if self.plan.filters.to_date is None else min(self.plan.filters.to_date, bound)
        )
        filters = replace(self.plan.filters, to_date=to_date)
        restarts = 0
        while True:
            if self._stop_before_page(cursor=cursor, bound=bound):
                return
            try:
                page = self.client.list_messages(filters, cursor=cursor, count=self.plan.count)
            except BadRequestError as exc:
                if cursor is None or restarts >= MAX_WALK_RESTARTS:
                    raise
                restarts += 1
                log.warning(
                    "The DLQ rejected the cursor (%s); walking again from the start.", exc.error
                )
                cursor = None
                continue
            fresh = [m for m in page.messages if m.dlq_id not in self._passed]
            room = self._room()
            selected = fresh if room is None else fresh[:room]
            self._save(cursor=cursor, bound=bound, in_flight=[m.dlq_id for m in selected])
            self._handle_page(selected)
            if room is not None and len(fresh) > room:
                # The rest of this page is still in the DLQ: the same cursor finds it again.
                self._stop("max_resumes", cursor=cursor, bound=bound)
                return
            cursor = page.cursor
            self._save(cursor=cursor, bound=bound, in_flight=[])
            if cursor is None:
                return

    def _walk_ids(self, start: int) -> None:
        ids = self.plan.filters.dlq_ids
        index = start
        for chunk in _chunks(ids[start:], self.plan.count):
            if self._stop_before_page(index=index):
                return
            room = self._room()
            selected_ids = chunk if room is None else chunk[:room]
            todo = [i for i in selected_ids if i not in self._settled]
            self._save(index=index, in_flight=todo)
            if self.plan.dry_run:
                described = (self._describe(dlq_id) for dlq_id in todo)
                self._handle_page([m for m in described if m is not None])
            else:
                self.report.pages += 1
                self._act_on(todo, {})
            index += len(selected_ids)
            self._save(index=index, in_flight=[])
            if len(selected_ids) < len(chunk):
                self._stop("max_resumes", index=index)
                return

    # -- one page ---------------------------------------------------------------------------

    def _handle_page(self, messages: list[DLQMessage]) -> None:
        self.report.pages += 1
        if self.plan.dry_run:
            self._preview(messages)
        elif messages:
            self._act_on([m.dlq_id for m in messages], {m.dlq_id: m for m in messages})
        self.sink.flush()
        elapsed = max(time.monotonic() - self._started, 1e-6)
        log.info(
            "page %d: %d entr%s (%d so far, %.1f/s)",
            self.report.pages,
            len(messages),
            "y" if len(messages) == 1 else "ies",
            self._acted,
            self._acted / elapsed,
        )

    def _preview(self, messages: list[DLQMessage]) -> None:
        for m in messages:
            self._passed.add(m.dlq_id)
            self.report.groups[(m.workflow_url or "", m.response_status)] += 1
            self.report.counts["would_" + self.plan.action] += 1
            self.sink.write(entry_record(m, "would_" + self.plan.action))
        self._acted += len(messages)
        if messages:
            log.info("Would %s:\n%s", self.plan.action, format_table(messages, self.describe_time))

    def _act_on(self, ids: list[str], known: dict[str, DLQMessage]) -> None:
        """Resume (or restart) exactly these ids, however the server caps or loses answers."""
        pending = ids
        while pending:
            try:
                result = self._bulk(pending)
            except NotFoundError:
                # Some entry left the DLQ between listing and acting (resumed elsewhere,
                # deleted, expired): find which, report them, and act on the rest.
                present = [i for i in pending if self._describe(i) is not None]
                for dlq_id in pending:
                    if dlq_id not in present:
                        self._record(dlq_id, known, "vanished", reason="not in the DLQ any more")
                pending = present
                continue
            lost = set(result.lost_dlq_ids)
            acted = [i for i in pending if i not in lost]
            if len(result.runs) < len(acted):
                # The server acted on fewer ids than named (a per-call cap): the ones still
                # in the DLQ go into the next call; answers map to the ones that left.
                still = {i for i in acted if self._describe(i) is not None}
                pending = [i for i in acted if i in still]
                acted = [i for i in acted if i not in still]
            else:
                pending = []
            for dlq_id, run in zip(acted, result.runs, strict=False):
                self._record(dlq_id, known, self._done_event, run=run)
            for dlq_id in acted[len(result.runs) :]:
                self._record(dlq_id, known, self._done_event, run=None, reason="answer lost")
            for dlq_id in result.lost_dlq_ids:
                self._record(dlq_id, known, self._done_event, run=None, reason="answer lost")

    @property
    def _done_event(self) -> str:
        return "resumed" if self.plan.action == "resume" else "restarted"

    def _bulk(self, ids: list[str]) -> BulkResult:
        filters = DLQFilters(dlq_ids=tuple(ids))
        if self.plan.action == "resume":
            return self.client.resume_bulk(filters, self.plan.overrides)
        return self.client.restart_bulk(filters, self.plan.overrides)

    def _describe(self, dlq_id: str) -> DLQMessage | None:
        try:
            return self.client.get_message(dlq_id)
        except NotFoundError:
            return None

    def _record(
        self,
        dlq_id: str,
        known: dict[str, DLQMessage],
        event: str,
        *,
        run: Any = None,
        reason: str | None = None,
    ) -> None:
        extra: dict[str, Any] = {}
        answer_lost = reason == "answer lost"
        if event != "vanished":
            self._acted += 1
            new_id = None if run is None else run.workflow_run_id
            new_at = None if run is None else run.workflow_created_at
            extra = {"new_workflow_run_id": new_id, "new_workflow_created_at": new_at}
            self.report.add_run(dlq_id, new_id, new_at)
        if reason:
            extra["reason"] = reason
        message = known.get(dlq_id)
        record = (
            entry_record(message, event, **extra)
            if message
            else {"event": event, "dlq_id": dlq_id, **extra}
        )
        self.report.counts[f"{event}_answer_lost" if answer_lost else event] += 1
        self.sink.write(record)

    # -- bookkeeping ------------------------------------------------------------------------

    def _room(self) -> int | None:
        return (
            None if self.plan.max_resumes is None else max(self.plan.max_resumes - self._acted, 0)
        )

    def _stop_before_page(self, **position: Any) -> bool:
        if self.should_stop():
            self._stop("stopped", **position)
            return True
        if self._room() == 0:
            self._stop("max_resumes", **position)
            return True
        return False

    def _stop(self, why: str, **position: Any) -> None:
        self.report.stopped = why
        self.report.cursor = position.get("cursor")
        self._save(in_flight=[], **position)
        log.info(
            "Stopped (%s) after %d entr%s.", why, self._acted, "y" if self._acted == 1 else "ies"
        )

    def _save(self, *, in_flight: Sequence[str], **position: Any) -> None:
        self.checkpoint.save(
            {
                "version": CHECKPOINT_VERSION,
                "cursor": position.get("cursor"),
                "index": position.get("index", 0),
                "bound": position.get("bound"),
                "in_flight": list(in_flight),
                "acted": self._acted,
                "report": self.report.to_state(),
            }
        )

    def _restore(self, state: dict[str, Any]) -> dict[str, Any]:
        """Take up an earlier try's walk; settle the entries it had in flight when it died."""
        self.report.restore(state.get("report", {}))
        self._acted = int(state.get("acted", 0))
        in_flight = list(state.get("in_flight", []))
        log.info(
            "Going on from a checkpoint: %d entr%s done, %d in flight.",
            self._acted,
            "y" if self._acted == 1 else "ies",
            len(in_flight),
        )
        if in_flight and not self.plan.dry_run:
            gone = [i for i in in_flight if self._describe(i) is None]
            for dlq_id in gone:
                # The earlier try's call took it (its answer was lost with the worker).
                self._settled.add(dlq_id)
                self._record(dlq_id, {}, self._done_event, run=None, reason="answer lost")
        return {
            "cursor": state.get("cursor"),
            "index": state.get("index", 0),
            "bound": state.get("bound") or self.now_ms(),
        }

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
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_provider_wfdlq.client import (
    BadRequestError,
    BulkResult,
    DLQFilters,
    DLQMessage,
    NotFoundError,
    Overrides,
    ResumedRun,
    ValidationError,
    WFDLQError,
    WorkflowDLQClient,
)
from airflow_provider_wfdlq.client.validation import LABEL_PATTERN, check_labels
from airflow_provider_wfdlq.recovery.checkpoint import CheckpointStore, MemoryCheckpoint
from airflow_provider_wfdlq.recovery.report import (
    NullSink,
    RedriveReport,
    ReportSink,
    entry_record,
    format_table,
)
from airflow_provider_wfdlq.recovery.retention import Retention
from airflow_provider_wfdlq.recovery.runs import RunOutcome, follow_runs
from airflow_provider_wfdlq.recovery.safety import CircuitBreaker, SafetyPolicy, canary_verdict
from airflow_provider_wfdlq.recovery.selection import ErrorSelection

ACTIONS = ("resume", "restart")
LABEL_MODES = ("append", "replace")
INCOMPATIBLE = "Incompatible step name"
#: The list endpoint's largest page; also the most ids one bulk call names.
MAX_PAGE = 100
#: How often a walk may start over after the server rejected a stale cursor.
MAX_WALK_RESTARTS = 3
#: With a retention set, how many pages past ``max_resumes`` are read to name what expires.
MAX_SCAN_PAGES = 20
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
    #: Which listed entries to act on by their error; skips 489s by default.
    selection: ErrorSelection = field(default_factory=ErrorSelection)
    #: A label added to every new run (e.g. ``airflow:<dag_id>:<run_id>``).
    audit_label: str | None = None
    #: "append": new runs keep the entry's labels plus the override/audit labels.
    label_mode: str = "append"
    #: Restart (from the first step) what resume refuses with ``Incompatible step name``.
    restart_incompatible: bool = False
    max_restarts: int = 100
    #: Client-side pacing: at most this many API requests per second (429s still honoured).
    requests_per_second: float | None = None
    retention: Retention | None = None
    safety: SafetyPolicy = field(default_factory=SafetyPolicy)

    def check(self) -> None:
        """Refuse what would surprise: an unknown action, an unbounded walk nobody asked for."""
        if self.action not in ACTIONS:
            raise ValidationError("action", self.action, "'resume' or 'restart'")
        if self.label_mode not in LABEL_MODES:
            raise ValidationError("label_mode", self.label_mode, "'append' or 'replace'")
        if self.audit_label is not None and len(check_labels(self.audit_label, "audit_label")) != 1:
            raise ValidationError("audit_label", self.audit_label, "one label (no commas)")
        if self.max_restarts < 1:
            raise ValidationError("max_restarts", self.max_restarts, "an integer >= 1")
        if self.requests_per_second is not None and not self.requests_per_second > 0:
            accepted = "a number of requests per second > 0, or None"
            raise ValidationError("requests_per_second", self.requests_per_second, accepted)
        self.safety.check(self.overrides)
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

    def describe(self) -> dict[str, Any]:
        """The policies in force, in words, for the report."""
        labels = list(self.overrides.label) + ([self.audit_label] if self.audit_label else [])
        return {
            "selection": self.selection.describe(),
            "labels": f"{self.label_mode} {labels}" if labels else "unchanged",
            "restart_incompatible": self.restart_incompatible,
            "requests_per_second": self.requests_per_second,
            "flow_control_key": self.overrides.flow_control_key,
            "retention_days": None
            if self.retention is None
            else self.retention.retention_ms / 86_400_000,
            "safety": self.safety.describe(),
        }


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
        metrics: Callable[[str, int], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        follow: Callable[..., RunOutcome] = follow_runs,
    ) -> None:
        plan.check()
        self.client = client
        self.plan = plan
        self.checkpoint = checkpoint or MemoryCheckpoint()
        self.sink = sink or NullSink()
        self.should_stop = should_stop
        self.now_ms = now_ms
        self.describe_time = describe_time
        self.metrics = metrics
        self.sleep = sleep
        self.monotonic = monotonic
        self.follow = follow
        self.report = RedriveReport(action=plan.action, dry_run=plan.dry_run)
        self.report.policies = plan.describe()
        if max_runs_in_result is not None:
            self.report.max_runs = max_runs_in_result
        self._started = time.monotonic()
        self._next_call_at = 0.0
        self._restarts = 0
        self._canary_runs: list[tuple[str, int]] = []
        self._canary_done = plan.safety.canary is None or plan.dry_run
        self._breaker = (
            CircuitBreaker(plan.safety, client)
            if plan.safety.breaker_max_failure_ratio is not None and not plan.dry_run
            else None
        )
        self._acted = 0
        self._passed: set[str] = set()  # listed but left in the DLQ (dry run): never twice
        self._settled: set[str] = set()  # taken by an earlier try whose answer was lost
        self._created: list[tuple[str, int]] = []  # where _act_on collects the new runs
        self._page_passed: list[str] = []  # left on the current page (recorded already)

    # -- the walk ---------------------------------------------------------------------------

    def run(self) -> RedriveReport:
        """Walk to the end, the cap, a trip or a stop request; the report says which."""
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
            ended = self.report.stopped in ("done", "max_resumes")
            if ended and not self._canary_done and self._canary_runs:
                # Fewer entries (or a smaller cap) than the canary's size: judge them anyway.
                verdict = self._judge_canary()
                if verdict is not True:
                    self.report.stopped = "stopped" if verdict is None else "canary"
        except _Halt as halt:
            self._stop(halt.why, **halt.position)
        finally:
            self.sink.flush()
        left_behind = self.report.stopped in ("max_resumes", "canary", "circuit_breaker")
        if left_behind and self.plan.retention is not None and not self.plan.filters.dlq_ids:
            self._scan_left(self.report.cursor, int(position["bound"]))
        if self.report.stopped == "done":
            self.checkpoint.clear()
        if self.report.expiring or self.report.counts.get("expiring_before_next_run"):
            log.warning(
                "%d entr%s left in the DLQ expire before the next run; see 'expiring'.",
                self.report.counts["expiring_before_next_run"],
                "y" if self.report.counts["expiring_before_next_run"] == 1 else "ies",
            )
        log.info("%s", self.report.summary())
        return self.report

    def _bounded(self, bound: int) -> DLQFilters:
        """The plan's filters, never past the walk's start (``bound``)."""
        to_date = (
            bound if self.plan.filters.to_date is None else min(self.plan.filters.to_date, bound)
        )
        return replace(self.plan.filters, to_date=to_date)

    def _walk_filters(self, cursor: str | None, bound: int) -> None:
        filters = self._bounded(bound)
        restarts = 0
        while True:
            if self._stop_before_page(cursor=cursor, bound=bound):
                return
            try:
                self._pace()
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
            self._metric("matched", len(fresh))
            chosen = self._select(fresh)
            room = self._room()
            selected = chosen if room is None else chosen[:room]
            self._page_passed = [m.dlq_id for m in fresh if m not in chosen]
            in_flight = [m.dlq_id for m in selected]
            self._save(cursor=cursor, bound=bound, in_flight=in_flight)
            self._handle_page(selected, cursor=cursor, bound=bound)
            if room is not None and len(chosen) > room:
                # The rest of this page is still in the DLQ: the same cursor finds it again.
                self._stop("max_resumes", cursor=cursor, bound=bound)
                return
            cursor = page.cursor
            self._page_passed = []
            self._save(cursor=cursor, bound=bound, in_flight=[])
            if cursor is None:
                return

    def _walk_ids(self, start: int) -> None:
        """Named entries: each is read first (GET), since selection needs its error."""
        ids = self.plan.filters.dlq_ids
        index = start
        for chunk in _chunks(ids[start:], self.plan.count):
            if self._stop_before_page(index=index):
                return
            messages = []
            for dlq_id in chunk:
                if dlq_id in self._settled:
                    continue
                message = self._describe(dlq_id)
                if message is None:
                    self._record(dlq_id, {}, "vanished", reason="not in the DLQ any more")
                else:
                    messages.append(message)
            self._metric("matched", len(messages))
            chosen = self._select(messages)
            room = self._room()
            selected = chosen if room is None else chosen[:room]
            self._save(index=index, in_flight=[m.dlq_id for m in selected])
            self._handle_page(selected, index=index)
            if room is not None and len(chosen) > room:
                self._stop("max_resumes", index=index)
                return
            index += len(chunk)
            self._save(index=index, in_flight=[])

    # -- one page ---------------------------------------------------------------------------

    def _select(self, messages: list[DLQMessage]) -> list[DLQMessage]:
        """The entries to act on, oldest first; the others are recorded as skipped."""
        chosen = []
        now = self.now_ms()
        for m in messages:
            reason = self.plan.selection.skip_reason(m) or self._label_problem(m)
            if reason is None:
                chosen.append(m)
                continue
            self._passed.add(m.dlq_id)
            self._left_in_dlq(m, "skipped_" + reason, now)
        chosen.sort(key=lambda m: (m.created_at is None, m.created_at or 0))
        return chosen

    def _scan_left(self, cursor: str | None, bound: int) -> None:
        """After ``max_resumes``: read (never act on) what the cap left in the DLQ, so the
        entries among them that expire before the next run are named too."""
        filters, now, pages = self._bounded(bound), self.now_ms(), 0
        while (cursor is not None or pages == 0) and pages < MAX_SCAN_PAGES:
            self._pace()
            try:
                page = self.client.list_messages(filters, cursor=cursor, count=MAX_PAGE)
            except WFDLQError as exc:  # a report-only scan must not fail a finished walk
                log.warning("Could not read what was left in the DLQ: %s", exc)
                self.report.policies["left_scan"] = {"pages": pages, "error": str(exc)}
                self.sink.flush()
                return
            pages += 1
            for m in page.messages:
                if m.dlq_id in self._passed:
                    continue
                reason = self.plan.selection.skip_reason(m)
                self._left_in_dlq(
                    m, "left_by_max_resumes" if reason is None else "skipped_" + reason, now
                )
            cursor = page.cursor
        self.report.policies["left_scan"] = {"pages": pages, "complete": cursor is None}
        self.sink.flush()

    def _label_problem(self, message: DLQMessage) -> str | None:
        """In append mode an entry's own labels are sent again; one that cannot be (a comma
        or space in it) would fail the call, so the entry is left, counted, and named."""
        appending = self.plan.label_mode == "append" and (
            self.plan.audit_label or self.plan.overrides.label
        )
        if appending and any(not LABEL_PATTERN.fullmatch(label) for label in message.labels):
            log.warning("%s: labels %s cannot be sent back; left.", message.dlq_id, message.labels)
            return "unsendable_label"
        return None

    def _left_in_dlq(self, message: DLQMessage, event: str, now: int) -> None:
        """Count an entry that stays in the DLQ, and say if it will expire before next run."""
        extra: dict[str, Any] = {}
        retention = self.plan.retention
        if retention is not None:
            extra["expires_at"] = retention.expires_at(message)
            if retention.expiring(message, now):
                extra["expiring_before_next_run"] = True
                self._count("expiring_before_next_run")
                self.report.add_expiring(
                    {"dlq_id": message.dlq_id, "expires_at": extra["expires_at"], "why": event}
                )
        self._count(event)
        self.sink.write(entry_record(message, event, **extra))

    def _handle_page(self, messages: list[DLQMessage], **position: Any) -> None:
        self.report.pages += 1
        if self.plan.dry_run:
            self._preview(messages)
        elif messages:
            self._act_with_safety(messages, position)
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
        now = self.now_ms()
        for m in messages:
            self._passed.add(m.dlq_id)
            self.report.groups[(m.workflow_url or "", m.response_status)] += 1
            self._left_in_dlq(m, "would_" + self.plan.action, now)
        self._acted += len(messages)
        if messages:
            log.info("Would %s:\n%s", self.plan.action, format_table(messages, self.describe_time))

    def _act_with_safety(self, messages: list[DLQMessage], position: dict[str, Any]) -> None:
        """Canary first (then judge it), the rest after; the breaker looks after each page.

        The canary is fed until it has ``canary`` new runs: an entry that made no run
        (incompatible, vanished, answer lost) does not count, and nothing else is resumed
        before the verdict. Progress is checkpointed before every wait and poll, so a
        worker that dies there loses no run id and does not start another canary.
        """
        if not self._canary_done:
            size = self.plan.safety.canary or 0
            while messages and len(self._canary_runs) < size:
                need = size - len(self._canary_runs)
                batch, messages = messages[:need], messages[need:]
                self._act_on(batch, self._canary_runs)
            self._save(in_flight=[m.dlq_id for m in messages], **position)
            if len(self._canary_runs) < size:
                return  # the page ran out first: the canary goes on with the next page
            verdict = self._judge_canary()
            self._save(in_flight=[m.dlq_id for m in messages], **position)
            if verdict is None:
                raise _Halt("stopped", position)
            if not verdict:
                raise _Halt("canary", position)
        if messages:
            followed: list[tuple[str, int]] = []
            self._act_on(messages, followed)
            self._save(in_flight=[], **position)
            if self._breaker is not None:
                self._breaker.follow(followed)
        if self._breaker is not None:
            self._pace()
            failed_before = self._breaker.tally.failed
            self._breaker.poll()
            self._metric("failed_again", self._breaker.tally.failed - failed_before)
            self.report.safety["breaker"] = self._breaker.state()
            if self._breaker.tripped():
                self._trip("circuit_breaker", self._breaker.state())
                raise _Halt("circuit_breaker", position)

    def _judge_canary(self) -> bool | None:
        """Wait for the canary's runs; go on only if enough succeeded (None: interrupted)."""
        self._canary_done = True
        size = len(self._canary_runs)
        log.info("Canary: waiting for the outcome of %d resumed run(s).", size)
        outcome = self.follow(
            self.client,
            list(self._canary_runs),
            timeout_s=self.plan.safety.canary_timeout,
            # Polling the canary obeys the request pacing too.
            poll_interval_s=max(
                self.plan.safety.poll_interval, 1.0 / (self.plan.requests_per_second or 1e9)
            ),
            sleep=self.sleep,
            monotonic=self.monotonic,
            should_stop=self.should_stop,
        )
        passed, seen = canary_verdict(outcome, self.plan.safety, size)
        self._metric("failed_again", int(seen["counts"].get("RUN_FAILED", 0)))
        seen["passed"] = passed
        self.report.safety["canary"] = seen
        if not passed and outcome.stopped:
            # Killed while waiting: no verdict (a retry waits for the same runs again).
            seen["interrupted"] = True
            self._canary_done = False
            log.info("Canary wait interrupted: %s", seen)
            return None
        log.info("Canary %s: %s", "passed" if passed else "FAILED", seen)
        if not passed:
            self._trip("canary", seen)
            # Whoever takes this walk up again (a cleared task, once the bug is fixed) must
            # prove it with a new canary, not inherit this verdict.
            self._canary_done, self._canary_runs = False, []
        return passed

    def _trip(self, why: str, seen: dict[str, Any]) -> None:
        self._count(f"tripped_{why}")
        self.sink.write({"event": "tripped", "by": why, **seen})
        key = self.plan.overrides.flow_control_key
        if self.plan.safety.pause_on_trip and key:
            self.pause(key, why)

    def pause(self, key: str, why: str) -> None:
        """Pause the redrive's flow-control key; say so in the report whatever happens."""
        try:
            self.client.pause_flow_control(key)
        except Exception as exc:  # the walk stops anyway; the report must say the pause failed
            log.error("Could not pause flow-control key %r: %s", key, exc)
            self.report.safety["paused"] = {"key": key, "by": why, "error": str(exc)}
            return
        log.warning("Paused flow-control key %r (%s).", key, why)
        self.report.safety["paused"] = {"key": key, "by": why}
        self.sink.write({"event": "paused", "flow_control_key": key, "by": why})

    def _act_on(self, messages: list[DLQMessage], created: list[tuple[str, int]]) -> None:
        """Act on these entries, one bulk call per set of labels the new runs get."""
        known = {m.dlq_id: m for m in messages}
        self._created = created
        for overrides, ids in self._label_groups(messages):
            self._act_on_ids(ids, known, overrides)

    def _label_groups(self, messages: list[DLQMessage]) -> list[tuple[Overrides, list[str]]]:
        base = self.plan.overrides
        extra = tuple(base.label) + ((self.plan.audit_label,) if self.plan.audit_label else ())
        if not extra:
            return [(base, [m.dlq_id for m in messages])] if messages else []
        groups: dict[tuple[str, ...], list[str]] = {}
        for m in messages:
            labels = extra if self.plan.label_mode == "replace" else (*m.labels, *extra)
            groups.setdefault(tuple(dict.fromkeys(labels)), []).append(m.dlq_id)
        return [(replace(base, label=labels), ids) for labels, ids in groups.items()]

    def _act_on_ids(
        self, ids: list[str], known: dict[str, DLQMessage], overrides: Overrides
    ) -> None:
        """Resume (or restart) exactly these ids, however the server caps or loses answers."""
        pending = ids
        while pending:
            try:
                result = self._bulk(pending, overrides)
            except NotFoundError:
                # Some entry left the DLQ between listing and acting (resumed elsewhere,
                # deleted, expired): find which, report them, and act on the rest.
                present = [i for i in pending if self._describe(i) is not None]
                for dlq_id in pending:
                    if dlq_id not in present:
                        self._record(dlq_id, known, "vanished", reason="not in the DLQ any more")
                pending = present
                continue
            except BadRequestError as exc:
                if self.plan.action != "resume" or INCOMPATIBLE not in exc.error:
                    raise
                # One entry's workflow code changed before its failed step, and the whole
                # call was refused: go one by one to find which.
                self._one_by_one(pending, known, overrides)
                return
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

    def _one_by_one(
        self, ids: list[str], known: dict[str, DLQMessage], overrides: Overrides
    ) -> None:
        for dlq_id in ids:
            try:
                self._pace()
                run = self.client.resume(dlq_id, overrides)
            except NotFoundError:
                self._record(dlq_id, known, "vanished", reason="not in the DLQ any more")
                continue
            except BadRequestError as exc:
                if INCOMPATIBLE not in exc.error:
                    raise
                self._incompatible(dlq_id, known, overrides)
                continue
            self._record(dlq_id, known, "resumed", run=run)

    def _incompatible(
        self, dlq_id: str, known: dict[str, DLQMessage], overrides: Overrides
    ) -> None:
        """Restart what cannot be resumed, if allowed and under the cap; else leave it."""
        message = known.get(dlq_id)
        if not self.plan.restart_incompatible or self._restarts >= self.plan.max_restarts:
            self._passed.add(dlq_id)
            why = "restart fallback off" if not self.plan.restart_incompatible else "cap reached"
            if message is not None:
                self._left_in_dlq(message, "skipped_incompatible", self.now_ms())
            else:
                self._count("skipped_incompatible")
                self.sink.write({"event": "skipped_incompatible", "dlq_id": dlq_id})
            log.warning("%s: resume refused (%s); left in the DLQ (%s).", dlq_id, INCOMPATIBLE, why)
            return
        self._restarts += 1
        self._pace()
        run = self.client.restart(dlq_id, overrides)
        self._record(dlq_id, known, "restarted_incompatible", run=run, reason=INCOMPATIBLE)

    @property
    def _done_event(self) -> str:
        return "resumed" if self.plan.action == "resume" else "restarted"

    def _bulk(self, ids: list[str], overrides: Overrides) -> BulkResult:
        filters = DLQFilters(dlq_ids=tuple(ids))
        self._pace()
        if self.plan.action == "resume":
            return self.client.resume_bulk(filters, overrides)
        return self.client.restart_bulk(filters, overrides)

    def _describe(self, dlq_id: str) -> DLQMessage | None:
        try:
            self._pace()
            return self.client.get_message(dlq_id)
        except NotFoundError:
            return None

    def _pace(self) -> None:
        """Client-side pacing: space requests ``1 / requests_per_second`` apart."""
        rps = self.plan.requests_per_second
        if rps is None:
            return
        now = self.monotonic()
        if now < self._next_call_at:
            self.sleep(self._next_call_at - now)
            now = self._next_call_at
        self._next_call_at = now + 1.0 / rps

    def _count(self, key: str, n: int = 1) -> None:
        self.report.counts[key] += n
        self._metric(key, n)

    def _metric(self, key: str, n: int) -> None:
        """A metric only (``matched``, ``failed_again``): the report says these otherwise."""
        if self.metrics is not None and n:
            self.metrics(key, n)

    def _record(
        self,
        dlq_id: str,
        known: dict[str, DLQMessage],
        event: str,
        *,
        run: ResumedRun | None = None,
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
            if run is not None:
                self._created.append((run.workflow_run_id, run.workflow_created_at))
        if reason:
            extra["reason"] = reason
        message = known.get(dlq_id)
        record = (
            entry_record(message, event, **extra)
            if message
            else {"event": event, "dlq_id": dlq_id, **extra}
        )
        self._count(f"{event}_answer_lost" if answer_lost else event)
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
                # Recorded as skipped on this page already: a retry must not record them again.
                "passed": list(self._page_passed),
                "acted": self._acted,
                "canary": {"done": self._canary_done, "runs": [list(r) for r in self._canary_runs]},
                "report": self.report.to_state(),
            }
        )

    def _restore(self, state: dict[str, Any]) -> dict[str, Any]:
        """Take up an earlier try's walk; settle the entries it had in flight when it died."""
        self.report.restore(state.get("report", {}))
        self._acted = int(state.get("acted", 0))
        self._restarts = int(self.report.counts.get("restarted_incompatible", 0))
        canary = state.get("canary") or {}
        self._canary_done = bool(canary.get("done", self._canary_done))
        self._canary_runs = [(str(r), int(at)) for r, at in canary.get("runs", [])]
        in_flight = list(state.get("in_flight", []))
        self._passed.update(state.get("passed", []))
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


class _Halt(Exception):
    """A policy stopped the walk (canary, circuit breaker); the position to report."""

    def __init__(self, why: str, position: dict[str, Any]) -> None:
        super().__init__(why)
        self.why = why
        self.position = position

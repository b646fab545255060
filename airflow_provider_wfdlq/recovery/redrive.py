"""The redrive engine: plan, then act (:mod:`plan`, :mod:`actor`, :mod:`gate`).

1. **Plan.** List every entry the filters match (side-effect free), select by error, and
   order the selection oldest first across all of it.
2. **Act.** Act on the plan by ``dlqIds`` in batches, each id written to the ledger first
   and never sent again; the canary and the breaker look at the new runs between batches.
3. **Checkpoint** after every batch: the report so far, the canary, and how much of the
   ledger is settled. A retried try lists again (never acting by cursor), drops every id
   in the ledger, and resolves what the dead try had in flight.

Invariants, each tested under every reading the dev server plays: every walk ends (I1);
an id is named in at most one call that may have acted, across all tries (I2); a stated
pair is a fact or says its basis (I3); every entry ends in exactly one reported state
and the counts add up (I4); oldest first across the whole selection (I5). Entries created
after the walk started are never touched, so a run that fails again is not chased.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_provider_wfdlq.client import (
    DLQFilters,
    DLQMessage,
    Overrides,
    ValidationError,
    WorkflowDLQClient,
)
from airflow_provider_wfdlq.client.validation import LABEL_PATTERN, check_labels
from airflow_provider_wfdlq.recovery.actor import BatchActor, LeaveProbe, Result, label_groups
from airflow_provider_wfdlq.recovery.checkpoint import Checkpoint, Ledger, MemoryStore, StateStore
from airflow_provider_wfdlq.recovery.gate import SafetyGate, Tripped
from airflow_provider_wfdlq.recovery.incompatible import IncompatibleRestarts
from airflow_provider_wfdlq.recovery.pacing import Pacer, Pacing
from airflow_provider_wfdlq.recovery.plan import (
    DEFAULT_MAX_ENTRIES,
    Item,
    Listing,
    ListingStopped,
    PlanBuilder,
)
from airflow_provider_wfdlq.recovery.report import NullSink, RedriveReport, ReportSink, format_table
from airflow_provider_wfdlq.recovery.retention import Retention
from airflow_provider_wfdlq.recovery.runs import RunOutcome, follow_runs
from airflow_provider_wfdlq.recovery.safety import SafetyPolicy
from airflow_provider_wfdlq.recovery.selection import ErrorSelection
from airflow_provider_wfdlq.recovery.states import Action, Outcome, Stop, count_key

LABEL_MODES = ("append", "replace")

log = logging.getLogger("airflow_provider_wfdlq.recovery")


@dataclass(frozen=True)
class RedrivePlan:
    """What to act on and how; validated once, by :meth:`check`, before any request."""

    filters: DLQFilters
    overrides: Overrides
    action: Action = Action.RESUME
    max_resumes: int | None = None
    dry_run: bool = False
    resume_all: bool = False
    #: Which listed entries to act on by their error; skips 489s by default.
    selection: ErrorSelection = field(default_factory=ErrorSelection)
    #: A label added to every new run (e.g. ``airflow:<dag_id>:<run_id>``).
    audit_label: str | None = None
    #: "append": new runs keep the entry's labels plus the override/audit labels.
    label_mode: str = "append"
    pacing: Pacing = field(default_factory=Pacing)
    retention: Retention | None = None
    safety: SafetyPolicy = field(default_factory=SafetyPolicy)
    #: The most entries one walk plans (memory and time stay bounded).
    max_entries: int = DEFAULT_MAX_ENTRIES

    def check(self) -> None:
        """Refuse what would surprise: an unknown action, an unbounded walk nobody asked for."""
        try:
            Action(self.action)
        except ValueError:
            raise ValidationError("action", self.action, "'resume' or 'restart'") from None
        if self.label_mode not in LABEL_MODES:
            raise ValidationError("label_mode", self.label_mode, "'append' or 'replace'")
        if self.audit_label is not None and len(check_labels(self.audit_label, "audit_label")) != 1:
            raise ValidationError("audit_label", self.audit_label, "one label (no commas)")
        self.safety.check(self.overrides)
        self.pacing.check()
        if self.max_resumes is not None and self.max_resumes < 1:
            raise ValidationError("max_resumes", self.max_resumes, "an integer >= 1, or None")
        if self.max_entries < 1:
            raise ValidationError("max_entries", self.max_entries, "an integer >= 1")
        if self.filters.is_empty() and not self.resume_all:
            raise ValidationError(
                "filters",
                {},
                "at least one filter or dlq_ids; acting on the whole DLQ needs resume_all=True",
            )

    def describe(self) -> dict[str, Any]:
        """The policies in force, in words, for the report."""
        labels = list(self.overrides.label) + ([self.audit_label] if self.audit_label else [])
        return {
            "selection": self.selection.describe(),
            "labels": f"{self.label_mode} {labels}" if labels else "unchanged",
            "restart_incompatible": self.safety.restart_incompatible,
            "pacing": self.pacing.describe(),
            "requests_per_second": self.pacing.requests_per_second,
            "flow_control_key": self.overrides.flow_control_key,
            "retention_days": None
            if self.retention is None
            else self.retention.retention_ms / 86_400_000,
            "safety": self.safety.describe(),
        }


class Redrive:
    """One task's redrive for one plan. Not thread-safe; make one per task try."""

    def __init__(
        self,
        client: WorkflowDLQClient,
        plan: RedrivePlan,
        *,
        store: StateStore | None = None,
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
        self.action = Action(plan.action)
        self.store = store if store is not None else MemoryStore()
        self.checkpoint = Checkpoint(self.store)
        self.ledger = Ledger(self.store)
        self.sink = sink or NullSink()
        self.should_stop = should_stop
        self.now_ms = now_ms
        self.describe_time = describe_time
        self.metrics = metrics
        self.report = RedriveReport(action=self.action.value, dry_run=plan.dry_run)
        self.report.policies = plan.describe()
        if max_runs_in_result is not None:
            self.report.max_runs = max_runs_in_result
        self.pace = Pacer(plan.pacing.requests_per_second, sleep=sleep, monotonic=monotonic)
        self.probe = LeaveProbe()
        self.actor = BatchActor(
            client,
            self.action,
            self.ledger,
            probe=self.probe,
            exact=plan.pacing.exact_pairing,
            concurrency=plan.pacing.concurrency,
            batch_limit=plan.pacing.batch_size,
            pace=self.pace,
        )
        rps = plan.pacing.requests_per_second
        self.gate = SafetyGate(
            plan.safety,
            client,
            follow=follow,
            # Polling the canary obeys the request pacing too.
            poll_interval=max(plan.safety.poll_interval, 1.0 / rps if rps else 0.0),
            sleep=sleep,
            monotonic=monotonic,
            should_stop=should_stop,
            pace=self.pace,
            active=not plan.dry_run,
            on_failed=self._restart_incompatible,
        )
        self.restarts = IncompatibleRestarts(
            client,
            self.ledger,
            plan.overrides,
            max_restarts=plan.safety.max_restarts,
            pace=self.pace,
            record=self._restarted,
        )
        self._bound = 0
        #: Entries acted on that no listing found (restarted incompatible ones).
        self.found_extra = 0
        #: An earlier try finished listing and wrote its skipped entries to the report.
        self._skips_written = False
        self._started = time.monotonic()

    # -- the walk ---------------------------------------------------------------------------

    def run(self) -> RedriveReport:
        """Plan, act to the end, the cap, a trip or a stop request; the report says which."""
        state = self.checkpoint.load()
        self._bound = int(state["bound"]) if state else self.now_ms()
        if state:
            self._restore(state)
        # Entries earlier tries decided on and will not be listed again as candidates: what
        # they sent (the ledger) and, listing by filters, what vanished as they acted.
        known_before = len(self.ledger)
        if not self.plan.filters.dlq_ids:
            known_before += self.report.counts.get("vanished", 0)
        try:
            self._settle_in_flight(int(state.get("settled", 0)) if state else self.ledger.chunks)
            try:
                listing = self._list()
            except ListingStopped:
                self.report.stopped = Stop.STOPPED.value
                log.info("Stopped while listing; nothing was acted on by this try.")
                return self.report
            if not self.plan.dry_run:
                self._save()  # from here on a retry knows nothing in the ledger is settled
            self.report.found = known_before + listing.listed
            skipped = sum(n for k, n in self.report.counts.items() if k.startswith("skipped_"))
            self.report.selected = self.report.found - skipped
            self._metric("matched", listing.listed)
            if self.plan.dry_run:
                self._preview(listing.items)
            else:
                self._act_all(deque(listing.items))
        finally:
            self.sink.flush()
        self.report.found += self.found_extra
        if self.report.stopped == Stop.DONE:
            self.checkpoint.clear()  # the ledger stays: a cleared task never sends an id twice
        expiring = self.report.counts.get("expiring_before_next_run", 0)
        if expiring:
            log.warning(
                "%d entr%s left in the DLQ expire before the next run; see 'expiring'.",
                expiring,
                "y" if expiring == 1 else "ies",
            )
        log.info("%s", self.report.summary())
        return self.report

    def _list(self) -> Listing:
        builder = PlanBuilder(
            self.client,
            judge=self._judge,
            on_skip=self._skipped,
            on_vanished=lambda dlq_id: self._record(
                Result(_bare(dlq_id), Outcome.VANISHED, reason="not in the DLQ any more")
            ),
            exclude=self.ledger,
            page_size=self.plan.pacing.page_size,
            max_entries=self.plan.max_entries,
            keep_excerpt=self.plan.dry_run,
            pace=self.pace,
            should_stop=self.should_stop,
        )
        if self.plan.filters.dlq_ids:
            return builder.by_ids(self.plan.filters.dlq_ids)
        bounded = self.plan.filters.to_date
        to_date = self._bound if bounded is None else min(bounded, self._bound)
        return builder.by_filters(replace(self.plan.filters, to_date=to_date))

    def _act_all(self, queue: deque[Item]) -> None:
        stop = Stop.DONE
        try:
            while queue:
                stop = self._why_stop()
                if stop is not Stop.DONE:
                    break
                size = min(self.actor.batch_limit, len(queue), *self._rooms())
                batch = [queue.popleft() for _ in range(size)]
                runs = self._act_batch(batch)
                self._save()
                self.gate.after_batch(runs, last=not queue)
                self.report.safety.update(self.gate.seen)
            if stop in (Stop.DONE, Stop.MAX_RESUMES) and not self.gate.canary_done:
                self.gate.judge_canary()  # fewer entries than the canary's size
        except Tripped as trip:
            stop = trip.why
            self.report.safety.update(self.gate.seen)
            if trip.why is not Stop.STOPPED:
                self._trip(trip.why, trip.seen)
        finally:
            self._metric("failed_again", self.gate.failed_again)
            self.gate.failed_again = 0
        self.report.stopped = stop.value
        for item in queue:
            self._left(item, count_key(Outcome.LEFT, self.action, stop.value))
        self._save()
        log.info(
            "Stopped (%s) after %d entr%s.",
            stop.value,
            len(self.ledger),
            "y" if len(self.ledger) == 1 else "ies",
        )

    def _why_stop(self) -> Stop:
        if self.should_stop():
            return Stop.STOPPED
        if self.plan.max_resumes is not None and len(self.ledger) >= self.plan.max_resumes:
            return Stop.MAX_RESUMES
        return Stop.DONE

    def _rooms(self) -> list[int]:
        rooms = []
        if self.plan.max_resumes is not None:
            rooms.append(self.plan.max_resumes - len(self.ledger))
        canary = self.gate.canary_room()
        if canary:
            rooms.append(canary)
        return rooms

    def _act_batch(self, batch: Sequence[Item]) -> list[tuple[str, int]]:
        """Act on one batch (one call per label set); record every entry; the new runs."""
        extra = tuple(self.plan.overrides.label) + (
            (self.plan.audit_label,) if self.plan.audit_label else ()
        )
        runs: list[tuple[str, int]] = []
        groups = label_groups(batch, self.plan.overrides, extra, self.plan.label_mode)
        for overrides, items in groups:
            for result in self.actor.act(items, overrides):
                self._record(result)
                if result.run is not None and result.run.workflow_created_at is not None:
                    runs.append((result.run.workflow_run_id, result.run.workflow_created_at))
            for run in self.actor.unpaired:
                self.report.add_run(None, run.workflow_run_id, run.workflow_created_at, None)
                if run.workflow_created_at is not None:
                    runs.append((run.workflow_run_id, run.workflow_created_at))
            self.actor.unpaired.clear()
            refusal, self.actor.refusal = self.actor.refusal, None
            if refusal is not None:
                self._save()
                raise refusal
        self.report.pages += 1
        self._progress(len(batch))
        return runs

    # -- what happened to each entry --------------------------------------------------------

    def _restart_incompatible(self, failed: list[dict[str, Any]]) -> set[str]:
        if not self.plan.safety.restart_incompatible or not failed:
            return set()
        return self.restarts.handle(failed)

    def _restarted(self, record: dict[str, Any]) -> None:
        """A failed-again run's NEW entry, restarted (or not) for a changed step."""
        self._count(record["event"])
        self.found_extra += 1  # an entry this walk did not list: it came after the walk began
        if record.get("new_workflow_run_id"):
            run_id, at = record["new_workflow_run_id"], record["new_workflow_created_at"]
            self.report.add_run(record["dlq_id"], run_id, at, record["paired_by"])
        self.sink.write(record)

    def _record(self, result: Result) -> None:
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
        key = count_key(result.outcome, self.action)
        if result.outcome is Outcome.LEFT:
            self._left(result.item, count_key(Outcome.LEFT, self.action, "refused"), **extra)
            return
        self._count(key)
        self.sink.write(result.item.record(key, **extra))

    def _judge(self, message: DLQMessage) -> str | None:
        return self.plan.selection.skip_reason(message) or self._label_problem(message)

    def _skipped(self, message: DLQMessage, reason: str) -> None:
        # A retry lists the same window again: what it skips, an earlier try that finished
        # listing has skipped and written already (no entry can appear below the bound).
        self._left(Item.of(message), "skipped_" + reason, write=not self._skips_written)

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

    def _left(self, item: Item, event: str, write: bool = True, **extra: Any) -> None:
        """Count an entry that stays in the DLQ, and say if it expires before the next run."""
        retention = self.plan.retention
        if retention is not None and item.created_at is not None:
            expires = item.created_at + retention.retention_ms
            extra["expires_at"] = expires
            if expires <= self.now_ms() + retention.horizon_ms:
                extra["expiring_before_next_run"] = True
                self._count("expiring_before_next_run")
                self.report.add_expiring(
                    {"dlq_id": item.dlq_id, "expires_at": expires, "why": event}
                )
        self._count(event)
        if write:
            self.sink.write(item.record(event, **extra))

    def _preview(self, items: list[Item]) -> None:
        room = len(items) if self.plan.max_resumes is None else self.plan.max_resumes
        shown, rest = items[:room], items[room:]
        for item in shown:
            self.report.groups[(item.workflow_url or "", item.response_status)] += 1
            self._left(item, count_key(Outcome.WOULD, self.action))
        for item in rest:
            self._left(item, count_key(Outcome.LEFT, self.action, Stop.MAX_RESUMES.value))
        self.report.stopped = (Stop.MAX_RESUMES if rest else Stop.DONE).value
        if shown:
            log.info("Would %s:\n%s", self.action.value, format_table(shown, self.describe_time))

    def _trip(self, why: Stop, seen: dict[str, Any]) -> None:
        self._count(f"tripped_{why.value}")
        self.sink.write({"event": "tripped", "by": why.value, **seen})
        key = self.plan.overrides.flow_control_key
        if self.plan.safety.pause_on_trip and key:
            self.pause(key, why.value)

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

    # -- bookkeeping ------------------------------------------------------------------------

    def _count(self, key: str, n: int = 1) -> None:
        self.report.counts[key] += n
        self._metric(key, n)

    def _metric(self, key: str, n: int) -> None:
        if self.metrics is not None and n:
            self.metrics(key, n)

    def _progress(self, n: int) -> None:
        self.sink.flush()
        elapsed = max(time.monotonic() - self._started, 1e-6)
        log.info(
            "batch %d: %d entr%s (%d sent so far, %.1f/s)",
            self.report.pages,
            n,
            "y" if n == 1 else "ies",
            len(self.ledger),
            len(self.ledger) / elapsed,
        )

    def _save(self) -> None:
        self.checkpoint.save(
            {
                "bound": self._bound,
                "settled": self.ledger.chunks,
                "probe": self.probe.to_state(),
                "batch_limit": self.actor.batch_limit,
                "canary": self.gate.to_state(),
                "report": self._report_state(),
            }
        )

    def _report_state(self) -> dict[str, Any]:
        """What a retry keeps: what was done. Listing counts are the next listing's (named
        ids that vanished are found vanished again)."""
        state = self.report.to_state()
        listing_keys: tuple[str, ...] = ("skipped_", "expiring_", "left_", "would_")
        if self.plan.filters.dlq_ids:
            listing_keys += ("vanished",)
        state["counts"] = {
            k: n for k, n in state["counts"].items() if not k.startswith(listing_keys)
        }
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        self.report.restore(state.get("report", {}))
        self.probe = self.actor.probe = LeaveProbe(**state.get("probe", {}))
        self.actor.batch_limit = int(state.get("batch_limit", self.actor.batch_limit))
        self.gate.restore(state.get("canary") or {})
        # Every checkpoint is written after a listing finished (and wrote its skips).
        self._skips_written = True
        self.restarts.done = int(self.report.counts.get("restarted_incompatible", 0))
        log.info(
            "Going on from a checkpoint: %d entr%s sent by earlier tries.",
            len(self.ledger),
            "y" if len(self.ledger) == 1 else "ies",
        )

    def _settle_in_flight(self, settled: int) -> None:
        """Ids an earlier try wrote to the ledger but did not live to record."""
        in_flight = self.ledger.sent_since(settled)
        if not in_flight or self.plan.dry_run:
            return
        log.warning(
            "%d entr%s were in flight when an earlier try died.",
            len(in_flight),
            "y" if len(in_flight) == 1 else "ies",
        )
        for result in self.actor.settle([_bare(i) for i in in_flight]):
            self._record(result)
        self._save()


def _bare(dlq_id: str) -> Item:
    return Item.build(dlq_id)

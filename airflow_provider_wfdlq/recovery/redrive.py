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
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from airflow_provider_wfdlq.client import (
    DLQFilters,
    DLQMessage,
    Overrides,
    ValidationError,
    WorkflowDLQClient,
)
from airflow_provider_wfdlq.client.validation import LABEL_PATTERN, check_labels
from airflow_provider_wfdlq.recovery.actions import ActionSpec, HousekeepingActor, spec_of
from airflow_provider_wfdlq.recovery.actor import (
    Answer,
    BatchActor,
    Call,
    LeaveProbe,
    Result,
    label_groups,
)
from airflow_provider_wfdlq.recovery.checkpoint import Checkpoint, Ledger, MemoryStore, StateStore
from airflow_provider_wfdlq.recovery.gate import SafetyGate, Tripped
from airflow_provider_wfdlq.recovery.idset import IdSet
from airflow_provider_wfdlq.recovery.incompatible import IncompatibleRestarts
from airflow_provider_wfdlq.recovery.inflight import InFlight
from airflow_provider_wfdlq.recovery.pacing import Pacer, Pacing
from airflow_provider_wfdlq.recovery.plan import (
    DEFAULT_MAX_ENTRIES,
    Item,
    Listing,
    ListingError,
    ListingStopped,
    PlanBuilder,
    Worklist,
)
from airflow_provider_wfdlq.recovery.recorder import Recorder
from airflow_provider_wfdlq.recovery.report import NullSink, RedriveReport, ReportSink
from airflow_provider_wfdlq.recovery.retention import Retention
from airflow_provider_wfdlq.recovery.runs import RunOutcome, follow_runs
from airflow_provider_wfdlq.recovery.safety import SafetyPolicy
from airflow_provider_wfdlq.recovery.selection import ErrorSelection
from airflow_provider_wfdlq.recovery.states import Action, Outcome, Stop, count_key
from airflow_provider_wfdlq.recovery.tries import TryState

LABEL_MODES = ("append", "replace")
#: The most extra listing passes after acting while listing (:meth:`Redrive._act_on_missed`).
MAX_PASSES = 5

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
            accepted = f"one of {[a.value for a in Action]}"
            raise ValidationError("action", self.action, accepted) from None
        refused = self.spec.refusals(
            overrides=self.overrides,
            labels=self.audit_label is not None,
            safety_default=self.safety == SafetyPolicy(),
        )
        if refused is not None:
            field_, value = refused
            raise ValidationError(field_, value, f"nothing: {self.action} makes no new run")
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

    @cached_property
    def spec(self) -> ActionSpec:
        """What the action is (:mod:`recovery.actions`)."""
        return spec_of(Action(self.action))

    @cached_property
    def effective_selection(self) -> ErrorSelection:
        """The selection: "do not retry" (489) is about running again, so an action that
        makes no run (housekeeping) does not skip 489s; its other rules all apply."""
        if self.spec.makes_run or self.selection.include_non_retryable:
            return self.selection
        return replace(self.selection, include_non_retryable=True)

    def describe(self) -> dict[str, Any]:
        """The policies in force, in words, for the report."""
        labels = list(self.overrides.label) + ([self.audit_label] if self.audit_label else [])
        return {
            "selection": self.effective_selection.describe(),
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
        self.client, self.plan, self.action = client, plan, Action(plan.action)
        self.should_stop, self.now_ms = should_stop, now_ms
        store = store if store is not None else MemoryStore()
        self.ledger = Ledger(store)
        self.report = RedriveReport(action=self.action.value, dry_run=plan.dry_run)
        self.report.policies = plan.describe()
        if max_runs_in_result is not None:
            self.report.max_runs = max_runs_in_result
        self.recorder = Recorder(
            self.report,
            sink or NullSink(),
            self.action,
            retention=plan.retention,
            now_ms=now_ms,
            metrics=metrics,
            describe_time=describe_time,
        )
        self.pace = Pacer(plan.pacing.requests_per_second, sleep=sleep, monotonic=monotonic)
        spec = plan.spec
        self.actor = (BatchActor if spec.makes_run else HousekeepingActor)(
            client,
            self.action,
            self.ledger,
            probe=LeaveProbe(),
            exact=plan.pacing.exact_pairing,
            concurrency=plan.pacing.concurrency,
            batch_limit=plan.pacing.batch_size,
            pace=self.pace,
            **({} if spec.makes_run else {"keep": self.recorder.entries}),
        )
        self.restarts = IncompatibleRestarts(
            client,
            self.ledger,
            plan.overrides,
            max_restarts=plan.safety.max_restarts,
            pace=self.pace,
            record=self.recorder.restarted,
        )
        self.gate = _gate(self, follow=follow, sleep=sleep, monotonic=monotonic)
        limit = plan.pacing.concurrency if plan.pacing.exact_pairing else plan.pacing.in_flight
        if not spec.makes_run:
            limit = 1  # housekeeping calls go one at a time, on the task's thread
        self.out = InFlight(self.actor.send, limit)
        self._sent_while_listing = 0
        self._first_sent_while_listing: str | None = None
        self._window = plan.filters
        self._queue = Worklist()
        self._extra = tuple(plan.overrides.label) + (
            (plan.audit_label,) if plan.audit_label else ()
        )
        self.tries = TryState(
            Checkpoint(store),
            self.ledger,
            actor=self.actor,
            gate=self.gate,
            recorder=self.recorder,
            restarts=self.restarts,
            by_ids=bool(plan.filters.dlq_ids),
        )

    # -- the walk ---------------------------------------------------------------------------

    def run(self) -> RedriveReport:
        """Plan, act to the end, the cap, a trip or a stop request; the report says which."""
        self.tries.restore(self.now_ms())
        # Entries earlier tries decided on and will not be listed again as candidates: what
        # they sent (the ledger) and, listing by filters, what vanished as they acted.
        known_before = len(self.ledger)
        if not self.plan.filters.dlq_ids:
            known_before += self.report.counts.get("vanished", 0)
        try:
            if not self.plan.dry_run:
                self.tries.settle_in_flight()
            try:
                listing = self._list()
            except ListingStopped as stopped:
                self._stopped_while_listing(known_before, stopped.listing)
                return self.report
            except ListingError as exc:
                if not self._sent_while_listing:
                    raise ListingError(f"{exc}; nothing was acted on") from exc
                self._drain()
                self.tries.save(listed=False)
                raise ListingError(f"{exc}; what was acted on while listing is recorded") from exc
            if not self.plan.dry_run:
                self.tries.save(pending=self.out.pending_ids())  # a retry knows what is settled
            self.report.found = known_before + listing.listed
            skipped = sum(n for k, n in self.report.counts.items() if k.startswith("skipped_"))
            self.report.selected = self.report.found - skipped
            self.recorder.metric("matched", listing.listed)
            if self.plan.dry_run:
                self.recorder.preview(listing.items.drain(), self.plan.max_resumes)
            else:
                self._act_all(listing.items)
                if self.report.stopped == Stop.DONE:
                    self._act_on_missed(listing.seen)
        finally:
            self.out.close()
            self.recorder.sink.flush()
        self.report.found += self.recorder.found_extra
        if self.report.stopped == Stop.DONE:
            self.tries.clear()
        expiring = self.report.counts.get("expiring_before_next_run", 0)
        if expiring:
            log.warning("%d entries left in the DLQ expire before the next run.", expiring)
        log.info("%s", self.report.summary())
        return self.report

    @property
    def overlapping(self) -> bool:
        """Act while listing? Only with calls in flight, and when nothing needs the whole
        plan first: ``max_resumes`` and the canary take the oldest of it, the breaker
        judges in created-at order, named ids are read one by one."""
        plan = self.plan
        return (
            plan.pacing.in_flight > 1
            and plan.spec.makes_run
            and not plan.pacing.exact_pairing
            and not plan.dry_run
            and not plan.filters.dlq_ids
            and plan.max_resumes is None
            and plan.safety.canary is None
            and plan.safety.breaker_max_failure_ratio is None
        )

    def _list(self) -> Listing:
        overlap = self.overlapping
        builder = PlanBuilder(
            self.client,
            judge=lambda message: judge(self.plan, message),
            on_skip=lambda message, reason: self.recorder.skipped(Item.of(message), reason),
            on_vanished=lambda dlq_id: self.recorder.record(
                Result(Item.build(dlq_id), Outcome.VANISHED, reason="not in the DLQ any more")
            ),
            exclude=self.ledger,
            page_size=self.plan.pacing.page_size,
            max_entries=self.plan.max_entries,
            keep_excerpt=self.plan.dry_run,
            pace=self.pace,
            should_stop=self.should_stop,
            on_page=self._act_while_listing if overlap else lambda items: None,
            prefetch=overlap,
            while_waiting=self._act_until,
        )
        if self.plan.filters.dlq_ids:
            return builder.by_ids(self.plan.filters.dlq_ids)
        bounded, bound = self.plan.filters.to_date, self.tries.bound
        to_date = bound if bounded is None else min(bounded, bound)
        window = replace(self.plan.filters, to_date=to_date)
        self._window = window
        if not overlap:
            return builder.by_filters(window)
        self.recorder.held_skips = []
        listing = builder.by_filters(window)
        self.recorder.release_skips()
        return listing

    def _second_pass(self, seen: IdSet) -> Listing | None:
        """After acting while listing, where entries left the DLQ as it was paged: a cursor
        that counts places (Upstash does not say it does not) may have stepped over some.
        A second listing, acting on nothing while it lists, finds them; it is short, since
        what was acted on has left.

        Whether entries left is read from the first entry acted on while listing, after the
        whole walk: still there, then nothing acted on later left earlier (inferred: a
        server removes acted entries at once, late, or never, not out of order), so no page
        was shifted and no second pass is needed (the ``keep_resumed`` reading)."""
        first = self._first_sent_while_listing
        if first is None or self.actor.present(first):
            return None
        builder = PlanBuilder(
            self.client,
            judge=lambda message: judge(self.plan, message),
            on_skip=lambda message, reason: self.recorder.skipped(Item.of(message), reason),
            on_vanished=lambda dlq_id: None,
            exclude=self.ledger,
            page_size=self.plan.pacing.page_size,
            max_entries=self.plan.max_entries,
            pace=self.pace,
            should_stop=self.should_stop,
        )
        listing = builder.by_filters(self._window, seen=seen)
        if listing.listed:
            log.warning("A second pass found %d entries the first missed.", listing.listed)
        return listing

    def _act_while_listing(self, queue: Worklist) -> None:
        """After each page: send the full batches listed so far, read what came back. A
        checkpoint goes before the first call and after each answer, so a retry knows
        which calls were out."""
        if not self._sent_while_listing:
            self.tries.save(listed=False)
        self._queue = queue
        self._send_more(queue, whole=False)
        self._read_while_listing(self.out.answered())

    def _act_until(self, pages: list[Future[Any]]) -> None:
        """While list calls are out: read each answer as it comes, send the next batch."""
        while self.out and not any(page.done() for page in pages):
            self._read_while_listing(self.out.answered(block=True, until=pages))
            self._send_more(self._queue, whole=False)

    def _read_while_listing(self, answered: list[tuple[Call, Answer]]) -> None:
        if answered:
            self._read(answered)
            if self.actor.refusal is not None:
                self._refuse(listed=False)
            self.tries.save(pending=self.out.pending_ids(), listed=False)

    def _act_on_missed(self, seen: IdSet) -> None:
        """Pass after pass until one is conclusive, at most :data:`MAX_PASSES`.

        A pass that finds nothing new is conclusive when no entry this task acted on was
        still there to leave while it paged (a server that removes acted entries late: one
        leaving mid-pass steps a place-counting cursor over others). That holds when it saw
        none, or when the next pass, also finding nothing new, sees the very same ones:
        nothing is acted on between the two, so none of them left during the first, and
        one left behind the cursor would have been shown by it and missing from the next
        (entries the server did not act on stay, and would keep every pass inconclusive)."""
        still: tuple[int, int] | None = None  # ours shown by a pass that found nothing new
        for _ in range(MAX_PASSES):
            try:
                missed = self._second_pass(seen)
            except ListingStopped:
                self.report.stopped = Stop.STOPPED.value
                return
            if missed is None:
                return
            shown = (missed.sent_shown, missed.sent_digest)
            if not missed.listed and (not missed.sent_shown or shown == still):
                return
            still = None if missed.listed else shown
            if missed.listed:
                self.report.found += missed.listed
                self.report.selected += len(missed.items)
                self._act_all(missed.items)
                if self.report.stopped != Stop.DONE:
                    return
        log.warning(
            "%d listing passes in a row found entries the ones before missed, or saw entries "
            "this task acted on leave; what is left stays in the DLQ for the next run.",
            MAX_PASSES,
        )

    def _stopped_while_listing(self, known_before: int, listing: Listing | None) -> None:
        self.report.stopped = Stop.STOPPED.value
        if not self.out and not self._sent_while_listing:
            log.info("Stopped while listing; nothing was acted on by this try.")
            return
        self._drain()
        if listing is not None:
            self.report.found = known_before + listing.listed
            for item in listing.items.drain():
                self.recorder.left(item, count_key(Outcome.LEFT, self.action, Stop.STOPPED.value))
        self.recorder.release_skips(write=False)  # the retry lists again and writes them
        self.tries.save(listed=False)
        log.info("Stopped while listing, after %d sent.", len(self.ledger))

    def _act_all(self, queue: Worklist) -> None:
        stop = Stop.DONE
        try:
            while queue or self.out:
                stop = self._why_stop()
                if stop is Stop.DONE:
                    self._send_more(queue, whole=True)
                elif not self.out:
                    break
                runs = self._read(self.out.answered(block=True))
                if self.actor.refusal is not None:
                    self._refuse(listed=True)
                self.tries.save(pending=self.out.pending_ids())
                self.gate.after_batch(runs, last=not queue and not self.out)
                self.report.safety.update(self.gate.seen)
            if stop in (Stop.DONE, Stop.MAX_RESUMES) and not self.gate.canary_done:
                self.gate.judge_canary()  # fewer entries than the canary's size
        except Tripped as trip:
            stop = trip.why
            self._drain()
            self.report.safety.update(self.gate.seen)
            if trip.why is not Stop.STOPPED:
                self._trip(trip.why, trip.seen)
        finally:
            self.recorder.metric("failed_again", self.gate.failed_again)
            self.gate.failed_again = 0
        self.report.stopped = stop.value
        for item in queue.drain():
            self.recorder.left(item, count_key(Outcome.LEFT, self.action, stop.value))
        self.tries.save()
        log.info("Stopped (%s) after %d sent.", stop.value, len(self.ledger))

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

    def _send_more(self, queue: Worklist, *, whole: bool) -> None:
        """Send batches while calls may go out: ``whole`` once the plan is complete; while
        listing, full batches only. The canary's batch goes alone (its verdict comes first);
        exact pairing sends a batch's calls together and waits for all of them."""
        alone = not self.gate.canary_done or self.plan.pacing.exact_pairing
        while queue and self.out.room > 0 and not (alone and self.out):
            if self._why_stop() is not Stop.DONE:
                return
            size = min(self.actor.batch_limit, len(queue), *self._rooms())
            if size < 1 or (not whole and size < self.actor.batch_limit):
                return
            batch = queue.take(size)
            self.report.pages += 1
            if not whole:
                self._sent_while_listing += 1
                if self._first_sent_while_listing is None:
                    self._first_sent_while_listing = batch[0].dlq_id
            for overrides, items in label_groups(
                batch, self.plan.overrides, self._extra, self.plan.label_mode
            ):
                for call in self.actor.prepare(items, overrides):
                    self.out.submit(call)
            self.recorder.progress(len(batch), len(self.ledger))

    def _read(self, answered: list[tuple[Call, Answer]]) -> list[tuple[str, int]]:
        """Record what became of each entry of the answered calls; the new runs."""
        runs: list[tuple[str, int]] = []
        for call, answer in answered:
            for result in self.actor.interpret(call, answer):
                self.recorder.record(result)
                if result.run is not None and result.run.workflow_created_at is not None:
                    runs.append((result.run.workflow_run_id, result.run.workflow_created_at))
            for run in self.actor.unpaired:
                self.report.add_run(None, run.workflow_run_id, run.workflow_created_at, None)
                if run.workflow_created_at is not None:
                    runs.append((run.workflow_run_id, run.workflow_created_at))
            self.actor.unpaired.clear()
        return runs

    def _drain(self) -> None:
        """Read every call still out (a stop, a trip, a refusal): they may have acted."""
        while self.out:
            self._read(self.out.answered(block=True))

    def _refuse(self, *, listed: bool) -> None:
        """The server refused a call: record the calls still out, save, raise the refusal."""
        self._drain()
        refusal, self.actor.refusal = self.actor.refusal, None
        self.tries.save(listed=listed)
        assert refusal is not None
        raise refusal

    # -- safety -----------------------------------------------------------------------------

    def restart_incompatible(self, failed: list[dict[str, Any]]) -> set[str]:
        """The gate's hook for runs that failed again: those restarted for a changed step."""
        if not self.plan.safety.restart_incompatible or not failed:
            return set()
        return self.restarts.handle(failed)

    def _trip(self, why: Stop, seen: dict[str, Any]) -> None:
        self.recorder.count(f"tripped_{why.value}")
        self.recorder.event({"event": "tripped", "by": why.value, **seen})
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
        self.recorder.event({"event": "paused", "flow_control_key": key, "by": why})


def _gate(
    redrive: Redrive,
    *,
    follow: Callable[..., RunOutcome],
    sleep: Callable[[float], None],
    monotonic: Callable[[], float],
) -> SafetyGate:
    plan = redrive.plan
    rps = plan.pacing.requests_per_second
    return SafetyGate(
        plan.safety,
        redrive.client,
        follow=follow,
        # Polling the canary obeys the request pacing too.
        poll_interval=max(plan.safety.poll_interval, 1.0 / rps if rps else 0.0),
        sleep=sleep,
        monotonic=monotonic,
        should_stop=redrive.should_stop,
        pace=redrive.pace,
        active=not plan.dry_run,
        on_failed=redrive.restart_incompatible,
    )


def judge(plan: RedrivePlan, message: DLQMessage) -> str | None:
    """None to act on ``message``, else why it is skipped: its error (selection), or, in
    append mode, own labels that cannot be sent back (a comma or space would fail the call)."""
    reason = plan.effective_selection.skip_reason(message)
    if reason is not None:
        return reason
    if (reason := plan.spec.skip_reason(message)) is not None:
        return reason
    appending = plan.label_mode == "append" and (plan.audit_label or plan.overrides.label)
    if appending and any(not LABEL_PATTERN.fullmatch(label) for label in message.labels):
        log.warning("%s: labels %s cannot be sent back; left.", message.dlq_id, message.labels)
        return "unsendable_label"
    return None

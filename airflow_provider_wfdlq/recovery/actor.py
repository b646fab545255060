"""Step two of a redrive: act on a batch of planned entries, and say what became of each.

What it relies on, and what it does where Upstash is silent:

- **At most once (I2).** Every id goes into the :class:`Ledger` before the call that
  names it goes out, and an id in the ledger is never sent again. The client re-sends an
  action only after an outcome that provably did not act (429, an answered 503, a
  connection never made); anything else raises ``OutcomeUnknownError``. A refusal (4xx)
  acted on nothing (HTTP's meaning; Upstash does not say otherwise), so its ids are
  released from the ledger.
- **Lost answers.** Resolved by what the DLQ shows only where this walk has seen the
  server remove a resumed entry at once (:class:`LeaveProbe`); otherwise the entries are
  reported ``answer_lost_unknown`` with a loud warning.
- **Pairs (I3).** A dlqId -> run pair is a fact only when one id went in the call
  (``single_id``); in a bulk call the pairs follow the answer's order and say so
  (``answer_order``). ``exact`` sends one id per call, with bounded concurrency.
- **Fewer runs than ids.** The server acted on only some of the ids (a per-call cap, or
  a cursor in the answer): which ones is resolved by the DLQ as above, never by sending
  again; later batches are no larger than what the server took.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from airflow_provider_wfdlq.client import (
    APIError,
    BulkResult,
    DLQFilters,
    NotFoundError,
    OutcomeUnknownError,
    Overrides,
    ResumedRun,
    ServerError,
    WorkflowDLQClient,
)
from airflow_provider_wfdlq.recovery.checkpoint import Ledger
from airflow_provider_wfdlq.recovery.plan import Item
from airflow_provider_wfdlq.recovery.states import Action, Outcome, PairedBy

log = logging.getLogger("airflow_provider_wfdlq.recovery")

#: Upstash's docs: a bulk call acts on at most 50 runs per request.
MAX_BATCH = 50
#: The leave probe reads back after the first calls with a clear answer, then every Nth.
PROBE_FIRST = 3
PROBE_EVERY = 20


@dataclass(frozen=True, slots=True)
class Result:
    """What became of one entry the actor was given."""

    item: Item
    outcome: Outcome
    run: ResumedRun | None = None
    paired_by: PairedBy | None = None
    reason: str | None = None


class LeaveProbe:
    """Has this walk seen the server remove a resumed entry from the DLQ at once?

    After each call with a clear answer, one entry it acted on is read back. One that is
    still there (resumed entries stay, or leave late) latches "not proven" for the whole
    walk: lost answers are then never resolved by what the DLQ shows.
    """

    def __init__(self, seen_leave: bool = False, seen_stay: bool = False) -> None:
        self.seen_leave, self.seen_stay = seen_leave, seen_stay

    @property
    def proven(self) -> bool:
        return self.seen_leave and not self.seen_stay

    def saw(self, present: bool) -> None:
        if present:
            if not self.seen_stay:
                log.warning(
                    "An entry resumed with a clear answer is still in the DLQ: this server "
                    "keeps resumed entries (or removes them late). Lost answers will not be "
                    "resolved by what the DLQ shows."
                )
            self.seen_stay = True
        else:
            self.seen_leave = True

    def to_state(self) -> dict[str, bool]:
        return {"seen_leave": self.seen_leave, "seen_stay": self.seen_stay}


@dataclass(slots=True)
class Call:
    """One action call: its ids are in the ledger (chunk ``chunk``), its answer is not read.

    ``single``: one id by the single endpoint (the pair is a fact). ``probe``: after a clear
    answer, read one entry it acted on back (does the server remove what it acted on?)."""

    items: list[Item]
    overrides: Overrides
    chunk: int
    single: bool
    probe: bool = False


@dataclass(slots=True)
class Answer:
    """What came back for a :class:`Call`: the server's answer or the error, and the
    probe's read-back (None: not read, or the read failed)."""

    value: BulkResult | ResumedRun | None = None
    error: Exception | None = None
    present: bool | None = None


class BatchActor:
    """Acts on batches by ``dlqIds`` with the ledger; one object per walk.

    A call goes in three steps, so that calls can overlap and every write to the durable
    state stays on the walk's own thread: :meth:`prepare` (ids into the ledger, on the
    walk's thread), :meth:`send` (HTTP only; any thread), :meth:`interpret` (results, on
    the walk's thread). :meth:`act` does all three in turn."""

    def __init__(
        self,
        client: WorkflowDLQClient,
        action: Action,
        ledger: Ledger,
        *,
        probe: LeaveProbe,
        exact: bool = False,
        concurrency: int = 4,
        batch_limit: int = MAX_BATCH,
        pace: Callable[[], None] = lambda: None,
    ) -> None:
        self.client = client
        self.action = action
        self.ledger = ledger
        self.probe = probe
        self.exact = exact
        self.concurrency = concurrency
        #: Lowered when the server acts on fewer ids than a call names.
        self.batch_limit = batch_limit
        self.pace = pace
        #: Runs the server made that cannot be paired with an entry (still followable).
        self.unpaired: list[ResumedRun] = []
        #: A refusal, raised by the walk once the calls out with it are recorded.
        self.refusal: Exception | None = None
        self._calls = 0

    # -- one call, in three steps -----------------------------------------------------------

    def act(self, items: Sequence[Item], overrides: Overrides) -> list[Result]:
        """Act on ``items`` (at most :attr:`batch_limit`) with these overrides, now."""
        if not items:
            return []
        calls = self.prepare(items, overrides)
        if len(calls) > 1 and self.concurrency > 1:
            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                answers = list(pool.map(self.send, calls))
        else:
            answers = [self.send(call) for call in calls]
        return [
            r
            for call, answer in zip(calls, answers, strict=True)
            for r in self.interpret(call, answer)
        ]

    def prepare(self, items: Sequence[Item], overrides: Overrides) -> list[Call]:
        """Write the ids to the ledger (one chunk) and make the calls that will name them:
        one bulk call, or one call per id with exact pairing."""
        chunk = self.ledger.record([i.dlq_id for i in items])
        if self.exact or len(items) == 1:
            calls = [Call([item], overrides, chunk, single=True) for item in items]
        else:
            calls = [Call(list(items), overrides, chunk, single=False)]
        for call in calls:
            self._calls += 1
            due = self._calls <= PROBE_FIRST or self._calls % PROBE_EVERY == 0
            call.probe = due and not self.probe.seen_stay
        return calls

    def send(self, call: Call) -> Answer:
        """The HTTP part of a call (thread-safe): the answer or the error, never raised."""
        self.pace()
        try:
            if call.single:
                single = self.client.resume if self.action is Action.RESUME else self.client.restart
                run = single(call.items[0].dlq_id, call.overrides)
                answer = Answer(run)
            else:
                bulk = (
                    self.client.resume_bulk
                    if self.action is Action.RESUME
                    else self.client.restart_bulk
                )
                ids = tuple(i.dlq_id for i in call.items)
                result = bulk(DLQFilters(dlq_ids=ids), call.overrides)
                answer = Answer(result)
        except Exception as exc:  # read on the walk's thread (interpret)
            return Answer(error=exc)
        if call.probe and _clear(call, answer.value):
            try:
                answer.present = self.present(call.items[0].dlq_id)
            except Exception as exc:  # the call acted; its results must still be recorded
                log.warning("Could not read %s back: %s", call.items[0].dlq_id, exc)
        return answer

    def interpret(self, call: Call, answer: Answer) -> list[Result]:
        """What became of each entry of ``call``, from its answer (on the walk's thread)."""
        if answer.present is not None:
            self.probe.saw(answer.present)
        if call.single:
            return [self._single(call, answer)]
        return self._bulk(call, answer)

    def _bulk(self, call: Call, answer: Answer) -> list[Result]:
        items, exc = call.items, answer.error
        if isinstance(exc, NotFoundError):
            # Refused as a whole: some entry left between listing and now. Nothing acted.
            self.ledger.release([i.dlq_id for i in items])
            return self._after_refusal(items, call.overrides)
        if isinstance(exc, (OutcomeUnknownError, ServerError)) and not _answered_503(exc):
            return self._resolve(items, f"answer lost ({type(exc).__name__})")
        if isinstance(exc, APIError):
            return self._refused(items, exc)
        if exc is not None:
            raise exc
        assert isinstance(answer.value, BulkResult)
        runs = list(answer.value.runs)
        if len(runs) == len(items) and not answer.value.cursor:
            return [
                Result(item, Outcome.ACTED, run, PairedBy.ANSWER_ORDER)
                for item, run in zip(items, runs, strict=True)
            ]
        return self._partial(items, runs)

    def _single(self, call: Call, answer: Answer) -> Result:
        """One id, one call: the pair is a fact."""
        item, exc = call.items[0], answer.error
        if isinstance(exc, NotFoundError):
            self.ledger.release([item.dlq_id])
            return Result(item, Outcome.VANISHED, reason="not in the DLQ any more")
        if isinstance(exc, (OutcomeUnknownError, ServerError)) and not _answered_503(exc):
            return self._resolve([item], f"answer lost ({type(exc).__name__})")[0]
        if isinstance(exc, APIError):
            return self._refused([item], exc)[0]
        if exc is not None:
            raise exc
        assert isinstance(answer.value, ResumedRun)
        return Result(item, Outcome.ACTED, answer.value, PairedBy.SINGLE_ID)

    # -- what the answer leaves open --------------------------------------------------------

    def _refused(self, items: Sequence[Item], exc: Exception) -> list[Result]:
        """The server said no to the whole call (and retries did not help): it acted on
        nothing. The ids leave the ledger; the walk raises ``exc`` once the calls out with
        this one are recorded."""
        self.ledger.release([i.dlq_id for i in items])
        if self.refusal is None:
            self.refusal = exc
        return [Result(item, Outcome.LEFT, reason=f"refused: {exc}") for item in items]

    def _after_refusal(self, items: list[Item], overrides: Overrides) -> list[Result]:
        """A bulk 404: read each entry; act on those still there, once, in a new call."""
        present, results = [], []
        for item in items:
            if self.present(item.dlq_id):
                present.append(item)
            else:
                results.append(Result(item, Outcome.VANISHED, reason="not in the DLQ any more"))
        if len(present) == len(items):
            why = "a bulk call answered 404 while every id is in the DLQ"
            raise NotFoundError(404, why, *self.bulk_route)
        if present:
            results += self.act(present, overrides)
        return results

    @property
    def bulk_route(self) -> tuple[str, str]:
        """The method and path of this actor's bulk call (an error raised here names it)."""
        return "POST", f"/v2/workflows/dlq/{self.action.value}"

    def _partial(self, items: list[Item], runs: list[ResumedRun]) -> list[Result]:
        """The server acted on fewer ids than named (or answered oddly)."""
        if not runs:
            # No run made: nothing was acted on (each resume or restart makes a run).
            why = "named in a call whose answer has no run"
            return [Result(item, Outcome.NOT_ACTED, reason=why) for item in items]
        self.unpaired.extend(runs)
        if len(runs) < len(items) and len(runs) < self.batch_limit:
            self.batch_limit = max(1, len(runs))
            log.warning(
                "The server acted on %d of %d ids in one call; later calls name at most %d.",
                len(runs),
                len(items),
                self.batch_limit,
            )
        gone = (
            [item for item in items if not self.present(item.dlq_id)]
            if not self.probe.seen_stay
            else []
        )
        if not self.probe.proven and len(gone) == len(runs) > 0:
            # As many entries left as runs were made: the server removes what it acted on.
            self.probe.saw(False)
        if not self.probe.proven:
            log.error(
                "A call named %d entries and the answer has %d runs; which entries were acted "
                "on cannot be told on this server. They are reported answer_lost_unknown and "
                "never sent again. Use exact pairing (one entry per call) on such a server.",
                len(items),
                len(runs),
            )
            reason = f"the call named {len(items)} ids and its answer has {len(runs)} runs"
            return [Result(item, Outcome.UNKNOWN, reason=reason) for item in items]
        stayed = [item for item in items if item not in gone]
        results = [
            Result(item, Outcome.NOT_ACTED, reason="named in a call that did not act on it")
            for item in stayed
        ]
        if len(gone) == len(runs):
            del self.unpaired[len(self.unpaired) - len(runs) :]
            basis = PairedBy.SINGLE_ID if len(runs) == 1 else PairedBy.ANSWER_ORDER
            paired = zip(gone, runs, strict=True)
            return results + [Result(i, Outcome.ACTED, r, basis) for i, r in paired]
        why = f"acted on (left the DLQ); {len(runs)} runs for {len(gone)} entries: unpaired"
        return results + [Result(i, Outcome.ACTED_RUN_UNKNOWN, reason=why) for i in gone]

    def _resolve(self, items: Sequence[Item], why: str) -> list[Result]:
        """An ambiguous outcome: what the DLQ shows, if this server can be read that way."""
        if not self.probe.proven:
            log.error(
                "%s for %d entr%s on a server not seen to remove resumed entries: whether "
                "they were acted on is unknown. They are never sent again; check them: %s",
                why,
                len(items),
                "y" if len(items) == 1 else "ies",
                ", ".join(i.dlq_id for i in items[:20]),
            )
            return [Result(item, Outcome.UNKNOWN, reason=why) for item in items]
        return [
            Result(item, Outcome.NOT_ACTED, reason=f"{why}; still in the DLQ")
            if self.present(item.dlq_id)
            else Result(item, Outcome.ACTED_RUN_UNKNOWN, reason=why)
            for item in items
        ]

    def settle(self, items: Sequence[Item]) -> list[Result]:
        """Entries a dead try had in flight: resolved like a lost answer."""
        return self._resolve(items, "in flight when an earlier try died")

    def present(self, dlq_id: str) -> bool:
        """Is ``dlq_id`` in the DLQ now (one GET)?"""
        self.pace()
        try:
            self.client.get_message(dlq_id)
        except NotFoundError:
            return False
        return True


def _clear(call: Call, value: BulkResult | ResumedRun | None) -> bool:
    """A clear answer: the call acted on every id it named."""
    if isinstance(value, ResumedRun):
        return True
    return isinstance(value, BulkResult) and len(value.runs) == len(call.items) and not value.cursor


def _answered_503(exc: Exception) -> bool:
    """A 503 the server answered: it acted on nothing (the client retried it already)."""
    return isinstance(exc, ServerError) and exc.status == 503


def label_groups(
    items: Sequence[Item], base: Overrides, extra: tuple[str, ...], mode: str
) -> list[tuple[Overrides, list[Item]]]:
    """One call per set of labels the new runs get (the API replaces labels)."""
    if not extra:
        return [(base, list(items))] if items else []
    groups: dict[tuple[str, ...], list[Item]] = {}
    for item in items:
        labels = extra if mode == "replace" else (*item.labels, *extra)
        groups.setdefault(tuple(dict.fromkeys(labels)), []).append(item)
    return [(replace(base, label=labels), group) for labels, group in groups.items()]

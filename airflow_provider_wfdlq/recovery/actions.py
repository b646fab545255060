"""Housekeeping actions on the redrive engine: ``delete``, ``retry_failure_callback`` and
``cancel_failure_callback``. What each action is, in one table (:data:`SPECS`), and the
actor for the actions that make no new run (:class:`HousekeepingActor`).

What Upstash states (``workflow/openapi.yaml``; ``docs/conformance.md``):

- ``DELETE /v2/workflows/dlq?dlqIds=..`` deletes in bulk and answers ``{"deleted": n}``
  (a ``cursor`` only with filters); ``DELETE /v2/workflows/dlq/{dlqId}`` deletes one and
  answers 200 with no body, 404 when the entry is missing. What the bulk call does when
  one of the ids is missing is not stated (no 404 is documented for it).
- ``POST /v2/workflows/dlq/callback/{dlqId}`` retries a failure callback whose state is
  ``CALLBACK_FAIL``; any other state answers 400. The retried callback is then
  ``CALLBACK_INPROGRESS``. The answer names the ORIGINAL run: no run is made.
- ``DELETE /v2/workflows/dlq/callback/{dlqId}`` cancels a ``CALLBACK_INPROGRESS``
  callback (302); no in-progress callback answers 400. Single calls only, for both.

What this engine does with that:

- **No runs.** Nothing to pair, follow, canary or break: a housekeeping walk refuses
  overrides, labels and safety policies (:meth:`ActionSpec.refusals`).
- **Eligibility.** A callback retry only for ``CALLBACK_FAIL``, a cancel only for
  ``CALLBACK_INPROGRESS``; the rest are skipped as ``skipped_callback_state``. The 489 rule
  ("do not retry") is about running the workflow again: it does not skip housekeeping.
- **Deletion keeps the entry.** Right before a delete call, each entry is read (GET, the
  whole entry as the API gives it) and written to the report, and the report is flushed
  and synced to disk, before the call goes out. A deleted entry can still be read, and
  replayed by hand. An entry the read finds gone is ``vanished``, never deleted.
- **Lost answers.** A deleted entry cannot come back, so a delete whose answer was lost
  is settled by reading the entry: gone means deleted (``deleted_answer_lost``), still
  there means not deleted (``not_acted``; the ledger still never sends it again). A
  callback retry or cancel is settled by the callback's state read back: a state only the
  action (or someone else) could have set counts as done (``*_answer_lost``); otherwise
  ``answer_lost_unknown``, for a human.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from airflow_provider_wfdlq.client import (
    APIError,
    BadRequestError,
    DLQFilters,
    DLQMessage,
    NotFoundError,
    OutcomeUnknownError,
    Overrides,
    ServerError,
    WorkflowDLQClient,
)
from airflow_provider_wfdlq.recovery.actor import Answer, BatchActor, Call, Result
from airflow_provider_wfdlq.recovery.plan import Item
from airflow_provider_wfdlq.recovery.states import Action, Outcome

log = logging.getLogger("airflow_provider_wfdlq.recovery")

CALLBACK_FAIL: Final = "CALLBACK_FAIL"
CALLBACK_INPROGRESS: Final = "CALLBACK_INPROGRESS"
CALLBACK_SUCCESS: Final = "CALLBACK_SUCCESS"
CALLBACK_CANCELED: Final = "CALLBACK_CANCELED"
#: The skip reason (``skipped_callback_state``) of an entry whose callback is in another state.
CALLBACK_STATE: Final = "callback_state"

Single = Callable[[WorkflowDLQClient, str], object]


@dataclass(frozen=True)
class ActionSpec:
    """One action: which call, bulk or single, which entries, and how a lost answer is
    settled by reading the entry back."""

    action: Action
    #: Each call makes a new run (resume, restart): the run-pairing actor and the gate.
    makes_run: bool
    #: One entry per call.
    single: Single | None = None
    #: Several ``dlqIds`` per call (``delete_bulk``).
    bulk: bool = False
    #: The callback state an entry must be in (None: every entry).
    needs_state: str | None = None
    #: Callback states a read-back takes as "the action happened" after a lost answer.
    done_states: frozenset[str] = frozenset()
    #: Read and write each entry in full before the call (deletion).
    keeps_entry: bool = False

    def skip_reason(self, message: DLQMessage) -> str | None:
        """None when the action applies to ``message``, else why not."""
        if self.needs_state is None or message.failure_function_state == self.needs_state:
            return None
        return CALLBACK_STATE

    def after_lost(self, message: DLQMessage | None) -> Outcome:
        """What an entry read back after a lost answer (None: gone) says of the action."""
        if self.keeps_entry:  # a deleted entry never comes back
            return Outcome.ACTED_RUN_UNKNOWN if message is None else Outcome.NOT_ACTED
        if message is not None and message.failure_function_state in self.done_states:
            return Outcome.ACTED_RUN_UNKNOWN
        return Outcome.UNKNOWN

    def refusals(
        self, *, overrides: Overrides, labels: bool, safety_default: bool
    ) -> tuple[str, Any] | None:
        """A plan setting this action cannot honour (it makes no run): (field, value)."""
        if self.makes_run:
            return None
        if overrides != Overrides():
            return "overrides", overrides
        if labels:
            return "audit_label", "set"
        if not safety_default:
            return "safety", "set"
        return None


def _retry(client: WorkflowDLQClient, dlq_id: str) -> object:
    return client.retry_failure_callback(dlq_id)


def _cancel(client: WorkflowDLQClient, dlq_id: str) -> object:
    client.cancel_failure_callback(dlq_id)
    return None


def _delete(client: WorkflowDLQClient, dlq_id: str) -> object:
    client.delete(dlq_id)
    return None


SPECS: Final[Mapping[Action, ActionSpec]] = {
    Action.RESUME: ActionSpec(Action.RESUME, makes_run=True),
    Action.RESTART: ActionSpec(Action.RESTART, makes_run=True),
    Action.DELETE: ActionSpec(Action.DELETE, False, single=_delete, bulk=True, keeps_entry=True),
    Action.RETRY_FAILURE_CALLBACK: ActionSpec(
        Action.RETRY_FAILURE_CALLBACK,
        False,
        single=_retry,
        needs_state=CALLBACK_FAIL,
        # From FAIL the retry goes to INPROGRESS, then SUCCESS (or FAIL again: unknown).
        done_states=frozenset({CALLBACK_INPROGRESS, CALLBACK_SUCCESS, CALLBACK_CANCELED}),
    ),
    Action.CANCEL_FAILURE_CALLBACK: ActionSpec(
        Action.CANCEL_FAILURE_CALLBACK,
        False,
        single=_cancel,
        needs_state=CALLBACK_INPROGRESS,
        done_states=frozenset({CALLBACK_CANCELED}),
    ),
}


def spec_of(action: Action) -> ActionSpec:
    return SPECS[Action(action)]


#: What :class:`HousekeepingActor` hands the report for an entry it is about to delete.
Keep = Callable[[Sequence[Mapping[str, Any]]], None]


@dataclass(slots=True)
class Acted(Answer):
    """What :meth:`HousekeepingActor.send` did: every entry's result, already read."""

    results: list[Result] = field(default_factory=list)


class HousekeepingActor(BatchActor):
    """Acts on batches for an action that makes no run, with the same ledger rule: every
    id is in the ledger before the call that names it, and never sent again."""

    def __init__(self, *args: Any, keep: Keep = lambda entries: None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec_of(self.action)
        self.keep = keep

    def act(self, items: Sequence[Item], overrides: Overrides) -> list[Result]:
        if not items:
            return []
        results: list[Result] = []
        if self.spec.keeps_entry:
            items, results = self._keep(items)
        if not items:
            return results
        if self.spec.bulk and not self.exact and len(items) > 1:
            return results + self._bulk_delete(list(items))
        return results + self._each(items)

    def settle(self, items: Sequence[Item]) -> list[Result]:
        """Entries a dead try had in flight: resolved like a lost answer."""
        return self._read_back(items, "in flight when an earlier try died")

    @property
    def bulk_route(self) -> tuple[str, str]:
        return "DELETE", "/v2/workflows/dlq"

    # -- the walk's three steps: a whole batch in one step, on the task's thread ------------

    def prepare(self, items: Sequence[Item], overrides: Overrides) -> list[Call]:
        """One step for the batch: :meth:`act` writes the ledger as it goes (the walk sends
        housekeeping calls one at a time, on its own thread)."""
        return [Call(list(items), overrides, self.ledger.chunks, single=False)]

    def send(self, call: Call) -> Answer:
        return Acted(results=self.act(call.items, call.overrides))

    def interpret(self, call: Call, answer: Answer) -> list[Result]:
        assert isinstance(answer, Acted)
        return answer.results

    # -- deletion: the entry first ----------------------------------------------------------

    def _keep(self, items: Sequence[Item]) -> tuple[list[Item], list[Result]]:
        """Read each entry whole and hand it to the report (which syncs it) before the
        call; an entry already gone is vanished."""
        present: list[Item] = []
        entries: list[Mapping[str, Any]] = []
        gone: list[Result] = []
        for item in items:
            self.pace()
            try:
                message = self.client.get_message(item.dlq_id)
            except NotFoundError:
                gone.append(Result(item, Outcome.VANISHED, reason="not in the DLQ any more"))
                continue
            present.append(item)
            entries.append(dict(message.raw) or {"dlqId": message.dlq_id})
        if entries:
            self.keep(entries)
        return present, gone

    def _bulk_delete(self, items: list[Item]) -> list[Result]:
        ids = [i.dlq_id for i in items]
        self.ledger.record(ids)
        self.pace()
        try:
            answer = self.client.delete_bulk(DLQFilters(dlq_ids=tuple(ids)))
        except NotFoundError:
            # One reading: refused as a whole (some entry left since it was read). Nothing
            # was deleted; those still there go in a new call, once.
            self.ledger.release(ids)
            return self._after_refusal(items, Overrides())
        except (OutcomeUnknownError, ServerError) as exc:
            if isinstance(exc, ServerError) and exc.status == 503:
                return self._refused(items, exc)
            return self._read_back(items, f"answer lost ({type(exc).__name__})")
        except APIError as exc:
            return self._refused(items, exc)
        if answer.deleted == len(ids) and not answer.cursor:
            return [Result(item, Outcome.ACTED) for item in items]
        # Fewer (or more) than named: the DLQ says which are gone.
        if 0 < answer.deleted < len(ids) and answer.deleted < self.batch_limit:
            self.batch_limit = answer.deleted
            log.warning(
                "The server deleted %d of %d ids in one call; later calls name at most %d.",
                answer.deleted,
                len(ids),
                self.batch_limit,
            )
        why = f"the call named {len(ids)} ids and answered deleted={answer.deleted}"
        return [
            Result(item, Outcome.NOT_ACTED, reason=f"{why}; still in the DLQ")
            if self.present(item.dlq_id)
            else Result(item, Outcome.ACTED, reason=f"{why}; gone from the DLQ")
            for item in items
        ]

    # -- one entry per call -----------------------------------------------------------------

    def _each(self, items: Sequence[Item]) -> list[Result]:
        """One call after the other, on the task's thread: a refusal or a 404 releases ids
        from the ledger, and the task's state store is written from that thread only."""
        self.ledger.record([i.dlq_id for i in items])
        return [self._one(item) for item in items]

    def _one(self, item: Item) -> Result:
        assert self.spec.single is not None
        self.pace()
        try:
            self.spec.single(self.client, item.dlq_id)
        except NotFoundError:
            self.ledger.release([item.dlq_id])
            return Result(item, Outcome.VANISHED, reason="not in the DLQ any more")
        except BadRequestError as exc:
            if exc.status != 400 or self.spec.needs_state is None:
                return self._refused([item], exc)[0]
            # The callback's state changed since the listing: nothing was done.
            self.ledger.release([item.dlq_id])
            return Result(item, Outcome.NOT_ACTED, reason=f"refused (callback state): {exc}")
        except (OutcomeUnknownError, ServerError) as exc:
            if not (isinstance(exc, ServerError) and exc.status == 503):
                return self._read_back([item], f"answer lost ({type(exc).__name__})")[0]
            return self._refused([item], exc)[0]
        except APIError as exc:
            return self._refused([item], exc)[0]
        return Result(item, Outcome.ACTED)

    # -- what a lost answer leaves open -----------------------------------------------------

    def _read_back(self, items: Sequence[Item], why: str) -> list[Result]:
        results = []
        for item in items:
            self.pace()
            try:
                message: DLQMessage | None = self.client.get_message(item.dlq_id)
            except NotFoundError:
                message = None
            outcome = self.spec.after_lost(message)
            seen = "gone from the DLQ" if message is None else "still in the DLQ"
            if message is not None and self.spec.needs_state is not None:
                seen += f", callback {message.failure_function_state}"
            results.append(Result(item, outcome, reason=f"{why}; {seen}"))
        unknown = [r.item.dlq_id for r in results if r.outcome is Outcome.UNKNOWN]
        if unknown:
            log.error(
                "%s: whether %s was done on %d entr%s cannot be told from the DLQ; they are "
                "never sent again; check them: %s",
                why,
                self.action.value,
                len(unknown),
                "y" if len(unknown) == 1 else "ies",
                ", ".join(unknown[:20]),
            )
        return results

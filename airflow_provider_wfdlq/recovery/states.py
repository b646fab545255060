"""The names a redrive reports in: what became of each entry, why a walk stopped, and on
what basis a dlqId is paired with its new run. ``StrEnum``, so the XCom JSON stays plain
strings."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """What became of one entry the task meant to act on: exactly one of these (I4)."""

    #: The call acted on it and its new run is known (``paired_by`` says how); for an
    #: action that makes no run (housekeeping), the call's answer says it was done.
    ACTED = "acted"
    #: Sent in a call whose answer was lost; the DLQ shows it left (the server was seen
    #: to remove resumed entries at once during this walk), so it was acted on; the run
    #: it became is unknown.
    #: (Housekeeping: the DLQ shows it done: a deleted entry gone, a callback's state moved.)
    ACTED_RUN_UNKNOWN = "answer_lost"
    #: Sent in a call whose answer was lost (or that acted on fewer ids than it named) on
    #: a server that was not seen to remove resumed entries: nobody can tell. Never sent
    #: again; a human checks it.
    UNKNOWN = "answer_lost_unknown"
    #: Named in a call that, as the DLQ shows, did not act on it. Never sent again in this
    #: task (the ledger); the next run finds it.
    NOT_ACTED = "not_acted"
    #: Gone from the DLQ before this task sent it (resumed elsewhere, deleted, expired).
    VANISHED = "vanished"
    #: Not sent: the walk stopped first (``max_resumes``, a stop request, a trip).
    LEFT = "left"
    #: Dry run: would have been acted on.
    WOULD = "would"


class Stop(StrEnum):
    """Why a walk ended."""

    DONE = "done"
    MAX_RESUMES = "max_resumes"
    STOPPED = "stopped"
    CANARY = "canary"
    CIRCUIT_BREAKER = "circuit_breaker"


class PairedBy(StrEnum):
    """The basis of a stated dlqId -> new run pair (I3)."""

    #: One id went in the call: the pair is a fact.
    SINGLE_ID = "single_id"
    #: Several ids went in one call, and the answer's runs are paired with them in the
    #: order the ids were sent. Upstash does not state that order: an inference.
    ANSWER_ORDER = "answer_order"


class Action(StrEnum):
    RESUME = "resume"
    RESTART = "restart"
    #: Housekeeping (:mod:`recovery.actions`): these make no new run.
    DELETE = "delete"
    RETRY_FAILURE_CALLBACK = "retry_failure_callback"
    CANCEL_FAILURE_CALLBACK = "cancel_failure_callback"

    @property
    def done(self) -> str:
        """The report's word for an entry this action was carried out on."""
        return _DONE[self]


_DONE = {
    Action.RESUME: "resumed",
    Action.RESTART: "restarted",
    Action.DELETE: "deleted",
    Action.RETRY_FAILURE_CALLBACK: "callback_retried",
    Action.CANCEL_FAILURE_CALLBACK: "callback_canceled",
}


def count_key(outcome: Outcome, action: Action, why: str | None = None) -> str:
    """The counter an outcome is reported under (the names the report has always used)."""
    if outcome is Outcome.ACTED:
        return action.done
    if outcome is Outcome.ACTED_RUN_UNKNOWN:
        return f"{action.done}_answer_lost"
    if outcome is Outcome.WOULD:
        return f"would_{action.value}"
    if outcome is Outcome.LEFT:
        return f"left_{why or 'stopped'}"
    return outcome.value

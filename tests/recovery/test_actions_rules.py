"""Housekeeping's rules one at a time (recovery/actions.py): what each action is, which call
an entry goes in, and what each kind of answer makes of it: a refusal releases the ids (it
did nothing), a lost answer is settled by reading the entry back, and a deleted entry is
handed to the report before its delete goes out. Unit level: a scripted client, no server;
the walks are in test_housekeeping.py, against the dev server's action log."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from airflow_provider_wfdlq.client import (
    AuthError,
    BadRequestError,
    DeleteResult,
    DLQFilters,
    DLQMessage,
    NotFoundError,
    OutcomeUnknownError,
    Overrides,
    ServerError,
)
from airflow_provider_wfdlq.recovery.actions import (
    CALLBACK_CANCELED,
    CALLBACK_FAIL,
    CALLBACK_INPROGRESS,
    CALLBACK_STATE,
    CALLBACK_SUCCESS,
    SPECS,
    Acted,
    HousekeepingActor,
    spec_of,
)
from airflow_provider_wfdlq.recovery.actor import LeaveProbe, Result
from airflow_provider_wfdlq.recovery.checkpoint import Ledger, MemoryStore
from airflow_provider_wfdlq.recovery.states import Action, Outcome
from tests.recovery.test_actor_rules import Paces, dlq_id, ids, items, name, sent

GONE = "not in the DLQ any more"


def message(n: str, state: str | None = None, **raw: Any) -> DLQMessage:
    data = {"dlqId": dlq_id(n), **raw}
    if state is not None:
        data["failureCallbackInfo"] = {"state": state}
    return DLQMessage.from_json(data)


class Housekeeping:
    """A scripted client: ``dlq`` maps each entry there to its callback state; action calls
    answer from ``script`` in turn (an error to raise, or a value), else do their work."""

    def __init__(self, dlq: Mapping[str, str | None], script: Sequence[Any] = ()) -> None:
        self.dlq: dict[str, str | None] = dict(dlq)
        self.script = list(script)
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.reads: list[str] = []
        self.raw: dict[str, dict[str, Any]] = {}

    def _next(self, verb: str, named: Sequence[str]) -> Any:
        self.calls.append((verb, tuple(name(i) for i in named)))
        step = self.script.pop(0) if self.script else None
        if callable(step):  # something happens on the server as the call arrives
            step = step()
        if isinstance(step, Exception):
            raise step
        return step

    def delete_bulk(self, filters: DLQFilters) -> DeleteResult:
        assert filters == DLQFilters(dlq_ids=filters.dlq_ids)
        named = tuple(filters.dlq_ids or ())
        step = self._next("delete_bulk", named)
        if step is not None:
            return step  # type: ignore[no-any-return]
        for i in named:
            self.dlq.pop(name(i))
        return DeleteResult(len(named), None)

    def delete(self, one: str) -> None:
        if self._next("delete", [one]) is None:
            self.dlq.pop(name(one))

    def retry_failure_callback(self, one: str) -> None:
        if self._next("retry", [one]) is None:
            self.dlq[name(one)] = CALLBACK_INPROGRESS

    def cancel_failure_callback(self, one: str) -> None:
        if self._next("cancel", [one]) is None:
            self.dlq[name(one)] = CALLBACK_CANCELED

    def get_message(self, one: str) -> DLQMessage:
        self.reads.append(name(one))
        if name(one) not in self.dlq:
            raise NotFoundError(404, "not found", "GET", "/v2/workflows/dlq/x")
        return message(name(one), self.dlq[name(one)], **self.raw.get(name(one), {}))


def actor(
    client: Housekeeping,
    action: Action,
    *,
    kept: list[list[str]] | None = None,
    ledger: Ledger | None = None,
    **kwargs: Any,
) -> HousekeepingActor:
    def keep(entries: Sequence[Mapping[str, Any]]) -> None:
        if kept is not None:
            kept.append([name(e["dlqId"]) for e in entries])

    return HousekeepingActor(
        client,  # type: ignore[arg-type]
        action,
        ledger if ledger is not None else Ledger(MemoryStore()),
        probe=LeaveProbe(),
        keep=keep,
        **kwargs,
    )


def told(results: list[Result]) -> list[tuple[str, Outcome, str | None]]:
    return [(name(r.item.dlq_id), r.outcome, r.reason) for r in results]


# --- the actions ---------------------------------------------------------------------------


def test_what_each_action_is() -> None:
    assert [(a, s.makes_run, s.bulk, s.keeps_entry, s.needs_state) for a, s in SPECS.items()] == [
        (Action.RESUME, True, False, False, None),
        (Action.RESTART, True, False, False, None),
        (Action.DELETE, False, True, True, None),
        (Action.RETRY_FAILURE_CALLBACK, False, False, False, CALLBACK_FAIL),
        (Action.CANCEL_FAILURE_CALLBACK, False, False, False, CALLBACK_INPROGRESS),
    ]
    assert spec_of("delete") is SPECS[Action.DELETE]  # type: ignore[arg-type]
    assert SPECS[Action.RETRY_FAILURE_CALLBACK].done_states == {
        CALLBACK_INPROGRESS,
        CALLBACK_SUCCESS,
        CALLBACK_CANCELED,
    }
    assert SPECS[Action.CANCEL_FAILURE_CALLBACK].done_states == {CALLBACK_CANCELED}


def test_an_action_that_makes_no_run_refuses_what_only_a_run_could_use() -> None:
    delete, resume = SPECS[Action.DELETE], SPECS[Action.RESUME]
    given = Overrides(retries=1)
    plain: dict[str, Any] = {"overrides": Overrides(), "labels": False, "safety_default": True}
    assert delete.refusals(**plain) is None
    assert delete.refusals(**{**plain, "overrides": given}) == ("overrides", given)
    assert delete.refusals(**{**plain, "labels": True}) == ("audit_label", "set")
    assert delete.refusals(**{**plain, "safety_default": False}) == ("safety", "set")
    assert resume.refusals(overrides=given, labels=True, safety_default=False) is None


def test_a_callback_action_skips_entries_in_another_state() -> None:
    retry = SPECS[Action.RETRY_FAILURE_CALLBACK]
    assert retry.skip_reason(message("a", CALLBACK_FAIL)) is None
    assert retry.skip_reason(message("a", CALLBACK_INPROGRESS)) == CALLBACK_STATE
    assert retry.skip_reason(message("a")) == CALLBACK_STATE
    assert SPECS[Action.DELETE].skip_reason(message("a", CALLBACK_INPROGRESS)) is None


@pytest.mark.parametrize(
    ("action", "state", "outcome"),
    [
        (Action.DELETE, None, Outcome.ACTED_RUN_UNKNOWN),  # gone: deleted
        (Action.DELETE, CALLBACK_FAIL, Outcome.NOT_ACTED),  # still there: not deleted
        (Action.RETRY_FAILURE_CALLBACK, CALLBACK_INPROGRESS, Outcome.ACTED_RUN_UNKNOWN),
        (Action.RETRY_FAILURE_CALLBACK, CALLBACK_FAIL, Outcome.UNKNOWN),  # again, or never
        (Action.RETRY_FAILURE_CALLBACK, None, Outcome.UNKNOWN),
        (Action.CANCEL_FAILURE_CALLBACK, CALLBACK_CANCELED, Outcome.ACTED_RUN_UNKNOWN),
        (Action.CANCEL_FAILURE_CALLBACK, CALLBACK_SUCCESS, Outcome.UNKNOWN),
    ],
)
def test_what_an_entry_read_after_a_lost_answer_says(
    action: Action, state: str | None, outcome: Outcome
) -> None:
    read = None if state is None else message("a", state)  # None: the entry is gone
    assert SPECS[action].after_lost(read) is outcome


# --- deleting --------------------------------------------------------------------------------


def test_a_bulk_delete_keeps_each_entry_first_and_writes_the_ledger_before_the_call() -> None:
    client = Housekeeping({"a": None, "b": None, "c": None})
    client.raw["a"] = {"body": "order 1"}
    kept: list[list[str]] = []
    store = MemoryStore()
    pace = Paces()
    hk = actor(client, Action.DELETE, kept=kept, ledger=Ledger(store), pace=pace)
    results = hk.act(items("a", "b"), Overrides())
    assert (client.reads, kept, client.calls) == (
        ["a", "b"],
        [["a", "b"]],
        [("delete_bulk", ("a", "b"))],
    )
    assert told(results) == [("a", Outcome.ACTED, None), ("b", Outcome.ACTED, None)]
    assert store.get("wfdlq_ledger.0") == {"ids": ids("a", "b")}
    assert pace.count == 3  # two reads, one call


def test_the_entry_kept_is_the_entry_as_read() -> None:
    client = Housekeeping({"a": None})
    client.raw["a"] = {"body": "order 1", "url": "https://example.com"}
    got: list[Sequence[Mapping[str, Any]]] = []
    hk = HousekeepingActor(
        client,  # type: ignore[arg-type]
        Action.DELETE,
        Ledger(MemoryStore()),
        probe=LeaveProbe(),
        keep=got.append,
    )
    hk.act(items("a"), Overrides())
    assert [dict(e) for e in got[0]] == [
        {"dlqId": dlq_id("a"), "body": "order 1", "url": "https://example.com"}
    ]


def test_an_entry_read_without_its_raw_answer_is_kept_by_its_id() -> None:
    class Bare(Housekeeping):
        def get_message(self, one: str) -> DLQMessage:
            self.reads.append(name(one))
            return DLQMessage(dlq_id=one)  # built, not decoded: raw is empty

    got: list[Sequence[Mapping[str, Any]]] = []
    hk = HousekeepingActor(
        Bare({"a": None}),  # type: ignore[arg-type]
        Action.DELETE,
        Ledger(MemoryStore()),
        probe=LeaveProbe(),
        keep=got.append,
    )
    hk.act(items("a"), Overrides())
    assert got == [[{"dlqId": dlq_id("a")}]]


def test_an_entry_gone_before_its_delete_is_vanished_and_never_named() -> None:
    client = Housekeeping({"b": None})
    kept: list[list[str]] = []
    hk = actor(client, Action.DELETE, kept=kept)
    results = hk.act(items("a", "b"), Overrides())
    assert told(results) == [("a", Outcome.VANISHED, GONE), ("b", Outcome.ACTED, None)]
    assert (kept, client.calls) == ([["b"]], [("delete", ("b",))])  # one left: a single call
    assert sent(hk.ledger, "a", "b") == [False, True]
    everything_gone = Housekeeping({})
    kept.clear()
    results = actor(everything_gone, Action.DELETE, kept=kept).act(items("a"), Overrides())
    assert (told(results), kept, everything_gone.calls) == ([("a", Outcome.VANISHED, GONE)], [], [])


def test_a_delete_with_exact_pairing_goes_one_entry_per_call() -> None:
    client = Housekeeping({"a": None, "b": None})
    hk = actor(client, Action.DELETE, exact=True)
    hk.act(items("a", "b"), Overrides())
    assert client.calls == [("delete", ("a",)), ("delete", ("b",))]


def test_a_bulk_delete_refused_with_404_deletes_those_still_there_once_more() -> None:
    def b_leaves() -> Exception:
        client.dlq.pop("b")  # deleted elsewhere after it was kept
        return NotFoundError(404, "some not found", "DELETE", "/p")

    client = Housekeeping({"a": None, "b": None, "c": None}, [b_leaves])
    store = MemoryStore()
    kept: list[list[str]] = []
    hk = actor(client, Action.DELETE, ledger=Ledger(store), kept=kept)
    results = hk.act(items("a", "b", "c"), Overrides())
    assert client.calls == [("delete_bulk", ("a", "b", "c")), ("delete_bulk", ("a", "c"))]
    assert [store.get(f"wfdlq_ledger.{n}") for n in range(3)] == [
        {"ids": ids("a", "b", "c")},
        {"ids": ids("a", "b", "c"), "released": True},
        {"ids": ids("a", "c")},
    ]
    assert told(results) == [
        ("b", Outcome.VANISHED, GONE),
        ("a", Outcome.ACTED, None),
        ("c", Outcome.ACTED, None),
    ]
    assert kept == [["a", "b", "c"], ["a", "c"]]  # kept again right before the new call
    assert sent(hk.ledger, "a", "b", "c") == [True, False, True]


def test_a_bulk_delete_refused_with_404_while_every_entry_is_there_is_raised() -> None:
    client = Housekeeping({"a": None, "b": None}, [NotFoundError(404, "?", "DELETE", "/p")])
    hk = actor(client, Action.DELETE)
    with pytest.raises(NotFoundError) as caught:
        hk.act(items("a", "b"), Overrides())
    assert (caught.value.method, caught.value.path) == ("DELETE", "/v2/workflows/dlq")
    assert caught.value.error == "a bulk call answered 404 while every id is in the DLQ"
    assert len(client.calls) == 1


@pytest.mark.parametrize(
    "refusal",
    [
        BadRequestError(400, "bad", "DELETE", "/p"),
        AuthError(403, "no", "DELETE", "/p"),
        ServerError(503, "busy", "DELETE", "/p"),
    ],
    ids=["400", "403", "503"],
)
def test_a_refused_bulk_delete_releases_its_ids_and_leaves_them(refusal: Exception) -> None:
    client = Housekeeping({"a": None, "b": None}, [refusal])
    hk = actor(client, Action.DELETE)
    results = hk.act(items("a", "b"), Overrides())
    assert told(results) == [
        ("a", Outcome.LEFT, f"refused: {refusal}"),
        ("b", Outcome.LEFT, f"refused: {refusal}"),
    ]
    assert (sent(hk.ledger, "a", "b"), hk.refusal) == ([False, False], refusal)
    assert client.reads == ["a", "b"]  # the reads that keep the entries; none after


@pytest.mark.parametrize(
    "lost",
    [OutcomeUnknownError("DELETE", "/p"), ServerError(504, "gateway", "DELETE", "/p")],
    ids=["unknown", "504"],
)
def test_a_lost_bulk_delete_is_settled_by_reading_each_entry(lost: Exception) -> None:
    def deletes_a() -> Exception:
        client.dlq.pop("a")  # the call whose answer is lost did delete a
        return lost

    client = Housekeeping({"a": None, "b": None}, [deletes_a])
    hk = actor(client, Action.DELETE)
    results = hk.act(items("a", "b"), Overrides())
    why = f"answer lost ({type(lost).__name__})"
    assert told(results) == [
        ("a", Outcome.ACTED_RUN_UNKNOWN, f"{why}; gone from the DLQ"),
        ("b", Outcome.NOT_ACTED, f"{why}; still in the DLQ"),
    ]
    assert sent(hk.ledger, "a", "b") == [True, True]  # never sent again
    assert hk.refusal is None


def test_a_bulk_delete_is_read_first_so_a_gone_entry_is_vanished_not_lost() -> None:
    # (the read that keeps an entry runs before the call: "a" is gone before, not after)
    client = Housekeeping({"b": None, "c": None}, [OutcomeUnknownError("DELETE", "/p")])
    hk = actor(client, Action.DELETE)
    results = hk.act(items("a", "b", "c"), Overrides())
    assert [r.outcome for r in results] == [
        Outcome.VANISHED,
        Outcome.NOT_ACTED,
        Outcome.NOT_ACTED,
    ]


@pytest.mark.parametrize(
    ("answer", "gone", "limit", "after"),
    [
        (DeleteResult(1, None), ("b",), 50, 1),  # fewer: the limit drops to what was deleted
        (DeleteResult(2, "more"), ("a", "c"), 50, 2),
        (DeleteResult(2, None), ("a", "c"), 2, 2),  # at the limit: unchanged
        (DeleteResult(2, None), ("a", "c"), 1, 1),  # below it: unchanged
        (DeleteResult(3, "more"), ("a", "b", "c"), 50, 50),  # all named, with a cursor
        (DeleteResult(0, None), (), 50, 50),  # none: no limit of 0
        (DeleteResult(4, None), ("a", "b", "c"), 50, 50),  # more than named
    ],
    ids=["fewer", "cursor", "at-limit", "below-limit", "all-and-cursor", "none", "more"],
)
def test_a_bulk_delete_that_deleted_another_count_is_settled_by_the_dlq(
    answer: DeleteResult, gone: tuple[str, ...], limit: int, after: int
) -> None:
    def deletes() -> DeleteResult:
        for n in gone:
            client.dlq.pop(n)
        return answer

    client = Housekeeping({"a": None, "b": None, "c": None}, [deletes])
    hk = actor(client, Action.DELETE, batch_limit=limit)
    results = hk.act(items("a", "b", "c"), Overrides())
    why = f"the call named 3 ids and answered deleted={answer.deleted}"
    assert told(results) == [
        (n, Outcome.ACTED, f"{why}; gone from the DLQ")
        if n in gone
        else (n, Outcome.NOT_ACTED, f"{why}; still in the DLQ")
        for n in ("a", "b", "c")
    ]
    assert hk.batch_limit == after
    assert client.reads == ["a", "b", "c"] * 2  # kept, then settled
    assert sent(hk.ledger, "a", "b", "c") == [True] * 3


def test_a_bulk_delete_whose_count_matches_reads_nothing_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Housekeeping({"a": None, "b": None})
    caplog.set_level(logging.WARNING, "airflow_provider_wfdlq.recovery")
    actor(client, Action.DELETE).act(items("a", "b"), Overrides())
    assert client.reads == ["a", "b"]  # only the reads that keep the entries
    assert caplog.records == []


# --- one entry per call (callbacks; a single delete) ----------------------------------------


@pytest.mark.parametrize(
    ("action", "verb", "after"),
    [
        (Action.RETRY_FAILURE_CALLBACK, "retry", CALLBACK_INPROGRESS),
        (Action.CANCEL_FAILURE_CALLBACK, "cancel", CALLBACK_CANCELED),
    ],
)
def test_a_callback_action_goes_one_entry_per_call_in_one_ledger_chunk(
    action: Action, verb: str, after: str
) -> None:
    client = Housekeeping({"a": CALLBACK_FAIL, "b": CALLBACK_FAIL})
    store = MemoryStore()
    pace = Paces()
    hk = actor(client, action, ledger=Ledger(store), pace=pace)
    results = hk.act(items("a", "b"), Overrides())
    assert client.calls == [(verb, ("a",)), (verb, ("b",))]
    assert told(results) == [("a", Outcome.ACTED, None), ("b", Outcome.ACTED, None)]
    assert (client.dlq, client.reads) == ({"a": after, "b": after}, [])  # nothing kept
    assert store.get("wfdlq_ledger") == {"chunks": 1}
    assert pace.count == 2


def test_a_single_404_releases_the_id() -> None:
    client = Housekeeping({}, [NotFoundError(404, "gone", "POST", "/p")])
    hk = actor(client, Action.RETRY_FAILURE_CALLBACK)
    results = hk.act(items("a"), Overrides())
    assert told(results) == [("a", Outcome.VANISHED, GONE)]
    assert (sent(hk.ledger, "a"), hk.refusal) == ([False], None)


def test_a_400_to_a_callback_action_is_a_state_that_moved_on() -> None:
    refusal = BadRequestError(400, "callback not failed", "POST", "/p")
    client = Housekeeping({"a": CALLBACK_SUCCESS, "b": CALLBACK_FAIL}, [refusal])
    hk = actor(client, Action.RETRY_FAILURE_CALLBACK)
    results = hk.act(items("a", "b"), Overrides())
    assert told(results) == [
        ("a", Outcome.NOT_ACTED, f"refused (callback state): {refusal}"),
        ("b", Outcome.ACTED, None),
    ]
    assert (sent(hk.ledger, "a", "b"), hk.refusal) == ([False, True], None)  # the walk goes on


@pytest.mark.parametrize(
    ("action", "refusal"),
    [
        (Action.RETRY_FAILURE_CALLBACK, BadRequestError(409, "conflict", "POST", "/p")),
        (Action.DELETE, BadRequestError(400, "bad", "DELETE", "/p")),  # no state to blame
        (Action.RETRY_FAILURE_CALLBACK, AuthError(401, "no", "POST", "/p")),
        (Action.RETRY_FAILURE_CALLBACK, ServerError(503, "busy", "POST", "/p")),
    ],
    ids=["409", "delete-400", "401", "503"],
)
def test_any_other_refusal_of_a_single_call_stops_the_walk(
    action: Action, refusal: Exception
) -> None:
    client = Housekeeping({"a": CALLBACK_FAIL, "b": CALLBACK_FAIL}, [refusal])
    hk = actor(client, action, exact=True)
    results = hk.act(items("a", "b"), Overrides())
    assert told(results)[0] == ("a", Outcome.LEFT, f"refused: {refusal}")
    assert (sent(hk.ledger, "a"), hk.refusal) == ([False], refusal)
    assert len(results) == 2


@pytest.mark.parametrize(
    ("state", "outcome", "seen"),
    [
        (CALLBACK_INPROGRESS, Outcome.ACTED_RUN_UNKNOWN, "still in the DLQ, callback "),
        (CALLBACK_FAIL, Outcome.UNKNOWN, "still in the DLQ, callback "),
        (None, Outcome.UNKNOWN, "gone from the DLQ"),
    ],
)
@pytest.mark.parametrize(
    "lost",
    [OutcomeUnknownError("POST", "/p"), ServerError(502, "gateway", "POST", "/p")],
    ids=["unknown", "502"],
)
def test_a_lost_callback_retry_is_settled_by_the_state_read_back(
    state: str | None,
    outcome: Outcome,
    seen: str,
    lost: Exception,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Housekeeping({"a": CALLBACK_FAIL}, [lost])
    hk = actor(client, Action.RETRY_FAILURE_CALLBACK)
    if state is None:
        client.dlq.pop("a")
    else:
        client.dlq["a"] = state
    caplog.set_level(logging.ERROR, "airflow_provider_wfdlq.recovery")
    results = hk.act(items("a"), Overrides())
    why = f"answer lost ({type(lost).__name__})"
    full = f"{why}; {seen}{state}" if state else f"{why}; {seen}"
    assert told(results) == [("a", outcome, full)]
    assert (sent(hk.ledger, "a"), hk.refusal) == ([True], None)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == (outcome is Outcome.UNKNOWN)


def test_a_lost_single_delete_reads_no_callback_state() -> None:
    client = Housekeeping({"a": CALLBACK_FAIL}, [OutcomeUnknownError("DELETE", "/p")])
    results = actor(client, Action.DELETE).act(items("a"), Overrides())
    assert told(results) == [
        ("a", Outcome.NOT_ACTED, "answer lost (OutcomeUnknownError); still in the DLQ")
    ]


def test_a_dead_try_s_calls_are_read_back() -> None:
    client = Housekeeping({"b": CALLBACK_INPROGRESS})
    hk = actor(client, Action.RETRY_FAILURE_CALLBACK)
    why = "in flight when an earlier try died"
    assert told(hk.settle(items("a", "b"))) == [
        ("a", Outcome.UNKNOWN, f"{why}; gone from the DLQ"),
        (
            "b",
            Outcome.ACTED_RUN_UNKNOWN,
            f"{why}; still in the DLQ, callback {CALLBACK_INPROGRESS}",
        ),
    ]
    assert client.calls == []


# --- the walk's three steps --------------------------------------------------------------


def test_the_three_steps_act_on_the_whole_batch_in_the_send_step() -> None:
    client = Housekeeping({"a": None, "b": None})
    store = MemoryStore()
    ledger = Ledger(store)
    ledger.record(ids("x"))
    hk = actor(client, Action.DELETE, ledger=ledger)
    given = Overrides()
    calls = hk.prepare(items("a", "b"), given)
    assert [(len(c.items), c.chunk, c.single, c.overrides) for c in calls] == [(2, 1, False, given)]
    assert client.calls == []
    answer = hk.send(calls[0])
    assert isinstance(answer, Acted)
    assert client.calls == [("delete_bulk", ("a", "b"))]
    assert hk.interpret(calls[0], answer) == answer.results
    assert [r.outcome for r in answer.results] == [Outcome.ACTED] * 2
    assert hk.act([], given) == []

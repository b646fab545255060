"""The acting step's rules, one at a time (recovery/actor.py): which call each entry goes
in, what each kind of answer (or error) makes of it, when the DLQ is read back, and what
the ledger keeps. Unit level: a scripted client, no server, no Airflow; the walks that use
the actor are in test_redrive.py, test_invariants.py and test_in_flight.py.

What must hold whatever the answer: an id is released from the ledger only when the server
refused the call that named it (it acted on none), a pair is stated only on a basis that
holds, and an answer that does not say what was acted on is never guessed."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_wfdlq.client import (
    BadRequestError,
    BulkResult,
    DLQFilters,
    NotFoundError,
    OutcomeUnknownError,
    Overrides,
    ResumedRun,
    ServerError,
    TransportError,
)
from airflow_provider_wfdlq.recovery.actor import (
    MAX_BATCH,
    PROBE_EVERY,
    PROBE_FIRST,
    Answer,
    BatchActor,
    Call,
    LeaveProbe,
    Result,
    label_groups,
)
from airflow_provider_wfdlq.recovery.checkpoint import Ledger, MemoryStore
from airflow_provider_wfdlq.recovery.plan import Item
from airflow_provider_wfdlq.recovery.states import Action, Outcome, PairedBy

NO = Overrides()
GIVEN = Overrides(retries=2)

#: What a scripted call answers: a value, an error to raise, or a function of the ids.
Script = BulkResult | ResumedRun | Exception | Callable[[tuple[str, ...]], Any]


def run(n: int | str) -> ResumedRun:
    return ResumedRun(f"wfr_{n}", 1_700_000_000_000)


def runs(*names: int | str, cursor: str | None = None) -> BulkResult:
    return BulkResult(tuple(run(n) for n in names), cursor)


def dlq_id(name: str) -> str:
    """The tests name entries "a", "b"...; the client takes only ids like '<digits>-<digits>'."""
    return f"{int.from_bytes(name.encode(), 'big')}-0"


def name(dlq_id: str) -> str:
    number = int(dlq_id.split("-")[0])
    return number.to_bytes((number.bit_length() + 7) // 8, "big").decode()


def items(*names: str) -> list[Item]:
    return [
        Item.build(dlq_id(n), 1_700_000_000_000 + i, f"wfr_old_{n}") for i, n in enumerate(names)
    ]


def ids(*names: str) -> list[str]:
    return [dlq_id(n) for n in names]


def sent(ledger: Ledger, *names: str) -> list[bool]:
    return [dlq_id(n) in ledger for n in names]


class ScriptedClient:
    """Answers action calls from a script (in order); when the script is empty, acts on every
    id named and, unless ``keep``, removes it from the DLQ. ``get_message`` reads ``dlq``."""

    def __init__(
        self, dlq: set[str], script: list[Script] | None = None, keep: bool = False
    ) -> None:
        self.dlq = dlq
        self.script = list(script or [])
        self.keep = keep
        self.calls: list[tuple[str, tuple[str, ...], Overrides]] = []
        self.reads: list[str] = []
        self.threads: list[str] = []
        self.read_error: Exception | None = None
        self._lock = threading.Lock()

    def _act(self, verb: str, named: tuple[str, ...], overrides: Overrides, single: bool) -> Any:
        ids = tuple(name(i) for i in named)
        with self._lock:
            self.calls.append((verb, ids, overrides))
            self.threads.append(threading.current_thread().name)
            step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        if callable(step):
            return step(ids)
        if step is not None:
            return step
        if not self.keep:
            self.dlq.difference_update(ids)
        return run(ids[0]) if single else runs(*ids)

    def resume(self, dlq_id: str, overrides: Overrides) -> ResumedRun:
        return self._act("resume", (dlq_id,), overrides, True)  # type: ignore[no-any-return]

    def restart(self, dlq_id: str, overrides: Overrides) -> ResumedRun:
        return self._act("restart", (dlq_id,), overrides, True)  # type: ignore[no-any-return]

    def resume_bulk(self, filters: DLQFilters, overrides: Overrides) -> BulkResult:
        assert filters == DLQFilters(dlq_ids=filters.dlq_ids)  # by ids only, nothing else
        return self._act("resume_bulk", tuple(filters.dlq_ids or ()), overrides, False)  # type: ignore[no-any-return]

    def restart_bulk(self, filters: DLQFilters, overrides: Overrides) -> BulkResult:
        assert filters == DLQFilters(dlq_ids=filters.dlq_ids)
        return self._act("restart_bulk", tuple(filters.dlq_ids or ()), overrides, False)  # type: ignore[no-any-return]

    def get_message(self, read: str) -> object:
        self.reads.append(name(read))
        if self.read_error is not None:
            raise self.read_error
        if name(read) not in self.dlq:
            raise NotFoundError(404, "not found", "GET", "/v2/workflows/dlq/x")
        return object()


class Paces:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def make(
    client: ScriptedClient,
    *,
    action: Action = Action.RESUME,
    probe: LeaveProbe | None = None,
    ledger: Ledger | None = None,
    **kwargs: Any,
) -> BatchActor:
    return BatchActor(
        client,  # type: ignore[arg-type]
        action,
        ledger if ledger is not None else Ledger(MemoryStore()),
        probe=probe if probe is not None else LeaveProbe(),
        **kwargs,
    )


def outcomes(results: list[Result]) -> list[tuple[str, Outcome, str | None, PairedBy | None]]:
    return [
        (name(r.item.dlq_id), r.outcome, r.run.workflow_run_id if r.run else None, r.paired_by)
        for r in results
    ]


def reasons(results: list[Result]) -> list[str | None]:
    return [r.reason for r in results]


def leaves() -> LeaveProbe:
    """A walk that saw an acted entry leave the DLQ: lost answers are read from the DLQ."""
    return LeaveProbe(seen_leave=True)


# --- the leave probe -------------------------------------------------------------------------


def test_the_leave_probe_is_proven_only_by_a_leave_and_no_stay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert LeaveProbe().proven is False
    assert LeaveProbe().to_state() == {"seen_leave": False, "seen_stay": False}
    assert LeaveProbe(seen_leave=True).proven is True
    assert LeaveProbe(seen_stay=True).proven is False
    assert LeaveProbe(True, True).proven is False
    probe = LeaveProbe()
    probe.saw(False)
    assert (probe.proven, probe.to_state()) == (True, {"seen_leave": True, "seen_stay": False})
    caplog.set_level(logging.WARNING, "airflow_provider_wfdlq.recovery")
    warned = []
    for present in (True, True, False):  # a later leave does not undo a stay: a latch
        probe.saw(present)
        warned.append(len([r for r in caplog.records if r.levelno == logging.WARNING]))
    assert (probe.proven, probe.to_state()) == (False, {"seen_leave": True, "seen_stay": True})
    assert warned == [1, 1, 1]  # at the first stay, and only then


# --- which calls, and their ids in the ledger ------------------------------------------------


def test_defaults() -> None:
    actor = make(ScriptedClient(set()))
    assert (actor.exact, actor.concurrency, actor.batch_limit) == (False, 4, MAX_BATCH)
    assert (actor.unpaired, actor.refusal) == ([], None)
    assert actor.pace() is None
    assert (MAX_BATCH, PROBE_FIRST, PROBE_EVERY) == (50, 3, 20)


def test_several_entries_go_in_one_bulk_call_and_one_ledger_chunk() -> None:
    store = MemoryStore()
    ledger = Ledger(store)
    ledger.record(ids("earlier"))
    client = ScriptedClient({"a", "b", "c"})
    actor = make(client, ledger=ledger)
    calls = actor.prepare(items("a", "b", "c"), GIVEN)
    assert [(c.single, [name(i.dlq_id) for i in c.items], c.chunk, c.overrides) for c in calls] == [
        (False, ["a", "b", "c"], 1, GIVEN)
    ]
    assert store.get("wfdlq_ledger.1") == {"ids": ids("a", "b", "c")}
    assert client.calls == []  # prepared, not sent
    results = actor.interpret(calls[0], actor.send(calls[0]))
    assert client.calls == [("resume_bulk", ("a", "b", "c"), GIVEN)]
    assert outcomes(results) == [
        ("a", Outcome.ACTED, "wfr_a", PairedBy.ANSWER_ORDER),
        ("b", Outcome.ACTED, "wfr_b", PairedBy.ANSWER_ORDER),
        ("c", Outcome.ACTED, "wfr_c", PairedBy.ANSWER_ORDER),
    ]
    assert sent(ledger, "a", "b", "c") == [True] * 3


def test_one_entry_goes_by_the_single_endpoint_and_its_pair_is_a_fact() -> None:
    client = ScriptedClient({"a"})
    actor = make(client)
    results = actor.act(items("a"), GIVEN)
    assert client.calls == [("resume", ("a",), GIVEN)]
    assert outcomes(results) == [("a", Outcome.ACTED, "wfr_a", PairedBy.SINGLE_ID)]
    assert results[0].reason is None


def test_exact_pairing_sends_one_call_per_entry_in_one_ledger_chunk() -> None:
    store = MemoryStore()
    client = ScriptedClient({"a", "b"})
    actor = make(client, ledger=Ledger(store), exact=True, concurrency=1)
    calls = actor.prepare(items("a", "b"), NO)
    assert [(c.single, [name(i.dlq_id) for i in c.items], c.chunk) for c in calls] == [
        (True, ["a"], 0),
        (True, ["b"], 0),
    ]
    assert store.get("wfdlq_ledger") == {"chunks": 1}


@pytest.mark.parametrize(
    ("action", "verbs"),
    [(Action.RESUME, ["resume_bulk", "resume"]), (Action.RESTART, ["restart_bulk", "restart"])],
)
def test_the_action_picks_the_endpoint(action: Action, verbs: list[str]) -> None:
    client = ScriptedClient({"a", "b", "c"})
    actor = make(client, action=action)
    actor.act(items("a", "b"), NO)
    actor.act(items("c"), NO)
    assert [verb for verb, _, _ in client.calls] == verbs


def test_nothing_to_act_on_sends_nothing_and_writes_nothing() -> None:
    store = MemoryStore()
    client = ScriptedClient(set())
    assert make(client, ledger=Ledger(store)).act([], NO) == []
    assert (client.calls, store.data) == ([], {})


def test_every_send_and_every_read_back_is_paced() -> None:
    pace = Paces()
    client = ScriptedClient({"a", "b"})
    actor = make(client, pace=pace)
    actor.act(items("a", "b"), NO)  # one call, then its read-back (the first calls probe)
    assert (len(client.calls), client.reads, pace.count) == (1, ["a"], 2)
    actor.present(dlq_id("b"))
    assert pace.count == 3


def test_calls_out_at_once_never_exceed_the_concurrency() -> None:
    out, most = 0, 0
    lock = threading.Lock()

    def slow(ids: tuple[str, ...]) -> ResumedRun:
        nonlocal out, most
        with lock:
            out += 1
            most = max(most, out)
        time.sleep(0.05)
        with lock:
            out -= 1
        return run(ids[0])

    client = ScriptedClient(set(), [slow] * 4)
    actor = make(client, exact=True, concurrency=2, probe=LeaveProbe(seen_stay=True))
    results = actor.act(items("a", "b", "c", "d"), NO)
    assert [name(r.item.dlq_id) for r in results] == [
        "a",
        "b",
        "c",
        "d",
    ]  # in order, whatever came first
    assert most <= 2  # (that calls overlap at all: the thread test below)


@pytest.mark.parametrize(
    ("names", "exact", "concurrency", "on_workers"),
    [
        (("a", "b"), True, 2, True),  # two calls, room for two: a pool
        (("a", "b"), True, 1, False),  # one at a time: the caller's thread
        (("a",), True, 4, False),  # one call: the caller's thread
        (("a", "b"), False, 4, False),  # one bulk call: the caller's thread
    ],
)
def test_calls_leave_the_callers_thread_only_when_two_can_overlap(
    names: tuple[str, ...], exact: bool, concurrency: int, on_workers: bool
) -> None:
    client = ScriptedClient(set(names))
    make(client, exact=exact, concurrency=concurrency).act(items(*names), NO)
    main = threading.current_thread().name
    assert [name != main for name in client.threads] == [on_workers] * len(client.threads)


# --- the read-back after a clear answer (the leave probe) ------------------------------------


def test_the_first_calls_then_every_twentieth_read_one_entry_back() -> None:
    client = ScriptedClient({f"e{n}" for n in range(1, 45)}, keep=True)
    actor = make(client)
    probed = [n for n in range(1, 45) if actor.prepare(items(f"e{n}"), NO)[0].probe]
    assert probed == [1, 2, 3, 20, 40]
    actor.probe.saw(True)  # once an entry was seen to stay, no more reads: the latch holds
    assert actor.prepare(items("e45"), NO)[0].probe is False
    more = [actor.prepare(items(f"x{n}"), NO)[0].probe for n in range(15)]
    assert more == [False] * 15  # call 60 included


def test_a_clear_answer_is_read_back_and_teaches_the_probe() -> None:
    client = ScriptedClient({"a", "b", "c"})
    actor = make(client)
    call = actor.prepare(items("b", "a"), NO)[0]
    answer = actor.send(call)
    assert (answer.present, client.reads) == (False, ["b"])  # the first id the call named
    assert actor.probe.proven is False  # learnt on the walk's thread, when interpreted
    actor.interpret(call, answer)
    assert actor.probe.proven is True
    kept = ScriptedClient({"a"}, keep=True)
    actor = make(kept)
    actor.act(items("a"), NO)
    assert (kept.reads, actor.probe.seen_stay, actor.probe.proven) == (["a"], True, False)


@pytest.mark.parametrize(
    "answer",
    [
        runs("a", cursor="more"),  # fewer acted than named
        runs("a"),  # one run for two ids
        runs("a", "b", "c"),  # more runs than ids
        BadRequestError(400, "no", "POST", "/v2/workflows/dlq/resume"),
        OutcomeUnknownError("POST", "/v2/workflows/dlq/resume", ("a", "b")),
    ],
    ids=["cursor", "fewer-runs", "more-runs", "refused", "lost"],
)
def test_an_answer_that_is_not_clear_is_not_read_back_by_the_probe(answer: Script) -> None:
    client = ScriptedClient(set(), [answer])
    actor = make(client, probe=LeaveProbe(seen_stay=False))
    call = actor.prepare(items("a", "b"), NO)[0]
    assert call.probe is True
    assert actor.send(call).present is None
    assert client.reads == []


def test_a_call_not_due_for_a_probe_is_not_read_back() -> None:
    client = ScriptedClient({"a"})
    actor = make(client)
    call = Call(items("a"), NO, actor.ledger.record(ids("a")), single=True)
    assert call.probe is False
    assert actor.send(call).present is None
    assert client.reads == []


def test_a_read_back_that_fails_is_logged_and_the_results_still_stand(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = ScriptedClient({"a", "b"})
    client.read_error = TransportError("boom", "GET", "/v2/workflows/dlq/a")
    actor = make(client)
    caplog.set_level(logging.WARNING, "airflow_provider_wfdlq.recovery")
    results = actor.act(items("a", "b"), NO)
    assert [r.outcome for r in results] == [Outcome.ACTED, Outcome.ACTED]
    assert actor.probe.to_state() == {"seen_leave": False, "seen_stay": False}
    assert ["Could not read" in r.getMessage() for r in caplog.records] == [True]
    single = make(client)  # one id: the read-back names it
    assert [r.outcome for r in single.act(items("c"), NO)] == [Outcome.ACTED]
    assert client.reads == ["a", "c"]


def test_interpret_teaches_the_probe_only_what_was_read() -> None:
    actor = make(ScriptedClient(set()))
    call = Call(items("a"), NO, 0, single=True)
    actor.interpret(call, Answer(run("a")))
    assert actor.probe.to_state() == {"seen_leave": False, "seen_stay": False}
    actor.interpret(call, Answer(run("a"), present=True))
    assert actor.probe.to_state() == {"seen_leave": False, "seen_stay": True}


# --- errors: refused, lost, or neither -------------------------------------------------------


def test_send_never_raises_and_interpret_raises_what_it_cannot_read() -> None:
    boom = RuntimeError("a bug")
    for names in (("a",), ("a", "b")):
        client = ScriptedClient(set(), [boom])
        actor = make(client)
        call = actor.prepare(items(*names), NO)[0]
        answer = actor.send(call)
        assert (answer.value, answer.error) == (None, boom)
        with pytest.raises(RuntimeError, match="a bug"):
            actor.interpret(call, answer)
        assert sent(actor.ledger, *names) == [True] * len(names)  # may have acted: kept


@pytest.mark.parametrize("names", [("a",), ("a", "b")], ids=["single", "bulk"])
@pytest.mark.parametrize(
    "refusal",
    [
        BadRequestError(400, "bad", "POST", "/v2/workflows/dlq/resume"),
        ServerError(503, "busy", "POST", "/v2/workflows/dlq/resume"),  # answered: not acted
    ],
    ids=["400", "503"],
)
def test_a_refusal_releases_the_ids_leaves_them_and_is_kept_for_the_walk(
    names: tuple[str, ...], refusal: Exception
) -> None:
    store = MemoryStore()
    client = ScriptedClient(set(names), [refusal, BadRequestError(400, "again", "POST", "/p")])
    actor = make(client, ledger=Ledger(store))
    results = actor.act(items(*names), NO)
    assert outcomes(results) == [(n, Outcome.LEFT, None, None) for n in names]
    assert reasons(results) == [f"refused: {refusal}"] * len(names)
    assert sent(actor.ledger, *names) == [False] * len(names)
    assert store.get("wfdlq_ledger.1") == {"ids": ids(*names), "released": True}
    assert actor.refusal is refusal
    actor.act(items("z"), NO)
    assert actor.refusal is refusal  # the first refusal is the one raised
    assert client.reads == []  # a refusal is never resolved by reading


@pytest.mark.parametrize("names", [("a",), ("a", "b")], ids=["single", "bulk"])
@pytest.mark.parametrize(
    "lost",
    [
        OutcomeUnknownError("POST", "/v2/workflows/dlq/resume", ("a",)),
        ServerError(500, "oops", "POST", "/v2/workflows/dlq/resume"),
        ServerError(502, "gateway", "POST", "/v2/workflows/dlq/resume"),
    ],
    ids=["unknown", "500", "502"],
)
def test_a_lost_answer_on_a_server_not_seen_to_remove_entries_is_unknown(
    names: tuple[str, ...], lost: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    client = ScriptedClient(set(names), [lost])
    actor = make(client)
    caplog.set_level(logging.ERROR, "airflow_provider_wfdlq.recovery")
    results = actor.act(items(*names), NO)
    why = f"answer lost ({type(lost).__name__})"
    assert outcomes(results) == [(n, Outcome.UNKNOWN, None, None) for n in names]
    assert reasons(results) == [why] * len(names)
    assert sent(actor.ledger, *names) == [True] * len(names)  # never sent again
    assert (client.reads, actor.refusal) == ([], None)
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1


@pytest.mark.parametrize("exact", [False, True])
def test_a_lost_answer_on_a_server_seen_to_remove_entries_is_read_from_the_dlq(
    exact: bool,
) -> None:
    client = ScriptedClient({"b"}, [OutcomeUnknownError("POST", "/p", ("a", "b"))] * 2)
    actor = make(client, probe=leaves(), exact=exact, concurrency=1)
    results = actor.act(items("a", "b"), NO)
    why = "answer lost (OutcomeUnknownError)"
    assert outcomes(results) == [
        ("a", Outcome.ACTED_RUN_UNKNOWN, None, None),
        ("b", Outcome.NOT_ACTED, None, None),
    ]
    assert reasons(results) == [why, f"{why}; still in the DLQ"]
    assert client.reads == ["a", "b"]
    assert sent(actor.ledger, "a", "b") == [True, True]


def test_a_dead_try_s_calls_are_settled_like_a_lost_answer() -> None:
    client = ScriptedClient({"b"})
    why = "in flight when an earlier try died"
    results = make(client, probe=leaves()).settle(items("a", "b"))
    assert outcomes(results) == [
        ("a", Outcome.ACTED_RUN_UNKNOWN, None, None),
        ("b", Outcome.NOT_ACTED, None, None),
    ]
    assert reasons(results) == [why, f"{why}; still in the DLQ"]
    unknown = make(ScriptedClient({"b"})).settle(items("a", "b"))
    assert [(r.outcome, r.reason) for r in unknown] == [(Outcome.UNKNOWN, why)] * 2


def test_a_single_404_means_the_entry_left_before_the_call() -> None:
    store = MemoryStore()
    client = ScriptedClient(set(), [NotFoundError(404, "gone", "POST", "/p")])
    actor = make(client, ledger=Ledger(store))
    results = actor.act(items("a"), NO)
    assert outcomes(results) == [("a", Outcome.VANISHED, None, None)]
    assert reasons(results) == ["not in the DLQ any more"]
    assert sent(actor.ledger, "a") == [False]
    assert store.get("wfdlq_ledger.1") == {"ids": ids("a"), "released": True}
    assert (actor.refusal, client.reads) == (None, [])


def test_a_bulk_404_reads_each_entry_and_acts_once_more_on_those_still_there() -> None:
    store = MemoryStore()
    client = ScriptedClient({"a", "c"}, [NotFoundError(404, "some not found", "POST", "/p")])
    actor = make(client, ledger=Ledger(store), probe=LeaveProbe(seen_stay=True))
    results = actor.act(items("a", "b", "c"), GIVEN)
    assert client.reads == ["a", "b", "c"]
    assert client.calls == [
        ("resume_bulk", ("a", "b", "c"), GIVEN),
        ("resume_bulk", ("a", "c"), GIVEN),  # the same overrides, once
    ]
    assert outcomes(results) == [
        ("b", Outcome.VANISHED, None, None),
        ("a", Outcome.ACTED, "wfr_a", PairedBy.ANSWER_ORDER),
        ("c", Outcome.ACTED, "wfr_c", PairedBy.ANSWER_ORDER),
    ]
    assert results[0].reason == "not in the DLQ any more"
    assert [store.get(f"wfdlq_ledger.{n}") for n in range(3)] == [
        {"ids": ids("a", "b", "c")},
        {"ids": ids("a", "b", "c"), "released": True},
        {"ids": ids("a", "c")},
    ]
    assert sent(actor.ledger, "a", "b", "c") == [True, False, True]


def test_a_bulk_404_whose_entries_all_left_sends_nothing_more() -> None:
    client = ScriptedClient(set(), [NotFoundError(404, "some not found", "POST", "/p")])
    actor = make(client)
    results = actor.act(items("a", "b"), NO)
    assert [r.outcome for r in results] == [Outcome.VANISHED] * 2
    assert len(client.calls) == 1


@pytest.mark.parametrize("action", [Action.RESUME, Action.RESTART])
def test_a_bulk_404_while_every_entry_is_there_is_raised_not_resent(action: Action) -> None:
    client = ScriptedClient({"a", "b"}, [NotFoundError(404, "some not found", "POST", "/p")])
    actor = make(client, action=action)
    with pytest.raises(NotFoundError) as caught:
        actor.act(items("a", "b"), NO)
    error = caught.value
    assert (error.status, error.method, error.path) == (
        404,
        "POST",
        f"/v2/workflows/dlq/{action.value}",
    )
    assert error.error == "a bulk call answered 404 while every id is in the DLQ"
    assert len(client.calls) == 1


# --- answers that name fewer (or more) runs than ids -----------------------------------------


def test_an_answer_with_no_run_acted_on_nothing() -> None:
    client = ScriptedClient({"a", "b"}, [runs(cursor="c1")])
    actor = make(client, batch_limit=10)
    results = actor.act(items("a", "b"), NO)
    assert outcomes(results) == [
        ("a", Outcome.NOT_ACTED, None, None),
        ("b", Outcome.NOT_ACTED, None, None),
    ]
    assert reasons(results) == ["named in a call whose answer has no run"] * 2
    assert (actor.unpaired, actor.batch_limit, client.reads) == ([], 10, [])
    assert sent(actor.ledger, "a", "b") == [True, True]  # never sent again by this task


def test_as_many_entries_gone_as_runs_teaches_the_probe_and_pairs_them() -> None:
    # every id acted on, but the answer has a cursor: the DLQ shows all gone
    client = ScriptedClient(set(), [runs("a", "b", cursor="more")])
    actor = make(client)
    actor.unpaired.append(run("earlier"))
    results = actor.act(items("a", "b"), NO)
    assert client.reads == ["a", "b"]
    assert actor.probe.proven is True
    assert outcomes(results) == [
        ("a", Outcome.ACTED, "wfr_a", PairedBy.ANSWER_ORDER),
        ("b", Outcome.ACTED, "wfr_b", PairedBy.ANSWER_ORDER),
    ]
    assert [r.workflow_run_id for r in actor.unpaired] == ["wfr_earlier"]
    assert actor.batch_limit == MAX_BATCH


def test_one_run_for_three_ids_on_a_proven_server_pairs_the_one_that_left() -> None:
    client = ScriptedClient({"a", "c"}, [runs("b")])
    actor = make(client, probe=leaves())
    actor.unpaired.append(run("earlier"))
    results = actor.act(items("a", "b", "c"), NO)
    assert outcomes(results) == [
        ("a", Outcome.NOT_ACTED, None, None),
        ("c", Outcome.NOT_ACTED, None, None),
        ("b", Outcome.ACTED, "wfr_b", PairedBy.SINGLE_ID),
    ]
    assert reasons(results)[:2] == ["named in a call that did not act on it"] * 2
    assert [r.workflow_run_id for r in actor.unpaired] == ["wfr_earlier"]
    assert actor.batch_limit == 1  # later calls name no more than the server took


def test_two_runs_for_three_ids_two_gone_pair_in_answer_order_and_lower_the_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = ScriptedClient({"b"}, [runs("a", "c", cursor="more")])
    actor = make(client, probe=leaves())
    caplog.set_level(logging.WARNING, "airflow_provider_wfdlq.recovery")
    results = actor.act(items("a", "b", "c"), NO)
    assert outcomes(results) == [
        ("b", Outcome.NOT_ACTED, None, None),
        ("a", Outcome.ACTED, "wfr_a", PairedBy.ANSWER_ORDER),
        ("c", Outcome.ACTED, "wfr_c", PairedBy.ANSWER_ORDER),
    ]
    assert (actor.batch_limit, actor.unpaired) == (2, [])
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_runs_that_do_not_match_the_entries_gone_are_unpaired() -> None:
    client = ScriptedClient({"a", "c"}, [runs("x", "y")])
    actor = make(client, probe=leaves())
    results = actor.act(items("a", "b", "c"), NO)
    assert outcomes(results) == [
        ("a", Outcome.NOT_ACTED, None, None),
        ("c", Outcome.NOT_ACTED, None, None),
        ("b", Outcome.ACTED_RUN_UNKNOWN, None, None),
    ]
    assert reasons(results)[2] == "acted on (left the DLQ); 2 runs for 1 entries: unpaired"
    assert [r.workflow_run_id for r in actor.unpaired] == ["wfr_x", "wfr_y"]


def test_more_runs_than_ids_are_unpaired_and_keep_the_limit() -> None:
    client = ScriptedClient(set(), [runs("x", "y", "z")])
    actor = make(client, probe=leaves(), batch_limit=2)
    results = actor.act(items("a", "b"), NO)
    assert [r.outcome for r in results] == [Outcome.ACTED_RUN_UNKNOWN] * 2
    assert reasons(results)[0] == "acted on (left the DLQ); 3 runs for 2 entries: unpaired"
    assert (len(actor.unpaired), actor.batch_limit) == (3, 2)


@pytest.mark.parametrize(
    ("limit", "after"),
    [(1, 1), (2, 2), (3, 2), (50, 2)],
    ids=["below", "at", "above", "default"],
)
def test_the_limit_drops_to_the_runs_made_only_below_it(limit: int, after: int) -> None:
    client = ScriptedClient({"c"}, [runs("a", "b")])
    actor = make(client, probe=leaves(), batch_limit=limit)
    actor.act(items("a", "b", "c"), NO)
    assert actor.batch_limit == after


def test_one_run_and_one_entry_gone_proves_a_fresh_probe_and_pairs_it() -> None:
    client = ScriptedClient({"a", "c"}, [runs("b", cursor="more")])
    actor = make(client)
    results = actor.act(items("a", "b", "c"), NO)
    assert actor.probe.proven is True
    assert outcomes(results) == [
        ("a", Outcome.NOT_ACTED, None, None),
        ("c", Outcome.NOT_ACTED, None, None),
        ("b", Outcome.ACTED, "wfr_b", PairedBy.SINGLE_ID),
    ]


def test_fewer_runs_on_a_server_not_proven_are_unknown_and_the_probe_unchanged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = ScriptedClient({"c"}, [runs("b")])  # two left for one run: which one acted?
    actor = make(client)
    caplog.set_level(logging.ERROR, "airflow_provider_wfdlq.recovery")
    results = actor.act(items("a", "b", "c"), NO)
    assert client.reads == ["a", "b", "c"]
    assert [(r.outcome, r.run, r.paired_by) for r in results] == [(Outcome.UNKNOWN, None, None)] * 3
    assert reasons(results) == ["the call named 3 ids and its answer has 1 runs"] * 3
    assert actor.probe.to_state() == {"seen_leave": False, "seen_stay": False}
    assert [r.workflow_run_id for r in actor.unpaired] == ["wfr_b"]
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1


def test_fewer_runs_on_a_server_that_keeps_entries_read_nothing_and_are_unknown() -> None:
    client = ScriptedClient({"a", "b", "c"}, [runs("b")], keep=True)
    actor = make(client, probe=LeaveProbe(seen_leave=True, seen_stay=True))
    results = actor.act(items("a", "b", "c"), NO)
    assert client.reads == []
    assert [r.outcome for r in results] == [Outcome.UNKNOWN] * 3


def test_as_many_gone_as_runs_of_fewer_than_named_proves_the_probe_and_pairs_them() -> None:
    client = ScriptedClient({"c"}, [runs("a", "b", cursor="more")])
    actor = make(client)
    results = actor.act(items("a", "b", "c"), NO)
    assert client.reads == ["a", "b", "c"]
    assert actor.probe.to_state() == {"seen_leave": True, "seen_stay": False}
    assert outcomes(results) == [
        ("c", Outcome.NOT_ACTED, None, None),
        ("a", Outcome.ACTED, "wfr_a", PairedBy.ANSWER_ORDER),
        ("b", Outcome.ACTED, "wfr_b", PairedBy.ANSWER_ORDER),
    ]


# --- labels ----------------------------------------------------------------------------------


def test_no_extra_labels_is_one_group_or_none() -> None:
    base = Overrides(retries=1)
    group = items("a", "b")
    assert label_groups(group, base, (), "append") == [(base, group)]
    assert label_groups([], base, (), "append") == []


def test_extra_labels_group_entries_by_the_labels_their_runs_get() -> None:
    base = Overrides(retries=1)
    a, b, c = (
        Item.build(dlq_id(n), 1, None, (None, None, None, labels, None))
        for n, labels in (("a", ("x",)), ("b", ()), ("c", ("x", "new")))
    )
    appended = label_groups([a, b, c], base, ("new",), "append")
    assert [(o.label, o.retries, [name(i.dlq_id) for i in g]) for o, g in appended] == [
        (("x", "new"), 1, ["a", "c"]),  # c's "new" is not doubled
        (("new",), 1, ["b"]),
    ]
    replaced = label_groups([a, b, c], base, ("new",), "replace")
    assert [(o.label, [name(i.dlq_id) for i in g]) for o, g in replaced] == [
        (("new",), ["a", "b", "c"])
    ]
    assert label_groups([], base, ("new",), "append") == []

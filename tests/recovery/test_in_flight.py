"""Calls in flight and acting while listing (``pacing.in_flight``): the invariants still
hold under every reading the dev server plays, with lost answers and a worker that dies.

With calls overlapping, calls no longer reach the server strictly oldest first; what must
still hold: every walk ends (I1), no entry acted on twice (I2), every stated pair true
(I3), counts add up (I4), and under a cap the oldest of the whole selection are taken (I5).
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest

from airflow_provider_wfdlq.client import DLQFilters, ServerError, WorkflowDLQClient
from airflow_provider_wfdlq.devserver import READINGS
from airflow_provider_wfdlq.recovery import (
    JsonLinesSink,
    ListingError,
    MemoryStore,
    Pacing,
    Redrive,
)
from airflow_provider_wfdlq.recovery.inflight import InFlight
from airflow_provider_wfdlq.recovery.plan import Worklist
from tests.recovery.invariants import (
    acted_ids,
    assert_counts_add_up,
    assert_never_twice,
    assert_pairs_true,
)
from tests.recovery.test_invariants import (
    ENTRIES,
    EVERYTHING,
    WALKING,
    Died,
    DyingClient,
    plan,
    world,
)

FAST = Pacing(in_flight=4, page_size=20)


def check(server: Any, report: Any) -> None:
    assert_never_twice(server)
    assert_pairs_true(server, report)
    assert_counts_add_up(report)


@pytest.mark.parametrize("reading", WALKING)
def test_every_invariant_but_strict_order_holds_with_calls_in_flight(
    wfdlq_devserver: Any, client: WorkflowDLQClient, reading: str
) -> None:
    server = wfdlq_devserver
    created = world(server, reading)

    report = Redrive(client, plan(pacing=FAST)).run()

    assert report.stopped == "done"
    check(server, report)
    assert report.found == ENTRIES
    if not READINGS[reading].get("max_ids_per_call"):
        assert set(acted_ids(server)) == set(created)
        assert report.counts["resumed"] == ENTRIES


def test_calls_overlap_and_acting_starts_while_listing(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    server = wfdlq_devserver
    world(server, "default")

    Redrive(client, plan(pacing=FAST)).run()

    kinds = [
        "list" if r["method"] == "GET" and r["path"] == "/v2/workflows/dlq" else r["method"]
        for r in server.control.requests()
    ]
    first_act, last_list = kinds.index("POST"), len(kinds) - 1 - kinds[::-1].index("list")
    assert first_act < last_list  # a resume went out before the listing ended


def test_an_offset_cursor_disturbed_by_acting_while_listing_misses_nothing(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    """Entries leave as they are resumed; a cursor that counts places then steps over
    others. The second pass finds them."""
    server = wfdlq_devserver
    created = world(server, "offset_cursor")

    report = Redrive(client, plan(pacing=FAST)).run()

    assert set(acted_ids(server)) == set(created)
    check(server, report)
    assert report.found == report.counts["resumed"] == ENTRIES


@pytest.mark.parametrize(
    ("config", "second_pass"),
    [
        ({"offset_cursor": True}, True),
        ({"offset_cursor": True, "resumed_lag": 3}, True),
        ({"offset_cursor": True, "resumed_lag": 12}, True),  # still leaving in later passes
        ({"offset_cursor": True, "keep_resumed": True}, False),
    ],
)
def test_the_second_pass_runs_when_acted_entries_left_while_paging(
    wfdlq_devserver: Any, client: WorkflowDLQClient, config: dict[str, Any], second_pass: bool
) -> None:
    server = wfdlq_devserver
    server.control.reset(entries=ENTRIES, config=config)
    created = {e["dlqId"]: e["createdAt"] for e in server.control.entries()}

    report = Redrive(client, plan(pacing=FAST)).run()

    check(server, report)
    assert set(acted_ids(server)) == set(created)
    assert (list_starts(server) > 1) is second_pass  # more passes until one is conclusive


def list_starts(server: Any) -> int:
    """List calls without a cursor from the window's start: each starts a pass."""
    low = str(EVERYTHING.from_date)
    return sum(
        1
        for r in server.control.requests()
        if r["method"] == "GET"
        and r["path"] == "/v2/workflows/dlq"
        and not any(name == "cursor" for name, _ in r["query"])
        and ["fromDate", low] in r["query"]
    )


def test_passes_end_when_two_see_the_same_entries_the_server_did_not_act_on(
    wfdlq_devserver: Any, client: WorkflowDLQClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that acts on fewer ids than named leaves the rest in the DLQ (not acted,
    never sent again): every pass sees them. Two passes in a row seeing the very same ones
    end the walk, not the cap of 5 passes."""
    world(wfdlq_devserver, "capped")
    report = Redrive(client, plan(pacing=FAST)).run()
    check(wfdlq_devserver, report)
    assert report.counts["not_acted"] > 0
    assert list_starts(wfdlq_devserver) == 3  # the walk, a pass, and the one that agrees
    assert not [r for r in caplog.records if "passes in a row" in r.getMessage()]


@pytest.mark.parametrize("reading", ["default", "keep_resumed", "hostile", "offset_cursor"])
def test_a_lost_answer_among_calls_in_flight_is_never_resent(
    wfdlq_devserver: Any, client: WorkflowDLQClient, reading: str
) -> None:
    server = wfdlq_devserver
    world(server, reading)
    server.control.add_fault("drop", method="POST", path_prefix="/v2/workflows/dlq/resume")
    stream = io.StringIO()

    report = Redrive(client, plan(pacing=FAST), sink=JsonLinesSink(stream)).run()

    assert report.stopped == "done"
    check(server, report)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len({line["dlq_id"] for line in lines}) == len(lines) == report.found


@pytest.mark.parametrize("dies_at", [1, 3])
@pytest.mark.parametrize("reading", ["default", "keep_resumed", "hostile", "offset_cursor"])
def test_a_worker_that_dies_with_calls_in_flight_and_a_retry_act_once(
    wfdlq_devserver: Any, client: WorkflowDLQClient, reading: str, dies_at: int
) -> None:
    server = wfdlq_devserver
    created = world(server, reading)
    store = MemoryStore()
    stream = io.StringIO()

    with pytest.raises(Died):
        Redrive(
            DyingClient(client, dies_at),  # type: ignore[arg-type]
            plan(pacing=FAST),
            store=store,
            sink=JsonLinesSink(stream),
        ).run()
    report = Redrive(client, plan(pacing=FAST), store=store, sink=JsonLinesSink(stream)).run()

    assert report.stopped == "done"
    check(server, report)
    assert report.found == ENTRIES
    if not READINGS[reading].get("max_ids_per_call"):
        gone = set(acted_ids(server))
        unknown = report.counts["answer_lost_unknown"] + report.counts["not_acted"]
        assert len(gone) + unknown >= ENTRIES - report.counts["not_acted"]
        assert gone <= set(created)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    ids = [line["dlq_id"] for line in lines if not line["event"].startswith("skipped_")]
    assert len(ids) == len(set(ids))  # no entry written twice across the two tries


@pytest.mark.parametrize("reading", ["default", "newest_first", "hostile"])
def test_under_a_cap_calls_in_flight_still_take_the_oldest(
    wfdlq_devserver: Any, client: WorkflowDLQClient, reading: str
) -> None:
    server = wfdlq_devserver
    created = world(server, reading)

    report = Redrive(client, plan(max_resumes=90, pacing=FAST)).run()

    oldest = sorted(created, key=lambda i: (created[i], i))
    acted = acted_ids(server)
    assert 0 < len(acted) <= 90
    assert set(acted) <= set(oldest[:90])
    check(server, report)
    assert report.stopped == "max_resumes"


def test_a_stop_while_listing_records_what_was_acted_on(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    server = wfdlq_devserver
    world(server, "default")
    pages = {"n": 0}

    def should_stop() -> bool:  # asked before each page and each batch
        pages["n"] += 1
        return pages["n"] > 12

    report = Redrive(client, plan(pacing=FAST), should_stop=should_stop).run()

    assert report.stopped == "stopped"
    check(server, report)
    assert 0 < len(acted_ids(server)) < ENTRIES
    assert report.counts["resumed"] == len(acted_ids(server))


def test_a_refusal_while_listing_is_raised_after_the_calls_out_are_recorded(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    """A 503 the server answered (every retry too) acted on nothing: its ids leave the
    ledger, the walk fails once the other calls out are recorded, a retry sends them."""
    server = wfdlq_devserver
    created = world(server, "default")
    server.control.add_fault("503", method="POST", path_prefix="/v2/workflows/dlq/resume", times=20)
    store = MemoryStore()

    with pytest.raises(ServerError):
        Redrive(client, plan(pacing=FAST), store=store).run()
    server.control.clear_faults()
    report = Redrive(client, plan(pacing=FAST), store=store).run()

    assert report.stopped == "done"
    check(server, report)
    assert set(acted_ids(server)) == set(created)


def test_named_ids_with_calls_in_flight(wfdlq_devserver: Any, client: WorkflowDLQClient) -> None:
    server = wfdlq_devserver
    created = world(server, "capped")
    ids = tuple(sorted(created)[:120])

    report = Redrive(client, plan(filters=DLQFilters(dlq_ids=ids), pacing=FAST)).run()

    assert report.stopped == "done"
    check(server, report)
    assert report.found == 120


def test_a_cursor_that_never_advances_still_ends_when_acting_while_listing(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    server = wfdlq_devserver
    world(server, "frozen_cursor")
    store = MemoryStore()

    pacing = Pacing(in_flight=4)  # pages of 100: a batch goes out after the first page

    with pytest.raises(ListingError, match=r"twice.*recorded"):
        Redrive(client, plan(pacing=pacing), store=store).run()

    acted = assert_never_twice(server)
    assert len(server.control.requests()) < 40  # ended at once, one list call ahead at most
    assert acted
    report = Redrive(client, plan(pacing=pacing), store=store, should_stop=lambda: True).run()
    assert report.counts["resumed"] == len(acted)  # the retry knows what the dead try did


def test_a_lean_listing_keeps_what_judging_and_acting_read(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    world(wfdlq_devserver, "default", entries=30)
    full = client.list_messages(count=30).messages
    lean = client.list_messages(count=30, lean=True).messages
    read = ["dlq_id", "workflow_run_id", "workflow_url", "created_at", "url", "labels"]
    read += ["response_status", "response_header", "response_body", "failure_function_state"]
    for a, b in zip(full, lean, strict=True):
        assert {k: getattr(a, k) for k in read} == {k: getattr(b, k) for k in read}
        assert b.raw == a.raw
    assert any(m.body for m in full)
    assert not any(m.body or m.header for m in lean)


# -- the parts ----------------------------------------------------------------------------


def test_in_flight_never_has_more_calls_out_than_its_limit() -> None:
    out_now, most = {"n": 0}, {"n": 0}
    lock = threading.Lock()
    release = threading.Event()

    def send(call: Any) -> Any:
        with lock:
            out_now["n"] += 1
            most["n"] = max(most["n"], out_now["n"])
        release.wait(1)
        with lock:
            out_now["n"] -= 1
        return call.chunk

    class FakeCall:
        def __init__(self, chunk: int) -> None:
            self.chunk = chunk

    flight = InFlight(send, 3)
    answers: list[Any] = []
    for n in range(9):
        while flight.room < 1:
            release.set()
            answers += flight.answered(block=True)
        flight.submit(FakeCall(n))  # type: ignore[arg-type]
    while flight:
        release.set()
        answers += flight.answered(block=True)
    flight.close()
    assert most["n"] <= 3
    assert sorted(a for _, a in answers) == list(range(9))


def test_in_flight_of_one_sends_on_the_callers_thread() -> None:
    threads: list[threading.Thread] = []

    def send(call: Any) -> Any:
        threads.append(threading.current_thread())
        return None

    flight = InFlight(send, 1)
    flight.submit(object())  # type: ignore[arg-type]
    assert flight.room == 0
    assert len(flight.answered()) == 1
    assert threads == [threading.current_thread()]


def test_the_worklist_sorts_what_is_left_after_some_was_taken() -> None:
    from airflow_provider_wfdlq.recovery.plan import Item

    queue = Worklist()
    for at in (5, 3, 9, 1):
        queue.append(Item.build(f"d{at}", at))
    assert queue.popleft().dlq_id == "d5"
    queue.sort()
    assert [i.dlq_id for i in queue.drain()] == ["d1", "d3", "d9"]


def test_in_flight_is_validated_before_any_request() -> None:
    from airflow_provider_wfdlq.client import ValidationError

    with pytest.raises(ValidationError, match=r"pacing\.in_flight"):
        Pacing.build({"in_flight": 9})
    with pytest.raises(ValidationError, match=r"pacing\.in_flight"):
        Pacing.build({"in_flight": 0})
    with pytest.raises(ValidationError, match=r"pacing\.in_flight"):
        Pacing.build({"in_flight": None})
    assert Pacing.build({"in_flight": 8}).in_flight == 8
    assert Pacing().in_flight == 1


def test_a_window_with_both_ends_is_split_into_halves_that_share_their_edge() -> None:
    from airflow_provider_wfdlq.recovery.plan import split

    window = DLQFilters.build(from_date=1_700_000_000_000, to_date=1_700_000_000_101)
    halves = split(window, 2)
    assert [(h.from_date, h.to_date) for h in halves] == [
        (1_700_000_000_000, 1_700_000_000_050),
        (1_700_000_000_050, 1_700_000_000_101),
    ]
    assert split(DLQFilters.build(from_date=1_700_000_000_000), 2) == [
        DLQFilters.build(from_date=1_700_000_000_000)
    ]
    tiny = DLQFilters.build(from_date=1_700_000_000_000, to_date=1_700_000_000_001)
    assert split(tiny, 2) == [tiny]


def test_acting_while_listing_lists_both_halves_at_once(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    server = wfdlq_devserver
    world(server, "default")

    report = Redrive(client, plan(pacing=FAST)).run()

    starts = {
        dict(r["query"]).get("fromDate")
        for r in server.control.requests()
        if r["method"] == "GET"
        and r["path"] == "/v2/workflows/dlq"
        and not any(name == "cursor" for name, _ in r["query"])
    }
    assert len(starts) == 2  # the whole window's start, and its middle
    assert report.counts["resumed"] == ENTRIES


def test_a_checkpoint_names_the_calls_still_out_not_a_low_mark(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    """Calls answer out of order: an answered later call is recorded, an earlier one is still
    out when the task dies. The retry settles exactly the one still out (counts add up)."""
    world(wfdlq_devserver, "keep_resumed", entries=20)
    store = MemoryStore()
    first = Redrive(client, plan(pacing=FAST), store=store)
    first.tries.restore(0)
    early = first.ledger.record(["a-1"])  # out
    first.ledger.record(["b-1"])  # answered and recorded
    first.tries.save(pending=["a-1"])
    assert early == 0

    retry = Redrive(client, plan(pacing=FAST), store=store)
    retry.tries.restore(0)
    settled: list[str] = []

    def settle(items: Any) -> list[Any]:
        settled.extend(item.dlq_id for item in items)
        return []

    retry.actor.settle = settle  # type: ignore[method-assign]
    retry.tries.settle_in_flight()
    assert settled == ["a-1"]

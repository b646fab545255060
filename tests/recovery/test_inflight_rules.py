"""Calls out at once (recovery/inflight.py), one rule at a time: how many may be out, on
which thread they are sent, in which order answers come back, which ids a checkpoint names,
and that waiting ends. Unit level: a send function stands in for the HTTP call; the walks
that use it are in test_in_flight.py."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any

import pytest

from airflow_provider_wfdlq.client import Overrides
from airflow_provider_wfdlq.recovery.actor import Answer, Call
from airflow_provider_wfdlq.recovery.inflight import MAX_IN_FLIGHT, InFlight
from airflow_provider_wfdlq.recovery.plan import Item


def call(chunk: int, *ids: str) -> Call:
    return Call([Item.build(i) for i in ids or (f"{chunk}-0",)], Overrides(), chunk, single=True)


class Gate:
    """A send that waits until its call's chunk is let through, and says who sent what."""

    def __init__(self) -> None:
        self.open: dict[int, threading.Event] = {}
        self.threads: list[str] = []
        self.lock = threading.Lock()

    def let(self, *chunks: int) -> None:
        for chunk in chunks:
            self.event(chunk).set()

    def event(self, chunk: int) -> threading.Event:
        with self.lock:
            return self.open.setdefault(chunk, threading.Event())

    def __call__(self, sent: Call) -> Answer:
        with self.lock:
            self.threads.append(threading.current_thread().name)
        assert self.event(sent.chunk).wait(5), "never let through"
        return Answer(error=RuntimeError(str(sent.chunk)))


def chunks(answered: list[tuple[Call, Answer]]) -> list[int]:
    return [c.chunk for c, _ in answered]


def settle(flight: InFlight, answered: int | None = None) -> None:
    """Wait until ``answered`` calls out (all by default) have their answers, so that the
    next non-blocking read sees them."""
    want = len(flight._out) if answered is None else answered
    deadline = time.monotonic() + 5
    while sum(f.done() for f in flight._out) < want and time.monotonic() < deadline:
        time.sleep(0.001)


def test_the_most_calls_out_at_once() -> None:
    assert MAX_IN_FLIGHT == 8


def test_a_limit_of_one_sends_each_call_at_once_on_the_callers_thread() -> None:
    sent: list[tuple[int, str]] = []

    def send(c: Call) -> Answer:
        sent.append((c.chunk, threading.current_thread().name))
        return Answer()

    flight = InFlight(send, 1)
    assert (len(flight), flight.room) == (0, 1)
    flight.submit(call(0))
    assert sent == [(0, threading.current_thread().name)]  # sent before submit returned
    assert (len(flight), flight.room, flight.pending_ids()) == (1, 0, ["0-0"])
    assert chunks(flight.answered()) == [0]
    assert (len(flight), flight.room, flight.answered()) == (0, 1, [])
    flight.close()


def test_a_higher_limit_sends_on_workers_and_counts_what_is_out() -> None:
    gate = Gate()
    flight = InFlight(gate, 3)
    flight.submit(call(0, "1-0", "2-0"))
    flight.submit(call(1, "3-0"))
    assert (len(flight), flight.room) == (2, 1)
    assert sorted(flight.pending_ids()) == ["1-0", "2-0", "3-0"]
    assert flight.answered() == []  # nothing answered yet: no wait
    gate.let(0, 1)
    settle(flight)
    assert chunks(flight.answered()) == [0, 1]
    assert (len(flight), flight.room, flight.pending_ids()) == (0, 3, [])
    flight.close()
    assert threading.current_thread().name not in gate.threads


def test_answers_come_back_in_the_order_the_calls_were_sent() -> None:
    gate = Gate()
    flight = InFlight(gate, 4)
    for chunk in (0, 1, 2):
        flight.submit(call(chunk))
    gate.let(2, 1)  # the later calls answer first
    settle(flight, 2)
    assert chunks(flight.answered()) == [1, 2]
    assert flight.pending_ids() == ["0-0"]  # the earlier call is still out
    gate.let(0)
    assert chunks(flight.answered(block=True)) == [0]
    flight.close()


def test_an_answered_call_is_named_until_it_is_handed_back() -> None:
    """A checkpoint taken between an answer and its reading still names the call: its
    results are not recorded yet."""
    flight = InFlight(lambda c: Answer(), 1)
    flight.submit(call(0, "1-0"))
    flight.submit(call(1, "2-0", "3-0"))
    assert flight.pending_ids() == ["1-0", "2-0", "3-0"]
    assert len(flight) == 2
    flight.answered()
    assert flight.pending_ids() == []


def test_a_read_that_does_not_block_does_not_wait() -> None:
    gate = Gate()
    flight = InFlight(gate, 2)
    flight.submit(call(0))
    threading.Timer(0.5, gate.let, (0,)).start()  # answered later than any read that polls
    assert flight.answered() == []
    assert flight.pending_ids() == ["0-0"]
    assert chunks(flight.answered(block=True)) == [0]
    flight.close()


def test_a_blocking_read_waits_for_one_answer_only() -> None:
    gate = Gate()
    flight = InFlight(gate, 2)
    flight.submit(call(0))
    flight.submit(call(1))
    threading.Timer(0.05, gate.let, (1,)).start()
    started = time.monotonic()
    assert chunks(flight.answered(block=True)) == [1]
    assert time.monotonic() - started >= 0.04  # it waited
    assert flight.pending_ids() == ["0-0"]
    gate.let(0)
    flight.close()


def test_a_blocking_read_also_wakes_for_a_listing_page() -> None:
    gate = Gate()
    flight = InFlight(gate, 2)
    flight.submit(call(0))
    page: Future[Any] = Future()
    threading.Timer(0.05, page.set_result, (None,)).start()
    assert flight.answered(block=True, until=[page]) == []
    assert page.done()
    gate.let(0)
    flight.close()


def test_a_blocking_read_with_nothing_out_returns_at_once() -> None:
    flight = InFlight(lambda c: Answer(), 2)
    page: Future[Any] = Future()  # never done: must not be waited for
    assert flight.answered(block=True, until=[page]) == []
    flight.close()


def test_a_dying_worker_is_raised_on_the_callers_thread() -> None:
    class Dying(BaseException):
        pass

    def send(c: Call) -> Answer:
        raise Dying

    flight = InFlight(send, 2)
    flight.submit(call(0))
    with pytest.raises(Dying):
        flight.answered(block=True)
    flight.close()


def test_close_cancels_calls_not_yet_sent() -> None:
    gate = Gate()
    flight = InFlight(gate, 2)
    for chunk in (0, 1, 2):  # the third waits for a worker
        flight.submit(call(chunk))
    threading.Timer(0.5, gate.let, (0, 1, 2)).start()
    flight.close()
    assert len(gate.threads) == 2  # the third was never sent
    assert [f.cancelled() for f in flight._out] == [False, False, True]


def test_close_waits_for_calls_out() -> None:
    gate = Gate()
    flight = InFlight(gate, 2)
    flight.submit(call(0))
    threading.Timer(0.05, gate.let, (0,)).start()
    flight.close()
    assert all(f.done() for f in flight._out)
    InFlight(lambda c: Answer(), 1).close()  # no pool: nothing to close

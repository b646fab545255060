"""What one try of a task hands the next (recovery/tries.py), rule by rule: what a checkpoint
holds, what a retry takes back from it, and which ids a retry settles as in flight, never
sends. Unit level: a store in memory and no server (a request fails the test); the walks
that die and retry are in test_invariants.py and test_in_flight.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from airflow_provider_wfdlq.client import DLQFilters, WorkflowDLQClient
from airflow_provider_wfdlq.recovery import MemoryStore, Redrive
from airflow_provider_wfdlq.recovery.actor import LeaveProbe, Result
from airflow_provider_wfdlq.recovery.checkpoint import CHECKPOINT_KEY, CHECKPOINT_VERSION
from airflow_provider_wfdlq.recovery.plan import Item
from airflow_provider_wfdlq.recovery.states import Outcome
from airflow_provider_wfdlq.recovery.tries import RUNS, _entries
from tests.recovery.test_invariants import plan

RUNS_KEY = f"{CHECKPOINT_KEY}.{RUNS}"


def no_request(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected: {request.method} {request.url.path}")


@pytest.fixture
def offline() -> WorkflowDLQClient:
    return WorkflowDLQClient(
        "token", "http://127.0.0.1:9", transport=httpx.MockTransport(no_request)
    )


def walk(client: WorkflowDLQClient, store: MemoryStore) -> Redrive:
    return Redrive(client, plan(), store=store)


class Settled:
    """Stands in for the actor's settle: what it was asked to settle, each as not acted."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def __call__(self, items: Sequence[Item]) -> list[Result]:
        self.asked.append([i.dlq_id for i in items])
        return [Result(i, Outcome.NOT_ACTED, reason="settled") for i in items]


def first_try(client: WorkflowDLQClient, store: MemoryStore, now_ms: int = 0) -> Redrive:
    """A try with no checkpoint before it, its walk started at ``now_ms``."""
    redrive = walk(client, store)
    redrive.tries.restore(now_ms)
    return redrive


def retried(
    client: WorkflowDLQClient, store: MemoryStore, settled: Settled | None = None
) -> tuple[Redrive, Settled]:
    """The next try: it takes up the checkpoint and settles what was in flight."""
    settled = settled if settled is not None else Settled()
    retry = walk(client, store)
    retry.tries.restore(0)
    retry.actor.settle = settled  # type: ignore[method-assign]
    retry.tries.settle_in_flight()
    return retry, settled


def test_entries_reads_as_english() -> None:
    assert [_entries(n) for n in (0, 1, 2)] == ["0 entries", "1 entry", "2 entries"]


def test_a_first_try_starts_its_walk_now(offline: WorkflowDLQClient) -> None:
    store = MemoryStore()
    redrive = walk(offline, store)
    limit = redrive.actor.batch_limit
    redrive.tries.restore(1_700_000_000_000)
    assert redrive.tries.bound == 1_700_000_000_000
    assert (redrive.actor.batch_limit, redrive.actor.probe.to_state()) == (
        limit,
        {"seen_leave": False, "seen_stay": False},
    )
    assert store.data == {}


def test_a_checkpoint_holds_the_walk_and_a_retry_takes_it_back(
    offline: WorkflowDLQClient,
) -> None:
    store = MemoryStore()
    first = first_try(offline, store, 1_700_000_000_000)
    first.ledger.record(["1-0", "2-0"])
    first.actor.probe = LeaveProbe(seen_leave=True)
    first.actor.batch_limit = 7
    first.gate.canary_done = True
    first.gate.canary_runs = [("wfr_1", 5)]
    first.recorder.report.counts["resumed"] = 2
    first.recorder.report.counts["restarted_incompatible"] = 3
    first.recorder.report.runs = [{"dlqId": "1-0", "workflowRunId": "wfr_1"}]
    first.tries.save(pending=["2-0"], listed=False)

    saved = store.get(CHECKPOINT_KEY)
    assert {k: saved[k] for k in ("version", "bound", "settled", "pending", "listed")} == {
        "version": CHECKPOINT_VERSION,
        "bound": 1_700_000_000_000,
        "settled": 1,
        "pending": ["2-0"],
        "listed": False,
    }
    assert (saved["probe"], saved["batch_limit"], saved["canary"]) == (
        {"seen_leave": True, "seen_stay": False},
        7,
        {"done": True, "runs": [["wfr_1", 5]]},
    )
    assert sorted(k for k in saved["report"] if k.startswith("runs")) == []
    assert store.get(RUNS_KEY) == {
        "runs": [{"dlqId": "1-0", "workflowRunId": "wfr_1"}],
        "runs_truncated": False,
    }

    retry = walk(offline, store)
    retry.tries.restore(1_800_000_000_000)
    assert retry.tries.bound == 1_700_000_000_000  # the first try's walk, not a new one
    assert retry.actor.probe.to_state() == {"seen_leave": True, "seen_stay": False}
    assert retry.actor.batch_limit == 7
    assert (retry.gate.canary_done, retry.gate.canary_runs) == (True, [("wfr_1", 5)])
    assert retry.recorder.report.counts["resumed"] == 2
    assert retry.recorder.report.runs == [{"dlqId": "1-0", "workflowRunId": "wfr_1"}]
    assert retry.recorder.skips_written is False  # listed=False: the skips were not written
    assert retry.restarts.done == 3


def test_the_runs_are_written_only_when_they_change(offline: WorkflowDLQClient) -> None:
    store = MemoryStore()
    redrive = first_try(offline, store)
    writes: list[str] = []
    real_set = store.set

    def spy(key: str, value: Any) -> None:
        writes.append(key)
        real_set(key, value)

    store.set = spy  # type: ignore[method-assign]
    redrive.tries.save()
    redrive.tries.save()
    redrive.recorder.report.runs.append({"dlqId": "1-0", "workflowRunId": "wfr_1"})
    redrive.tries.save()
    redrive.recorder.report.runs_truncated = True
    redrive.tries.save()
    assert writes == [RUNS_KEY, CHECKPOINT_KEY, CHECKPOINT_KEY] + [RUNS_KEY, CHECKPOINT_KEY] * 2


def test_an_older_checkpoint_without_the_newer_fields_reads_as_it_meant(
    offline: WorkflowDLQClient,
) -> None:
    """Only ``bound`` is required: no settled (everything in the ledger may be in flight),
    no pending, no probe, no batch limit, no canary, listed (the skips are written)."""
    store = MemoryStore()
    store.set(CHECKPOINT_KEY, {"version": CHECKPOINT_VERSION, "bound": 5})
    first = walk(offline, store)
    first.ledger.record(["1-0"])
    retry = walk(offline, store)
    limit = retry.actor.batch_limit
    retry.tries.restore(9)
    assert (retry.tries.bound, retry.actor.batch_limit, retry.recorder.skips_written) == (
        5,
        limit,
        True,
    )
    assert retry.actor.probe.to_state() == {"seen_leave": False, "seen_stay": False}
    fresh = walk(offline, MemoryStore()).gate
    assert (retry.gate.canary_done, retry.gate.canary_runs) == (fresh.canary_done, [])
    assert retry.restarts.done == 0
    settled = Settled()
    retry.actor.settle = settled  # type: ignore[method-assign]
    retry.tries.settle_in_flight()
    assert settled.asked == [["1-0"]]


def test_a_retry_settles_the_calls_out_and_what_came_after_once_each(
    offline: WorkflowDLQClient,
) -> None:
    store = MemoryStore()
    first = first_try(offline, store)
    first.ledger.record(["1-0"])  # out at the checkpoint
    first.ledger.record(["2-0", "3-0"])  # out, then refused: acted on none
    first.ledger.record(["4-0"])  # recorded: settled
    first.tries.save(pending=["1-0", "2-0", "3-0"])
    first.ledger.release(["2-0", "3-0"])
    first.ledger.record(["5-0", "1-0"])  # after the checkpoint (1-0 can't be: never twice)

    retry, settled = retried(offline, store)
    assert settled.asked == [["1-0", "5-0"]]  # the calls out first, each id once
    assert retry.recorder.report.counts["not_acted"] == 2
    saved = store.get(CHECKPOINT_KEY)
    assert (saved["settled"], saved["pending"]) == (retry.ledger.chunks, [])
    retried(offline, store, settled)  # a third try: nothing is in flight any more
    assert settled.asked == [["1-0", "5-0"]]


def test_nothing_in_flight_settles_nothing_and_writes_nothing(offline: WorkflowDLQClient) -> None:
    store = MemoryStore()
    first = first_try(offline, store)
    first.ledger.record(["1-0"])
    first.tries.save()
    before = dict(store.data)
    _, settled = retried(offline, store)
    assert (settled.asked, store.data) == ([], before)


def test_a_first_try_has_nothing_in_flight_whatever_the_ledger_holds(
    offline: WorkflowDLQClient,
) -> None:
    """A cleared task run again starts from the ledger's end: what earlier runs of the
    task sent is never sent again, and not settled again either."""
    store = MemoryStore()
    walk(offline, store).ledger.record(["1-0"])
    _, settled = retried(offline, store)
    assert settled.asked == []


def test_clear_drops_the_checkpoint_and_keeps_the_ledger(offline: WorkflowDLQClient) -> None:
    store = MemoryStore()
    redrive = first_try(offline, store)
    redrive.ledger.record(["1-0"])
    redrive.tries.save()
    redrive.tries.clear()
    assert (store.get(CHECKPOINT_KEY), store.get(RUNS_KEY)) == (None, None)
    assert "1-0" in walk(offline, store).ledger


def test_a_save_is_of_a_finished_listing_unless_told(offline: WorkflowDLQClient) -> None:
    store = MemoryStore()
    first = first_try(offline, store)
    first.tries.save(listed=False)
    first.tries.save()
    assert store.get(CHECKPOINT_KEY)["listed"] is True
    retry = walk(offline, store)
    retry.recorder.skips_written = False
    retry.tries.restore(0)
    assert retry.recorder.skips_written is True


def test_a_walk_by_named_ids_keeps_its_vanished_count_out_of_the_checkpoint(
    offline: WorkflowDLQClient,
) -> None:
    """Named ids are checked again by the next try's listing (a vanished one is found
    vanished again); by filters, what vanished while acting is not listed again."""
    saved = {}
    for by_ids in (False, True):
        store = MemoryStore()
        filters = DLQFilters(dlq_ids=("1-0",)) if by_ids else plan().filters
        redrive = Redrive(offline, plan(filters=filters), store=store)
        redrive.tries.restore(0)
        redrive.recorder.report.counts["vanished"] = 1
        redrive.tries.save()
        saved[by_ids] = store.get(CHECKPOINT_KEY)["report"]["counts"].get("vanished")
    assert saved == {False: 1, True: None}

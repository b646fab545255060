"""The plan-then-act invariants under every reading the dev server plays, alone and with
lost answers and a worker that dies (issue: never a duplicate run).

I1 every walk ends; I2 at most once per entry per task, all tries together; I3 pairs are
proven or marked; I4 every entry ends in exactly one state, counts add up; I5 oldest
first across the whole selection.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_wfdlq.client import DLQFilters, Overrides, WorkflowDLQClient
from airflow_provider_wfdlq.devserver import READINGS
from airflow_provider_wfdlq.recovery import (
    JsonLinesSink,
    ListingError,
    MemoryStore,
    Pacing,
    Redrive,
    RedrivePlan,
)
from airflow_provider_wfdlq.recovery.safety import SafetyPolicy
from airflow_provider_wfdlq.recovery.selection import ErrorSelection
from tests.recovery.invariants import (
    acted_ids,
    assert_counts_add_up,
    assert_never_twice,
    check_all,
)

EVERYTHING = DLQFilters.build(from_date="2020-01-01T00:00:00Z")
#: Every reading whose listing ends (the frozen cursor's must not: its own test).
WALKING = sorted(name for name in READINGS if name != "frozen_cursor")
ENTRIES = 240


def plan(**kwargs: Any) -> RedrivePlan:
    kwargs.setdefault("filters", EVERYTHING)
    kwargs.setdefault("overrides", Overrides())
    kwargs.setdefault("selection", ErrorSelection(include_non_retryable=True))
    return RedrivePlan(**kwargs)


def world(server: Any, reading: str, entries: int = ENTRIES) -> dict[str, int]:
    """A fresh seeded world in ``reading``; each entry's created-at, for I5."""
    server.control.reset(entries=entries, config=dict(READINGS[reading]))
    return {e["dlqId"]: e["createdAt"] for e in server.control.entries()}


class Died(BaseException):
    """A worker killed mid-call (not an Exception: nothing in the engine may catch it)."""


#: The calls a :class:`DyingClient` counts by default: the run-making actions.
ACTIONS = ("resume_bulk", "restart_bulk", "resume", "restart")


class DyingClient:
    """The real client; the ``n``-th call of one of ``names`` (an action call) acts on the
    server, then the worker dies before the answer is read."""

    def __init__(self, client: WorkflowDLQClient, n: int, names: tuple[str, ...] = ACTIONS):
        self._client, self._left, self._names = client, n, names

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name not in self._names:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            answer = attr(*args, **kwargs)
            self._left -= 1
            if self._left == 0:
                raise Died
            return answer

        return call


@pytest.mark.parametrize("reading", WALKING)
def test_every_invariant_holds_in_each_reading(
    wfdlq_devserver: Any, client: WorkflowDLQClient, reading: str
) -> None:
    server = wfdlq_devserver
    created = world(server, reading)

    report = Redrive(client, plan()).run()

    assert report.stopped == "done"  # I1
    check_all(server, report, created)
    assert report.found == ENTRIES
    acted = set(acted_ids(server))
    if not READINGS[reading].get("max_ids_per_call"):
        assert acted == set(created)  # nothing is left behind when the server takes all
        assert report.counts["resumed"] == ENTRIES
    if READINGS[reading].get("answer_order", "sent") == "sent" and not READINGS[reading].get(
        "max_ids_per_call"
    ):
        # Pairs by answer order are then true too (and say they were inferred).
        made = {a["dlqId"]: a["newWorkflowRunId"] for a in server.control.actions()}
        assert all(made[r["dlq_id"]] == r["workflow_run_id"] for r in report.runs)
        assert {r["paired_by"] for r in report.runs} == {"answer_order"}


@pytest.mark.parametrize("reading", WALKING)
def test_a_lost_answer_is_never_resent(
    wfdlq_devserver: Any, client: WorkflowDLQClient, reading: str
) -> None:
    server = wfdlq_devserver
    created = world(server, reading)
    # The server acts on the first call, then drops the connection before answering.
    server.control.add_fault("drop", method="POST", path_prefix="/v2/workflows/dlq/resume")
    stream = io.StringIO()

    report = Redrive(client, plan(), sink=JsonLinesSink(stream)).run()

    assert report.stopped == "done"
    check_all(server, report, created)
    lost = report.counts["answer_lost_unknown"] + report.counts["resumed_answer_lost"]
    assert lost + report.counts["not_acted"] >= 1
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len({line["dlq_id"] for line in lines}) == len(lines) == report.found


@pytest.mark.parametrize("dies_at", [1, 3])
@pytest.mark.parametrize("reading", WALKING)
def test_a_worker_that_dies_mid_call_and_a_retry_act_once(
    wfdlq_devserver: Any, client: WorkflowDLQClient, reading: str, dies_at: int
) -> None:
    server = wfdlq_devserver
    created = world(server, reading)
    store = MemoryStore()

    with pytest.raises(Died):
        Redrive(DyingClient(client, dies_at), plan(), store=store).run()  # type: ignore[arg-type]
    before = len(acted_ids(server))
    report = Redrive(client, plan(), store=store).run()

    assert report.stopped == "done"
    assert len(acted_ids(server)) > before
    check_all(server, report, created)
    # The dead try's in-flight batch is accounted for, and never sent again.
    settled = sum(
        report.counts[k] for k in ("resumed_answer_lost", "answer_lost_unknown", "not_acted")
    )
    assert settled >= 1


@pytest.mark.parametrize("reading", ["default", "keep_resumed", "newest_first", "hostile"])
def test_max_resumes_takes_the_oldest_of_the_whole_selection(
    wfdlq_devserver: Any, client: WorkflowDLQClient, reading: str
) -> None:
    server = wfdlq_devserver
    created = world(server, reading)

    report = Redrive(client, plan(max_resumes=30)).run()

    assert report.stopped == "max_resumes"
    acted = acted_ids(server)
    oldest = sorted(created, key=lambda i: (created[i], i))
    assert len(acted) <= 30
    assert set(acted) <= set(oldest[:30])  # I5 under a cap
    check_all(server, report, created)
    assert report.counts["left_max_resumes"] == ENTRIES - 30


def test_a_cursor_that_never_advances_ends_the_listing_with_a_clear_error(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    server = wfdlq_devserver
    world(server, "frozen_cursor")

    with pytest.raises(ListingError, match="twice"):
        Redrive(client, plan()).run()

    assert acted_ids(server) == []


@pytest.mark.parametrize("reading", ["stale_cursors", "default"])
def test_stale_cursors_with_newest_first_listing_still_end_with_everything(
    wfdlq_devserver: Any, client: WorkflowDLQClient, reading: str
) -> None:
    server = wfdlq_devserver
    config = {**READINGS[reading], "stale_cursor_every": 2, "list_order": "newest", "page_cap": 7}
    server.control.reset(entries=ENTRIES, config=config)
    created = {e["dlqId"]: e["createdAt"] for e in server.control.entries()}

    report = Redrive(client, plan()).run()

    assert report.stopped == "done"
    assert set(acted_ids(server)) == set(created)
    check_all(server, report, created)


def test_exact_pairing_states_every_pair_as_fact_under_shuffled_answers(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    server = wfdlq_devserver
    created = world(server, "hostile", entries=60)

    pacing = Pacing(exact_pairing=True, concurrency=4, batch_size=10)
    report = Redrive(client, plan(pacing=pacing)).run()

    check_all(server, report, created, batch=10)
    assert {r["paired_by"] for r in report.runs} == {"single_id"}
    assert report.counts["resumed"] == 60


@pytest.mark.parametrize("reading", ["capped", "hostile"])
def test_named_ids_on_a_server_that_acts_on_fewer_never_loop(
    wfdlq_devserver: Any, client: WorkflowDLQClient, reading: str
) -> None:
    server = wfdlq_devserver
    created = world(server, reading)
    ids = tuple(sorted(created)[:120])

    report = Redrive(client, plan(filters=DLQFilters(dlq_ids=ids))).run()

    assert report.stopped == "done"
    assert_never_twice(server)
    assert_counts_add_up(report)
    assert report.found == 120
    assert len(server.control.requests()) < 400  # bounded, no re-send loop


@pytest.mark.parametrize("reading", ["default", "keep_resumed", "newest_first"])
def test_the_canary_is_the_oldest_entries(
    wfdlq_devserver: Any, client: WorkflowDLQClient, reading: str
) -> None:
    server = wfdlq_devserver
    created = world(server, reading)
    server.control.set_config(success_ratio=0.0, run_seconds=0.0)
    safety = SafetyPolicy(canary=5, canary_timeout=5.0, poll_interval=0.01)

    report = Redrive(client, plan(safety=safety), sleep=_advance(server)).run()

    assert report.stopped == "canary"
    oldest = sorted(created, key=lambda i: (created[i], i))[:5]
    assert sorted(acted_ids(server)) == sorted(oldest)
    assert_counts_add_up(report)
    assert report.counts["left_canary"] == ENTRIES - 5


def _advance(server: Any) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        server.control.advance_time(max(seconds, 1.0))

    return sleep

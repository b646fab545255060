"""Regressions found in review: canary gating, checkpoints around waits, caps per task,
unsendable labels, and what a trip leaves behind. Engine over the dev server."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_wfdlq.client import DLQFilters, Overrides, WorkflowDLQClient
from airflow_provider_wfdlq.recovery import MemoryStore, Pacing, Redrive, RedrivePlan
from airflow_provider_wfdlq.recovery.retention import DAY_MS, Retention
from airflow_provider_wfdlq.recovery.safety import SafetyPolicy
from tests.recovery.conftest import resumed_ids


def plan(count: int | None = None, **kwargs: Any) -> RedrivePlan:
    if count is not None:
        kwargs["pacing"] = Pacing(page_size=count, batch_size=min(count, 50))
    kwargs.setdefault("filters", DLQFilters.build(from_date="2020-01-01T00:00:00Z"))
    kwargs.setdefault("overrides", Overrides())
    return RedrivePlan(**kwargs)


def canary(size: int, **kwargs: Any) -> SafetyPolicy:
    return SafetyPolicy(canary=size, canary_timeout=30, poll_interval=0.01, **kwargs)


@pytest.fixture
def world(wfdlq_devserver: Any) -> Any:
    wfdlq_devserver.control.reset(entries=0, config={"run_seconds": 1.0})
    return wfdlq_devserver


def advance(server: Any) -> Any:
    return lambda seconds: server.control.advance_time(2)


def test_an_entry_that_makes_no_run_does_not_open_the_gate(
    world: Any, client: WorkflowDLQClient
) -> None:
    """The canary's first call loses its answer: those entries made no known run, so the
    canary is fed on until it has 5 runs to judge."""
    world.control.set_config(success_ratio=0.0)
    world.control.seed_entries(count=20, responseStatus=500)
    world.control.add_fault("drop", method="POST", path_prefix="/v2/workflows/dlq/resume")

    report = Redrive(
        client, plan(safety=canary(5, canary_min_success_ratio=0.8), count=20), sleep=advance(world)
    ).run()

    assert report.stopped == "canary"
    assert report.safety["canary"]["size"] == 5
    assert len(resumed_ids(world)) == 10  # 5 whose answer was lost, 5 judged
    assert report.counts["answer_lost_unknown"] == 5


def test_a_canary_larger_than_the_cap_is_still_judged(
    world: Any, client: WorkflowDLQClient
) -> None:
    world.control.set_config(success_ratio=0.0)
    world.control.seed_entries(count=10, responseStatus=500)
    report = Redrive(client, plan(safety=canary(5), max_resumes=3), sleep=advance(world)).run()
    assert report.safety["canary"]["size"] == 3
    assert report.stopped == "canary"


def test_a_canary_failing_at_the_end_of_the_walk_does_not_say_done(
    world: Any, client: WorkflowDLQClient
) -> None:
    world.control.set_config(success_ratio=0.0)
    world.control.seed_entries(count=3, responseStatus=500)
    overrides = Overrides.build(flow_control_key="kx")
    report = Redrive(
        client,
        plan(safety=canary(5, pause_on_trip=True), overrides=overrides),
        sleep=advance(world),
    ).run()
    assert report.safety["paused"]["key"] == "kx"
    assert report.stopped == "canary"


def test_a_crash_during_the_canary_wait_keeps_the_run_ids_and_the_canary(
    world: Any, client: WorkflowDLQClient
) -> None:
    world.control.set_config(success_ratio=1.0)
    world.control.seed_entries(count=20, responseStatus=500)
    checkpoint = MemoryStore()

    def died(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("worker died while waiting")

    with pytest.raises(RuntimeError):
        Redrive(client, plan(safety=canary(5), count=20), store=checkpoint, follow=died).run()
    assert len(resumed_ids(world)) == 5
    report = Redrive(
        client, plan(safety=canary(5), count=20), store=checkpoint, sleep=advance(world)
    ).run()

    assert report.stopped == "done"
    assert report.counts == {"resumed": 20}
    assert all(run["workflow_run_id"] for run in report.runs)
    assert report.safety["canary"]["size"] == 5  # the first try's canary, judged once


def test_a_crash_during_the_breaker_poll_keeps_the_run_ids(
    world: Any, client: WorkflowDLQClient
) -> None:
    world.control.seed_entries(count=10, responseStatus=500)
    safety = SafetyPolicy(breaker_max_failure_ratio=0.5, breaker_min_finished=5)
    checkpoint = MemoryStore()
    first = Redrive(client, plan(safety=safety, count=10), store=checkpoint)

    def poll_failed() -> None:
        raise RuntimeError("run logs: 429 after every retry")

    first.gate.breaker.poll = poll_failed  # type: ignore[assignment,method-assign,union-attr]
    with pytest.raises(RuntimeError):
        first.run()
    report = Redrive(client, plan(safety=safety, count=10), store=checkpoint).run()
    assert report.counts == {"resumed": 10}


def test_max_restarts_caps_the_task_not_the_try(world: Any, client: WorkflowDLQClient) -> None:
    """Runs whose step changed fail again at once; the breaker sees them after each batch
    and restarts their new entries: 2 in all, over both tries."""
    world.control.set_config(success_ratio=1.0, run_seconds=0.0)
    world.control.seed_entries(count=6, responseStatus=500, incompatibleStep=True)
    safety = SafetyPolicy(
        breaker_max_failure_ratio=0.5,
        breaker_min_finished=1,
        restart_incompatible=True,
        max_restarts=2,
    )
    capped = plan(safety=safety, count=2)
    store = MemoryStore()
    first = Redrive(client, capped, store=store, should_stop=lambda: first.report.pages >= 1)
    first.run()
    report = Redrive(client, capped, store=store).run()

    assert len(resumed_ids(world, "restart")) == 2
    assert report.counts["restarted_incompatible"] == 2
    assert report.stopped == "done"  # restarted runs do not trip the breaker


@pytest.mark.parametrize("label", ["tenant acme", "a,b"])
def test_an_entry_whose_labels_cannot_be_sent_back_is_left_and_counted(
    world: Any, client: WorkflowDLQClient, label: str
) -> None:
    bad = {e["dlqId"] for e in world.control.seed_entries(count=2, labels=[label, "x"])}
    world.control.seed_entries(count=2, responseStatus=500)
    report = Redrive(client, plan(audit_label="airflow:audit")).run()
    assert report.counts["resumed"] == 2
    assert report.counts["skipped_unsendable_label"] == 2
    assert bad <= {e["dlqId"] for e in world.control.entries()}


def test_expiring_entries_a_trip_leaves_behind_are_named(
    world: Any, client: WorkflowDLQClient
) -> None:
    world.control.set_config(success_ratio=0.0)
    now = world.control.now_ms()
    world.control.seed_entries(count=10, responseStatus=500, createdAt=now - 3 * DAY_MS + 3_600_000)
    report = Redrive(
        client,
        plan(safety=canary(2), retention=Retention.build("3d", DAY_MS)),
        now_ms=lambda: now,
        sleep=advance(world),
    ).run()
    assert report.stopped == "canary"
    assert report.counts["expiring_before_next_run"] == 8


def test_the_canary_wait_obeys_request_pacing(world: Any, client: WorkflowDLQClient) -> None:
    world.control.set_config(run_seconds=3600.0)
    world.control.seed_entries(count=3, responseStatus=500)
    slept: list[float] = []
    Redrive(
        client,
        plan(
            safety=SafetyPolicy(canary=1, canary_timeout=10, poll_interval=0.01),
            pacing=Pacing(requests_per_second=2.0),
        ),
        sleep=slept.append,
        monotonic=lambda: sum(slept),
    ).run()
    assert slept
    assert min(slept) >= 0.5 - 1e-9


def test_taking_up_a_walk_after_a_failed_canary_runs_a_new_canary(
    world: Any, client: WorkflowDLQClient
) -> None:
    world.control.set_config(success_ratio=0.0)
    world.control.seed_entries(count=12, responseStatus=500)
    checkpoint = MemoryStore()
    first = Redrive(client, plan(safety=canary(3)), store=checkpoint, sleep=advance(world))
    assert first.run().stopped == "canary"

    world.control.set_config(success_ratio=1.0)  # the bug is fixed; the task is cleared
    again = Redrive(client, plan(safety=canary(3)), store=checkpoint, sleep=advance(world))
    report = again.run()

    assert report.stopped == "done"
    assert report.safety["canary"]["passed"] is True
    assert len(resumed_ids(world)) == 12


def test_the_breaker_is_not_blinded_by_long_running_old_runs(
    world: Any, client: WorkflowDLQClient
) -> None:
    """150 old runs held under a paused key, then 60 that fail at once: the breaker's polls
    go round the open runs, so it still sees the failures and trips."""
    world.control.set_config(success_ratio=0.0, run_seconds=0.0)
    now = world.control.now_ms()
    world.control.seed_entries(count=150, responseStatus=500, createdAt=now - 60_000)
    world.control.seed_entries(count=60, responseStatus=500, createdAt=now - 1_000)
    held, fast = Overrides.build(flow_control_key="held"), Overrides.build(flow_control_key="k3")
    client.pause_flow_control("held")
    old_only = DLQFilters.build(to_date=now - 30_000, from_date="2020-01-01T00:00:00Z")
    Redrive(client, plan(filters=old_only, overrides=held, count=100)).run()

    breaker = Redrive(
        client,
        plan(
            overrides=fast,
            count=20,
            safety=SafetyPolicy(breaker_max_failure_ratio=0.5, breaker_min_finished=10),
        ),
    )
    breaker.gate.breaker.follow(  # type: ignore[union-attr]
        [
            (r["workflowRunId"], r["workflowRunCreatedAt"])
            for r in world.control.runs()
            if r.get("flowControlKey") == "held"
        ]
    )
    report = breaker.run()
    assert report.stopped == "circuit_breaker"

"""The arithmetic that decides whether a redrive goes on: the canary's success ratio, the
breaker's failure ratio and their boundaries, and the policy checks that refuse a limit
which can never act. Unit level: no server, no Airflow (the end-to-end paths are in
test_policies.py and test_policy_regressions.py)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from airflow_provider_wfdlq.client import Overrides, RunLogPage, ValidationError, WorkflowRun
from airflow_provider_wfdlq.recovery.gate import SafetyGate, Tripped
from airflow_provider_wfdlq.recovery.runs import RunOutcome
from airflow_provider_wfdlq.recovery.safety import (
    CircuitBreaker,
    RunTally,
    SafetyPolicy,
    canary_verdict,
)
from airflow_provider_wfdlq.recovery.states import Stop

OK, FAILED, CANCELED, RUNNING = "RUN_SUCCESS", "RUN_FAILED", "RUN_CANCELED", "RUN_STARTED"


def outcome(succeeded: int, failures: int = 0, running: int = 0, **kwargs: Any) -> RunOutcome:
    counts = {OK: succeeded, FAILED: failures, CANCELED: 0}
    return RunOutcome(
        followed=succeeded + failures + running, counts=counts, still_running=running, **kwargs
    )


# --- the canary's verdict ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("succeeded", "size", "required", "passed"),
    [
        (1, 5, 0.9, False),  # 1 of 5 recovered: 20%
        (1, 5, 0.2, True),  # exactly at the threshold passes (>=)
        (1, 5, 0.21, False),  # just above it fails
        (2, 5, 0.2, True),  # above it passes
        (9, 10, 0.9, True),  # 90% of 10 needs 9
        (8, 10, 0.9, False),
        (10, 10, 1.0, True),
        (9, 10, 1.0, False),
        (0, 3, 0.0, True),  # a ratio of 0 asks for nothing
        (0, 3, 0.01, False),
        (4, 5, 0.8, True),
        (3, 5, 0.8, False),
    ],
)
def test_the_canary_passes_at_and_above_its_ratio_only(
    succeeded: int, size: int, required: float, passed: bool
) -> None:
    policy = SafetyPolicy(canary=size, canary_min_success_ratio=required)
    verdict, seen = canary_verdict(outcome(succeeded, size - succeeded), policy, size)
    assert verdict is passed
    assert seen["success_ratio"] == round(succeeded / size, 4)
    assert seen["required"] == required


def test_runs_still_running_count_as_not_succeeded() -> None:
    policy = SafetyPolicy(canary=4, canary_min_success_ratio=0.75)
    passed, seen = canary_verdict(outcome(2, 0, running=2), policy, 4)
    assert passed is False
    assert seen["success_ratio"] == 0.5
    assert seen["still_running"] == 2


def test_the_ratio_is_over_the_canary_size_not_the_runs_seen() -> None:
    # 3 runs followed, 2 of them succeeded, but the canary was 4 runs: 50%, not 67%.
    policy = SafetyPolicy(canary=4, canary_min_success_ratio=0.6)
    passed, seen = canary_verdict(outcome(2, 1), policy, 4)
    assert (passed, seen["success_ratio"]) == (False, 0.5)


@pytest.mark.parametrize(
    ("succeeded", "size", "forgiven", "required", "passed", "ratio"),
    [
        (3, 5, 1, 0.75, True, 0.75),  # 3 of the 4 judged
        (3, 5, 1, 0.76, False, 0.75),
        (3, 5, 0, 0.75, False, 0.6),  # nothing forgiven: 3 of 5
        (0, 2, 2, 1.0, True, 1.0),  # every run forgiven: nothing judged, nothing failed
        (0, 1, 0, 0.5, False, 0.0),  # one run judged, and it failed
        (1, 1, 0, 1.0, True, 1.0),
        (2, 4, 2, 1.0, True, 1.0),  # 2 of the 2 judged
    ],
)
def test_forgiven_runs_are_judged_neither_way(
    succeeded: int, size: int, forgiven: int, required: float, passed: bool, ratio: float
) -> None:
    policy = SafetyPolicy(canary=size, canary_min_success_ratio=required)
    verdict, seen = canary_verdict(outcome(succeeded, size - succeeded), policy, size, forgiven)
    assert (verdict, seen["success_ratio"]) == (passed, ratio)


def test_what_the_canary_saw_is_reported_exactly() -> None:
    failed = ({"workflow_run_id": "wfr_b", "dlq_id": "2-0"},)
    policy = SafetyPolicy(canary=3, canary_min_success_ratio=0.5)
    passed, seen = canary_verdict(outcome(1, 2, failed=failed), policy, 3, forgiven=1)
    assert passed is True
    assert seen == {
        "size": 3,
        "succeeded": 1,
        "counts": {OK: 1, FAILED: 2, CANCELED: 0},
        "still_running": 0,
        "success_ratio": 0.5,
        "required": 0.5,
        "restarted_incompatible": 1,
        "failed": [{"workflow_run_id": "wfr_b", "dlq_id": "2-0"}],
    }
    _, plain = canary_verdict(outcome(1, 2), policy, 3)
    assert "restarted_incompatible" not in plain
    assert "failed" not in plain
    assert plain["success_ratio"] == 0.3333  # rounded to 4 places


# --- the breaker ---------------------------------------------------------------------------


def breaker_with(states: Sequence[str], limit: float | None, min_finished: int) -> CircuitBreaker:
    policy = SafetyPolicy(breaker_max_failure_ratio=limit, breaker_min_finished=min_finished)
    breaker = CircuitBreaker(policy, FakeLogs())  # type: ignore[arg-type]
    breaker.tally.final = {f"wfr_{n}": state for n, state in enumerate(states)}
    return breaker


def test_the_tally_counts_every_final_state_but_success_as_failed() -> None:
    tally = RunTally({"a": OK, "b": FAILED, "c": CANCELED, "d": OK})
    assert (tally.finished, tally.failed, tally.failure_ratio()) == (4, 2, 0.5)
    assert RunTally().failure_ratio() == 0.0
    assert RunTally({"a": OK}).failure_ratio() == 0.0
    assert RunTally({"a": FAILED, "b": OK, "c": OK}).failure_ratio() == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("states", "limit", "min_finished", "tripped"),
    [
        # Too few finished: never trips, however bad (an `or` would trip here).
        ([FAILED] * 3, 0.5, 4, False),
        ([FAILED] * 4, 0.5, 4, True),  # exactly min_finished counts (>=)
        # The ratio must be ABOVE the limit: 2 of 4 is 50%, not more than 50%.
        ([FAILED, FAILED, OK, OK], 0.5, 4, False),
        ([FAILED, FAILED, FAILED, OK], 0.5, 4, True),
        ([FAILED, OK, OK, OK], 0.5, 4, False),
        ([OK] * 10, 0.5, 4, False),  # the breaker sees successful runs too
        ([FAILED] + [OK] * 9, 0.1, 10, False),  # 10% is not above 10%
        ([FAILED, FAILED] + [OK] * 8, 0.1, 10, True),
        ([CANCELED, OK], 0.4, 2, True),  # a canceled run is not a recovery
        ([OK, OK], 0.0, 2, False),  # limit 0: any failure trips, none does not
        ([FAILED, OK], 0.0, 2, True),
        ([FAILED] * 20, None, 1, False),  # no breaker
        ([], 0.0, 1, False),
    ],
)
def test_the_breaker_trips_above_its_limit_once_enough_finished(
    states: list[str], limit: float | None, min_finished: int, tripped: bool
) -> None:
    assert breaker_with(states, limit, min_finished).tripped() is tripped


def test_the_breaker_state_is_reported_exactly() -> None:
    breaker = breaker_with([FAILED, OK, OK], 0.5, 1)
    breaker.follow([("wfr_open", 1)])
    assert breaker.state() == {
        "finished": 3,
        "failed_again": 1,
        "failure_ratio": 0.3333,
        "still_open": 1,
    }


class FakeLogs:
    """Answers run-logs calls from a table of run states; records what it was asked."""

    def __init__(self, states: dict[str, str] | None = None) -> None:
        self.states = states or {}
        self.asked: list[list[str]] = []
        self.pairs: list[tuple[str, int]] = []
        self.counts: list[int | None] = []

    def run_logs(self, *, workflow_runs: Sequence[tuple[str, int]], count: int) -> RunLogPage:
        self.asked.append([run_id for run_id, _ in workflow_runs])
        self.pairs += workflow_runs
        self.counts.append(count)
        runs = tuple(
            WorkflowRun(
                workflow_run_id=run_id,
                workflow_state=self.states.get(run_id, RUNNING),
                dlq_id=f"new-{run_id}",
            )
            for run_id, _ in workflow_runs
        )
        return RunLogPage(
            runs=(*runs, WorkflowRun("wfr_stranger", workflow_state=FAILED)), cursor=None
        )


def test_a_poll_settles_final_runs_and_names_those_that_failed_again() -> None:
    logs = FakeLogs({"a": OK, "b": FAILED, "c": CANCELED})
    paced: list[int] = []
    breaker = CircuitBreaker(
        SafetyPolicy(breaker_max_failure_ratio=0.5),
        logs,  # type: ignore[arg-type]
        pace=lambda: paced.append(1),
    )
    breaker.follow([("a", 1), ("b", 2), ("c", 3), ("d", 4)])
    failed = breaker.poll()
    assert failed == [
        {"workflow_run_id": "b", "dlq_id": "new-b"},
        {"workflow_run_id": "c", "dlq_id": "new-c"},
    ]
    assert logs.asked == [["a", "b", "c", "d"]]
    assert logs.counts == [10]
    assert paced == [1]
    assert breaker.tally.final == {"a": OK, "b": FAILED, "c": CANCELED}  # not the stranger
    assert breaker.state()["still_open"] == 1  # d is still running
    assert breaker.poll() == []  # a settled run is not asked about or counted again
    assert logs.asked[-1] == ["d"]


def test_a_poll_asks_ten_runs_a_call_fresh_ones_first_then_a_round_of_older_ones() -> None:
    logs = FakeLogs()
    paced: list[int] = []
    breaker = CircuitBreaker(
        SafetyPolicy(breaker_max_failure_ratio=0.5),
        logs,  # type: ignore[arg-type]
        pace=lambda: paced.append(1),
    )
    older = [(f"o{n:02}", n) for n in range(12)]
    breaker.follow(older)
    breaker.poll()  # all 12 fresh: two calls, 10 and 2
    assert logs.asked == [[r for r, _ in older[:10]], [r for r, _ in older[10:]]]
    assert len(paced) == 2
    logs.asked.clear()
    breaker.follow([("f1", 100), ("f2", 101)])
    breaker.poll()  # the 2 fresh runs, then 10 of the 12 older ones from the start
    assert logs.asked == [["f1", "f2", *[r for r, _ in older[:8]]], [r for r, _ in older[8:10]]]
    logs.asked.clear()
    breaker.poll()  # no fresh runs: the next 10 of the 14 older ones, on around
    rest = [r for r, _ in older[10:]] + ["f1", "f2"] + [r for r, _ in older[:6]]
    assert logs.asked == [rest]
    logs.asked.clear()
    breaker.poll()
    assert logs.asked == [[r for r, _ in older[6:12]] + ["f1", "f2"] + [r for r, _ in older[:2]]]
    # Every call names each run with its own created-at (the logs find runs by the pair).
    assert set(logs.pairs) == {*older, ("f1", 100), ("f2", 101)}


def test_failures_from_every_call_of_a_poll_are_returned() -> None:
    runs = [(f"r{n:02}", n) for n in range(12)]
    logs = FakeLogs({"r00": FAILED, "r05": OK, "r11": FAILED})
    breaker = CircuitBreaker(SafetyPolicy(breaker_max_failure_ratio=0.5), logs)  # type: ignore[arg-type]
    breaker.follow(runs)
    assert [f["workflow_run_id"] for f in breaker.poll()] == ["r00", "r11"]
    assert len(logs.asked) == 2


def test_forgiven_runs_leave_the_tally() -> None:
    breaker = breaker_with([FAILED, FAILED, OK], 0.5, 3)
    assert breaker.tripped()
    breaker.forgive({"wfr_0", "wfr_unknown"})
    assert breaker.tally.final == {"wfr_1": FAILED, "wfr_2": OK}
    assert not breaker.tripped()  # 2 finished, fewer than 3


# --- the policy: defaults, build and check -------------------------------------------------


def test_every_safety_switch_is_off_by_default() -> None:
    policy = SafetyPolicy.build()
    assert policy == SafetyPolicy()
    assert policy.canary is None
    assert policy.breaker_max_failure_ratio is None
    assert policy.pause_on_trip is False
    assert policy.pause_on_kill is False
    assert policy.restart_incompatible is False
    assert (policy.canary_min_success_ratio, policy.breaker_min_finished) == (0.9, 20)
    assert (policy.canary_timeout, policy.poll_interval, policy.max_restarts) == (900, 15, 100)
    assert policy.describe() == "off"
    assert SafetyPolicy.coerce(None) == SafetyPolicy()


def test_build_reads_rendered_text() -> None:
    policy = SafetyPolicy.build(
        canary="5",
        canary_min_success_ratio="0.8",
        canary_timeout="60",
        poll_interval="2.5",
        breaker_max_failure_ratio="0.25",
        breaker_min_finished="10",
        pause_on_trip="True",
        pause_on_kill="true",
        restart_incompatible="TRUE",
        max_restarts="7",
    )
    assert policy == SafetyPolicy(
        canary=5,
        canary_min_success_ratio=0.8,
        canary_timeout=60.0,
        poll_interval=2.5,
        breaker_max_failure_ratio=0.25,
        breaker_min_finished=10,
        pause_on_trip=True,
        pause_on_kill=True,
        restart_incompatible=True,
        max_restarts=7,
    )
    assert SafetyPolicy.coerce({"canary": 5}).canary == 5
    assert SafetyPolicy.coerce(policy) is policy
    assert SafetyPolicy.build(canary=0).canary is None  # 0 turns the canary off
    assert SafetyPolicy.build(canary=None, breaker_max_failure_ratio=None) == SafetyPolicy()
    assert SafetyPolicy.build(canary_timeout=0).canary_timeout == 0.0  # no wait at all
    assert SafetyPolicy.build(breaker_max_failure_ratio=0).breaker_max_failure_ratio == 0.0


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"breaker_max_failure_ratio": 0.9999}, None),
        ({"breaker_max_failure_ratio": 1}, "safety.breaker_max_failure_ratio"),
        ({"breaker_max_failure_ratio": "1.0"}, "safety.breaker_max_failure_ratio"),
        ({"breaker_max_failure_ratio": -0.1}, "safety.breaker_max_failure_ratio"),
        ({"canary_min_success_ratio": 1.01}, "safety.canary_min_success_ratio"),
        ({"canary_timeout": True}, "safety.canary_timeout"),
        ({"canary_timeout": "soon"}, "safety.canary_timeout"),
        ({"canary_timeout": -0.5}, "safety.canary_timeout"),
        ({"poll_interval": -1}, "safety.poll_interval"),
        ({"poll_interval": "0"}, "safety.poll_interval"),
        ({"poll_interval": 0.001}, None),
        ({"breaker_min_finished": 0}, "safety.breaker_min_finished"),
        ({"pause_on_trip": "yes"}, "safety.pause_on_trip"),
        ({"pause_on_kill": 1}, "safety.pause_on_kill"),
        ({"restart_incompatible": "on"}, "safety.restart_incompatible"),
        ({"canary": "None"}, "safety.canary"),
        ({"max_restarts": "null"}, "safety.max_restarts"),
        ({"canary_min_success_ratio": None}, "safety.canary_min_success_ratio"),
        ({"cannary": 5}, "safety"),
    ],
)
def test_build_refuses_naming_the_field(raw: dict[str, Any], field: str | None) -> None:
    if field is None:
        SafetyPolicy.build(**raw)
        return
    with pytest.raises(ValidationError) as err:
        SafetyPolicy.build(**raw)
    assert err.value.field == field


def test_a_rendered_null_never_switches_a_limit_off() -> None:
    for name in ("canary", "breaker_max_failure_ratio", "breaker_min_finished", "canary_timeout"):
        with pytest.raises(ValidationError) as err:
            SafetyPolicy.build(**{name: "None"})
        assert (err.value.field, err.value.problem) == (f"safety.{name}", "is missing")


def test_coerce_refuses_what_is_not_a_mapping() -> None:
    with pytest.raises(ValidationError) as err:
        SafetyPolicy.coerce("canary=5")  # type: ignore[arg-type]
    assert err.value.field == "safety"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        # A breaker that can never trip: "more than 100% failed" never happens.
        ({"breaker_max_failure_ratio": 1.0}, "safety.breaker_max_failure_ratio"),
        ({"breaker_max_failure_ratio": 1.5}, "safety.breaker_max_failure_ratio"),
        ({"breaker_max_failure_ratio": math.nan}, "safety.breaker_max_failure_ratio"),
        ({"breaker_max_failure_ratio": math.inf}, "safety.breaker_max_failure_ratio"),
        ({"breaker_max_failure_ratio": -0.1}, "safety.breaker_max_failure_ratio"),
        ({"breaker_min_finished": 0}, "safety.breaker_min_finished"),
        ({"canary": 0}, "safety.canary"),
        ({"canary": -3}, "safety.canary"),
        ({"canary_min_success_ratio": 1.5}, "safety.canary_min_success_ratio"),
        ({"canary_min_success_ratio": math.nan}, "safety.canary_min_success_ratio"),
        ({"canary_timeout": -1.0}, "safety.canary_timeout"),
        ({"poll_interval": 0.0}, "safety.poll_interval"),
        ({"max_restarts": 0}, "safety.max_restarts"),
        ({"pause_on_trip": "maybe"}, "safety.pause_on_trip"),
    ],
)
def test_a_policy_built_directly_is_checked_like_one_built_from_settings(
    kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as err:
        SafetyPolicy(**kwargs).check(Overrides())
    assert err.value.field == field


def test_check_passes_sound_policies_and_wants_a_key_to_pause() -> None:
    SafetyPolicy().check(Overrides())
    SafetyPolicy(canary=1, breaker_max_failure_ratio=0.0, breaker_min_finished=1).check(Overrides())
    SafetyPolicy(breaker_max_failure_ratio=0.99).check(Overrides())
    with pytest.raises(ValidationError) as err:
        SafetyPolicy(canary=2, pause_on_trip=True).check(Overrides())
    assert err.value.field == "pause_on_trip"
    SafetyPolicy(canary=2, pause_on_trip=True).check(Overrides(flow_control_key="k"))


def test_describe_names_each_policy_in_force() -> None:
    policy = SafetyPolicy(
        canary=5,
        canary_min_success_ratio=0.8,
        canary_timeout=60,
        breaker_max_failure_ratio=0.25,
        breaker_min_finished=10,
        pause_on_trip=True,
    )
    assert policy.describe() == (
        "canary of 5 needing 80% success within 60s; "
        "breaker trips above 25% failed again (after 10 finished); "
        "pauses the flow-control key when tripped"
    )


# --- the gate: what feeds the canary and the breaker ----------------------------------------


class FakeFollow:
    """The run follower: returns a prepared outcome and records what it was asked."""

    def __init__(self, result: RunOutcome) -> None:
        self.result = result
        self.calls: list[tuple[list[tuple[str, int]], dict[str, Any]]] = []

    def __call__(self, client: Any, runs: list[tuple[str, int]], **kwargs: Any) -> RunOutcome:
        self.calls.append((runs, kwargs))
        return self.result


def gate(
    policy: SafetyPolicy,
    follow: FakeFollow | None = None,
    logs: FakeLogs | None = None,
    on_failed: Callable[[list[dict[str, Any]]], set[str]] | None = None,
    active: bool = True,
) -> SafetyGate:
    extra: dict[str, Any] = {} if on_failed is None else {"on_failed": on_failed}
    if not active:  # left out otherwise: the default is an active gate
        extra["active"] = False
    return SafetyGate(
        policy,
        logs or FakeLogs(),  # type: ignore[arg-type]
        follow=follow or FakeFollow(outcome(0)),
        poll_interval=0.5,
        sleep=lambda s: None,
        monotonic=lambda: 0.0,
        should_stop=lambda: False,
        pace=lambda: None,
        **extra,
    )


def test_the_canary_takes_exactly_its_size_before_its_verdict() -> None:
    follow = FakeFollow(outcome(3))
    g = gate(SafetyPolicy(canary=3, canary_timeout=42.0), follow)
    assert g.canary_room() == 3
    g.after_batch([("a", 1), ("b", 2)], last=False)
    assert (g.canary_room(), follow.calls) == (1, [])
    g.after_batch([("c", 3)], last=False)
    assert g.canary_room() is None  # judged
    runs, kwargs = follow.calls[0]
    assert runs == [("a", 1), ("b", 2), ("c", 3)]
    assert (kwargs["timeout_s"], kwargs["poll_interval_s"]) == (42.0, 0.5)
    assert g.seen["canary"]["passed"] is True
    assert g.seen["canary"]["size"] == 3


def test_the_last_batch_judges_a_canary_that_is_not_full() -> None:
    follow = FakeFollow(outcome(1))
    g = gate(SafetyPolicy(canary=5, canary_min_success_ratio=1.0), follow)
    g.after_batch([("a", 1)], last=True)
    assert g.canary_done
    assert g.seen["canary"]["size"] == 1
    assert g.seen["canary"]["passed"] is True


def test_a_canary_that_made_no_run_is_not_judged() -> None:
    follow = FakeFollow(outcome(0))
    g = gate(SafetyPolicy(canary=2), follow)
    g.after_batch([], last=True)
    assert g.canary_done
    assert follow.calls == []
    assert "canary" not in g.seen


def test_a_failed_canary_trips_and_is_not_inherited() -> None:
    follow = FakeFollow(outcome(1, 4))
    g = gate(SafetyPolicy(canary=5, canary_min_success_ratio=0.9), follow)
    with pytest.raises(Tripped) as trip:
        g.after_batch([(f"r{n}", n) for n in range(5)], last=False)
    assert trip.value.why is Stop.CANARY
    assert str(trip.value) == "canary"
    assert trip.value.seen["passed"] is False
    assert g.failed_again == 4
    assert (g.canary_done, g.canary_runs) == (False, [])  # the next taker runs a new canary


def test_a_stop_during_the_canary_wait_is_no_verdict() -> None:
    follow = FakeFollow(outcome(0, 0, running=2, stopped=True))
    g = gate(SafetyPolicy(canary=2), follow)
    with pytest.raises(Tripped) as trip:
        g.after_batch([("a", 1), ("b", 2)], last=False)
    assert trip.value.why is Stop.STOPPED
    assert trip.value.seen["interrupted"] is True
    assert g.canary_done is False
    assert g.canary_runs == [("a", 1), ("b", 2)]  # a retry waits for the same runs
    assert g.canary_room() == 0  # ... and adds none
    assert str(trip.value) == "stopped"


def test_a_stopped_wait_whose_canary_passed_is_a_verdict() -> None:
    follow = FakeFollow(outcome(2, stopped=True))
    g = gate(SafetyPolicy(canary=2), follow)
    g.after_batch([("a", 1), ("b", 2)], last=False)
    assert g.canary_done
    assert "interrupted" not in g.seen["canary"]


def test_runs_failed_at_a_changed_step_are_forgiven_by_the_canary() -> None:
    failed = ({"workflow_run_id": "b", "dlq_id": "9-0"},)
    follow = FakeFollow(outcome(1, 1, failed=failed))
    asked: list[list[dict[str, Any]]] = []

    def on_failed(items: list[dict[str, Any]]) -> set[str]:
        asked.append(items)
        return {"b"}

    g = gate(SafetyPolicy(canary=2, canary_min_success_ratio=1.0), follow, on_failed=on_failed)
    g.after_batch([("a", 1), ("b", 2)], last=False)  # 1 of the 1 judged: passes
    assert asked == [[{"workflow_run_id": "b", "dlq_id": "9-0"}]]
    assert g.seen["canary"]["restarted_incompatible"] == 1
    assert g.seen["canary"]["passed"] is True


def test_the_breaker_follows_every_batch_after_the_canary_and_trips() -> None:
    logs = FakeLogs({"a": OK, "b": FAILED, "c": FAILED, "d": OK})
    g = gate(SafetyPolicy(breaker_max_failure_ratio=0.5, breaker_min_finished=3), logs=logs)
    assert g.canary_room() is None
    g.after_batch([("a", 1), ("b", 2)], last=False)  # 2 finished: fewer than 3
    assert g.failed_again == 1
    assert g.seen["breaker"] == {
        "finished": 2,
        "failed_again": 1,
        "failure_ratio": 0.5,
        "still_open": 0,
    }
    with pytest.raises(Tripped) as trip:
        g.after_batch([("c", 3)], last=False)  # 2 of 3 failed: above 50%
    assert trip.value.why is Stop.CIRCUIT_BREAKER
    assert str(trip.value) == "circuit_breaker"
    assert trip.value.seen["failed_again"] == 2
    assert g.failed_again == 2


def test_runs_the_breaker_forgives_are_not_failures() -> None:
    logs = FakeLogs({"a": FAILED, "b": FAILED, "c": OK})
    g = gate(
        SafetyPolicy(breaker_max_failure_ratio=0.5, breaker_min_finished=1),
        logs=logs,
        on_failed=lambda items: {item["workflow_run_id"] for item in items},
    )
    g.after_batch([("a", 1), ("b", 2), ("c", 3)], last=False)
    assert g.failed_again == 0
    assert g.seen["breaker"]["finished"] == 1


def test_an_inactive_gate_or_an_off_policy_does_nothing() -> None:
    policy = SafetyPolicy(canary=2, breaker_max_failure_ratio=0.0, breaker_min_finished=1)
    follow = FakeFollow(outcome(0, 2))
    logs = FakeLogs({"a": FAILED})
    quiet = gate(policy, follow, logs, active=False)
    assert quiet.canary_room() is None
    quiet.after_batch([("a", 1)], last=False)
    assert (follow.calls, logs.asked, quiet.seen) == ([], [], {})
    off = gate(SafetyPolicy(), follow, logs)
    off.after_batch([("a", 1)], last=True)
    assert (follow.calls, logs.asked, off.seen) == ([], [], {})


def test_the_breaker_starts_after_the_canary_passed() -> None:
    follow = FakeFollow(outcome(1))
    logs = FakeLogs({"b": FAILED})
    g = gate(
        SafetyPolicy(canary=1, breaker_max_failure_ratio=0.5, breaker_min_finished=1),
        follow,
        logs,
    )
    g.after_batch([("a", 1)], last=False)  # the canary: judged, passed, not the breaker's
    assert logs.asked == []
    with pytest.raises(Tripped):
        g.after_batch([("b", 2)], last=False)
    assert logs.asked == [["b"]]


def test_the_canary_state_survives_a_checkpoint() -> None:
    g = gate(SafetyPolicy(canary=3))
    g.after_batch([("a", 1)], last=False)
    assert g.to_state() == {"done": False, "runs": [["a", 1]]}
    again = gate(SafetyPolicy(canary=3))
    again.restore({"done": False, "runs": [["a", "1"]]})
    assert (again.canary_done, again.canary_runs, again.canary_room()) == (False, [("a", 1)], 2)
    later = gate(SafetyPolicy(canary=3))
    later.restore({"done": True})
    assert (later.canary_done, later.canary_runs) == (True, [])
    untouched = gate(SafetyPolicy())
    untouched.restore({})
    assert untouched.canary_done is True
    assert gate(SafetyPolicy(canary=3)).canary_done is False


def test_judging_twice_is_judging_once() -> None:
    follow = FakeFollow(outcome(1))
    g = gate(SafetyPolicy(canary=1), follow)
    g.after_batch([("a", 1)], last=False)
    g.judge_canary()
    assert len(follow.calls) == 1


def test_the_breaker_paces_its_calls_through_the_gate() -> None:
    paced: list[int] = []
    g = SafetyGate(
        SafetyPolicy(breaker_max_failure_ratio=0.5, breaker_min_finished=5),
        FakeLogs(),  # type: ignore[arg-type]
        follow=FakeFollow(outcome(0)),
        poll_interval=0.5,
        sleep=lambda s: None,
        monotonic=lambda: 0.0,
        should_stop=lambda: False,
        pace=lambda: paced.append(1),
    )
    g.after_batch([("a", 1)], last=False)
    assert paced == [1]


def test_a_canary_outcome_without_a_failed_count_adds_no_failure() -> None:
    result = RunOutcome(followed=2, counts={OK: 2}, still_running=0)
    g = gate(SafetyPolicy(canary=2), FakeFollow(result))
    g.after_batch([("a", 1), ("b", 2)], last=False)
    assert g.failed_again == 0
    assert g.seen["canary"]["passed"] is True


def test_a_pending_canary_taken_up_without_a_canary_closes_at_once() -> None:
    # A checkpoint from a try with a canary, taken up by a policy without one.
    g = gate(SafetyPolicy())
    g.restore({"done": False, "runs": []})
    assert g.canary_room() == 0
    g.after_batch([], last=False)
    assert g.canary_done

"""Following resumed runs (recovery/runs.py): input forms, batched polling over the dev
server, the shared verdict, and the blocking ``follow_runs`` a canary calls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_wfdlq.client import (
    RateLimitedError,
    ResumedRun,
    RunLogPage,
    ValidationError,
    WorkflowDLQClient,
)
from airflow_provider_wfdlq.devserver import DevServer
from airflow_provider_wfdlq.recovery.runs import (
    RunFollower,
    RunRef,
    RunStatus,
    RunWatch,
    coerce_runs,
    decide,
    follow_runs,
    poll_sync,
)
from tests.sensors.conftest import fast_client

LOGS = "/v2/workflows/logs"
RUN = "wfr_AAAAAAAAAAAAAAAAAAAAA"
RUN2 = "wfr_BBBBBBBBBBBBBBBBBBBBB"
MS = 1_752_829_295_505


@pytest.fixture
def server(wfdlq_devserver: DevServer) -> DevServer:
    wfdlq_devserver.control.freeze_time()
    wfdlq_devserver.control.set_config(run_seconds=30, success_ratio=0.5)
    return wfdlq_devserver


@pytest.fixture
def fast(server: DevServer) -> Iterator[WorkflowDLQClient]:
    """Gives up on a 429 after one retry, so a fault outlasts it without waiting."""
    with fast_client(server, max_rate_limit_wait=0.1) as c:
        yield c


def resume(client: WorkflowDLQClient, server: DevServer, n: int) -> list[ResumedRun]:
    """Resume ``n`` seeded entries directly (50 ids per bulk call, the dev server's cap)."""
    ids = [e["dlqId"] for e in server.control.entries()][:n]
    assert len(ids) == n
    runs: list[ResumedRun] = []
    for start in range(0, n, 50):
        runs.extend(client.resume_bulk({"dlq_ids": ids[start : start + 50]}).runs)
    server.control.clear_requests()
    return runs


def logs_requests(server: DevServer) -> list[list[str]]:
    """The runs each logs request named (the ``workflowRuns`` parameter, split)."""
    return [
        value.split(",")
        for r in server.control.requests()
        if r["path"] == LOGS
        for name, value in r["query"]
        if name == "workflowRuns"
    ]


# --- input -------------------------------------------------------------------------------------


def test_every_upstream_form_becomes_the_same_runs() -> None:
    xcom = {
        "counts": {"resumed": 2, "resumed_answer_lost": 1},
        "runs": [
            {"dlq_id": "1-0", "workflow_run_id": RUN, "workflow_created_at": MS},
            {"dlq_id": "2-0", "workflow_run_id": RUN2, "workflow_created_at": MS + 1},
            {"dlq_id": "3-0", "workflow_run_id": None, "workflow_created_at": None},
        ],
        "runs_truncated": True,
    }
    refs, unknown, truncated = coerce_runs(xcom)
    assert [r.workflow_run_id for r in refs] == [RUN, RUN2]
    assert refs[0] == RunRef(RUN, MS, "1-0")
    assert (unknown, truncated) == (("3-0",), True)
    same = [(RUN, MS), (RUN2, MS + 1)]
    for form in (
        str(xcom),  # a template rendered without native objects
        xcom["runs"],
        f"{RUN}@{MS}, {RUN2}@{MS + 1}",
        [f"{RUN}@{MS}", f"{RUN2}@{MS + 1}", f"{RUN}@{MS}"],  # duplicates count once
        [ResumedRun(RUN, MS), ResumedRun(RUN2, MS + 1)],
        [(RUN, MS), [RUN2, MS + 1]],
        [{"workflowRunId": RUN, "workflowCreatedAt": MS}, f"{RUN2}@{MS + 1}"],
    ):
        got = [(r.workflow_run_id, r.workflow_created_at) for r in coerce_runs(form)[0]]
        assert got == same, form
    assert coerce_runs({"runs": []}) == ((), (), False)  # a resume that acted on nothing


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        (None, "runs", "is empty"),
        ("None", "runs", "is empty"),
        (RUN, "runs", "no '@<created-at ms>'"),
        (f"not a run@{MS}", "runs", "is not a workflow run id"),
        (f"{RUN}@yesterday", "runs", "is not a time"),
        ({"counts": {}}, "runs", "without 'runs'"),
        (42, "runs", "is not a workflow run reference"),
        ("[1, 2", "runs", "looks like a list"),
    ],
)
def test_bad_runs_are_refused_naming_field_value_and_what_is_accepted(
    value: Any, field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        RunWatch.build(runs=value)
    assert caught.value.field == field
    assert words in str(caught.value)
    assert "; expected " in str(caught.value)  # and says what is accepted


def test_an_undefined_template_value_says_the_upstream_result_is_missing() -> None:
    jinja2 = pytest.importorskip("jinja2")
    for undefined in (jinja2.Undefined(name="runs"), jinja2.StrictUndefined(name="runs")):
        with pytest.raises(ValidationError, match="upstream result is missing"):
            RunWatch.build(runs=undefined)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_success_ratio": 1.5}, "min_success_ratio"),
        ({"min_success_ratio": "most"}, "min_success_ratio"),
        ({"min_success_ratio": True}, "min_success_ratio"),
        ({"on_timeout": "sometimes"}, "on_timeout"),
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RunWatch.build(runs=[f"{RUN}@{MS}"], **kwargs)
    assert caught.value.field == field


def test_the_watch_survives_serialisation() -> None:
    watch = RunWatch.build(runs=f"{RUN}@{MS}", min_success_ratio="0.9", on_timeout="REPORT")
    assert (watch.min_success_ratio, watch.on_timeout) == (0.9, "report")
    assert RunWatch.from_json(watch.to_json()) == watch


# --- the verdict -------------------------------------------------------------------------------


def statuses(**states: str) -> dict[str, RunStatus]:
    return {
        run_id: RunStatus(state, dlq_id=f"9-{i}")
        for i, (run_id, state) in enumerate(states.items())
    }


def watch_of(n: int, **kwargs: Any) -> RunWatch:
    runs = [f"wfr_{i:021d}@{MS}" for i in range(n)]
    return RunWatch.build(runs=runs, **kwargs)


def test_the_verdict_waits_then_names_the_runs_that_failed_again() -> None:
    watch = watch_of(4)
    ids = [r.workflow_run_id for r in watch.runs]
    seen = statuses(**{ids[0]: "RUN_SUCCESS", ids[1]: "RUN_STARTED"})
    verdict = decide(watch, seen)
    assert verdict.status == "waiting"
    assert (verdict.outcome.still_running, verdict.outcome.not_seen) == (3, 2)
    seen = statuses(
        **{
            ids[0]: "RUN_SUCCESS",
            ids[1]: "RUN_FAILED",
            ids[2]: "RUN_CANCELED",
            ids[3]: "RUN_SUCCESS",
        }
    )
    verdict = decide(watch, seen)
    assert verdict.status == "success"
    result = verdict.outcome.to_json()
    assert result["counts"] == {"RUN_SUCCESS": 2, "RUN_FAILED": 1, "RUN_CANCELED": 1}
    assert result["failed"][0]["dlq_id"] == "9-1"
    assert result["canceled"] == [ids[2]]
    assert result["success_ratio"] == 0.5


def test_min_success_ratio_fails_as_soon_as_it_cannot_be_reached() -> None:
    watch = watch_of(10, min_success_ratio=0.8)
    ids = [r.workflow_run_id for r in watch.runs]
    two_failed = statuses(**{ids[0]: "RUN_FAILED", ids[1]: "RUN_FAILED"})
    assert decide(watch, two_failed).status == "waiting"  # 8 of 10 may still recover
    three_failed = statuses(**{i: "RUN_FAILED" for i in ids[:3]})
    verdict = decide(watch, three_failed)
    assert verdict.status == "failed"
    assert "below min_success_ratio 0.8 even if the running ones recover" in verdict.message
    assert "9-0" in verdict.message  # the new DLQ entries are named


def test_on_timeout_fails_or_reports_what_is_still_running() -> None:
    ids = [f"wfr_{i:021d}" for i in range(4)]
    seen = statuses(**{ids[0]: "RUN_SUCCESS", ids[1]: "RUN_SUCCESS", ids[2]: "RUN_SUCCESS"})
    failing = decide(watch_of(4), seen, final=True)
    assert failing.status == "timeout"
    assert ids[3] in failing.message
    reported = decide(watch_of(4, on_timeout="report"), seen, final=True)
    assert reported.status == "success"
    assert reported.outcome.timed_out
    assert reported.outcome.still_running == 1
    # Running runs count as not recovered: 3 of 4 is below 0.9.
    strict = decide(watch_of(4, on_timeout="report", min_success_ratio=0.9), seen, final=True)
    assert strict.status == "failed"


def test_lost_answers_are_unknown_not_failures() -> None:
    watch = RunWatch.build(
        runs={"runs": [{"dlq_id": "1-0", "workflow_run_id": None}]}, min_success_ratio=1
    )
    verdict = decide(watch, {})
    assert verdict.status == "success"
    assert verdict.outcome.to_json()["unknown_dlq_ids"] == ["1-0"]
    assert verdict.outcome.success_ratio is None


# --- polling over the dev server ---------------------------------------------------------------


def test_a_poll_asks_about_10_open_runs_per_request_and_never_about_final_ones(
    server: DevServer, client: WorkflowDLQClient
) -> None:
    server.control.reset(entries=260)
    server.control.freeze_time()
    server.control.set_config(run_seconds=30, success_ratio=0.5)
    runs = resume(client, server, 250)
    follower = RunFollower(RunWatch.build(runs=runs))

    assert poll_sync(client, follower).status == "waiting"
    assert [len(batch) for batch in logs_requests(server)] == [10] * 25
    server.control.clear_requests()

    server.control.advance_time(31)
    verdict = poll_sync(client, follower)
    assert verdict.status == "success"
    assert len(logs_requests(server)) == 25
    truth = {r["workflowRunId"]: r for r in server.control.runs()}
    failed = {
        r.workflow_run_id for r in runs if truth[r.workflow_run_id]["workflowState"] == "RUN_FAILED"
    }
    assert verdict.outcome.failed_again == len(failed) > 0
    in_dlq = {e["dlqId"]: e["workflowRunId"] for e in server.control.entries()}
    for item in verdict.outcome.failed:
        assert in_dlq[item["dlq_id"]] == item["workflow_run_id"]  # the NEW entry, really there
    server.control.clear_requests()

    assert poll_sync(client, follower).status == "success"
    assert logs_requests(server) == []  # every run is final: nothing to ask


def test_the_client_refuses_more_than_10_runs_per_call(
    server: DevServer, client: WorkflowDLQClient
) -> None:
    refs = [(f"wfr_{i:021d}", MS) for i in range(11)]
    with pytest.raises(ValidationError, match="names 11 runs; expected at most 10 runs"):
        client.run_logs(workflow_runs=refs)
    assert client.run_logs(workflow_runs=refs[:10], count=10).runs == ()


def test_a_follower_asks_in_calls_of_at_most_10_runs() -> None:
    refs = [RunRef(f"wfr_{i}", MS + i) for i in range(25)]
    follower = RunFollower(
        RunWatch.build(runs=[(r.workflow_run_id, r.workflow_created_at) for r in refs])
    )
    plan = follower.poll()
    calls = [next(plan)]
    empty = RunLogPage(runs=(), cursor=None)
    while True:
        try:
            calls.append(plan.send(empty))
        except StopIteration:
            break
    assert [len(c.runs) for c in calls] == [10, 10, 5]
    assert [c.count for c in calls] == [10, 10, 5]
    assert [ref for c in calls for ref in c.runs] == [
        (r.workflow_run_id, r.workflow_created_at) for r in refs
    ]
    with pytest.raises(ValueError, match=r"batch_size: 11 must be within 1\.\.10"):
        RunFollower(follower.watch, batch_size=11)


def test_a_429_mid_poll_keeps_what_earlier_pages_taught(
    server: DevServer, client: WorkflowDLQClient, fast: WorkflowDLQClient
) -> None:
    runs = resume(client, server, 120)
    server.control.advance_time(31)
    follower = RunFollower(RunWatch.build(runs=runs))
    plan = follower.poll()
    first = next(plan)
    second = plan.send(client.run_logs(workflow_runs=first.runs, count=first.count))
    assert len(follower.known) == 10  # learnt as the page arrived
    # The second request meets 429s beyond the client's retries: the poll fails...
    server.control.add_fault("429", path_prefix=LOGS, times=2, reset_seconds=0)
    with pytest.raises(RateLimitedError):
        fast.run_logs(workflow_runs=second.runs, count=second.count)
    # (a reset beyond the cap is not waited for, so a fault may be left: drop it)
    server.control.clear_faults()
    # ...and the next poll asks only about the 110 runs it did not learn about.
    server.control.clear_requests()
    assert poll_sync(fast, follower).status == "success"
    assert [len(batch) for batch in logs_requests(server)] == [10] * 11


def test_follow_runs_polls_until_final_through_429s(
    server: DevServer, client: WorkflowDLQClient, fast: WorkflowDLQClient
) -> None:
    runs = resume(client, server, 30)
    server.control.add_fault("429", path_prefix=LOGS, times=2, reset_seconds=0)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        server.control.advance_time(seconds)

    outcome = follow_runs(fast, runs, timeout_s=600, poll_interval_s=10, sleep=sleep)
    assert outcome.done
    assert outcome.recovered + outcome.failed_again == 30
    assert sum(slept) >= 30  # the runs take 30 s on the dev server's clock
    assert not outcome.timed_out


def test_follow_runs_ends_at_the_timeout_or_when_told_to_stop(
    server: DevServer, client: WorkflowDLQClient
) -> None:
    httpx.post(
        f"{server.url}/v2/flowControl/held/pause",
        headers={"Authorization": f"Bearer {server.token}"},
    ).raise_for_status()
    ids = [e["dlqId"] for e in server.control.entries()][:5]
    runs = client.resume_bulk({"dlq_ids": ids}, {"flow_control_key": "held"}).runs
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds
        server.control.advance_time(seconds)

    timed = follow_runs(
        client, runs, timeout_s=100, poll_interval_s=30, sleep=sleep, monotonic=lambda: clock[0]
    )
    assert (timed.timed_out, timed.still_running, timed.stopped) == (True, 5, False)
    assert clock[0] == 100
    stopped = follow_runs(client, runs, timeout_s=100, should_stop=lambda: True, sleep=sleep)
    assert (stopped.stopped, stopped.timed_out, stopped.still_running) == (True, False, 5)

"""The world moves: resumed runs finish on the simulated clock, failures re-enter the DLQ
as new entries, and the run logs follow it all."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from airflow_provider_wfdlq.devserver import DevServer
from tests.devserver.conftest import DLQ, walk_bulk

LOGS = "/v2/workflows/logs"


def resume_all(api: httpx.Client) -> list[dict[str, Any]]:
    pages = walk_bulk(api, "POST", f"{DLQ}/resume")
    return [run for page in pages for run in page["workflowRuns"]]


def test_runs_finish_after_run_seconds_with_the_success_ratio(
    server: DevServer, api: httpx.Client
) -> None:
    server.control.freeze_time()
    original_ids = {e["dlqId"] for e in server.control.entries()}
    started = resume_all(api)
    assert server.control.entries() == []
    server.control.advance_time(29)
    runs = {r["workflowRunId"]: r for r in server.control.runs()}
    assert {runs[s["workflowRunId"]]["workflowState"] for s in started} == {"RUN_STARTED"}
    server.control.advance_time(1)
    runs = {r["workflowRunId"]: r for r in server.control.runs()}
    states = [runs[s["workflowRunId"]]["workflowState"] for s in started]
    successes = states.count("RUN_SUCCESS")
    assert successes + states.count("RUN_FAILED") == len(started) == 150
    assert 0.65 < successes / len(started) < 0.95

    reentered = server.control.entries()
    assert len(reentered) == states.count("RUN_FAILED")
    assert not {e["dlqId"] for e in reentered} & original_ids
    failed_runs = {s["workflowRunId"] for s in started} - {
        r for r, run in runs.items() if run["workflowState"] == "RUN_SUCCESS"
    }
    assert {e["workflowRunId"] for e in reentered} == failed_runs
    for entry in reentered:
        run = runs[entry["workflowRunId"]]
        assert run["dlqId"] == entry["dlqId"]
        assert entry["workflowCreatedAt"] == run["workflowRunCreatedAt"]
        assert entry["createdAt"] == run["workflowRunCompletedAt"]


def test_outcomes_are_deterministic_per_seed(server: DevServer, api: httpx.Client) -> None:
    def outcome() -> list[str]:
        server.control.freeze_time()
        started = resume_all(api)
        server.control.advance_time(30)
        runs = {r["workflowRunId"]: r for r in server.control.runs()}
        return [runs[s["workflowRunId"]]["workflowState"] for s in started]

    first = outcome()
    server.control.reset()
    assert outcome() == first


@pytest.mark.parametrize(("ratio", "state"), [(1.0, "RUN_SUCCESS"), (0.0, "RUN_FAILED")])
def test_success_ratio_extremes(
    server: DevServer, api: httpx.Client, ratio: float, state: str
) -> None:
    server.control.reset(entries=10)
    server.control.set_config(success_ratio=ratio, run_seconds=5)
    started = resume_all(api)
    server.control.advance_time(5)
    runs = {r["workflowRunId"]: r for r in server.control.runs()}
    assert {runs[s["workflowRunId"]]["workflowState"] for s in started} == {state}
    assert len(server.control.entries()) == (10 if state == "RUN_FAILED" else 0)


def test_success_ratio_by_url_overrides_the_global_ratio(
    server: DevServer, api: httpx.Client
) -> None:
    """A bug that is live in one workflow: its resumed runs fail, the others recover."""
    broken = "https://broken.example.com/api/workflow"
    server.control.reset(entries=0)
    server.control.seed_entries(count=4, workflowUrl=broken, responseStatus=500)
    server.control.seed_entries(count=4, responseStatus=500)
    server.control.set_config(success_ratio=1.0, run_seconds=5, success_ratio_by_url={broken: 0})
    started = resume_all(api)
    server.control.advance_time(5)
    runs = {r["workflowRunId"]: r for r in server.control.runs()}
    by_url: dict[str, set[str]] = {}
    for s in started:
        run = runs[s["workflowRunId"]]
        by_url.setdefault((run["workflowUrl"] == broken and "broken") or "other", set()).add(
            run["workflowState"]
        )
    assert by_url == {"broken": {"RUN_FAILED"}, "other": {"RUN_SUCCESS"}}


def test_bad_success_ratio_by_url_is_refused(server: DevServer) -> None:
    with pytest.raises(Exception, match="success_ratio_by_url"):
        server.control.set_config(success_ratio_by_url={"https://x.example.com": 2})


def test_failed_resumed_run_with_failure_callback_reenters_in_progress_then_settles(
    server: DevServer, api: httpx.Client
) -> None:
    server.control.reset(entries=0)
    server.control.set_config(success_ratio=0.0)
    entry = server.control.seed_entries(failureCallbackInfo=None, failureCallback=None)[0]
    headers = {"Upstash-Failure-Callback": "https://ops.example.com/cb", "Upstash-Retries": "1"}
    api.post(f"{DLQ}/resume/{entry['dlqId']}", headers=headers)
    server.control.advance_time(30)
    (again,) = server.control.entries()
    assert again["dlqId"] != entry["dlqId"]
    assert again["failureCallback"] == "https://ops.example.com/cb"
    assert again["maxRetries"] == 1
    assert again["failureCallbackInfo"]["state"] == "CALLBACK_INPROGRESS"
    server.control.advance_time(20)
    assert api.get(f"{DLQ}/{again['dlqId']}").json()["failureCallbackInfo"]["state"] == (
        "CALLBACK_SUCCESS"
    )


def test_delay_postpones_the_end_of_the_run(server: DevServer, api: httpx.Client) -> None:
    server.control.freeze_time()
    entry = server.control.entries()[0]
    body = api.post(f"{DLQ}/resume/{entry['dlqId']}", headers={"Upstash-Delay": "1m"}).json()
    server.control.advance_time(60)
    logs = api.get(LOGS, params={"workflowRunId": body["workflowRunId"]}).json()
    assert logs["runs"][0]["workflowState"] == "RUN_STARTED"
    server.control.advance_time(30)
    logs = api.get(LOGS, params={"workflowRunId": body["workflowRunId"]}).json()
    assert logs["runs"][0]["workflowState"] in ("RUN_SUCCESS", "RUN_FAILED")


def test_run_logs_follow_one_run(server: DevServer, api: httpx.Client) -> None:
    entry = server.control.entries()[0]
    body = api.post(f"{DLQ}/resume/{entry['dlqId']}").json()
    params = {
        "workflowRunId": body["workflowRunId"],
        "workflowCreatedAt": body["workflowCreatedAt"],
    }
    logs = api.get(LOGS, params=params).json()
    (run,) = logs["runs"]
    assert run["workflowState"] == "RUN_STARTED"
    assert run["workflowUrl"] == entry["workflowUrl"]
    assert run["resumedFromDlqId"] == entry["dlqId"]
    assert "cursor" not in logs
    wrong_time = {**params, "workflowCreatedAt": body["workflowCreatedAt"] + 1}
    assert api.get(LOGS, params=wrong_time).json()["runs"] == []


def test_original_failed_runs_appear_as_run_failed_with_their_dlq_id(
    server: DevServer, api: httpx.Client
) -> None:
    entry = server.control.entries()[0]
    logs = api.get(LOGS, params={"workflowRunId": entry["workflowRunId"]}).json()
    (run,) = logs["runs"]
    assert run["workflowState"] == "RUN_FAILED"
    assert run["dlqId"] == entry["dlqId"]
    assert run["workflowRunCreatedAt"] == entry["workflowCreatedAt"]
    if "failureCallbackInfo" in entry:
        assert run["failureFunction"]["state"] == entry["failureCallbackInfo"]["state"]


def test_run_logs_for_many_runs_at_once(server: DevServer, api: httpx.Client) -> None:
    started = [api.post(f"{DLQ}/resume/{e['dlqId']}").json() for e in server.control.entries()[:3]]
    joined = ",".join(f"{s['workflowRunId']}@{s['workflowCreatedAt']}" for s in started)
    logs = api.get(LOGS, params={"workflowRuns": joined}).json()
    assert {r["workflowRunId"] for r in logs["runs"]} == {s["workflowRunId"] for s in started}
    # Other filters are ignored when workflowRuns is given.
    logs = api.get(LOGS, params={"workflowRuns": joined, "state": "RUN_SUCCESS"}).json()
    assert len(logs["runs"]) == 3


def test_run_logs_page_at_most_ten_runs(server: DevServer, api: httpx.Client) -> None:
    started = [api.post(f"{DLQ}/resume/{e['dlqId']}").json() for e in server.control.entries()[:25]]
    joined = ",".join(f"{s['workflowRunId']}@{s['workflowCreatedAt']}" for s in started)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"workflowRuns": joined, "count": 100}
        if cursor:
            params["cursor"] = cursor
        page = api.get(LOGS, params=params).json()
        assert len(page["runs"]) <= 10
        seen += [run["workflowRunId"] for run in page["runs"]]
        pages += 1
        cursor = page.get("cursor")
        if not cursor:
            break
    assert pages == 3
    assert sorted(seen) == sorted(s["workflowRunId"] for s in started)
    assert len(api.get(LOGS).json()["runs"]) == 10


def test_run_logs_filters_and_paging(server: DevServer, api: httpx.Client) -> None:
    resume_all(api)
    all_runs: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"count": 40}
        if cursor:
            params["cursor"] = cursor
        page = api.get(LOGS, params=params).json()
        all_runs.extend(page["runs"])
        cursor = page.get("cursor")
        if not cursor:
            break
    assert len(all_runs) == 300  # 150 original failures + 150 resumed runs
    created = [r["workflowRunCreatedAt"] for r in all_runs]
    assert created == sorted(created, reverse=True)
    started = api.get(LOGS, params={"state": "RUN_STARTED"}).json()["runs"]
    assert {r["workflowState"] for r in started} == {"RUN_STARTED"}
    url = all_runs[0]["workflowUrl"]
    by_url = api.get(LOGS, params={"workflowUrl": url, "state": "RUN_FAILED"}).json()["runs"]
    assert by_url
    assert all(r["workflowUrl"] == url for r in by_url)
    newest = all_runs[0]["workflowRunCreatedAt"]
    recent = api.get(LOGS, params={"fromDate": newest, "toDate": newest}).json()["runs"]
    assert recent
    assert all(r["workflowRunCreatedAt"] == newest for r in recent)
    labelled = api.get(LOGS, params={"label": "nightly"}).json()["runs"]
    assert labelled
    assert all("nightly" in r["labels"] for r in labelled)


@pytest.mark.parametrize(
    "params",
    [
        {"state": "RUN_DONE"},
        {"workflowRuns": "wfr_x"},
        {"workflowRuns": "wfr_x@soon"},
        {"workflowCreatedAt": "1"},
        {"count": "0"},
        {"dlqId": "1-0"},
    ],
)
def test_run_logs_reject_bad_queries(api: httpx.Client, params: dict[str, Any]) -> None:
    assert api.get(LOGS, params=params).status_code == 400


def test_flow_control_pause_holds_runs_and_resume_lets_them_go(
    server: DevServer, api: httpx.Client
) -> None:
    server.control.freeze_time()
    entry = server.control.entries()[0]
    headers = {"Upstash-Flow-Control-Key": "redrive"}
    body = api.post(f"{DLQ}/resume/{entry['dlqId']}", headers=headers).json()
    assert api.post("/v2/flowControl/redrive/pause").status_code == 200
    server.control.advance_time(120)
    state = api.get("/v2/flowControl/redrive").json()
    assert state == {"flowControlKey": "redrive", "waitListSize": 1, "isPaused": True}
    assert api.post("/v2/flowControl/redrive/resume").status_code == 200
    server.control.advance_time(30)
    (run,) = api.get(LOGS, params={"workflowRunId": body["workflowRunId"]}).json()["runs"]
    assert run["workflowState"] != "RUN_STARTED"
    assert api.get("/v2/flowControl/redrive").json()["waitListSize"] == 0

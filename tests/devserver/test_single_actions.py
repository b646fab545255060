"""Resume / restart / delete of one entry, override headers, the JS client's resume form."""

from __future__ import annotations

import json

import httpx
import pytest

from airflow_provider_wfdlq.devserver import DevServer
from tests.devserver.conftest import DLQ

ALL_OVERRIDES = {
    "Upstash-Retries": "0",
    "Upstash-Delay": "1d10h30m",
    "Upstash-Retry-Delay": "min(86400000, pow(2, retried) * 1000)",
    "Upstash-Flow-Control-Key": "redrive",
    "Upstash-Flow-Control-Value": "parallelism=3, rate=10, period=1m",
    "Upstash-Label": "redrive,nightly",
    "Upstash-Failure-Callback": "https://ops.example.com/failed",
}


def test_resume_issues_a_new_run_and_removes_the_entry(
    server: DevServer, api: httpx.Client
) -> None:
    entry = server.control.entries()[0]
    response = api.post(f"{DLQ}/resume/{entry['dlqId']}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"workflowRunId", "workflowCreatedAt"}
    assert body["workflowRunId"].startswith("wfr_")
    assert len(body["workflowRunId"]) == 25
    assert body["workflowRunId"] != entry["workflowRunId"]
    assert body["workflowCreatedAt"] >= entry["createdAt"]
    again = api.post(f"{DLQ}/resume/{entry['dlqId']}")
    assert again.status_code == 404
    assert "error" in again.json()
    run = next(r for r in server.control.runs() if r["workflowRunId"] == body["workflowRunId"])
    assert run["workflowState"] == "RUN_STARTED"
    assert run["resumedFromDlqId"] == entry["dlqId"]
    assert run["keptSteps"] >= 0
    assert run["workflowRunCreatedAt"] == body["workflowCreatedAt"]


def test_restart_starts_over_and_removes_the_entry(server: DevServer, api: httpx.Client) -> None:
    entry = server.control.entries()[1]
    body = api.post(f"{DLQ}/restart/{entry['dlqId']}").json()
    run = next(r for r in server.control.runs() if r["workflowRunId"] == body["workflowRunId"])
    assert run["restartedFromDlqId"] == entry["dlqId"]
    assert run["keptSteps"] == 0
    assert api.post(f"{DLQ}/restart/{entry['dlqId']}").status_code == 404
    assert [a["action"] for a in server.control.actions()] == ["restart"]


def test_override_headers_are_recorded_on_the_new_run(server: DevServer, api: httpx.Client) -> None:
    entry = server.control.entries()[2]
    body = api.post(f"{DLQ}/resume/{entry['dlqId']}", headers=ALL_OVERRIDES).json()
    run = next(r for r in server.control.runs() if r["workflowRunId"] == body["workflowRunId"])
    assert run["overrides"] == ALL_OVERRIDES
    assert run["maxRetries"] == 0
    assert run["labels"] == ["redrive", "nightly"]
    assert run["label"] == "redrive"
    assert run["flowControlKey"] == "redrive"
    assert run["flowControlValue"] == {"parallelism": 3, "rate": 10, "period": "1m"}
    assert run["failureCallback"] == "https://ops.example.com/failed"
    delay_ms = ((24 + 10) * 60 + 30) * 60_000
    assert run["notBefore"] == body["workflowCreatedAt"] + delay_ms
    action = server.control.actions()[-1]
    assert action["overrides"] == ALL_OVERRIDES
    assert action["newWorkflowRunId"] == body["workflowRunId"]


def test_a_left_out_header_keeps_the_failed_runs_setting(
    server: DevServer, api: httpx.Client
) -> None:
    entry = server.control.seed_entries(maxRetries=7, labels=["keep-me"])[0]
    body = api.post(f"{DLQ}/resume/{entry['dlqId']}").json()
    run = next(r for r in server.control.runs() if r["workflowRunId"] == body["workflowRunId"])
    assert run["maxRetries"] == 7
    assert run["labels"] == ["keep-me"]
    assert run["overrides"] == {}


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Upstash-Retries", "-1"),
        ("Upstash-Retries", "three"),
        ("Upstash-Delay", "10"),
        ("Upstash-Delay", "5x"),
        ("Upstash-Delay", "10m1d"),
        ("Upstash-Retry-Delay", "1000 * ("),
        ("Upstash-Retry-Delay", "__import__('os')"),
        ("Upstash-Retry-Delay", "attempts * 2"),
        ("Upstash-Flow-Control-Value", "parallelism=3"),
        ("Upstash-Label", "a,,b"),
        ("Upstash-Failure-Callback", "/relative"),
        ("Upstash-Failure-Callback", "ftp://example.com/x"),
    ],
)
def test_bad_override_headers_are_rejected_and_nothing_happens(
    server: DevServer, api: httpx.Client, header: str, value: str
) -> None:
    entry = server.control.entries()[0]
    for path in [f"{DLQ}/resume/{entry['dlqId']}", f"{DLQ}/restart", f"{DLQ}/resume"]:
        response = api.post(path, headers={header: value})
        assert response.status_code == 400, (path, header, value)
        assert header in response.json()["error"]
    assert server.control.actions() == []


@pytest.mark.parametrize(
    "value",
    ["parallelism=3, rate=10, period=1m", "rate=10", "parallelism=1,period=1h", "period=30s"],
)
def test_flow_control_value_subsets_in_order_are_accepted(
    server: DevServer, api: httpx.Client, value: str
) -> None:
    entry = server.control.entries()[0]
    headers = {"Upstash-Flow-Control-Key": "k", "Upstash-Flow-Control-Value": value}
    assert api.post(f"{DLQ}/resume/{entry['dlqId']}", headers=headers).status_code == 200


def test_flow_control_value_out_of_order_or_unknown_is_rejected(
    server: DevServer, api: httpx.Client
) -> None:
    entry = server.control.entries()[0]
    for value in ["rate=10, parallelism=3", "burst=3", "parallelism=0", "period=soon"]:
        headers = {"Upstash-Flow-Control-Key": "k", "Upstash-Flow-Control-Value": value}
        assert api.post(f"{DLQ}/resume/{entry['dlqId']}", headers=headers).status_code == 400


def test_js_client_single_resume_through_the_bulk_path(
    server: DevServer, api: httpx.Client
) -> None:
    entry = server.control.entries()[4]
    response = api.post(f"{DLQ}/resume", params={"dlqIds": entry["dlqId"]})
    body = response.json()
    assert list(body) == ["workflowRuns"]
    assert len(body["workflowRuns"]) == 1
    assert server.control.actions()[0]["dlqId"] == entry["dlqId"]


def test_delete_one_answers_200_with_an_empty_body(server: DevServer, api: httpx.Client) -> None:
    entry = server.control.entries()[0]
    response = api.delete(f"{DLQ}/{entry['dlqId']}")
    assert response.status_code == 200
    assert response.content == b""
    assert api.delete(f"{DLQ}/{entry['dlqId']}").status_code == 404
    assert [a["action"] for a in server.control.actions()] == ["delete"]


def test_incompatible_step_resume_succeeds_then_fails_back_into_the_dlq(
    server: DevServer, api: httpx.Client
) -> None:
    server.control.set_config(success_ratio=1.0)
    server.control.freeze_time()
    entry = server.control.seed_entries(incompatibleStep=True)[0]
    response = api.post(f"{DLQ}/resume/{entry['dlqId']}")
    assert response.status_code == 200
    run_id = response.json()["workflowRunId"]
    server.control.advance_time(60)
    (run,) = api.get("/v2/workflows/logs", params={"workflowRunId": run_id}).json()["runs"]
    assert run["workflowState"] == "RUN_FAILED"
    back = api.get(f"{DLQ}/{run['dlqId']}").json()
    assert back["dlqId"] != entry["dlqId"]
    assert back["workflowRunId"] == run_id
    assert back["responseStatus"] == 500
    assert back["responseHeader"]["Upstash-Workflow-Sdk-Version"] == ["1"]
    error = json.loads(back["responseBody"])
    assert error["error"] == "WorkflowError"
    assert error["message"].startswith("Incompatible step name. Expected '")
    assert error["message"].endswith("' from the request")
    # Resuming the new entry fails the same way (bulk too); restarting it succeeds.
    again = api.post(f"{DLQ}/resume", params={"dlqIds": back["dlqId"]}).json()
    server.control.advance_time(60)
    (run,) = api.get(
        "/v2/workflows/logs", params={"workflowRunId": again["workflowRuns"][0]["workflowRunId"]}
    ).json()["runs"]
    assert run["workflowState"] == "RUN_FAILED"
    restarted = api.post(f"{DLQ}/restart/{run['dlqId']}").json()
    server.control.advance_time(60)
    (run,) = api.get(
        "/v2/workflows/logs", params={"workflowRunId": restarted["workflowRunId"]}
    ).json()["runs"]
    assert run["workflowState"] == "RUN_SUCCESS"


def test_single_endpoints_reject_query_parameters(server: DevServer, api: httpx.Client) -> None:
    entry = server.control.entries()[0]
    response = api.post(f"{DLQ}/resume/{entry['dlqId']}", params={"dlqIds": entry["dlqId"]})
    assert response.status_code == 400
    assert server.control.actions() == []

"""Failure-callback retry and cancel, and callbacks settling on the simulated clock."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_wfdlq.devserver import DevServer
from tests.devserver.conftest import DLQ

STATES = ["CALLBACK_INPROGRESS", "CALLBACK_SUCCESS", "CALLBACK_FAIL", "CALLBACK_CANCELED"]


def state_of(api: httpx.Client, dlq_id: str) -> str:
    return str(api.get(f"{DLQ}/{dlq_id}").json()["failureCallbackInfo"]["state"])


def test_retry_from_fail_answers_the_original_run_and_goes_in_progress(
    server: DevServer, api: httpx.Client
) -> None:
    server.control.freeze_time()
    entry = server.control.seed_entries(failureCallbackInfo={"state": "CALLBACK_FAIL"})[0]
    response = api.post(f"{DLQ}/callback/{entry['dlqId']}")
    assert response.status_code == 200
    assert response.json() == {
        "workflowRunId": entry["workflowRunId"],
        "workflowCreatedAt": entry["workflowCreatedAt"],
    }
    assert state_of(api, entry["dlqId"]) == "CALLBACK_INPROGRESS"
    server.control.advance_time(19)
    assert state_of(api, entry["dlqId"]) == "CALLBACK_INPROGRESS"
    server.control.advance_time(1)
    assert state_of(api, entry["dlqId"]) == "CALLBACK_SUCCESS"
    assert [a["action"] for a in server.control.actions()] == ["callback_retry"]


@pytest.mark.parametrize("state", [s for s in STATES if s != "CALLBACK_FAIL"])
def test_retry_from_any_other_state_is_400(
    server: DevServer, api: httpx.Client, state: str
) -> None:
    entry = server.control.seed_entries()[0]
    server.control.set_callback_state(entry["dlqId"], state)
    response = api.post(f"{DLQ}/callback/{entry['dlqId']}")
    assert response.status_code == 400
    assert "CALLBACK_FAIL" in response.json()["error"]
    assert state_of(api, entry["dlqId"]) == state


def test_retry_without_a_failure_callback_is_400(server: DevServer, api: httpx.Client) -> None:
    entry = server.control.seed_entries(failureCallback=None, failureCallbackInfo=None)[0]
    assert api.post(f"{DLQ}/callback/{entry['dlqId']}").status_code == 400
    assert api.delete(f"{DLQ}/callback/{entry['dlqId']}").status_code == 400


def test_cancel_from_in_progress_answers_302_without_location(
    server: DevServer, api: httpx.Client
) -> None:
    server.control.freeze_time()
    entry = server.control.seed_entries(failureCallbackInfo={"state": "CALLBACK_INPROGRESS"})[0]
    response = api.delete(f"{DLQ}/callback/{entry['dlqId']}")
    assert response.status_code == 302
    assert "location" not in response.headers
    assert state_of(api, entry["dlqId"]) == "CALLBACK_CANCELED"
    server.control.advance_time(60)
    assert state_of(api, entry["dlqId"]) == "CALLBACK_CANCELED"
    again = api.delete(f"{DLQ}/callback/{entry['dlqId']}")
    assert again.status_code == 400
    assert [a["action"] for a in server.control.actions()] == ["callback_cancel"]


def test_cancel_survives_a_client_that_follows_redirects(server: DevServer) -> None:
    entry = server.control.seed_entries(failureCallbackInfo={"state": "CALLBACK_INPROGRESS"})[0]
    with httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.token}"},
        follow_redirects=True,
    ) as client:
        assert client.delete(f"{DLQ}/callback/{entry['dlqId']}").status_code == 302


def test_callback_actions_on_unknown_ids_are_404(api: httpx.Client) -> None:
    assert api.post(f"{DLQ}/callback/1-0").status_code == 404
    assert api.delete(f"{DLQ}/callback/1-0").status_code == 404


def test_in_progress_callbacks_settle_to_the_configured_outcome(
    server: DevServer, api: httpx.Client
) -> None:
    server.control.set_config(callback_outcome="CALLBACK_FAIL", callback_seconds=5)
    entry = server.control.seed_entries()[0]
    server.control.set_callback_state(entry["dlqId"], "CALLBACK_INPROGRESS")
    server.control.advance_time(5)
    assert state_of(api, entry["dlqId"]) == "CALLBACK_FAIL"
    run = next(r for r in server.control.runs() if r["workflowRunId"] == entry["workflowRunId"])
    assert run["failureFunction"]["state"] == "CALLBACK_FAIL"


def test_seeded_in_progress_callbacks_settle_too(server: DevServer, api: httpx.Client) -> None:
    in_progress = [
        e["dlqId"]
        for e in server.control.entries()
        if e.get("failureCallbackInfo", {}).get("state") == "CALLBACK_INPROGRESS"
    ]
    assert in_progress
    server.control.advance_time(21)
    assert {state_of(api, dlq_id) for dlq_id in in_progress} == {"CALLBACK_SUCCESS"}


def test_bad_callback_state_in_control_is_rejected(server: DevServer) -> None:
    entry = server.control.entries()[0]
    with pytest.raises(RuntimeError, match="invalid callback state"):
        server.control.set_callback_state(entry["dlqId"], "DONE")

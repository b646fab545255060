"""Listing, getting one, auth, and the strict query-string rules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from airflow_provider_wfdlq.devserver import DEV_TOKEN, DevServer
from tests.devserver.conftest import DLQ, list_all


def test_default_token_is_the_spec_dev_token(server: DevServer) -> None:
    assert server.token == DEV_TOKEN
    assert DEV_TOKEN == "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {DEV_TOKEN}"}],
)
def test_unauthorized_without_a_valid_bearer_token(
    server: DevServer, headers: dict[str, Any]
) -> None:
    for method, path in [
        ("GET", DLQ),
        ("GET", f"{DLQ}/1-0"),
        ("POST", f"{DLQ}/resume"),
        ("DELETE", DLQ),
        ("GET", "/v2/workflows/logs"),
    ]:
        response = httpx.request(method, server.url + path, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized"}
    assert server.control.actions() == []


def test_qstash_token_query_parameter_is_accepted_and_redacted_in_the_log(
    server: DevServer,
) -> None:
    response = httpx.get(server.url + DLQ, params={"qstash_token": server.token, "count": 1})
    assert response.status_code == 200
    logged = server.control.requests()[-1]
    assert ["qstash_token", "***"] in logged["query"]


def test_request_log_never_holds_the_authorization_header(
    server: DevServer, api: httpx.Client
) -> None:
    api.get(DLQ, params={"count": 2}, headers={"X-Trace": "t1"})
    logged = server.control.requests()[-1]
    assert logged["method"] == "GET"
    assert logged["path"] == DLQ
    assert logged["query"] == [["count", "2"]]
    assert logged["status"] == 200
    assert logged["headers"]["x-trace"] == "t1"
    assert "authorization" not in {name.lower() for name in logged["headers"]}


def test_list_pages_of_100_oldest_first_until_cursor_is_gone(
    server: DevServer, api: httpx.Client
) -> None:
    first = api.get(DLQ).json()
    assert len(first["messages"]) == 100
    assert first["cursor"]
    second = api.get(DLQ, params={"cursor": first["cursor"]}).json()
    assert len(second["messages"]) == 50
    assert "cursor" not in second
    ids = [m["dlqId"] for m in first["messages"] + second["messages"]]
    assert ids == [m["dlqId"] for m in server.control.entries()]
    keys = [tuple(int(p) for p in dlq_id.split("-")) for dlq_id in ids]
    assert keys == sorted(keys)


def test_list_count_is_the_page_size_and_is_capped_at_100(api: httpx.Client) -> None:
    assert len(api.get(DLQ, params={"count": 7}).json()["messages"]) == 7
    assert len(api.get(DLQ, params={"count": 1000}).json()["messages"]) == 100
    assert len(list_all(api, {"count": 13})) == 150


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bogus": "1"}, "unknown query parameter: bogus"),
        ({"count": "0"}, "count must be a positive integer"),
        ({"count": "ten"}, "count must be a positive integer"),
        ({"fromDate": "yesterday"}, "fromDate must be unix milliseconds"),
        ({"toDate": "1.5"}, "toDate must be unix milliseconds"),
        ({"workflowCreatedAt": "-3"}, "workflowCreatedAt must be unix milliseconds"),
        ({"failureFunctionState": "CALLBACK_DONE"}, "invalid failureFunctionState"),
        ({"dlqIds": "1-0"}, "dlqIds is only accepted by bulk calls"),
        ({"cursor": "not-a-cursor"}, "invalid cursor"),
        ({"label": ""}, "label needs a value"),
    ],
)
def test_list_rejects_bad_queries(api: httpx.Client, params: dict[str, Any], message: str) -> None:
    response = api.get(DLQ, params=params)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_get_one_and_unknown_ids(server: DevServer, api: httpx.Client) -> None:
    entry = server.control.entries()[3]
    response = api.get(f"{DLQ}/{entry['dlqId']}")
    assert response.status_code == 200
    assert response.json() == entry
    for unknown in ["1-0", "nonsense", entry["dlqId"].replace("-", "-0")]:
        missing = api.get(f"{DLQ}/{unknown}")
        assert missing.status_code == 404
        assert "error" in missing.json()
    assert api.get(f"{DLQ}/{entry['dlqId']}", params={"x": "1"}).status_code == 400


def test_seeded_entries_carry_every_documented_field(server: DevServer) -> None:
    entries = server.control.entries()
    always = {
        "dlqId", "messageId", "workflowRunId", "workflowUrl", "workflowCreatedAt", "createdAt",
        "url", "method", "header", "maxRetries", "notBefore", "callerIP", "responseStatus",
        "responseHeader",
    }  # fmt: skip
    for entry in entries:
        assert always <= set(entry)
        assert entry["workflowRunId"].startswith("wfr_")
        assert len(entry["workflowRunId"]) == 25
        assert entry["dlqId"] == f"{entry['createdAt']}-{entry['dlqId'].split('-')[1]}"
        assert ("body" in entry) != ("bodyBase64" in entry)
        assert ("responseBody" in entry) != ("responseBodyBase64" in entry)
    for optional in ["failureCallback", "failureCallbackInfo", "label", "flowControlKey"]:
        assert {e.get(optional) is not None for e in entries} == {True, False}
    assert len({e["workflowUrl"] for e in entries}) >= 4
    assert {500, 502, 503, 504, 489} <= {e["responseStatus"] for e in entries}
    states = {e["failureCallbackInfo"]["state"] for e in entries if "failureCallbackInfo" in e}
    assert states == {
        "CALLBACK_INPROGRESS",
        "CALLBACK_SUCCESS",
        "CALLBACK_FAIL",
        "CALLBACK_CANCELED",
    }
    spread_ms = max(e["createdAt"] for e in entries) - min(e["createdAt"] for e in entries)
    assert spread_ms > 2 * 86_400_000
    assert max(e["createdAt"] for e in entries) < server.control.now_ms()


def test_same_seed_same_entries_and_reset_with_another_seed(server: DevServer) -> None:
    before = server.control.entries()
    server.control.reset()
    assert server.control.entries() == before
    server.control.reset(seed=7, entries=12)
    other = server.control.entries()
    assert len(other) == 12
    assert other[0] != before[0]
    result = server.control.reset(random_seed=True, entries=3)
    assert len(server.control.entries()) == 3
    assert isinstance(result["seed"], int)


def test_js_client_list_form(server: DevServer, api: httpx.Client) -> None:
    page = api.get("/v2/dlq", params={"source": "workflow", "count": 5}).json()
    assert [m["dlqId"] for m in page["messages"]] == [
        e["dlqId"] for e in server.control.entries()[:5]
    ]
    assert api.get("/v2/dlq").status_code == 400
    assert api.get("/v2/dlq", params={"source": "message"}).status_code == 400


def test_unknown_path_and_method_answer_json_errors(api: httpx.Client) -> None:
    missing = api.get("/v2/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found"}
    wrong_method = api.put(DLQ)
    assert wrong_method.status_code == 405
    assert "error" in wrong_method.json()

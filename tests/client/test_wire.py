"""The exact wire form of every call, for both clients: method, path, ordered query
(repeated keys included), headers, and no body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

import airflow_provider_wfdlq
from airflow_provider_wfdlq.client import (
    OVERRIDE_HEADER_NAMES,
    AsyncWorkflowDLQClient,
    BulkResult,
    DeleteResult,
    DLQFilters,
    DLQMessage,
    Overrides,
    ResumedRun,
    RunLogPage,
    UnexpectedAnswerError,
    WorkflowDLQClient,
)
from tests.client.conftest import TOKEN, Api, FakeServer, answer

DLQ_ID = "1752829295505-0"
MS = 1_752_829_295_505
RUN = {"workflowRunId": "wfr_new", "workflowCreatedAt": MS + 1}
MESSAGE = {"dlqId": DLQ_ID, "workflowRunId": "wfr_old", "workflowCreatedAt": MS}

ALL_FILTERS: dict[str, Any] = {
    "from_date": MS,
    "to_date": "2025-07-19T00:00:00Z",
    "workflow_url": ["https://a.example/wf", "https://b.example/wf"],
    "workflow_run_id": "wfr_abc",
    "workflow_created_at": MS,
    "label": ["x", "y"],
    "failure_function_state": ["CALLBACK_FAIL", "CALLBACK_CANCELED"],
    "caller_ip": ["10.0.0.1", "::1"],
    "flow_control_key": ["k1", "k2"],
}
ALL_FILTER_PARAMS = [
    ("fromDate", str(MS)),
    ("toDate", "1752883200000"),
    ("workflowUrl", "https://a.example/wf"),
    ("workflowUrl", "https://b.example/wf"),
    ("workflowRunId", "wfr_abc"),
    ("workflowCreatedAt", str(MS)),
    ("label", "x"),
    ("label", "y"),
    ("failureFunctionState", "CALLBACK_FAIL"),
    ("failureFunctionState", "CALLBACK_CANCELED"),
    ("callerIp", "10.0.0.1"),
    ("callerIp", "::1"),
    ("flowControlKey", "k1"),
    ("flowControlKey", "k2"),
]
ALL_OVERRIDES: dict[str, Any] = {
    "retries": 0,
    "delay": 90,
    "retry_delay": "1000 * (1 + retried)",
    "flow_control_key": "redrive",
    "flow_control": {"period": "60s", "parallelism": 3, "rate": "10"},
    "label": ["redrive", "nightly"],
    "failure_callback": "https://cb.example/failed",
}
ALL_OVERRIDE_HEADERS = {
    "upstash-retries": "0",
    "upstash-delay": "1m30s",
    "upstash-retry-delay": "1000 * (1 + retried)",
    "upstash-flow-control-key": "redrive",
    "upstash-flow-control-value": "parallelism=3, rate=10, period=1m",
    "upstash-label": "redrive,nightly",
    "upstash-failure-callback": "https://cb.example/failed",
}


def upstash_headers(request: httpx.Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower().startswith("upstash-")}


def assert_common(request: httpx.Request) -> None:
    assert request.url.host == "dlq.example"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["accept"] == "application/json"
    version = airflow_provider_wfdlq.__version__
    expected_ua = f"airflow-provider-wfdlq/{version} httpx/{httpx.__version__}"
    assert request.headers["user-agent"] == expected_ua
    assert request.content == b""
    assert "qstash_token" not in str(request.url)
    assert TOKEN not in str(request.url)


async def test_list_messages_with_every_filter(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"messages": [MESSAGE], "cursor": "c2"}))
    page = await api.call("list_messages", ALL_FILTERS, cursor="c1", count=50)
    assert api.server.calls == [
        ("GET", "/v2/workflows/dlq", [*ALL_FILTER_PARAMS, ("cursor", "c1"), ("count", "50")])
    ]
    assert_common(api.server.requests[0])
    assert upstash_headers(api.server.requests[0]) == {}
    assert page.messages == (DLQMessage.from_json(MESSAGE),)
    assert page.cursor == "c2"
    assert not page.done


async def test_list_messages_without_anything(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"messages": []}))
    page = await api.call("list_messages")
    assert api.server.calls == [("GET", "/v2/workflows/dlq", [])]
    assert page.done


async def test_get_message(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json=MESSAGE))
    message = await api.call("get_message", DLQ_ID)
    assert api.server.calls == [("GET", f"/v2/workflows/dlq/{DLQ_ID}", [])]
    assert_common(api.server.requests[0])
    assert message.workflow_run_id == "wfr_old"


@pytest.mark.parametrize("action", ["resume", "restart"])
async def test_single_resume_and_restart_with_every_override(
    make_api: Callable[..., Api], action: str
) -> None:
    api = make_api(answer(json=RUN))
    run = await api.call(action, DLQ_ID, ALL_OVERRIDES)
    assert api.server.calls == [("POST", f"/v2/workflows/dlq/{action}/{DLQ_ID}", [])]
    request = api.server.requests[0]
    assert_common(request)
    assert upstash_headers(request) == ALL_OVERRIDE_HEADERS
    assert run == ResumedRun("wfr_new", MS + 1)


@pytest.mark.parametrize(
    ("name", "value", "header"),
    [
        ("retries", "3", "3"),
        ("delay", "0s", "0s"),
        ("retry_delay", "pow(2, retried)", "pow(2, retried)"),
        ("flow_control_key", "k", "k"),
        ("label", "only", "only"),
        ("failure_callback", "http://cb.example", "http://cb.example"),
    ],
)
async def test_each_override_alone(
    make_api: Callable[..., Api], name: str, value: str, header: str
) -> None:
    api = make_api(answer(json=RUN))
    await api.call("resume", DLQ_ID, {name: value})
    assert upstash_headers(api.server.requests[0]) == {OVERRIDE_HEADER_NAMES[name].lower(): header}


async def test_no_overrides_means_no_upstash_headers(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json=RUN))
    await api.call("resume", DLQ_ID, Overrides())
    assert upstash_headers(api.server.requests[0]) == {}


@pytest.mark.parametrize("action", ["resume", "restart"])
async def test_bulk_with_every_filter_and_override(
    make_api: Callable[..., Api], action: str
) -> None:
    api = make_api(answer(json={"workflowRuns": [RUN], "cursor": "next"}))
    result = await api.call(
        f"{action}_bulk", DLQFilters.build(**ALL_FILTERS), ALL_OVERRIDES, cursor="c1", count=7
    )
    expected_query = [*ALL_FILTER_PARAMS, ("cursor", "c1"), ("count", "7")]
    assert api.server.calls == [("POST", f"/v2/workflows/dlq/{action}", expected_query)]
    assert_common(api.server.requests[0])
    assert upstash_headers(api.server.requests[0]) == ALL_OVERRIDE_HEADERS
    assert result == BulkResult(runs=(ResumedRun("wfr_new", MS + 1),), cursor="next")


async def test_bulk_by_dlq_ids_repeats_the_key(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"workflowRuns": [RUN, RUN]}))
    result = await api.call("resume_bulk", {"dlq_ids": ["1-0", "2-0"]})
    assert api.server.calls == [
        ("POST", "/v2/workflows/dlq/resume", [("dlqIds", "1-0"), ("dlqIds", "2-0")])
    ]
    assert result.done


async def test_bulk_over_the_whole_dlq_needs_all(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"workflowRuns": [], "cursor": ""}))
    result = await api.call("restart_bulk", None, None, all=True, count=3)
    assert api.server.calls == [("POST", "/v2/workflows/dlq/restart", [("count", "3")])]
    assert result.done


async def test_retry_failure_callback(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"workflowRunId": "wfr_old", "workflowCreatedAt": MS}))
    run = await api.call("retry_failure_callback", DLQ_ID)
    assert api.server.calls == [("POST", f"/v2/workflows/dlq/callback/{DLQ_ID}", [])]
    assert_common(api.server.requests[0])
    assert run == ResumedRun("wfr_old", MS)


@pytest.mark.parametrize("status", [200, 204, 302])
async def test_cancel_failure_callback_takes_2xx_3xx_and_follows_no_redirect(
    make_api: Callable[..., Api], status: int
) -> None:
    api = make_api(answer(status, headers={"Location": "https://elsewhere.example/"}))
    assert await api.call("cancel_failure_callback", DLQ_ID) is None
    assert api.server.calls == [("DELETE", f"/v2/workflows/dlq/callback/{DLQ_ID}", [])]
    assert_common(api.server.requests[0])


async def test_a_redirect_elsewhere_is_not_followed_and_not_success(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(answer(302, headers={"Location": "https://elsewhere.example/"}))
    with pytest.raises(UnexpectedAnswerError):
        await api.call("get_message", DLQ_ID)
    assert len(api.server.requests) == 1


async def test_delete_one(make_api: Callable[..., Api]) -> None:
    api = make_api(httpx.Response(200))
    assert await api.call("delete", DLQ_ID) is None
    assert api.server.calls == [("DELETE", f"/v2/workflows/dlq/{DLQ_ID}", [])]
    assert_common(api.server.requests[0])


async def test_delete_bulk(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"deleted": 4, "cursor": "more"}))
    result = await api.call("delete_bulk", ALL_FILTERS, cursor="c", count=4)
    assert api.server.calls == [
        ("DELETE", "/v2/workflows/dlq", [*ALL_FILTER_PARAMS, ("cursor", "c"), ("count", "4")])
    ]
    assert_common(api.server.requests[0])
    assert result == DeleteResult(deleted=4, cursor="more")


async def test_run_logs_with_every_filter(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"runs": [], "cursor": ""}))
    page = await api.call(
        "run_logs",
        workflow_runs=[("wfr_a", MS), ResumedRun("wfr_b", MS + 1)],
        state="RUN_FAILED",
        from_date=MS,
        to_date=MS + 10,
        workflow_url="https://a.example/wf",
        label=["x", "y"],
        count=10,
        cursor="c",
    )
    assert api.server.calls == [
        (
            "GET",
            "/v2/workflows/logs",
            [
                ("workflowRuns", f"wfr_a@{MS},wfr_b@{MS + 1}"),
                ("state", "RUN_FAILED"),
                ("fromDate", str(MS)),
                ("toDate", str(MS + 10)),
                ("workflowUrl", "https://a.example/wf"),
                ("label", "x"),
                ("label", "y"),
                ("cursor", "c"),
                ("count", "10"),
            ],
        )
    ]
    assert_common(api.server.requests[0])
    assert page == RunLogPage(runs=(), cursor=None)


async def test_run_logs_of_one_run(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"runs": [{"workflowRunId": "wfr_a"}]}))
    page = await api.call("run_logs", workflow_run_id="wfr_a", workflow_created_at=MS)
    assert api.server.calls == [
        (
            "GET",
            "/v2/workflows/logs",
            [("workflowRunId", "wfr_a"), ("workflowCreatedAt", str(MS))],
        )
    ]
    assert page.runs[0].workflow_run_id == "wfr_a"


async def test_base_url_path_prefix_and_trailing_slash(kind: str) -> None:
    server = FakeServer(answer(json=MESSAGE))
    transport = httpx.MockTransport(server)
    if kind == "sync":
        with WorkflowDLQClient(TOKEN, "http://127.0.0.1:8080/", transport=transport) as client:
            client.get_message(DLQ_ID)
    else:
        async with AsyncWorkflowDLQClient(
            TOKEN, "http://127.0.0.1:8080/", transport=transport
        ) as async_client:
            await async_client.get_message(DLQ_ID)
    assert str(server.requests[0].url) == f"http://127.0.0.1:8080/v2/workflows/dlq/{DLQ_ID}"


@pytest.mark.parametrize("timeout", [30.0, 2.5])
async def test_timeout_reaches_the_transport(kind: str, timeout: float) -> None:
    server = FakeServer(answer(json=MESSAGE))
    transport = httpx.MockTransport(server)
    expected = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
    if kind == "sync":
        with WorkflowDLQClient(TOKEN, timeout=timeout, transport=transport) as client:
            client.get_message(DLQ_ID)
    else:
        async with AsyncWorkflowDLQClient(
            TOKEN, timeout=timeout, transport=transport
        ) as async_client:
            await async_client.get_message(DLQ_ID)
    assert server.requests[0].extensions["timeout"] == expected

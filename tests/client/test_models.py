"""Parsing answers: tolerant of missing optional and unknown fields, strict on required ones."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import pytest

from airflow_provider_wfdlq.client import (
    BulkResult,
    DeleteResult,
    DLQMessage,
    DLQPage,
    FailureCallbackInfo,
    ResumedRun,
    RunLogPage,
    UnexpectedAnswerError,
    WorkflowRun,
)
from tests.client.conftest import Api, answer

MS = 1_752_829_295_505


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


FULL = {
    "dlqId": f"{MS}-0",
    "messageId": "msg_1",
    "workflowRunId": "wfr_abc",
    "workflowUrl": "https://app.example/api/wf",
    "workflowCreatedAt": MS - 5,
    "createdAt": MS,
    "url": "https://app.example/api/wf",
    "method": "POST",
    "header": {"Content-Type": ["application/json"], "X-One": "single"},
    "bodyBase64": b64('{"order": 42}'),
    "maxRetries": 3,
    "notBefore": MS + 1000,
    "failureCallback": "https://app.example/failed",
    "callerIP": "10.0.0.1",
    "label": "first",
    "labels": ["first", "second"],
    "flowControlKey": "fc",
    "responseStatus": 489,
    "responseHeader": {"Upstash-NonRetryable-Error": ["true"]},
    "responseBodyBase64": b64("do not retry"),
    "failureCallbackInfo": {
        "state": "CALLBACK_FAIL",
        "responseStatus": 500,
        "responseBody": "boom",
        "responseHeaders": {"X": ["y"]},
    },
    "someFutureField": {"nested": True},
}


def test_full_message() -> None:
    message = DLQMessage.from_json(FULL)
    assert message.dlq_id == f"{MS}-0"
    assert message.body == '{"order": 42}'
    assert message.response_body == "do not retry"
    assert message.header == {"Content-Type": ("application/json",), "X-One": ("single",)}
    assert message.caller_ip == "10.0.0.1"
    assert message.labels == ("first", "second")
    assert message.response_status == 489
    assert message.failure_callback_info == FailureCallbackInfo(
        state="CALLBACK_FAIL",
        response_status=500,
        response_body="boom",
        response_headers={"X": ("y",)},
    )
    assert message.failure_function_state == "CALLBACK_FAIL"
    assert message.raw["someFutureField"] == {"nested": True}


def test_plain_body_wins_over_base64() -> None:
    message = DLQMessage.from_json({"dlqId": "1-0", "body": "plain", "bodyBase64": b64("other")})
    assert message.body == "plain"


def test_binary_base64_body_is_decoded_with_replacement() -> None:
    encoded = base64.b64encode(b"\xff\xfeok").decode()
    assert DLQMessage.from_json({"dlqId": "1-0", "bodyBase64": encoded}).body == "\ufffd\ufffdok"


def test_flat_failure_function_state_fallback() -> None:
    message = DLQMessage.from_json({"dlqId": "1-0", "failureFunctionState": "CALLBACK_INPROGRESS"})
    assert message.failure_callback_info is None
    assert message.failure_function_state == "CALLBACK_INPROGRESS"


def test_missing_failure_callback_info() -> None:
    message = DLQMessage.from_json({"dlqId": "1-0"})
    assert message.failure_callback_info is None
    assert message.failure_function_state is None
    assert message.labels == ()
    assert message.body is None
    assert message.header == {}


def test_label_fallback() -> None:
    assert DLQMessage.from_json({"dlqId": "1-0", "label": "only"}).labels == ("only",)
    assert DLQMessage.from_json({"dlqId": "1-0", "labels": [], "label": "x"}).labels == ("x",)


def test_repr_leaves_out_application_payloads() -> None:
    text = repr(DLQMessage.from_json(FULL))
    assert "order" not in text
    assert "do not retry" not in text
    assert "Content-Type" not in text
    assert "wfr_abc" in text


def test_pages_and_results() -> None:
    assert DLQPage.from_json({"messages": [FULL], "cursor": "c"}).cursor == "c"
    assert DLQPage.from_json({"messages": []}).done
    assert DLQPage.from_json({"cursor": ""}).done
    assert ResumedRun.from_json({"workflowRunId": "wfr_a", "workflowCreatedAt": str(MS)}) == (
        ResumedRun("wfr_a", MS)
    )
    assert BulkResult.from_json({"workflowRuns": [], "cursor": ""}) == BulkResult((), None)
    assert DeleteResult.from_json({}) == DeleteResult(0, None)


def test_workflow_run() -> None:
    run = WorkflowRun.from_json(
        {
            "workflowRunId": "wfr_a",
            "workflowUrl": "https://app.example/wf",
            "workflowState": "RUN_FAILED",
            "workflowRunCreatedAt": MS,
            "workflowRunCompletedAt": MS + 10,
            "dlqId": f"{MS}-0",
            "failureFunction": {"state": "CALLBACK_SUCCESS", "nextDeliveryTime": 0},
            "label": "l",
            "steps": [],
        }
    )
    assert run.workflow_state == "RUN_FAILED"
    assert run.failure_function_state == "CALLBACK_SUCCESS"
    assert run.dlq_id == f"{MS}-0"
    assert run.labels == ("l",)
    assert "steps" in run.raw
    bare = RunLogPage.from_json({"runs": [{"workflowRunId": "wfr_b", "dlqId": ""}]}).runs[0]
    assert bare.dlq_id is None
    assert bare.failure_function_state is None


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"workflowRunId": "wfr_without_dlq_id"}]},
        {"messages": [{"dlqId": "1-0", "bodyBase64": "!!not base64!!"}]},
        {"messages": "not a list"},
        {"messages": [{"dlqId": "1-0", "createdAt": "yesterday"}]},
        ["not", "an", "object"],
    ],
)
async def test_answers_that_break_the_contract(make_api: Callable[..., Api], body: object) -> None:
    api = make_api(answer(json=body))
    with pytest.raises(UnexpectedAnswerError) as caught:
        await api.call("list_messages")
    assert caught.value.status == 200
    assert caught.value.path == "/v2/workflows/dlq"


async def test_non_json_success(make_api: Callable[..., Api]) -> None:
    api = make_api(httpx.Response(200, text="<html>proxy page</html>"))
    with pytest.raises(UnexpectedAnswerError, match="not a JSON object"):
        await api.call("resume", "1-0")

"""Wire facts checked against Upstash's published sources (issue 12).

Each test names its source; docs/conformance.md lists them. Sources:
- upstash/docs: workflow/openapi.yaml, qstash/openapi.yaml, workflow/basics/client/*.mdx,
  qstash/api/api-ratelimiting.mdx
- upstash/workflow-js (@upstash/workflow): src/client/types.ts, src/client/dlq.test.ts,
  src/qstash/headers.ts
- upstash/qstash-js (@upstash/qstash): src/client/flow-control.ts, src/client/duration.ts
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_wfdlq.client import (
    MAX_LOG_RUNS,
    DLQMessage,
    FlowControlState,
    ResumedRun,
    ValidationError,
    check_run_id,
    parse_flow_control,
)
from airflow_provider_wfdlq.client.retry import rate_limit_wait
from tests.client.conftest import NOW, Api, answer

MS = 1_752_829_295_505


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# 1. flow control: waitListSize (qstash/openapi.yaml FlowControlKey; qstash-js FlowControlInfo)


def test_flow_control_wait_list_size_is_read_with_a_capital_l() -> None:
    state = FlowControlState.from_json({"flowControlKey": "k", "waitListSize": 7})
    assert state.waitlist_size == 7


def test_flow_control_wait_list_size_also_reads_the_workflow_openapi_spelling() -> None:
    # workflow/openapi.yaml's FlowControlKey schema spells it waitlistSize.
    assert FlowControlState.from_json({"waitlistSize": 4}, "k").waitlist_size == 4


async def test_flow_control_state_over_the_wire(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"flowControlKey": "k", "waitListSize": 3, "isPaused": True}))
    state = await api.call("flow_control_state", "k")
    assert (state.waitlist_size, state.is_paused) == (3, True)


# 2. logs run mode: "Run mode (groupBy=workflowRunId): Max 10 (default 10)"
#    (workflow/openapi.yaml GET /v2/workflows/logs, count)


def test_the_logs_run_limit_is_ten() -> None:
    assert MAX_LOG_RUNS == 10


async def test_workflow_runs_names_at_most_ten_runs(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"runs": []}))
    runs = [(f"wfr_{n}", MS + n) for n in range(11)]
    with pytest.raises(ValidationError, match=r"names 11 runs; expected at most 10 runs"):
        await api.call("run_logs", workflow_runs=runs)
    await api.call("run_logs", workflow_runs=runs[:10])
    assert len(api.server.requests) == 1


async def test_logs_count_is_at_most_ten(make_api: Callable[..., Api]) -> None:
    api = make_api()
    with pytest.raises(ValidationError, match="count: 11 is above the page size limit"):
        await api.call("run_logs", workflow_run_id="wfr_a", count=11)
    assert api.server.requests == []


# 3. workflowCreatedAt of resume/restart: int64 ms (workflow/openapi.yaml) but string in
#    @upstash/workflow DLQResumeRestartResponse, ISO text in src/client/dlq.test.ts


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (MS, MS),
        (str(MS), MS),
        ("2023-01-01T00:00:00Z", 1_672_531_200_000),
        ("2023-01-01T01:00:00.250+01:00", 1_672_531_200_250),
        ("2023-01-01T00:00:00", 1_672_531_200_000),
    ],
)
def test_resumed_run_created_at_forms(raw: Any, expected: int) -> None:
    run = ResumedRun.from_json({"workflowRunId": "wfr_a", "workflowCreatedAt": raw})
    assert run.workflow_created_at == expected
    assert run.workflow_created_at_raw == raw


@pytest.mark.parametrize("raw", ["yesterday", "", None, True, {"ms": 1}])
def test_an_unreadable_created_at_never_refuses_an_acted_answer(raw: Any) -> None:
    run = ResumedRun.from_json({"workflowRunId": "wfr_a", "workflowCreatedAt": raw})
    assert run.workflow_created_at is None
    assert run.workflow_created_at_raw == raw


async def test_bulk_resume_with_iso_created_at(make_api: Callable[..., Api]) -> None:
    body = {
        "workflowRuns": [
            {"workflowRunId": "wfr-1", "workflowCreatedAt": "2023-01-01T00:00:00Z"},
            {"workflowRunId": "wfr-2", "workflowCreatedAt": "garbage"},
        ]
    }
    api = make_api(answer(json=body))
    result = await api.call("resume_bulk", {"dlq_ids": ["1-0", "2-0"]})
    assert [r.workflow_created_at for r in result.runs] == [1_672_531_200_000, None]
    assert result.runs[1].workflow_created_at_raw == "garbage"


# 4. custom run ids (workflow/basics/client/trigger.mdx: "my-workflow" -> "wfr_my-workflow";
#    @upstash/workflow's tests use "wfr-<nanoid>")


@pytest.mark.parametrize(
    "run_id", ["wfr_order.1", "wfr_my-workflow", "my-workflow", "wfr-abc", "wfr_a/b", "ünïcode"]
)
def test_custom_run_ids_are_accepted(run_id: str) -> None:
    assert check_run_id(f" {run_id} ", "workflow_run_id") == run_id


async def test_a_custom_run_id_reaches_the_logs_call(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"runs": []}))
    await api.call("run_logs", workflow_runs=[("wfr_order.1", MS)])
    assert api.server.calls[0][2] == [("workflowRuns", f"wfr_order.1@{MS}")]


@pytest.mark.parametrize("run_id", ["", " ", "a b", "a\nb", "a\x1bb", "a,b", "a@b"])
def test_run_ids_that_break_the_wire_are_refused(run_id: str) -> None:
    with pytest.raises(ValidationError, match="workflow_run_id"):
        check_run_id(run_id, "workflow_run_id")


# 5. flow-control period: one number, one unit (workflow-js src/qstash/headers.ts
#    prepareFlowControl sends f"{n}s"; qstash-js src/client/duration.ts Duration type)


@pytest.mark.parametrize(
    ("period", "sent"),
    [
        (90, "90s"),
        ("1m30s", "90s"),
        ("60s", "1m"),
        ("1h30m", "90m"),
        ("1d1h", "25h"),
        (dt.timedelta(days=2), "2d"),
    ],
)
def test_flow_control_period_is_sent_in_a_single_unit(period: Any, sent: str) -> None:
    assert parse_flow_control({"rate": 5, "period": period}, "f").header_value() == (
        f"rate=5, period={sent}"
    )


async def test_flow_control_override_header(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"workflowRunId": "wfr_a", "workflowCreatedAt": MS}))
    overrides = {"flow_control_key": "k", "flow_control": "rate=5, period=1m30s"}
    await api.call("resume", "1-0", overrides)
    assert api.server.requests[0].headers["upstash-flow-control-value"] == "rate=5, period=90s"


# 6. logs workflowUrl: one exact URL (workflow/openapi.yaml: type string, "exact match")


async def test_logs_workflow_url_is_a_single_value(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"runs": []}))
    with pytest.raises(ValidationError, match=r"workflow_url.*is not a single URL"):
        await api.call("run_logs", workflow_url=["https://a.example/wf", "https://b.example"])
    await api.call("run_logs", workflow_url="https://a.example/wf")
    assert api.server.calls == [
        ("GET", "/v2/workflows/logs", [("workflowUrl", "https://a.example/wf")])
    ]


# 7. no count with dlqIds: pinned in test_at_most_once.test_count_is_never_sent_with_dlq_ids


# 8. body/responseBody are "empty otherwise" and bodyBase64/responseBodyBase64 carry non-UTF-8
#    bodies (workflow/openapi.yaml WorkflowDLQMessage)


def test_empty_body_falls_back_to_base64_decoded_with_replacement() -> None:
    message = DLQMessage.from_json(
        {
            "dlqId": "1-0",
            "body": "",
            "bodyBase64": b64(b'{"card": "\xff"}'),
            "responseBody": "",
            "responseBodyBase64": b64(b"\xfe fraud"),
        }
    )
    assert message.body == '{"card": "\ufffd"}'
    assert message.response_body == "\ufffd fraud"


def test_utf8_body_wins_and_empty_base64_is_ignored() -> None:
    message = DLQMessage.from_json(
        {"dlqId": "1-0", "body": "plain", "responseBody": "", "responseBodyBase64": ""}
    )
    assert (message.body, message.response_body) == ("plain", "")


# 9. *-RateLimit-Reset: "Time (in unix timestamp)", unit unspecified
#    (qstash/api/api-ratelimiting.mdx); qstash-js reads it as text


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"RateLimit-Reset": str(int(NOW) + 5)}, 5.0),
        ({"RateLimit-Reset": str(int(NOW * 1000) + 5000)}, 5.0),
        ({"Burst-RateLimit-Reset": str(int(NOW * 1000) + 1500)}, 1.5),
        ({"Burst-RateLimit-Reset": "nan"}, None),
    ],
)
def test_rate_limit_reset_in_seconds_or_milliseconds(
    headers: dict[str, str], wait: float | None
) -> None:
    assert rate_limit_wait(headers, NOW) == (pytest.approx(wait) if wait is not None else None)

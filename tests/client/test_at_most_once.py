"""Action calls are sent at most once.

Resume, restart, delete and callback retry/cancel are re-sent only after an outcome that
provably did not act (429, a 503 the server answered, a connection never made). Any other
unclear outcome raises OutcomeUnknownError naming the ids, after exactly one request:
resuming a checkout twice is worse than not knowing.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from airflow_provider_wfdlq.client import (
    BulkResult,
    NotFoundError,
    OutcomeUnknownError,
    ResumedRun,
    ValidationError,
    WFDLQError,
)
from tests.client.conftest import TOKEN, Api, Sleeps, answer

MS = 1_752_829_295_505
IDS = ("1-0", "2-0", "3-0")
RUN = {"workflowRunId": "wfr_1", "workflowCreatedAt": MS}

AMBIGUOUS = [
    pytest.param(httpx.ReadTimeout("slow read"), id="read-timeout"),
    pytest.param(httpx.WriteTimeout("slow write"), id="write-timeout"),
    pytest.param(httpx.ReadError("reset by peer"), id="read-error"),
    pytest.param(httpx.WriteError("broken pipe"), id="write-error"),
    pytest.param(httpx.RemoteProtocolError("server disconnected"), id="dropped"),
    pytest.param(answer(502, {"error": "bad gateway"}), id="502"),
    pytest.param(answer(504, {"error": "gateway timeout"}), id="504"),
]
NOT_ACTED = [
    pytest.param(answer(429, {"error": "slow down"}), id="429"),
    pytest.param(answer(503, {"error": "unavailable"}), id="503"),
    pytest.param(httpx.ConnectError("connection refused"), id="connect-refused"),
    pytest.param(httpx.ConnectTimeout("slow connect"), id="connect-timeout"),
    pytest.param(httpx.PoolTimeout("pool full"), id="pool-timeout"),
]

# (client method, args, kwargs, success reply, expected ids, expected method and path)
ACTIONS: list[Any] = [
    pytest.param(
        "resume",
        ("1-0",),
        {},
        answer(json=RUN),
        ("1-0",),
        ("POST", "/v2/workflows/dlq/resume/1-0"),
        id="resume",
    ),
    pytest.param(
        "restart",
        ("1-0",),
        {},
        answer(json=RUN),
        ("1-0",),
        ("POST", "/v2/workflows/dlq/restart/1-0"),
        id="restart",
    ),
    pytest.param(
        "delete", ("1-0",), {}, answer(), ("1-0",), ("DELETE", "/v2/workflows/dlq/1-0"), id="delete"
    ),
    pytest.param(
        "retry_failure_callback",
        ("1-0",),
        {},
        answer(json=RUN),
        ("1-0",),
        ("POST", "/v2/workflows/dlq/callback/1-0"),
        id="callback-retry",
    ),
    pytest.param(
        "cancel_failure_callback",
        ("1-0",),
        {},
        answer(),
        ("1-0",),
        ("DELETE", "/v2/workflows/dlq/callback/1-0"),
        id="callback-cancel",
    ),
    pytest.param(
        "resume_bulk",
        ({"dlq_ids": IDS},),
        {},
        answer(json={"workflowRuns": [RUN]}),
        IDS,
        ("POST", "/v2/workflows/dlq/resume"),
        id="resume-bulk-ids",
    ),
    pytest.param(
        "restart_bulk",
        ({"label": "checkout"},),
        {},
        answer(json={"workflowRuns": [RUN]}),
        (),
        ("POST", "/v2/workflows/dlq/restart"),
        id="restart-bulk-filters",
    ),
    pytest.param(
        "delete_bulk",
        ({"dlq_ids": IDS},),
        {},
        answer(json={"deleted": 3}),
        IDS,
        ("DELETE", "/v2/workflows/dlq"),
        id="delete-bulk-ids",
    ),
    pytest.param(
        "delete_bulk",
        (),
        {"all": True},
        answer(json={"deleted": 3}),
        (),
        ("DELETE", "/v2/workflows/dlq"),
        id="delete-bulk-all",
    ),
]


@pytest.mark.parametrize("lost", AMBIGUOUS)
@pytest.mark.parametrize(("method", "args", "kwargs", "ok", "ids", "target"), ACTIONS)
async def test_an_unclear_outcome_is_never_resent(
    make_api: Callable[..., Api],
    sleeps: Sleeps,
    lost: Any,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    ok: httpx.Response,
    ids: tuple[str, ...],
    target: tuple[str, str],
) -> None:
    api = make_api(lost, ok)  # the success would only come from a (forbidden) second send
    with pytest.raises(OutcomeUnknownError) as caught:
        await api.call(method, *args, **kwargs)
    error = caught.value
    assert isinstance(error, WFDLQError)
    assert len(api.server.requests) == 1
    assert sleeps == []
    assert (error.method, error.path) == target
    assert error.dlq_ids == ids
    assert "may or may not have acted" in str(error)
    assert "nothing was re-sent" in str(error)
    if ids:
        assert all(dlq_id in str(error) for dlq_id in ids)
    if isinstance(lost, Exception):
        assert error.__cause__ is lost
    assert pickle.loads(pickle.dumps(error)).dlq_ids == ids


@pytest.mark.parametrize("refused", NOT_ACTED)
@pytest.mark.parametrize(("method", "args", "kwargs", "ok", "ids", "target"), ACTIONS)
async def test_an_outcome_that_did_not_act_is_retried(
    make_api: Callable[..., Api],
    refused: Any,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    ok: httpx.Response,
    ids: tuple[str, ...],
    target: tuple[str, str],
) -> None:
    api = make_api(refused, ok)
    await api.call(method, *args, **kwargs)
    assert len(api.server.requests) == 2
    assert {(r.method, r.url.path) for r in api.server.requests} == {target}


async def test_a_404_is_not_found_and_nothing_is_looked_up(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(429), answer(404, {"error": "Some DLQ messages were not found"}))
    with pytest.raises(NotFoundError) as caught:
        await api.call("resume_bulk", {"dlq_ids": IDS})
    assert caught.value.error == "Some DLQ messages were not found"
    assert [c[:2] for c in api.server.calls] == [("POST", "/v2/workflows/dlq/resume")] * 2


async def test_the_error_never_shows_the_token(make_api: Callable[..., Api]) -> None:
    api = make_api(httpx.ReadError(f"peer echoed Bearer {TOKEN}"))
    with pytest.raises(OutcomeUnknownError) as caught:
        await api.call("resume", "1-0")
    assert TOKEN not in str(caught.value)


async def test_an_unclear_outcome_after_a_refusal_still_raises(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(answer(503), httpx.ReadTimeout("slow"), answer(json=RUN))
    with pytest.raises(OutcomeUnknownError):
        await api.call("resume", "1-0")
    assert len(api.server.requests) == 2


async def test_reads_still_retry_every_unclear_outcome(make_api: Callable[..., Api]) -> None:
    api = make_api(
        httpx.ReadTimeout("slow"),
        answer(502),
        answer(504),
        answer(json={"dlqId": "1-0"}),
    )
    message = await api.call("get_message", "1-0")
    assert message.dlq_id == "1-0"
    assert len(api.server.requests) == 4


async def test_flow_control_pause_is_idempotent_and_retried(make_api: Callable[..., Api]) -> None:
    api = make_api(httpx.ReadTimeout("slow"), answer())
    await api.call("pause_flow_control", "checkout")
    assert len(api.server.requests) == 2


async def test_bulk_result_exposes_a_partial_call_by_ids(make_api: Callable[..., Api]) -> None:
    """A cursor on a call by dlqIds: the server acted on fewer ids than named."""
    api = make_api(answer(json={"workflowRuns": [RUN], "cursor": "next"}))
    result = await api.call("resume_bulk", {"dlq_ids": IDS})
    assert result == BulkResult(runs=(ResumedRun("wfr_1", MS),), cursor="next")
    assert not result.done


async def test_count_is_never_sent_with_dlq_ids(make_api: Callable[..., Api]) -> None:
    """Upstash: with dlqIds "other filters are ignored"; count is refused, not sent."""
    api = make_api()
    for method in ("resume_bulk", "restart_bulk", "delete_bulk"):
        with pytest.raises(ValidationError, match="count: 2 cannot be used with dlq_ids"):
            await api.call(method, {"dlq_ids": IDS}, count=2)
    assert api.server.requests == []

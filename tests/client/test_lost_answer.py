"""Lost answers: an attempt that may have acted but whose answer never arrived.

The retry must not report a false 404 as "not found", must not act twice, and must say
which results are unknown."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from airflow_provider_wfdlq.client import (
    AnswerLostError,
    BadRequestError,
    BulkResult,
    DeleteResult,
    NotFoundError,
    ResumedRun,
)
from tests.client.conftest import Api, answer

MS = 1_752_829_295_505
IDS = ["1-0", "2-0", "3-0"]
NOT_FOUND = answer(404, {"error": "Some DLQ messages were not found"})
GONE = answer(404, {"error": "dlq message not found"})


def run(n: int) -> dict[str, object]:
    return {"workflowRunId": f"wfr_{n}", "workflowCreatedAt": MS + n}


def entry(dlq_id: str, state: str | None = None) -> httpx.Response:
    body: dict[str, object] = {
        "dlqId": dlq_id,
        "workflowRunId": "wfr_orig",
        "workflowCreatedAt": MS,
    }
    if state:
        body["failureCallbackInfo"] = {"state": state}
    return answer(json=body)


def dlq_ids_query(*ids: str) -> list[tuple[str, str]]:
    return [("dlqIds", dlq_id) for dlq_id in ids]


@pytest.mark.parametrize(
    "lost", [httpx.ReadTimeout("lost"), httpx.RemoteProtocolError("cut"), answer(502), answer(504)]
)
async def test_bulk_by_ids_resends_only_what_is_left(
    make_api: Callable[..., Api], lost: httpx.Response | Exception
) -> None:
    api = make_api(
        lost,
        NOT_FOUND,
        GONE,  # 1-0 was resumed by the lost attempt
        GONE,  # 2-0 too
        entry("3-0"),  # 3-0 is still there
        answer(json={"workflowRuns": [run(3)]}),
    )
    result = await api.call("resume_bulk", {"dlq_ids": IDS}, {"retries": 2})
    assert api.server.calls == [
        ("POST", "/v2/workflows/dlq/resume", dlq_ids_query(*IDS)),
        ("POST", "/v2/workflows/dlq/resume", dlq_ids_query(*IDS)),
        ("GET", "/v2/workflows/dlq/1-0", []),
        ("GET", "/v2/workflows/dlq/2-0", []),
        ("GET", "/v2/workflows/dlq/3-0", []),
        ("POST", "/v2/workflows/dlq/resume", dlq_ids_query("3-0")),
    ]
    assert api.server.requests[-1].headers["upstash-retries"] == "2"
    assert result == BulkResult(
        runs=(ResumedRun("wfr_3", MS + 3),),
        cursor=None,
        lost_dlq_ids=("1-0", "2-0"),
        answer_lost=True,
    )


async def test_bulk_by_ids_all_acted_on_by_the_lost_attempt(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(httpx.ReadTimeout("lost"), NOT_FOUND, GONE, GONE, GONE)
    result = await api.call("restart_bulk", {"dlq_ids": IDS})
    assert len(api.server.requests) == 5  # no re-send: nothing is left
    assert result == BulkResult(runs=(), cursor=None, lost_dlq_ids=tuple(IDS), answer_lost=True)


async def test_bulk_by_ids_404_on_first_attempt_is_real(make_api: Callable[..., Api]) -> None:
    api = make_api(NOT_FOUND)
    with pytest.raises(NotFoundError, match="Some DLQ messages were not found") as caught:
        await api.call("resume_bulk", {"dlq_ids": IDS})
    assert not isinstance(caught.value, AnswerLostError)
    assert len(api.server.requests) == 1


async def test_404_after_a_connection_that_never_carried_the_request_is_real(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(httpx.ConnectError("refused"), NOT_FOUND)
    with pytest.raises(NotFoundError):
        await api.call("resume_bulk", {"dlq_ids": IDS})
    assert len(api.server.requests) == 2  # no look-ups


async def test_404_that_the_lost_answer_does_not_explain(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(503), NOT_FOUND, entry("1-0"), entry("2-0"), entry("3-0"))
    with pytest.raises(NotFoundError):
        await api.call("resume_bulk", {"dlq_ids": IDS})
    assert len(api.server.requests) == 5


async def test_bulk_delete_by_ids_after_a_lost_answer(make_api: Callable[..., Api]) -> None:
    api = make_api(
        httpx.ReadTimeout("lost"), NOT_FOUND, GONE, entry("2-0"), answer(json={"deleted": 1})
    )
    result = await api.call("delete_bulk", {"dlq_ids": ["1-0", "2-0"]})
    assert api.server.calls[-1] == ("DELETE", "/v2/workflows/dlq", dlq_ids_query("2-0"))
    assert result == DeleteResult(deleted=1, cursor=None, lost_dlq_ids=("1-0",), answer_lost=True)


async def test_bulk_by_filters_after_a_lost_answer_reports_it(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(answer(502), answer(json={"workflowRuns": [run(7)], "cursor": "c"}))
    result = await api.call("resume_bulk", {"label": "x"}, count=10)
    assert [call[0] for call in api.server.calls] == ["POST", "POST"]
    assert result == BulkResult(
        runs=(ResumedRun("wfr_7", MS + 7),), cursor="c", lost_dlq_ids=(), answer_lost=True
    )


async def test_bulk_by_filters_without_loss(make_api: Callable[..., Api]) -> None:
    api = make_api(httpx.ConnectError("refused"), answer(json={"workflowRuns": []}))
    result = await api.call("resume_bulk", {"label": "x"})
    assert result.answer_lost is False


@pytest.mark.parametrize("action", ["resume", "restart"])
async def test_single_resume_after_a_lost_answer(make_api: Callable[..., Api], action: str) -> None:
    api = make_api(httpx.ReadTimeout("lost"), GONE)
    with pytest.raises(AnswerLostError) as caught:
        await api.call(action, "1-0")
    assert isinstance(caught.value, NotFoundError)
    assert caught.value.dlq_id == "1-0"
    assert caught.value.status == 404
    assert f"most likely did {action} DLQ entry 1-0" in str(caught.value)


async def test_single_resume_404_without_loss_is_plain(make_api: Callable[..., Api]) -> None:
    api = make_api(httpx.ConnectTimeout("slow"), GONE)
    with pytest.raises(NotFoundError) as caught:
        await api.call("resume", "1-0")
    assert not isinstance(caught.value, AnswerLostError)


async def test_delete_after_a_lost_answer_is_done(make_api: Callable[..., Api]) -> None:
    api = make_api(httpx.ReadTimeout("lost"), GONE)
    assert await api.call("delete", "1-0") is None
    api = make_api(GONE)
    with pytest.raises(NotFoundError):
        await api.call("delete", "1-0")


async def test_callback_retry_after_a_lost_answer_reads_the_entry(
    make_api: Callable[..., Api],
) -> None:
    wrong_state = answer(400, {"error": "failure callback is not in CALLBACK_FAIL state"})
    api = make_api(httpx.ReadTimeout("lost"), wrong_state, entry("1-0", "CALLBACK_INPROGRESS"))
    assert await api.call("retry_failure_callback", "1-0") == ResumedRun("wfr_orig", MS)
    assert api.server.calls[-1] == ("GET", "/v2/workflows/dlq/1-0", [])

    api = make_api(httpx.ReadTimeout("lost"), wrong_state, entry("1-0", "CALLBACK_SUCCESS"))
    with pytest.raises(BadRequestError, match="not in CALLBACK_FAIL state"):
        await api.call("retry_failure_callback", "1-0")


async def test_callback_cancel_after_a_lost_answer_reads_the_entry(
    make_api: Callable[..., Api],
) -> None:
    wrong_state = answer(400, {"error": "failure callback is not in progress"})
    api = make_api(answer(503), wrong_state, entry("1-0", "CALLBACK_CANCELED"))
    assert await api.call("cancel_failure_callback", "1-0") is None

    api = make_api(wrong_state)
    with pytest.raises(BadRequestError):
        await api.call("cancel_failure_callback", "1-0")
    assert len(api.server.requests) == 1


async def test_stale_cursor_is_the_callers_business(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(400, {"error": "invalid cursor"}))
    with pytest.raises(BadRequestError, match="invalid cursor"):
        await api.call("resume_bulk", {"label": "x"}, cursor="old")
    assert len(api.server.requests) == 1

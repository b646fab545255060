"""Iterators follow the cursor lazily, stop on an empty OR a missing cursor, and resend the
same filters, count and overrides on every page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.client.conftest import Api, answer

MS = 1_752_829_295_505


def message(n: int) -> dict[str, Any]:
    return {"dlqId": f"{MS}-{n}"}


@pytest.mark.parametrize("end", [{"cursor": ""}, {}, {"cursor": None}])
async def test_iter_messages_follows_the_cursor_to_the_end(
    make_api: Callable[..., Api], end: dict[str, Any]
) -> None:
    api = make_api(
        answer(json={"messages": [message(0), message(1)], "cursor": "c1"}),
        answer(json={"messages": [message(2)], "cursor": "c2"}),
        answer(json={"messages": [], **end}),
    )
    messages = await api.collect("iter_messages", {"label": "x"}, count=2)
    assert [m.dlq_id for m in messages] == [f"{MS}-0", f"{MS}-1", f"{MS}-2"]
    assert api.server.calls == [
        ("GET", "/v2/workflows/dlq", [("label", "x"), ("count", "2")]),
        ("GET", "/v2/workflows/dlq", [("label", "x"), ("cursor", "c1"), ("count", "2")]),
        ("GET", "/v2/workflows/dlq", [("label", "x"), ("cursor", "c2"), ("count", "2")]),
    ]


async def test_iter_messages_is_lazy(make_api: Callable[..., Api]) -> None:
    api = make_api(
        answer(json={"messages": [message(0)], "cursor": "c1"}),
        answer(json={"messages": [message(1)]}),
    )
    iterator = api.client.iter_messages()
    first = next(iterator) if api.kind == "sync" else await anext(iterator)
    assert first.dlq_id == f"{MS}-0"
    assert len(api.server.requests) == 1


@pytest.mark.parametrize("action", ["resume", "restart"])
async def test_iter_bulk_yields_one_result_per_call(
    make_api: Callable[..., Api], action: str
) -> None:
    runs = [{"workflowRunId": "wfr_a", "workflowCreatedAt": MS}]
    api = make_api(
        answer(json={"workflowRuns": runs, "cursor": "next"}),
        answer(json={"workflowRuns": runs}),
    )
    results = await api.collect(
        f"iter_{action}_bulk", {"workflow_url": "https://a.example"}, {"delay": "5m"}, count=50
    )
    assert [r.cursor for r in results] == ["next", None]
    assert [len(r.runs) for r in results] == [1, 1]
    url = ("workflowUrl", "https://a.example")
    path = f"/v2/workflows/dlq/{action}"
    assert api.server.calls == [
        ("POST", path, [url, ("count", "50")]),
        ("POST", path, [url, ("cursor", "next"), ("count", "50")]),
    ]
    assert [r.headers["upstash-delay"] for r in api.server.requests] == ["5m", "5m"]


async def test_iter_bulk_over_everything_with_all(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"workflowRuns": [], "cursor": ""}))
    results = await api.collect("iter_resume_bulk", all=True)
    assert len(results) == 1
    assert api.server.calls == [("POST", "/v2/workflows/dlq/resume", [])]


async def test_iter_delete_bulk(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"deleted": 50, "cursor": "x"}), answer(json={"deleted": 3}))
    results = await api.collect("iter_delete_bulk", {"to_date": MS})
    assert [r.deleted for r in results] == [50, 3]
    assert api.server.calls[1] == (
        "DELETE",
        "/v2/workflows/dlq",
        [("toDate", str(MS)), ("cursor", "x")],
    )


async def test_iter_run_logs(make_api: Callable[..., Api]) -> None:
    api = make_api(
        answer(json={"runs": [{"workflowRunId": "wfr_a"}], "cursor": "p2"}),
        answer(json={"runs": [{"workflowRunId": "wfr_b"}], "cursor": ""}),
    )
    runs = await api.collect("iter_run_logs", state="RUN_FAILED")
    assert [r.workflow_run_id for r in runs] == ["wfr_a", "wfr_b"]
    assert api.server.calls[1] == (
        "GET",
        "/v2/workflows/logs",
        [("state", "RUN_FAILED"), ("cursor", "p2")],
    )


async def test_bulk_by_ids_is_one_call(make_api: Callable[..., Api]) -> None:
    api = make_api(answer(json={"workflowRuns": []}))
    results = await api.collect("iter_restart_bulk", {"dlq_ids": ["1-0"]})
    assert len(results) == 1
    assert len(api.server.requests) == 1

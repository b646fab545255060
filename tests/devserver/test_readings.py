"""The readings of what Upstash leaves unstated, each over real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime
from typing import Any

import httpx
import pytest

from airflow_provider_wfdlq.devserver import READINGS, DevServer, DevServerControlError
from airflow_provider_wfdlq.devserver.world import WorldConfig
from tests.devserver.conftest import DLQ, list_all

NEW_KNOBS: dict[str, Any] = {
    "keep_resumed": True,
    "resumed_lag": 2,
    "answer_order": "shuffled",
    "max_ids_per_call": 4,
    "list_order": "newest",
    "stale_cursor_every": 5,
    "frozen_cursor": True,
    "rate_limit_reset_unit": "ms",
    "created_at_format": "iso",
    "latency_ms": 1.5,
}


def ids_of(server: DevServer, n: int) -> list[str]:
    return [entry["dlqId"] for entry in server.control.entries()[:n]]


def listed_ids(api: httpx.Client) -> set[str]:
    return {message["dlqId"] for message in list_all(api)}


# ------------------------------------------------------------------ config plumbing


def test_defaults_keep_todays_behaviour() -> None:
    config = WorldConfig()
    assert (config.keep_resumed, config.resumed_lag, config.answer_order) == (False, 0, "sent")
    assert (config.max_ids_per_call, config.list_order, config.stale_cursor_every) == (
        None,
        "oldest",
        None,
    )
    assert (config.frozen_cursor, config.rate_limit_reset_unit) == (False, "s")
    assert (config.created_at_format, config.latency_ms) == ("ms", 0)


def test_config_round_trip_and_reset(server: DevServer) -> None:
    answer = server.control.set_config(**NEW_KNOBS)
    assert {name: answer[name] for name in NEW_KNOBS} == NEW_KNOBS
    assert {name: server.control.config()[name] for name in NEW_KNOBS} == NEW_KNOBS
    server.control.reset()
    assert server.control.config()["keep_resumed"] is False
    server.control.reset(config={"list_order": "newest"})
    assert server.control.config()["list_order"] == "newest"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("keep_resumed", "yes"),
        ("frozen_cursor", 1),
        ("resumed_lag", -1),
        ("resumed_lag", True),
        ("max_ids_per_call", 0),
        ("stale_cursor_every", 0),
        ("answer_order", "random"),
        ("list_order", "desc"),
        ("rate_limit_reset_unit", "us"),
        ("created_at_format", "rfc"),
        ("latency_ms", -1),
    ],
)
def test_bad_values_name_the_key(server: DevServer, key: str, value: Any) -> None:
    with pytest.raises(ValueError, match=key):
        WorldConfig().updated({key: value})
    with pytest.raises(DevServerControlError, match=key):
        server.control.set_config(**{key: value})
    with pytest.raises(ValueError, match=key):
        DevServer(entries=0, **{key: value})


def test_readings_are_valid_configs() -> None:
    assert set(READINGS) >= {
        "default",
        "keep_resumed",
        "lag",
        "reversed",
        "shuffled",
        "capped",
        "newest_first",
        "stale_cursors",
        "frozen_cursor",
        "reset_ms",
        "iso_created_at",
        "hostile",
    }
    assert READINGS["hostile"] == {
        "keep_resumed": True,
        "answer_order": "shuffled",
        "max_ids_per_call": 7,
        "list_order": "newest",
    }
    for config in READINGS.values():
        WorldConfig().updated(config)


def test_devserver_takes_every_knob_as_a_keyword() -> None:
    with DevServer(entries=3, **NEW_KNOBS) as server:
        config = server.control.config()
        assert {name: config[name] for name in NEW_KNOBS} == NEW_KNOBS


# ------------------------------------------------------------------ keep_resumed / lag


@pytest.mark.parametrize("path", ["resume", "restart"])
def test_keep_resumed_entries_stay_and_act_again(
    server: DevServer, api: httpx.Client, path: str
) -> None:
    server.control.set_config(keep_resumed=True)
    dlq_id = ids_of(server, 1)[0]
    first = api.post(f"{DLQ}/{path}/{dlq_id}").json()
    assert api.get(f"{DLQ}/{dlq_id}").status_code == 200
    assert dlq_id in listed_ids(api)
    second = api.post(f"{DLQ}/{path}", params={"dlqIds": dlq_id}).json()["workflowRuns"][0]
    assert second["workflowRunId"] != first["workflowRunId"]
    actions = server.control.actions()
    assert [(a["action"], a["dlqId"]) for a in actions] == [(path, dlq_id)] * 2
    assert [a["newWorkflowRunId"] for a in actions] == [
        first["workflowRunId"],
        second["workflowRunId"],
    ]
    runs = {run["workflowRunId"] for run in server.control.runs()}
    assert {first["workflowRunId"], second["workflowRunId"]} <= runs


def test_keep_resumed_bulk_by_filter_acts_again_when_re_sent(
    server: DevServer, api: httpx.Client
) -> None:
    server.control.set_config(keep_resumed=True)
    url = server.control.entries()[0]["workflowUrl"]
    params = {"workflowUrl": url, "count": 3}
    assert len(api.post(f"{DLQ}/resume", params=params).json()["workflowRuns"]) == 3
    assert len(api.post(f"{DLQ}/resume", params=params).json()["workflowRuns"]) == 3
    counts = Counter(a["dlqId"] for a in server.control.actions())
    assert sorted(counts.values()) == [2, 2, 2]


def test_resumed_lag_shows_for_k_more_requests(server: DevServer, api: httpx.Client) -> None:
    server.control.set_config(resumed_lag=2)
    dlq_id = ids_of(server, 1)[0]
    assert api.post(f"{DLQ}/resume/{dlq_id}").status_code == 200  # request N
    assert api.get(f"{DLQ}/{dlq_id}").status_code == 200  # N + 1
    again = api.post(f"{DLQ}/restart", params={"dlqIds": dlq_id})  # N + 2: acts again
    assert again.status_code == 200
    assert api.get(f"{DLQ}/{dlq_id}").status_code == 200  # window starts anew: 1 of 2
    assert api.get(f"{DLQ}/{dlq_id}").status_code == 200  # 2 of 2
    assert api.get(f"{DLQ}/{dlq_id}").status_code == 404
    assert [a["action"] for a in server.control.actions()] == ["resume", "restart"]


def test_resumed_lag_listing_and_delete(server: DevServer, api: httpx.Client) -> None:
    server.control.set_config(resumed_lag=1)
    dlq_id = ids_of(server, 1)[0]
    api.post(f"{DLQ}/resume/{dlq_id}")
    assert dlq_id in {m["dlqId"] for m in api.get(DLQ).json()["messages"]}
    assert dlq_id not in {m["dlqId"] for m in api.get(DLQ).json()["messages"]}
    other = ids_of(server, 1)[0]
    api.post(f"{DLQ}/resume/{other}")
    assert api.delete(f"{DLQ}/{other}").status_code == 200  # deleting ends the lag at once
    assert api.get(f"{DLQ}/{other}").status_code == 404


# ------------------------------------------------------------------ answer order, cap


@pytest.mark.parametrize("order", ["sent", "reversed", "shuffled"])
def test_answer_order(server: DevServer, api: httpx.Client, order: str) -> None:
    server.control.set_config(answer_order=order)
    dlq_ids = ids_of(server, 12)
    runs = api.post(f"{DLQ}/resume", params={"dlqIds": dlq_ids}).json()["workflowRuns"]
    acted = [a["newWorkflowRunId"] for a in server.control.actions()]
    assert [a["dlqId"] for a in server.control.actions()] == dlq_ids  # acted in sent order
    answered = [run["workflowRunId"] for run in runs]
    assert sorted(answered) == sorted(acted)
    if order == "sent":
        assert answered == acted
    elif order == "reversed":
        assert answered == acted[::-1]
    else:
        assert answered not in (acted, acted[::-1])


def test_shuffled_is_deterministic_per_seed(server: DevServer, api: httpx.Client) -> None:
    def shuffled_positions() -> list[int]:
        server.control.reset(config={"answer_order": "shuffled"})
        dlq_ids = ids_of(server, 10)
        runs = api.post(f"{DLQ}/restart", params={"dlqIds": dlq_ids}).json()["workflowRuns"]
        acted = [a["newWorkflowRunId"] for a in server.control.actions()]
        return [acted.index(run["workflowRunId"]) for run in runs]

    assert shuffled_positions() == shuffled_positions()


@pytest.mark.parametrize("path", ["resume", "restart"])
def test_max_ids_per_call_acts_on_the_first_c(
    server: DevServer, api: httpx.Client, path: str
) -> None:
    server.control.set_config(max_ids_per_call=3)
    dlq_ids = ids_of(server, 8)
    response = api.post(f"{DLQ}/{path}", params={"dlqIds": dlq_ids})
    assert response.status_code == 200
    body = response.json()
    assert len(body["workflowRuns"]) == 3
    assert body["cursor"]
    assert [a["dlqId"] for a in server.control.actions()] == dlq_ids[:3]
    for untouched in dlq_ids[3:]:
        assert api.get(f"{DLQ}/{untouched}").status_code == 200
    # The cursor sent back with the same ids goes on after the first three.
    pages = [body]
    while pages[-1].get("cursor"):
        params = {"dlqIds": dlq_ids, "cursor": pages[-1]["cursor"]}
        pages.append(api.post(f"{DLQ}/{path}", params=params).json())
    assert [len(page["workflowRuns"]) for page in pages] == [3, 3, 2]
    assert [a["dlqId"] for a in server.control.actions()] == dlq_ids
    pairs = {(a["dlqId"], a["newWorkflowRunId"]) for a in server.control.actions()}
    assert len(pairs) == 8


def test_max_ids_per_call_re_sending_the_rest(server: DevServer, api: httpx.Client) -> None:
    server.control.set_config(max_ids_per_call=2, answer_order="reversed")
    dlq_ids = ids_of(server, 3)
    first = api.post(f"{DLQ}/resume", params={"dlqIds": dlq_ids}).json()
    acted = [a["newWorkflowRunId"] for a in server.control.actions()]
    assert [run["workflowRunId"] for run in first["workflowRuns"]] == acted[::-1]
    rest = api.post(f"{DLQ}/resume", params={"dlqIds": dlq_ids[2:]}).json()
    assert len(rest["workflowRuns"]) == 1
    assert "cursor" not in rest
    # Re-sending ids already resumed (gone from the DLQ) without the cursor: 404, nothing done.
    assert api.post(f"{DLQ}/resume", params={"dlqIds": dlq_ids}).status_code == 404
    assert len(server.control.actions()) == 3


def test_max_ids_per_call_leaves_filter_walks_and_deletes_alone(
    server: DevServer, api: httpx.Client
) -> None:
    server.control.set_config(max_ids_per_call=2)
    dlq_ids = ids_of(server, 5)
    assert api.delete(DLQ, params={"dlqIds": dlq_ids}).json() == {"deleted": 5}
    url = server.control.entries()[0]["workflowUrl"]
    body = api.post(f"{DLQ}/resume", params={"workflowUrl": url, "count": 4}).json()
    assert len(body["workflowRuns"]) == 4


# ------------------------------------------------------------------ listing


def test_list_order_newest_across_pages(server: DevServer, api: httpx.Client) -> None:
    oldest = [m["dlqId"] for m in list_all(api, {"count": 40})]
    server.control.set_config(list_order="newest")
    newest = [m["dlqId"] for m in list_all(api, {"count": 40})]
    assert newest == oldest[::-1]
    assert len(newest) == 150
    js = api.get("/v2/dlq", params={"source": "workflow", "count": 5}).json()
    assert [m["dlqId"] for m in js["messages"]] == newest[:5]


def test_stale_cursor_every_k(server: DevServer, api: httpx.Client) -> None:
    server.control.set_config(stale_cursor_every=2)
    cursor = api.get(DLQ, params={"count": 10}).json()["cursor"]  # no cursor: not counted
    first = api.get(DLQ, params={"count": 10, "cursor": cursor})
    assert first.status_code == 200
    second = api.get(DLQ, params={"count": 10, "cursor": first.json()["cursor"]})
    assert second.status_code == 400
    assert second.json() == {"error": "cursor is stale"}
    third = api.get(DLQ, params={"count": 10, "cursor": first.json()["cursor"]})
    assert third.status_code == 200


def test_frozen_cursor_never_advances(server: DevServer, api: httpx.Client) -> None:
    server.control.set_config(frozen_cursor=True)
    first = api.get(DLQ, params={"count": 10}).json()
    cursor = first["cursor"]
    for _ in range(3):
        page = api.get(DLQ, params={"count": 10, "cursor": cursor}).json()
        assert page["cursor"] == cursor
        assert [m["dlqId"] for m in page["messages"]] == [m["dlqId"] for m in first["messages"]]


def test_frozen_cursor_mid_walk_repeats_that_page(server: DevServer, api: httpx.Client) -> None:
    page1 = api.get(DLQ, params={"count": 10}).json()
    server.control.set_config(frozen_cursor=True, list_order="newest")
    page2 = api.get(DLQ, params={"count": 10, "cursor": page1["cursor"]}).json()
    assert page2["cursor"] != page1["cursor"]
    page2_again = api.get(DLQ, params={"count": 10, "cursor": page2["cursor"]}).json()
    assert page2_again == page2
    assert page2["messages"][0]["createdAt"] >= page1["messages"][-1]["createdAt"]


# ------------------------------------------------------------------ headers and answers


@pytest.mark.parametrize("unit", ["s", "ms"])
def test_rate_limit_reset_unit(server: DevServer, api: httpx.Client, unit: str) -> None:
    server.control.set_config(rate_limit_reset_unit=unit)
    server.control.add_fault("429", reset_seconds=2)
    before = time.time()
    response = api.get(DLQ)
    assert response.status_code == 429
    reset = int(response.headers["Burst-RateLimit-Reset"])
    scale = 1000 if unit == "ms" else 1
    assert (before + 1) * scale <= reset <= (time.time() + 3) * scale


def test_rate_limit_rps_reset_unit_ms(server: DevServer, api: httpx.Client) -> None:
    server.control.set_config(rate_limit_rps=1, rate_limit_reset_unit="ms")
    statuses = [api.get(DLQ, params={"count": 1}) for _ in range(3)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited
    assert int(limited[0].headers["Burst-RateLimit-Reset"]) > 10**12


def test_created_at_format_iso(server: DevServer, api: httpx.Client) -> None:
    server.control.set_config(created_at_format="iso")
    dlq_ids = ids_of(server, 3)
    single = api.post(f"{DLQ}/resume/{dlq_ids[0]}").json()
    bulk = api.post(f"{DLQ}/restart", params={"dlqIds": dlq_ids[1:]}).json()["workflowRuns"]
    actions = server.control.actions()
    for answer, action in zip([single, *bulk], actions, strict=True):
        text = answer["workflowCreatedAt"]
        assert isinstance(text, str)
        assert text.endswith("Z")
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        assert round(parsed.timestamp() * 1000) == action["newWorkflowCreatedAt"]


def test_created_at_format_ms_is_an_int(server: DevServer, api: httpx.Client) -> None:
    answer = api.post(f"{DLQ}/resume/{ids_of(server, 1)[0]}").json()
    assert isinstance(answer["workflowCreatedAt"], int)


def test_latency_ms_overlaps_concurrent_requests(server: DevServer) -> None:
    server.control.set_config(latency_ms=300)
    headers = {"Authorization": f"Bearer {server.token}"}

    async def many() -> float:
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
            start = time.perf_counter()
            responses = await asyncio.gather(*(client.get(DLQ) for _ in range(5)))
            assert all(response.status_code == 200 for response in responses)
            return time.perf_counter() - start

    elapsed = asyncio.run(many())
    assert 0.3 <= elapsed < 1.2  # five requests, one delay: they overlapped


# ------------------------------------------------------------------ the hostile mix


def test_hostile_reading_action_log_tells_the_truth(server: DevServer, api: httpx.Client) -> None:
    server.control.set_config(**READINGS["hostile"])
    dlq_ids = [m["dlqId"] for m in api.get(DLQ, params={"count": 10}).json()["messages"]]
    newest_first = sorted(dlq_ids, key=lambda i: tuple(int(p) for p in i.split("-")))
    assert dlq_ids == newest_first[::-1]
    body = api.post(f"{DLQ}/resume", params={"dlqIds": dlq_ids}).json()
    assert len(body["workflowRuns"]) == 7
    assert body["cursor"]
    api.post(f"{DLQ}/resume", params={"dlqIds": dlq_ids[:2]})  # re-sent: duplicates
    actions = server.control.actions()
    counts = Counter(a["dlqId"] for a in actions)
    assert counts[dlq_ids[0]] == counts[dlq_ids[1]] == 2
    runs = {run["workflowRunId"]: run for run in server.control.runs()}
    for action in actions:
        assert runs[action["newWorkflowRunId"]]["resumedFromDlqId"] == action["dlqId"]

"""Injected faults over real HTTP: statuses, 429 headers, latency, a dropped connection
after the work was done, a requests-per-second limit and stale cursors."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from airflow_provider_wfdlq.devserver import DevServer
from tests.devserver.conftest import DLQ


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_scripted_server_errors_hit_exactly_the_next_n_matching_requests(
    server: DevServer, api: httpx.Client, status: int
) -> None:
    server.control.add_fault(str(status), method="POST", path_prefix=f"{DLQ}/resume", times=2)
    assert api.get(DLQ, params={"count": 1}).status_code == 200  # other method: untouched
    first = api.post(f"{DLQ}/resume", params={"count": 1})
    second = api.post(f"{DLQ}/resume", params={"count": 1})
    third = api.post(f"{DLQ}/resume", params={"count": 1})
    assert [first.status_code, second.status_code, third.status_code] == [status, status, 200]
    assert "error" in first.json()
    assert len(server.control.actions()) == 1  # the faulted calls did nothing
    assert server.control.faults() == []
    logged = [r for r in server.control.requests() if r["method"] == "POST"]
    assert [r.get("fault") for r in logged] == [str(status), str(status), None]


def test_429_carries_burst_rate_limit_headers(server: DevServer, api: httpx.Client) -> None:
    server.control.add_fault("429", reset_seconds=2)
    response = api.get(DLQ)
    assert response.status_code == 429
    assert response.headers["Burst-RateLimit-Limit"] == "100"
    assert response.headers["Burst-RateLimit-Remaining"] == "0"
    reset = int(response.headers["Burst-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + 3
    assert api.get(DLQ).status_code == 200


def test_ratio_faults_follow_the_seed(server: DevServer, api: httpx.Client) -> None:
    def pattern() -> list[int]:
        server.control.add_fault("503", ratio=0.3)
        return [api.get(DLQ, params={"count": 1}).status_code for _ in range(30)]

    first = pattern()
    assert set(first) == {200, 503}
    server.control.reset()
    assert pattern() == first


def test_latency_is_added(server: DevServer, api: httpx.Client) -> None:
    server.control.add_fault("latency", latency_ms=150, times=1)
    started = time.perf_counter()
    assert api.get(DLQ, params={"count": 1}).status_code == 200
    assert time.perf_counter() - started >= 0.15
    started = time.perf_counter()
    api.get(DLQ, params={"count": 1})
    assert time.perf_counter() - started < 0.15


def test_latency_longer_than_the_client_timeout_is_a_timeout(
    server: DevServer, api: httpx.Client
) -> None:
    server.control.add_fault("latency", latency_ms=300, times=1)
    with pytest.raises(httpx.ReadTimeout):
        api.get(DLQ, timeout=0.05)


def test_dropped_connection_after_the_work_is_done(server: DevServer, api: httpx.Client) -> None:
    entry = server.control.entries()[0]
    server.control.add_fault("drop", method="POST", path_prefix=f"{DLQ}/resume/")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        api.post(f"{DLQ}/resume/{entry['dlqId']}")
    (action,) = server.control.actions()
    assert action["dlqId"] == entry["dlqId"]
    assert action["action"] == "resume"
    retry = api.post(f"{DLQ}/resume/{entry['dlqId']}")
    assert retry.status_code == 404  # the retry finds the entry already resumed
    assert server.control.requests()[-2]["dropped"] is True


def test_dropped_bulk_page_then_walk_again_resumes_nothing_twice(
    server: DevServer, api: httpx.Client
) -> None:
    server.control.add_fault("drop", method="POST", path_prefix=f"{DLQ}/resume")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        api.post(f"{DLQ}/resume")
    assert len(server.control.actions()) == 50
    cursor = None
    while True:
        page = api.post(f"{DLQ}/resume", params={"cursor": cursor} if cursor else None).json()
        cursor = page["cursor"]
        if not cursor:
            break
    dlq_ids = [a["dlqId"] for a in server.control.actions()]
    assert len(dlq_ids) == len(set(dlq_ids)) == 150


def test_dropped_empty_answer_is_still_lost(server: DevServer, api: httpx.Client) -> None:
    entry = server.control.entries()[0]
    server.control.add_fault("drop", method="DELETE")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        api.delete(f"{DLQ}/{entry['dlqId']}")
    assert api.get(f"{DLQ}/{entry['dlqId']}").status_code == 404


def test_requests_per_second_limit(server: DevServer, api: httpx.Client) -> None:
    server.control.set_config(rate_limit_rps=5)
    statuses = [api.get(DLQ, params={"count": 1}).status_code for _ in range(8)]
    assert statuses[:5] == [200] * 5
    assert 429 in statuses[5:]
    limited = api.get(DLQ, params={"count": 1})
    if limited.status_code == 429:
        assert limited.headers["Burst-RateLimit-Limit"] == "5"
        assert int(limited.headers["Burst-RateLimit-Reset"]) >= int(time.time())
    time.sleep(1.05)
    assert api.get(DLQ, params={"count": 1}).status_code == 200


def test_scripted_stale_cursor_only_hits_requests_with_a_cursor(
    server: DevServer, api: httpx.Client
) -> None:
    server.control.add_fault("stale_cursor", times=1)
    page = api.post(f"{DLQ}/resume").json()
    response = api.post(f"{DLQ}/resume", params={"cursor": page["cursor"]})
    assert response.status_code == 400
    assert response.json() == {"error": "cursor is stale"}
    assert api.post(f"{DLQ}/resume", params={"cursor": page["cursor"]}).status_code == 200


def test_faults_never_touch_the_control_api(server: DevServer) -> None:
    server.control.add_fault("503", ratio=1.0)
    assert server.control.health()["ok"] is True
    assert len(server.control.faults()) == 1
    server.control.clear_faults()
    assert server.control.faults() == []


@pytest.mark.parametrize(
    "body",
    [
        {"fault": "418"},
        {"fault": "503", "times": 1, "ratio": 0.5},
        {"fault": "latency"},
        {"fault": "503", "ratio": 2},
        {"fault": "503", "colour": "red"},
    ],
)
def test_bad_fault_definitions_are_rejected(server: DevServer, body: dict[str, Any]) -> None:
    response = httpx.post(f"{server.url}/__dev/faults", json=body)
    assert response.status_code == 400
    assert "error" in response.json()

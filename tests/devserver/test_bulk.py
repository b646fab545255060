"""Bulk resume / restart / delete: page caps, cursors to the end, dlqIds mode."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from airflow_provider_wfdlq.devserver import DevServer
from tests.devserver.conftest import DLQ, walk_bulk


@pytest.mark.parametrize("page_cap", [1, 7, 50])
def test_full_bulk_resume_resumes_every_entry_exactly_once(
    server: DevServer, api: httpx.Client, page_cap: int
) -> None:
    server.control.set_config(page_cap=page_cap)
    before = {e["dlqId"] for e in server.control.entries()}
    pages = walk_bulk(api, "POST", f"{DLQ}/resume")
    assert all(len(page["workflowRuns"]) <= page_cap for page in pages)
    assert pages[-1]["cursor"] == ""
    assert all(page["cursor"] for page in pages[:-1])
    assert len(pages) == -(-len(before) // page_cap)
    runs = [run for page in pages for run in page["workflowRuns"]]
    assert len(runs) == len(before) == len({run["workflowRunId"] for run in runs})
    actions = [a for a in server.control.actions() if a["action"] == "resume"]
    per_entry = Counter(a["dlqId"] for a in actions)
    assert set(per_entry) == before
    assert set(per_entry.values()) == {1}
    assert [a["newWorkflowRunId"] for a in actions] == [run["workflowRunId"] for run in runs]
    assert server.control.entries() == []


def test_count_limits_a_bulk_call_below_the_cap(server: DevServer, api: httpx.Client) -> None:
    page = api.post(f"{DLQ}/resume", params={"count": 3}).json()
    assert len(page["workflowRuns"]) == 3
    assert page["cursor"]
    page = api.post(f"{DLQ}/resume", params={"count": 500}).json()
    assert len(page["workflowRuns"]) == 50


def test_bulk_without_filters_acts_on_everything_and_with_filter_only_matches(
    server: DevServer, api: httpx.Client
) -> None:
    entries = server.control.entries()
    url = entries[0]["workflowUrl"]
    matching = {e["dlqId"] for e in entries if e["workflowUrl"] == url}
    pages = walk_bulk(api, "POST", f"{DLQ}/restart", {"workflowUrl": url})
    assert sum(len(p["workflowRuns"]) for p in pages) == len(matching)
    assert {a["dlqId"] for a in server.control.actions()} == matching
    assert all(a["action"] == "restart" for a in server.control.actions())
    deleted = walk_bulk(api, "DELETE", DLQ)
    assert sum(page["deleted"] for page in deleted) == len(entries) - len(matching)
    assert server.control.entries() == []


def test_dlq_ids_override_filters_and_answer_without_cursor(
    server: DevServer, api: httpx.Client
) -> None:
    entries = server.control.entries()
    chosen = [entries[5]["dlqId"], entries[9]["dlqId"], entries[77]["dlqId"]]
    response = api.post(
        f"{DLQ}/resume",
        params=[("dlqIds", chosen[0]), ("dlqIds", f"{chosen[1]},{chosen[2]}"), ("label", "zz")],
    )
    assert response.status_code == 200
    body = response.json()
    assert "cursor" not in body
    assert len(body["workflowRuns"]) == 3
    assert [a["dlqId"] for a in server.control.actions()] == chosen
    assert api.get(f"{DLQ}/{chosen[0]}").status_code == 404


@pytest.mark.parametrize(
    ("method", "path"), [("POST", f"{DLQ}/resume"), ("POST", f"{DLQ}/restart"), ("DELETE", DLQ)]
)
def test_any_unknown_dlq_id_fails_the_whole_call(
    server: DevServer, api: httpx.Client, method: str, path: str
) -> None:
    known = server.control.entries()[0]["dlqId"]
    response = api.request(method, path, params=[("dlqIds", known), ("dlqIds", "1-0")])
    assert response.status_code == 404
    assert response.json() == {"error": "Some DLQ messages were not found"}
    assert server.control.actions() == []
    assert api.get(f"{DLQ}/{known}").status_code == 200


def test_delete_bulk_by_ids_answers_deleted_without_cursor(
    server: DevServer, api: httpx.Client
) -> None:
    chosen = [e["dlqId"] for e in server.control.entries()[:4]]
    response = api.delete(DLQ, params={"dlqIds": chosen})
    assert response.json() == {"deleted": 4}
    assert [a["action"] for a in server.control.actions()] == ["delete"] * 4


def test_bulk_with_nothing_matching_ends_at_once(api: httpx.Client) -> None:
    page = api.post(f"{DLQ}/resume", params={"workflowUrl": "https://nowhere.example"}).json()
    assert page == {"workflowRuns": [], "cursor": ""}


def test_bulk_rejects_bad_queries(server: DevServer, api: httpx.Client) -> None:
    for params in [{"nope": "1"}, {"count": "0"}, {"fromDate": "x"}, {"cursor": "!!"}]:
        response = api.post(f"{DLQ}/resume", params=params)
        assert response.status_code == 400, params
    assert server.control.actions() == []


def test_cursor_from_before_a_reset_is_stale(server: DevServer, api: httpx.Client) -> None:
    cursor = api.post(f"{DLQ}/resume", params={"count": 1}).json()["cursor"]
    server.control.reset()
    response = api.post(f"{DLQ}/resume", params={"cursor": cursor})
    assert response.status_code == 400
    assert response.json() == {"error": "cursor is stale"}


def test_cursor_ttl_rejects_old_cursors_and_a_fresh_walk_finishes(
    server: DevServer, api: httpx.Client
) -> None:
    server.control.set_config(cursor_ttl_seconds=60)
    cursor = api.post(f"{DLQ}/resume", params={"count": 10}).json()["cursor"]
    server.control.advance_time(61)
    assert api.post(f"{DLQ}/resume", params={"cursor": cursor}).status_code == 400
    pages = walk_bulk(api, "POST", f"{DLQ}/resume", {"fromDate": 0})
    resumed = Counter(a["dlqId"] for a in server.control.actions() if a["action"] == "resume")
    assert set(resumed.values()) == {1}
    assert len(resumed) == 10 + sum(len(p["workflowRuns"]) for p in pages)


def test_cursor_of_a_list_is_not_a_logs_cursor(api: httpx.Client) -> None:
    cursor = api.get(DLQ, params={"count": 1}).json()["cursor"]
    response = api.get("/v2/workflows/logs", params={"cursor": cursor})
    assert response.status_code == 400

"""Every DLQ filter, multi-values (repeated or comma-joined), AND across filters, and
inclusive date bounds; the same filters drive list, bulk resume/restart and bulk delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from airflow_provider_wfdlq.devserver import DevServer
from tests.devserver.conftest import list_all

Entry = dict[str, Any]


def ids(entries: list[Entry]) -> list[str]:
    return [entry["dlqId"] for entry in entries]


def callback_state(entry: Entry) -> str | None:
    return (entry.get("failureCallbackInfo") or {}).get("state")


@pytest.mark.parametrize(
    ("param", "pick", "predicate"),
    [
        ("workflowUrl", lambda e: e["workflowUrl"], lambda e, v: e["workflowUrl"] == v),
        ("workflowRunId", lambda e: e["workflowRunId"], lambda e, v: e["workflowRunId"] == v),
        (
            "workflowCreatedAt",
            lambda e: str(e["workflowCreatedAt"]),
            lambda e, v: str(e["workflowCreatedAt"]) == v,
        ),
        ("label", lambda e: e.get("label"), lambda e, v: v in (e.get("labels") or [])),
        ("failureFunctionState", callback_state, lambda e, v: callback_state(e) == v),
        ("callerIp", lambda e: e["callerIP"], lambda e, v: e["callerIP"] == v),
        (
            "flowControlKey",
            lambda e: e.get("flowControlKey"),
            lambda e, v: e.get("flowControlKey") == v,
        ),
    ],
)
def test_each_single_value_filter(
    server: DevServer,
    api: httpx.Client,
    param: str,
    pick: Callable[[Entry], str | None],
    predicate: Callable[[Entry, str], bool],
) -> None:
    entries = server.control.entries()
    value = next(v for e in entries if (v := pick(e)))
    expected = [e for e in entries if predicate(e, value)]
    assert 0 < len(expected) < len(entries) or param in ("workflowRunId", "workflowCreatedAt")
    assert ids(list_all(api, {param: value})) == ids(expected)


@pytest.mark.parametrize("param", ["workflowUrl", "label", "failureFunctionState", "callerIp"])
def test_repeated_and_comma_joined_values_are_ored(
    server: DevServer, api: httpx.Client, param: str
) -> None:
    entries = server.control.entries()
    fields: dict[str, Callable[[Entry], list[str]]] = {
        "workflowUrl": lambda e: [e["workflowUrl"]],
        "label": lambda e: list(e.get("labels") or []),
        "failureFunctionState": lambda e: [s] if (s := callback_state(e)) else [],
        "callerIp": lambda e: [e["callerIP"]],
    }
    field = fields[param]
    values = sorted({v for e in entries for v in field(e)})[:2]
    expected = ids([e for e in entries if set(field(e)) & set(values)])
    repeated = list_all(api, {param: values})
    joined = list_all(api, {param: ",".join(values)})
    assert ids(repeated) == ids(joined) == expected
    assert len(expected) > len(ids(list_all(api, {param: values[0]})))


def test_different_filters_are_anded(server: DevServer, api: httpx.Client) -> None:
    entries = server.control.entries()
    url = entries[0]["workflowUrl"]
    expected = [
        e
        for e in entries
        if e["workflowUrl"] == url and callback_state(e) in ("CALLBACK_FAIL", "CALLBACK_SUCCESS")
    ]
    got = list_all(
        api, {"workflowUrl": url, "failureFunctionState": "CALLBACK_FAIL,CALLBACK_SUCCESS"}
    )
    assert ids(got) == ids(expected)
    assert 0 < len(expected) < len([e for e in entries if e["workflowUrl"] == url])


def test_date_bounds_are_inclusive_milliseconds_on_created_at(
    server: DevServer, api: httpx.Client
) -> None:
    entries = server.control.entries()
    low, high = entries[10]["createdAt"], entries[20]["createdAt"]
    got = list_all(api, {"fromDate": low, "toDate": high})
    assert ids(got) == ids([e for e in entries if low <= e["createdAt"] <= high])
    assert got[0]["createdAt"] == low
    assert got[-1]["createdAt"] == high
    assert ids(list_all(api, {"fromDate": low + 1, "toDate": high - 1})) == ids(got[1:-1])
    assert list_all(api, {"fromDate": high, "toDate": low}) == []


def test_single_value_filters_reject_repetition(api: httpx.Client) -> None:
    response = api.get("/v2/workflows/dlq", params={"workflowRunId": ["a", "b"]})
    assert response.status_code == 400
    assert "more than once" in response.json()["error"]


def test_filters_select_what_bulk_delete_acts_on(server: DevServer, api: httpx.Client) -> None:
    entries = server.control.entries()
    ip = entries[0]["callerIP"]
    expected = [e for e in entries if e["callerIP"] == ip]
    deleted = 0
    cursor = ""
    while True:
        params: dict[str, Any] = {"callerIp": ip}
        if cursor:
            params["cursor"] = cursor
        page = api.delete("/v2/workflows/dlq", params=params).json()
        deleted += page["deleted"]
        cursor = page["cursor"]
        if not cursor:
            break
    assert deleted == len(expected)
    remaining = server.control.entries()
    assert len(remaining) == len(entries) - len(expected)
    assert all(e["callerIP"] != ip for e in remaining)


def test_flat_failure_function_state_is_filtered_too(server: DevServer, api: httpx.Client) -> None:
    server.control.reset(entries=0)
    flat = server.control.seed_entries(
        count=2, failureCallbackInfo=None, failureFunctionState="CALLBACK_FAIL"
    )
    server.control.seed_entries(count=1, failureCallbackInfo=None, failureCallback=None)
    got = list_all(api, {"failureFunctionState": "CALLBACK_FAIL"})
    assert ids(got) == ids(flat)
    assert all("failureCallbackInfo" not in e for e in got)

"""Shared helpers: an authenticated httpx client on the session dev server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_wfdlq.devserver import DevServer

DLQ = "/v2/workflows/dlq"


@pytest.fixture
def server(wfdlq_devserver: DevServer) -> DevServer:
    return wfdlq_devserver


@pytest.fixture
def api(wfdlq_devserver: DevServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {wfdlq_devserver.token}"}
    with httpx.Client(base_url=wfdlq_devserver.url, headers=headers, timeout=10) as client:
        yield client


def walk_bulk(
    api: httpx.Client, method: str, path: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Follow a bulk call's cursor to the end; returns every page's JSON."""
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = dict(params or {})
        if cursor:
            query["cursor"] = cursor
        response = api.request(method, path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        cursor = page.get("cursor")
        if not cursor:
            return pages


def list_all(api: httpx.Client, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every listed message, following the list cursor."""
    messages: list[dict[str, Any]] = []
    for page in walk_bulk(api, "GET", DLQ, params):
        messages.extend(page["messages"])
    return messages

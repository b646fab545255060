"""The dev server's housekeeping answers: what Upstash documents (a callback action from
the wrong state is 400, a missing single delete is 404) and the reading it leaves open (a
bulk delete naming a missing id), plus the in-process action hook tests use."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from airflow_provider_wfdlq.devserver import READINGS, DevServer
from airflow_provider_wfdlq.devserver.world import WorldConfig
from tests.devserver.conftest import DLQ


@pytest.mark.parametrize(("reading", "deleted"), [("refuse", None), ("skip", 2)])
def test_a_bulk_delete_naming_a_missing_id_in_each_reading(
    server: DevServer, api: httpx.Client, reading: str, deleted: int | None
) -> None:
    server.control.set_config(bulk_delete_missing=reading)
    known = [e["dlqId"] for e in server.control.entries()[:2]]
    response = api.delete(
        DLQ, params=[("dlqIds", known[0]), ("dlqIds", "1-0"), ("dlqIds", known[1])]
    )
    if deleted is None:  # as bulk resume: all of them or nothing
        assert response.status_code == 404
        assert server.control.actions() == []
    else:
        assert response.json() == {"deleted": deleted}
        assert sorted(a["dlqId"] for a in server.control.actions()) == sorted(known)


def test_the_reading_is_a_knob_everywhere(server: DevServer) -> None:
    assert WorldConfig().bulk_delete_missing == "refuse"
    assert READINGS["delete_skips_missing"] == {"bulk_delete_missing": "skip"}
    with pytest.raises(ValueError, match="bulk_delete_missing"):
        WorldConfig().updated({"bulk_delete_missing": "maybe"})
    with pytest.raises(ValueError, match="bulk_delete_missing"):
        DevServer(entries=0, bulk_delete_missing="maybe")


def test_callback_actions_from_the_wrong_state_are_400_and_change_nothing(
    server: DevServer, api: httpx.Client
) -> None:
    entry = server.control.entries()[0]
    server.control.set_callback_state(entry["dlqId"], "CALLBACK_SUCCESS")
    assert api.post(f"{DLQ}/callback/{entry['dlqId']}").status_code == 400
    assert api.delete(f"{DLQ}/callback/{entry['dlqId']}").status_code == 400
    assert server.control.actions() == []
    assert api.delete(f"{DLQ}/{entry['dlqId']}").status_code == 200
    assert api.delete(f"{DLQ}/{entry['dlqId']}").status_code == 404  # a missing id


def test_the_action_hook_sees_each_action_before_the_answer_and_reset_clears_it(
    server: DevServer, api: httpx.Client
) -> None:
    seen: list[dict[str, Any]] = []
    server.world.on_action = seen.append
    entry = server.control.entries()[0]
    api.delete(f"{DLQ}/{entry['dlqId']}")
    assert [(a["action"], a["dlqId"], a["via"]) for a in seen] == [
        ("delete", entry["dlqId"], "single")
    ]
    server.control.reset()
    assert server.world.on_action is None

"""Housekeeping actions on the engine (delete, retry and cancel failure callbacks), asserted
against the dev server's action log: never twice, counts add up, and every deleted entry
is in the report, in full, at the moment the server receives its delete."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_wfdlq.client import (
    DLQFilters,
    Overrides,
    ValidationError,
    WorkflowDLQClient,
)
from airflow_provider_wfdlq.devserver import READINGS
from airflow_provider_wfdlq.recovery import JsonLinesSink, MemoryStore, Pacing, Redrive
from airflow_provider_wfdlq.recovery.redrive import RedrivePlan
from airflow_provider_wfdlq.recovery.safety import SafetyPolicy
from airflow_provider_wfdlq.recovery.selection import ErrorSelection
from tests.recovery.invariants import assert_counts_add_up
from tests.recovery.test_invariants import Died, DyingClient

EVERYTHING = DLQFilters.build(from_date="2020-01-01T00:00:00Z")
ENTRIES = 120
VERBS = {
    "delete": "delete",
    "retry_failure_callback": "callback_retry",
    "cancel_failure_callback": "callback_cancel",
}


def plan(action: str, **kwargs: Any) -> RedrivePlan:
    kwargs.setdefault("filters", EVERYTHING)
    kwargs.setdefault("overrides", Overrides())
    return RedrivePlan(action=action, **kwargs)  # type: ignore[arg-type]


def world(server: Any, reading: str = "default") -> dict[str, dict[str, Any]]:
    server.control.reset(entries=ENTRIES, config=dict(READINGS[reading]))
    return {e["dlqId"]: e for e in server.control.entries()}


def acted(server: Any, action: str) -> list[str]:
    verb = VERBS[action]
    return [a["dlqId"] for a in server.control.actions() if a["action"] == verb]


def assert_once(server: Any, action: str) -> list[str]:
    ids = acted(server, action)
    twice = [i for i, n in Counter(ids).items() if n > 1]
    assert not twice, f"acted on more than once: {twice[:10]}"
    return ids


def kept(path: Path) -> dict[str, dict[str, Any]]:
    """The entries the report holds in full (``entry_before_delete`` lines)."""
    if not path.exists():
        return {}
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {ln["dlq_id"]: ln["entry"] for ln in lines if ln["event"] == "entry_before_delete"}


class DeleteWatch:
    """At the moment the server acts on each delete (a hook the in-process dev server calls
    before it answers), the report on disk must already hold the entry as it was, in full."""

    def __init__(self, server: Any, path: Path, before: dict[str, dict[str, Any]]) -> None:
        self.server, self.path, self.before = server, path, before
        self.checked: list[str] = []
        self.failures: list[str] = []
        server.world.on_action = self.on_action

    def on_action(self, record: dict[str, Any]) -> None:
        if record["action"] != "delete":
            return
        if kept(self.path).get(record["dlqId"]) != self.before[record["dlqId"]]:
            self.failures.append(record["dlqId"])
        self.checked.append(record["dlqId"])

    def finish(self) -> list[str]:
        self.server.world.on_action = None
        assert not self.failures, f"deleted before the report held it: {self.failures[:5]}"
        return self.checked


# -- delete --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reading", "pacing"),
    [
        ("default", Pacing()),
        ("delete_skips_missing", Pacing()),
        ("default", Pacing(exact_pairing=True, concurrency=3, batch_size=10)),
    ],
)
def test_every_deleted_entry_is_in_the_report_in_full_when_the_server_deletes_it(
    wfdlq_devserver: Any, client: WorkflowDLQClient, tmp_path: Path, reading: str, pacing: Pacing
) -> None:
    server = wfdlq_devserver
    before = world(server, reading)
    path = tmp_path / "night.jsonl"
    watch = DeleteWatch(server, path, before)
    selection = ErrorSelection.coerce({"statuses": [489, 500]})

    with path.open("w") as stream:
        report = Redrive(
            client,
            plan("delete", selection=selection, max_resumes=40, pacing=pacing),
            sink=JsonLinesSink(stream),
        ).run()

    deleted = assert_once(server, "delete")
    assert sorted(watch.finish()) == sorted(deleted)
    wanted = sorted(
        (e["createdAt"], i) for i, e in before.items() if e.get("responseStatus") in (489, 500)
    )
    assert sorted(deleted) == sorted(i for _, i in wanted[:40])  # oldest first, 489s too
    assert report.counts["deleted"] == 40
    assert report.stopped == "max_resumes"
    assert report.counts["left_max_resumes"] == len(wanted) - 40
    assert report.runs == []
    assert_counts_add_up(report)
    assert set(kept(path)) == set(deleted)


@pytest.mark.parametrize("reading", sorted(r for r in READINGS if r != "frozen_cursor"))
def test_deleting_everything_in_each_reading_is_once_oldest_first_and_adds_up(
    wfdlq_devserver: Any, client: WorkflowDLQClient, reading: str
) -> None:
    server = wfdlq_devserver
    before = world(server, reading)

    report = Redrive(client, plan("delete")).run()

    deleted = assert_once(server, "delete")
    assert sorted(deleted) == sorted(before)
    order = [(before[i]["createdAt"], i) for i in deleted]
    assert order == sorted(order)  # oldest first (bulk calls go one at a time)
    assert report.counts["deleted"] == ENTRIES
    assert_counts_add_up(report)


def test_a_lost_delete_answer_is_settled_by_the_dlq_and_the_entries_were_kept(
    wfdlq_devserver: Any, client: WorkflowDLQClient, tmp_path: Path
) -> None:
    server = wfdlq_devserver
    before = world(server)
    path = tmp_path / "night.jsonl"
    watch = DeleteWatch(server, path, before)
    # The server deletes the first batch, then drops the connection before answering.
    server.control.add_fault("drop", method="DELETE", path_prefix="/v2/workflows/dlq")

    with path.open("w") as stream:
        report = Redrive(client, plan("delete"), sink=JsonLinesSink(stream)).run()

    deleted = assert_once(server, "delete")
    assert len(deleted) == ENTRIES
    assert sorted(watch.finish()) == sorted(deleted)
    # A deleted entry never comes back: gone after a lost answer means deleted.
    assert report.counts["deleted_answer_lost"] == 50
    assert report.counts["deleted"] == ENTRIES - 50
    assert "answer_lost_unknown" not in report.counts
    assert_counts_add_up(report)
    assert server.control.entries() == []


@pytest.mark.parametrize("dies_at", [1, 2])
def test_a_worker_killed_right_after_a_delete_call_kept_the_entries_and_a_retry_deletes_once(
    wfdlq_devserver: Any, client: WorkflowDLQClient, tmp_path: Path, dies_at: int
) -> None:
    server = wfdlq_devserver
    before = world(server)
    path = tmp_path / "night.jsonl"
    store = MemoryStore()
    watch = DeleteWatch(server, path, before)

    dying = DyingClient(client, dies_at, ("delete_bulk",))
    with path.open("w") as stream, pytest.raises(Died):
        Redrive(dying, plan("delete"), store=store, sink=JsonLinesSink(stream)).run()  # type: ignore[arg-type]
    deleted_by_first = set(acted(server, "delete"))
    assert deleted_by_first <= set(kept(path))  # on disk although the worker died
    with path.open("a") as stream:  # a retry appends to the report
        report = Redrive(client, plan("delete"), store=store, sink=JsonLinesSink(stream)).run()

    deleted = assert_once(server, "delete")
    assert sorted(watch.finish()) == sorted(deleted)
    assert set(deleted) == set(before)
    assert report.stopped == "done"
    assert report.counts["deleted_answer_lost"] == 50  # the dead try's in-flight batch
    assert report.counts["deleted"] + report.counts["deleted_answer_lost"] == ENTRIES
    assert_counts_add_up(report)
    for dlq_id, entry in kept(path).items():
        assert entry == before[dlq_id]  # body, headers, response: the whole entry


@pytest.mark.parametrize("reading", ["default", "delete_skips_missing"])
def test_an_entry_deleted_elsewhere_after_it_was_read_is_not_sent_twice(
    wfdlq_devserver: Any, client: WorkflowDLQClient, reading: str
) -> None:
    server = wfdlq_devserver
    before = world(server, reading)
    ids = sorted(before, key=lambda i: before[i]["createdAt"])[:10]
    gone = ids[4]
    reads: list[str] = []

    class Racing:
        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

        def get_message(self, dlq_id: str) -> Any:
            message = client.get_message(dlq_id)
            reads.append(dlq_id)
            if len(reads) == len(ids):  # after the last read, before the delete call
                client.delete(gone)
            return message

    report = Redrive(Racing(), plan("delete", filters=DLQFilters(dlq_ids=tuple(ids)))).run()  # type: ignore[arg-type]

    assert_once(server, "delete")
    assert set(acted(server, "delete")) == set(ids)
    assert report.counts["deleted"] + report.counts["vanished"] == 10
    assert report.counts["deleted"] >= 9
    assert_counts_add_up(report)


def test_deletion_refuses_the_whole_dlq_and_settings_it_cannot_honour(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    with pytest.raises(ValidationError, match="resume_all"):
        Redrive(client, plan("delete", filters=DLQFilters()))
    with pytest.raises(ValidationError, match="overrides"):
        Redrive(client, plan("delete", overrides=Overrides(retries=2)))
    with pytest.raises(ValidationError, match="audit_label"):
        Redrive(client, plan("retry_failure_callback", audit_label="x"))
    with pytest.raises(ValidationError, match="safety"):
        Redrive(client, plan("cancel_failure_callback", safety=SafetyPolicy(canary=3)))
    assert wfdlq_devserver.control.requests() == []


def test_a_dry_run_deletes_nothing_and_names_exactly_what_would_go(
    wfdlq_devserver: Any, client: WorkflowDLQClient, tmp_path: Path
) -> None:
    server = wfdlq_devserver
    before = world(server)
    path = tmp_path / "preview.jsonl"

    with path.open("w") as stream:
        dry = plan("delete", selection=ErrorSelection.coerce({"statuses": [489]}), dry_run=True)
        report = Redrive(client, dry, sink=JsonLinesSink(stream)).run()

    assert server.control.actions() == []
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    would = {ln["dlq_id"] for ln in lines if ln["event"] == "would_delete"}
    assert would == {i for i, e in before.items() if e.get("responseStatus") == 489}
    assert report.counts["would_delete"] == len(would) > 0

    # A status rule still applies to 489s (housekeeping only lifts "489s are skipped").
    other = plan("delete", selection=ErrorSelection.coerce({"statuses": [500]}), dry_run=True)
    report = Redrive(client, other).run()
    would_500 = {i for i, e in before.items() if e.get("responseStatus") == 500}
    assert report.counts["would_delete"] == len(would_500)
    assert report.counts["skipped_status"] == ENTRIES - len(would_500)


# -- failure callbacks ---------------------------------------------------------------------


def _states(server: Any) -> dict[str, str | None]:
    return {
        e["dlqId"]: (e.get("failureCallbackInfo") or {}).get("state")
        or e.get("failureFunctionState")
        for e in server.control.entries()
    }


@pytest.mark.parametrize(
    ("action", "state", "after"),
    [
        ("retry_failure_callback", "CALLBACK_FAIL", "CALLBACK_INPROGRESS"),
        ("cancel_failure_callback", "CALLBACK_INPROGRESS", "CALLBACK_CANCELED"),
    ],
)
def test_callbacks_only_in_their_state_a_refusal_and_a_lost_answer(
    wfdlq_devserver: Any, client: WorkflowDLQClient, action: str, state: str, after: str
) -> None:
    server = wfdlq_devserver
    world(server)
    states = _states(server)
    eligible = sorted(i for i, s in states.items() if s == state)
    assert len(eligible) >= 5
    # The last eligible entry's callback settles between the listing and its call (400);
    # the first call's answer is lost after the server acted.
    changes = eligible[-1]
    verb = VERBS[action]

    def on_action(record: dict[str, Any]) -> None:
        # (In the server's thread: read its world directly, never call it over HTTP.)
        if record["action"] == verb and [a["action"] for a in server.world.actions] == [verb]:
            server.world.set_callback_state(changes, "CALLBACK_SUCCESS")

    server.world.on_action = on_action
    server.control.add_fault("drop", path_prefix="/v2/workflows/dlq/callback/")

    report = Redrive(client, plan(action, pacing=Pacing(concurrency=1))).run()
    server.world.on_action = None

    done = assert_once(server, action)
    assert sorted(done) == eligible[:-1]
    word = "callback_retried" if action.startswith("retry") else "callback_canceled"
    assert report.counts[f"{word}_answer_lost"] == 1  # read back: the state moved on
    assert report.counts[word] == len(eligible) - 2
    assert report.counts["not_acted"] == 1  # the server's 400: the state had changed
    assert report.counts["skipped_callback_state"] == ENTRIES - len(eligible)
    assert report.runs == []
    assert_counts_add_up(report)
    now = _states(server)
    assert {now[i] for i in done} <= {after, "CALLBACK_SUCCESS"}


def test_a_killed_worker_during_callback_retries_acts_once_in_all(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    server = wfdlq_devserver
    world(server)
    eligible = {i for i, s in _states(server).items() if s == "CALLBACK_FAIL"}
    store = MemoryStore()
    retry = plan("retry_failure_callback", pacing=Pacing(concurrency=1, batch_size=5))

    dying = DyingClient(client, 3, ("retry_failure_callback",))
    with pytest.raises(Died):
        Redrive(dying, retry, store=store).run()  # type: ignore[arg-type]
    report = Redrive(client, retry, store=store).run()

    done = assert_once(server, "retry_failure_callback")
    assert report.stopped == "done"
    # The dead try's batch of 5 is settled by the callback's state, never sent again: the
    # 3 it sent moved on (retried); the 2 it never sent are still CALLBACK_FAIL, which a
    # retry whose callback failed again would also show: unknown, for a human.
    assert report.counts["callback_retried_answer_lost"] == 3
    assert report.counts["answer_lost_unknown"] == 2
    assert report.counts["callback_retried"] == len(eligible) - 5
    assert set(done) <= eligible
    assert len(done) == len(eligible) - 2
    assert_counts_add_up(report)

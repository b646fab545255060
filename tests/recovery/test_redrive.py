"""The redrive engine over the dev server: paging, caps, dry runs, faults and crashes."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from airflow_provider_wfdlq.client import DLQFilters, Overrides, ValidationError, WorkflowDLQClient
from airflow_provider_wfdlq.recovery import JsonLinesSink, MemoryStore, Pacing, Redrive, RedrivePlan
from airflow_provider_wfdlq.recovery.selection import ErrorSelection
from tests.recovery.conftest import resumed_ids

EVERYTHING = DLQFilters.build(from_date="2020-01-01T00:00:00Z")


def plan(count: int | None = None, **kwargs: Any) -> RedrivePlan:
    """A plan over the whole seeded world; 489s included so every entry is in play here
    (the policies' own tests cover the default, which skips them). ``count``: list page
    size and batch size at once."""
    if count is not None:
        kwargs["pacing"] = Pacing(page_size=count, batch_size=min(count, 50))
    kwargs.setdefault("filters", EVERYTHING)
    kwargs.setdefault("overrides", Overrides())
    kwargs.setdefault("selection", ErrorSelection(include_non_retryable=True))
    return RedrivePlan(**kwargs)


def dlq_ids(server: Any) -> set[str]:
    return {e["dlqId"] for e in server.control.entries()}


@pytest.mark.parametrize("page_cap", [1, 7, 50])
def test_pages_to_the_end_resuming_each_entry_exactly_once(
    wfdlq_devserver: Any, client: WorkflowDLQClient, page_cap: int
) -> None:
    server = wfdlq_devserver
    server.control.reset(entries=2000 if page_cap > 1 else 300)
    server.control.set_config(page_cap=page_cap)
    before = dlq_ids(server)

    report = Redrive(client, plan(count=100)).run()

    resumed = resumed_ids(server)
    assert len(resumed) == len(set(resumed)) == len(before)
    assert set(resumed) == before
    assert report.counts["resumed"] == len(before)
    assert report.stopped == "done"
    assert report.cursor is None
    assert dlq_ids(server) == set()


def test_report_maps_each_entry_to_the_run_the_server_made_for_it(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    server = wfdlq_devserver
    stream = io.StringIO()
    report = Redrive(client, plan(count=20), sink=JsonLinesSink(stream)).run()

    made = {a["dlqId"]: a["newWorkflowRunId"] for a in server.control.actions()}
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {line["dlq_id"]: line["new_workflow_run_id"] for line in lines} == made
    assert {r["dlq_id"]: r["workflow_run_id"] for r in report.runs} == made
    assert all(line["event"] == "resumed" for line in lines)


def test_max_resumes_stops_and_the_next_run_goes_on_with_the_rest(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    server = wfdlq_devserver
    total = len(dlq_ids(server))
    first = Redrive(client, plan(count=20, max_resumes=45)).run()
    assert first.stopped == "max_resumes"
    assert first.counts["resumed"] == 45
    assert first.counts["left_max_resumes"] == total - 45
    assert len(resumed_ids(server)) == 45

    rest = Redrive(client, plan(count=20)).run()
    assert rest.stopped == "done"
    resumed = resumed_ids(server)
    assert len(resumed) == len(set(resumed)) == total


def test_dry_run_lists_and_resumes_nothing(
    wfdlq_devserver: Any, client: WorkflowDLQClient, caplog: pytest.LogCaptureFixture
) -> None:
    server = wfdlq_devserver
    total = len(dlq_ids(server))
    caplog.set_level("INFO")
    report = Redrive(client, plan(count=30, dry_run=True)).run()

    assert server.control.actions() == []
    assert report.counts["would_resume"] == total
    assert sum(g["entries"] for g in report.to_state()["groups"]) == total
    assert "dlqId" in caplog.text
    assert "workflow URL" in caplog.text
    assert {r["path"] for r in server.control.requests()} == {"/v2/workflows/dlq"}
    assert report.found == total


def test_filters_limit_what_is_resumed(wfdlq_devserver: Any, client: WorkflowDLQClient) -> None:
    server = wfdlq_devserver
    url = server.control.entries()[0]["workflowUrl"]
    expected = {e["dlqId"] for e in server.control.entries() if e["workflowUrl"] == url}
    Redrive(client, plan(filters=DLQFilters(workflow_url=(url,)), count=10)).run()
    assert set(resumed_ids(server)) == expected


def test_explicit_ids_are_resumed_in_chunks_and_unknown_ones_reported(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    server = wfdlq_devserver
    ids = sorted(dlq_ids(server))[:25]
    client.delete(ids[3])  # leaves between planning and acting
    report = Redrive(client, plan(filters=DLQFilters(dlq_ids=tuple(ids)), count=10)).run()

    assert sorted(resumed_ids(server)) == sorted(set(ids) - {ids[3]})
    assert report.counts["resumed"] == 24
    assert report.counts["vanished"] == 1


def test_restart_action_restarts(wfdlq_devserver: Any, client: WorkflowDLQClient) -> None:
    server = wfdlq_devserver
    ids = sorted(dlq_ids(server))[:3]
    report = Redrive(client, plan(filters=DLQFilters(dlq_ids=tuple(ids)), action="restart")).run()
    assert sorted(resumed_ids(server, "restart")) == ids
    assert report.counts["restarted"] == 3


@pytest.mark.parametrize("fault", ["429", "503", "drop"])
def test_faults_leave_each_entry_resumed_exactly_once(
    wfdlq_devserver: Any, client: WorkflowDLQClient, fault: str
) -> None:
    server = wfdlq_devserver
    before = dlq_ids(server)
    server.control.add_fault(
        fault, method="POST", path_prefix="/v2/workflows/dlq/resume", ratio=0.3
    )
    server.control.add_fault(fault, method="GET", path_prefix="/v2/workflows/dlq", ratio=0.1)

    report = Redrive(client, plan(count=10)).run()

    resumed = resumed_ids(server)
    assert len(resumed) == len(set(resumed))
    if fault == "drop":
        # Lost answers are resolved by the DLQ (this server removes what it resumed) or,
        # before that was seen, reported unknown; never sent again, so some stay behind.
        lost = report.counts["resumed_answer_lost"] + report.counts["answer_lost_unknown"]
        assert lost + report.counts["not_acted"] > 0
        assert set(resumed) <= before
    else:
        assert set(resumed) == before
        assert report.counts["resumed"] == len(before)


def test_a_crash_mid_call_is_settled_by_the_next_try(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    """The first try dies after the server resumed a batch but before it kept the answer."""
    server = wfdlq_devserver
    before = dlq_ids(server)
    store = MemoryStore()

    class Dies(Exception):
        pass

    calls = 0
    real = client.resume_bulk

    def dying_resume_bulk(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        result = real(*args, **kwargs)
        if calls == 3:
            raise Dies
        return result

    client.resume_bulk = dying_resume_bulk  # type: ignore[method-assign]
    with pytest.raises(Dies):
        Redrive(client, plan(count=10), store=store).run()
    assert store.data["wfdlq_ledger"] == {"chunks": 3}  # the third batch went out
    client.resume_bulk = real  # type: ignore[method-assign]

    report = Redrive(client, plan(count=10), store=store).run()

    resumed = resumed_ids(server)
    assert len(resumed) == len(set(resumed)) == len(before)
    assert report.counts["resumed"] == len(before) - 10
    # This server was seen removing resumed entries: the DLQ says the 10 were acted on.
    assert report.counts["resumed_answer_lost"] == 10
    assert report.found == len(before)
    # The first try's runs are in the result too (kept in the checkpoint's runs part).
    assert len(report.runs) == len(before) - 10
    assert "wfdlq_redrive" not in store.data  # a finished walk leaves no checkpoint behind
    assert "wfdlq_ledger" in store.data  # but its ledger: a cleared task sends nothing twice


def test_stop_request_ends_between_batches(wfdlq_devserver: Any, client: WorkflowDLQClient) -> None:
    def stop_after_two() -> bool:
        return redrive.report.pages >= 2

    redrive = Redrive(client, plan(count=10), should_stop=stop_after_two)
    report = redrive.run()
    assert report.stopped == "stopped"
    assert report.counts["resumed"] == 20
    assert len(resumed_ids(wfdlq_devserver)) == 20
    assert report.counts["left_stopped"] == report.found - 20


def test_stop_request_while_listing_acts_on_nothing(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    report = Redrive(client, plan(count=10), should_stop=lambda: True).run()
    assert report.stopped == "stopped"
    assert wfdlq_devserver.control.actions() == []


def test_entries_created_after_the_walk_started_are_left_alone(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    """A resumed run that fails again re-enters the DLQ; the walk must not chase it."""
    server = wfdlq_devserver
    before = dlq_ids(server)
    server.control.set_config(success_ratio=0.0, run_seconds=0.0)
    Redrive(client, plan(count=25)).run()
    assert set(resumed_ids(server)) == before
    # Every resumed run failed again into the DLQ: those are new entries, still waiting.
    assert dlq_ids(server)
    assert not (dlq_ids(server) & before)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"filters": DLQFilters()}, "filters"),
        ({"action": "redo"}, "action"),
        ({"pacing": Pacing(page_size=0)}, "pacing.page_size"),
        ({"pacing": Pacing(page_size=101)}, "pacing.page_size"),
        ({"pacing": Pacing(batch_size=51)}, "pacing.batch_size"),
        ({"max_resumes": 0}, "max_resumes"),
    ],
)
def test_bad_plans_fail_before_any_request(
    wfdlq_devserver: Any, client: WorkflowDLQClient, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        Redrive(client, plan(**kwargs)).run()
    assert info.value.field == field
    assert field in str(info.value)
    assert wfdlq_devserver.control.requests() == []


def test_resume_all_is_the_explicit_opt_in_for_the_whole_dlq(
    wfdlq_devserver: Any, client: WorkflowDLQClient
) -> None:
    before = dlq_ids(wfdlq_devserver)
    Redrive(client, plan(filters=DLQFilters(), resume_all=True)).run()
    assert set(resumed_ids(wfdlq_devserver)) == before

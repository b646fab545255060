"""The Airflow-free watcher: input forms, validation, the decision, and requests per poll."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_wfdlq.client import (
    AsyncWorkflowDLQClient,
    BadRequestError,
    DLQFilters,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    TransportError,
    ValidationError,
    WorkflowDLQClient,
)
from airflow_provider_wfdlq.devserver import DevServer
from airflow_provider_wfdlq.recovery.callbacks import (
    MAX_RESULT_ENTRIES,
    CallbackWatch,
    CallbackWatcher,
    EntryStatus,
    coerce_dlq_ids,
    decide,
    is_transient,
    poll_async,
    poll_sync,
)
from tests.sensors.conftest import IN_PROGRESS, api_requests, seed, settle

DLQ = "/v2/workflows/dlq"


# --- input forms -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1-0", ("1-0",)),
        ("1-0, 2-0,1-0", ("1-0", "2-0")),
        (["1-0", "2-0"], ("1-0", "2-0")),
        (
            {"runs": [{"dlq_id": "1-0", "workflow_run_id": "wfr_x"}, {"dlq_id": "2-0"}]},
            ("1-0", "2-0"),
        ),
        ([{"dlq_id": "3-1"}], ("3-1",)),
        ('["1-0", "2-0"]', ("1-0", "2-0")),
        ("['1-0', '2-0']", ("1-0", "2-0")),
        ("{'runs': [{'dlq_id': '5-0'}]}", ("5-0",)),
        ([], ()),
        ({"runs": []}, ()),
        (None, None),
        ("None", None),
        ("", None),
    ],
)
def test_dlq_ids_come_in_every_form_an_upstream_task_hands_over(value: Any, expected: Any) -> None:
    assert coerce_dlq_ids(value) == expected


@pytest.mark.parametrize("value", ["wfr_abc", ["1-0", 7], {"cursor": "x"}, 42, "1-0,oops"])
def test_bad_dlq_ids_name_the_field_value_and_forms(value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        coerce_dlq_ids(value)
    assert caught.value.field == "dlq_ids"
    assert "DLQ id" in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({}, "dlq_ids", "or filters instead"),
        ({"dlq_ids": ["1-0"], "filters": {"label": "x"}}, "dlq_ids", "either dlq_ids or filters"),
        ({"dlq_ids": "1-0", "target_states": [IN_PROGRESS]}, "target_states", "never final"),
        ({"dlq_ids": "1-0", "target_states": "CALLBACK_DONE"}, "target_states", "unknown state"),
        ({"dlq_ids": "1-0", "failure_states": ["CALLBACK_SUCESS"]}, "failure_states", "unknown"),
        (
            {"dlq_ids": "1-0", "target_states": "CALLBACK_FAIL", "failure_states": "CALLBACK_FAIL"},
            "target_states",
            "leaves no target",
        ),
        ({"dlq_ids": "1-0", "on_vanished": "skip"}, "on_vanished", "'succeed', 'fail', 'ignore'"),
        ({"dlq_ids": "1-0", "on_missing_callback": 1}, "on_missing_callback", "'succeed'"),
        ({"filters": {"dlq_ids": ["1-0"]}}, "filters", "give them as dlq_ids="),
        ({"filters": {"failure_function_state": IN_PROGRESS}}, "filters", "sets itself"),
        ({"filters": {"lable": "x"}}, "DLQFilters", "did you mean 'label'"),
        ({"filters": ["label"]}, "filters", "not a mapping"),
        ({"filters": {"label": "x"}, "on_vanished": "fail"}, "on_vanished", "cannot be honoured"),
    ],
)
def test_bad_arguments_are_refused_naming_field_and_accepted_values(
    kwargs: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        CallbackWatch.build(**kwargs)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_a_state_in_both_lists_is_a_failure_and_text_forms_are_read() -> None:
    watch = CallbackWatch.build(dlq_ids="1-0", failure_states="CALLBACK_FAIL,CALLBACK_CANCELED")
    assert watch.failure_states == {"CALLBACK_FAIL", "CALLBACK_CANCELED"}
    assert watch.target_states == {"CALLBACK_SUCCESS"}
    assert watch.open_states == {IN_PROGRESS}
    watch = CallbackWatch.build(dlq_ids="1-0", target_states="['CALLBACK_SUCCESS']")
    assert watch.open_states == {IN_PROGRESS, "CALLBACK_FAIL", "CALLBACK_CANCELED"}


def test_watch_round_trips_through_json() -> None:
    for watch in (
        CallbackWatch.build(dlq_ids=["1-0", "2-0"], failure_states=["CALLBACK_FAIL"]),
        CallbackWatch.build(
            filters={"label": "nightly", "from_date": "2026-01-01T00:00:00Z"}, on_vanished="succeed"
        ),
    ):
        data = json.loads(json.dumps(watch.to_json()))
        assert CallbackWatch.from_json(data) == watch


# --- the decision ------------------------------------------------------------------------------


def _status(dlq_id: str, state: str | None, *, vanished: bool = False) -> EntryStatus:
    body = '{"error":"callback handler crashed"}' if state == "CALLBACK_FAIL" else None
    status = 500 if state == "CALLBACK_FAIL" else None
    return EntryStatus(dlq_id, state, status, body, vanished)


@pytest.mark.parametrize(
    ("states", "kwargs", "verdict", "result_ids"),
    [
        ({"1-0": "CALLBACK_SUCCESS", "2-0": "CALLBACK_CANCELED"}, {}, "success", ["1-0", "2-0"]),
        ({"1-0": "CALLBACK_SUCCESS", "2-0": IN_PROGRESS}, {}, "waiting", []),
        (
            {"1-0": "CALLBACK_FAIL", "2-0": IN_PROGRESS},
            {"failure_states": "CALLBACK_FAIL"},
            "failed",
            [],
        ),
        ({"1-0": "CALLBACK_CANCELED"}, {"target_states": "CALLBACK_SUCCESS"}, "waiting", []),
        ({"1-0": None}, {}, "success", ["1-0"]),
        ({"1-0": None}, {"on_missing_callback": "ignore"}, "success", []),
        ({"1-0": None}, {"on_missing_callback": "fail"}, "failed", []),
        ({"1-0": "gone"}, {}, "success", []),
        ({"1-0": "gone"}, {"on_vanished": "succeed"}, "success", ["1-0"]),
        ({"1-0": "gone", "2-0": IN_PROGRESS}, {"on_vanished": "fail"}, "failed", []),
    ],
)
def test_decide(
    states: dict[str, str | None], kwargs: dict[str, Any], verdict: str, result_ids: list[str]
) -> None:
    watch = CallbackWatch.build(dlq_ids=list(states), **kwargs)
    statuses = {
        i: _status(i, None, vanished=True) if s == "gone" else _status(i, s)
        for i, s in states.items()
    }
    outcome = decide(watch, statuses)
    assert outcome.status == verdict
    assert sorted(outcome.results) == result_ids


def test_a_failure_message_names_entries_states_and_the_callback_answer() -> None:
    watch = CallbackWatch.build(
        dlq_ids=["1-0", "2-0", "3-0"], failure_states="CALLBACK_FAIL", on_vanished="fail"
    )
    statuses = {
        "1-0": _status("1-0", "CALLBACK_FAIL"),
        "2-0": _status("2-0", None, vanished=True),
        "3-0": _status("3-0", "CALLBACK_SUCCESS"),
    }
    message = decide(watch, statuses).message
    assert "1-0: CALLBACK_FAIL, callback answered HTTP 500" in message
    assert "callback handler crashed" in message
    assert "on_vanished='fail': 2-0: gone from the DLQ" in message
    assert "3-0" not in message


def test_vanished_with_succeed_is_marked_in_the_result() -> None:
    watch = CallbackWatch.build(dlq_ids="1-0", on_vanished="succeed")
    outcome = decide(watch, {"1-0": _status("1-0", None, vanished=True)})
    assert outcome.results == {"1-0": {"state": None, "response_status": None, "vanished": True}}


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (RateLimitedError(429, "slow down", "GET", DLQ), True),
        (ServerError(503, "unavailable", "GET", DLQ), True),
        (TransportError("timed out", "GET", DLQ), True),
        (BadRequestError(400, "cursor is stale", "GET", DLQ), True),
        (BadRequestError(400, "unknown parameter", "GET", DLQ), False),
        (NotFoundError(404, "nope", "GET", DLQ), False),
    ],
)
def test_transient_errors_are_waited_out_others_are_not(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


# --- polling over the dev server ---------------------------------------------------------------


def test_requests_per_poll_follow_pages_of_entries_not_watched_ids(
    server: DevServer, client: WorkflowDLQClient
) -> None:
    ids = seed(server, IN_PROGRESS, count=250)
    watcher = CallbackWatcher(CallbackWatch.build(dlq_ids=ids))
    server.control.clear_requests()

    first = poll_sync(client, watcher)
    assert first.status == "waiting"
    assert len(first.pending) == 250
    assert all(path == DLQ for _, path in api_requests(server))  # listing only, no GET

    for _ in range(3):  # nothing moved: the watched entries' own window, 100 per page
        server.control.clear_requests()
        assert poll_sync(client, watcher).status == "waiting"
        assert api_requests(server) == [("GET", DLQ)] * 3

    settle(server, dict.fromkeys(ids[:100], "CALLBACK_SUCCESS"))
    server.control.clear_requests()
    assert poll_sync(client, watcher).status == "waiting"
    # 150 still in progress (2 pages) + the 100 that finished, read from one listing
    assert api_requests(server) == [("GET", DLQ)] * 3

    settle(server, {i: "CALLBACK_FAIL" for i in ids[100:]})
    server.control.clear_requests()
    done = poll_sync(client, watcher)
    assert done.status == "success"
    assert sorted(done.results) == sorted(ids)
    assert done.results[ids[0]] == {"state": "CALLBACK_SUCCESS", "response_status": 200}
    assert done.results[ids[-1]] == {"state": "CALLBACK_FAIL", "response_status": 500}
    assert len(api_requests(server)) <= 4
    assert all(path == DLQ for _, path in api_requests(server))

    server.control.clear_requests()
    assert poll_sync(client, watcher).status == "success"
    assert api_requests(server) == []  # all final: nothing left to ask


def test_an_entry_that_leaves_the_dlq_while_watched_is_fetched_and_found_gone(
    server: DevServer, client: WorkflowDLQClient
) -> None:
    ids = seed(server, IN_PROGRESS, count=2)
    watcher = CallbackWatcher(CallbackWatch.build(dlq_ids=ids, on_vanished="succeed"))
    assert poll_sync(client, watcher).status == "waiting"
    client.delete(ids[0])
    settle(server, {ids[1]: "CALLBACK_SUCCESS"})
    server.control.clear_requests()
    verdict = poll_sync(client, watcher)
    assert verdict.results == {
        ids[0]: {"state": None, "response_status": None, "vanished": True},
        ids[1]: {"state": "CALLBACK_SUCCESS", "response_status": 200},
    }
    assert ("GET", f"{DLQ}/{ids[0]}") in api_requests(server)


def test_later_polls_are_narrowed_to_the_watched_entries_urls_and_window(
    server: DevServer, client: WorkflowDLQClient
) -> None:
    url = "https://narrow.example.com/api/workflow"
    ids = seed(server, IN_PROGRESS, count=3, workflowUrl=url)
    watcher = CallbackWatcher(CallbackWatch.build(dlq_ids=ids))
    poll_sync(client, watcher)
    server.control.clear_requests()
    poll_sync(client, watcher)
    (request,) = server.control.requests()
    query = dict(map(tuple, request["query"]))
    assert query["workflowUrl"] == url
    assert query["failureFunctionState"] == IN_PROGRESS
    assert int(query["fromDate"]) <= int(query["toDate"])


def test_final_vanished_and_callback_less_entries_are_fetched_once(
    server: DevServer, client: WorkflowDLQClient
) -> None:
    (final,) = seed(server, "CALLBACK_CANCELED")
    (bare,) = seed(server, None)
    watch = CallbackWatch.build(dlq_ids=[final, bare, "1-0"], on_vanished="succeed")
    watcher = CallbackWatcher(watch)
    server.control.clear_requests()
    verdict = poll_sync(client, watcher)
    assert verdict.status == "success"
    assert verdict.results == {
        final: {"state": "CALLBACK_CANCELED", "response_status": None},
        bare: {"state": None, "response_status": None},
        "1-0": {"state": None, "response_status": None, "vanished": True},
    }
    assert sum(1 for _, p in api_requests(server) if p != DLQ) == 3


def test_the_listing_stops_when_getting_the_unseen_ids_is_cheaper(
    server: DevServer, client: WorkflowDLQClient
) -> None:
    (watched,) = seed(server, "CALLBACK_SUCCESS")
    seed(server, IN_PROGRESS, count=400)  # unrelated in-progress entries: 4+ pages
    server.control.clear_requests()
    verdict = poll_sync(client, CallbackWatcher(CallbackWatch.build(dlq_ids=watched)))
    assert verdict.status == "success"
    assert api_requests(server) == [("GET", DLQ), ("GET", f"{DLQ}/{watched}")]


def test_nothing_to_watch_succeeds_without_a_request(
    server: DevServer, client: WorkflowDLQClient
) -> None:
    server.control.clear_requests()
    verdict = poll_sync(client, CallbackWatcher(CallbackWatch.build(dlq_ids=[])))
    assert (verdict.status, dict(verdict.results), api_requests(server)) == ("success", {}, [])


def test_filters_cost_one_count_1_listing_per_poll_then_one_walk_for_the_result(
    server: DevServer, client: WorkflowDLQClient
) -> None:
    ids = seed(server, IN_PROGRESS, count=2, labels=["tonight"])
    seed(server, "CALLBACK_SUCCESS", count=3, labels=["tonight"])
    seed(server, None, labels=["tonight"])
    watcher = CallbackWatcher(CallbackWatch.build(filters={"label": "tonight"}))
    server.control.clear_requests()
    assert poll_sync(client, watcher).status == "waiting"
    (request,) = server.control.requests()
    assert sorted(map(tuple, request["query"])) == [
        ("count", "1"),
        ("failureFunctionState", IN_PROGRESS),
        ("label", "tonight"),
    ]
    settle(server, dict.fromkeys(ids, "CALLBACK_CANCELED"))
    server.control.clear_requests()
    verdict = poll_sync(client, watcher)
    assert verdict.status == "success"
    assert len(verdict.results) == 5  # the callback-less entry matches no state
    assert len(api_requests(server)) == 2


def test_filters_fail_on_a_failure_state_naming_the_entries(
    server: DevServer, client: WorkflowDLQClient
) -> None:
    failed = seed(server, "CALLBACK_FAIL", count=2, labels=["tonight"])
    seed(server, IN_PROGRESS, labels=["tonight"])
    watch = CallbackWatch.build(filters={"label": "tonight"}, failure_states=["CALLBACK_FAIL"])
    verdict = poll_sync(client, CallbackWatcher(watch))
    assert verdict.status == "failed"
    assert all(f"{i}: CALLBACK_FAIL, callback answered HTTP 500" in verdict.message for i in failed)


def test_filters_result_is_capped(server: DevServer, client: WorkflowDLQClient) -> None:
    seed(server, "CALLBACK_SUCCESS", count=MAX_RESULT_ENTRIES + 5, labels=["big"])
    verdict = poll_sync(client, CallbackWatcher(CallbackWatch.build(filters={"label": "big"})))
    assert len(verdict.results) == MAX_RESULT_ENTRIES
    assert "capped" in verdict.message


async def test_the_async_driver_decides_like_the_sync_one(
    server: DevServer, client: WorkflowDLQClient
) -> None:
    ids = seed(server, IN_PROGRESS, count=40)
    settle(server, {ids[0]: "CALLBACK_FAIL"})
    watch = CallbackWatch.build(dlq_ids=[*ids, "1-0"], failure_states="CALLBACK_FAIL")
    policy = RetryPolicy(max_attempts=2, backoff_base=0.0)
    async with AsyncWorkflowDLQClient(server.token, server.url, retry=policy) as aclient:
        async_verdict = await poll_async(aclient, CallbackWatcher(watch), concurrency=4)
    sync_verdict = poll_sync(client, CallbackWatcher(watch))
    assert async_verdict == sync_verdict
    assert async_verdict.status == "failed"


def test_known_statuses_survive_json_so_a_trigger_does_not_fetch_them_again(
    server: DevServer, client: WorkflowDLQClient
) -> None:
    final = seed(server, "CALLBACK_SUCCESS", count=5)
    (running,) = seed(server, IN_PROGRESS)
    watch = CallbackWatch.build(dlq_ids=[*final, running])
    first = CallbackWatcher(watch)
    poll_sync(client, first)
    handed_over = json.loads(json.dumps(first.known_json()))
    second = CallbackWatcher(watch, CallbackWatcher.known_from_json(handed_over))
    server.control.clear_requests()
    assert poll_sync(client, second).status == "waiting"
    assert all(path == DLQ for _, path in api_requests(server))


def test_a_filter_for_entries_is_a_dlq_filters_too() -> None:
    watch = CallbackWatch.build(filters=DLQFilters(label=("a",)))
    assert watch.filters == DLQFilters(label=("a",))

"""Recovery policies in the redrive engine, over the dev server on loopback."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from airflow_provider_wfdlq.client import (
    DLQFilters,
    DLQMessage,
    Overrides,
    ValidationError,
    WorkflowDLQClient,
)
from airflow_provider_wfdlq.recovery import JsonLinesSink, Pacing, Redrive, RedrivePlan
from airflow_provider_wfdlq.recovery.retention import DAY_MS, Retention, parse_retention_days
from airflow_provider_wfdlq.recovery.safety import SafetyPolicy
from airflow_provider_wfdlq.recovery.selection import ErrorSelection, StatusRange
from tests.recovery.conftest import resumed_ids

URL_A = "https://a.example.com/api/workflow"
URL_B = "https://b.example.com/api/workflow"
STEP = "https://a.example.com/api/workflow?step=charge"


def plan(count: int | None = None, **kwargs: Any) -> RedrivePlan:
    """``count``: list page size and action batch size at once."""
    if count is not None:
        kwargs["pacing"] = Pacing(page_size=count, batch_size=min(count, 50))
    kwargs.setdefault("filters", DLQFilters.build(from_date="2020-01-01T00:00:00Z"))
    kwargs.setdefault("overrides", Overrides())
    return RedrivePlan(**kwargs)


def new_runs(server: Any) -> list[dict[str, Any]]:
    """The runs a resume or restart created (the seeded failed runs are in the logs too)."""
    return [
        r for r in server.control.runs() if "resumedFromDlqId" in r or "restartedFromDlqId" in r
    ]


def seed(server: Any, count: int, **fields: Any) -> set[str]:
    return {e["dlqId"] for e in server.control.seed_entries(count=count, **fields)}


@pytest.fixture
def world(wfdlq_devserver: Any) -> Any:
    """An empty DLQ whose runs finish at once (dev-server time is frozen unless advanced)."""
    wfdlq_devserver.control.reset(entries=0, config={"run_seconds": 1.0})
    return wfdlq_devserver


# --- selection ---------------------------------------------------------------------------


def test_489s_are_skipped_by_default_and_counted(world: Any, client: WorkflowDLQClient) -> None:
    retry = seed(world, 6, responseStatus=500)
    keep = seed(
        world, 4, responseStatus=489, responseHeader={"Upstash-NonRetryable-Error": ["true"]}
    )
    stream = io.StringIO()

    report = Redrive(client, plan(), sink=JsonLinesSink(stream)).run()

    assert set(resumed_ids(world)) == retry
    assert {e["dlqId"] for e in world.control.entries()} == keep
    assert report.counts["skipped_non_retryable"] == 4
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {x["dlq_id"] for x in lines if x["event"] == "skipped_non_retryable"} == keep


def test_489s_are_resumed_when_asked_for(world: Any, client: WorkflowDLQClient) -> None:
    seed(world, 3, responseStatus=489)
    selection = ErrorSelection(include_non_retryable=True)
    report = Redrive(client, plan(selection=selection)).run()
    assert report.counts["resumed"] == 3


def test_status_classes_ranges_body_and_step_url(world: Any, client: WorkflowDLQClient) -> None:
    wanted = seed(world, 3, responseStatus=502, responseBody="upstream timeout", url=STEP)
    seed(world, 2, responseStatus=503, responseBody="upstream timeout", url=STEP)  # excluded
    seed(world, 2, responseStatus=404, responseBody="upstream timeout", url=STEP)  # not 5xx
    seed(world, 2, responseStatus=500, responseBody="validation failed", url=STEP)  # body
    seed(world, 2, responseStatus=500, responseBody="upstream timeout", url=URL_B)  # step
    selection = ErrorSelection.build(
        statuses=["5xx"],
        exclude_statuses="503",
        body_regex=r"timeout",
        step_urls=["https://a.example.com/*"],
    )

    report = Redrive(client, plan(selection=selection)).run()

    assert set(resumed_ids(world)) == wanted
    assert report.counts["skipped_status"] == 4
    assert report.counts["skipped_body"] == 2
    assert report.counts["skipped_step_url"] == 2
    assert "status in 5xx" in report.policies["selection"]


def test_named_ids_are_read_and_selected_too(world: Any, client: WorkflowDLQClient) -> None:
    ok = seed(world, 2, responseStatus=500)
    no = seed(world, 2, responseStatus=489)
    filters = DLQFilters.build(dlq_ids=sorted(ok | no))
    report = Redrive(client, plan(filters=filters)).run()
    assert set(resumed_ids(world)) == ok
    assert report.counts["skipped_non_retryable"] == 2


def test_dry_run_shows_what_selection_would_skip(world: Any, client: WorkflowDLQClient) -> None:
    seed(world, 2, responseStatus=500)
    seed(world, 1, responseStatus=489)
    report = Redrive(client, plan(dry_run=True)).run()
    assert report.counts == {"would_resume": 2, "skipped_non_retryable": 1}
    assert resumed_ids(world) == []


def test_entries_are_taken_oldest_first(world: Any, client: WorkflowDLQClient) -> None:
    newer = seed(world, 1, responseStatus=500, createdAt=1_790_000_000_000)
    older = seed(world, 1, responseStatus=500, createdAt=1_780_000_000_000)
    Redrive(client, plan(max_resumes=1)).run()
    assert set(resumed_ids(world)) == older
    assert newer <= {e["dlqId"] for e in world.control.entries()}


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [("503", 503, 503), (503, 503, 503), ("5xx", 500, 599), ("500-504", 500, 504)],
)
def test_status_ranges_parse(text: Any, low: int, high: int) -> None:
    assert StatusRange.parse(text, "f") == StatusRange(low, high)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"statuses": ["6xx"]}, "select.statuses"),
        ({"statuses": "504-500"}, "select.statuses"),
        ({"statuses": "000-999"}, "select.statuses"),
        ({"exclude_statuses": [True]}, "select.exclude_statuses"),
        ({"body_regex": "(unclosed"}, "select.body_regex"),
        ({"include_non_retryable": "maybe"}, "select.include_non_retryable"),
        ({"status": "5xx"}, "select"),
    ],
)
def test_bad_selection_is_refused_naming_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        ErrorSelection.build(**raw)
    assert err.value.field == field


def test_non_retryable_header_alone_counts() -> None:
    message = DLQMessage(
        dlq_id="1-0", response_status=500, response_header={"Upstash-NonRetryable-Error": ("true",)}
    )
    assert ErrorSelection().skip_reason(message) == "non_retryable"


# --- labels ------------------------------------------------------------------------------


def test_audit_label_is_appended_to_each_runs_own_labels(
    world: Any, client: WorkflowDLQClient
) -> None:
    seed(world, 2, responseStatus=500, labels=["tenant-acme"])
    seed(world, 2, responseStatus=500, labels=["tenant-globex", "nightly"])
    audit = "airflow:nightly:scheduled__2026-11-25T00-00-00-00-00"

    Redrive(client, plan(audit_label=audit)).run()

    labels = sorted(tuple(run["labels"]) for run in new_runs(world))
    assert labels == [
        ("tenant-acme", audit),
        ("tenant-acme", audit),
        ("tenant-globex", "nightly", audit),
        ("tenant-globex", "nightly", audit),
    ]


def test_replace_mode_sends_only_the_new_labels(world: Any, client: WorkflowDLQClient) -> None:
    seed(world, 2, responseStatus=500, labels=["tenant-acme"])
    Redrive(client, plan(overrides=Overrides.build(label="redrive"), label_mode="replace")).run()
    assert [run["labels"] for run in new_runs(world)] == [["redrive"], ["redrive"]]


# --- restart when the code changed ----------------------------------------------------------


def _canary_over_changed_steps(
    world: Any, client: WorkflowDLQClient, **safety: Any
) -> tuple[Any, set[str], set[str]]:
    """3 entries that recover and 2 whose workflow code changed before the failed step:
    resume answers 200 for all, the 2 fail again into the DLQ with the SDK's error."""
    world.control.set_config(success_ratio=1.0)
    fine = seed(world, 3, responseStatus=500, createdAt=1_780_000_000_000)
    stuck = seed(world, 2, responseStatus=500, incompatibleStep=True, createdAt=1_780_000_000_000)
    policy = _fast(canary=5, canary_min_success_ratio=0.9, **safety)
    report = Redrive(client, plan(safety=policy), sleep=_advancing_sleep(world)).run()
    return report, fine, stuck


def test_a_changed_step_fails_the_canary_unless_restarts_are_on(
    world: Any, client: WorkflowDLQClient
) -> None:
    report, fine, stuck = _canary_over_changed_steps(world, client)

    assert set(resumed_ids(world)) == fine | stuck  # resume is never refused for it
    assert report.stopped == "canary"
    assert report.safety["canary"]["succeeded"] == 3
    assert resumed_ids(world, "restart") == []


def test_restart_incompatible_restarts_the_new_entries_up_to_the_cap(
    world: Any, client: WorkflowDLQClient
) -> None:
    report, _fine, stuck = _canary_over_changed_steps(
        world, client, restart_incompatible=True, max_restarts=1
    )

    assert report.stopped == "done"  # the changed steps are not "the bug is still live"
    assert report.safety["canary"]["restarted_incompatible"] == 2
    restarted = resumed_ids(world, "restart")
    assert len(restarted) == 1
    assert not set(restarted) & stuck  # the NEW entries the failed-again runs became
    assert report.counts["restarted_incompatible"] == 1
    assert report.counts["skipped_incompatible"] == 1
    pair = [r for r in report.runs if r["dlq_id"] == restarted[0]]
    assert pair
    assert pair[0]["paired_by"] == "single_id"


# --- pacing, metrics, retention ------------------------------------------------------------


def test_requests_are_paced_client_side(world: Any, client: WorkflowDLQClient) -> None:
    seed(world, 30, responseStatus=500)
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    Redrive(
        client,
        plan(pacing=Pacing(page_size=10, batch_size=10, requests_per_second=2.0)),
        sleep=sleep,
        monotonic=lambda: clock[0],
    ).run()

    calls = len(world.control.requests())
    assert calls >= 6  # 3 pages listed + 3 bulk resumes (+ the final empty page)
    assert sum(slept) == pytest.approx((calls - 1) * 0.5)


def test_every_count_is_also_a_metric(world: Any, client: WorkflowDLQClient) -> None:
    seed(world, 3, responseStatus=500)
    seed(world, 1, responseStatus=489)
    seen: dict[str, int] = {}

    def metric(name: str, n: int) -> None:
        seen[name] = seen.get(name, 0) + n

    report = Redrive(client, plan(), metrics=metric).run()
    assert dict(report.counts) == {"resumed": 3, "skipped_non_retryable": 1}
    assert seen == {**report.counts, "matched": 4}


def test_entries_left_that_expire_before_the_next_run_are_reported(
    world: Any, client: WorkflowDLQClient
) -> None:
    now = world.control.now_ms()
    old = seed(world, 2, responseStatus=489, createdAt=now - 3 * DAY_MS + 3_600_000)
    seed(world, 1, responseStatus=489, createdAt=now - 3_600_000)
    retention = Retention.build("3d", horizon_ms=DAY_MS)

    report = Redrive(client, plan(retention=retention), now_ms=lambda: now).run()

    assert report.counts["expiring_before_next_run"] == 2
    assert {item["dlq_id"] for item in report.expiring} == old
    assert report.to_state()["expiring"] == report.expiring


@pytest.mark.parametrize(
    ("value", "days"),
    [(3, 3.0), ("3d", 3.0), ("7 days", 7.0), ("1 week", 7.0), ("free", 3.0), ("payg", 7.0)],
)
def test_retention_forms(value: Any, days: float) -> None:
    assert parse_retention_days(value) == days


@pytest.mark.parametrize("value", ["3 months", "", 0, -1, True, "forever", 400])
def test_bad_retention_is_refused(value: Any) -> None:
    with pytest.raises(ValidationError, match="retention"):
        parse_retention_days(value)


# --- canary and circuit breaker -------------------------------------------------------------


def _fast(**kwargs: Any) -> SafetyPolicy:
    kwargs.setdefault("canary_timeout", 30.0)
    kwargs.setdefault("poll_interval", 0.01)  # the sleep is a fake that moves dev-server time
    return SafetyPolicy(**kwargs)


def _advancing_sleep(server: Any) -> Any:
    """Each wait of the follower moves the dev server's clock, so runs finish."""

    def sleep(seconds: float) -> None:
        server.control.advance_time(2)

    return sleep


def test_canary_that_fails_stops_after_n_and_pauses_the_key(
    world: Any, client: WorkflowDLQClient
) -> None:
    world.control.set_config(success_ratio_by_url={URL_A: 0.0})
    seed(world, 20, responseStatus=500, workflowUrl=URL_A)
    key = "airflow-redrive-test"
    safety = _fast(canary=5, canary_min_success_ratio=0.8, pause_on_trip=True)
    overrides = Overrides.build(flow_control_key=key)
    stream = io.StringIO()

    report = Redrive(
        client,
        plan(overrides=overrides, safety=safety),
        sink=JsonLinesSink(stream),
        sleep=_advancing_sleep(world),
    ).run()

    assert report.stopped == "canary"
    assert len(resumed_ids(world)) == 5
    assert report.safety["canary"]["passed"] is False
    assert report.safety["canary"]["succeeded"] == 0
    assert len(report.safety["canary"]["failed"]) == 5
    assert report.safety["paused"] == {"key": key, "by": "canary"}
    assert client.flow_control_state(key).is_paused is True
    assert report.counts["left_canary"] == 15
    events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert events.count("resumed") == 5
    assert "tripped" in events
    assert "paused" in events


def test_canary_that_passes_lets_the_redrive_go_on(world: Any, client: WorkflowDLQClient) -> None:
    world.control.set_config(success_ratio=1.0)
    seed(world, 12, responseStatus=500, workflowUrl=URL_B)
    safety = _fast(canary=4)

    report = Redrive(client, plan(safety=safety, count=5), sleep=_advancing_sleep(world)).run()

    assert report.stopped == "done"
    assert report.counts["resumed"] == 12
    assert report.safety["canary"]["passed"] is True
    assert report.safety["canary"]["size"] == 4


def test_breaker_trips_when_too_many_resumed_runs_fail_again(
    world: Any, client: WorkflowDLQClient
) -> None:
    world.control.set_config(success_ratio=0.0, run_seconds=0.0)
    seed(world, 60, responseStatus=500)
    safety = _fast(breaker_max_failure_ratio=0.5, breaker_min_finished=5, pause_on_trip=True)
    overrides = Overrides.build(flow_control_key="k1")

    seen: dict[str, int] = {}

    def metric(name: str, n: int) -> None:
        seen[name] = seen.get(name, 0) + n

    report = Redrive(
        client, plan(overrides=overrides, safety=safety, count=10), metrics=metric
    ).run()

    assert report.stopped == "circuit_breaker"
    assert seen["failed_again"] == report.safety["breaker"]["failed_again"]
    assert seen["tripped_circuit_breaker"] == 1
    assert report.counts["resumed"] == 10  # one batch, then the breaker looked and tripped
    assert report.safety["breaker"]["failed_again"] >= 5
    assert report.safety["paused"]["by"] == "circuit_breaker"
    assert len(world.control.entries()) == 60  # 50 never touched + 10 failed again


def test_pause_needs_a_flow_control_key() -> None:
    with pytest.raises(ValidationError, match="pause_on_trip"):
        plan(safety=SafetyPolicy(canary=2, pause_on_trip=True)).check()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"canary": 0.5}, "safety.canary"),
        ({"canary": "None"}, "safety.canary"),
        ({"canary": ""}, "safety.canary"),
        ({"canary_min_success_ratio": 1.5}, "safety.canary_min_success_ratio"),
        ({"breaker_max_failure_ratio": "half"}, "safety.breaker_max_failure_ratio"),
        ({"breaker_max_failure_ratio": "null"}, "safety.breaker_max_failure_ratio"),
        ({"canary_timeout": -1}, "safety.canary_timeout"),
        ({"poll_interval": 0}, "safety.poll_interval"),
        ({"breaker_max_failure_ratio": 1.0}, "safety.breaker_max_failure_ratio"),
        ({"max_restarts": 0}, "safety.max_restarts"),
    ],
)
def test_bad_safety_settings_are_refused(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        SafetyPolicy.build(**raw)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"label_mode": "merge"}, "label_mode"),
        ({"audit_label": "has space"}, "audit_label"),
        ({"audit_label": "two,labels"}, "audit_label"),
        ({"pacing": Pacing(requests_per_second=0)}, "pacing.requests_per_second"),
        ({"pacing": Pacing(concurrency=0)}, "pacing.concurrency"),
    ],
)
def test_bad_plan_settings_are_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        plan(**kwargs).check()
    assert err.value.field == field


def test_entries_left_by_max_resumes_are_scanned_for_expiry(
    world: Any, client: WorkflowDLQClient
) -> None:
    """A capped night leaves entries that no later window covers: name those that expire."""
    now = world.control.now_ms()
    old = seed(world, 6, responseStatus=500, createdAt=now - 3 * DAY_MS + 3_600_000)
    seed(world, 4, responseStatus=500, createdAt=now - 3_600_000)
    retention = Retention.build("3d", horizon_ms=DAY_MS)

    report = Redrive(
        client, plan(retention=retention, max_resumes=2, count=3), now_ms=lambda: now
    ).run()

    assert report.stopped == "max_resumes"
    resumed = set(resumed_ids(world))
    assert resumed < old  # oldest first
    assert report.counts["left_max_resumes"] == 8
    assert {item["dlq_id"] for item in report.expiring} == old - resumed


def test_a_stop_during_the_canary_wait_is_no_verdict(world: Any, client: WorkflowDLQClient) -> None:
    """Killed while waiting: the walk stops as killed, nothing trips, nothing is paused."""
    world.control.set_config(run_seconds=3600.0)  # the canary's runs never finish
    seed(world, 10, responseStatus=500)
    stop = {"now": False}

    def sleep(seconds: float) -> None:
        stop["now"] = True

    report = Redrive(
        client,
        plan(
            overrides=Overrides.build(flow_control_key="k2"),
            safety=_fast(canary=3, pause_on_trip=True),
        ),
        sleep=sleep,
        should_stop=lambda: stop["now"],
    ).run()

    assert report.stopped == "stopped"
    assert report.counts == {"resumed": 3, "left_stopped": 7}
    assert report.safety["canary"]["interrupted"] is True
    assert "paused" not in report.safety
    assert client.flow_control_state("k2").is_paused is False


def test_the_dry_run_table_never_prints_control_characters() -> None:
    from airflow_provider_wfdlq.recovery.plan import Item
    from airflow_provider_wfdlq.recovery.report import format_table

    shape = ("https://a.example.com", 500, None, (), "bin\x00ary\x1b[31m\nbody")
    table = format_table([Item.build("1-0", 1_780_000_000_000, "wfr_x", shape)], str)
    assert "\x00" not in table
    assert "\x1b" not in table
    assert "bin?ary?[31m body" in table

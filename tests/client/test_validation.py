"""Every validation rule: bad values are refused with a message that names the parameter and
shows the value, and (through the clients) before any request is sent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pendulum
import pytest

from airflow_provider_wfdlq.client import (
    DLQFilters,
    FlowControl,
    Overrides,
    ValidationError,
    WorkflowDLQClient,
    as_str_list,
    check_count,
    check_dlq_id,
    check_failure_function_states,
    check_labels,
    check_retries,
    check_retry_delay,
    check_run_id,
    check_url,
    parse_duration,
    parse_flow_control,
    to_unix_ms,
)
from tests.client.conftest import TOKEN, Api

MS = 1_752_829_295_505


def _period_only(value: Any, field: str) -> str:
    return parse_duration(value, field, allow_zero=False)


BAD_VALUES: list[tuple[Callable[[Any, str], Any], Any]] = [
    # durations
    (parse_duration, ""),
    (parse_duration, "10"),
    (parse_duration, "10x"),
    (parse_duration, "-5s"),
    (parse_duration, "1.5m"),
    (parse_duration, "5m1d"),
    (parse_duration, "1h 30m"),
    (parse_duration, "10S"),
    (parse_duration, "1d1d"),
    (parse_duration, -5),
    (parse_duration, True),
    (parse_duration, 1.5),
    (parse_duration, None),
    (parse_duration, dt.timedelta(seconds=1.5)),
    (_period_only, "0s"),
    # retry-delay expressions
    (check_retry_delay, ""),
    (check_retry_delay, "   "),
    (check_retry_delay, "retried ** 2"),
    (check_retry_delay, "import os"),
    (check_retry_delay, "foo(1)"),
    (check_retry_delay, "1 +"),
    (check_retry_delay, "(1"),
    (check_retry_delay, "1)"),
    (check_retry_delay, "retried retried"),
    (check_retry_delay, "__class__"),
    (check_retry_delay, "pow"),
    (check_retry_delay, "pow()"),
    (check_retry_delay, "max(1,)"),
    (check_retry_delay, "retried(1)"),
    (check_retry_delay, "1, 2"),
    (check_retry_delay, "(1, 2)"),
    (check_retry_delay, "1e3"),
    (check_retry_delay, "1\n+ 2"),
    (check_retry_delay, "retried; 1"),
    (check_retry_delay, "--retried"),
    (check_retry_delay, "(" * 60 + "1" + ")" * 60),
    (check_retry_delay, None),
    (check_retry_delay, -1),
    # flow control
    (parse_flow_control, ""),
    (parse_flow_control, "parallelism=0"),
    (parse_flow_control, "rate=-1"),
    (parse_flow_control, "speed=3"),
    (parse_flow_control, "parallelism=3, parallelism=4"),
    (parse_flow_control, "period=0s"),
    (parse_flow_control, "period=5x"),
    (parse_flow_control, "parallelism"),
    (parse_flow_control, {}),
    (parse_flow_control, {"rate": "ten"}),
    (parse_flow_control, {"burst": 1}),
    (parse_flow_control, 42),
    # times
    (to_unix_ms, 1_752_829_295),
    (to_unix_ms, "1752829295"),
    (to_unix_ms, True),
    (to_unix_ms, -1),
    (to_unix_ms, 0),
    (to_unix_ms, "yesterday"),
    (to_unix_ms, 1_752_829_295_505.5),
    (to_unix_ms, 10**16),
    (to_unix_ms, "2025-13-01"),
    (to_unix_ms, []),
    (to_unix_ms, dt.datetime(1960, 1, 1)),
    # failure-callback states
    (check_failure_function_states, "CALLBACK_DONE"),
    (check_failure_function_states, ["CALLBACK_FAIL", "nope"]),
    (check_failure_function_states, "callback_fail"),
    (check_failure_function_states, 5),
    # string lists and labels
    (as_str_list, 5),
    (as_str_list, [""]),
    (as_str_list, ["a,b"]),
    (as_str_list, [None]),
    (as_str_list, b"bytes"),
    (as_str_list, {"a": 1}),
    (check_labels, "has space"),
    (check_labels, "a,b"),
    (check_labels, "\u00fcber"),
    (check_labels, ["ok", "  "]),
    # URLs
    (check_url, "ftp://example.com"),
    (check_url, "example.com/path"),
    (check_url, "https://"),
    (check_url, "http:///path"),
    (check_url, "https://a b.example"),
    (check_url, 5),
    # counts and retries
    (check_count, 0),
    (check_count, -1),
    (check_count, True),
    (check_count, "ten"),
    (check_count, 1.0),
    (check_count, None),
    (check_retries, -1),
    (check_retries, "x"),
    (check_retries, True),
    (check_retries, 2.5),
    # identifiers
    (check_dlq_id, "abc"),
    (check_dlq_id, "1752829295505"),
    (check_dlq_id, "1752829295505-0/../x"),
    (check_dlq_id, "../1-1"),
    (check_dlq_id, ""),
    (check_dlq_id, 5),
    (check_run_id, ""),
    (check_run_id, "   "),
    (check_run_id, "wfr_a b"),
    (check_run_id, "wfr_a\tb"),
    (check_run_id, "wfr_a,b"),
    (check_run_id, "wfr_a@1752829295505"),
    (check_run_id, "wfr_a\x00"),
    (check_run_id, "wfr_a\x7f"),
    (check_run_id, 5),
]


@pytest.mark.parametrize(
    ("check", "value"), BAD_VALUES, ids=[f"{c.__name__}-{v!r}"[:60] for c, v in BAD_VALUES]
)
def test_bad_value_is_refused_naming_field_and_value(check: Any, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        check(value, "the_field")
    message = str(caught.value)
    assert message.startswith("the_field"), message
    assert caught.value.field.startswith("the_field")
    assert repr(value)[:40] in message
    assert "expected" in message
    assert caught.value.accepted
    assert isinstance(caught.value, ValueError)


def test_seconds_are_not_silently_read_as_milliseconds() -> None:
    with pytest.raises(ValidationError, match=r"unix SECONDS.*multiply by 1000.*1752829295000"):
        to_unix_ms(1_752_829_295, "from_date")


def test_suggestions_name_the_valid_states() -> None:
    with pytest.raises(ValidationError, match="CALLBACK_CANCELED, CALLBACK_FAIL"):
        check_failure_function_states("FAILED", "failure_function_state")


# --- accepted values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10s", "10s"),
        ("5m", "5m"),
        ("1d10h30m", "1d10h30m"),
        (" 90s ", "1m30s"),
        (90, "1m30s"),
        (0, "0s"),
        ("0s", "0s"),
        (dt.timedelta(hours=25), "1d1h"),
        ("1h0m", "1h"),
    ],
)
def test_durations_become_canonical(value: Any, expected: str) -> None:
    assert parse_duration(value, "delay") == expected


@pytest.mark.parametrize(
    "text",
    [
        "1000",
        "1000 * (1 + retried)",
        "pow(2, retried) * 100",
        "max(1000, min(retried * 500, 30000))",
        "-retried + 5",
        "floor(sqrt(retried)) * 1.5 / 2",
        "abs(exp(retried) - ceil(round(2.5)))",
        "1 - -2",
    ],
)
def test_retry_delay_expressions_pass_unchanged(text: str) -> None:
    assert check_retry_delay(f"  {text} ", "retry_delay") == text


def test_flow_control_from_text_in_any_order() -> None:
    parsed = parse_flow_control(" rate = 10 ,parallelism=3,period=60s", "flow_control")
    assert parsed == FlowControl(parallelism=3, rate=10, period="1m")
    assert parsed.header_value() == "parallelism=3, rate=10, period=1m"


def test_flow_control_subset_and_mapping() -> None:
    assert parse_flow_control("period=1h", "f").header_value() == "period=1h"
    mapping = {"parallelism": "2", "rate": None, "period": dt.timedelta(minutes=2)}
    assert parse_flow_control(mapping, "f").header_value() == "parallelism=2, period=2m"


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2025, 7, 18, 9, 1, 35, 505000, tzinfo=dt.UTC),
        dt.datetime(2025, 7, 18, 11, 1, 35, 505000, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(2025, 7, 18, 9, 1, 35, 505000),  # naive: UTC
        pendulum.datetime(2025, 7, 18, 9, 1, 35, 505000),
        "2025-07-18T09:01:35.505Z",
        "2025-07-18T09:01:35.505+00:00",
        1_752_829_295_505,
        "1752829295505",
        1_752_829_295_505.0,
    ],
)
def test_times_become_unix_ms(value: Any) -> None:
    assert to_unix_ms(value, "from_date") == 1_752_829_295_505


def test_date_is_midnight_utc() -> None:
    assert to_unix_ms(dt.date(2025, 7, 18), "d") == to_unix_ms("2025-07-18T00:00:00Z", "d")


def test_string_lists_strip_dedupe_and_keep_order() -> None:
    assert as_str_list(None, "f") == ()
    assert as_str_list(" a ", "f") == ("a",)
    assert as_str_list(["b", "a", "b"], "f") == ("b", "a")
    assert as_str_list({"b", "a"}, "f") == ("a", "b")
    assert check_labels(["team:x", "a.b/c@d-e_f"], "label") == ("team:x", "a.b/c@d-e_f")


def test_int_like_text_from_templates() -> None:
    assert check_count(" 10 ", "count") == 10
    assert check_retries("0", "retries") == 0
    assert check_dlq_id(" 1752829295505-0 ", "dlq_id") == "1752829295505-0"
    assert check_run_id("wfr_xE9pKv4R0s2hTq8yNc1aZ", "r") == "wfr_xE9pKv4R0s2hTq8yNc1aZ"


# --- filter and override objects ------------------------------------------------------------


def test_filters_refuse_unknown_names_with_a_hint() -> None:
    with pytest.raises(ValidationError, match=r"'labels'.*did you mean 'label'"):
        DLQFilters.build(labels="x")
    with pytest.raises(ValidationError, match=r"'workflowUrl'.*did you mean 'workflow_url'"):
        DLQFilters.build(workflowUrl="https://a.example")
    with pytest.raises(ValidationError, match=r"'retry'.*did you mean 'retries'"):
        Overrides.build(retry=3)


def test_filters_refuse_dlq_ids_with_other_filters() -> None:
    with pytest.raises(ValidationError, match="cannot be combined with label") as caught:
        DLQFilters.build(dlq_ids=["1-1"], label="x")
    assert caught.value.field == "dlq_ids"


def test_filters_check_date_order() -> None:
    with pytest.raises(ValidationError, match="is after to_date"):
        DLQFilters(from_date=MS + 1, to_date=MS)
    assert DLQFilters(from_date=MS, to_date=MS).to_params() == [
        ("fromDate", str(MS)),
        ("toDate", str(MS)),
    ]


def test_direct_construction_is_normalized_too() -> None:
    filters = DLQFilters(label="x", from_date="2025-07-18T09:01:35.505Z")  # type: ignore[arg-type]
    assert filters.label == ("x",)
    assert filters.from_date == MS
    with pytest.raises(ValidationError):
        DLQFilters(label="a,b")  # type: ignore[arg-type]


def test_flow_control_needs_a_key() -> None:
    with pytest.raises(ValidationError, match="without a flow_control_key") as caught:
        Overrides.build(flow_control="rate=1")
    assert caught.value.field == "flow_control"


def test_coerce_accepts_instances_mappings_and_none() -> None:
    filters = DLQFilters.build(label="x")
    assert DLQFilters.coerce(filters) is filters
    assert DLQFilters.coerce({"label": "x"}) == filters
    assert DLQFilters.coerce(None).is_empty()
    with pytest.raises(ValidationError, match="is not a DLQFilters"):
        DLQFilters.coerce("label=x")  # type: ignore[arg-type]
    assert Overrides.coerce(None).to_headers() == {}


# --- through the clients: refused before any request ----------------------------------------

GOOD_OVERRIDES = {"flow_control_key": "k"}

CLIENT_CASES: list[tuple[str, tuple[Any, ...], dict[str, Any], str, Any]] = [
    ("list_messages", (), {"count": 0}, "count", 0),
    ("list_messages", (), {"count": 101}, "count", 101),
    ("list_messages", (), {"count": True}, "count", True),
    ("list_messages", (), {"cursor": ""}, "cursor", ""),
    ("list_messages", ({"dlq_ids": ["1-1"]},), {}, "dlq_ids", ("1-1",)),
    ("list_messages", ({"labels": "x"},), {}, "DLQFilters", "labels"),
    ("list_messages", ({"from_date": 1_752_829_295},), {}, "from_date", 1_752_829_295),
    ("list_messages", ({"from_date": MS + 1, "to_date": MS},), {}, "from_date", MS + 1),
    ("list_messages", ({"workflow_url": "not a url"},), {}, "workflow_url", "not a url"),
    ("list_messages", ({"workflow_run_id": "run 1"},), {}, "workflow_run_id", "run 1"),
    ("list_messages", ({"flow_control_key": "a,b"},), {}, "flow_control_key", "a,b"),
    ("list_messages", (42,), {}, "filters", 42),
    ("iter_messages", (), {"count": 500}, "count", 500),
    ("get_message", ("abc",), {}, "dlq_id", "abc"),
    ("resume", ("../1-1",), {}, "dlq_id", "../1-1"),
    ("resume", ("1-1", {"delay": "10x"}), {}, "delay", "10x"),
    ("resume", ("1-1", {"retry_delay": "retried ** 2"}), {}, "retry_delay", "retried ** 2"),
    ("resume", ("1-1", {"flow_control": "rate=1"}), {}, "flow_control", "rate=1"),
    ("resume", ("1-1", {**GOOD_OVERRIDES, "flow_control": "rate=0"}), {}, "flow_control", "rate=0"),
    ("resume", ("1-1", {"failure_callback": "ftp://x"}), {}, "failure_callback", "ftp://x"),
    ("resume", ("1-1", {"retries": -1}), {}, "retries", -1),
    ("resume", ("1-1", {"label": "a b"}), {}, "label", "a b"),
    ("resume", ("1-1", {"retry": 3}), {}, "Overrides", "retry"),
    ("restart", ("1-1", {"flow_control_key": "a b"}), {}, "flow_control_key", "a b"),
    ("retry_failure_callback", ("x-1",), {}, "dlq_id", "x-1"),
    ("cancel_failure_callback", (None,), {}, "dlq_id", None),
    ("delete", ("1752829295505",), {}, "dlq_id", "1752829295505"),
    ("resume_bulk", (), {}, "filters", None),
    ("resume_bulk", ({},), {"all": "True"}, "all", "True"),
    ("resume_bulk", ({"dlq_ids": ["1-1"]},), {"cursor": "abc"}, "cursor", "abc"),
    ("resume_bulk", ({"dlq_ids": "1-1", "label": "x"},), {}, "dlq_ids", ("1-1",)),
    ("resume_bulk", ({"label": "x"},), {"count": -3}, "count", -3),
    ("restart_bulk", ({"failure_function_state": "DONE"},), {}, "failure_function_state", "DONE"),
    ("restart_bulk", (None, {"delay": "5m1d"}), {"all": True}, "delay", "5m1d"),
    ("iter_resume_bulk", (), {}, "filters", None),
    ("iter_restart_bulk", ({"to_date": "soon"},), {}, "to_date", "soon"),
    ("delete_bulk", (), {}, "filters", None),
    ("delete_bulk", ({"caller_ip": "not-an-ip"},), {}, "caller_ip", "not-an-ip"),
    ("run_logs", (), {"state": "RUN_DONE"}, "state", "RUN_DONE"),
    ("run_logs", (), {"workflow_runs": [("b,ad", MS)]}, "workflow_runs", "b,ad"),
    ("run_logs", (), {"workflow_runs": [("wfr_a", 1_752_829_295)]}, "workflow_runs", 1752829295),
    ("run_logs", (), {"count": 0}, "count", 0),
    ("run_logs", (), {"bogus": 1}, "RunLogFilters", "bogus"),
    (
        "run_logs",
        (),
        {"workflow_run_id": "wfr_a", "workflow_runs": [("wfr_b", MS)]},
        "workflow_runs",
        (("wfr_b", MS),),
    ),
    ("iter_run_logs", (), {"label": ","}, "label", ","),
]


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "field", "value"),
    CLIENT_CASES,
    ids=[f"{case[0]}-{case[3]}-{index}" for index, case in enumerate(CLIENT_CASES)],
)
async def test_client_refuses_before_any_request(
    make_api: Callable[..., Api],
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    field: str,
    value: Any,
) -> None:
    api = make_api()
    run = api.collect if method.startswith("iter_") else api.call
    with pytest.raises(ValidationError) as caught:
        await run(method, *args, **kwargs)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert repr(value) in str(caught.value)
    assert api.server.requests == []


def test_iterators_check_arguments_when_called_not_when_iterated() -> None:
    client = WorkflowDLQClient(TOKEN)
    with pytest.raises(ValidationError, match="selects the whole DLQ"):
        client.iter_resume_bulk()
    client.close()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"token": ""}, "token"),
        ({"token": None}, "token"),
        ({"token": "two words"}, "token"),
        ({"base_url": "ftp://qstash.upstash.io"}, "base_url"),
        ({"base_url": "qstash.upstash.io"}, "base_url"),
        ({"base_url": "https://qstash.upstash.io/?qstash_token=x"}, "base_url"),
        ({"base_url": "https://user:pw@qstash.upstash.io"}, "base_url"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "30"}, "timeout"),
        ({"retry": 3}, "retry"),
    ],
)
def test_constructor_checks(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"token": TOKEN, **kwargs}
    with pytest.raises(ValidationError) as caught:
        WorkflowDLQClient(**arguments)
    assert caught.value.field == field
    if field == "token":
        assert "two words" not in str(caught.value)

"""The checkers of client/validation.py one by one, at their boundaries: what each accepts,
what it returns, and that every refusal names the field. (The filters and constructors that
use them are in test_validation.py.)"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from airflow_provider_wfdlq.client import ValidationError
from airflow_provider_wfdlq.client.validation import (
    FlowControl,
    as_str_list,
    check_bool,
    check_count,
    check_dlq_id,
    check_failure_function_states,
    check_flow_control_key,
    check_labels,
    check_ratio,
    check_retries,
    check_retry_delay,
    check_run_id,
    check_run_state,
    check_url,
    parse_duration,
    parse_flow_control,
    to_unix_ms,
)


def refused(check: Any, value: Any, *args: Any, **kwargs: Any) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        check(value, "the.field", *args, **kwargs)
    assert err.value.field == "the.field"
    assert err.value.value is value
    return err.value


# --- bools and ratios ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("True", True),
        ("False", False),
        ("true", True),
        ("false", False),
        (" TRUE ", True),
        ("\tFalse\n", False),
    ],
)
def test_check_bool_accepts_bools_and_their_text(value: Any, expected: bool) -> None:
    assert check_bool(value, "f") is expected


@pytest.mark.parametrize("value", [1, 0, None, "", "yes", "no", "1", "0", "T", "truthy", [True]])
def test_check_bool_refuses_everything_else(value: Any) -> None:
    error = refused(check_bool, value)
    assert error.accepted == "True or False"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0.0),
        (1, 1.0),
        (0.0, 0.0),
        (1.0, 1.0),
        (0.9, 0.9),
        ("0.9", 0.9),
        (" 0.5 ", 0.5),
        ("1", 1.0),
        ("0", 0.0),
        ("1e-3", 0.001),
    ],
)
def test_check_ratio_accepts_0_to_1_inclusive(value: Any, expected: float) -> None:
    ratio = check_ratio(value, "f")
    assert ratio == expected
    assert isinstance(ratio, float)


@pytest.mark.parametrize(
    "value",
    [
        -0.0001,
        1.0001,
        -1,
        2,
        "1.5",
        "-0.1",
        "half",
        "",
        None,
        True,
        False,
        math.nan,
        math.inf,
        "nan",
        [0.5],
    ],
)
def test_check_ratio_refuses_everything_else(value: Any) -> None:
    error = refused(check_ratio, value)
    assert "from 0 to 1" in error.accepted


# --- counts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(1, 1), ("1", 1), (" 7 ", 7), ("+3", 3), (10**9, 10**9)]
)
def test_check_count(value: Any, expected: int) -> None:
    assert check_count(value, "f") == expected


@pytest.mark.parametrize("value", [0, -1, "0", "-2", True, False, 1.0, "1.0", "", None, "x"])
def test_check_count_refuses(value: Any) -> None:
    refused(check_count, value)


@pytest.mark.parametrize(("value", "expected"), [(0, 0), ("0", 0), (3, 3), ("-0", 0)])
def test_check_retries(value: Any, expected: int) -> None:
    assert check_retries(value, "f") == expected


@pytest.mark.parametrize("value", [-1, "-1", True, 2.0, None, "three"])
def test_check_retries_refuses(value: Any) -> None:
    refused(check_retries, value)


# --- durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0s"),
        ("0s", "0s"),
        (1, "1s"),
        (59, "59s"),
        (60, "1m"),
        (61, "1m1s"),
        (3600, "1h"),
        (86400, "1d"),
        (90061, "1d1h1m1s"),
        ("1d10h30m", "1d10h30m"),
        ("90m", "1h30m"),
        (" 10s ", "10s"),
        (dt.timedelta(minutes=2), "2m"),
        (dt.timedelta(0), "0s"),
    ],
)
def test_parse_duration(value: Any, expected: str) -> None:
    assert parse_duration(value, "f") == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "10",
        "1s1m",
        "1x",
        "-5s",
        -1,
        True,
        1.5,
        None,
        dt.timedelta(seconds=1.5),
        dt.timedelta(seconds=-1),
    ],
)
def test_parse_duration_refuses(value: Any) -> None:
    refused(parse_duration, value)


def test_zero_is_refused_only_where_it_means_nothing() -> None:
    assert parse_duration("0s", "f", allow_zero=True) == "0s"
    error = refused(parse_duration, "0s", allow_zero=False)
    assert "positive" in error.accepted
    assert parse_duration("1s", "f", allow_zero=False) == "1s"


# --- retry delay ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "0"), (1500, "1500"), (" 1000 * (1 + retried) ", "1000 * (1 + retried)")],
)
def test_check_retry_delay(value: Any, expected: str) -> None:
    assert check_retry_delay(value, "f") == expected


@pytest.mark.parametrize("value", [-1, True, None, 1.5, "1000 *", "os.system('x')", "retried("])
def test_check_retry_delay_refuses(value: Any) -> None:
    refused(check_retry_delay, value)


# --- flow control --------------------------------------------------------------------------


def test_flow_control_forms_and_header() -> None:
    full = parse_flow_control("rate=10, period=90s, parallelism=3", "f")
    assert full == FlowControl(parallelism=3, rate=10, period="90s")
    assert full.header_value() == "parallelism=3, rate=10, period=90s"
    assert parse_flow_control({"rate": "1", "period": None}, "f") == FlowControl(rate=1)
    assert parse_flow_control(FlowControl(period="1m30s"), "f") == FlowControl(period="90s")
    assert parse_flow_control("period=120s", "f").period == "2m"
    assert parse_flow_control("period=1d", "f").period == "1d"
    assert parse_flow_control({"period": 3600}, "f").period == "1h"
    with pytest.raises(ValidationError, match="sets no key"):
        parse_flow_control(FlowControl(), "f")
    assert FlowControl(rate=5).header_value() == "rate=5"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "rate",
        "rate=0",
        "rate=-1",
        "parallelism=x",
        "speed=3",
        "rate=1, rate=2",
        "period=0s",
        "period=soon",
        "period=3600",
        {},
        {"rate": None},
        42,
        None,
    ],
)
def test_flow_control_refuses(value: Any) -> None:
    refused(parse_flow_control, value)


# --- time ----------------------------------------------------------------------------------

MS = 1752829295505


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (MS, MS),
        (str(MS), MS),
        (float(MS), MS),
        (10**11, 10**11),  # the smallest accepted
        (10**13 - 1, 10**13 - 1),  # the largest accepted
        (dt.datetime(2025, 7, 18, 9, 1, 35, 505000, tzinfo=dt.UTC), MS),
        (dt.datetime(2025, 7, 18, 9, 1, 35, 505000), MS),  # naive is UTC
        (
            dt.datetime(2025, 7, 18, 11, 1, 35, 505000, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            MS,
        ),
        ("2025-07-18T09:01:35.505Z", MS),
        ("2025-07-18T09:01:35.505", MS),
        (dt.date(2025, 7, 18), 1752796800000),
    ],
)
def test_to_unix_ms(value: Any, expected: int) -> None:
    assert to_unix_ms(value, "f") == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (10**11 - 1, "SECONDS"),
        (10**8, "SECONDS"),
        (1752829295, "SECONDS"),
        (10**8 - 1, "plausible"),
        (0, "plausible"),
        (-1, "plausible"),
        (10**13, "too large"),
        (str(10**16), "too large"),
        (True, "is not a time"),
        (float(MS) + 0.5, "is not a time"),
        (math.nan, "is not a time"),
        ("yesterday", "is not a time"),
        ("", "is not a time"),
        (None, "is not a time"),
        (dt.date(1970, 1, 2), "plausible"),
    ],
)
def test_to_unix_ms_refuses(value: Any, problem: str) -> None:
    error = refused(to_unix_ms, value)
    assert problem in str(error)


def test_seconds_get_the_millisecond_value_to_use() -> None:
    error = refused(to_unix_ms, 1752829295)
    assert "1752829295000" in error.accepted


# --- strings, lists, labels, urls ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ()),
        ("a", ("a",)),
        (" a ", ("a",)),
        (["b", "a", "b"], ("b", "a")),
        ({"b", "a"}, ("a", "b")),
        (frozenset({"z", "y"}), ("y", "z")),
        (("x", " x"), ("x",)),
        ([], ()),
    ],
)
def test_as_str_list(value: Any, expected: tuple[str, ...]) -> None:
    assert as_str_list(value, "f") == expected


@pytest.mark.parametrize(
    "value", ["a,b", "", " ", ["a", ""], ["a", 1], b"ab", {"a": 1}, 3, [" ,x"]]
)
def test_as_str_list_refuses(value: Any) -> None:
    refused(as_str_list, value)


def test_labels() -> None:
    assert check_labels(["team:pay", "v1.2", "a_b-c/d@e"], "f") == ("team:pay", "v1.2", "a_b-c/d@e")
    for bad in (["has space"], ["semi;colon"], ["é"]):
        refused(check_labels, bad)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://example.com/api", "https://example.com/api"),
        (" http://localhost:8080/x ", "http://localhost:8080/x"),
        ("https://[::1]:9/", "https://[::1]:9/"),
    ],
)
def test_check_url(value: str, expected: str) -> None:
    assert check_url(value, "f") == expected


@pytest.mark.parametrize(
    "value",
    [
        "example.com",
        "ftp://example.com",
        "https://",
        "https:///path",
        "https://a b.com",
        "http://[::1",
        None,
        42,
        "",
    ],
)
def test_check_url_refuses(value: Any) -> None:
    refused(check_url, value)


def test_flow_control_keys() -> None:
    assert check_flow_control_key(" my-key ", "f") == "my-key"
    for bad in ("", " ", "a b", "a,b", None, 5):
        refused(check_flow_control_key, bad)


# --- ids and states ------------------------------------------------------------------------


def test_dlq_ids() -> None:
    assert check_dlq_id(" 1752829295505-0 ", "f") == "1752829295505-0"
    for bad in ("1752829295505", "abc-0", "1-0-0", "-0", "1-", "", None, 17528):
        refused(check_dlq_id, bad)


def test_run_ids() -> None:
    assert check_run_id(" wfr_order.1 ", "f") == "wfr_order.1"
    assert check_run_id("my-workflow", "f") == "my-workflow"
    for bad, shown in (
        ("a b", "' '"),
        ("a,b", "','"),
        ("a@b", "'@'"),
        ("a\x00b", "'\\x00'"),
        ("a\x7fb", "'\\x7f'"),
    ):
        error = refused(check_run_id, bad)
        assert shown in error.problem
    empty: tuple[Any, ...] = ("", "  ", None, 5)
    for nothing in empty:
        refused(check_run_id, nothing)


def test_states() -> None:
    assert check_failure_function_states(None, "f") == ()
    assert check_failure_function_states("CALLBACK_FAIL", "f") == ("CALLBACK_FAIL",)
    assert check_failure_function_states(
        [" CALLBACK_FAIL", "CALLBACK_SUCCESS", "CALLBACK_FAIL"], "f"
    ) == ("CALLBACK_FAIL", "CALLBACK_SUCCESS")
    for bad in ("NOPE", ["CALLBACK_FAIL", "x"], [1], 5, {"CALLBACK_FAIL": 1}):
        refused(check_failure_function_states, bad)
    assert check_run_state(" RUN_FAILED ", "f") == "RUN_FAILED"
    not_one: tuple[Any, ...] = ("RUN_NOPE", ["RUN_FAILED"], None, "")
    for wrong in not_one:
        refused(check_run_state, wrong)


@pytest.mark.parametrize(
    "value",
    [float(10**13), 1e9, "2300-01-01T00:00:00Z", "1970-01-02T00:00:00", dt.datetime(1970, 1, 2)],
)
def test_every_form_of_a_time_is_refused_naming_its_field_and_value(value: Any) -> None:
    refused(to_unix_ms, value)

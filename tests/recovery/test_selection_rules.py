"""Which DLQ entries a redrive acts on: each selection rule alone, then combined, and the
default that leaves non-retryable (489) entries alone. Unit level: no server, no Airflow
(the end-to-end paths are in test_policies.py)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_wfdlq.client import DLQMessage, ValidationError
from airflow_provider_wfdlq.recovery.selection import (
    SKIP_REASONS,
    ErrorSelection,
    StatusRange,
    is_non_retryable,
)

STEP = "https://api.example.com/pay/charge"


def entry(
    status: int | None = 500,
    body: str | None = "boom",
    url: str | None = STEP,
    header: dict[str, list[str]] | None = None,
) -> DLQMessage:
    return DLQMessage(
        dlq_id="1752829295505-0",
        url=url,
        response_status=status,
        response_body=body,
        response_header={name: tuple(values) for name, values in (header or {}).items()},
    )


def reason(selection: ErrorSelection | dict[str, Any], message: DLQMessage) -> str | None:
    return ErrorSelection.coerce(selection).skip_reason(message)


# --- non-retryable: skipped unless asked for ---------------------------------------------


def test_489s_are_skipped_by_default_however_the_selection_is_made() -> None:
    assert ErrorSelection().include_non_retryable is False
    assert ErrorSelection.build().include_non_retryable is False
    assert ErrorSelection.coerce(None).include_non_retryable is False
    assert ErrorSelection.coerce({"statuses": "4xx"}).include_non_retryable is False
    for selection in (ErrorSelection(), ErrorSelection.build(), ErrorSelection.coerce({})):
        assert selection.skip_reason(entry(489)) == "non_retryable"
        assert selection.skip_reason(entry(500)) is None


@pytest.mark.parametrize("flag", [True, "True", "true"])
def test_489s_are_acted_on_when_asked_for(flag: Any) -> None:
    assert reason({"include_non_retryable": flag}, entry(489)) is None


@pytest.mark.parametrize(
    ("status", "header", "non_retryable"),
    [
        (489, {}, True),
        (488, {}, False),
        (490, {}, False),
        (500, {"Upstash-NonRetryable-Error": ["true"]}, True),
        (500, {"upstash-nonretryable-error": [" TRUE "]}, True),
        (500, {"UPSTASH-NONRETRYABLE-ERROR": ["false", "true"]}, True),
        (500, {"Upstash-NonRetryable-Error": ["false"]}, False),
        (500, {"Upstash-NonRetryable-Error": []}, False),
        (500, {"Upstash-NonRetryable-Error": ["yes"]}, False),
        (500, {"X-Other": ["true"]}, False),
        (500, {"X-Other": ["x"], "Upstash-NonRetryable-Error": ["true"]}, True),
        (None, {}, False),
    ],
)
def test_non_retryable_is_489_or_the_header(
    status: int | None, header: dict[str, list[str]], non_retryable: bool
) -> None:
    message = entry(status, header=header)
    assert is_non_retryable(message) is non_retryable
    assert reason({}, message) == ("non_retryable" if non_retryable else None)


def test_non_retryable_is_checked_before_every_other_rule() -> None:
    assert reason({"statuses": "5xx"}, entry(489)) == "non_retryable"
    assert reason({"statuses": "489"}, entry(489)) == "non_retryable"


# --- statuses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "status", "skipped"),
    [
        ("503", 503, False),
        ("503", 502, True),
        ("503", 504, True),
        ("5xx", 500, False),
        ("5xx", 599, False),
        ("5xx", 499, True),
        ("5xx", 600, True),
        ("500-504", 500, False),
        ("500-504", 504, False),
        ("500-504", 499, True),
        ("500-504", 505, True),
        ("500,502", 502, False),
        ("500,502", 501, True),
        (["4xx", 503], 404, False),
        (["4xx", 503], 503, False),
        (["4xx", 503], 500, True),
        ("5xx", None, True),  # no status at all is in no range
    ],
)
def test_statuses_keep_only_those_listed(rule: Any, status: int | None, skipped: bool) -> None:
    assert reason({"statuses": rule}, entry(status)) == ("status" if skipped else None)


@pytest.mark.parametrize(
    ("rule", "status", "skipped"),
    [
        ("503", 503, True),
        ("503", 502, False),
        ("500-502", 500, True),
        ("500-502", 502, True),
        ("500-502", 503, False),
        ("5xx", 404, False),
        (["404", "5xx"], 404, True),
        ("5xx", None, False),
    ],
)
def test_exclude_statuses_drop_those_listed(rule: Any, status: int | None, skipped: bool) -> None:
    assert reason({"exclude_statuses": rule}, entry(status)) == ("status" if skipped else None)


@pytest.mark.parametrize(
    ("text", "low", "high", "shown"),
    [
        (503, 503, 503, "503"),
        ("503", 503, 503, "503"),
        (" 503 ", 503, 503, "503"),
        ("5xx", 500, 599, "5xx"),
        ("5XX", 500, 599, "5xx"),
        ("1xx", 100, 199, "1xx"),
        ("500-504", 500, 504, "500-504"),
        ("500 - 504", 500, 504, "500-504"),
        ("500-500", 500, 500, "500"),
        ("100-599", 100, 599, "100-599"),
        ("400-499", 400, 499, "4xx"),
        ("450-549", 450, 549, "450-549"),
        (100, 100, 100, "100"),
        (599, 599, 599, "599"),
    ],
)
def test_status_ranges_parse_and_print(text: Any, low: int, high: int, shown: str) -> None:
    parsed = StatusRange.parse(text, "f")
    assert (parsed.low, parsed.high, str(parsed)) == (low, high, shown)


@pytest.mark.parametrize(
    "text",
    [
        99,
        600,
        "099",
        "600",
        "6xx",
        "0xx",
        "x5xx",
        "504-500",
        "500-600",
        "50-504",
        "5.0",
        True,
        5.0,
        None,
        "",
        "abc",
        "500-",
        "1000",
        Decimal(503),  # ints and text only, even if its text would do
    ],
)
def test_bad_status_ranges_are_refused(text: Any) -> None:
    with pytest.raises(ValidationError) as err:
        StatusRange.parse(text, "select.statuses")
    assert err.value.field == "select.statuses"


def test_a_range_holds_its_bounds_and_ints_only() -> None:
    rng = StatusRange(500, 504)
    assert [s in rng for s in (499, 500, 502, 504, 505)] == [False, True, True, True, False]
    assert "502" not in rng
    assert None not in rng


@pytest.mark.parametrize("empty", [None, "", ()])
def test_no_statuses_is_no_rule(empty: Any) -> None:
    selection = ErrorSelection.build(statuses=empty, exclude_statuses=empty)
    assert (selection.statuses, selection.exclude_statuses) == ((), ())
    assert selection.skip_reason(entry(418)) is None


def test_statuses_come_as_text_lists_sets_and_ints() -> None:
    build = ErrorSelection.build
    assert build(statuses="500, 5xx").statuses == (StatusRange(500, 500), StatusRange(500, 599))
    assert build(statuses=[503, "4xx"]).statuses == (StatusRange(503, 503), StatusRange(400, 499))
    assert build(statuses=frozenset({503})).statuses == (StatusRange(503, 503),)
    assert build(statuses={"502,503"}).statuses == (StatusRange(502, 502), StatusRange(503, 503))
    assert build(statuses=(" 404 ",)).statuses == (StatusRange(404, 404),)
    assert build(exclude_statuses=404).exclude_statuses == (StatusRange(404, 404),)


# --- bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "body", "skipped"),
    [
        ("timeout", "upstream timeout after 30s", False),  # searched, not matched whole
        ("timeout", "connection refused", True),
        ("^timeout$", "a timeout", True),
        ("timeout", None, True),  # no body has no match
        ("^$", None, False),  # ... and is searched as ""
    ],
)
def test_body_regex_keeps_only_matching_bodies(rule: str, body: str | None, skipped: bool) -> None:
    assert reason({"body_regex": rule}, entry(body=body)) == ("body" if skipped else None)


@pytest.mark.parametrize(
    ("rule", "body", "skipped"),
    [
        ("card declined", "error: card declined by bank", True),
        ("card declined", "upstream timeout", False),
        ("^card", "the card", False),
        ("declined", None, False),
        ("^$", None, True),
    ],
)
def test_exclude_body_regex_really_excludes(rule: str, body: str | None, skipped: bool) -> None:
    assert reason({"exclude_body_regex": rule}, entry(body=body)) == ("body" if skipped else None)


def test_body_rules_take_compiled_patterns_and_refuse_bad_ones() -> None:
    pattern = re.compile("TIMEOUT", re.IGNORECASE)
    selection = ErrorSelection.build(body_regex=pattern, exclude_body_regex="")
    assert selection.body_regex is pattern
    assert selection.exclude_body_regex is None
    assert selection.skip_reason(entry(body="timeout")) is None
    for field in ("body_regex", "exclude_body_regex"):
        with pytest.raises(ValidationError) as err:
            ErrorSelection.build(**{field: "(unclosed"})
        assert err.value.field == f"select.{field}"
        with pytest.raises(ValidationError) as err:
            ErrorSelection.build(**{field: 42})
        assert err.value.field == f"select.{field}"


# --- step urls -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "url", "skipped"),
    [
        (["https://api.example.com/*"], STEP, False),
        (["https://api.example.com/pay/charge"], STEP, False),
        (["https://api.example.com/pay"], STEP, True),  # a glob matches the whole url
        (["https://other.example.com/*", "*/charge"], STEP, False),
        (["https://API.example.com/*"], STEP, True),  # case matters
        (["https://api.example.com/*"], None, True),
        (["*"], None, False),
        (["X*"], None, True),  # no url is the empty text, which only "*" matches
        ("https://api.example.com/*", STEP, False),
    ],
)
def test_step_urls_keep_only_matching_steps(rule: Any, url: str | None, skipped: bool) -> None:
    assert reason({"step_urls": rule}, entry(url=url)) == ("step_url" if skipped else None)


# --- combined ------------------------------------------------------------------------------

ALL_RULES: dict[str, Any] = {
    "statuses": "5xx",
    "exclude_statuses": "501",
    "body_regex": "timeout",
    "exclude_body_regex": "card",
    "step_urls": ["https://api.example.com/*"],
}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (entry(503, "timeout"), None),  # passes every rule
        (entry(489, "timeout"), "non_retryable"),
        (entry(404, "timeout"), "status"),
        (entry(501, "timeout"), "status"),
        (entry(503, "refused"), "body"),
        (entry(503, "card timeout"), "body"),
        (entry(503, "timeout", url="https://evil.example.com/x"), "step_url"),
        (entry(404, "refused", url=None), "status"),  # the first failing rule is named
        (entry(503, "card", url=None), "body"),
    ],
)
def test_every_given_rule_must_pass(message: DLQMessage, expected: str | None) -> None:
    assert reason(ALL_RULES, message) == expected
    assert expected is None or expected in SKIP_REASONS


def test_each_rule_alone_decides_its_case() -> None:
    bad = entry(404, "card", url="https://evil.example.com/x")
    for name, rule in ALL_RULES.items():
        alone = reason({name: rule}, bad)
        expected: dict[str, str | None] = {
            "statuses": "status",
            "body_regex": "body",
            "exclude_body_regex": "body",
            "step_urls": "step_url",
            "exclude_statuses": None,
        }
        assert alone == expected[name], name


# --- building ------------------------------------------------------------------------------


def test_build_keeps_every_rule() -> None:
    selection = ErrorSelection.build(**ALL_RULES, include_non_retryable="False")
    assert selection == ErrorSelection(
        statuses=(StatusRange(500, 599),),
        exclude_statuses=(StatusRange(501, 501),),
        body_regex=re.compile("timeout"),
        exclude_body_regex=re.compile("card"),
        step_urls=("https://api.example.com/*",),
        include_non_retryable=False,
    )
    assert ErrorSelection.coerce(selection) is selection
    assert ErrorSelection.build(step_urls=None).step_urls == ()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"status": "5xx"}, "select"),
        ({"statuses": "7xx"}, "select.statuses"),
        ({"exclude_statuses": "abc"}, "select.exclude_statuses"),
        ({"step_urls": "a,b"}, "select.step_urls"),
        ({"include_non_retryable": "yes"}, "select.include_non_retryable"),
        ({"include_non_retryable": 1}, "select.include_non_retryable"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        ErrorSelection.build(**raw)
    assert err.value.field == field


def test_coerce_refuses_what_is_not_a_mapping() -> None:
    with pytest.raises(ValidationError) as err:
        ErrorSelection.coerce("5xx")  # type: ignore[arg-type]
    assert err.value.field == "select"


def test_describe_says_the_rules_in_words() -> None:
    assert ErrorSelection().describe() == "489s skipped"
    several = ErrorSelection.build(
        statuses="500, 503", exclude_statuses=["404", "410"], step_urls=["a*", "b*"]
    )
    assert several.describe() == (
        "status in 500, 503; status not in 404, 410; step url like a*, b*; 489s skipped"
    )
    assert ErrorSelection.build(**ALL_RULES, include_non_retryable=True).describe() == (
        "status in 5xx; status not in 501; body matches /timeout/; body does not match /card/; "
        "step url like https://api.example.com/*; non-retryable (489) included"
    )

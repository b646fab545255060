"""Server-side parsing of the `Upstash-*` override headers of resume and restart.

Written independently of the project's client on purpose: the emulator is what the
client is tested against, so it must not share the client's idea of a valid header.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from airflow_provider_wfdlq.devserver.errors import bad_request

_T = TypeVar("_T")

DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
RETRY_DELAY_FUNCTIONS = {"pow", "exp", "sqrt", "abs", "floor", "ceil", "round", "min", "max"}
FLOW_CONTROL_PARTS = ("parallelism", "rate", "period")

HEADER_NAMES = (
    "Upstash-Retries",
    "Upstash-Delay",
    "Upstash-Retry-Delay",
    "Upstash-Flow-Control-Key",
    "Upstash-Flow-Control-Value",
    "Upstash-Label",
    "Upstash-Failure-Callback",
)


@dataclass(frozen=True)
class Overrides:
    """Parsed overrides; `recorded` keeps the raw header values the client sent."""

    retries: int | None = None
    delay_seconds: int | None = None
    retry_delay: str | None = None
    flow_control_key: str | None = None
    flow_control_value: dict[str, int | str] | None = None
    labels: list[str] | None = None
    failure_callback: str | None = None
    recorded: dict[str, str] = field(default_factory=dict)


def parse_duration_seconds(text: str) -> int | None:
    """`10s`, `5m`, `1d10h30m` -> seconds; None when it is not such a duration."""
    match = DURATION.match(text.strip())
    if match is None or not text.strip():
        return None
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _check_retry_delay(expression: str) -> None:
    """A sanity check, not an evaluator: numbers, + - * / %, parentheses, `retried` and
    the documented functions, nothing else."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        raise bad_request(f"invalid Upstash-Retry-Delay: {expression!r}") from error
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in RETRY_DELAY_FUNCTIONS):
                raise bad_request(f"invalid Upstash-Retry-Delay: {expression!r}")
            if node.keywords:
                raise bad_request(f"invalid Upstash-Retry-Delay: {expression!r}")
        elif isinstance(node, ast.Name):
            if node.id != "retried" and node.id not in RETRY_DELAY_FUNCTIONS:
                raise bad_request(f"unknown variable in Upstash-Retry-Delay: {node.id!r}")
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise bad_request(f"invalid Upstash-Retry-Delay: {expression!r}")
        elif not isinstance(
            node,
            ast.Expression
            | ast.BinOp
            | ast.UnaryOp
            | ast.Add
            | ast.Sub
            | ast.Mult
            | ast.Div
            | ast.Mod
            | ast.USub
            | ast.UAdd
            | ast.Load,
        ):
            raise bad_request(f"invalid Upstash-Retry-Delay: {expression!r}")


def _parse_flow_control_value(text: str) -> dict[str, int | str]:
    """`parallelism=3, rate=10, period=1m`, any subset, in that order."""
    parsed: dict[str, int | str] = {}
    last_index = -1
    for part in text.split(","):
        name, equals, value = part.strip().partition("=")
        if not equals or name not in FLOW_CONTROL_PARTS:
            raise bad_request(f"invalid Upstash-Flow-Control-Value: {text!r}")
        index = FLOW_CONTROL_PARTS.index(name)
        if index <= last_index:
            raise bad_request(
                "Upstash-Flow-Control-Value parts must be parallelism, rate, period, in order"
            )
        last_index = index
        if name == "period":
            if parse_duration_seconds(value) is None:
                raise bad_request(f"invalid flow control period: {value!r}")
            parsed[name] = value
        else:
            if not value.isdigit() or int(value) < 1:
                raise bad_request(f"flow control {name} must be a positive integer")
            parsed[name] = int(value)
    return parsed


def _parse_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise bad_request(f"Upstash-Failure-Callback must be an absolute http(s) URL: {text!r}")
    return text


def _parse_retries(text: str) -> int:
    if not text.strip().isdigit():
        raise bad_request(f"Upstash-Retries must be an integer >= 0: {text!r}")
    return int(text)


def _parse_delay(text: str) -> int:
    seconds = parse_duration_seconds(text)
    if seconds is None:
        raise bad_request(f"invalid Upstash-Delay duration: {text!r}")
    return seconds


def _parse_labels(text: str) -> list[str]:
    labels = [part.strip() for part in text.split(",")]
    if not all(labels):
        raise bad_request(f"invalid Upstash-Label: {text!r}")
    return labels


def _parse_flow_control_key(text: str) -> str:
    if not text.strip():
        raise bad_request("Upstash-Flow-Control-Key must not be empty")
    return text


def parse_overrides(headers: Mapping[str, str]) -> Overrides:
    """Validate the override headers (case-insensitive mapping); 400 on a bad value."""
    recorded = {name: headers[name] for name in HEADER_NAMES if name in headers}
    raw = recorded.get
    retry_delay = raw("Upstash-Retry-Delay")
    if retry_delay is not None:
        _check_retry_delay(retry_delay)
    flow_key = raw("Upstash-Flow-Control-Key")
    flow_value = raw("Upstash-Flow-Control-Value")
    if flow_value is not None and flow_key is None:
        raise bad_request("Upstash-Flow-Control-Value needs Upstash-Flow-Control-Key")
    return Overrides(
        retries=_optional(raw("Upstash-Retries"), _parse_retries),
        delay_seconds=_optional(raw("Upstash-Delay"), _parse_delay),
        retry_delay=retry_delay,
        flow_control_key=_optional(flow_key, _parse_flow_control_key),
        flow_control_value=_optional(flow_value, _parse_flow_control_value),
        labels=_optional(raw("Upstash-Label"), _parse_labels),
        failure_callback=_optional(raw("Upstash-Failure-Callback"), _parse_url),
        recorded=recorded,
    )


def _optional(text: str | None, parse: Callable[[str], _T]) -> _T | None:
    return None if text is None else parse(text)

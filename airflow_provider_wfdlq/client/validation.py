"""Check and normalize every value a caller can give, before any request is sent.

In Airflow most values arrive as rendered template strings, so every checker accepts the
text form of its value, and every rejection names the parameter, the value and what would
have been accepted (see :class:`~airflow_provider_wfdlq.client.errors.ValidationError`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_wfdlq.client._expression import FUNCTIONS, ExpressionError, check_expression
from airflow_provider_wfdlq.client.constants import CALLBACK_STATES, RUN_STATES
from airflow_provider_wfdlq.client.errors import ValidationError

__all__ = [
    "LABEL_PATTERN",
    "FlowControl",
    "as_str_list",
    "check_bool",
    "check_count",
    "check_dlq_id",
    "check_failure_function_states",
    "check_flow_control_key",
    "check_labels",
    "check_ratio",
    "check_retries",
    "check_retry_delay",
    "check_run_id",
    "check_run_state",
    "check_url",
    "parse_duration",
    "parse_flow_control",
    "to_unix_ms",
]

# --- integers -------------------------------------------------------------------------------

_INT_TEXT = re.compile(r"[+-]?\d+")


def _as_int(value: Any) -> int | None:
    """An int from an int or an int-like string (templates render to text); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    return None


def check_count(value: Any, field: str) -> int:
    """An int >= 1 (or its text); bools are refused because ``True`` is not a count."""
    number = _as_int(value)
    if number is None or number < 1:
        raise ValidationError(field, value, "an integer >= 1, e.g. 10", "is not a valid count")
    return number


def check_retries(value: Any, field: str) -> int:
    """An int >= 0 (or its text); 0 means "no retries" and is legitimate."""
    number = _as_int(value)
    if number is None or number < 0:
        raise ValidationError(
            field, value, "an integer >= 0, e.g. 3", "is not a valid number of retries"
        )
    return number


# --- durations ------------------------------------------------------------------------------

_DURATION = re.compile(r"(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")
_UNIT_SECONDS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_DURATION_ACCEPTED = (
    "<number><unit> with units s, m, h, d, each at most once and in that descending "
    "order, e.g. '10s', '5m', '1d10h30m' (or an int of seconds, or a timedelta)"
)


def _format_duration(seconds: int) -> str:
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in _UNIT_SECONDS:
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def parse_duration(value: Any, field: str, *, allow_zero: bool = True) -> str:
    """Canonical duration text, e.g. ``90`` or ``"90s"`` -> ``"1m30s"``.

    Zero (``"0s"``, ``0``) is accepted unless ``allow_zero`` is false: as a delay it means
    "deliver now", which is a meaningful override of a run's own delay; as a flow-control
    period it means nothing, so that caller passes ``allow_zero=False``.
    """
    seconds: int | None = None
    if isinstance(value, dt.timedelta):
        total = value.total_seconds()
        if total == int(total):
            seconds = int(total)
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match and value.strip():
            seconds = sum(int(match[unit] or 0) * size for unit, size in _UNIT_SECONDS)
    if seconds is None:
        raise ValidationError(field, value, _DURATION_ACCEPTED, "is not a valid duration")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        accepted = "a duration >= 0s" if allow_zero else "a positive duration"
        raise ValidationError(field, value, f"{accepted}, e.g. '10s'", "is out of range")
    return _format_duration(seconds)


# --- retry delay ----------------------------------------------------------------------------

_RETRY_DELAY_ACCEPTED = (
    "an arithmetic expression in milliseconds over the variable 'retried' using numbers, "
    f"+ - * / ( ) and the functions {', '.join(sorted(FUNCTIONS))}, "
    "e.g. '1000 * (1 + retried)'"
)


def check_retry_delay(value: Any, field: str) -> str:
    """The stripped expression, after proving it parses (see ``_expression``).

    A non-negative int is accepted as a constant delay in milliseconds.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if not isinstance(value, str):
        raise ValidationError(field, value, _RETRY_DELAY_ACCEPTED, "is not an expression")
    try:
        check_expression(value.strip())
    except ExpressionError as exc:
        problem = f"is not a valid retry-delay expression ({exc})"
        raise ValidationError(field, value, _RETRY_DELAY_ACCEPTED, problem) from None
    return value.strip()


# --- flow control ---------------------------------------------------------------------------

_FLOW_CONTROL_KEYS = ("parallelism", "rate", "period")
_FLOW_CONTROL_ACCEPTED = (
    "'parallelism=<int>, rate=<int>, period=<duration>' with any non-empty subset of those "
    "keys, each at most once, e.g. 'parallelism=3, rate=10, period=1m' (or a mapping)"
)


@dataclass(frozen=True)
class FlowControl:
    """The value of ``Upstash-Flow-Control-Value``; build it with :func:`parse_flow_control`."""

    parallelism: int | None = None
    rate: int | None = None
    period: str | None = None

    def header_value(self) -> str:
        """Present keys only, in the order the JS client sends them, joined by ``", "``."""
        pairs = [(key, getattr(self, key)) for key in _FLOW_CONTROL_KEYS]
        return ", ".join(f"{key}={value}" for key, value in pairs if value is not None)


def _flow_control_items(value: Any, field: str) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        return [(str(key), item) for key, item in value.items() if item is not None]
    if isinstance(value, str):
        items = []
        for part in value.split(","):
            key, equals, item = part.partition("=")
            if not equals:
                problem = f"is not valid flow control ({part.strip()!r} is not key=value)"
                raise ValidationError(field, value, _FLOW_CONTROL_ACCEPTED, problem)
            items.append((key.strip(), item.strip()))
        return items
    raise ValidationError(field, value, _FLOW_CONTROL_ACCEPTED, "is not valid flow control")


def _single_unit(duration: str) -> str:
    """``"1m30s"`` -> ``"90s"``: a period as @upstash/workflow sends it (``prepareFlowControl``
    sends a number of seconds as ``f"{n}s"``; its ``Duration`` type is one number, one unit).
    A whole number of a larger unit keeps it (``"1m"``, ``"2h"``)."""
    seconds = sum(
        int(amount) * dict(_UNIT_SECONDS)[unit]
        for amount, unit in re.findall(r"(\d+)([dhms])", duration)
    )
    for unit, size in _UNIT_SECONDS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"  # unreachable: every duration is whole seconds


def parse_flow_control(value: Any, field: str) -> FlowControl:
    """A :class:`FlowControl` from text, a mapping, or a FlowControl (re-checked)."""
    if isinstance(value, FlowControl):
        value = {key: getattr(value, key) for key in _FLOW_CONTROL_KEYS}
    found: dict[str, Any] = {}
    for key, item in _flow_control_items(value, field):
        if key not in _FLOW_CONTROL_KEYS:
            problem = f"is not valid flow control (unknown key {key!r})"
            raise ValidationError(field, value, _FLOW_CONTROL_ACCEPTED, problem)
        if key in found:
            problem = f"is not valid flow control (key {key!r} given twice)"
            raise ValidationError(field, value, _FLOW_CONTROL_ACCEPTED, problem)
        if key == "period":
            try:
                found[key] = _single_unit(parse_duration(item, "period", allow_zero=False))
            except ValidationError as exc:
                problem = f"is not valid flow control ({exc})"
                raise ValidationError(field, value, _FLOW_CONTROL_ACCEPTED, problem) from None
        else:
            number = _as_int(item)
            if number is None or number < 1:
                problem = f"is not valid flow control ({key} must be an integer >= 1)"
                raise ValidationError(field, value, _FLOW_CONTROL_ACCEPTED, problem)
            found[key] = number
    if not found:
        raise ValidationError(field, value, _FLOW_CONTROL_ACCEPTED, "sets no key")
    return FlowControl(**found)


# --- time -----------------------------------------------------------------------------------

_MIN_MS = 10**11  # 1973-03-03: anything smaller is not a unix-ms timestamp of a DLQ entry
_MAX_MS = 10**13  # 2286-11-20: anything larger is micro- or nanoseconds
_TIME_ACCEPTED = (
    "a datetime, a date, ISO-8601 text like '2025-07-18T09:41:35Z', or unix milliseconds "
    "(13 digits, e.g. 1752829295505)"
)


def _datetime_ms(moment: dt.datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=dt.UTC)
    # Integer arithmetic (no float timestamp), also right for pendulum's DateTime subclass.
    return calendar.timegm(moment.utctimetuple()) * 1000 + moment.microsecond // 1000


def _ms_in_range(number: int, value: Any, field: str) -> int:
    if _MIN_MS <= number < _MAX_MS:
        return number
    if 10**8 <= number < _MIN_MS:
        problem = "looks like unix SECONDS, not milliseconds"
        accepted = f"unix milliseconds: multiply by 1000, e.g. {number * 1000}"
        raise ValidationError(field, value, accepted, problem)
    if number >= _MAX_MS:
        problem = "is too large for unix milliseconds (micro- or nanoseconds?)"
        raise ValidationError(field, value, _TIME_ACCEPTED, problem)
    raise ValidationError(field, value, _TIME_ACCEPTED, "is not a plausible unix-ms timestamp")


def to_unix_ms(value: Any, field: str) -> int:
    """Unix milliseconds from any accepted form.

    A naive datetime (or ISO text without offset) is read as UTC, the server's clock. A bare
    number must be milliseconds; a 9-11 digit number is refused as probably unix seconds
    rather than silently read as a date in 1970.
    """
    if isinstance(value, bool):
        raise ValidationError(field, value, _TIME_ACCEPTED, "is not a time")
    if isinstance(value, dt.datetime):
        return _ms_in_range(_datetime_ms(value), value, field)
    if isinstance(value, dt.date):
        return _ms_in_range(_datetime_ms(dt.datetime.combine(value, dt.time())), value, field)
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return _ms_in_range(int(value), value, field)
    if isinstance(value, int):
        return _ms_in_range(value, value, field)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() and text.isascii():
            return _ms_in_range(int(text), value, field)
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return _ms_in_range(_datetime_ms(moment), value, field)
    raise ValidationError(field, value, _TIME_ACCEPTED, "is not a time")


# --- strings and lists ----------------------------------------------------------------------

LABEL_PATTERN = re.compile(r"[A-Za-z0-9_.:\-/@]+")
"""Label charset: no commas (``Upstash-Label`` comma-joins), no spaces, URL/email-ish marks."""

_NO_COMMA = re.compile(r"[^,\s][^,]*")


def check_ratio(value: Any, field: str) -> float:
    """A share from 0 to 1 (``0.9``, or its text as Jinja renders it)."""
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        ratio = -1.0
    if isinstance(value, bool) or not 0.0 <= ratio <= 1.0:
        raise ValidationError(field, value, "a number from 0 to 1, e.g. 0.9")
    return ratio


def check_bool(value: Any, field: str) -> bool:
    """A bool, or the text Jinja renders for one (``'True'``/``'False'``); nothing else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValidationError(field, value, "True or False")


def as_str_list(value: Any, field: str) -> tuple[str, ...]:
    """One string or an iterable of strings -> a de-duplicated tuple; None -> ``()``.

    Values are stripped (a leading space is a templating accident, not a filter value). A
    comma is refused: the server splits multi-valued filters on commas, so ``"a,b"`` would
    silently widen a filter, which a bulk resume must never do.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    else:
        accepted = "a string or a list of strings"
        raise ValidationError(field, value, accepted, "is not a string or a list")
    result: list[str] = []
    for item in items:
        if not isinstance(item, str) or not _NO_COMMA.fullmatch(item.strip()):
            accepted = "non-empty strings without commas (give several values as a list)"
            raise ValidationError(field, value, accepted, f"contains the bad value {item!r}")
        if item.strip() not in result:
            result.append(item.strip())
    return tuple(result)


def check_labels(value: Any, field: str) -> tuple[str, ...]:
    """Labels: as :func:`as_str_list`, each matching :data:`LABEL_PATTERN`."""
    labels = as_str_list(value, field)
    for label in labels:
        if not LABEL_PATTERN.fullmatch(label):
            accepted = "labels made of letters, digits and _ . : - / @ (no commas or spaces)"
            raise ValidationError(field, value, accepted, f"contains the bad label {label!r}")
    return labels


def check_url(value: Any, field: str) -> str:
    """An absolute http(s) URL with a host, returned stripped but otherwise unchanged."""
    accepted = "an absolute http(s) URL, e.g. 'https://example.com/api/workflow'"
    if not isinstance(value, str):
        raise ValidationError(field, value, accepted, "is not a URL")
    text = value.strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ValidationError(field, value, accepted, "is not an absolute http(s) URL")
    if any(char.isspace() for char in text):
        raise ValidationError(field, value, accepted, "contains whitespace")
    return text


def check_flow_control_key(value: Any, field: str) -> str:
    """A non-empty key without whitespace or commas (it is also a multi-valued filter)."""
    if not isinstance(value, str) or not re.fullmatch(r"[^\s,]+", value.strip()):
        accepted = "a non-empty flow-control key without spaces or commas"
        raise ValidationError(field, value, accepted, "is not a valid flow-control key")
    return value.strip()


# --- identifiers and states -----------------------------------------------------------------

_DLQ_ID = re.compile(r"\d+-\d+")
_RUN_ID_FORBIDDEN = re.compile(r"[\s,@\x00-\x1f\x7f]")


def check_dlq_id(value: Any, field: str) -> str:
    """A DLQ entry id ``<unix-ms>-<seq>``; it becomes a path segment, so the shape matters."""
    if not isinstance(value, str) or not _DLQ_ID.fullmatch(value.strip()):
        accepted = "a DLQ id '<digits>-<digits>', e.g. '1752829295505-0'"
        raise ValidationError(field, value, accepted, "is not a DLQ id")
    return value.strip()


def check_run_id(value: Any, field: str) -> str:
    """A workflow run id, generated or custom (``wfr_my-workflow``, ``order.1``...).

    Upstash lets the caller choose the id (workflow trigger docs: ``my-workflow`` becomes
    ``wfr_my-workflow``; older examples have no prefix), so only what breaks the wire is
    refused: empty, whitespace, control characters, and ``,``/``@``, the separators of the
    logs ``workflowRuns=ID1@MS1,ID2@MS2`` parameter.
    """
    accepted = (
        "a workflow run id without whitespace, control characters, ',' or '@', "
        "e.g. 'wfr_xE9pKv4R0s2hTq8yNc1aZ' or 'wfr_order.1'"
    )
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, value, accepted, "is not a workflow run id")
    found = _RUN_ID_FORBIDDEN.search(value.strip())
    if found:
        problem = f"is not a workflow run id (it contains {found.group()!r})"
        raise ValidationError(field, value, accepted, problem)
    return value.strip()


def _check_states(value: Any, field: str, valid: frozenset[str]) -> tuple[str, ...]:
    accepted = "one or more of " + ", ".join(sorted(valid))
    if value is None:
        return ()
    if isinstance(value, str):
        value_list: Any = [value]
    elif isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        value_list = value
    else:
        raise ValidationError(field, value, accepted, "is not a state or a list of states")
    states: list[str] = []
    for item in value_list:
        if not isinstance(item, str) or item.strip() not in valid:
            raise ValidationError(field, value, accepted, f"contains the unknown state {item!r}")
        if item.strip() not in states:
            states.append(item.strip())
    return tuple(states)


def check_failure_function_states(value: Any, field: str) -> tuple[str, ...]:
    """One failure-callback state or several; each one of :data:`CALLBACK_STATES`."""
    return _check_states(value, field, CALLBACK_STATES)


def check_run_state(value: Any, field: str) -> str:
    """One run state of :data:`RUN_STATES` (the run-logs ``state`` filter is single-valued)."""
    states = _check_states(value, field, RUN_STATES) if isinstance(value, str) else ()
    if len(states) != 1:
        accepted = "one of " + ", ".join(sorted(RUN_STATES))
        raise ValidationError(field, value, accepted, "is not a run state")
    return states[0]

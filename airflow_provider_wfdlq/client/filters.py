"""What a request selects (query parameters) and changes (override headers).

The dataclasses normalize and check their fields in ``__post_init__``, so an instance is
always valid however it was made: ``build(**raw)`` only adds a friendly check of the
keyword names on top of the constructor.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, Self, TypedDict, TypeVar

from airflow_provider_wfdlq.client.errors import ValidationError
from airflow_provider_wfdlq.client.validation import (
    FlowControl,
    as_str_list,
    check_dlq_id,
    check_failure_function_states,
    check_flow_control_key,
    check_labels,
    check_retries,
    check_retry_delay,
    check_run_id,
    check_run_state,
    check_url,
    parse_duration,
    parse_flow_control,
    to_unix_ms,
)

__all__ = [
    "FILTER_PARAM_NAMES",
    "MAX_LOG_RUNS",
    "OVERRIDE_HEADER_NAMES",
    "RUN_LOG_PARAM_NAMES",
    "DLQFilters",
    "Overrides",
    "RunLogFilters",
    "RunLogQuery",
]

FILTER_PARAM_NAMES: Final[Mapping[str, str]] = {
    "dlq_ids": "dlqIds",
    "from_date": "fromDate",
    "to_date": "toDate",
    "workflow_url": "workflowUrl",
    "workflow_run_id": "workflowRunId",
    "workflow_created_at": "workflowCreatedAt",
    "label": "label",
    "failure_function_state": "failureFunctionState",
    "caller_ip": "callerIp",
    "flow_control_key": "flowControlKey",
}
"""Python name -> query parameter of the DLQ filters, in the order they are sent."""

OVERRIDE_HEADER_NAMES: Final[Mapping[str, str]] = {
    "retries": "Upstash-Retries",
    "delay": "Upstash-Delay",
    "retry_delay": "Upstash-Retry-Delay",
    "flow_control_key": "Upstash-Flow-Control-Key",
    "flow_control": "Upstash-Flow-Control-Value",
    "label": "Upstash-Label",
    "failure_callback": "Upstash-Failure-Callback",
}
"""Python name -> request header of the resume/restart overrides, in the order they are sent."""

RUN_LOG_PARAM_NAMES: Final[Mapping[str, str]] = {
    "workflow_run_id": "workflowRunId",
    "workflow_created_at": "workflowCreatedAt",
    "workflow_runs": "workflowRuns",
    "state": "state",
    "from_date": "fromDate",
    "to_date": "toDate",
    "workflow_url": "workflowUrl",
    "label": "label",
}
"""Python name -> query parameter of the run-logs filters, in the order they are sent."""

Normalizer = Callable[[Any, str], Any]


def _optional(check: Normalizer) -> Normalizer:
    return lambda value, field: None if value is None else check(value, field)


def _each(check: Normalizer) -> Normalizer:
    return lambda value, field: tuple(check(item, field) for item in as_str_list(value, field))


def _check_ip(value: Any, field: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValidationError(field, value, "an IPv4 or IPv6 address", "is not an IP") from None


def _check_names(cls: type, raw: Mapping[str, Any], api_names: Mapping[str, str]) -> None:
    """Refuse unknown keywords, suggesting the right name (also for camelCase API names)."""
    known = [field.name for field in fields(cls)]
    by_api_name = {api: name for name, api in api_names.items()}
    for name in raw:
        if name in known:
            continue
        guess = by_api_name.get(name) or next(iter(difflib.get_close_matches(name, known)), None)
        problem = "is not a known name" + (f" (did you mean {guess!r}?)" if guess else "")
        raise ValidationError(cls.__name__, name, "one of " + ", ".join(known), problem)


def _check_date_order(from_date: int | None, to_date: int | None) -> None:
    if from_date is not None and to_date is not None and from_date > to_date:
        accepted = f"a time <= to_date ({to_date})"
        raise ValidationError("from_date", from_date, accepted, "is after to_date")


def _normalize(instance: Any, normalizers: Mapping[str, Normalizer]) -> None:
    for name, normalize in normalizers.items():
        object.__setattr__(instance, name, normalize(getattr(instance, name), name))


T = TypeVar("T")


def _coerce(cls: type[T], value: Any, field: str, build: Callable[..., T]) -> T:
    if value is None:
        return build()
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping) and all(isinstance(key, str) for key in value):
        return build(**value)
    accepted = f"a {cls.__name__}, a mapping of its fields, or None"
    raise ValidationError(field, value, accepted, f"is not a {cls.__name__}")


# --- DLQ filters ----------------------------------------------------------------------------

_FILTER_NORMALIZERS: Final[Mapping[str, Normalizer]] = {
    "dlq_ids": _each(check_dlq_id),
    "from_date": _optional(to_unix_ms),
    "to_date": _optional(to_unix_ms),
    "workflow_url": _each(check_url),
    "workflow_run_id": _optional(check_run_id),
    "workflow_created_at": _optional(to_unix_ms),
    "label": check_labels,
    "failure_function_state": check_failure_function_states,
    "caller_ip": _each(_check_ip),
    "flow_control_key": _each(check_flow_control_key),
}


@dataclass(frozen=True)
class DLQFilters:
    """Which DLQ entries a list or bulk call selects; every field empty selects ALL entries.

    Values of one multi-valued filter are OR'ed, different filters are AND'ed (server side).
    """

    dlq_ids: tuple[str, ...] = ()
    from_date: int | None = None
    to_date: int | None = None
    workflow_url: tuple[str, ...] = ()
    workflow_run_id: str | None = None
    workflow_created_at: int | None = None
    label: tuple[str, ...] = ()
    failure_function_state: tuple[str, ...] = ()
    caller_ip: tuple[str, ...] = ()
    flow_control_key: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _normalize(self, _FILTER_NORMALIZERS)
        _check_date_order(self.from_date, self.to_date)
        if self.dlq_ids and self.has_filter():
            others = [
                name for name in FILTER_PARAM_NAMES if name != "dlq_ids" and getattr(self, name)
            ]
            problem = (
                f"cannot be combined with {', '.join(others)}: when dlqIds is given the "
                "server ignores every other filter"
            )
            raise ValidationError("dlq_ids", self.dlq_ids, "either dlq_ids or filters", problem)

    @classmethod
    def build(cls, **raw: Any) -> Self:
        """From user values in any accepted form; unknown names are refused with a hint."""
        _check_names(cls, raw, FILTER_PARAM_NAMES)
        return cls(**raw)

    @classmethod
    def coerce(cls, value: DLQFilters | Mapping[str, Any] | None, field: str = "filters") -> Self:
        """From an instance, a mapping of field names to user values, or None (no filter)."""
        return _coerce(cls, value, field, cls.build)

    def has_filter(self) -> bool:
        """True if any filter other than ``dlq_ids`` is set."""
        return any(getattr(self, name) for name in FILTER_PARAM_NAMES if name != "dlq_ids")

    def is_empty(self) -> bool:
        """True if a bulk call with these filters would act on every entry of the DLQ."""
        return not self.dlq_ids and not self.has_filter()

    def to_params(self) -> list[tuple[str, str]]:
        """Query parameters, multi-valued ones repeated per value, in a stable order."""
        params: list[tuple[str, str]] = []
        for name, api_name in FILTER_PARAM_NAMES.items():
            value = getattr(self, name)
            values = value if isinstance(value, tuple) else () if value is None else (value,)
            params.extend((api_name, str(item)) for item in values)
        return params


# --- overrides ------------------------------------------------------------------------------

_OVERRIDE_NORMALIZERS: Final[Mapping[str, Normalizer]] = {
    "retries": _optional(check_retries),
    "delay": _optional(parse_duration),
    "retry_delay": _optional(check_retry_delay),
    "flow_control_key": _optional(check_flow_control_key),
    "flow_control": _optional(parse_flow_control),
    "label": check_labels,
    "failure_callback": _optional(check_url),
}


@dataclass(frozen=True)
class Overrides:
    """Settings a resumed or restarted run gets instead of the failed run's own.

    A field left empty keeps the failed run's setting. ``delay`` may be ``"0s"``: deliver
    at once even if the failed run had a delay.
    """

    retries: int | None = None
    delay: str | None = None
    retry_delay: str | None = None
    flow_control_key: str | None = None
    flow_control: FlowControl | None = None
    label: tuple[str, ...] = ()
    failure_callback: str | None = None

    def __post_init__(self) -> None:
        _normalize(self, _OVERRIDE_NORMALIZERS)
        if self.flow_control is not None and self.flow_control_key is None:
            accepted = "flow_control_key to be set too"
            problem = "is meaningless without a flow_control_key (the limits apply per key)"
            raise ValidationError(
                "flow_control", self.flow_control.header_value(), accepted, problem
            )

    @classmethod
    def build(cls, **raw: Any) -> Self:
        """From user values in any accepted form; unknown names are refused with a hint."""
        _check_names(cls, raw, OVERRIDE_HEADER_NAMES)
        return cls(**raw)

    @classmethod
    def coerce(cls, value: Overrides | Mapping[str, Any] | None, field: str = "overrides") -> Self:
        """From an instance, a mapping of field names to user values, or None (no override)."""
        return _coerce(cls, value, field, cls.build)

    def to_headers(self) -> dict[str, str]:
        """The ``Upstash-*`` headers of the fields that are set, nothing else."""
        headers: dict[str, str] = {}
        for name, header in OVERRIDE_HEADER_NAMES.items():
            value = getattr(self, name)
            if isinstance(value, FlowControl):
                headers[header] = value.header_value()
            elif isinstance(value, tuple):
                if value:
                    headers[header] = ",".join(value)
            elif value is not None:
                headers[header] = str(value)
        return headers


# --- run logs -------------------------------------------------------------------------------


def _run_ref(item: Any, field: str) -> tuple[str, int]:
    if isinstance(item, str) and "@" in item:
        run_id, _, created_at = item.strip().partition("@")
        return check_run_id(run_id, field), to_unix_ms(created_at, field)
    if hasattr(item, "workflow_run_id") and hasattr(item, "workflow_created_at"):
        item = (item.workflow_run_id, item.workflow_created_at)
    if isinstance(item, tuple | list) and len(item) == 2:
        return check_run_id(item[0], field), to_unix_ms(item[1], field)
    accepted = "(run_id, created_at_ms) pairs, ResumedRun objects, or 'ID1@MS1,ID2@MS2'"
    raise ValidationError(field, item, accepted, "is not a workflow run reference")


def _run_refs(value: Any, field: str) -> tuple[tuple[str, int], ...]:
    if value is None:
        return ()
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else value
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int):
        items = [value]  # a single (run_id, created_at) pair
    return tuple(_run_ref(item, field) for item in items)


MAX_LOG_RUNS: Final = 10
"""The most runs one logs call may name in ``workflowRuns``, and the largest ``count`` of a
logs page: "Run mode (groupBy=workflowRunId): Max 10 (default 10)" (workflow/openapi.yaml,
``GET /v2/workflows/logs``, ``count``)."""


def _check_run_refs(value: Any, field: str) -> tuple[tuple[str, int], ...]:
    refs = _run_refs(value, field)
    if len(refs) > MAX_LOG_RUNS:
        accepted = f"at most {MAX_LOG_RUNS} runs per logs call (ask in several calls)"
        problem = f"names {len(refs)} runs"
        raise ValidationError(field, value, accepted, problem)
    return refs


def _one_url(value: Any, field: str) -> str:
    """The logs ``workflowUrl`` filter is ONE exact URL (a string in the OpenAPI)."""
    if not isinstance(value, str):
        accepted = "one workflow URL (an exact match; the logs API takes no list)"
        raise ValidationError(field, value, accepted, "is not a single URL")
    return check_url(value, field)


class RunLogQuery(TypedDict, total=False):
    """The run-logs filters as keyword arguments of ``run_logs``/``iter_run_logs``."""

    workflow_run_id: str | None
    workflow_created_at: Any
    workflow_runs: Any
    state: str | None
    from_date: Any
    to_date: Any
    workflow_url: Any
    label: Any


_RUN_LOG_NORMALIZERS: Final[Mapping[str, Normalizer]] = {
    "workflow_run_id": _optional(check_run_id),
    "workflow_created_at": _optional(to_unix_ms),
    "workflow_runs": _check_run_refs,
    "state": _optional(check_run_state),
    "from_date": _optional(to_unix_ms),
    "to_date": _optional(to_unix_ms),
    "workflow_url": _optional(_one_url),
    "label": check_labels,
}


@dataclass(frozen=True)
class RunLogFilters:
    """Which runs ``GET /v2/workflows/logs`` reports; used to follow resumed runs."""

    workflow_run_id: str | None = None
    workflow_created_at: int | None = None
    workflow_runs: tuple[tuple[str, int], ...] = ()
    state: str | None = None
    from_date: int | None = None
    to_date: int | None = None
    workflow_url: str | None = None
    label: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _normalize(self, _RUN_LOG_NORMALIZERS)
        if self.workflow_runs and self.workflow_run_id is not None:
            accepted = "either workflow_run_id or workflow_runs"
            problem = "cannot be combined with workflow_run_id"
            raise ValidationError("workflow_runs", self.workflow_runs, accepted, problem)
        _check_date_order(self.from_date, self.to_date)

    @classmethod
    def build(cls, **raw: Any) -> Self:
        """From user values in any accepted form; unknown names are refused with a hint."""
        _check_names(cls, raw, RUN_LOG_PARAM_NAMES)
        return cls(**raw)

    def to_params(self) -> list[tuple[str, str]]:
        """Query parameters; ``workflowRuns`` is ONE parameter ``ID1@MS1,ID2@MS2``."""
        params: list[tuple[str, str]] = []
        for name, api_name in RUN_LOG_PARAM_NAMES.items():
            value = getattr(self, name)
            if name == "workflow_runs":
                if value:
                    params.append((api_name, ",".join(f"{run}@{ms}" for run, ms in value)))
            elif isinstance(value, tuple):
                params.extend((api_name, item) for item in value)
            elif value is not None:
                params.append((api_name, str(value)))
        return params

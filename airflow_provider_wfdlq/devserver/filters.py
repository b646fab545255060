"""Query-string parsing for the DLQ listings and the run logs, strict like the service:
unknown parameter names and malformed values are a 400, never silently ignored."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airflow_provider_wfdlq.devserver.errors import bad_request

CALLBACK_STATES = frozenset(
    {"CALLBACK_INPROGRESS", "CALLBACK_SUCCESS", "CALLBACK_FAIL", "CALLBACK_CANCELED"}
)
RUN_STATES = frozenset({"RUN_STARTED", "RUN_SUCCESS", "RUN_FAILED", "RUN_CANCELED"})
#: Step states the logs' `state` filter also takes (workflow/openapi.yaml). Runs here
#: have no step list, so a step state selects the runs whose state implies such a step.
STEP_STATES: dict[str, frozenset[str]] = {
    "STEP_SUCCESS": frozenset({"RUN_SUCCESS"}),
    "STEP_FAILED": frozenset({"RUN_FAILED"}),
    "STEP_PROGRESS": frozenset({"RUN_STARTED"}),
    "STEP_CANCELED": frozenset({"RUN_CANCELED"}),
    "STEP_RETRY": frozenset(),
}
MAX_LIST_PAGE = 100
#: Run logs are "run mode" (grouped by run): default and max page size 10.
MAX_RUNS_PAGE = 10

# The real server reads the token from this parameter too, on every endpoint.
TOKEN_PARAM = "qstash_token"

DLQ_MULTI = ("workflowUrl", "label", "failureFunctionState", "callerIp", "flowControlKey")
DLQ_MILLIS = ("fromDate", "toDate", "workflowCreatedAt")
DLQ_FILTER_NAMES = frozenset({*DLQ_MULTI, *DLQ_MILLIS, "workflowRunId"})
PAGING_NAMES = frozenset({"cursor", "count"})
LOGS_NAMES = frozenset(
    {
        "workflowRunId",
        "workflowCreatedAt",
        "workflowRuns",
        "state",
        "fromDate",
        "toDate",
        "workflowUrl",
        "label",
        "count",
        "cursor",
        "trimBody",
        "flowControlKey",
        "callerIp",
        "groupBy",
    }
)
MILLIS_PATTERN = re.compile(r"^\d{1,16}$")

QueryPairs = Iterable[tuple[str, str]]


def group_params(pairs: QueryPairs, allowed: Iterable[str]) -> dict[str, list[str]]:
    """name -> raw values, 400 for any name outside `allowed` (the token is always allowed)."""
    allowed_names = {*allowed, TOKEN_PARAM}
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        if name not in allowed_names:
            raise bad_request(f"unknown query parameter: {name}")
        grouped.setdefault(name, []).append(value)
    grouped.pop(TOKEN_PARAM, None)
    return grouped


def multi_values(grouped: dict[str, list[str]], name: str) -> frozenset[str]:
    """Repeated keys and comma-joined values are the same thing: OR'ed values."""
    values = [piece.strip() for raw in grouped.get(name, []) for piece in raw.split(",")]
    if name in grouped and not any(values):
        raise bad_request(f"{name} needs a value")
    return frozenset(value for value in values if value)


def single_value(grouped: dict[str, list[str]], name: str) -> str | None:
    values = grouped.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise bad_request(f"{name} given more than once")
    if not values[0]:
        raise bad_request(f"{name} needs a value")
    return values[0]


def millis_value(grouped: dict[str, list[str]], name: str) -> int | None:
    text = single_value(grouped, name)
    if text is None:
        return None
    if not MILLIS_PATTERN.match(text):
        raise bad_request(f"{name} must be unix milliseconds, got {text!r}")
    return int(text)


def count_value(grouped: dict[str, list[str]]) -> int | None:
    text = single_value(grouped, "count")
    if text is None:
        return None
    if not text.isdigit() or int(text) < 1:
        raise bad_request(f"count must be a positive integer, got {text!r}")
    return int(text)


def callback_state_of(message: dict[str, Any]) -> str | None:
    """The callback state lives in failureCallbackInfo.state (or a flat failureFunctionState)."""
    info = message.get("failureCallbackInfo")
    if isinstance(info, dict) and isinstance(info.get("state"), str):
        return str(info["state"])
    flat = message.get("failureFunctionState")
    return flat if isinstance(flat, str) else None


@dataclass(frozen=True)
class DlqFilter:
    from_date: int | None = None
    to_date: int | None = None
    workflow_created_at: int | None = None
    workflow_run_id: str | None = None
    workflow_urls: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()
    callback_states: frozenset[str] = frozenset()
    caller_ips: frozenset[str] = frozenset()
    flow_control_keys: frozenset[str] = frozenset()

    @property
    def is_empty(self) -> bool:
        return self == DlqFilter()

    def matches(self, message: dict[str, Any]) -> bool:
        created_at = message.get("createdAt", 0)
        if self.from_date is not None and created_at < self.from_date:
            return False
        if self.to_date is not None and created_at > self.to_date:
            return False
        if (
            self.workflow_created_at is not None
            and message.get("workflowCreatedAt") != self.workflow_created_at
        ):
            return False
        run_id = self.workflow_run_id
        if run_id is not None and message.get("workflowRunId") != run_id:
            return False
        if self.workflow_urls and message.get("workflowUrl") not in self.workflow_urls:
            return False
        if self.labels and self.labels.isdisjoint(message.get("labels") or ()):
            return False
        if self.callback_states and callback_state_of(message) not in self.callback_states:
            return False
        if self.caller_ips and message.get("callerIP") not in self.caller_ips:
            return False
        return not (
            self.flow_control_keys and message.get("flowControlKey") not in self.flow_control_keys
        )


@dataclass(frozen=True)
class DlqQuery:
    filter: DlqFilter
    dlq_ids: list[str] | None
    count: int | None
    cursor: str | None


def parse_dlq_query(pairs: QueryPairs, *, bulk: bool, extra: Iterable[str] = ()) -> DlqQuery:
    """Filters of list / bulk resume / bulk restart / bulk delete. `dlqIds` only when bulk."""
    allowed = {*DLQ_FILTER_NAMES, *PAGING_NAMES, *extra}
    pairs = list(pairs)
    if not bulk and any(name == "dlqIds" for name, _ in pairs):
        raise bad_request("dlqIds is only accepted by bulk calls")
    grouped = group_params(pairs, allowed | ({"dlqIds"} if bulk else set()))
    states = multi_values(grouped, "failureFunctionState")
    if unknown_states := states - CALLBACK_STATES:
        raise bad_request(f"invalid failureFunctionState: {', '.join(sorted(unknown_states))}")
    dlq_filter = DlqFilter(
        from_date=millis_value(grouped, "fromDate"),
        to_date=millis_value(grouped, "toDate"),
        workflow_created_at=millis_value(grouped, "workflowCreatedAt"),
        workflow_run_id=single_value(grouped, "workflowRunId"),
        workflow_urls=multi_values(grouped, "workflowUrl"),
        labels=multi_values(grouped, "label"),
        callback_states=states,
        caller_ips=multi_values(grouped, "callerIp"),
        flow_control_keys=multi_values(grouped, "flowControlKey"),
    )
    dlq_ids: list[str] | None = None
    if "dlqIds" in grouped:
        pieces = [p.strip() for raw in grouped["dlqIds"] for p in raw.split(",") if p.strip()]
        if not pieces:
            raise bad_request("dlqIds needs a value")
        dlq_ids = list(dict.fromkeys(pieces))
    return DlqQuery(
        filter=dlq_filter,
        dlq_ids=dlq_ids,
        count=count_value(grouped),
        cursor=single_value(grouped, "cursor"),
    )


@dataclass(frozen=True)
class LogsQuery:
    run_ids: frozenset[tuple[str, int | None]]
    states: frozenset[str]
    from_date: int | None
    to_date: int | None
    workflow_urls: frozenset[str]
    labels: frozenset[str]
    count: int | None
    cursor: str | None
    flow_control_keys: frozenset[str] = frozenset()
    caller_ips: frozenset[str] = frozenset()
    trim_body: int = -1
    #: `workflowRuns` was given: every other filter is ignored (workflow/openapi.yaml).
    by_runs: bool = False

    def matches(self, run: dict[str, Any]) -> bool:
        if self.by_runs:
            return True
        created_at = run.get("workflowRunCreatedAt", 0)
        if self.states and not self._state_matches(str(run.get("workflowState"))):
            return False
        if self.flow_control_keys and run.get("flowControlKey") not in self.flow_control_keys:
            return False
        if self.caller_ips and run.get("workflowRunCallerIp") not in self.caller_ips:
            return False
        if self.from_date is not None and created_at < self.from_date:
            return False
        if self.to_date is not None and created_at > self.to_date:
            return False
        if self.workflow_urls and run.get("workflowUrl") not in self.workflow_urls:
            return False
        return not (self.labels and self.labels.isdisjoint(run.get("labels") or ()))

    def _state_matches(self, run_state: str) -> bool:
        return any(
            state == run_state or run_state in STEP_STATES.get(state, frozenset())
            for state in self.states
        )


def _parse_workflow_runs(grouped: dict[str, list[str]]) -> set[tuple[str, int | None]]:
    """No cap on the number of pairs: the answer pages them, MAX_RUNS_PAGE at a time."""
    runs: set[tuple[str, int | None]] = set()
    items = [p.strip() for raw in grouped.get("workflowRuns", []) for p in raw.split(",")]
    for item in items:
        run_id, at, created = item.partition("@")
        if not run_id or not at or not MILLIS_PATTERN.match(created):
            raise bad_request(f"workflowRuns items must be <workflowRunId>@<unix ms>: {item!r}")
        runs.add((run_id, int(created)))
    return runs


def parse_logs_query(pairs: QueryPairs, *, group_by_required: bool = False) -> LogsQuery:
    """`GET /v2/workflows/logs` and `GET /v2/workflows/events?groupBy=workflowRunId`."""
    grouped = group_params(pairs, LOGS_NAMES)
    group_by = single_value(grouped, "groupBy")
    if group_by is None and group_by_required:
        raise bad_request("this emulator serves events only grouped: groupBy=workflowRunId")
    if group_by is not None and group_by != "workflowRunId":
        raise bad_request(f"invalid groupBy: {group_by}")
    by_runs = "workflowRuns" in grouped
    run_ids = _parse_workflow_runs(grouped)
    run_id = single_value(grouped, "workflowRunId")
    created_at = millis_value(grouped, "workflowCreatedAt")
    if by_runs:
        pass  # every other filter is ignored
    elif run_id is not None:
        run_ids.add((run_id, created_at))
    elif created_at is not None:
        raise bad_request("workflowCreatedAt needs workflowRunId")
    states = multi_values(grouped, "state")
    if unknown := states - RUN_STATES - set(STEP_STATES):
        raise bad_request(f"invalid state: {', '.join(sorted(unknown))}")
    trim_text = single_value(grouped, "trimBody")
    if trim_text is not None and not re.match(r"^-?\d{1,9}$", trim_text):
        raise bad_request(f"trimBody must be an integer, got {trim_text!r}")
    trim_body = -1 if trim_text is None else int(trim_text)
    if trim_body < -1:
        raise bad_request(f"trimBody must be >= -1, got {trim_body}")
    return LogsQuery(
        flow_control_keys=multi_values(grouped, "flowControlKey"),
        caller_ips=multi_values(grouped, "callerIp"),
        trim_body=trim_body,
        by_runs=by_runs,
        run_ids=frozenset(run_ids),
        states=states,
        from_date=millis_value(grouped, "fromDate"),
        to_date=millis_value(grouped, "toDate"),
        workflow_urls=multi_values(grouped, "workflowUrl"),
        labels=multi_values(grouped, "label"),
        count=count_value(grouped),
        cursor=single_value(grouped, "cursor"),
    )

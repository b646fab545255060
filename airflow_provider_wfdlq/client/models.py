"""Answers of the API as frozen dataclasses.

``from_json`` is tolerant: optional fields may be missing and unknown fields are ignored
(kept in ``raw`` where the object has one), so a server that adds fields never breaks a
deployed DAG. A missing REQUIRED field raises ``KeyError``/``ValueError``/``TypeError``; the
client turns that into :class:`~airflow_provider_wfdlq.client.errors.UnexpectedAnswerError`.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

__all__ = [
    "BulkResult",
    "DLQMessage",
    "DLQPage",
    "DeleteResult",
    "FailureCallbackInfo",
    "ResumedRun",
    "RunLogPage",
    "WorkflowRun",
]

Headers = Mapping[str, tuple[str, ...]]


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _int(data: Mapping[str, Any], key: str) -> int | None:
    """An int also from its text: some fields come as JSON strings in older answers."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError(f"{key} is a bool, expected an integer")
    return int(value)


def _required_text(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is {value!r}, expected a non-empty string")
    return value


def _headers(data: Mapping[str, Any], key: str) -> Headers:
    """``{name: [values]}``; a single string value is taken as a one-value list."""
    raw = data.get(key) or {}
    return {
        str(name): (str(values),) if isinstance(values, str) else tuple(map(str, values))
        for name, values in raw.items()
    }


def _body(data: Mapping[str, Any], key: str) -> str | None:
    """``key``, or ``key + "Base64"`` decoded (invalid UTF-8 replaced) when ``key`` is empty.

    Upstash (workflow/openapi.yaml, WorkflowDLQMessage): ``body``/``responseBody`` hold the
    body "if it is composed of utf8 chars only, empty otherwise", and ``bodyBase64`` /
    ``responseBodyBase64`` hold it base64-encoded when it is not UTF-8.
    """
    text = data.get(key)
    encoded = data.get(f"{key}Base64")
    if text or not encoded:
        return None if text is None else str(text)
    try:
        return base64.b64decode(str(encoded), validate=True).decode("utf-8", "replace")
    except binascii.Error as exc:
        raise ValueError(f"{key}Base64 is not valid base64") from exc


def _ms(value: Any) -> int | None:
    """Unix ms from an int, its text, or ISO-8601 text; None if it is none of those.

    ``workflowCreatedAt`` of a resume/restart answer is int64 ms in workflow/openapi.yaml,
    but a string in @upstash/workflow's ``DLQResumeRestartResponse`` whose tests use ISO text.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return calendar.timegm(moment.utctimetuple()) * 1000 + moment.microsecond // 1000


def _cursor(data: Mapping[str, Any]) -> str | None:
    """The end of a walk is an empty OR a missing cursor; both become None."""
    return _text(data, "cursor") or None


def _objects(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = data.get(key) or []
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise TypeError(f"{key} is not a list of objects")
    return items


def _labels(data: Mapping[str, Any]) -> tuple[str, ...]:
    """``labels``, falling back to the deprecated single ``label``."""
    labels = data.get("labels")
    if labels:
        return tuple(map(str, labels))
    label = data.get("label")
    return (str(label),) if label else ()


@dataclass(frozen=True)
class FailureCallbackInfo:
    """The failure callback of a failed run; absent when the run has none."""

    state: str | None
    response_status: int | None = None
    response_body: str | None = field(default=None, repr=False)
    response_headers: Headers = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            state=_text(data, "state"),
            response_status=_int(data, "responseStatus"),
            response_body=_body(data, "responseBody"),
            response_headers=_headers(data, "responseHeaders"),
        )


@dataclass(frozen=True)
class DLQMessage:
    """One DLQ entry.

    Headers and bodies are left out of ``repr`` because they are the application's data and
    may carry its secrets; they are still fields.
    """

    dlq_id: str
    message_id: str | None = None
    workflow_run_id: str | None = None
    workflow_url: str | None = None
    workflow_created_at: int | None = None
    created_at: int | None = None
    url: str | None = None
    method: str | None = None
    header: Headers = field(default_factory=dict, repr=False)
    body: str | None = field(default=None, repr=False)
    max_retries: int | None = None
    not_before: int | None = None
    failure_callback: str | None = None
    caller_ip: str | None = None
    labels: tuple[str, ...] = ()
    flow_control_key: str | None = None
    response_status: int | None = None
    response_header: Headers = field(default_factory=dict, repr=False)
    response_body: str | None = field(default=None, repr=False)
    failure_callback_info: FailureCallbackInfo | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def failure_function_state(self) -> str | None:
        """``failureCallbackInfo.state``, else the flat ``failureFunctionState`` field."""
        if self.failure_callback_info is not None and self.failure_callback_info.state:
            return self.failure_callback_info.state
        return _text(self.raw, "failureFunctionState")

    @classmethod
    def from_json(cls, data: Mapping[str, Any], lean: bool = False) -> Self:
        """The entry as sent. ``lean``: only what selecting and acting read (ids, times,
        URLs, labels, the failed step's response, the failure callback's state); the
        request's headers and body and the other fields keep their defaults, and ``raw``
        is ``data`` itself, not a copy (a redrive's listing: a night can list 100k)."""
        info = data.get("failureCallbackInfo")
        read: dict[str, Any] = {
            "dlq_id": _required_text(data, "dlqId"),
            "workflow_run_id": _text(data, "workflowRunId"),
            "workflow_url": _text(data, "workflowUrl"),
            "created_at": _int(data, "createdAt"),
            "url": _text(data, "url"),
            "labels": _labels(data),
            "response_status": _int(data, "responseStatus"),
            "response_header": _headers(data, "responseHeader"),
            "response_body": _body(data, "responseBody"),
        }
        if lean:  # of the failure callback, its state only
            state = FailureCallbackInfo(_text(info, "state")) if info else None
            return cls(**read, failure_callback_info=state, raw=data)
        return cls(
            **read,
            failure_callback_info=FailureCallbackInfo.from_json(info) if info else None,
            message_id=_text(data, "messageId"),
            workflow_created_at=_int(data, "workflowCreatedAt"),
            method=_text(data, "method"),
            header=_headers(data, "header"),
            body=_body(data, "body"),
            max_retries=_int(data, "maxRetries"),
            not_before=_int(data, "notBefore"),
            failure_callback=_text(data, "failureCallback"),
            caller_ip=_text(data, "callerIP"),
            flow_control_key=_text(data, "flowControlKey"),
            raw=dict(data),
        )


@dataclass(frozen=True)
class ResumedRun:
    """The run a resume/restart created (or, for a callback retry, the ORIGINAL run).

    ``workflow_created_at`` is unix ms, read from an int, numeric text or ISO-8601 text;
    it is None when the answer's value is none of those (the call has acted, so the answer
    is never refused for it) and ``workflow_created_at_raw`` then keeps what was sent.
    """

    workflow_run_id: str
    workflow_created_at: int | None
    workflow_created_at_raw: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        raw = data.get("workflowCreatedAt")
        return cls(
            workflow_run_id=_required_text(data, "workflowRunId"),
            workflow_created_at=_ms(raw),
            workflow_created_at_raw=raw,
        )


@dataclass(frozen=True)
class DLQPage:
    """One page of a listing; ``cursor`` is None at the end."""

    messages: tuple[DLQMessage, ...]
    cursor: str | None

    @property
    def done(self) -> bool:
        return self.cursor is None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], lean: bool = False) -> Self:
        """``lean``: see :meth:`DLQMessage.from_json`."""
        items = _objects(data, "messages")
        messages = tuple(DLQMessage.from_json(item, lean) for item in items)
        return cls(messages=messages, cursor=_cursor(data))


@dataclass(frozen=True)
class BulkResult:
    """The answer to one bulk resume/restart call.

    ``cursor`` is the answer's cursor (None when empty or missing). On a call by filters it
    continues the walk; on a call by dlq_ids a cursor means the server acted on FEWER ids
    than named (a per-call cap): the ids still in the DLQ were not acted on.
    """

    runs: tuple[ResumedRun, ...]
    cursor: str | None

    @property
    def done(self) -> bool:
        return self.cursor is None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        runs = tuple(ResumedRun.from_json(item) for item in _objects(data, "workflowRuns"))
        return cls(runs=runs, cursor=_cursor(data))


@dataclass(frozen=True)
class DeleteResult:
    """The answer to one bulk delete; ``cursor`` as in :class:`BulkResult`."""

    deleted: int
    cursor: str | None

    @property
    def done(self) -> bool:
        return self.cursor is None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(deleted=_int(data, "deleted") or 0, cursor=_cursor(data))


@dataclass(frozen=True)
class WorkflowRun:
    """One run as the run logs report it (steps are left in ``raw``)."""

    workflow_run_id: str
    workflow_url: str | None = None
    workflow_state: str | None = None
    workflow_run_created_at: int | None = None
    workflow_run_completed_at: int | None = None
    dlq_id: str | None = None
    failure_function_state: str | None = None
    labels: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        failure_function = data.get("failureFunction") or {}
        return cls(
            workflow_run_id=_required_text(data, "workflowRunId"),
            workflow_url=_text(data, "workflowUrl"),
            workflow_state=_text(data, "workflowState"),
            workflow_run_created_at=_int(data, "workflowRunCreatedAt"),
            workflow_run_completed_at=_int(data, "workflowRunCompletedAt"),
            dlq_id=_text(data, "dlqId") or None,
            failure_function_state=_text(failure_function, "state"),
            labels=_labels(data),
            raw=dict(data),
        )


@dataclass(frozen=True)
class RunLogPage:
    """One page of run logs; ``cursor`` is None at the end."""

    runs: tuple[WorkflowRun, ...]
    cursor: str | None

    @property
    def done(self) -> bool:
        return self.cursor is None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        runs = tuple(WorkflowRun.from_json(item) for item in _objects(data, "runs"))
        return cls(runs=runs, cursor=_cursor(data))


@dataclass(frozen=True)
class FlowControlState:
    """A flow-control key as ``GET /v2/flowControl/{key}`` reports it."""

    flow_control_key: str
    waitlist_size: int = 0
    is_paused: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], key: str = "") -> Self:
        paused = data.get("isPaused", data.get("paused", False))
        return cls(
            flow_control_key=_text(data, "flowControlKey") or key,
            # qstash/openapi.yaml and @upstash/qstash's FlowControlInfo spell it waitListSize;
            # workflow/openapi.yaml spells it waitlistSize: read both, the official one first.
            waitlist_size=_int(data, "waitListSize") or _int(data, "waitlistSize") or 0,
            is_paused=paused is True or str(paused).lower() == "true",
            raw=dict(data),
        )

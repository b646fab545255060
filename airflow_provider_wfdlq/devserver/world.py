"""The emulated service's state: DLQ entries, workflow runs, a simulated clock and the
events that make the world move (runs finishing, failure callbacks settling).

No HTTP here. Time only moves when someone looks: every read first calls `settle()`,
which applies every event that fell due on the simulated clock, so no background thread
is needed and a frozen clock means a frozen world.
"""

from __future__ import annotations

import copy
import heapq
import json
import random
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_wfdlq.devserver.clock import SimClock, real_now_ms
from airflow_provider_wfdlq.devserver.errors import ApiError, bad_request, not_found
from airflow_provider_wfdlq.devserver.filters import (
    CALLBACK_STATES,
    DlqFilter,
    LogsQuery,
    callback_state_of,
)
from airflow_provider_wfdlq.devserver.ids import (
    DlqKey,
    RunKey,
    format_dlq_id,
    new_message_id,
    new_workflow_run_id,
    parse_dlq_id,
)
from airflow_provider_wfdlq.devserver.overrides import Overrides
from airflow_provider_wfdlq.devserver.seed import (
    RESPONSES,
    SeededMessage,
    callback_info,
    realistic_message,
    seeded_messages,
)
from airflow_provider_wfdlq.devserver.sorted_keys import SortedKeys

TERMINAL_CALLBACK_STATES = CALLBACK_STATES - {"CALLBACK_INPROGRESS"}
SOME_NOT_FOUND = "Some DLQ messages were not found"


@dataclass
class WorldConfig:
    """Knobs a test may turn at runtime (`/__dev/config`)."""

    page_cap: int = 50
    success_ratio: float = 0.8
    #: Per workflow URL, overrides ``success_ratio`` (a bug that is live in one workflow).
    success_ratio_by_url: dict[str, float] = field(default_factory=dict)
    run_seconds: float = 30.0
    callback_seconds: float = 20.0
    callback_outcome: str = "CALLBACK_SUCCESS"
    rate_limit_rps: float | None = None
    cursor_ttl_seconds: float | None = None
    # --- readings of what Upstash leaves unstated (see devserver/readings.py) ---
    #: A resumed or restarted entry stays in the DLQ for good (and can be acted on again).
    keep_resumed: bool = False
    #: A resumed or restarted entry stays for the next K real-API requests, then leaves.
    resumed_lag: int = 0
    #: Order of ``workflowRuns`` in bulk resume/restart answers.
    answer_order: str = "sent"
    #: A bulk resume/restart by ``dlqIds`` acts on at most this many ids (then a cursor).
    max_ids_per_call: int | None = None
    #: Order of the DLQ listing across pages.
    list_order: str = "oldest"
    #: Every Kth list request that carries a cursor answers 400 ``cursor is stale``.
    stale_cursor_every: int | None = None
    #: The list endpoint hands out one cursor forever: same page, same cursor.
    frozen_cursor: bool = False
    #: The listing cursor counts places (an offset into the matches), so entries that leave
    #: while a client pages make the next page step over as many others.
    offset_cursor: bool = False
    #: Unit of the ``*-RateLimit-Reset`` headers: unix seconds or unix milliseconds.
    rate_limit_reset_unit: str = "s"
    #: ``workflowCreatedAt`` in resume/restart answers: int ms or ISO-8601 text.
    created_at_format: str = "ms"
    #: Delay added to every real-API request (asyncio.sleep, requests overlap).
    latency_ms: float = 0
    #: A bulk delete by ``dlqIds`` naming a missing id: ``refuse`` (404, nothing deleted,
    #: as bulk resume) or ``skip`` (delete the others, answer how many). Upstash documents
    #: no 404 for the bulk delete.
    bulk_delete_missing: str = "refuse"

    def updated(self, changes: dict[str, Any]) -> WorldConfig:
        """A validated copy; ValueError names the offending key."""
        current = asdict(self)
        for name, value in changes.items():
            if name not in current:
                raise ValueError(f"unknown config key: {name}")
            current[name] = value
        config = WorldConfig(**current)
        config._validate()
        return config

    def _validate(self) -> None:
        if not isinstance(self.page_cap, int) or isinstance(self.page_cap, bool):
            raise ValueError("page_cap must be an integer")
        if self.page_cap < 1:
            raise ValueError("page_cap must be >= 1")
        if not 0.0 <= float(self.success_ratio) <= 1.0:
            raise ValueError("success_ratio must be within [0, 1]")
        if not isinstance(self.success_ratio_by_url, dict) or not all(
            isinstance(ratio, int | float) and 0.0 <= float(ratio) <= 1.0
            for ratio in self.success_ratio_by_url.values()
        ):
            raise ValueError("success_ratio_by_url must map workflow URLs to ratios within [0, 1]")
        if float(self.run_seconds) < 0 or float(self.callback_seconds) < 0:
            raise ValueError("run_seconds and callback_seconds must be >= 0")
        if self.callback_outcome not in TERMINAL_CALLBACK_STATES:
            raise ValueError(f"callback_outcome must be one of {sorted(TERMINAL_CALLBACK_STATES)}")
        if self.rate_limit_rps is not None and float(self.rate_limit_rps) <= 0:
            raise ValueError("rate_limit_rps must be > 0 or null")
        if self.cursor_ttl_seconds is not None and float(self.cursor_ttl_seconds) < 0:
            raise ValueError("cursor_ttl_seconds must be >= 0 or null")
        _check_bool("keep_resumed", self.keep_resumed)
        _check_bool("frozen_cursor", self.frozen_cursor)
        _check_bool("offset_cursor", self.offset_cursor)
        _check_int("resumed_lag", self.resumed_lag, minimum=0)
        _check_int("max_ids_per_call", self.max_ids_per_call, minimum=1, optional=True)
        _check_int("stale_cursor_every", self.stale_cursor_every, minimum=1, optional=True)
        _check_choice("answer_order", self.answer_order, ANSWER_ORDERS)
        _check_choice("list_order", self.list_order, LIST_ORDERS)
        _check_choice("rate_limit_reset_unit", self.rate_limit_reset_unit, RESET_UNITS)
        _check_choice("created_at_format", self.created_at_format, CREATED_AT_FORMATS)
        _check_choice("bulk_delete_missing", self.bulk_delete_missing, BULK_DELETE_MISSING)
        if (
            isinstance(self.latency_ms, bool)
            or not isinstance(self.latency_ms, int | float)
            or not 0 <= self.latency_ms < float("inf")
        ):
            raise ValueError("latency_ms must be a number >= 0")


ANSWER_ORDERS = ("sent", "reversed", "shuffled")
LIST_ORDERS = ("oldest", "newest")
RESET_UNITS = ("s", "ms")
CREATED_AT_FORMATS = ("ms", "iso")
BULK_DELETE_MISSING = ("refuse", "skip")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


def _check_int(name: str, value: Any, *, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        what = f"an integer >= {minimum}" + (" or null" if optional else "")
        raise ValueError(f"{name} must be {what}, got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


@dataclass
class DlqRecord:
    """One DLQ entry: the public message plus facts the service knows but does not show."""

    key: DlqKey
    message: dict[str, Any]
    failed_step: int
    step_name: str
    incompatible: bool = False

    @property
    def dlq_id(self) -> str:
        return str(self.message["dlqId"])


@dataclass
class RunRecord:
    key: RunKey
    run: dict[str, Any]
    template: dict[str, Any] | None = None  # message a failure would put back in the DLQ
    failed_step: int = 0
    step_name: str = ""
    finishes_at: int | None = None
    #: Resumed from an entry whose step changed in the app: fails at that step, always.
    incompatible: bool = False


@dataclass(order=True)
class _Event:
    due_ms: int
    order: int
    kind: str = field(compare=False)  # "run" | "callback"
    subject: str = field(compare=False)  # run id or dlq id


class World:
    def __init__(
        self,
        *,
        seed: int = 42,
        entries: int = 150,
        anchor_ms: int | None = None,
        config: WorldConfig | None = None,
    ) -> None:
        self.initial_seed = seed
        self.initial_entries = entries
        self.initial_config = config or WorldConfig()
        self.anchor_ms = anchor_ms if anchor_ms is not None else real_now_ms()
        self.clock = SimClock()
        self.epoch = 0
        self.reset()

    # ----------------------------------------------------------------- lifecycle

    def reset(
        self,
        *,
        seed: int | None = None,
        entries: int | None = None,
        config: WorldConfig | None = None,
    ) -> None:
        """Back to a clean deterministic state: fresh seeded entries, logs emptied,
        clock back on real time, config back to the server's defaults."""
        self.seed = self.initial_seed if seed is None else seed
        self.config = config or self.initial_config
        self.clock.reset()
        self.epoch += 1
        self.rng = random.Random(f"world:{self.seed}")
        self._entries: dict[DlqKey, DlqRecord] = {}
        self._keys: SortedKeys[DlqKey] = SortedKeys()
        self._runs: dict[str, RunRecord] = {}
        self._run_keys: SortedKeys[RunKey] = SortedKeys()
        self._events: list[_Event] = []
        self._event_order = 0
        self._callback_due: dict[str, int] = {}
        self.paused_flow_keys: set[str] = set()
        self._held_runs: dict[str, list[str]] = {}
        self.actions: list[dict[str, Any]] = []
        #: In-process tests only: called with each action record as the server acts,
        #: before it answers (e.g. to look at what a client wrote before this call).
        self.on_action: Callable[[dict[str, Any]], None] | None = None
        #: Real-API requests seen since the reset (the clock of ``resumed_lag``).
        self.api_requests = 0
        self._lagging: dict[DlqKey, int] = {}  # entry -> last request number it shows in
        self.list_cursor_requests = 0  # list requests with a cursor (stale_cursor_every)
        self.answer_rng = random.Random(f"answers:{self.seed}")
        self.flow_keys: set[str] = set()
        count = self.initial_entries if entries is None else entries
        now = self.clock.now_ms()
        for seeded in seeded_messages(self.seed, count, self.anchor_ms):
            self._add_entry(seeded, seeded.message["createdAt"], now)

    def set_config(self, config: WorldConfig) -> None:
        """Swap the config; a changed ``stale_cursor_every`` starts counting afresh."""
        if config.stale_cursor_every != self.config.stale_cursor_every:
            self.list_cursor_requests = 0
        self.config = config

    def count_api_request(self) -> int:
        """One more real-API request: entries whose ``resumed_lag`` ran out leave first."""
        self.api_requests += 1
        for key, last in list(self._lagging.items()):
            if last < self.api_requests:
                self._remove(self._entries[key])
        return self.api_requests

    def stale_cursor_due(self) -> bool:
        """Count one list request that carries a cursor; True when it must be refused."""
        self.list_cursor_requests += 1
        every = self.config.stale_cursor_every
        return every is not None and self.list_cursor_requests % every == 0

    def now(self) -> int:
        """Current simulated time, after applying everything that fell due."""
        self.settle()
        return self.clock.now_ms()

    # ----------------------------------------------------------------- entries

    @property
    def entry_count(self) -> int:
        return len(self._keys)

    def _free_key(self, ms: int) -> DlqKey:
        seq = 0
        while (ms, seq) in self._entries:
            seq += 1
        return ms, seq

    def _add_entry(
        self, seeded: SeededMessage, created_at: int, now: int, *, incompatible: bool = False
    ) -> DlqRecord:
        requested = seeded.message.pop("dlqId", None)
        if requested is not None:
            key = parse_dlq_id(str(requested))
            if key is None or format_dlq_id(key) != requested or key in self._entries:
                raise bad_request(f"dlqId {requested!r} is malformed or taken")
        else:
            key = self._free_key(created_at)
        message = {"dlqId": format_dlq_id(key), **seeded.message}
        record = DlqRecord(key, message, seeded.failed_step, seeded.step_name, incompatible)
        if message.get("flowControlKey"):
            self.flow_keys.add(str(message["flowControlKey"]))
        self._entries[key] = record
        self._keys.add(key)
        self._record_failed_run(record)
        if self.callback_state(record) == "CALLBACK_INPROGRESS":
            self._schedule_callback(record, now)
        return record

    def _record_failed_run(self, record: DlqRecord) -> None:
        """Seeded entries come from runs that failed: the run logs must show them."""
        message = record.message
        run_id = str(message.get("workflowRunId", ""))
        if not run_id or run_id in self._runs:
            return
        run: dict[str, Any] = {
            "workflowRunId": run_id,
            "workflowUrl": message.get("workflowUrl"),
            "workflowState": "RUN_FAILED",
            "workflowRunCreatedAt": message.get("workflowCreatedAt", message.get("createdAt")),
            "workflowRunCompletedAt": message.get("createdAt"),
            "dlqId": record.dlq_id,
        }
        if message.get("callerIP"):
            run["workflowRunCallerIp"] = message["callerIP"]
        if message.get("flowControlKey"):
            run["flowControlKey"] = message["flowControlKey"]
        _copy_labels(message, run)
        if (state := self.callback_state(record)) is not None:
            run["failureFunction"] = {"state": state}
        self._add_run(RunRecord(key=(int(run["workflowRunCreatedAt"]), run_id), run=run))

    def get(self, dlq_id: str) -> DlqRecord:
        key = parse_dlq_id(dlq_id)
        record = self._entries.get(key) if key is not None else None
        if record is None or record.dlq_id != dlq_id:
            raise not_found()
        return record

    def exists(self, dlq_id: str) -> bool:
        try:
            self.get(dlq_id)
        except ApiError:
            return False
        return True

    def select(self, dlq_ids: Iterable[str]) -> list[DlqRecord]:
        """All of them or a 404: a bulk call by ids does nothing unless every id exists."""
        records = []
        for dlq_id in dlq_ids:
            try:
                records.append(self.get(dlq_id))
            except ApiError as error:
                raise not_found(SOME_NOT_FOUND) from error
        return records

    def page(
        self, dlq_filter: DlqFilter, after: DlqKey | None, limit: int, *, newest: bool = False
    ) -> tuple[list[DlqRecord], bool]:
        """Up to `limit` matches after `after`, oldest first (or newest first, then
        `after` is the last key seen going down), and whether more remain."""
        found: list[DlqRecord] = []
        keys = self._keys.before(after) if newest else self._keys.after(after)
        for key in keys:
            record = self._entries[key]
            if dlq_filter.matches(record.message):
                if len(found) == limit:
                    return found, True
                found.append(record)
        return found, False

    def page_at(
        self, dlq_filter: DlqFilter, offset: int, limit: int, *, newest: bool = False
    ) -> tuple[list[DlqRecord], bool]:
        """Up to `limit` matches from the `offset`-th on (``offset_cursor``)."""
        keys = self._keys.before(None) if newest else self._keys.after(None)
        matches = (r for r in map(self._entries.__getitem__, keys) if dlq_filter.matches(r.message))
        found: list[DlqRecord] = []
        for index, record in enumerate(matches):
            if index < offset:
                continue
            if len(found) == limit:
                return found, True
            found.append(record)
        return found, False

    def all_entries(self) -> list[dict[str, Any]]:
        return [self._entries[key].message for key in self._keys.after(None)]

    def _remove(self, record: DlqRecord) -> None:
        del self._entries[record.key]
        self._keys.remove(record.key)
        self._callback_due.pop(record.dlq_id, None)
        self._lagging.pop(record.key, None)

    # ----------------------------------------------------------------- actions

    def resume(self, record: DlqRecord, overrides: Overrides, via: str) -> dict[str, Any]:
        """Always accepted: an entry whose step changed in the app (``incompatible``)
        starts a run that fails at that step and comes back as a new entry."""
        return self._start_run(record, overrides, via, "resume")

    def restart(self, record: DlqRecord, overrides: Overrides, via: str) -> dict[str, Any]:
        return self._start_run(record, overrides, via, "restart")

    def _start_run(
        self, record: DlqRecord, overrides: Overrides, via: str, action: str
    ) -> dict[str, Any]:
        now = self.clock.now_ms()
        source = record.message
        run_id = new_workflow_run_id(self.rng)
        template = copy.deepcopy(source)  # the entry may stay (keep_resumed, resumed_lag)
        _apply_overrides(template, overrides)
        delay_ms = (overrides.delay_seconds or 0) * 1000
        run: dict[str, Any] = {
            "workflowRunId": run_id,
            "workflowUrl": source.get("workflowUrl"),
            "workflowState": "RUN_STARTED",
            "workflowRunCreatedAt": now,
            ("resumedFromDlqId" if action == "resume" else "restartedFromDlqId"): record.dlq_id,
            "keptSteps": record.failed_step if action == "resume" else 0,
            "overrides": dict(overrides.recorded),
            "maxRetries": template.get("maxRetries"),
        }
        if delay_ms:
            run["notBefore"] = now + delay_ms
        for name in ("flowControlKey", "failureCallback"):
            if name in template:
                run[name] = template[name]
        if overrides.flow_control_value is not None:
            run["flowControlValue"] = overrides.flow_control_value
        if overrides.retry_delay is not None:
            run["retryDelay"] = overrides.retry_delay
        _copy_labels(template, run)
        finishes_at = now + delay_ms + round(self.config.run_seconds * 1000)
        self._add_run(
            RunRecord(
                key=(now, run_id),
                run=run,
                template=template,
                failed_step=record.failed_step if action == "resume" else 0,
                step_name=record.step_name,
                finishes_at=finishes_at,
                incompatible=record.incompatible and action == "resume",
            )
        )
        if "flowControlKey" in run:
            self.flow_keys.add(str(run["flowControlKey"]))
        self._schedule("run", run_id, finishes_at)
        self._leave_after_action(record)
        self._log(action, record, via, new_run=run_id, created_at=now, overrides=overrides.recorded)
        return {"workflowRunId": run_id, "workflowCreatedAt": now}

    def _leave_after_action(self, record: DlqRecord) -> None:
        """Per the config: leave the DLQ now, after `resumed_lag` requests, or never."""
        if self.config.keep_resumed:
            self._lagging.pop(record.key, None)
        elif self.config.resumed_lag > 0:
            self._lagging[record.key] = self.api_requests + self.config.resumed_lag
        else:
            self._remove(record)

    def delete(self, record: DlqRecord, via: str) -> None:
        self._remove(record)
        self._log("delete", record, via)

    def callback_state(self, record: DlqRecord) -> str | None:
        return callback_state_of(record.message)

    def retry_callback(self, record: DlqRecord) -> dict[str, Any]:
        state = self.callback_state(record)
        if state != "CALLBACK_FAIL":
            raise bad_request(
                f"failure callback can only be retried from CALLBACK_FAIL, it is {state}"
            )
        now = self.clock.now_ms()
        self._set_callback_state(record, "CALLBACK_INPROGRESS")
        self._schedule_callback(record, now)
        self._log("callback_retry", record, "single")
        return {
            "workflowRunId": record.message.get("workflowRunId"),
            "workflowCreatedAt": record.message.get("workflowCreatedAt"),
        }

    def cancel_callback(self, record: DlqRecord) -> None:
        state = self.callback_state(record)
        if state != "CALLBACK_INPROGRESS":
            raise bad_request(
                f"failure callback can only be canceled from CALLBACK_INPROGRESS, it is {state}"
            )
        self._set_callback_state(record, "CALLBACK_CANCELED")
        self._callback_due.pop(record.dlq_id, None)
        self._log("callback_cancel", record, "single")

    def set_callback_state(self, dlq_id: str, state: str) -> dict[str, Any]:
        """Control API: put an entry's failure callback in any state (adds one if absent)."""
        if state not in CALLBACK_STATES:
            raise bad_request(f"invalid callback state: {state}")
        record = self.get(dlq_id)
        self._set_callback_state(record, state)
        if state == "CALLBACK_INPROGRESS":
            self._schedule_callback(record, self.clock.now_ms())
        else:
            self._callback_due.pop(dlq_id, None)
        return record.message

    def _set_callback_state(self, record: DlqRecord, state: str) -> None:
        message = record.message
        if "failureFunctionState" in message:
            message["failureFunctionState"] = state
        if "failureCallbackInfo" in message or "failureFunctionState" not in message:
            message["failureCallbackInfo"] = callback_info(state)
        run = self._runs.get(str(message.get("workflowRunId")))
        if run is not None and run.run.get("dlqId") == record.dlq_id:
            run.run["failureFunction"] = {"state": state}

    def _log(
        self,
        action: str,
        record: DlqRecord,
        via: str,
        *,
        new_run: str | None = None,
        created_at: int | None = None,
        overrides: dict[str, str] | None = None,
    ) -> None:
        entry = {
            "action": action,
            "dlqId": record.dlq_id,
            "workflowRunId": record.message.get("workflowRunId"),
            "newWorkflowRunId": new_run,
            "newWorkflowCreatedAt": created_at,
            "overrides": overrides or {},
            "via": via,
            "at": self.clock.now_ms(),
        }
        self.actions.append(entry)
        if self.on_action is not None:
            self.on_action(dict(entry))

    # ----------------------------------------------------------------- control seeding

    def seed_entries(self, count: int, fields: dict[str, Any]) -> list[dict[str, Any]]:
        """Add `count` realistic entries with any field overridden (None removes a field)."""
        if count < 1:
            raise bad_request("count must be >= 1")
        fields = dict(fields)
        incompatible = bool(fields.pop("incompatibleStep", False))
        if count > 1 and "dlqId" in fields:
            raise bad_request("dlqId can only be given when count is 1")
        now = self.clock.now_ms()
        created: list[dict[str, Any]] = []
        for _ in range(count):
            created_at = fields.get("createdAt")
            if not isinstance(created_at, int):
                created_at = now  # a fresh failure, after everything already there
            seeded = realistic_message(self.rng, created_at)
            for name, value in fields.items():
                if value is None:
                    seeded.message.pop(name, None)
                else:
                    seeded.message[name] = copy.deepcopy(value)
            status = fields.get("responseStatus")
            if status in RESPONSES and "responseHeader" not in fields:
                # Keep the recorded response consistent with the status asked for (a 500
                # must not carry the 489's Upstash-NonRetryable-Error header).
                _, content_type, body, extra_headers = RESPONSES[status]
                seeded.message["responseHeader"] = {
                    "Content-Type": [content_type],
                    **{name: [value] for name, value in extra_headers.items()},
                }
                if "responseBody" not in fields and "responseBodyBase64" not in fields:
                    seeded.message.pop("responseBodyBase64", None)
                    seeded.message["responseBody"] = body
            if "labels" in fields and "label" not in fields:
                labels = seeded.message.get("labels") or []
                if labels:
                    seeded.message["label"] = labels[0]
                else:
                    seeded.message.pop("label", None)
            record = self._add_entry(seeded, created_at, now, incompatible=incompatible)
            created.append(record.message)
        return created

    # ----------------------------------------------------------------- runs

    def _add_run(self, record: RunRecord) -> None:
        self._runs[record.key[1]] = record
        self._run_keys.add(record.key)

    def all_runs(self) -> list[dict[str, Any]]:
        return [self._runs[key[1]].run for key in self._run_keys.after(None)]

    def runs_page(
        self, query: LogsQuery, before: RunKey | None, limit: int
    ) -> tuple[list[dict[str, Any]], RunKey | None]:
        """Newest first; returns the page and the key to continue before (None at the end)."""
        if query.run_ids:
            keys: Iterable[RunKey] = sorted(
                (
                    record.key
                    for run_id, created in query.run_ids
                    if (record := self._runs.get(run_id)) is not None
                    and (created is None or record.run["workflowRunCreatedAt"] == created)
                    and (before is None or record.key < before)
                ),
                reverse=True,
            )
        else:
            keys = self._run_keys.before(before)
        found: list[dict[str, Any]] = []
        last: RunKey | None = None
        for key in keys:
            run = self._runs[key[1]].run
            if query.matches(run):
                if len(found) == limit:
                    return found, last
                found.append(run)
                last = key
        return found, None

    # ----------------------------------------------------------------- flow control

    def flow_control_state(self, key: str) -> dict[str, Any]:
        """A key is known once a message or run used it, or it was paused; else 404."""
        self.settle()
        if key not in self.flow_keys and key not in self.paused_flow_keys:
            raise not_found("flow control key not found")
        waiting = sum(
            1
            for record in self._runs.values()
            if record.run.get("flowControlKey") == key
            and record.run["workflowState"] == "RUN_STARTED"
        )
        paused = key in self.paused_flow_keys
        return {"flowControlKey": key, "waitListSize": waiting, "isPaused": paused}

    def pause_flow_control(self, key: str) -> None:
        self.settle()
        self.paused_flow_keys.add(key)
        self.flow_keys.add(key)

    def resume_flow_control(self, key: str) -> None:
        self.settle()
        self.paused_flow_keys.discard(key)
        now = self.clock.now_ms()
        for run_id in self._held_runs.pop(key, []):
            record = self._runs[run_id]
            record.finishes_at = now + round(self.config.run_seconds * 1000)
            self._schedule("run", run_id, record.finishes_at)

    # ----------------------------------------------------------------- events

    def _schedule(self, kind: str, subject: str, due_ms: int) -> None:
        self._event_order += 1
        heapq.heappush(self._events, _Event(due_ms, self._event_order, kind, subject))

    def _schedule_callback(self, record: DlqRecord, now: int) -> None:
        due = now + round(self.config.callback_seconds * 1000)
        self._callback_due[record.dlq_id] = due
        self._schedule("callback", record.dlq_id, due)

    def settle(self) -> None:
        """Apply every event due on the simulated clock, in time order."""
        now = self.clock.now_ms()
        while self._events and self._events[0].due_ms <= now:
            event = heapq.heappop(self._events)
            if event.kind == "run":
                self._finish_run(event.subject, event.due_ms)
            else:
                self._settle_callback(event.subject, event.due_ms)

    def _settle_callback(self, dlq_id: str, due_ms: int) -> None:
        if self._callback_due.get(dlq_id) != due_ms:
            return  # canceled, retried again, or the entry is gone
        del self._callback_due[dlq_id]
        self._set_callback_state(self.get(dlq_id), self.config.callback_outcome)

    def _finish_run(self, run_id: str, due_ms: int) -> None:
        record = self._runs.get(run_id)
        if record is None or record.finishes_at != due_ms:
            return
        run = record.run
        if run["workflowState"] != "RUN_STARTED":
            return
        flow_key = run.get("flowControlKey")
        if flow_key in self.paused_flow_keys:
            self._held_runs.setdefault(str(flow_key), []).append(run_id)
            record.finishes_at = None
            return
        outcome = random.Random(f"{self.seed}:{run_id}")
        run["workflowRunCompletedAt"] = due_ms
        ratio = self.config.success_ratio_by_url.get(
            str(run.get("workflowUrl")), self.config.success_ratio
        )
        if outcome.random() < ratio and not record.incompatible:
            run["workflowState"] = "RUN_SUCCESS"
            return
        run["workflowState"] = "RUN_FAILED"
        entry = self._reenter_dlq(record, due_ms, outcome)
        run["dlqId"] = entry.dlq_id
        if (state := self.callback_state(entry)) is not None:
            run["failureFunction"] = {"state": state}

    def _reenter_dlq(self, record: RunRecord, due_ms: int, outcome: random.Random) -> DlqRecord:
        """A resumed run that fails again is a NEW DLQ entry with a new dlqId."""
        message = copy.deepcopy(record.template or {})
        message.pop("dlqId", None)
        run = record.run
        status = outcome.choices(list(RESPONSES), weights=[r[0] for r in RESPONSES.values()])[0]
        _, content_type, body, extra_headers = RESPONSES[status]
        if record.incompatible:
            status, content_type, body, extra_headers = incompatible_step_response(record.step_name)
        message.update(
            messageId=new_message_id(outcome),
            workflowRunId=run["workflowRunId"],
            workflowCreatedAt=run["workflowRunCreatedAt"],
            createdAt=due_ms,
            responseStatus=status,
            responseBody=body,
            responseHeader={
                "Content-Type": [content_type],
                **{name: [value] for name, value in extra_headers.items()},
            },
        )
        message.pop("responseBodyBase64", None)
        message.get("header", {})["Upstash-Workflow-Runid"] = [run["workflowRunId"]]
        message.pop("failureFunctionState", None)
        if message.get("failureCallback"):
            message["failureCallbackInfo"] = callback_info("CALLBACK_INPROGRESS")
        else:
            message.pop("failureCallbackInfo", None)
        seeded = SeededMessage(message, record.failed_step, record.step_name)
        key = self._free_key(due_ms)
        seeded.message["dlqId"] = format_dlq_id(key)
        # Still the old step name in the request and a new one in the app: resuming
        # this entry fails the same way again; restarting it does not.
        entry = self._add_entry(seeded, due_ms, due_ms, incompatible=record.incompatible)
        return entry


#: What the workflow SDK (@upstash/workflow, src/context/auto-executor.ts and
#: src/serve/index.ts) answers when a step's name in the request differs from the code:
#: its handler catches the WorkflowError and answers 500 with the formatted error.
SDK_VERSION_HEADER = "Upstash-Workflow-Sdk-Version"


def incompatible_step_response(step_name: str) -> tuple[int, str, str, dict[str, str]]:
    """(status, content type, body, extra headers) of a step whose name changed."""
    renamed = f"{step_name}V2"
    message = f"Incompatible step name. Expected '{renamed}', got '{step_name}' from the request"
    body = json.dumps(
        {
            "error": "WorkflowError",
            "message": message,
            "stack": f"WorkflowError: {message}\n    at validateStep (auto-executor.ts)",
        },
        separators=(",", ":"),
    )
    return 500, "application/json", body, {SDK_VERSION_HEADER: "1"}


def _apply_overrides(message: dict[str, Any], overrides: Overrides) -> None:
    """The new run's settings: each header replaces the failed run's own setting."""
    if overrides.retries is not None:
        message["maxRetries"] = overrides.retries
    if overrides.flow_control_key is not None:
        message["flowControlKey"] = overrides.flow_control_key
    if overrides.failure_callback is not None:
        message["failureCallback"] = overrides.failure_callback
    if overrides.labels is not None:
        message["labels"] = list(overrides.labels)
        message["label"] = overrides.labels[0]


def _copy_labels(source: dict[str, Any], target: dict[str, Any]) -> None:
    labels = source.get("labels")
    if labels:
        target["label"] = labels[0]
        target["labels"] = list(labels)
    elif source.get("label"):
        target["label"] = source["label"]
        target["labels"] = [source["label"]]

"""Following resumed runs to their outcome: what to follow, how to poll, and when it is over.

Airflow-free on purpose: ``WorkflowRunSensor.poke()`` drives a :class:`RunFollower` with the
sync client (:func:`poll_sync`), ``WorkflowRunTrigger.run()`` drives the same follower with
the async client (:func:`poll_async`), and a redrive canary calls the blocking
:func:`follow_runs`; :func:`decide` is the one place that turns what was seen into a verdict.

How a poll stays cheap for many runs: ``GET /v2/workflows/logs`` takes
``workflowRuns=ID1@MS1,ID2@MS2,...`` (at most :data:`MAX_RUNS_PER_CALL`, 10, per call: the
logs API pages at most 10 runs), so a poll asks about the open runs 10 at a time, and a run
that reached a final state (``RUN_SUCCESS``, ``RUN_FAILED``, ``RUN_CANCELED``) is never asked
about again. Following 1,000 runs costs 100 requests on the first poll and fewer as runs
finish, instead of 1,000.
Rate limits (429) are waited out by the client's retry policy; what outlasts it is a
transient error (:func:`is_transient`) and the next poll simply tries again, keeping what the
pages before the error taught.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from airflow_provider_wfdlq.client import (
    MAX_LOG_RUNS,
    AsyncWorkflowDLQClient,
    RunLogPage,
    ValidationError,
    WFDLQError,
    WorkflowDLQClient,
    WorkflowRun,
    check_dlq_id,
    check_run_id,
    to_unix_ms,
)
from airflow_provider_wfdlq.client.validation import check_ratio
from airflow_provider_wfdlq.recovery._polling import drive_async, drive_sync, is_transient
from airflow_provider_wfdlq.recovery.callbacks import _literal
from airflow_provider_wfdlq.recovery.rendered import is_missing

__all__ = [
    "FINAL_RUN_STATES",
    "MAX_RUNS_PER_CALL",
    "ON_TIMEOUT",
    "FollowVerdict",
    "LogsCall",
    "RunFollower",
    "RunOutcome",
    "RunRef",
    "RunStatus",
    "RunWatch",
    "coerce_runs",
    "decide",
    "follow_runs",
    "is_transient",
    "poll_async",
    "poll_sync",
]

RUNNING: Final = "RUN_STARTED"
SUCCESS: Final = "RUN_SUCCESS"
FAILED: Final = "RUN_FAILED"
CANCELED: Final = "RUN_CANCELED"
FINAL_RUN_STATES: Final = (SUCCESS, FAILED, CANCELED)
MAX_RUNS_PER_CALL: Final = MAX_LOG_RUNS
"""The most ``workflowRuns`` one logs call may name, and the logs page size: 10 ("Run mode:
Max 10 (default 10)", workflow/openapi.yaml); the client refuses more."""
ON_TIMEOUT: Final = ("fail", "report")
MAX_LISTED: Final = 1000
"""How many failed / canceled / running runs an outcome names before it only counts."""
MAX_NAMED: Final = 10
"""How many runs a message names."""

_RUNS_ACCEPTED = (
    "a ResumeDLQOperator result (or its 'runs' list of {'workflow_run_id', "
    "'workflow_created_at'} dicts), 'ID@MS' strings, a comma-separated 'ID1@MS1,ID2@MS2', "
    "or (run_id, created_at_ms) pairs"
)


# --- user input --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRef:
    """A run to follow; ``resumed_from`` is the DLQ entry it was resumed from, if known."""

    workflow_run_id: str
    workflow_created_at: int
    resumed_from: str | None = None

    def to_json(self) -> list[Any]:
        return [self.workflow_run_id, self.workflow_created_at, self.resumed_from]

    @classmethod
    def from_json(cls, data: list[Any]) -> RunRef:
        run_id, created_at, resumed_from = data
        return cls(str(run_id), int(created_at), resumed_from)


@dataclass
class _Collected:
    runs: dict[str, RunRef] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    truncated: bool = False

    def add(self, ref: RunRef) -> None:
        self.runs.setdefault(ref.workflow_run_id, ref)


def _ref(run_id: Any, created_at: Any, resumed_from: Any, field_: str) -> RunRef:
    origin = None if is_missing(resumed_from) else check_dlq_id(resumed_from, field_)
    return RunRef(check_run_id(run_id, field_), to_unix_ms(created_at, field_), origin)


def _collect(value: Any, field_: str, into: _Collected) -> None:
    if type(value).__name__.endswith("Undefined"):  # Jinja's, without importing Jinja
        problem = "is undefined: the upstream result is missing (did that task run first?)"
        raise ValidationError(field_, type(value).__name__, _RUNS_ACCEPTED, problem)
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "[{(":
            parsed = _literal(text)
            if not isinstance(parsed, str):
                _collect(parsed, field_, into)
                return
            raise ValidationError(field_, value, _RUNS_ACCEPTED, "looks like a list but is not")
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            run_id, at, created_at = item.partition("@")
            if not at:
                raise ValidationError(field_, item, _RUNS_ACCEPTED, "has no '@<created-at ms>'")
            into.add(_ref(run_id, created_at, None, field_))
        return
    if isinstance(value, Mapping):
        _collect_mapping(value, field_, into)
        return
    if hasattr(value, "workflow_run_id") and hasattr(value, "workflow_created_at"):
        into.add(_ref(value.workflow_run_id, value.workflow_created_at, None, field_))
        return
    if isinstance(value, tuple | list) and len(value) == 2 and isinstance(value[1], int):
        into.add(_ref(value[0], value[1], None, field_))
        return
    if isinstance(value, Iterable) and not isinstance(value, bytes):
        for item in value:
            _collect(item, field_, into)
        return
    raise ValidationError(field_, value, _RUNS_ACCEPTED, "is not a workflow run reference")


def _collect_mapping(value: Mapping[str, Any], field_: str, into: _Collected) -> None:
    if "runs" in value:  # a ResumeDLQOperator result
        into.truncated = into.truncated or bool(value.get("runs_truncated"))
        _collect(value["runs"] or [], field_, into)
        return
    if "workflow_run_id" in value or "workflowRunId" in value:
        run_id = value.get("workflow_run_id", value.get("workflowRunId"))
        created_at = value.get("workflow_created_at", value.get("workflowCreatedAt"))
        origin = value.get("dlq_id")
        if is_missing(run_id):  # the resume's answer was lost: its new run id is unknown
            into.unknown.append(
                "?" if is_missing(origin) else check_dlq_id(origin, field_ + ".dlq_id")
            )
            return
        into.add(_ref(run_id, created_at, origin, field_))
        return
    raise ValidationError(
        field_, value, _RUNS_ACCEPTED, "is a mapping without 'runs' or 'workflow_run_id'"
    )


def coerce_runs(
    value: Any, field: str = "runs"
) -> tuple[tuple[RunRef, ...], tuple[str, ...], bool]:
    """The runs to follow in any form an upstream task hands over.

    Returns ``(runs, unknown, truncated)``: ``unknown`` names the DLQ entries whose resume
    answer was lost (their new run id is unknown, so they cannot be followed), ``truncated``
    is the upstream result's ``runs_truncated`` (it named only part of what it resumed). An
    empty list is a real answer (the resume acted on nothing): nothing to follow.
    """
    if is_missing(value) and not type(value).__name__.endswith("Undefined"):
        raise ValidationError(field, value, _RUNS_ACCEPTED, "is empty")
    collected = _Collected()
    _collect(value, field, collected)
    return tuple(collected.runs.values()), tuple(collected.unknown), collected.truncated


def _ratio(value: Any, field_: str) -> float | None:
    return None if is_missing(value) else check_ratio(value, field_)


def _on_timeout(value: Any) -> str:
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in ON_TIMEOUT:
        raise ValidationError("on_timeout", value, "one of " + ", ".join(map(repr, ON_TIMEOUT)))
    return str(text)


# --- what to follow ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunWatch:
    """Which runs to follow and what their outcome must be. Build it with :meth:`build`.

    ``min_success_ratio`` compares ``RUN_SUCCESS`` with every followed run (runs whose new
    id is unknown are not followed and not counted). ``on_timeout``: ``"fail"`` fails when
    runs are still running at the deadline; ``"report"`` ends with the outcome so far
    (still-running runs count as not recovered for the ratio).
    """

    runs: tuple[RunRef, ...]
    unknown: tuple[str, ...] = ()
    truncated: bool = False
    min_success_ratio: float | None = None
    on_timeout: str = "fail"

    @classmethod
    def build(
        cls, *, runs: Any, min_success_ratio: Any = None, on_timeout: Any = "fail"
    ) -> RunWatch:
        """From rendered user values; every problem raises ValidationError naming the field."""
        refs, unknown, truncated = coerce_runs(runs)
        return cls(
            refs, unknown, truncated, _ratio(min_success_ratio, "min_success_ratio"),
            _on_timeout(on_timeout),
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": [ref.to_json() for ref in self.runs],
            "unknown": list(self.unknown),
            "truncated": self.truncated,
            "min_success_ratio": self.min_success_ratio,
            "on_timeout": self.on_timeout,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunWatch:
        return cls(
            runs=tuple(RunRef.from_json(row) for row in data["runs"]),
            unknown=tuple(data.get("unknown", ())),
            truncated=bool(data.get("truncated", False)),
            min_success_ratio=_ratio(data.get("min_success_ratio"), "min_success_ratio"),
            on_timeout=_on_timeout(data.get("on_timeout", "fail")),
        )


# --- what was seen -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunStatus:
    """One followed run as last seen in the run logs."""

    state: str
    dlq_id: str | None = None
    completed_at: int | None = None
    failure_function_state: str | None = None
    workflow_url: str | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_RUN_STATES

    @classmethod
    def of(cls, run: WorkflowRun) -> RunStatus:
        return cls(
            state=run.workflow_state or RUNNING,
            dlq_id=run.dlq_id,
            completed_at=run.workflow_run_completed_at,
            failure_function_state=run.failure_function_state,
            workflow_url=run.workflow_url,
        )

    def to_json(self) -> list[Any]:
        """Compact and JSON-safe, to hand what a first poke saw over to the trigger."""
        return [
            self.state, self.dlq_id, self.completed_at, self.failure_function_state,
            self.workflow_url,
        ]  # fmt: skip

    @classmethod
    def from_json(cls, data: list[Any]) -> RunStatus:
        state, dlq_id, completed_at, failure_state, url = data
        return cls(state, dlq_id, completed_at, failure_state, url)


@dataclass(frozen=True)
class RunOutcome:
    """Where the followed runs stand: the XCom summary and the canary's answer.

    ``counts`` has every final state (0 when none); ``still_running`` counts runs not final
    yet, ``not_seen`` those of them the logs never showed. ``failed`` names each run that
    failed again with its NEW ``dlq_id`` (the entry it re-entered the DLQ as).
    """

    followed: int
    counts: Mapping[str, int]
    still_running: int
    not_seen: int = 0
    failed: tuple[Mapping[str, Any], ...] = ()
    canceled: tuple[str, ...] = ()
    running: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    truncated: bool = False
    listed_truncated: bool = False
    timed_out: bool = False
    stopped: bool = False

    @property
    def recovered(self) -> int:
        return self.counts.get(SUCCESS, 0)

    @property
    def failed_again(self) -> int:
        return self.counts.get(FAILED, 0)

    @property
    def success_ratio(self) -> float | None:
        """``RUN_SUCCESS`` over every followed run; None when nothing was followed."""
        return None if self.followed == 0 else self.recovered / self.followed

    @property
    def done(self) -> bool:
        return self.still_running == 0

    def to_json(self) -> dict[str, Any]:
        ratio = self.success_ratio
        return {
            "followed": self.followed,
            "counts": dict(self.counts),
            "recovered": self.recovered,
            "failed_again": self.failed_again,
            "canceled_runs": self.counts.get(CANCELED, 0),
            "still_running": self.still_running,
            "not_seen": self.not_seen,
            "success_ratio": None if ratio is None else round(ratio, 4),
            "failed": [dict(item) for item in self.failed],
            "canceled": list(self.canceled),
            "running": list(self.running),
            "unknown": len(self.unknown),
            "unknown_dlq_ids": list(self.unknown),
            "not_followed_beyond_result": self.truncated,
            "lists_truncated": self.listed_truncated,
            "timed_out": self.timed_out,
            "stopped": self.stopped,
        }

    def summary(self) -> str:
        """One line: what an on-call engineer reads first."""
        text = (
            f"{self.followed} run(s) followed: {self.recovered} recovered, "
            f"{self.failed_again} failed again, {self.counts.get(CANCELED, 0)} canceled, "
            f"{self.still_running} still running"
        )
        if self.not_seen:
            text += f" ({self.not_seen} not in the run logs yet)"
        if self.unknown:
            text += f"; {len(self.unknown)} unknown (resume answer lost)"
        if self.success_ratio is not None:
            text += f"; success ratio {self.success_ratio:.1%}"
        return text


def outcome_of(
    watch: RunWatch,
    statuses: Mapping[str, RunStatus],
    *,
    timed_out: bool = False,
    stopped: bool = False,
) -> RunOutcome:
    """Count what was seen; lists are capped at :data:`MAX_LISTED` runs each."""
    counts = dict.fromkeys(FINAL_RUN_STATES, 0)
    failed: list[dict[str, Any]] = []
    canceled: list[str] = []
    running: list[str] = []
    not_seen = 0
    capped = False
    for ref in watch.runs:
        status = statuses.get(ref.workflow_run_id)
        if status is None or not status.final:
            not_seen += status is None
            capped |= _listed(running, ref.workflow_run_id)
            continue
        counts[status.state] += 1
        if status.state == FAILED:
            capped |= _listed(failed, _failed_item(ref, status))
        elif status.state == CANCELED:
            capped |= _listed(canceled, ref.workflow_run_id)
    return RunOutcome(
        followed=len(watch.runs),
        counts=counts,
        still_running=len(watch.runs) - sum(counts.values()),
        not_seen=not_seen,
        failed=tuple(failed),
        canceled=tuple(canceled),
        running=tuple(running),
        unknown=watch.unknown,
        truncated=watch.truncated,
        listed_truncated=capped,
        timed_out=timed_out,
        stopped=stopped,
    )


def _listed(items: list[Any], item: Any) -> bool:
    """Append unless the list is full; True when it was full."""
    if len(items) >= MAX_LISTED:
        return True
    items.append(item)
    return False


def _failed_item(ref: RunRef, status: RunStatus) -> dict[str, Any]:
    return {
        "workflow_run_id": ref.workflow_run_id,
        "dlq_id": status.dlq_id,
        "resumed_from": ref.resumed_from,
        "workflow_url": status.workflow_url,
        "completed_at": status.completed_at,
        "failure_function_state": status.failure_function_state,
    }


@dataclass(frozen=True)
class FollowVerdict:
    """``success``, ``failed`` or ``timeout`` (the wait is over) or ``waiting``."""

    status: str
    message: str
    outcome: RunOutcome

    @property
    def done(self) -> bool:
        return self.status != "waiting"

    def to_event(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message, "outcome": self.outcome.to_json()}


def _named(ids: Iterable[str]) -> str:
    items = list(ids)
    shown = ", ".join(items[:MAX_NAMED])
    return shown + (f" and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else "")


def decide(
    watch: RunWatch,
    statuses: Mapping[str, RunStatus],
    *,
    final: bool = False,
    stopped: bool = False,
) -> FollowVerdict:
    """The verdict on what was seen; the only decision logic, shared by every mode.

    Waits while runs are open, unless ``min_success_ratio`` can no longer be reached (even
    if every open run recovered), which fails at once. ``final`` (the deadline passed)
    applies ``on_timeout`` to runs still open.
    """
    outcome = outcome_of(watch, statuses, timed_out=final and not stopped, stopped=stopped)
    ratio = watch.min_success_ratio
    below = (
        ratio is not None and outcome.followed > 0 and outcome.recovered < ratio * outcome.followed
    )
    best = outcome.recovered + outcome.still_running
    if ratio is not None and outcome.followed > 0 and best < ratio * outcome.followed:
        failed = [item["dlq_id"] or item["workflow_run_id"] for item in outcome.failed]
        message = (
            f"{outcome.summary()}: below min_success_ratio {ratio:g}"
            + (" even if the running ones recover" if outcome.still_running else "")
            + (f"; back in the DLQ as {_named(failed)}" if failed else "")
        )
        return FollowVerdict("failed", message, outcome)
    if outcome.still_running and not final:
        return FollowVerdict(
            "waiting", f"Waiting: {outcome.summary()}; running: {_named(outcome.running)}", outcome
        )
    if outcome.still_running and watch.on_timeout == "fail":
        why = "stopped" if stopped else "timed out"
        message = f"{why.capitalize()}: {outcome.summary()}; running: {_named(outcome.running)}"
        return FollowVerdict("timeout", message, outcome)
    if below:  # only reachable with runs still running at the end under on_timeout="report"
        return FollowVerdict(
            "failed", f"{outcome.summary()}: below min_success_ratio {ratio:g}", outcome
        )
    return FollowVerdict("success", outcome.summary(), outcome)


# --- how to poll (sans-IO: the plan names calls, a driver makes them) ---------------------------


@dataclass(frozen=True)
class LogsCall:
    """One page of ``GET /v2/workflows/logs?workflowRuns=...``; the answer is a RunLogPage."""

    runs: tuple[tuple[str, int], ...]
    cursor: str | None = None

    @property
    def count(self) -> int:
        return min(len(self.runs), MAX_RUNS_PER_CALL)


PollPlan: TypeAlias = Generator[LogsCall, RunLogPage, FollowVerdict]


class RunFollower:
    """Polls one :class:`RunWatch`, remembering final states between polls.

    ``known`` seeds that memory (what a first poke saw, handed to the trigger).
    ``batch_size`` is how many runs one logs call names (the API allows 10).
    """

    def __init__(
        self,
        watch: RunWatch,
        known: Mapping[str, RunStatus] | None = None,
        *,
        batch_size: int = MAX_RUNS_PER_CALL,
    ) -> None:
        if not 1 <= batch_size <= MAX_RUNS_PER_CALL:
            raise ValueError(f"batch_size: {batch_size!r} must be within 1..{MAX_RUNS_PER_CALL}")
        self.watch = watch
        self.known: dict[str, RunStatus] = dict(known or {})
        self.batch_size = batch_size
        self.last: FollowVerdict | None = None
        self.calls = 0
        self.polls = 0

    def known_json(self) -> dict[str, list[Any]]:
        """The final states seen so far (open runs are asked about again anyway)."""
        return {run_id: s.to_json() for run_id, s in self.known.items() if s.final}

    @staticmethod
    def known_from_json(data: Mapping[str, list[Any]] | None) -> dict[str, RunStatus]:
        return {run_id: RunStatus.from_json(row) for run_id, row in (data or {}).items()}

    def open_runs(self) -> list[RunRef]:
        return [
            ref
            for ref in self.watch.runs
            if not ((s := self.known.get(ref.workflow_run_id)) is not None and s.final)
        ]

    def poll(self) -> PollPlan:
        """One poll as a generator of calls; its return value is the verdict."""
        self.polls += 1
        open_ = self.open_runs()
        wanted = {ref.workflow_run_id for ref in open_}
        for start in range(0, len(open_), self.batch_size):
            batch = tuple(
                (ref.workflow_run_id, ref.workflow_created_at)
                for ref in open_[start : start + self.batch_size]
            )
            cursor: str | None = None
            while True:
                self.calls += 1
                page: RunLogPage = yield LogsCall(batch, cursor)
                for run in page.runs:  # learnt at once: an error later in the poll keeps it
                    if run.workflow_run_id in wanted:
                        self.known[run.workflow_run_id] = RunStatus.of(run)
                cursor = page.cursor
                if cursor is None:
                    break
        return self.verdict()

    def verdict(self, *, final: bool = False, stopped: bool = False) -> FollowVerdict:
        """Decide on what is known now (no request)."""
        self.last = decide(self.watch, self.known, final=final, stopped=stopped)
        return self.last


# --- drivers -----------------------------------------------------------------------------------


def poll_sync(client: WorkflowDLQClient, follower: RunFollower) -> FollowVerdict:
    """One poll with the blocking client (the sensor's poke, the canary)."""

    def make(call: LogsCall) -> RunLogPage:
        return client.run_logs(workflow_runs=call.runs, count=call.count, cursor=call.cursor)

    return drive_sync(follower.poll(), make)


async def poll_async(client: AsyncWorkflowDLQClient, follower: RunFollower) -> FollowVerdict:
    """One poll with the async client (the trigger); calls go one after the other, which
    keeps a poll's burst inside the logs rate limit."""

    async def make(call: LogsCall) -> RunLogPage:
        return await client.run_logs(workflow_runs=call.runs, count=call.count, cursor=call.cursor)

    return await drive_async(follower.poll(), make)


def follow_runs(
    client: WorkflowDLQClient,
    runs: Any,
    *,
    timeout_s: float,
    poll_interval_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    should_stop: Callable[[], bool] = lambda: False,
    batch_size: int = MAX_RUNS_PER_CALL,
    on_poll: Callable[[FollowVerdict], None] | None = None,
) -> RunOutcome:
    """Poll until every run is final, ``timeout_s`` passes or ``should_stop()``; blocking.

    ``runs`` is anything :func:`coerce_runs` takes (also ResumedRun objects). Never raises for
    runs that fail: the outcome says how they ended; transient API errors are polled through
    until the deadline, other API errors raise. ``outcome.timed_out`` / ``outcome.stopped``
    say why it ended early.
    """
    follower = RunFollower(RunWatch.build(runs=runs), batch_size=batch_size)
    deadline = monotonic() + max(0.0, float(timeout_s))
    while True:
        try:
            verdict = poll_sync(client, follower)
        except WFDLQError as exc:
            if not is_transient(exc):
                raise
            verdict = follower.verdict()
        if on_poll is not None:
            on_poll(verdict)
        if verdict.outcome.done:
            return verdict.outcome
        if should_stop():
            return follower.verdict(final=True, stopped=True).outcome
        remaining = deadline - monotonic()
        if remaining <= 0:
            return follower.verdict(final=True).outcome
        sleep(min(max(0.0, float(poll_interval_s)), remaining))

"""Canary and circuit breaker: stop a redrive that resumes runs into a bug that is still live.

A canary resumes the first ``canary`` selected entries, waits for their new runs to finish
(the run follower, :mod:`recovery.runs`), and lets the redrive go on only if enough of them
succeeded. During the rest of the walk the circuit breaker looks at the resumed runs that
have finished so far (one run-logs call per page, at most 100 runs) and trips when too many
failed again. Either one stops the walk, says why in the report and, if asked, pauses the
redrive's flow-control key so the runs already resumed wait instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_wfdlq.client import Overrides, ValidationError, WorkflowDLQClient
from airflow_provider_wfdlq.client.validation import check_bool, check_count, check_ratio
from airflow_provider_wfdlq.recovery.rendered import require_value
from airflow_provider_wfdlq.recovery.runs import (
    FINAL_RUN_STATES,
    MAX_RUNS_PER_CALL,
    SUCCESS,
    RunOutcome,
)


def _seconds(value: Any, field: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or number < 0:
        raise ValidationError(field, value, "a number of seconds >= 0")
    return number


def _positive(value: Any, field: str) -> float:
    number = _seconds(value, field)
    if number <= 0:
        raise ValidationError(field, value, "a number of seconds > 0 (a wait between polls)")
    return number


def _breaker_ratio(value: Any) -> float:
    ratio = check_ratio(value, "safety.breaker_max_failure_ratio")
    if ratio >= 1.0:  # "more than 100% failed" never happens: a breaker that cannot trip
        raise ValidationError(
            "safety.breaker_max_failure_ratio", value, "a ratio from 0.0 to below 1.0, or None"
        )
    return ratio


@dataclass(frozen=True)
class SafetyPolicy:
    """Canary, circuit breaker and the pause switch; all off by default.

    ``canary``: how many entries to resume first; ``canary_min_success_ratio``: the share of
    the canary's finished runs that must succeed (runs still running at ``canary_timeout``
    count as not succeeded); ``breaker_max_failure_ratio``: trip when more than this share
    of the finished resumed runs failed again, once ``breaker_min_finished`` have finished;
    ``pause_on_trip``: pause the overrides' flow-control key when either trips.
    """

    canary: int | None = None
    canary_min_success_ratio: float = 0.9
    canary_timeout: float = 900.0
    poll_interval: float = 15.0
    breaker_max_failure_ratio: float | None = None
    breaker_min_finished: int = 20
    pause_on_trip: bool = False
    pause_on_kill: bool = False
    #: Restart (from the first step) a resumed run that failed again because the workflow's
    #: code changed before its failed step, at most ``max_restarts`` times per task.
    restart_incompatible: bool = False
    max_restarts: int = 100

    @classmethod
    def build(cls, **raw: Any) -> SafetyPolicy:
        """From the operator's ``safety={...}``. A key left out keeps its default; a key
        whose value is Python None turns that policy off (``canary``, the breaker); a
        rendered null-ish text fails (it never switches a limit off)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValidationError("safety", unknown[0], f"one of {', '.join(sorted(known))}")

        def given(name: str, default: Any) -> Any:
            value = raw.get(name, default)
            return value if value is None else require_value(f"safety.{name}", value)

        canary = given("canary", None)
        breaker = given("breaker_max_failure_ratio", None)
        return cls(
            canary=None if canary in (None, 0) else check_count(canary, "safety.canary"),
            canary_min_success_ratio=check_ratio(
                given("canary_min_success_ratio", 0.9), "safety.canary_min_success_ratio"
            ),
            canary_timeout=_seconds(given("canary_timeout", 900.0), "safety.canary_timeout"),
            poll_interval=_positive(given("poll_interval", 15.0), "safety.poll_interval"),
            breaker_max_failure_ratio=None if breaker is None else _breaker_ratio(breaker),
            breaker_min_finished=check_count(
                given("breaker_min_finished", 20), "safety.breaker_min_finished"
            ),
            pause_on_trip=check_bool(given("pause_on_trip", False), "safety.pause_on_trip"),
            pause_on_kill=check_bool(given("pause_on_kill", False), "safety.pause_on_kill"),
            restart_incompatible=check_bool(
                given("restart_incompatible", False), "safety.restart_incompatible"
            ),
            max_restarts=check_count(given("max_restarts", 100), "safety.max_restarts"),
        )

    @classmethod
    def coerce(cls, value: SafetyPolicy | Mapping[str, Any] | None) -> SafetyPolicy:
        if value is None:
            return cls()
        if isinstance(value, SafetyPolicy):
            return value
        if isinstance(value, Mapping):
            return cls.build(**dict(value))
        raise ValidationError("safety", value, "a mapping of canary/breaker settings, or None")

    def check(self, overrides: Overrides) -> None:
        """Every field through the same checks as :meth:`build` (a policy built directly,
        ``SafetyPolicy(breaker_max_failure_ratio=1.0)``, gets no pass: a breaker that can
        never trip is refused, naming the field), then the pause switch against the key."""
        if self.canary is not None:
            check_count(self.canary, "safety.canary")
        type(self).build(**{name: getattr(self, name) for name in self.__dataclass_fields__})
        if self.pause_on_trip and overrides.flow_control_key is None:
            raise ValidationError(
                "pause_on_trip",
                True,
                "an overrides.flow_control_key to pause (the key the resumed runs run under)",
            )

    def describe(self) -> str:
        parts = []
        if self.canary is not None:
            parts.append(
                f"canary of {self.canary} needing {self.canary_min_success_ratio:.0%} success "
                f"within {self.canary_timeout:g}s"
            )
        if self.breaker_max_failure_ratio is not None:
            parts.append(
                f"breaker trips above {self.breaker_max_failure_ratio:.0%} failed again "
                f"(after {self.breaker_min_finished} finished)"
            )
        if self.pause_on_trip:
            parts.append("pauses the flow-control key when tripped")
        return "; ".join(parts) or "off"


@dataclass
class RunTally:
    """Final states of resumed runs seen so far (by run id), for the breaker."""

    final: dict[str, str] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return len(self.final)

    @property
    def failed(self) -> int:
        return sum(1 for state in self.final.values() if state != SUCCESS)

    def failure_ratio(self) -> float:
        return self.failed / self.finished if self.finished else 0.0


class CircuitBreaker:
    """Polls the resumed runs after every batch and trips on failures.

    Run logs take at most 10 runs per call, so a poll asks about every run the last batch
    made (the freshest signal), then one more call's worth of the older open runs, in turn
    (oldest first, then on around), so long-running old runs cannot hide newer failures and
    new failures are never judged from a sample of them."""

    def __init__(
        self,
        policy: SafetyPolicy,
        client: WorkflowDLQClient,
        pace: Callable[[], None] = lambda: None,
    ) -> None:
        self.policy = policy
        self.client = client
        self.pace = pace
        self.tally = RunTally()
        self._open: dict[str, int] = {}  # run id -> created-at ms, oldest first
        self._fresh: list[tuple[str, int]] = []  # made since the last poll
        self._turn = 0  # where the next poll starts among the older open runs

    def follow(self, runs: Sequence[tuple[str, int]]) -> None:
        for run_id, created_at in runs:
            self._open[run_id] = created_at
            self._fresh.append((run_id, created_at))

    def poll(self) -> list[dict[str, Any]]:
        """Ask about the fresh runs and a round of the older ones; the runs that failed
        again in this poll, with their new ``dlq_id``."""
        fresh, self._fresh = self._fresh, []
        fresh_ids = {run_id for run_id, _ in fresh}
        older = [item for item in self._open.items() if item[0] not in fresh_ids]
        batch = list(fresh)
        if older:
            start = self._turn % len(older)
            round_ = (older[start:] + older[:start])[:MAX_RUNS_PER_CALL]
            self._turn = start + len(round_)
            batch += round_
        failed: list[dict[str, Any]] = []
        for at in range(0, len(batch), MAX_RUNS_PER_CALL):
            self.pace()
            chunk = batch[at : at + MAX_RUNS_PER_CALL]
            page = self.client.run_logs(workflow_runs=chunk, count=MAX_RUNS_PER_CALL)
            failed += self._settle(page.runs)
        return failed

    def _settle(self, runs: Iterable[Any]) -> list[dict[str, Any]]:
        failed = []
        for run in runs:
            state = run.workflow_state
            if run.workflow_run_id in self._open and state in FINAL_RUN_STATES:
                del self._open[run.workflow_run_id]
                self.tally.final[run.workflow_run_id] = state
                if state != SUCCESS:
                    failed.append({"workflow_run_id": run.workflow_run_id, "dlq_id": run.dlq_id})
        return failed

    def forgive(self, run_ids: set[str]) -> None:
        """Runs that failed for a reason that is not the bug (a changed step, restarted)."""
        for run_id in run_ids:
            self.tally.final.pop(run_id, None)

    def tripped(self) -> bool:
        limit = self.policy.breaker_max_failure_ratio
        return (
            limit is not None
            and self.tally.finished >= self.policy.breaker_min_finished
            and self.tally.failure_ratio() > limit
        )

    def state(self) -> dict[str, Any]:
        return {
            "finished": self.tally.finished,
            "failed_again": self.tally.failed,
            "failure_ratio": round(self.tally.failure_ratio(), 4),
            "still_open": len(self._open),
        }


def canary_verdict(
    outcome: RunOutcome, policy: SafetyPolicy, size: int, forgiven: int = 0
) -> tuple[bool, dict[str, Any]]:
    """Whether the canary passed, and what it saw, from the run follower's outcome.

    ``forgiven`` runs failed at a changed step and were restarted: they are judged neither
    way (the bug the canary looks for is not theirs)."""
    succeeded = outcome.recovered
    judged = size - forgiven
    ratio = succeeded / judged if judged > 0 else 1.0
    seen: dict[str, Any] = {
        "size": size,
        "succeeded": succeeded,
        "counts": dict(outcome.counts),
        "still_running": outcome.still_running,
        "success_ratio": round(ratio, 4),
        "required": policy.canary_min_success_ratio,
    }
    if forgiven:
        seen["restarted_incompatible"] = forgiven
    if outcome.failed:
        seen["failed"] = [dict(item) for item in outcome.failed]
    return ratio >= policy.canary_min_success_ratio, seen

"""The safety gate of a walk: the canary first, then the circuit breaker after each batch.

The canary is fed until it has ``canary`` new runs; nothing else is acted on before its
verdict. The breaker follows every new run after that and trips on failures. Either one
stops the walk (:class:`Tripped`); pausing the flow-control key is the walk's business.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from airflow_provider_wfdlq.client import WorkflowDLQClient
from airflow_provider_wfdlq.recovery.runs import RunOutcome
from airflow_provider_wfdlq.recovery.safety import CircuitBreaker, SafetyPolicy, canary_verdict
from airflow_provider_wfdlq.recovery.states import Stop

log = logging.getLogger("airflow_provider_wfdlq.recovery")

Run = tuple[str, int]


class Tripped(Exception):
    """A safety policy (or a stop request during the canary wait) ends the walk."""

    def __init__(self, why: Stop, seen: dict[str, Any]) -> None:
        super().__init__(why.value)
        self.why = why
        self.seen = seen


class SafetyGate:
    """Canary and breaker over the runs a walk creates."""

    def __init__(
        self,
        policy: SafetyPolicy,
        client: WorkflowDLQClient,
        *,
        follow: Callable[..., RunOutcome],
        poll_interval: float,
        sleep: Callable[[float], None],
        monotonic: Callable[[], float],
        should_stop: Callable[[], bool],
        pace: Callable[[], None],
        active: bool = True,
        on_failed: Callable[[list[dict[str, Any]]], set[str]] = lambda failed: set(),
    ) -> None:
        self.policy = policy
        self.client = client
        self.follow = follow
        self.poll_interval = poll_interval
        self.sleep, self.monotonic, self.should_stop, self.pace = (
            sleep,
            monotonic,
            should_stop,
            pace,
        )
        self.canary_runs: list[Run] = []
        self.canary_done = policy.canary is None or not active
        self.breaker = (
            CircuitBreaker(policy, client, pace)
            if policy.breaker_max_failure_ratio is not None and active
            else None
        )
        #: Given the runs that failed again, returns those that failed for a changed step
        #: (and were restarted): they are not counted against the canary or the breaker.
        self.on_failed = on_failed
        self.seen: dict[str, Any] = {}
        self.failed_again = 0

    # -- the canary -------------------------------------------------------------------------

    def canary_room(self) -> int | None:
        """How many more runs the canary needs before its verdict (None: no canary pending)."""
        if self.canary_done:
            return None
        return max((self.policy.canary or 0) - len(self.canary_runs), 0)

    def after_batch(self, runs: Sequence[Run], *, last: bool) -> None:
        """Feed the canary or the breaker with a batch's new runs; raise :class:`Tripped`."""
        if not self.canary_done:
            self.canary_runs.extend(runs)
            if len(self.canary_runs) >= (self.policy.canary or 0) or last:
                self.judge_canary()
            return
        if self.breaker is not None:
            self.breaker.follow(runs)
            failed_before = self.breaker.tally.failed
            self.breaker.forgive(self.on_failed(self.breaker.poll()))
            self.failed_again += self.breaker.tally.failed - failed_before
            self.seen["breaker"] = self.breaker.state()
            if self.breaker.tripped():
                raise Tripped(Stop.CIRCUIT_BREAKER, self.breaker.state())

    def judge_canary(self) -> None:
        """Wait for the canary's runs; go on only if enough succeeded."""
        if self.canary_done:
            return
        self.canary_done = True
        size = len(self.canary_runs)
        if size == 0:
            return  # nothing made a run: nothing to judge (the report says why)
        log.info("Canary: waiting for the outcome of %d resumed run(s).", size)
        outcome = self.follow(
            self.client,
            list(self.canary_runs),
            timeout_s=self.policy.canary_timeout,
            poll_interval_s=self.poll_interval,
            sleep=self.sleep,
            monotonic=self.monotonic,
            should_stop=self.should_stop,
        )
        forgiven = self.on_failed([dict(item) for item in outcome.failed])
        passed, seen = canary_verdict(outcome, self.policy, size, len(forgiven))
        self.failed_again += int(seen["counts"].get("RUN_FAILED", 0))
        seen["passed"] = passed
        self.seen["canary"] = seen
        if not passed and outcome.stopped:
            # Killed while waiting: no verdict (a retry waits for the same runs again).
            seen["interrupted"] = True
            self.canary_done = False
            raise Tripped(Stop.STOPPED, seen)
        log.info("Canary %s: %s", "passed" if passed else "FAILED", seen)
        if not passed:
            # Whoever takes this walk up again (a cleared task, once the bug is fixed) must
            # prove it with a new canary, not inherit this verdict.
            self.canary_done, self.canary_runs = False, []
            raise Tripped(Stop.CANARY, seen)

    # -- checkpoint -------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {"done": self.canary_done, "runs": [list(r) for r in self.canary_runs]}

    def restore(self, state: dict[str, Any]) -> None:
        self.canary_done = bool(state.get("done", self.canary_done))
        self.canary_runs = [(str(r), int(at)) for r, at in state.get("runs", [])]

"""WorkflowRunSensor: follow resumed workflow runs until they recover, fail again or stop.

"Resumed 412 runs" is not what an on-call engineer needs; "389 recovered, 21 failed again
(back in the DLQ as these new entries), 2 still running" is. This sensor waits for that
answer after a ``ResumeDLQOperator`` and leaves it in XCom for a report.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue

from airflow_provider_wfdlq._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    Stats,
)
from airflow_provider_wfdlq.client import ValidationError
from airflow_provider_wfdlq.connection_form import DEFAULT_CONN_NAME
from airflow_provider_wfdlq.recovery.morning import coerce_results, is_many
from airflow_provider_wfdlq.recovery.runs import FollowVerdict, RunFollower, RunWatch, poll_sync
from airflow_provider_wfdlq.sensors._polling import DEFERRAL_GRACE_SECONDS, PollingSensor
from airflow_provider_wfdlq.triggers.runs import WorkflowRunTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["DEFERRAL_GRACE_SECONDS", "OUTCOME_KEY", "STATE_KEY", "WorkflowRunSensor"]

#: The XCom key of the outcome, pushed however the wait ends (also when the task fails).
OUTCOME_KEY = "outcome"
#: Prefix of the Stats counters of a followed outcome.
METRIC_PREFIX = "wfdlq.runs"
#: Where reschedule mode keeps the final states earlier pokes saw (Airflow 3.3+).
STATE_KEY = "wfdlq_run_follow"


class WorkflowRunSensor(PollingSensor[RunWatch, RunFollower, FollowVerdict]):
    """
    Wait until followed workflow runs are final: ``RUN_SUCCESS``, ``RUN_FAILED`` or
    ``RUN_CANCELED``.

    One poll asks the run logs about up to 100 open runs per request
    (``workflowRuns=ID@MS,...``); runs already final are not asked about again.

    :param runs: The runs to follow (templated): a ``ResumeDLQOperator`` result (its XCom, or
        ``resume.output``), its ``runs`` list, ``"ID@MS"`` strings or one comma-separated
        string, or a mapped resume's results (``.expand()``): the outcome then also has
        ``partitions``, one split of it per partition. Runs whose resume answer was lost
        (``workflow_run_id`` None) cannot be followed; they are reported as ``unknown``,
        never a failure.
    :param min_success_ratio: Fail the task when fewer than this share of the followed runs
        recovered (templated; 0..1, default None: any outcome passes). Fails as soon as the
        ratio can no longer be reached, even while runs are still running.
    :param on_timeout: Runs still running at ``timeout``: ``"fail"`` (default: the task fails
        with ``AirflowSensorTimeout`` naming them) or ``"report"`` (the wait ends with the
        outcome so far; running runs count as not recovered for ``min_success_ratio``).
        ``soft_fail`` still skips at the timeout, as for any sensor.
    :param qstash_conn_id: The ``qstash`` connection.
    :param deferrable: Wait in the triggerer, holding no worker slot (default:
        ``[operators] default_deferrable``).
    :return: The outcome: ``counts`` per final state, ``recovered``, ``failed_again``,
        ``still_running``, ``success_ratio``, ``failed`` (each run that failed again with its
        NEW ``dlq_id`` and the entry it was ``resumed_from``), ``unknown``, ``timed_out``.
        Also pushed under the XCom key ``"outcome"`` however the wait ends, so a report task
        (trigger rule ``all_done``) can read it after a failure.

    Rate limits, 5xx and network errors that outlast the client's retries are waited out;
    other API errors fail the task.
    """

    template_fields: Sequence[str] = ("runs", "min_success_ratio", "on_timeout")
    template_fields_renderers = {"runs": "json"}
    ui_color = "#e8f4e8"
    trigger_class = WorkflowRunTrigger
    state_key = STATE_KEY

    def __init__(
        self,
        *,
        runs: Any,
        min_success_ratio: float | str | None = None,
        on_timeout: str = "fail",
        qstash_conn_id: str = DEFAULT_CONN_NAME,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(qstash_conn_id=qstash_conn_id, deferrable=deferrable, **kwargs)
        self.runs = runs
        self.min_success_ratio = min_success_ratio
        self.on_timeout = on_timeout

    def build_watch(self) -> RunWatch:
        """Validate the rendered arguments; bad input fails the task before any request."""
        try:
            return RunWatch.build(
                runs=self.runs,
                min_success_ratio=self.min_success_ratio,
                on_timeout=self.on_timeout,
            )
        except ValidationError as exc:
            raise AirflowFailException(str(exc)) from exc

    def _follow(self, watch: RunWatch, known: Mapping[str, list[Any]] | None) -> RunFollower:
        return RunFollower(watch, RunFollower.known_from_json(known))

    def _poll_sync(self, poller: RunFollower) -> FollowVerdict:
        return poll_sync(self.hook.client, poller)

    def _watch_key(self, watch: dict[str, Any]) -> str:
        """Which watch the saved states belong to, without storing thousands of run ids twice."""
        text = json.dumps(watch, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def _poke_until_done(self, context: Context) -> Any:
        try:
            return super()._poke_until_done(context)
        except AirflowSensorTimeout:
            # What the last poke saw, judged under on_timeout (no further request).
            assert self._poller is not None
            return self._finish(self._poller.verdict(final=True), context)

    def _judge(self, verdict: FollowVerdict, context: Context) -> PokeReturnValue:
        if verdict.done:
            return PokeReturnValue(is_done=True, xcom_value=self._finish(verdict, context))
        self.log.info("%s", verdict.message)
        self._save_known(context)
        return PokeReturnValue(is_done=False)

    def _finish(self, verdict: FollowVerdict, context: Context) -> dict[str, Any]:
        return self._end(verdict.status, verdict.message, verdict.outcome.to_json(), context)

    def _end(
        self, status: Any, message: str, outcome: Mapping[str, Any] | None, context: Context
    ) -> dict[str, Any]:
        """Push the outcome whatever happens, then succeed or fail as ``status`` says."""
        result = {**(outcome or {}), "status": status, "message": message}
        if outcome is not None:
            partitions = self._partitions(outcome)
            if partitions is not None:
                result["partitions"] = partitions
                for i, part in enumerate(partitions):
                    self.log.info("Partition #%d: %s", i, part)
            context["ti"].xcom_push(key=OUTCOME_KEY, value=result)
            self._count_outcome(outcome)
        if status == "success":
            self.log.info("%s", message)
            return result
        if status == "failed":
            raise AirflowFailException(message)
        if status == "timeout":
            raise AirflowSensorTimeout(message)
        raise AirflowException(message or f"Unexpected trigger event status: {status!r}")

    def _partitions(self, outcome: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        """Per partition of a mapped resume (``runs`` is its list of results): the outcome
        split by which partition resumed each run. None for one result, or when the
        outcome's run lists were capped (the split would be a guess)."""
        if not is_many(self.runs) or outcome.get("lists_truncated"):
            return None
        try:
            parts = coerce_results(self.runs, "runs") or []
        except ValidationError:
            return None
        failed = {item.get("workflow_run_id") for item in outcome.get("failed") or ()}
        canceled = set(outcome.get("canceled") or ())
        running = set(outcome.get("running") or ())
        out: list[dict[str, Any]] = []
        for part in parts:
            runs = [r for r in (part or {}).get("runs") or () if isinstance(r, Mapping)]
            ids = {r.get("workflow_run_id") for r in runs} - {None}
            n_failed, n_canceled = len(ids & failed), len(ids & canceled)
            n_running = len(ids & running)
            out.append(
                {
                    "followed": len(ids),
                    "recovered": len(ids) - n_failed - n_canceled - n_running,
                    "failed_again": n_failed,
                    "canceled": n_canceled,
                    "still_running": n_running,
                    "unknown": sum(1 for r in runs if r.get("workflow_run_id") is None),
                    "not_followed_beyond_result": bool((part or {}).get("runs_truncated")),
                }
            )
        return out

    def _count_outcome(self, outcome: Mapping[str, Any]) -> None:
        """``Stats`` counters ``wfdlq.runs.<recovered|failed_again|...>`` of the outcome."""
        tags = {"dag_id": self.dag_id, "task_id": self.task_id}
        for name in ("recovered", "failed_again", "still_running"):
            value = outcome.get(name)
            if isinstance(value, int) and value:
                Stats.incr(f"{METRIC_PREFIX}.{name}", value, tags=tags)

    def execute_complete(self, context: Context, event: Mapping[str, Any]) -> Any:
        """Back from the trigger: the event says how the wait ended."""
        outcome = event.get("outcome")
        message = str(event.get("message", "")) or f"Unexpected trigger event: {event!r}"
        return self._end(event.get("status"), message, outcome, context)

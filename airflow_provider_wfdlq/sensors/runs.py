"""WorkflowRunSensor: follow resumed workflow runs until they recover, fail again or stop.

"Resumed 412 runs" is not what an on-call engineer needs; "389 recovered, 21 failed again
(back in the DLQ as these new entries), 2 still running" is. This sensor waits for that
answer after a ``ResumeDLQOperator`` and leaves it in XCom for a report.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_wfdlq._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)
from airflow_provider_wfdlq.client import ValidationError, WFDLQError
from airflow_provider_wfdlq.connection_form import DEFAULT_CONN_NAME
from airflow_provider_wfdlq.hooks.dlq import WorkflowDLQHook
from airflow_provider_wfdlq.recovery.runs import (
    FollowVerdict,
    RunFollower,
    RunWatch,
    is_transient,
    poll_sync,
)
from airflow_provider_wfdlq.triggers.runs import WorkflowRunTrigger

try:
    from airflow.sdk.configuration import conf
except ImportError:  # pragma: no cover - Airflow 3.1 keeps it in core only
    from airflow.configuration import conf  # type: ignore[no-redef]

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Airflow's own deferral timeout trails the trigger's deadline by this much, so the
#: trigger's verdict (which applies ``on_timeout``) normally wins.
DEFERRAL_GRACE_SECONDS = 60.0
#: The XCom key of the outcome, pushed however the wait ends (also when the task fails).
OUTCOME_KEY = "outcome"
#: Where reschedule mode keeps the final states earlier pokes saw (Airflow 3.3+).
STATE_KEY = "wfdlq_run_follow"


class WorkflowRunSensor(BaseSensorOperator):
    """
    Wait until followed workflow runs are final: ``RUN_SUCCESS``, ``RUN_FAILED`` or
    ``RUN_CANCELED``.

    One poll asks the run logs about up to 100 open runs per request
    (``workflowRuns=ID@MS,...``); runs already final are not asked about again.

    :param runs: The runs to follow (templated): a ``ResumeDLQOperator`` result (its XCom, or
        ``resume.output``), its ``runs`` list, ``"ID@MS"`` strings or one comma-separated
        string. Runs whose resume answer was lost (``workflow_run_id`` None) cannot be
        followed; they are reported as ``unknown``, never a failure.
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
        super().__init__(**kwargs)
        self.runs = runs
        self.min_success_ratio = min_success_ratio
        self.on_timeout = on_timeout
        self.qstash_conn_id = qstash_conn_id
        if deferrable is None:
            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable = deferrable
        self._follower: RunFollower | None = None

    @cached_property
    def hook(self) -> WorkflowDLQHook:
        return WorkflowDLQHook(self.qstash_conn_id)

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

    def execute(self, context: Context) -> Any:
        watch = self.build_watch()
        self._follower = RunFollower(watch, self._restore_known(context, watch))
        try:
            if self.deferrable:
                return self._check_then_defer(context)
            try:
                return super().execute(context)
            except AirflowSensorTimeout:
                # What the last poke saw, judged under on_timeout (no further request).
                return self._finish(self._follower.verdict(final=True), context)
        finally:
            self.hook.close()

    def _check_then_defer(self, context: Context) -> Any:
        """One poke in the worker (often the runs are already final), then the triggerer."""
        try:
            done = self.poke(context)
        except AirflowFailException as exc:  # as BaseSensorOperator.execute does for poke()
            if self.soft_fail or getattr(self, "never_fail", False):
                raise AirflowSkipException(str(exc)) from exc
            raise
        if done:
            return done.xcom_value
        assert self._follower is not None
        self.defer(
            trigger=WorkflowRunTrigger(
                watch=self._follower.watch.to_json(),
                qstash_conn_id=self.qstash_conn_id,
                poll_interval=self.poke_interval,
                deadline=time.time() + self.timeout,
                known=self._follower.known_json(),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + DEFERRAL_GRACE_SECONDS),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        follower = self._follower or RunFollower(self.build_watch())
        self._follower = follower
        try:
            verdict = poll_sync(self.hook.client, follower)
        except WFDLQError as exc:
            if not is_transient(exc):
                raise
            self.log.warning("Polling the run logs failed (%s); trying again at the next poke", exc)
            return PokeReturnValue(is_done=False)
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
            context["ti"].xcom_push(key=OUTCOME_KEY, value=result)
        if status == "success":
            self.log.info("%s", message)
            return result
        if status == "failed":
            raise AirflowFailException(message)
        if status == "timeout":
            raise AirflowSensorTimeout(message)
        raise AirflowException(message or f"Unexpected trigger event status: {status!r}")

    def execute_complete(self, context: Context, event: Mapping[str, Any]) -> Any:
        """Back from the trigger: the event says how the wait ended."""
        outcome = event.get("outcome")
        message = str(event.get("message", "")) or f"Unexpected trigger event: {event!r}"
        return self._end(event.get("status"), message, outcome, context)

    # -- reschedule mode: final states seen by earlier pokes survive between tries --------------

    def _state_store(self, context: Context) -> Any:
        return context.get("task_state_store") if self.reschedule else None  # type: ignore[misc]

    def _restore_known(self, context: Context, watch: RunWatch) -> dict[str, Any]:
        store = self._state_store(context)
        saved = store.get(STATE_KEY) if store is not None else None
        if not isinstance(saved, Mapping) or saved.get("watch") != _fingerprint(watch):
            return {}
        return RunFollower.known_from_json(saved.get("known"))

    def _save_known(self, context: Context) -> None:
        store = self._state_store(context)
        if store is not None and self._follower is not None:
            watch = _fingerprint(self._follower.watch)
            store.set(STATE_KEY, {"watch": watch, "known": self._follower.known_json()})


def _fingerprint(watch: RunWatch) -> str:
    """Which watch the saved states belong to, without storing thousands of run ids twice."""
    text = json.dumps(watch.to_json(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()

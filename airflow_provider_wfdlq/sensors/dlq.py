"""DLQFailureCallbackSensor: wait until the failure callbacks of DLQ entries are final.

A failed workflow run calls its failure function, which QStash delivers and retries while
its state is ``CALLBACK_INPROGRESS``. Resuming such a run races with that callback, so a
recovery DAG waits with this sensor before it resumes.
"""

from __future__ import annotations

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
from airflow_provider_wfdlq.recovery.callbacks import (
    DEFAULT_ON_MISSING_CALLBACK,
    DEFAULT_ON_VANISHED,
    DEFAULT_TARGET_STATES,
    CallbackWatch,
    CallbackWatcher,
    Verdict,
    is_transient,
    poll_sync,
)
from airflow_provider_wfdlq.triggers.dlq import DLQFailureCallbackTrigger

try:
    from airflow.sdk.configuration import conf
except ImportError:  # pragma: no cover - Airflow 3.1 keeps it in core only
    from airflow.configuration import conf  # type: ignore[no-redef]

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Airflow's own deferral timeout trails the trigger's deadline by this much, so the
#: trigger's timeout event (which names the entries still open) normally wins.
DEFERRAL_GRACE_SECONDS = 60.0
#: Where reschedule mode keeps what earlier pokes saw (Airflow 3.3+ task state store).
STATE_KEY = "wfdlq_callback_watch"


class DLQFailureCallbackSensor(BaseSensorOperator):
    """
    Wait until the failure callbacks of the watched DLQ entries are final.

    Watch either ``dlq_ids`` (each entry must reach a target state) or ``filters`` (no
    matching entry may still be open; one ``count=1`` listing per poke).

    :param dlq_ids: Entries to watch (templated): one id, a list, a comma-separated string,
        or an upstream ``ResumeDLQOperator`` result (or its ``runs`` list).
    :param filters: Instead of ids, the entries matching these filters (templated), same
        names as ``ResumeDLQOperator`` except ``dlq_ids`` and ``failure_function_state``.
    :param target_states: Final states that satisfy the wait (templated; default all three
        of ``CALLBACK_SUCCESS``, ``CALLBACK_FAIL``, ``CALLBACK_CANCELED``).
    :param failure_states: Final states that fail the task at once, naming the entries, their
        callback's response status and a body excerpt (templated; default none). A state in
        both lists is a failure state.
    :param on_missing_callback: An entry without a failure callback: ``"succeed"`` (default:
        nothing can race with a resume, it is in the result with state None), ``"fail"`` or
        ``"ignore"`` (left out of the result). ``dlq_ids`` only.
    :param on_vanished: An entry gone from the DLQ (404: resumed, deleted or expired):
        ``"ignore"`` (default: nothing downstream can race with it or resume it, so it is
        left out of the result and a resume by the result's ids cannot 404), ``"succeed"``
        (in the result with ``"vanished": True``) or ``"fail"``. ``dlq_ids`` only.
    :param qstash_conn_id: The ``qstash`` connection.
    :param deferrable: Wait in the triggerer, holding no worker slot (default:
        ``[operators] default_deferrable``).
    :return: ``{dlq_id: {"state", "response_status"}}`` for the entries in the result (with
        ``filters``, at most 1000).

    Rate limits, 5xx and network errors that outlast the client's retries are waited out
    (the poke counts as "not yet"); other API errors fail the task.
    """

    template_fields: Sequence[str] = (
        "dlq_ids",
        "filters",
        "target_states",
        "failure_states",
        "on_missing_callback",
        "on_vanished",
    )
    template_fields_renderers = {"filters": "json", "dlq_ids": "json"}
    ui_color = "#f4e8f8"

    def __init__(
        self,
        *,
        dlq_ids: Any = None,
        filters: Mapping[str, Any] | str | None = None,
        target_states: Sequence[str] | str = DEFAULT_TARGET_STATES,
        failure_states: Sequence[str] | str = (),
        on_missing_callback: str = DEFAULT_ON_MISSING_CALLBACK,
        on_vanished: str = DEFAULT_ON_VANISHED,
        qstash_conn_id: str = DEFAULT_CONN_NAME,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dlq_ids = dlq_ids
        self.filters = filters
        self.target_states = target_states
        self.failure_states = failure_states
        self.on_missing_callback = on_missing_callback
        self.on_vanished = on_vanished
        self.qstash_conn_id = qstash_conn_id
        if deferrable is None:
            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable = deferrable
        self._watcher: CallbackWatcher | None = None

    @cached_property
    def hook(self) -> WorkflowDLQHook:
        return WorkflowDLQHook(self.qstash_conn_id)

    def build_watch(self) -> CallbackWatch:
        """Validate the rendered arguments; bad input fails the task before any request."""
        try:
            return CallbackWatch.build(
                dlq_ids=self.dlq_ids,
                filters=self.filters,
                target_states=self.target_states,
                failure_states=self.failure_states,
                on_missing_callback=self.on_missing_callback,
                on_vanished=self.on_vanished,
            )
        except ValidationError as exc:
            raise AirflowFailException(str(exc)) from exc

    def execute(self, context: Context) -> Any:
        self._watcher = CallbackWatcher(self.build_watch(), self._restore_known(context))
        try:
            if not self.deferrable:
                return super().execute(context)
            return self._check_then_defer(context)
        finally:
            self.hook.close()

    def _check_then_defer(self, context: Context) -> Any:
        """One poke in the worker (often the wait is already over), then the triggerer."""
        try:
            done = self.poke(context)
        except AirflowFailException as exc:  # as BaseSensorOperator.execute does for poke()
            if self.soft_fail or getattr(self, "never_fail", False):
                raise AirflowSkipException(str(exc)) from exc
            raise
        if done:
            return done.xcom_value
        assert self._watcher is not None
        self.defer(
            trigger=DLQFailureCallbackTrigger(
                watch=self._watcher.watch.to_json(),
                qstash_conn_id=self.qstash_conn_id,
                poll_interval=self.poke_interval,
                deadline=time.time() + self.timeout,
                known=self._watcher.known_json(),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + DEFERRAL_GRACE_SECONDS),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        watcher = self._watcher or CallbackWatcher(self.build_watch())
        self._watcher = watcher
        try:
            verdict = poll_sync(self.hook.client, watcher)
        except WFDLQError as exc:
            if not is_transient(exc):
                raise
            self.log.warning("Polling the DLQ failed (%s); trying again at the next poke", exc)
            return PokeReturnValue(is_done=False)
        return self._judge(verdict, context)

    def _judge(self, verdict: Verdict, context: Context) -> PokeReturnValue:
        if verdict.status == "failed":
            raise AirflowFailException(verdict.message)
        self.log.info("%s", verdict.message)
        if verdict.status == "waiting":
            self._save_known(context)
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=dict(verdict.results))

    def execute_complete(self, context: Context, event: Mapping[str, Any]) -> Any:
        """Back from the trigger: the event says how the wait ended."""
        status, message = event.get("status"), str(event.get("message", ""))
        if status == "success":
            self.log.info("%s", message)
            return dict(event.get("results") or {})
        if status == "failed":
            raise AirflowFailException(message)
        if status == "timeout":
            raise AirflowSensorTimeout(message)
        raise AirflowException(message or f"Unexpected trigger event: {event!r}")

    # -- reschedule mode: what earlier pokes saw survives between tries -------------------------

    def _state_store(self, context: Context) -> Any:
        return context.get("task_state_store") if self.reschedule else None  # type: ignore[misc]

    def _restore_known(self, context: Context) -> dict[str, Any]:
        store = self._state_store(context)
        saved = store.get(STATE_KEY) if store is not None else None
        if not isinstance(saved, Mapping) or saved.get("watch") != self.build_watch().to_json():
            return {}
        return CallbackWatcher.known_from_json(saved.get("known"))

    def _save_known(self, context: Context) -> None:
        store = self._state_store(context)
        if store is not None and self._watcher is not None:
            watched = {"watch": self._watcher.watch.to_json(), "known": self._watcher.known_json()}
            store.set(STATE_KEY, watched)

"""DLQFailureCallbackSensor: wait until the failure callbacks of DLQ entries are final.

A failed workflow run calls its failure function, which QStash delivers and retries while
its state is ``CALLBACK_INPROGRESS``. Resuming such a run races with that callback, so a
recovery DAG waits with this sensor before it resumes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue

from airflow_provider_wfdlq._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
)
from airflow_provider_wfdlq.client import ValidationError
from airflow_provider_wfdlq.connection_form import DEFAULT_CONN_NAME
from airflow_provider_wfdlq.recovery.callbacks import (
    DEFAULT_ON_MISSING_CALLBACK,
    DEFAULT_ON_VANISHED,
    DEFAULT_TARGET_STATES,
    CallbackWatch,
    CallbackWatcher,
    Verdict,
    poll_sync,
)
from airflow_provider_wfdlq.sensors._polling import DEFERRAL_GRACE_SECONDS, PollingSensor
from airflow_provider_wfdlq.triggers.dlq import DLQFailureCallbackTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["DEFERRAL_GRACE_SECONDS", "STATE_KEY", "DLQFailureCallbackSensor"]

#: Where reschedule mode keeps what earlier pokes saw (Airflow 3.3+ task state store).
STATE_KEY = "wfdlq_callback_watch"


class DLQFailureCallbackSensor(PollingSensor[CallbackWatch, CallbackWatcher, Verdict]):
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
    trigger_class = DLQFailureCallbackTrigger
    state_key = STATE_KEY

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
        super().__init__(qstash_conn_id=qstash_conn_id, deferrable=deferrable, **kwargs)
        self.dlq_ids = dlq_ids
        self.filters = filters
        self.target_states = target_states
        self.failure_states = failure_states
        self.on_missing_callback = on_missing_callback
        self.on_vanished = on_vanished

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

    def _follow(
        self, watch: CallbackWatch, known: Mapping[str, list[Any]] | None
    ) -> CallbackWatcher:
        return CallbackWatcher(watch, CallbackWatcher.known_from_json(known))

    def _poll_sync(self, poller: CallbackWatcher) -> Verdict:
        return poll_sync(self.hook.client, poller)

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

"""PollingSensor: what the provider's sensors share (poke once then defer, transient errors).

A concrete sensor says what it watches (:meth:`PollingSensor.build_watch`), how a poller of
that watch is made and polled (:meth:`_follow`, :meth:`_poll_sync`), what a verdict means
for the task (:meth:`_judge`, ``execute_complete``) and which trigger waits in the
triggerer (:attr:`trigger_class`). The rest is here once: the hook, poke / reschedule /
deferrable execution, transient errors counting as "not yet", and what earlier pokes saw
surviving between reschedule tries.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Mapping
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_wfdlq._compat import AirflowFailException, AirflowSkipException
from airflow_provider_wfdlq.client import WFDLQError
from airflow_provider_wfdlq.connection_form import DEFAULT_CONN_NAME
from airflow_provider_wfdlq.hooks.dlq import WorkflowDLQHook
from airflow_provider_wfdlq.recovery._polling import is_transient
from airflow_provider_wfdlq.triggers._polling import PollingTrigger

try:
    from airflow.sdk.configuration import conf
except ImportError:  # pragma: no cover - Airflow 3.1 keeps it in core only
    from airflow.configuration import conf  # type: ignore[no-redef]

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["DEFERRAL_GRACE_SECONDS", "PollingSensor"]

#: Airflow's own deferral timeout trails the trigger's deadline by this much, so the
#: trigger's own timeout event (which names what is still open, or applies ``on_timeout``)
#: normally wins.
DEFERRAL_GRACE_SECONDS = 60.0


class Watch(Protocol):
    """What a sensor watches (``CallbackWatch``, ``RunWatch``)."""

    def to_json(self) -> dict[str, Any]: ...


class Poller(Protocol):
    """What polls a watch and remembers what it saw (``CallbackWatcher``, ``RunFollower``)."""

    @property
    def watch(self) -> Watch: ...

    def known_json(self) -> dict[str, list[Any]]: ...


WatchT = TypeVar("WatchT", bound=Watch)
PollerT = TypeVar("PollerT", bound=Poller)
VerdictT = TypeVar("VerdictT")


class PollingSensor(BaseSensorOperator, Generic[WatchT, PollerT, VerdictT]):
    """
    A sensor that polls the QStash API through a poller, and defers to a
    :class:`~airflow_provider_wfdlq.triggers._polling.PollingTrigger` in deferrable mode.

    :param qstash_conn_id: The ``qstash`` connection.
    :param deferrable: Wait in the triggerer, holding no worker slot (default:
        ``[operators] default_deferrable``).
    """

    #: The trigger a deferrable wait hands over to (same kwargs for every PollingTrigger).
    trigger_class: ClassVar[type[PollingTrigger[Any]]]
    #: Where reschedule mode keeps what earlier pokes saw (Airflow 3.3+ task state store).
    state_key: ClassVar[str]

    def __init__(
        self,
        *,
        qstash_conn_id: str = DEFAULT_CONN_NAME,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.qstash_conn_id = qstash_conn_id
        if deferrable is None:
            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable = deferrable
        self._poller: PollerT | None = None

    @cached_property
    def hook(self) -> WorkflowDLQHook:
        return WorkflowDLQHook(self.qstash_conn_id)

    @abstractmethod
    def build_watch(self) -> WatchT:
        """Validate the rendered arguments; bad input fails the task before any request."""

    @abstractmethod
    def _follow(self, watch: WatchT, known: Mapping[str, list[Any]] | None) -> PollerT:
        """A poller of ``watch``, seeded with ``known`` (its ``known_json()``, or None)."""

    @abstractmethod
    def _poll_sync(self, poller: PollerT) -> VerdictT:
        """One poll with the hook's blocking client."""

    @abstractmethod
    def _judge(self, verdict: VerdictT, context: Context) -> PokeReturnValue:
        """What a poll's verdict means for this poke."""

    def _watch_key(self, watch: dict[str, Any]) -> Any:
        """Which watch saved states belong to (stored next to them); default the watch."""
        return watch

    def execute(self, context: Context) -> Any:
        watch = self.build_watch()
        self._poller = self._follow(watch, self._restore_known(context, watch))
        try:
            if self.deferrable:
                return self._check_then_defer(context)
            return self._poke_until_done(context)
        finally:
            self.hook.close()

    def _poke_until_done(self, context: Context) -> Any:
        """Poke and reschedule modes: the sensor's own loop."""
        return super().execute(context)

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
        assert self._poller is not None
        self.defer(
            trigger=self.trigger_class(
                watch=self._poller.watch.to_json(),
                qstash_conn_id=self.qstash_conn_id,
                poll_interval=self.poke_interval,
                deadline=time.time() + self.timeout,
                known=self._poller.known_json(),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + DEFERRAL_GRACE_SECONDS),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        poller = self._poller or self._follow(self.build_watch(), None)
        self._poller = poller
        try:
            verdict = self._poll_sync(poller)
        except WFDLQError as exc:
            if not is_transient(exc):
                raise
            self.log.warning(
                "Polling %s failed (%s); trying again at the next poke",
                self.trigger_class.polled,
                exc,
            )
            return PokeReturnValue(is_done=False)
        return self._judge(verdict, context)

    # -- reschedule mode: what earlier pokes saw survives between tries -------------------------

    def _state_store(self, context: Context) -> Any:
        return context.get("task_state_store") if self.reschedule else None  # type: ignore[misc]

    def _restore_known(self, context: Context, watch: WatchT) -> Any:
        """What an earlier try of this task saw of the same watch (None: nothing)."""
        store = self._state_store(context)
        saved = store.get(self.state_key) if store is not None else None
        if not isinstance(saved, Mapping) or saved.get("watch") != self._watch_key(watch.to_json()):
            return None
        return saved.get("known")

    def _save_known(self, context: Context) -> None:
        store = self._state_store(context)
        if store is not None and self._poller is not None:
            watch = self._watch_key(self._poller.watch.to_json())
            store.set(self.state_key, {"watch": watch, "known": self._poller.known_json()})

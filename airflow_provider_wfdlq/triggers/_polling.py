"""PollingTrigger: what the provider's triggers share (arguments, serialization, the wait).

A concrete trigger says what it polls (:meth:`PollingTrigger._poller`, :meth:`_poll`), what
its own deadline ends with (:meth:`_timed_out`) and what an error event looks like
(:meth:`_error`); the loop around them (its deadline, backing off on transient errors) is
here once.
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_wfdlq.client import AsyncWorkflowDLQClient, WFDLQError
from airflow_provider_wfdlq.connection_form import DEFAULT_CONN_NAME
from airflow_provider_wfdlq.hooks.dlq import WorkflowDLQHook
from airflow_provider_wfdlq.recovery._polling import is_transient

__all__ = ["DEFAULT_MAX_BACKOFF", "PollingTrigger", "trigger_event"]

#: The longest pause after repeated transient errors (429s, 5xx, network).
DEFAULT_MAX_BACKOFF = 300.0


class PollVerdict(Protocol):
    """What one poll decided (``recovery.callbacks.Verdict``, ``recovery.runs.FollowVerdict``)."""

    @property
    def message(self) -> str: ...

    @property
    def done(self) -> bool: ...

    def to_event(self) -> dict[str, Any]: ...


PollerT = TypeVar("PollerT")


class PollingTrigger(BaseTrigger, Generic[PollerT]):
    """
    Poll until a poller's verdict is done, or ``deadline`` passes; one event ends the wait.

    The connection is read inside :meth:`run`, so the token never enters the serialized
    kwargs. Transient errors (:func:`~airflow_provider_wfdlq.recovery._polling.is_transient`)
    never end the trigger: it backs off (doubling from ``poll_interval`` up to
    ``max_backoff``) and polls again until ``deadline``.

    :param watch: ``to_json()`` of what to watch.
    :param qstash_conn_id: The ``qstash`` connection.
    :param poll_interval: Seconds between polls.
    :param deadline: Unix time (seconds) when the wait ends.
    :param known: What an earlier poll saw (the poller's ``known_json()``).
    :param max_backoff: The longest pause after repeated transient errors.
    """

    #: What a poll reads, as log and error messages name it ("Polling the DLQ failed").
    polled: ClassVar[str]

    def __init__(
        self,
        *,
        watch: Mapping[str, Any],
        qstash_conn_id: str = DEFAULT_CONN_NAME,
        poll_interval: float = 60.0,
        deadline: float,
        known: Mapping[str, list[Any]] | None = None,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.watch = dict(watch)
        self.qstash_conn_id = qstash_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = float(deadline)
        self.known = dict(known or {})
        self.max_backoff = float(max_backoff)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "watch": self.watch,
                "qstash_conn_id": self.qstash_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "known": self.known,
                "max_backoff": self.max_backoff,
            },
        )

    @abstractmethod
    def _poller(self) -> PollerT:
        """The watcher / follower of ``watch``, seeded with ``known``."""

    @abstractmethod
    async def _poll(self, client: AsyncWorkflowDLQClient, poller: PollerT) -> PollVerdict:
        """One poll with the async client."""

    @abstractmethod
    def _timed_out(self, poller: PollerT) -> dict[str, Any]:
        """The event when ``deadline`` passes before the verdict is done."""

    @abstractmethod
    def _error(self, message: str) -> dict[str, Any]:
        """The event of an error not worth waiting out."""

    async def run(self) -> AsyncIterator[TriggerEvent]:
        poller = self._poller()
        try:
            client = await WorkflowDLQHook(self.qstash_conn_id).get_async_conn()
        except Exception as exc:  # a missing or invalid connection: say so, do not retry
            yield trigger_event(self._error(f"Cannot use connection: {exc}"))
            return
        async with client:
            event = await self._wait(client, poller)
        yield trigger_event(event)

    async def _wait(self, client: AsyncWorkflowDLQClient, poller: PollerT) -> dict[str, Any]:
        transient_errors = 0
        while True:
            remaining = self.deadline - time.time()
            if remaining <= 0:
                return self._timed_out(poller)
            try:
                async with asyncio.timeout(remaining):
                    verdict = await self._poll(client, poller)
            except TimeoutError:
                return self._timed_out(poller)
            except WFDLQError as exc:
                if not is_transient(exc):
                    return self._error(f"Polling {self.polled} failed: {exc}")
                transient_errors += 1
                pause = min(self.max_backoff, self.poll_interval * 2.0 ** (transient_errors - 1))
                self.log.warning("Polling %s failed (%s); again in %.1f s", self.polled, exc, pause)
                await asyncio.sleep(max(0.0, min(pause, self.deadline - time.time())))
                continue
            transient_errors = 0
            if verdict.done:
                return verdict.to_event()
            self.log.info("%s", verdict.message)
            await asyncio.sleep(max(0.0, min(self.poll_interval, self.deadline - time.time())))


def trigger_event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]

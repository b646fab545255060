"""DLQFailureCallbackTrigger: waits in the triggerer until watched failure callbacks are final."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_wfdlq.client import AsyncWorkflowDLQClient, WFDLQError
from airflow_provider_wfdlq.connection_form import DEFAULT_CONN_NAME
from airflow_provider_wfdlq.hooks.dlq import WorkflowDLQHook
from airflow_provider_wfdlq.recovery.callbacks import (
    CallbackWatch,
    CallbackWatcher,
    Verdict,
    is_transient,
    poll_async,
)

#: The longest pause after repeated transient errors (429s, 5xx, network).
DEFAULT_MAX_BACKOFF = 300.0


class DLQFailureCallbackTrigger(BaseTrigger):
    """
    Poll the workflow DLQ until the watched failure callbacks are final, or a deadline passes.

    One trigger watches every id of its sensor: a poll is one filtered listing of the
    in-progress entries plus one GET per entry that just left that state (see
    :mod:`airflow_provider_wfdlq.recovery.callbacks`), so a poll does not cost a request per
    watched id. The connection is read inside :meth:`run`, so the token never enters the
    serialized kwargs.

    Errors worth waiting out (429 and 5xx after the client's own retries, network errors)
    never end the trigger: it backs off (doubling from ``poll_interval`` up to
    ``max_backoff``) and polls again until ``deadline``. Its own deadline ends the wait with
    a ``timeout`` event naming what is still open, so a wait never hangs even where
    Airflow's deferral timeout is not enforced (``dag.test()``).

    :param watch: :meth:`CallbackWatch.to_json` of what to watch.
    :param qstash_conn_id: The ``qstash`` connection.
    :param poll_interval: Seconds between polls.
    :param deadline: Unix time (seconds) when the wait ends with a ``timeout`` event.
    :param known: What an earlier poll saw (:meth:`CallbackWatcher.known_json`), so the
        first poll here does not fetch final entries again.
    :param max_backoff: The longest pause after repeated transient errors.

    Events: ``{"status": "success"|"failed"|"timeout"|"error", "message", "results",
    "pending"}``.
    """

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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watcher = CallbackWatcher(
            CallbackWatch.from_json(self.watch), CallbackWatcher.known_from_json(self.known)
        )
        try:
            client = await WorkflowDLQHook(self.qstash_conn_id).get_async_conn()
        except Exception as exc:  # a missing or invalid connection: say so, do not retry
            yield _trigger_event(_event("error", f"Cannot use connection: {exc}"))
            return
        async with client:
            event = await self._wait(client, watcher)
        yield _trigger_event(event)

    async def _wait(
        self, client: AsyncWorkflowDLQClient, watcher: CallbackWatcher
    ) -> dict[str, Any]:
        transient_errors = 0
        while True:
            remaining = self.deadline - time.time()
            if remaining <= 0:
                return self._timeout(watcher.last)
            try:
                async with asyncio.timeout(remaining):
                    verdict = await poll_async(client, watcher)
            except TimeoutError:
                return self._timeout(watcher.last)
            except WFDLQError as exc:
                if not is_transient(exc):
                    return _event("error", f"Polling the DLQ failed: {exc}")
                transient_errors += 1
                pause = min(self.max_backoff, self.poll_interval * 2.0 ** (transient_errors - 1))
                self.log.warning("Polling the DLQ failed (%s); again in %.1f s", exc, pause)
                await asyncio.sleep(max(0.0, min(pause, self.deadline - time.time())))
                continue
            transient_errors = 0
            if verdict.done:
                return verdict.to_event()
            self.log.info("%s", verdict.message)
            await asyncio.sleep(max(0.0, min(self.poll_interval, self.deadline - time.time())))

    @staticmethod
    def _timeout(last: Verdict | None) -> dict[str, Any]:
        still = f" {last.message}" if last is not None else " No poll finished in time."
        pending = list(last.pending) if last is not None else []
        return _event("timeout", "Timed out waiting for failure callbacks." + still, pending)


def _trigger_event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]


def _event(status: str, message: str, pending: list[str] | None = None) -> dict[str, Any]:
    return {"status": status, "message": message, "results": {}, "pending": pending or []}

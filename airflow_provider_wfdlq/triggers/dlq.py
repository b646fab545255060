"""DLQFailureCallbackTrigger: waits in the triggerer until watched failure callbacks are final."""

from __future__ import annotations

from typing import Any

from airflow_provider_wfdlq.client import AsyncWorkflowDLQClient
from airflow_provider_wfdlq.recovery.callbacks import (
    CallbackWatch,
    CallbackWatcher,
    Verdict,
    poll_async,
)
from airflow_provider_wfdlq.triggers._polling import DEFAULT_MAX_BACKOFF, PollingTrigger

__all__ = ["DEFAULT_MAX_BACKOFF", "DLQFailureCallbackTrigger"]


class DLQFailureCallbackTrigger(PollingTrigger[CallbackWatcher]):
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

    polled = "the DLQ"

    def _poller(self) -> CallbackWatcher:
        return CallbackWatcher(
            CallbackWatch.from_json(self.watch), CallbackWatcher.known_from_json(self.known)
        )

    async def _poll(self, client: AsyncWorkflowDLQClient, poller: CallbackWatcher) -> Verdict:
        return await poll_async(client, poller)

    def _timed_out(self, poller: CallbackWatcher) -> dict[str, Any]:
        return self._timeout(poller.last)

    def _error(self, message: str) -> dict[str, Any]:
        return _event("error", message)

    @staticmethod
    def _timeout(last: Verdict | None) -> dict[str, Any]:
        still = f" {last.message}" if last is not None else " No poll finished in time."
        pending = list(last.pending) if last is not None else []
        return _event("timeout", "Timed out waiting for failure callbacks." + still, pending)


def _event(status: str, message: str, pending: list[str] | None = None) -> dict[str, Any]:
    return {"status": status, "message": message, "results": {}, "pending": pending or []}

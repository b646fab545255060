"""WorkflowRunTrigger: waits in the triggerer until followed workflow runs are final."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_wfdlq.client import AsyncWorkflowDLQClient, WFDLQError
from airflow_provider_wfdlq.connection_form import DEFAULT_CONN_NAME
from airflow_provider_wfdlq.hooks.dlq import WorkflowDLQHook
from airflow_provider_wfdlq.recovery.runs import RunFollower, RunWatch, is_transient, poll_async

#: The longest pause after repeated transient errors (429s, 5xx, network).
DEFAULT_MAX_BACKOFF = 300.0


class WorkflowRunTrigger(BaseTrigger):
    """
    Poll the run logs until the followed runs are final, or a deadline passes.

    A poll is one ``GET /v2/workflows/logs?workflowRuns=...`` per 100 runs still open (see
    :mod:`airflow_provider_wfdlq.recovery.runs`). The connection is read inside :meth:`run`,
    so the token never enters the serialized kwargs.

    Transient errors (429 and 5xx after the client's own retries, network errors) never end
    the trigger: it backs off (doubling from ``poll_interval`` up to ``max_backoff``) and polls
    again. Its own deadline ends the wait with the verdict ``on_timeout`` gives, so a wait
    never hangs even where Airflow's deferral timeout is not enforced (``dag.test()``).

    :param watch: :meth:`RunWatch.to_json` of what to follow.
    :param qstash_conn_id: The ``qstash`` connection.
    :param poll_interval: Seconds between polls.
    :param deadline: Unix time (seconds) when the wait ends.
    :param known: Final states an earlier poll saw (:meth:`RunFollower.known_json`).
    :param max_backoff: The longest pause after repeated transient errors.

    Events: ``{"status": "success"|"failed"|"timeout"|"error", "message", "outcome"}``;
    ``outcome`` is :meth:`RunOutcome.to_json` (None for ``error``).
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
        follower = RunFollower(
            RunWatch.from_json(self.watch), RunFollower.known_from_json(self.known)
        )
        try:
            client = await WorkflowDLQHook(self.qstash_conn_id).get_async_conn()
        except Exception as exc:  # a missing or invalid connection: say so, do not retry
            yield _trigger_event({"status": "error", "message": f"Cannot use connection: {exc}"})
            return
        async with client:
            event = await self._wait(client, follower)
        yield _trigger_event(event)

    async def _wait(self, client: AsyncWorkflowDLQClient, follower: RunFollower) -> dict[str, Any]:
        transient_errors = 0
        while True:
            remaining = self.deadline - time.time()
            if remaining <= 0:
                return follower.verdict(final=True).to_event()
            try:
                async with asyncio.timeout(remaining):
                    verdict = await poll_async(client, follower)
            except TimeoutError:
                return follower.verdict(final=True).to_event()
            except WFDLQError as exc:
                if not is_transient(exc):
                    return {"status": "error", "message": f"Polling the run logs failed: {exc}"}
                transient_errors += 1
                pause = min(self.max_backoff, self.poll_interval * 2.0 ** (transient_errors - 1))
                self.log.warning("Polling the run logs failed (%s); again in %.1f s", exc, pause)
                await asyncio.sleep(max(0.0, min(pause, self.deadline - time.time())))
                continue
            transient_errors = 0
            if verdict.done:
                return verdict.to_event()
            self.log.info("%s", verdict.message)
            await asyncio.sleep(max(0.0, min(self.poll_interval, self.deadline - time.time())))


def _trigger_event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]

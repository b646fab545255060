"""WorkflowRunTrigger: waits in the triggerer until followed workflow runs are final."""

from __future__ import annotations

from typing import Any

from airflow_provider_wfdlq.client import AsyncWorkflowDLQClient
from airflow_provider_wfdlq.recovery.runs import FollowVerdict, RunFollower, RunWatch, poll_async
from airflow_provider_wfdlq.triggers._polling import DEFAULT_MAX_BACKOFF, PollingTrigger

__all__ = ["DEFAULT_MAX_BACKOFF", "WorkflowRunTrigger"]


class WorkflowRunTrigger(PollingTrigger[RunFollower]):
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

    polled = "the run logs"

    def _poller(self) -> RunFollower:
        return RunFollower(RunWatch.from_json(self.watch), RunFollower.known_from_json(self.known))

    async def _poll(self, client: AsyncWorkflowDLQClient, poller: RunFollower) -> FollowVerdict:
        return await poll_async(client, poller)

    def _timed_out(self, poller: RunFollower) -> dict[str, Any]:
        return poller.verdict(final=True).to_event()

    def _error(self, message: str) -> dict[str, Any]:
        return {"status": "error", "message": message}

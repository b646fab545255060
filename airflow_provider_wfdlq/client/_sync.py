"""The blocking client: drives the shared flows over one ``httpx.Client``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import httpx

from airflow_provider_wfdlq.client._operations import Operations, PageFlow
from airflow_provider_wfdlq.client._wire import (
    DEFAULT_MAX_ANSWER_BYTES,
    Call,
    Flow,
    Outcome,
    Sleep,
)
from airflow_provider_wfdlq.client.constants import DEFAULT_BASE_URL
from airflow_provider_wfdlq.client.filters import DLQFilters, Overrides, RunLogFilters, RunLogQuery
from airflow_provider_wfdlq.client.models import (
    BulkResult,
    DeleteResult,
    DLQMessage,
    DLQPage,
    FlowControlState,
    ResumedRun,
    RunLogPage,
    WorkflowRun,
)
from airflow_provider_wfdlq.client.retry import RetryPolicy

T = TypeVar("T")
Page = TypeVar("Page", DLQPage, BulkResult, DeleteResult, RunLogPage)

FiltersArg = DLQFilters | Mapping[str, Any] | None
OverridesArg = Overrides | Mapping[str, Any] | None


class WorkflowDLQClient:
    """Blocking client of the Upstash Workflow DLQ API; one connection pool per instance.

    Use it as a context manager, or call :meth:`close`. Every argument is checked before
    any request is sent; see ``airflow_provider_wfdlq.client.validation`` for the forms.
    """

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        total_timeout: float | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        allow_insecure_http: bool = False,
        auth_hint: str | None = None,
    ) -> None:
        self._ops = Operations(
            token,
            base_url,
            retry,
            timeout,
            total_timeout=total_timeout,
            max_answer_bytes=max_answer_bytes,
            allow_insecure_http=allow_insecure_http,
            auth_hint=auth_hint,
        )
        self._http = httpx.Client(
            transport=transport, timeout=self._ops.timeout, follow_redirects=False
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} base_url={self._ops.base_url!r}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- driving flows --------------------------------------------------------------------

    def _run(self, flow: Flow[T]) -> T:
        outcome: Outcome | None = None
        while True:
            try:
                step = flow.send(outcome)
            except StopIteration as finished:
                return finished.value  # type: ignore[no-any-return]
            if isinstance(step, Sleep):
                self._ops.policy.sleep(step.seconds)
                outcome = None
            else:
                outcome = self._send(step)

    def _send(self, call: Call) -> Outcome:
        """One attempt: the answer read in full, or the httpx error that ended it.

        The body is streamed so the size cap and the whole-attempt deadline hold while it
        arrives (httpx's own timeout is per read).
        """
        deadline = self._ops.deadline()
        try:
            response = self._http.send(self._ops.request(call), stream=True)
            try:
                guard = self._ops.body_guard(call, response, deadline)
                for chunk in response.iter_bytes():
                    guard.add(chunk)
            finally:
                response.close()
        except httpx.RequestError as exc:
            return exc
        return guard.response()

    def _pages(self, page: PageFlow[Page]) -> Iterator[Page]:
        cursor = None
        while True:
            result = self._run(page(cursor))
            yield result
            if result.cursor is None:
                return
            cursor = result.cursor

    # --- reading --------------------------------------------------------------------------

    def list_messages(
        self,
        filters: FiltersArg = None,
        *,
        cursor: str | None = None,
        count: int | None = None,
        lean: bool = False,
    ) -> DLQPage:
        """One page of DLQ entries (``count`` 1..100, server default 100); ``lean``
        decodes only what selecting and acting read (:meth:`DLQMessage.from_json`)."""
        return self._run(self._ops.message_pages(filters, count, lean)(cursor))

    def iter_messages(
        self, filters: FiltersArg = None, *, count: int | None = None
    ) -> Iterator[DLQMessage]:
        """Every matching entry, following the cursor; one page in memory at a time."""
        pages = self._pages(self._ops.message_pages(filters, count))
        return (message for page in pages for message in page.messages)

    def get_message(self, dlq_id: str) -> DLQMessage:
        return self._run(self._ops.get_message(dlq_id))

    def run_logs(
        self, *, count: int | None = None, cursor: str | None = None, **filters: Unpack[RunLogQuery]
    ) -> RunLogPage:
        """One page of run logs, to follow the runs a resume created.

        Filters: ``workflow_run_id`` + ``workflow_created_at``, or ``workflow_runs`` (pairs
        of run id and created-at ms, or ResumedRun objects), ``state``, ``from_date``,
        ``to_date``, ``workflow_url``, ``label``.
        """
        return self._run(self._ops.run_log_pages(RunLogFilters.build(**filters), count)(cursor))

    def iter_run_logs(
        self, *, count: int | None = None, **filters: Unpack[RunLogQuery]
    ) -> Iterator[WorkflowRun]:
        """Every matching run, following the cursor."""
        pages = self._pages(self._ops.run_log_pages(RunLogFilters.build(**filters), count))
        return (run for page in pages for run in page.runs)

    # --- acting on one entry --------------------------------------------------------------

    def resume(self, dlq_id: str, overrides: OverridesArg = None) -> ResumedRun:
        """Continue the failed run from its failed step, as a NEW run (the entry leaves the DLQ).

        Sent at most once: if the outcome is unclear (read timeout, dropped connection, 502,
        504) :class:`OutcomeUnknownError` is raised and nothing is re-sent; only a 429, a 503
        or a connection never made is retried. A 404 is :class:`NotFoundError`.
        """
        return self._run(self._ops.act_on_one("resume", dlq_id, overrides))

    def restart(self, dlq_id: str, overrides: OverridesArg = None) -> ResumedRun:
        """Run the failed workflow again from its first step, as a NEW run; see :meth:`resume`."""
        return self._run(self._ops.act_on_one("restart", dlq_id, overrides))

    def retry_failure_callback(self, dlq_id: str) -> ResumedRun:
        """Call the failure callback again (only from CALLBACK_FAIL); answers the ORIGINAL run."""
        return self._run(self._ops.retry_failure_callback(dlq_id))

    def cancel_failure_callback(self, dlq_id: str) -> None:
        """Cancel an in-progress failure callback (any 2xx/3xx answer means done)."""
        self._run(self._ops.cancel_failure_callback(dlq_id))

    def delete(self, dlq_id: str) -> None:
        """Remove one entry; at most once, as :meth:`resume` (a 404 is NotFoundError)."""
        self._run(self._ops.delete(dlq_id))

    # --- flow control (pacing, and the kill switch of a redrive) ---------------------------

    def flow_control_state(self, flow_control_key: str) -> FlowControlState:
        """The key's state: ``waitlist_size`` (runs waiting to execute) and ``is_paused``."""
        return self._run(self._ops.flow_control_state(flow_control_key))

    def pause_flow_control(self, flow_control_key: str) -> None:
        """Hold every run under the key (how a redrive that makes things worse is stopped)."""
        self._run(self._ops.flow_control_verb(flow_control_key, "pause"))

    def resume_flow_control(self, flow_control_key: str) -> None:
        """Let the runs held under the key go again."""
        self._run(self._ops.flow_control_verb(flow_control_key, "resume"))

    # --- acting in bulk -------------------------------------------------------------------

    def resume_bulk(
        self,
        filters: FiltersArg = None,
        overrides: OverridesArg = None,
        *,
        cursor: str | None = None,
        count: int | None = None,
        all: bool = False,
    ) -> BulkResult:
        """Resume the entries selected by ``filters`` (at most ``count``, and a server cap).

        Empty filters select the WHOLE DLQ and are refused unless ``all=True``. Follow
        ``cursor`` (or use :meth:`iter_resume_bulk`) while the result is not ``done``.

        Sent at most once: an unclear outcome (network error after sending, read timeout,
        502, 504) raises :class:`OutcomeUnknownError` (with the named ``dlq_ids``) and
        nothing is re-sent; only a 429, a 503 or a connection never made is retried.

        With ``dlq_ids`` no ``count`` or ``cursor`` is accepted (Upstash ignores other
        filters then); a non-empty ``cursor`` in the result means the server acted on fewer
        ids than named. A 404 (``Some DLQ messages were not found``) is
        :class:`NotFoundError`.

        A 400 to a call with a stale ``cursor`` raises :class:`BadRequestError`; starting the
        walk again with the same filters is safe, as resumed entries are gone.
        """
        page = self._ops.bulk_pages("resume", filters, overrides, count, all)
        return self._run(page(cursor))

    def restart_bulk(
        self,
        filters: FiltersArg = None,
        overrides: OverridesArg = None,
        *,
        cursor: str | None = None,
        count: int | None = None,
        all: bool = False,
    ) -> BulkResult:
        """Restart the selected entries from their first step; as :meth:`resume_bulk`."""
        page = self._ops.bulk_pages("restart", filters, overrides, count, all)
        return self._run(page(cursor))

    def iter_resume_bulk(
        self,
        filters: FiltersArg = None,
        overrides: OverridesArg = None,
        *,
        count: int | None = None,
        all: bool = False,
    ) -> Iterator[BulkResult]:
        """One :class:`BulkResult` per call, following the cursor until the walk is done."""
        return self._pages(self._ops.bulk_pages("resume", filters, overrides, count, all))

    def iter_restart_bulk(
        self,
        filters: FiltersArg = None,
        overrides: OverridesArg = None,
        *,
        count: int | None = None,
        all: bool = False,
    ) -> Iterator[BulkResult]:
        """As :meth:`iter_resume_bulk`, restarting."""
        return self._pages(self._ops.bulk_pages("restart", filters, overrides, count, all))

    def delete_bulk(
        self,
        filters: FiltersArg = None,
        *,
        cursor: str | None = None,
        count: int | None = None,
        all: bool = False,
    ) -> DeleteResult:
        """Delete the selected entries; same ``all`` guard and at-most-once rule as resume."""
        return self._run(self._ops.delete_pages(filters, count, all)(cursor))

    def iter_delete_bulk(
        self, filters: FiltersArg = None, *, count: int | None = None, all: bool = False
    ) -> Iterator[DeleteResult]:
        """One :class:`DeleteResult` per call, following the cursor until the walk is done."""
        return self._pages(self._ops.delete_pages(filters, count, all))

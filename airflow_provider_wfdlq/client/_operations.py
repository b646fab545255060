"""Every client operation once, as sans-IO flows (see ``_wire``).

Public methods here check ALL arguments eagerly, then return a flow; so a bad value raises
:class:`ValidationError` at the call, before any request, in both clients alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from airflow_provider_wfdlq.client._wire import (
    Answer,
    Call,
    Flow,
    Sleep,
    api_error,
    build_request,
    check_base_url,
    check_timeout,
    check_token,
    dlq_path,
    json_object,
    transport_error,
)
from airflow_provider_wfdlq.client.errors import (
    AnswerLostError,
    APIError,
    UnexpectedAnswerError,
    ValidationError,
)
from airflow_provider_wfdlq.client.filters import DLQFilters, Overrides, RunLogFilters
from airflow_provider_wfdlq.client.models import (
    BulkResult,
    DeleteResult,
    DLQMessage,
    DLQPage,
    FlowControlState,
    ResumedRun,
    RunLogPage,
)
from airflow_provider_wfdlq.client.retry import RetryPolicy, may_have_acted
from airflow_provider_wfdlq.client.validation import check_count, check_flow_control_key

logger = logging.getLogger("airflow_provider_wfdlq.client")

T = TypeVar("T")
R = TypeVar("R", BulkResult, DeleteResult)
Action = Literal["resume", "restart"]
PageFlow = Callable[[str | None], Flow[T]]

DLQ = "/v2/workflows/dlq"
LOGS = "/v2/workflows/logs"
FLOW_CONTROL = "/v2/flowControl"
MAX_LIST_COUNT = 100


def check_cursor(cursor: Any) -> str | None:
    """None or a non-empty string: ``""`` means "done", so sending it would restart a walk."""
    if cursor is None or (isinstance(cursor, str) and cursor):
        return cursor
    accepted = "None or the non-empty cursor of the previous answer"
    raise ValidationError("cursor", cursor, accepted, "is not a cursor")


def check_all(value: Any) -> bool:
    """Strictly a bool: the text ``"False"`` is truthy and must not unlock a DLQ-wide call."""
    if not isinstance(value, bool):
        raise ValidationError("all", value, "True or False (a bool, not text)", "is not a bool")
    return value


def _paged(
    params: list[tuple[str, str]], cursor: str | None, count: int | None
) -> tuple[tuple[str, str], ...]:
    extra = [("cursor", cursor)] if cursor else []
    extra += [("count", str(count))] if count is not None else []
    return tuple(params + extra)


class Operations:
    """The DLQ protocol without I/O: arguments in, flows out."""

    def __init__(self, token: Any, base_url: Any, retry: Any, timeout: Any) -> None:
        self.token = check_token(token)
        self.base_url = check_base_url(base_url)
        self.timeout = check_timeout(timeout)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ValidationError("retry", retry, "a RetryPolicy or None", "is not a RetryPolicy")
        self.policy = retry if retry is not None else RetryPolicy()

    def request(self, call: Call) -> httpx.Request:
        return build_request(call, self.base_url, self.token, self.timeout)

    # --- plumbing -------------------------------------------------------------------------

    def exchange(self, call: Call) -> Flow[Answer]:
        """Send ``call`` until it gets a final answer, per the retry policy."""
        may_have_acted_before = False
        attempt = 1
        while True:
            outcome = yield call
            if outcome is None:
                raise RuntimeError("a flow was resumed without the outcome of its call")
            wait = self.policy.wait_before_retry(attempt, outcome)
            if wait is None:
                break
            reason = (
                f"HTTP {outcome.status_code}"
                if isinstance(outcome, httpx.Response)
                else type(outcome).__name__
            )
            logger.warning(
                "%s %s: %s on attempt %d of %d; retrying in %.2fs",
                *(call.method, call.path, reason, attempt, self.policy.max_attempts, wait),
            )
            may_have_acted_before = may_have_acted_before or may_have_acted(outcome)
            yield Sleep(wait)
            attempt += 1
        if isinstance(outcome, httpx.RequestError):
            raise transport_error(call, outcome, self.token) from outcome
        return Answer(call, outcome, may_have_acted_before)

    def error(self, answer: Answer, hint: str = "") -> APIError:
        return api_error(answer, self.token, self.policy.clock(), hint)

    def result(self, answer: Answer, parse: Callable[[Mapping[str, Any]], T]) -> T:
        """Parse a success answer; raise the matching APIError for any other."""
        if not answer.ok:
            raise self.error(answer)
        body = json_object(answer)
        try:
            return parse(body)
        except (KeyError, TypeError, ValueError) as exc:
            problem = f"the answer does not match the contract ({type(exc).__name__}: {exc})"
            raise UnexpectedAnswerError(
                answer.status, problem, answer.call.method, answer.call.path
            ) from exc

    def done(self, answer: Answer) -> None:
        """For calls whose success has no body."""
        if not answer.ok:
            raise self.error(answer)

    def _fetch(self, dlq_id: str) -> Flow[DLQMessage | None]:
        """The entry, or None if it is not in the DLQ (404)."""
        answer = yield from self.exchange(Call("GET", dlq_path(DLQ, dlq_id)))
        if answer.status == 404:
            return None
        return self.result(answer, DLQMessage.from_json)

    def _count(self, count: Any, maximum: int | None = None) -> int | None:
        if count is None:
            return None
        number = check_count(count, "count")
        if maximum is not None and number > maximum:
            accepted = f"an integer from 1 to {maximum}"
            raise ValidationError("count", count, accepted, "is above the page size limit")
        return number

    def _bulk_filters(self, filters: Any, all: Any) -> DLQFilters:
        checked = DLQFilters.coerce(filters)
        if checked.is_empty() and not check_all(all):
            accepted = "dlq_ids or at least one filter, or all=True to act on EVERY DLQ entry"
            raise ValidationError("filters", filters, accepted, "selects the whole DLQ")
        return checked

    # --- listing and reading --------------------------------------------------------------

    def message_pages(self, filters: Any, count: Any) -> PageFlow[DLQPage]:
        checked = DLQFilters.coerce(filters)
        if checked.dlq_ids:
            accepted = "filters without dlq_ids (get_message reads one entry by id)"
            raise ValidationError("dlq_ids", checked.dlq_ids, accepted, "cannot be listed")
        params, page_size = checked.to_params(), self._count(count, MAX_LIST_COUNT)

        def page(cursor: str | None) -> Flow[DLQPage]:
            call = Call("GET", DLQ, _paged(params, check_cursor(cursor), page_size))
            return self._parsed(call, DLQPage.from_json)

        return page

    def _parsed(self, call: Call, parse: Callable[[Mapping[str, Any]], T]) -> Flow[T]:
        answer = yield from self.exchange(call)
        return self.result(answer, parse)

    def get_message(self, dlq_id: Any) -> Flow[DLQMessage]:
        return self._parsed(Call("GET", dlq_path(DLQ, dlq_id)), DLQMessage.from_json)

    def run_log_pages(self, filters: RunLogFilters, count: Any) -> PageFlow[RunLogPage]:
        params, page_size = filters.to_params(), self._count(count)

        def page(cursor: str | None) -> Flow[RunLogPage]:
            call = Call("GET", LOGS, _paged(params, check_cursor(cursor), page_size))
            return self._parsed(call, RunLogPage.from_json)

        return page

    # --- acting on one entry --------------------------------------------------------------

    def act_on_one(self, action: Action, dlq_id: Any, overrides: Any) -> Flow[ResumedRun]:
        call = Call(
            "POST",
            dlq_path(f"{DLQ}/{action}", dlq_id),
            headers=Overrides.coerce(overrides).to_headers(),
        )
        return self._act_on_one(call, action, dlq_id)

    def _act_on_one(self, call: Call, action: Action, dlq_id: str) -> Flow[ResumedRun]:
        answer = yield from self.exchange(call)
        if answer.status == 404 and answer.earlier_attempt_may_have_acted:
            error = self.error(answer)
            hint = (
                f"an earlier attempt whose answer was lost most likely did {action} DLQ entry "
                f"{dlq_id}, which then left the DLQ; the new run id is unknown (look for the "
                "run in the run logs)"
            )
            raise AnswerLostError(
                error.status, error.error, error.method, error.path, hint, dlq_id=dlq_id
            )
        return self.result(answer, ResumedRun.from_json)

    def delete(self, dlq_id: Any) -> Flow[None]:
        return self._delete(Call("DELETE", dlq_path(DLQ, dlq_id)))

    def _delete(self, call: Call) -> Flow[None]:
        answer = yield from self.exchange(call)
        if answer.status == 404 and answer.earlier_attempt_may_have_acted:
            logger.warning(
                "%s %s: 404 after a lost answer; the lost attempt deleted it",
                call.method,
                call.path,
            )
            return
        self.done(answer)

    def retry_failure_callback(self, dlq_id: Any) -> Flow[ResumedRun]:
        call = Call("POST", dlq_path(f"{DLQ}/callback", dlq_id))
        return self._retry_failure_callback(call, dlq_id)

    def _retry_failure_callback(self, call: Call, dlq_id: str) -> Flow[ResumedRun]:
        answer = yield from self.exchange(call)
        if answer.status == 400 and answer.earlier_attempt_may_have_acted:
            # A lost attempt moved CALLBACK_FAIL to CALLBACK_INPROGRESS, so the re-send is
            # refused; the answer it lost is the ORIGINAL run's ids, which the entry carries.
            entry = yield from self._fetch(dlq_id)
            if (
                entry is not None
                and entry.failure_function_state == "CALLBACK_INPROGRESS"
                and entry.workflow_run_id
                and entry.workflow_created_at is not None
            ):
                return ResumedRun(entry.workflow_run_id, entry.workflow_created_at)
        return self.result(answer, ResumedRun.from_json)

    def cancel_failure_callback(self, dlq_id: Any) -> Flow[None]:
        call = Call("DELETE", dlq_path(f"{DLQ}/callback", dlq_id), redirect_is_success=True)
        return self._cancel_failure_callback(call, dlq_id)

    def _cancel_failure_callback(self, call: Call, dlq_id: str) -> Flow[None]:
        answer = yield from self.exchange(call)
        if answer.status == 400 and answer.earlier_attempt_may_have_acted:
            entry = yield from self._fetch(dlq_id)
            if entry is not None and entry.failure_function_state == "CALLBACK_CANCELED":
                return  # the lost attempt cancelled it
        self.done(answer)

    # --- flow control ---------------------------------------------------------------------

    def flow_control_state(self, key: Any) -> Flow[FlowControlState]:
        path = _flow_control_path(key)
        checked = check_flow_control_key(key, "flow_control_key")
        return self._parsed(
            Call("GET", path), lambda body: FlowControlState.from_json(body, checked)
        )

    def flow_control_verb(self, key: Any, verb: Literal["pause", "resume"]) -> Flow[None]:
        """Pause or resume a key; both are idempotent, so retrying them is safe."""
        call = Call("POST", f"{_flow_control_path(key)}/{verb}")
        answer = yield from self.exchange(call)
        self.done(answer)

    # --- acting in bulk -------------------------------------------------------------------

    def bulk_pages(
        self, action: Action, filters: Any, overrides: Any, count: Any, all: Any
    ) -> PageFlow[BulkResult]:
        checked = self._bulk_filters(filters, all)
        headers, limit = Overrides.coerce(overrides).to_headers(), self._count(count)
        path = f"{DLQ}/{action}"

        def call(cursor: str | None, params: list[tuple[str, str]]) -> Call:
            return Call("POST", path, _paged(params, cursor, limit), headers)

        def page(cursor: str | None) -> Flow[BulkResult]:
            return self._bulk(checked, check_cursor(cursor), call, BulkResult.from_json)

        return page

    def delete_pages(self, filters: Any, count: Any, all: Any) -> PageFlow[DeleteResult]:
        checked, limit = self._bulk_filters(filters, all), self._count(count)

        def call(cursor: str | None, params: list[tuple[str, str]]) -> Call:
            return Call("DELETE", DLQ, _paged(params, cursor, limit))

        def page(cursor: str | None) -> Flow[DeleteResult]:
            return self._bulk(checked, check_cursor(cursor), call, DeleteResult.from_json)

        return page

    def _bulk(
        self,
        filters: DLQFilters,
        cursor: str | None,
        make_call: Callable[[str | None, list[tuple[str, str]]], Call],
        parse: Callable[[Mapping[str, Any]], R],
    ) -> Flow[R]:
        if filters.dlq_ids and cursor:
            accepted = "no cursor: calls by dlq_ids act on all of them at once"
            raise ValidationError("cursor", cursor, accepted, "cannot be used with dlq_ids")
        if filters.dlq_ids:

            def by_ids(ids: tuple[str, ...]) -> Call:
                return make_call(None, DLQFilters(dlq_ids=ids).to_params())

            return self._bulk_by_ids(filters.dlq_ids, by_ids, parse)
        return self._bulk_by_filters(make_call(cursor, filters.to_params()), parse)

    def _bulk_by_filters(self, call: Call, parse: Callable[[Mapping[str, Any]], R]) -> Flow[R]:
        answer = yield from self.exchange(call)
        result = self.result(answer, parse)
        if not answer.earlier_attempt_may_have_acted:
            return result
        logger.warning(
            "%s %s: an earlier attempt's answer was lost; what it acted on has left the DLQ "
            "and this attempt acted on what remained; the lost attempt's results are unknown",
            call.method,
            call.path,
        )
        return replace(result, answer_lost=True)

    def _bulk_by_ids(
        self,
        dlq_ids: tuple[str, ...],
        make_call: Callable[[tuple[str, ...]], Call],
        parse: Callable[[Mapping[str, Any]], R],
    ) -> Flow[R]:
        """Act on ``dlq_ids``; on a 404 after a lost answer, find out what is left and redo.

        The lost attempt may have acted on some ids, which then left the DLQ and make the
        retry answer 404 ``Some DLQ messages were not found``. Each id is looked up: the ones
        gone are reported in ``lost_dlq_ids``; the call is re-sent for the ones still there.
        """
        remaining = dlq_ids
        lost: tuple[str, ...] = ()
        while True:
            answer = yield from self.exchange(make_call(remaining))
            if answer.status != 404 or not answer.earlier_attempt_may_have_acted:
                break
            still_there = []
            for dlq_id in remaining:
                if (yield from self._fetch(dlq_id)) is not None:
                    still_there.append(dlq_id)
            gone = tuple(dlq_id for dlq_id in remaining if dlq_id not in still_there)
            if not gone:
                raise self.error(answer)  # a 404 that the lost answer does not explain
            lost += gone
            logger.warning(
                "%s %s: answer lost; %d entries were acted on by the lost attempt, "
                "%d remain and are sent again",
                *(answer.call.method, answer.call.path, len(gone), len(still_there)),
            )
            if not still_there:
                return replace(parse({}), lost_dlq_ids=lost, answer_lost=True)
            remaining = tuple(still_there)
        result = self.result(answer, parse)
        return replace(result, lost_dlq_ids=lost, answer_lost=bool(lost))


def _flow_control_path(key: Any) -> str:
    """``/v2/flowControl/<key>`` with the key checked and quoted as a path segment."""
    return f"{FLOW_CONTROL}/{quote(check_flow_control_key(key, 'flow_control_key'), safe='')}"

"""Every client operation once, as sans-IO flows (see ``_wire``).

Public methods here check ALL arguments eagerly, then return a flow; so a bad value raises
:class:`ValidationError` at the call, before any request, in both clients alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from airflow_provider_wfdlq.client._wire import (
    DEFAULT_MAX_ANSWER_BYTES,
    Answer,
    BodyGuard,
    Call,
    Flow,
    Sleep,
    api_error,
    build_request,
    check_base_url,
    check_max_answer_bytes,
    check_timeout,
    check_token,
    check_transport_security,
    dlq_path,
    json_object,
    outcome_unknown,
    transport_error,
)
from airflow_provider_wfdlq.client.errors import (
    APIError,
    UnexpectedAnswerError,
    ValidationError,
)
from airflow_provider_wfdlq.client.filters import (
    MAX_LOG_RUNS,
    DLQFilters,
    Overrides,
    RunLogFilters,
)
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
from airflow_provider_wfdlq.client.validation import (
    check_count,
    check_dlq_id,
    check_flow_control_key,
)

logger = logging.getLogger("airflow_provider_wfdlq.client")

T = TypeVar("T")
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

    def __init__(
        self,
        token: Any,
        base_url: Any,
        retry: Any,
        timeout: Any,
        *,
        total_timeout: Any = None,
        max_answer_bytes: Any = DEFAULT_MAX_ANSWER_BYTES,
        allow_insecure_http: Any = False,
        auth_hint: Any = None,
    ) -> None:
        self.token = check_token(token)
        self.base_url = check_base_url(base_url)
        self.insecure = check_transport_security(self.base_url, allow_insecure_http)
        self.timeout = check_timeout(timeout)
        self.total_timeout = (
            self.timeout if total_timeout is None else check_timeout(total_timeout, "total_timeout")
        )
        self.max_answer_bytes = check_max_answer_bytes(max_answer_bytes)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ValidationError("retry", retry, "a RetryPolicy or None", "is not a RetryPolicy")
        self.policy = retry if retry is not None else RetryPolicy()
        if auth_hint is not None and not isinstance(auth_hint, str):
            raise ValidationError("auth_hint", auth_hint, "text or None", "is not text")
        self.auth_hint = auth_hint or (
            f"check the QStash token, and that {self.base_url} is the API URL of the token's "
            "region (e.g. https://qstash-eu-central-1.upstash.io or "
            "https://qstash-us-east-1.upstash.io)"
        )

    def request(self, call: Call) -> httpx.Request:
        return build_request(call, self.base_url, self.token, self.timeout)

    def deadline(self) -> float:
        """The ``time.monotonic()`` instant by which an attempt starting now must be done."""
        return time.monotonic() + self.total_timeout

    def body_guard(self, call: Call, response: httpx.Response, deadline: float) -> BodyGuard:
        return BodyGuard(call, response, self.max_answer_bytes, deadline, self.total_timeout)

    # --- plumbing -------------------------------------------------------------------------

    def exchange(self, call: Call) -> Flow[Answer]:
        """Send ``call`` until it gets a final answer, per the retry policy.

        An action call (``call.acts``) is sent again only after an outcome that provably
        did not act (429, 503, a connection never made); any other unclear outcome raises
        :class:`OutcomeUnknownError` at once, without sending it again.
        """
        attempt = 1
        while True:
            outcome = yield call
            if outcome is None:
                raise RuntimeError("a flow was resumed without the outcome of its call")
            if call.acts and may_have_acted(outcome):
                raise outcome_unknown(call, outcome, self.token) from (
                    outcome if isinstance(outcome, httpx.RequestError) else None
                )
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
            yield Sleep(wait)
            attempt += 1
        if isinstance(outcome, httpx.RequestError):
            raise transport_error(call, outcome, self.token) from outcome
        return Answer(call, outcome)

    def error(self, answer: Answer, hint: str = "") -> APIError:
        if answer.status in (401, 403) and not hint:
            hint = self.auth_hint
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

    def _count(self, count: Any, maximum: int | None = None) -> int | None:
        if count is None:
            return None
        number = check_count(count, "count")
        if maximum is not None and number > maximum:
            accepted = f"an integer from 1 to {maximum}"
            raise ValidationError("count", count, accepted, "is above the page size limit")
        return number

    def _bulk_filters(self, filters: Any, all: Any, count: Any) -> tuple[DLQFilters, int | None]:
        checked = DLQFilters.coerce(filters)
        if checked.is_empty() and not check_all(all):
            accepted = "dlq_ids or at least one filter, or all=True to act on EVERY DLQ entry"
            raise ValidationError("filters", filters, accepted, "selects the whole DLQ")
        if checked.dlq_ids and count is not None:
            # Upstash: with dlqIds "other filters are ignored", count too.
            accepted = "no count with dlq_ids (the call names its entries; pass fewer ids)"
            raise ValidationError("count", count, accepted, "cannot be used with dlq_ids")
        return checked, self._count(count)

    # --- listing and reading --------------------------------------------------------------

    def message_pages(self, filters: Any, count: Any, lean: bool = False) -> PageFlow[DLQPage]:
        checked = DLQFilters.coerce(filters)
        if checked.dlq_ids:
            accepted = "filters without dlq_ids (get_message reads one entry by id)"
            raise ValidationError("dlq_ids", checked.dlq_ids, accepted, "cannot be listed")
        params, page_size = checked.to_params(), self._count(count, MAX_LIST_COUNT)

        def page(cursor: str | None) -> Flow[DLQPage]:
            call = Call("GET", DLQ, _paged(params, check_cursor(cursor), page_size))
            return self._parsed(call, lambda data: DLQPage.from_json(data, lean))

        return page

    def _parsed(self, call: Call, parse: Callable[[Mapping[str, Any]], T]) -> Flow[T]:
        answer = yield from self.exchange(call)
        return self.result(answer, parse)

    def get_message(self, dlq_id: Any) -> Flow[DLQMessage]:
        return self._parsed(Call("GET", dlq_path(DLQ, dlq_id)), DLQMessage.from_json)

    def run_log_pages(self, filters: RunLogFilters, count: Any) -> PageFlow[RunLogPage]:
        params, page_size = filters.to_params(), self._count(count, MAX_LOG_RUNS)

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
            acts=True,
            dlq_ids=(check_dlq_id(dlq_id, "dlq_id"),),
        )
        return self._parsed(call, ResumedRun.from_json)

    def delete(self, dlq_id: Any) -> Flow[None]:
        call = Call(
            "DELETE", dlq_path(DLQ, dlq_id), acts=True, dlq_ids=(check_dlq_id(dlq_id, "dlq_id"),)
        )
        return self._done(call)

    def retry_failure_callback(self, dlq_id: Any) -> Flow[ResumedRun]:
        """Answers the ORIGINAL run's ids (the callback belongs to it)."""
        call = Call(
            "POST",
            dlq_path(f"{DLQ}/callback", dlq_id),
            acts=True,
            dlq_ids=(check_dlq_id(dlq_id, "dlq_id"),),
        )
        return self._parsed(call, ResumedRun.from_json)

    def cancel_failure_callback(self, dlq_id: Any) -> Flow[None]:
        call = Call(
            "DELETE",
            dlq_path(f"{DLQ}/callback", dlq_id),
            redirect_is_success=True,
            acts=True,
            dlq_ids=(check_dlq_id(dlq_id, "dlq_id"),),
        )
        return self._done(call)

    def _done(self, call: Call) -> Flow[None]:
        answer = yield from self.exchange(call)
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
        checked, limit = self._bulk_filters(filters, all, count)
        headers = Overrides.coerce(overrides).to_headers()
        path = f"{DLQ}/{action}"

        def page(cursor: str | None) -> Flow[BulkResult]:
            call = self._bulk_call("POST", path, checked, check_cursor(cursor), limit, headers)
            return self._parsed(call, BulkResult.from_json)

        return page

    def delete_pages(self, filters: Any, count: Any, all: Any) -> PageFlow[DeleteResult]:
        checked, limit = self._bulk_filters(filters, all, count)

        def page(cursor: str | None) -> Flow[DeleteResult]:
            call = self._bulk_call("DELETE", DLQ, checked, check_cursor(cursor), limit, {})
            return self._parsed(call, DeleteResult.from_json)

        return page

    @staticmethod
    def _bulk_call(
        method: str,
        path: str,
        filters: DLQFilters,
        cursor: str | None,
        count: int | None,
        headers: Mapping[str, str],
    ) -> Call:
        """One bulk action call; by dlq_ids it names the ids and nothing else."""
        if filters.dlq_ids:
            if cursor:
                accepted = "no cursor: calls by dlq_ids act on all of them at once"
                raise ValidationError("cursor", cursor, accepted, "cannot be used with dlq_ids")
            params = tuple(DLQFilters(dlq_ids=filters.dlq_ids).to_params())
            return Call(method, path, params, headers, acts=True, dlq_ids=filters.dlq_ids)
        return Call(method, path, _paged(filters.to_params(), cursor, count), headers, acts=True)


def _flow_control_path(key: Any) -> str:
    """``/v2/flowControl/<key>`` with the key checked and quoted as a path segment."""
    return f"{FLOW_CONTROL}/{quote(check_flow_control_key(key, 'flow_control_key'), safe='')}"

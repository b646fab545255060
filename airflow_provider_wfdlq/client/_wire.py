"""Sans-IO pieces shared by the sync and async clients: requests out, errors in.

A client operation is a generator (a "flow") that yields :class:`Call` (send this, give me
the outcome) or :class:`Sleep` (wait this long) and returns its result. The sync and async
clients only drive flows, so everything that decides anything lives here and in
``_operations``, once.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar
from urllib.parse import quote

import httpx

from airflow_provider_wfdlq import __version__
from airflow_provider_wfdlq.client.errors import (
    APIError,
    AuthError,
    BadRequestError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnexpectedAnswerError,
    ValidationError,
    redact,
)
from airflow_provider_wfdlq.client.retry import rate_limit_wait
from airflow_provider_wfdlq.client.validation import check_dlq_id

T = TypeVar("T")

logger = logging.getLogger("airflow_provider_wfdlq.client")

USER_AGENT = f"airflow-provider-wfdlq/{__version__} httpx/{httpx.__version__}"
_ERROR_EXCERPT = 200


@dataclass(frozen=True)
class Call:
    """One HTTP exchange to make: never a body, never the token (added at send time).

    ``acts``: the call changes the DLQ (resume, restart, delete, callback retry/cancel), so
    it is sent at most once unless an outcome proves it did not act; ``dlq_ids`` are the
    ids it names (for the error that says its outcome is unknown).
    """

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    redirect_is_success: bool = False
    acts: bool = False
    dlq_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sleep:
    """Wait before the next attempt; the driver sleeps its own way (blocking or awaiting)."""

    seconds: float


Outcome: TypeAlias = httpx.Response | httpx.RequestError
Flow: TypeAlias = Generator[Call | Sleep, Outcome | None, T]


@dataclass(frozen=True)
class Answer:
    """The final response to a call, after retries."""

    call: Call
    response: httpx.Response

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def ok(self) -> bool:
        return self.status < 300 or (self.call.redirect_is_success and self.status < 400)


def dlq_path(prefix: str, dlq_id: Any, field: str = "dlq_id") -> str:
    """``prefix/<id>`` with the id checked and quoted, since it becomes a path segment."""
    return f"{prefix}/{quote(check_dlq_id(dlq_id, field), safe='')}"


def check_token(token: Any, field: str = "token") -> str:
    """A usable token: non-empty, no whitespace (not even around it), no control character.

    Such a token would break the ``Authorization`` header, and httpx's error about it shows
    the header in an escaped form that redaction cannot find; so it is refused here, with a
    message that never shows the token.
    """
    accepted = "a non-empty token without whitespace or control characters"
    if not isinstance(token, str) or not token:
        raise ValidationError(field, "<redacted>", accepted, "is empty or not text")
    if any(c.isspace() for c in token):
        problem = "contains whitespace (a pasted space or newline?)"
        raise ValidationError(field, "<redacted>", accepted, problem)
    if any(not c.isprintable() for c in token):
        raise ValidationError(field, "<redacted>", accepted, "contains a control character")
    return token


def check_base_url(base_url: Any) -> str:
    """An http(s) URL with a host and no query/fragment; trailing slashes dropped."""
    accepted = "an http(s) URL like 'https://qstash.upstash.io' or 'http://127.0.0.1:8080'"
    try:
        url = httpx.URL(base_url) if isinstance(base_url, str) else None
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ValidationError("base_url", base_url, accepted, "is not an http(s) URL")
    if url.query or url.fragment or url.userinfo:
        problem = "must not carry a query, fragment or credentials"
        raise ValidationError("base_url", base_url, accepted, problem)
    return str(url).rstrip("/")


def is_loopback(host: str) -> bool:
    """``localhost`` (and ``*.localhost``), 127.0.0.0/8 and ``::1``."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_transport_security(base_url: str, allow_insecure_http: Any) -> bool:
    """Refuse to send the token in clear: plain http only to a loopback host, unless the
    caller opts in explicitly (then a loud warning is logged)."""
    if not isinstance(allow_insecure_http, bool):
        accepted = "True or False (a bool, not text)"
        raise ValidationError("allow_insecure_http", allow_insecure_http, accepted, "is not a bool")
    url = httpx.URL(base_url)
    if url.scheme != "http" or is_loopback(url.host):
        return False
    if not allow_insecure_http:
        accepted = (
            "an https:// URL (plain http only to localhost/127.0.0.1/::1), or "
            "allow_insecure_http=True to send the token in clear anyway"
        )
        problem = "is plain http to a non-loopback host: the token would travel in clear"
        raise ValidationError("base_url", base_url, accepted, problem)
    logger.warning(
        "INSECURE: allow_insecure_http is set, so the QStash token is sent IN CLEAR over plain "
        "http to %s; anyone on the network path can read and reuse it. Use https.",
        base_url,
    )
    return True


def check_timeout(timeout: Any, field: str = "timeout") -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValidationError(field, timeout, "a number of seconds > 0", "is not a timeout")
    return float(timeout)


def check_max_answer_bytes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        accepted = f"an int of bytes >= 1 (default {DEFAULT_MAX_ANSWER_BYTES})"
        raise ValidationError("max_answer_bytes", value, accepted, "is not a size")
    return value


#: Query keys and values that percent-encoding leaves as they are (RFC 3986 unreserved).
_PLAIN = re.compile(r"[A-Za-z0-9._~-]+")


def build_request(call: Call, base_url: str, token: str, timeout: float) -> httpx.Request:
    """The httpx request for ``call``; the timeout travels as an extension, as httpx's own
    ``build_request`` would set it, because ``Client.send`` does not add one."""
    headers = {
        "Authorization": f"Bearer {token}",
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
        **call.headers,
    }
    url, params = base_url + call.path, call.params
    if params and all(_PLAIN.fullmatch(k) and _PLAIN.fullmatch(v) for k, v in params):
        # Nothing to percent-encode (ids, numbers): joined here, as urlencode would, once.
        # A bulk call names 50 ids; encoding them through httpx costs more than the call.
        url, params = f"{url}?{'&'.join(f'{k}={v}' for k, v in params)}", ()
    return httpx.Request(
        call.method,
        url,
        params=params or None,
        headers=headers,
        extensions={"timeout": httpx.Timeout(timeout).as_dict()},
    )


def _error_text(response: httpx.Response) -> str:
    """The server's ``{"error": ...}`` text, else an excerpt of the body, else the reason."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, Mapping) and isinstance(body.get("error"), str):
        return str(body["error"])
    text = response.content.decode("utf-8", "replace").strip()
    if len(text) > _ERROR_EXCERPT:
        text = text[:_ERROR_EXCERPT] + "..."
    return text or response.reason_phrase or "(empty body)"


def api_error(answer: Answer, token: str, now: float, hint: str = "") -> APIError:
    """The exception for a non-success answer, with server text redacted."""
    status, call = answer.status, answer.call
    args = (status, redact(_error_text(answer.response), token), call.method, call.path, hint)
    if status == 429:
        return RateLimitedError(*args, retry_after=rate_limit_wait(answer.response.headers, now))
    if status in (401, 403):
        return AuthError(*args)
    if status == 404:
        return NotFoundError(*args)
    if 400 <= status < 500:
        return BadRequestError(*args)
    if status >= 500:
        return ServerError(*args)
    return UnexpectedAnswerError(*args)


def transport_error(call: Call, exc: httpx.RequestError, token: str) -> TransportError:
    detail = redact(f"{type(exc).__name__}: {exc}", token)
    return TransportError(detail, call.method, call.path)


DEFAULT_MAX_ANSWER_BYTES = 32 * 1024 * 1024
"""The largest answer read (decoded bytes); a DLQ page of 100 entries is far below it."""


class BodyGuard:
    """Collects an answer's body chunk by chunk, enforcing the size cap and the deadline.

    ``deadline`` is a ``time.monotonic()`` instant for the WHOLE attempt (httpx's timeout is
    per read: a server trickling a byte every half second would never trip it). Too late:
    an ``httpx.ReadTimeout`` (an outcome like any read timeout: reads retry, actions raise
    OutcomeUnknownError). Too big: :class:`UnexpectedAnswerError` at once, the rest unread.
    """

    def __init__(
        self,
        call: Call,
        response: httpx.Response,
        limit: int,
        deadline: float,
        total_timeout: float,
    ) -> None:
        self.call, self.status, self.headers = call, response.status_code, response.headers
        self.request = response.request
        self.limit, self.deadline, self.total_timeout = limit, deadline, total_timeout
        self.parts: list[bytes] = []
        self.size = 0
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(f"declares {int(declared)} bytes")
        self._check_deadline()

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise self._too_large("is bigger")
        self.parts.append(chunk)
        self._check_deadline()

    def response(self) -> httpx.Response:
        """The answer with its whole body in memory (already decoded, so no encoding)."""
        dropped = {b"content-encoding", b"content-length", b"transfer-encoding"}
        headers = [(k, v) for k, v in self.headers.raw if k.lower() not in dropped]
        return httpx.Response(
            self.status, headers=headers, content=b"".join(self.parts), request=self.request
        )

    def _check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise httpx.ReadTimeout(
                f"no complete answer within the whole-request deadline of "
                f"{self.total_timeout:g}s (total_timeout; the server is slow or trickling)",
                request=self.request,
            )

    def _too_large(self, how: str) -> UnexpectedAnswerError:
        problem = (
            f"the answer {how} than the cap of {self.limit} bytes (max_answer_bytes); "
            "it was not read"
        )
        return UnexpectedAnswerError(self.status, problem, self.call.method, self.call.path)


def deadline_exceeded(request: httpx.Request, total_timeout: float) -> httpx.ReadTimeout:
    """The outcome of an attempt cut short by the overall deadline (async driver)."""
    return httpx.ReadTimeout(
        f"no complete answer within the whole-request deadline of {total_timeout:g}s "
        "(total_timeout; the server is slow or trickling)",
        request=request,
    )


def outcome_unknown(call: Call, outcome: Outcome, token: str) -> OutcomeUnknownError:
    """The error for an action call whose outcome may hide work the server did."""
    if isinstance(outcome, httpx.Response):
        detail = f"HTTP {outcome.status_code}: {_error_text(outcome)}"
    else:
        detail = f"{type(outcome).__name__}: {outcome}"
    return OutcomeUnknownError(call.method, call.path, call.dlq_ids, redact(detail, token))


def json_object(answer: Answer) -> Mapping[str, Any]:
    """The answer's JSON object; anything else is an UnexpectedAnswerError."""
    try:
        body = json.loads(answer.response.content)
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        raise UnexpectedAnswerError(
            answer.status, "the answer is not a JSON object", answer.call.method, answer.call.path
        )
    return body

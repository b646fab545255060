"""Exceptions of the client.

Every exception is built from values that never include the token, and every text that
comes from the server is passed through :func:`redact` by the code that raises it.
"""

from __future__ import annotations

import re
from typing import Any

_MAX_VALUE_REPR = 200


def _short_repr(value: Any) -> str:
    text = repr(value)
    if len(text) > _MAX_VALUE_REPR:
        text = text[: _MAX_VALUE_REPR - 3] + "..."
    return text


class WFDLQError(Exception):
    """Base class: catch this to handle every failure of the client."""


class ValidationError(WFDLQError, ValueError):
    """A value given by the caller was rejected before any request was sent.

    The message always names the parameter, shows the value and says what is accepted,
    because in Airflow the value usually comes from a rendered template far from the code.
    """

    def __init__(
        self, field: str, value: Any, accepted: str, problem: str = "is not valid"
    ) -> None:
        self.field = field
        self.value = value
        self.accepted = accepted
        self.problem = problem
        super().__init__(f"{field}: {_short_repr(value)} {problem}; expected {accepted}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.value, self.accepted, self.problem))


class APIError(WFDLQError):
    """The server answered with a status that is not success.

    ``path`` is the request path only: never the query string, never the token.
    """

    def __init__(self, status: int, error: str, method: str, path: str, hint: str = "") -> None:
        self.status = status
        self.error = error
        self.method = method
        self.path = path
        self.hint = hint
        message = f"{method} {path} answered HTTP {status}: {error}"
        super().__init__(f"{message}; {hint}" if hint else message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status, self.error, self.method, self.path, self.hint))


class BadRequestError(APIError):
    """400, or another 4xx without its own class: the request itself is wrong; never retried."""


class AuthError(APIError):
    """401/403: the token is wrong, revoked or belongs to another region."""


class NotFoundError(APIError):
    """404: the DLQ entry (or one of several) does not exist (any more)."""


class RateLimitedError(APIError):
    """429 that could not be waited out: ``retry_after`` is the advised wait in seconds."""

    def __init__(
        self,
        status: int,
        error: str,
        method: str,
        path: str,
        hint: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(status, error, method, path, hint)

    def __reduce__(self) -> tuple[Any, ...]:
        args = (self.status, self.error, self.method, self.path, self.hint, self.retry_after)
        return (type(self), args)


class ServerError(APIError):
    """5xx. 500 is never retried (the server did decide); 502/503/504 are, up to the policy."""


class UnexpectedAnswerError(APIError):
    """The status looked fine but the body is not the JSON the contract describes (or a 3xx)."""


class TransportError(WFDLQError):
    """No answer: network error or timeout. The httpx exception is kept as ``__cause__``."""

    def __init__(self, message: str, method: str, path: str) -> None:
        self.method = method
        self.path = path
        super().__init__(f"{method} {path} failed: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self).split(" failed: ", 1)[-1], self.method, self.path))


class OutcomeUnknownError(WFDLQError):
    """An ACTION call (resume, restart, delete, callback retry/cancel) got no clear outcome.

    The request may have reached the server (network error after sending, read timeout,
    502, 504, a dropped connection): the server may or may not have acted, and the client
    did NOT send it again, because acting twice (resuming a checkout twice) is worse than
    not knowing. ``dlq_ids`` are the ids the call named (empty for a call by filters).
    Look at the DLQ and the run logs before acting on these entries again.
    """

    def __init__(
        self, method: str, path: str, dlq_ids: tuple[str, ...] = (), detail: str = ""
    ) -> None:
        self.method = method
        self.path = path
        self.dlq_ids = tuple(dlq_ids)
        self.detail = detail
        named = (
            f"DLQ entries {', '.join(self.dlq_ids)}"
            if len(self.dlq_ids) <= 10
            else f"{len(self.dlq_ids)} DLQ entries ({', '.join(self.dlq_ids[:10])}, ...)"
        )
        target = named if self.dlq_ids else "the entries its filters select"
        super().__init__(
            f"{method} {path}: outcome unknown ({detail or 'no answer'}); the server may or may "
            f"not have acted on {target}, and nothing was re-sent; check the DLQ and the run "
            "logs before acting on them again"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.method, self.path, self.dlq_ids, self.detail))


def redact(text: str, secret: str) -> str:
    """Remove ``secret`` from server-provided text before it goes into an exception or log.

    Case-insensitive: a server or proxy that echoes the token upper- or lower-cased still
    leaks it.
    """
    if not secret:
        return text
    return re.sub(re.escape(secret), "***", text, flags=re.IGNORECASE)

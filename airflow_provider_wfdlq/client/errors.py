"""Exceptions of the client.

Every exception is built from values that never include the token, and every text that
comes from the server is passed through :func:`redact` by the code that raises it.
"""

from __future__ import annotations

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


class AnswerLostError(NotFoundError):
    """A retried single-entry call answered 404 after an earlier attempt's answer was lost.

    The earlier attempt (network error after sending, or 502/503/504) most likely did act on
    the entry, which then left the DLQ; the new workflow run id it issued is unknown.
    """

    def __init__(
        self, status: int, error: str, method: str, path: str, hint: str = "", dlq_id: str = ""
    ) -> None:
        self.dlq_id = dlq_id
        super().__init__(status, error, method, path, hint)

    def __reduce__(self) -> tuple[Any, ...]:
        args = (self.status, self.error, self.method, self.path, self.hint, self.dlq_id)
        return (type(self), args)


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


def redact(text: str, secret: str) -> str:
    """Remove ``secret`` from server-provided text before it goes into an exception or log."""
    return text.replace(secret, "***") if secret else text

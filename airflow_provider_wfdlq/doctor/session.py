"""The doctor's connection to one account: the client, a raw client, and every answer seen.

The client is the project's own (one attempt per read is enough here, a 429 is waited
out). Both it and the raw client go through a :class:`RecordingTransport` that notes every
answer's status and rate-limit headers, so a header the client does not surface can still
be looked at. The raw client sends the one call the client refuses on purpose (11 runs in
one run-logs call), with the same token and URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

from airflow_provider_wfdlq.client import RetryPolicy, WorkflowDLQClient
from airflow_provider_wfdlq.client._wire import check_base_url
from airflow_provider_wfdlq.client.errors import redact


@dataclass(frozen=True)
class Seen:
    """One HTTP answer as the transport saw it: no body, no request headers."""

    method: str
    path: str
    status: int
    rate_headers: tuple[tuple[str, str], ...]


def _rate_headers(headers: httpx.Headers) -> tuple[tuple[str, str], ...]:
    return tuple(
        (name, value)
        for name, value in headers.items()
        if "ratelimit" in name.lower() or name.lower() == "retry-after"
    )


class RecordingTransport(httpx.BaseTransport):
    """Passes every request on and notes the answer's status and rate-limit headers."""

    def __init__(
        self, seen: list[Seen] | None = None, inner: httpx.BaseTransport | None = None
    ) -> None:
        self.seen: list[Seen] = [] if seen is None else seen
        self.inner = inner if inner is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.seen.append(
            Seen(
                request.method,
                request.url.path,
                response.status_code,
                _rate_headers(response.headers),
            )
        )
        return response

    def close(self) -> None:
        self.inner.close()


class Session:
    """The client and the raw client of one account, recording into one ``seen`` list.

    A context manager: closes both clients' connections.
    """

    def __init__(
        self,
        token: str,
        base_url: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        allow_insecure_http: bool = False,
        auth_hint: str | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.token = token
        self.seen: list[Seen] = []
        self.client = WorkflowDLQClient(
            token,
            self.base_url,
            timeout=timeout,
            retry=retry or RetryPolicy(max_attempts=3, max_rate_limit_wait=10.0),
            transport=RecordingTransport(self.seen),
            allow_insecure_http=allow_insecure_http,
            auth_hint=auth_hint,
        )
        self.raw = httpx.Client(
            transport=RecordingTransport(self.seen), timeout=timeout, follow_redirects=False
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()
        self.raw.close()

    def redact(self, text: str) -> str:
        """``text`` with the token taken out."""
        return redact(text, self.token)

    def text(self, exc: BaseException) -> str:
        """An error's message, fit to show: the token taken out."""
        return self.redact(str(exc))

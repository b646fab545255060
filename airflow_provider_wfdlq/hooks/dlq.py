"""WorkflowDLQHook: turns an Airflow ``qstash`` connection into workflow-DLQ clients.

The hook is deliberately thin. Every DLQ call (list, get, resume, restart, their bulk
forms, failure-callback retry and cancel, delete, run logs) lives on the Airflow-free
clients in :mod:`airflow_provider_wfdlq.client`; the hook only reads the connection,
registers the token with the secret masker and hands out a sync client (one connection
pool per hook) or an async one for triggers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_provider_wfdlq.client import (
    DEFAULT_BASE_URL,
    AsyncWorkflowDLQClient,
    RetryPolicy,
    ValidationError,
    WFDLQError,
    WorkflowDLQClient,
)
from airflow_provider_wfdlq.client._wire import (
    check_base_url,
    check_token,
    check_transport_security,
)
from airflow_provider_wfdlq.client.validation import check_bool
from airflow_provider_wfdlq.connection_form import (
    CONN_TYPE,
    DEFAULT_CONN_NAME,
    EXTRA_DEFAULTS,
    HOOK_NAME,
    UI_FIELD_BEHAVIOUR,
)
from airflow_provider_wfdlq.recovery.retention import parse_retention_days

try:  # Airflow 3.1 keeps it in the execution-time module only.
    from airflow.sdk.log import mask_secret
except ImportError:  # pragma: no cover - depends on the Airflow version
    from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]


@dataclass(frozen=True, repr=False)
class ClientSettings:
    """What a client needs, read from a connection. ``repr`` never shows the token."""

    token: str
    base_url: str
    timeout: float
    retry: RetryPolicy
    #: The plan's DLQ retention as configured (``"3d"``, ``7``...), or None if not set.
    retention: str | float | None = None
    #: Extra ``allow_insecure_http``: send the token over plain http to a non-loopback host.
    allow_insecure_http: bool = False
    #: The connection these settings came from (named in authentication errors).
    conn_id: str | None = None

    def __repr__(self) -> str:
        return f"ClientSettings(base_url={self.base_url!r}, timeout={self.timeout!r}, token=***)"

    @property
    def auth_hint(self) -> str:
        """What a 401/403 should tell the user to check."""
        where = f"the Airflow connection {self.conn_id!r}" if self.conn_id else "the connection"
        return (
            f"check {where} (host {self.base_url}): the QStash token (QSTASH_TOKEN) belongs in "
            "its password field, and a regional token needs its region's URL as host (e.g. "
            "https://qstash-eu-central-1.upstash.io or https://qstash-us-east-1.upstash.io)"
        )

    def client_args(self) -> dict[str, Any]:
        """Keyword arguments shared by the sync and async clients."""
        return {
            "timeout": self.timeout,
            "retry": self.retry,
            "allow_insecure_http": self.allow_insecure_http,
            "auth_hint": self.auth_hint,
        }


def base_url_from(host: str | None, schema: str | None = None, port: int | None = None) -> str:
    """The API base URL from a connection's host, which may be a bare host or a full URL."""
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        scheme = schema if schema in ("http", "https") else "https"
        host = f"{scheme}://{host}"
    parts = urlsplit(host)
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def _number_extra(extra: Mapping[str, Any], name: str, kind: type[int] | type[float]) -> Any:
    value = extra.get(name, EXTRA_DEFAULTS[name])
    if value in (None, ""):
        value = EXTRA_DEFAULTS[name]
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or number <= 0:
        raise ValidationError(
            f"extra.{name}",
            value,
            f"a positive {'integer' if kind is int else 'number'}",
        )
    return number


def settings_from_connection(
    *,
    password: str | None,
    host: str | None,
    schema: str | None,
    port: int | None,
    extra: Mapping[str, Any],
    conn_id: str | None = None,
) -> ClientSettings:
    """Validate a connection's fields and extras into client settings, naming any bad field.

    The token is checked here (no whitespace, no control character; the message never shows
    it), and so is the transport: plain http to a non-loopback host (also via ``schema``
    ``http``) is refused unless the extra ``allow_insecure_http`` is true.
    """
    where = f" of connection {conn_id!r}" if conn_id else ""
    if not password:
        raise ValidationError(
            f"password{where}", "", "the QStash token (QSTASH_TOKEN) in the password field"
        )
    token = check_token(password, f"password{where}")
    base_url = base_url_from(host, schema, port)
    allow_insecure_http = _bool_extra(extra, "allow_insecure_http")
    check_transport_security(check_base_url(base_url), allow_insecure_http)
    return ClientSettings(
        token=token,
        base_url=base_url,
        timeout=_number_extra(extra, "timeout", float),
        retry=RetryPolicy(
            max_attempts=_number_extra(extra, "max_attempts", int),
            backoff_max=_number_extra(extra, "backoff_max", float),
            max_rate_limit_wait=_number_extra(extra, "max_rate_limit_wait", float),
        ),
        retention=_retention_extra(extra),
        allow_insecure_http=allow_insecure_http,
        conn_id=conn_id,
    )


def _bool_extra(extra: Mapping[str, Any], name: str) -> bool:
    value = extra.get(name)
    if value in (None, ""):
        return False
    return check_bool(value, f"extra.{name}")


def _retention_extra(extra: Mapping[str, Any]) -> str | float | None:
    value = extra.get("retention")
    if value in (None, ""):
        return None
    parse_retention_days(value, "extra.retention")
    return value if isinstance(value, str) else float(value)


class WorkflowDLQHook(BaseHook):
    """
    Interact with the Upstash Workflow dead-letter queue.

    The token is the connection's password, the base URL its host (default
    ``https://qstash.upstash.io``; use the regional URL for a regional token, or the local
    dev server's URL in tests). Extras: ``timeout``, ``max_attempts``, ``backoff_max`` and
    ``max_rate_limit_wait``, ``retention`` (the plan's DLQ retention: ``3d``, ``7d``
    or days), which makes redrives report entries that expire before the next run, and
    ``allow_insecure_http`` (send the token over plain http to a non-loopback host; refused
    otherwise). A 401/403 (:class:`AuthError`) names this connection and its host.

    :param qstash_conn_id: The ``qstash`` connection to use.
    """

    conn_name_attr = "qstash_conn_id"
    default_conn_name = DEFAULT_CONN_NAME
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME

    def __init__(self, qstash_conn_id: str = DEFAULT_CONN_NAME, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.qstash_conn_id = qstash_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Airflow 3.1 asks the hook; 3.2+ reads the same data from the provider metadata."""
        return {key: value.copy() for key, value in UI_FIELD_BEHAVIOUR.items()}

    def _settings(self, conn: Any) -> ClientSettings:
        if conn.password:
            mask_secret(conn.password)  # before any check can put it in a message
        settings = settings_from_connection(
            password=conn.password,
            host=conn.host,
            schema=conn.schema,
            port=conn.port,
            extra=conn.extra_dejson,
            conn_id=getattr(conn, "conn_id", None) or self.qstash_conn_id,
        )
        mask_secret(settings.token)
        return settings

    @cached_property
    def settings(self) -> ClientSettings:
        """Client settings from the connection, read once per hook."""
        return self._settings(self.get_connection(self.qstash_conn_id))

    @cached_property
    def client(self) -> WorkflowDLQClient:
        """The sync client; one connection pool for the life of the hook."""
        s = self.settings
        return WorkflowDLQClient(s.token, s.base_url, **s.client_args())

    def get_conn(self) -> WorkflowDLQClient:
        """The sync client (Airflow's usual name for it)."""
        return self.client

    async def get_async_conn(self) -> AsyncWorkflowDLQClient:
        """
        A new async client for a trigger; the caller closes it (``async with``).

        The connection is read the async way, so a trigger never blocks the event loop.
        """
        s = self._settings(await self._aget_connection())
        return AsyncWorkflowDLQClient(s.token, s.base_url, **s.client_args())

    async def _aget_connection(self) -> Any:
        try:
            return await self.aget_connection(self.qstash_conn_id)
        except ImportError:  # pragma: no cover - Airflow 3.1 only
            pass
        # Airflow 3.1's async lookup imports the supervisor channel before it asks the secrets
        # backends, so outside a task or triggerer process (a trigger's unit test, say) it
        # fails even for an AIRFLOW_CONN_* connection. The sync lookup asks the backends
        # first; run it off the event loop.
        try:  # pragma: no cover - Airflow 3.1 only
            return await asyncio.to_thread(self.get_connection, self.qstash_conn_id)
        except ImportError:  # pragma: no cover - no backend has it, no supervisor to ask
            from airflow.exceptions import AirflowNotFoundException  # type: ignore[attr-defined]

            raise AirflowNotFoundException(
                f"The conn_id `{self.qstash_conn_id}` isn't defined"  # as newer Airflow says
            ) from None

    def close(self) -> None:
        """Close the sync client's pool, if one was opened."""
        if "client" in self.__dict__:
            self.__dict__.pop("client").close()

    def test_connection(self) -> tuple[bool, str]:
        """The read-only checks of ``wfdlq-doctor`` on one list page, summarised.

        Not ok when the token is refused, the server cannot be reached, or something the
        redrive engine relies on differs. Cursors and the resume probes need the CLI.
        """
        from airflow_provider_wfdlq.doctor.checks import Doctor

        try:
            s = self.settings
            # A connection test must not retry for a minute: one attempt answers quickly.
            with Doctor(
                s.token,
                s.base_url,
                timeout=min(s.timeout, 10.0),
                retry=RetryPolicy(max_attempts=1),
                allow_insecure_http=s.allow_insecure_http,
                auth_hint=s.auth_hint,
            ) as doctor:
                report = doctor.read_only(pages=1)
        except WFDLQError as exc:
            return False, str(exc)
        token = report.get("token")
        if not report.connected and token is not None:
            return False, f"{token.seen}. {token.fix}"
        summary = f"Connected to the workflow DLQ at {s.base_url}: {report.summary()}"
        return report.exit_code == 0, f"{summary}. More checks and probes: wfdlq-doctor"

    def _fresh_client(self) -> WorkflowDLQClient:
        # A connection test must not retry for a minute: one attempt answers the UI quickly.
        s = self.settings
        args = {**s.client_args(), "timeout": min(s.timeout, 10.0)}
        return WorkflowDLQClient(
            s.token, s.base_url, **{**args, "retry": RetryPolicy(max_attempts=1)}
        )

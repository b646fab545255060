"""WorkflowDLQHook over the dev server: connections, clients, connection test, secrets."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from airflow_provider_wfdlq.client import ValidationError
from airflow_provider_wfdlq.connection_form import UI_FIELD_BEHAVIOUR
from airflow_provider_wfdlq.hooks.dlq import (
    WorkflowDLQHook,
    base_url_from,
    settings_from_connection,
)


def set_connection(monkeypatch: pytest.MonkeyPatch, **fields: Any) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_QSTASH_TEST", json.dumps({"conn_type": "qstash", **fields}))
    return "qstash_test"


def test_sync_client_talks_to_the_connection(wfdlq_devserver: Any, wfdlq_connection: str) -> None:
    hook = WorkflowDLQHook(wfdlq_connection)
    page = hook.get_conn().list_messages(count=5)
    assert len(page.messages) == 5
    assert hook.get_conn() is hook.client  # one pool per hook
    hook.close()
    request = wfdlq_devserver.control.requests()[-1]
    assert request["path"] == "/v2/workflows/dlq"
    assert request["headers"]["user-agent"].startswith("airflow-provider-wfdlq/")


async def test_async_client_reads_the_connection_the_async_way(
    wfdlq_devserver: Any, wfdlq_connection: str
) -> None:
    hook = WorkflowDLQHook(wfdlq_connection)
    async with await hook.get_async_conn() as client:
        page = await client.list_messages(count=2)
    assert len(page.messages) == 2


def test_connection_test_succeeds_and_fails_readably(
    wfdlq_devserver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = set_connection(monkeypatch, host=wfdlq_devserver.url, password=wfdlq_devserver.token)
    ok, message = WorkflowDLQHook(good).test_connection()
    assert ok, message
    assert wfdlq_devserver.url in message

    bad = set_connection(monkeypatch, host=wfdlq_devserver.url, password="wrong-token-123456")
    ok, message = WorkflowDLQHook(bad).test_connection()
    assert not ok
    assert "401" in message
    assert "wrong-token-123456" not in message


def test_connection_test_names_an_unreachable_server(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = set_connection(monkeypatch, host="http://127.0.0.1:9", password="secret-token-abcdef")
    ok, message = WorkflowDLQHook(conn).test_connection()
    assert not ok
    assert "secret-token-abcdef" not in message


def test_the_token_is_registered_with_the_secret_masker(
    wfdlq_devserver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    token = "tok-" + "x" * 24
    conn = set_connection(monkeypatch, host=wfdlq_devserver.url, password=token)
    WorkflowDLQHook(conn).settings  # noqa: B018 - reading the settings registers the token
    assert token not in str(redact(f"the token is {token}"))


def test_settings_never_show_the_token() -> None:
    settings = settings_from_connection(
        password="abcdefghijkl", host=None, schema=None, port=None, extra={}
    )
    assert "abcdefghijkl" not in repr(settings)
    assert settings.base_url == "https://qstash.upstash.io"


@pytest.mark.parametrize(
    ("host", "schema", "port", "expected"),
    [
        (None, None, None, "https://qstash.upstash.io"),
        ("qstash-us-east-1.upstash.io", None, None, "https://qstash-us-east-1.upstash.io"),
        ("127.0.0.1", "http", 8080, "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", None, None, "http://127.0.0.1:8080"),
        ("http://127.0.0.1", None, 8080, "http://127.0.0.1:8080"),
    ],
)
def test_base_url_from_the_connection(
    host: str | None, schema: str | None, port: int | None, expected: str
) -> None:
    assert base_url_from(host, schema, port) == expected


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"timeout": "soon"}, "extra.timeout"),
        ({"timeout": -1}, "extra.timeout"),
        ({"max_attempts": 0}, "extra.max_attempts"),
        ({"max_attempts": True}, "extra.max_attempts"),
        ({"backoff_max": "x"}, "extra.backoff_max"),
        ({"max_rate_limit_wait": 0}, "extra.max_rate_limit_wait"),
    ],
)
def test_bad_extras_name_the_field(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        settings_from_connection(password="t" * 10, host=None, schema=None, port=None, extra=extra)
    assert field in str(info.value)


def test_a_connection_without_token_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = set_connection(monkeypatch, host="http://127.0.0.1:9")
    with pytest.raises(ValidationError, match="password"):
        WorkflowDLQHook(conn).get_conn()


def test_extras_reach_the_client(wfdlq_devserver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = set_connection(
        monkeypatch,
        host=wfdlq_devserver.url,
        password=wfdlq_devserver.token,
        extra={"max_attempts": 1, "timeout": 5},
    )
    wfdlq_devserver.control.add_fault("503", times=1)
    from airflow_provider_wfdlq.client import ServerError

    with WorkflowDLQHook(conn).get_conn() as client, pytest.raises(ServerError):
        client.list_messages(count=1)  # one attempt: the 503 is not retried


def test_no_token_in_logs(
    wfdlq_devserver: Any, wfdlq_connection: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wfdlq_devserver.control.add_fault("503", times=2)
    with WorkflowDLQHook(wfdlq_connection).get_conn() as client:
        client.list_messages(count=1)
    assert "retry" in caplog.text.lower() or "503" in caplog.text
    assert wfdlq_devserver.token not in caplog.text


def test_ui_behaviour_is_the_same_on_every_airflow() -> None:
    from airflow_provider_wfdlq.get_provider_info import get_provider_info

    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["ui-field-behaviour"]["hidden-fields"] == UI_FIELD_BEHAVIOUR["hidden_fields"]
    assert WorkflowDLQHook.get_ui_field_behaviour() == UI_FIELD_BEHAVIOUR
    assert "password" not in UI_FIELD_BEHAVIOUR["hidden_fields"]


# --- hardening: transport security, tokens, authentication errors ------------------------------


@pytest.mark.parametrize(
    ("host", "schema"), [("dlq.example", "http"), ("http://dlq.example:8080", None)]
)
def test_plain_http_to_a_remote_host_is_refused(host: str, schema: str | None) -> None:
    with pytest.raises(ValidationError) as caught:
        settings_from_connection(
            password="t" * 10, host=host, schema=schema, port=None, extra={}, conn_id="c"
        )
    assert caught.value.field == "base_url"
    assert "dlq.example" in str(caught.value)
    assert "allow_insecure_http" in str(caught.value)


@pytest.mark.parametrize("flag", [True, "true", "True"])
def test_the_insecure_opt_in_is_an_extra_and_is_loud(
    flag: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        settings = settings_from_connection(
            password="t" * 10,
            host="dlq.example",
            schema="http",
            port=None,
            extra={"allow_insecure_http": flag},
        )
    assert settings.allow_insecure_http is True
    assert settings.client_args()["allow_insecure_http"] is True
    assert "INSECURE" in caplog.text


def test_the_insecure_opt_in_must_be_a_bool() -> None:
    with pytest.raises(ValidationError, match=r"extra\.allow_insecure_http"):
        settings_from_connection(
            password="t" * 10,
            host="dlq.example",
            schema="http",
            port=None,
            extra={"allow_insecure_http": "please"},
        )


@pytest.mark.parametrize("password", ["tok\x1b[2Jen-123456", "token-123456\n", "tok en-123456"])
def test_a_token_that_would_leak_is_refused_when_the_connection_is_read(
    monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    conn = set_connection(monkeypatch, host="http://127.0.0.1:9", password=password)
    with pytest.raises(ValidationError) as caught:
        WorkflowDLQHook(conn).get_conn()
    message = str(caught.value)
    assert "password of connection 'qstash_test'" in message
    assert password not in message
    assert "123456" not in message


def test_auth_errors_name_the_connection_and_what_to_check(
    wfdlq_devserver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_wfdlq.client import AuthError

    conn = set_connection(monkeypatch, host=wfdlq_devserver.url, password="wrong-token-123456")
    with WorkflowDLQHook(conn).get_conn() as client, pytest.raises(AuthError) as caught:
        client.list_messages(count=1)
    message = str(caught.value)
    assert "'qstash_test'" in message
    assert wfdlq_devserver.url in message
    assert "password field" in message
    assert "region" in message
    assert "wrong-token-123456" not in message


async def test_the_async_client_gets_the_same_auth_hint(
    wfdlq_devserver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_wfdlq.client import AuthError

    conn = set_connection(monkeypatch, host=wfdlq_devserver.url, password="wrong-token-123456")
    async with await WorkflowDLQHook(conn).get_async_conn() as client:
        with pytest.raises(AuthError, match="'qstash_test'"):
            await client.list_messages(count=1)

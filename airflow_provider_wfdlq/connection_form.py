"""The ``qstash`` connection: how its fields are stored and how the UI shows them.

One source for both the provider metadata (Airflow 3.2+ reads it without importing the
hook) and the hook's own ``get_ui_field_behaviour`` (Airflow 3.1 asks the hook). It must not
import Airflow: ``get_provider_info`` imports it while Airflow discovers providers.
"""

from __future__ import annotations

from typing import Any

CONN_TYPE = "qstash"
DEFAULT_CONN_NAME = "qstash_default"
HOOK_NAME = "Upstash QStash (Workflow DLQ)"

#: Extras the hook reads, with their defaults; documented in the README.
EXTRA_DEFAULTS: dict[str, Any] = {
    "timeout": 30.0,
    "max_attempts": 5,
    "backoff_max": 30.0,
    "max_rate_limit_wait": 60.0,
    "retention": None,
    "allow_insecure_http": False,
}

CONN_FIELDS: dict[str, dict[str, Any]] = {
    "timeout": {
        "label": "Request timeout (seconds)",
        "description": "Per request; retries come on top.",
        "schema": {"type": ["number", "null"], "default": EXTRA_DEFAULTS["timeout"]},
    },
    "max_attempts": {
        "label": "Attempts per call",
        "description": "Reads: tries on 429, 502/503/504 and network errors, the first "
        "included. Actions (resume, restart, delete) are sent again only after a 429, a 503 "
        "or a connection never made: never twice.",
        "schema": {"type": ["integer", "null"], "default": EXTRA_DEFAULTS["max_attempts"]},
    },
    "backoff_max": {
        "label": "Longest backoff (seconds)",
        "schema": {"type": ["number", "null"], "default": EXTRA_DEFAULTS["backoff_max"]},
    },
    "max_rate_limit_wait": {
        "label": "Longest wait on a 429 (seconds)",
        "schema": {"type": ["number", "null"], "default": EXTRA_DEFAULTS["max_rate_limit_wait"]},
    },
    "retention": {
        "label": "DLQ retention of the plan",
        "description": "'3d' (free), '7d' (pay as you go) or days; redrives then report "
        "entries that would expire before the next run.",
        "schema": {"type": ["string", "null"], "default": EXTRA_DEFAULTS["retention"]},
    },
    "allow_insecure_http": {
        "label": "Allow plain http to a remote host",
        "description": "Sends the token unencrypted: only behind a proxy you trust. Loopback "
        "(the dev server) never needs it.",
        "schema": {"type": ["boolean", "null"], "default": EXTRA_DEFAULTS["allow_insecure_http"]},
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port", "login", "extra"],
    "relabeling": {"host": "QStash URL", "password": "QStash token"},
    "placeholders": {
        "host": "https://qstash.upstash.io",
        "password": "QSTASH_TOKEN from the Upstash console",
    },
}


def provider_connection_type() -> dict[str, Any]:
    """The ``connection-types`` entry of the provider metadata."""
    return {
        "connection-type": CONN_TYPE,
        "hook-class-name": "airflow_provider_wfdlq.hooks.dlq.WorkflowDLQHook",
        "hook-name": HOOK_NAME,
        "conn-fields": CONN_FIELDS,
        "ui-field-behaviour": {
            "hidden-fields": UI_FIELD_BEHAVIOUR["hidden_fields"],
            "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
            "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
        },
    }

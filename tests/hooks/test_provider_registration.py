"""The provider as Airflow sees it after installation: the CLI lists it and its connection type."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def airflow(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_providers_list_shows_the_provider(airflow_db: Path) -> None:
    out = airflow("providers", "list", "--output", "plain")
    assert "airflow-provider-wfdlq" in out


def test_connection_type_appears_with_its_hook(airflow_db: Path) -> None:
    out = airflow("providers", "hooks", "--output", "plain")
    line = next(line for line in out.splitlines() if line.split()[:1] == ["qstash"])
    assert "airflow_provider_wfdlq.hooks.dlq.WorkflowDLQHook" in line


def test_connections_add_takes_the_qstash_type(airflow_db: Path) -> None:
    token = "cli-token-0123456789"
    airflow(
        "connections",
        "add",
        "qstash_cli",
        "--conn-type",
        "qstash",
        "--conn-host",
        "https://qstash-us-east-1.upstash.io",
        "--conn-password",
        token,
    )
    out = airflow("connections", "get", "qstash_cli", "--output", "json")
    assert '"conn_type": "qstash"' in out


@pytest.mark.parametrize(
    "module", ["airflow_provider_wfdlq.client", "airflow_provider_wfdlq.recovery"]
)
def test_the_client_layer_does_not_import_airflow(module: str) -> None:
    code = f"import sys, {module}; sys.exit(1 if 'airflow' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

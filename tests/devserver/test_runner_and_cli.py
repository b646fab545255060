"""DevServer lifecycle, the console script, and the pytest fixtures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from airflow_provider_wfdlq.devserver import DEV_TOKEN, DevServer

SCRIPT = Path(sys.executable).with_name("wfdlq-devserver")


def test_dev_server_starts_fast_and_stops_cleanly() -> None:
    started = time.perf_counter()
    server = DevServer(entries=5, token="t0k", page_cap=2, seed=1)
    with server:
        assert time.perf_counter() - started < 1.0
        response = httpx.get(
            f"{server.url}/v2/workflows/dlq", headers={"Authorization": "Bearer t0k"}
        )
        assert len(response.json()["messages"]) == 5
        assert server.control.config()["page_cap"] == 2
        url = server.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=1)
    with pytest.raises(RuntimeError):
        _ = server.url


def test_startup_faults_come_back_after_reset() -> None:
    with DevServer(entries=1, faults=["503:times=1:path=/v2/workflows/logs"]) as server:
        assert len(server.control.faults()) == 1
        server.control.clear_faults()
        server.control.reset()
        assert len(server.control.faults()) == 1


def test_cli_help() -> None:
    result = subprocess.run(
        [str(SCRIPT), "--help"], capture_output=True, text=True, timeout=20, check=True
    )
    for flag in ["--port", "--token", "--seed", "--random-seed", "--entries", "--page-cap",
                 "--success-ratio", "--run-seconds", "--callback-seconds", "--fault",
                 "--rate-limit-rps", "--latency-ms", "--cursor-ttl-seconds"]:  # fmt: skip
        assert flag in result.stdout


def test_cli_rejects_a_bad_fault_spec() -> None:
    result = subprocess.run(
        [str(SCRIPT), "--fault", "teapot"], capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 2
    assert "unknown fault" in result.stderr


def test_console_script_serves_the_api(unused_port: int) -> None:
    assert shutil.which(str(SCRIPT))
    process = subprocess.Popen(
        [str(SCRIPT), "--port", str(unused_port), "--entries", "12", "--page-cap", "5",
         "--log-level", "warning", "--fault", "503:times=1:path=/v2/workflows/logs"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{unused_port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"{url}/__dev/health", timeout=0.5).raise_for_status()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "console script did not start"
                assert process.poll() is None
                time.sleep(0.05)
        headers = {"Authorization": f"Bearer {DEV_TOKEN}"}
        page = httpx.post(f"{url}/v2/workflows/dlq/resume", headers=headers).json()
        assert len(page["workflowRuns"]) == 5
        assert page["cursor"]
        assert httpx.get(f"{url}/v2/workflows/logs", headers=headers).status_code == 503
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert "wfdlq-devserver on" in output
    assert DEV_TOKEN in output


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_fixture_points_airflow_at_the_dev_server(
    wfdlq_connection: str, wfdlq_devserver: DevServer
) -> None:
    assert wfdlq_connection == "qstash_default"
    conn = json.loads(os.environ["AIRFLOW_CONN_QSTASH_DEFAULT"])
    assert conn == {
        "conn_type": "qstash",
        "host": wfdlq_devserver.url,
        "password": wfdlq_devserver.token,
    }


def test_plugin_does_not_import_airflow_or_the_client() -> None:
    code = (
        "import sys, airflow_provider_wfdlq.devserver.pytest_plugin, "
        "airflow_provider_wfdlq.devserver.cli; "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.') "
        "or m.startswith('airflow_provider_wfdlq.client')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "[]"

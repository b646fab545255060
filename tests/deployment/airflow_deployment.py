"""An Airflow 3 deployment on loopback: the installed package, PostgreSQL, one process each.

``AirflowDeployment`` builds the environment every component shares (a private
AIRFLOW_HOME, LocalExecutor, the PostgreSQL URL, the example DAGs as the only bundle, the
``qstash_default`` connection as an environment variable, SimpleAuthManager with everyone an
admin), runs ``airflow db migrate`` and starts the scheduler, dag-processor, triggerer and
api-server as separate processes. Nothing it starts listens beyond 127.0.0.1: the log
servers are skipped (every component writes the same local log folder the api-server reads).

The test process's own AIRFLOW_* variables (tests/conftest.py's sqlite set-up) are not
passed on: each component sees only this environment.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from tests.deployment.processes import ProcessGroup, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = ROOT / "example_dags"
MARKER = "WFDLQ_DEPLOYMENT_ID"


def airflow_command() -> list[str]:
    """The ``airflow`` CLI of the interpreter running the tests (the installed package)."""
    script = Path(sys.executable).with_name("airflow")
    return [str(script)] if script.exists() else [sys.executable, "-m", "airflow"]


def clean_base_env() -> dict[str, str]:
    """The test process's environment without any Airflow setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}


@dataclass
class AirflowDeployment:
    home: Path
    db_url: str
    connection: dict[str, Any]
    processes: ProcessGroup
    api_port: int = field(default_factory=free_port)
    deployment_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        bundle = [
            {
                "name": "wfdlq_examples",  # "example_dags" is reserved
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(EXAMPLE_DAGS)},
            }
        ]
        env = clean_base_env()
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.update(
            {
                MARKER: self.deployment_id,
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
                "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundle),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt"),
                "AIRFLOW__API__SECRET_KEY": self._secret("api"),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                # Only the runs the test triggers: no scheduled run of the nightly DAG.
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW_CONN_QSTASH_DEFAULT": json.dumps(self.connection),
            }
        )
        return env

    _secrets: dict[str, str] = field(default_factory=dict)

    def _secret(self, name: str) -> str:
        return self._secrets.setdefault(name, secrets.token_urlsafe(32))

    def migrate(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [*airflow_command(), "db", "migrate"],
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        (self.processes.log_dir / "db-migrate.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
            raise RuntimeError(f"airflow db migrate failed ({result.returncode}):\n{tail}")

    def start_components(self, *names: str) -> None:
        commands = {
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer", "--skip-serve-logs"],
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.api_port)],
        }
        env = self.env()
        for name in names:
            self.processes.start(name, [*airflow_command(), *commands[name]], env, cwd=self.home)

    def client(self) -> httpx.Client:
        """REST client; SimpleAuthManager's all-admins mode needs no token."""
        return httpx.Client(base_url=f"{self.api_url}/api/v2", timeout=30)

    def wait_healthy(self, *components: str, timeout: float = 120) -> dict[str, Any]:
        """Until the api-server answers and each named component reports healthy."""

        def healthy() -> dict[str, Any] | None:
            self.processes.check_alive()
            response = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5)
            if response.status_code != 200:
                return None
            health: dict[str, Any] = response.json()
            ok = all(
                (health.get(name.replace("-", "_")) or {}).get("status") == "healthy"
                for name in components
            )
            return health if ok else None

        result: dict[str, Any] = wait_until("Airflow health", healthy, timeout=timeout)
        return result

    def wait_dag(self, dag_id: str, timeout: float = 120) -> dict[str, Any]:
        """Until the dag-processor has parsed ``dag_id`` into the metadata DB."""
        with self.client() as api:

            def parsed() -> dict[str, Any] | None:
                self.processes.check_alive()
                response = api.get(f"/dags/{dag_id}")
                if response.status_code == 200:
                    body: dict[str, Any] = response.json()
                    return body
                errors = api.get("/importErrors").json().get("import_errors", [])
                if errors:
                    raise AssertionError(f"DAG import errors: {errors}")
                return None

            result: dict[str, Any] = wait_until(f"DAG {dag_id} parsed", parsed, timeout=timeout)
            return result


class PhaseTimer:
    """Wall time of each named phase, printed in the terminal summary."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    def record(self, name: str, started: float) -> float:
        took = time.monotonic() - started
        self.phases[name] = self.phases.get(name, 0.0) + took
        return took


def files_containing(root: Path, secret: str) -> list[Path]:
    """Files under ``root`` (logs, task logs, configuration) that contain ``secret``."""
    needle = secret.encode()
    return [path for path in root.rglob("*") if path.is_file() and needle in path.read_bytes()]

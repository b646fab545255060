"""The real deployment the tests in this package share, and the ``deployment`` marker.

One deployment per package run (``scope="package"``): Debian's PostgreSQL and Chromium
installed if missing, a private PostgreSQL cluster, ``airflow db migrate``, then
scheduler, dag-processor and api-server as separate processes (the triggerer is started by
the DAG test, see there), plus the local dev server in-process. Everything is stopped when
the package's last test is done, also after failures, and the teardown fails if any process
of the deployment is still alive. The time of each phase is printed in pytest's summary.

Run only these: ``.venv/bin/pytest -m deployment`` (skip them: ``-m "not deployment"``).
Refresh the README's screenshot: ``WFDLQ_UPDATE_SCREENSHOT=1 .venv/bin/pytest -m deployment``.
A failed test shows the tail of every component's log; all logs stay under pytest's
``deployment0/logs`` tmp dir, the Airflow task logs under ``deployment0/airflow-home/logs``.
"""

from __future__ import annotations

import importlib.util
import os
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_wfdlq.devserver import DevServer
from tests.deployment.airflow_deployment import MARKER, AirflowDeployment, PhaseTimer
from tests.deployment.postgres import Postgres, init_and_start
from tests.deployment.processes import ProcessGroup, kill_pids, processes_marked
from tests.deployment.system_packages import (
    CHROMIUM,
    CHROMIUM_PACKAGE,
    ensure_packages,
    postgres_bin_dir,
)

TIMER = pytest.StashKey[PhaseTimer]()

#: The dev server's world for the deployment: a failure callback takes this long (on its
#: clock, which the DAG test freezes and moves), a resumed run finishes in this long.
CALLBACK_SECONDS = 5.0
RUN_SECONDS = 2.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "deployment: a real Airflow deployment (PostgreSQL, scheduler, dag-processor, "
        "triggerer, api-server) and headless Chromium; installs Debian packages if missing",
    )
    config.stash[TIMER] = PhaseTimer()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    phases = config.stash[TIMER].phases if TIMER in config.stash else {}
    if phases:
        terminalreporter.section("deployment test phases (wall time)")
        for name, seconds in phases.items():
            terminalreporter.write_line(f"{name:<28} {seconds:7.1f} s")
        terminalreporter.write_line(f"{'total':<28} {sum(phases.values()):7.1f} s")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed deployment test shows the end of every component's log."""
    report = yield
    deployment = getattr(item, "funcargs", {}).get("deployment")
    if report.failed and isinstance(deployment, Deployment):
        report.sections.append(("deployment logs (tails)", deployment.processes.tails()))
    return report


@dataclass
class Deployment:
    airflow: AirflowDeployment
    devserver: DevServer
    processes: ProcessGroup
    timer: PhaseTimer
    work: Path
    chromium_missing: str | None  # why the browser test must skip, if it must

    def phase(self, name: str) -> _Phase:
        return _Phase(self.timer, name)


class _Phase:
    def __init__(self, timer: PhaseTimer, name: str) -> None:
        self.timer, self.name = timer, name

    def __enter__(self) -> None:
        self.started = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        took = self.timer.record(self.name, self.started)
        print(f"[deployment] {self.name}: {took:.1f} s", flush=True)


@pytest.fixture(scope="package")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Generator[Deployment, None, None]:
    timer = pytestconfig.stash[TIMER]
    with _Phase(timer, "apt install (if missing)"):
        cannot_install = ensure_packages()
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip(f"PostgreSQL for the metadata DB: {cannot_install}")
    if importlib.util.find_spec("asyncpg") is None:
        pytest.fail("asyncpg is not installed: Airflow on PostgreSQL needs it (async engine)")
    chromium_missing = None if CHROMIUM_PACKAGE.present() else f"{CHROMIUM}: {cannot_install}"

    work = tmp_path_factory.mktemp("deployment")
    deployment_id = uuid.uuid4().hex
    processes = ProcessGroup(work / "logs")
    devserver = DevServer(
        entries=0,
        success_ratio=1.0,  # resumed runs succeed: the DAG's later tasks have nothing to chase
        run_seconds=RUN_SECONDS,
        callback_seconds=CALLBACK_SECONDS,
        page_cap=50,
    )
    postgres: Postgres | None = None
    setup_done = False
    try:
        devserver.start()
        with _Phase(timer, "postgres initdb + start"):
            postgres = init_and_start(bin_dir, processes, {MARKER: deployment_id})
        airflow = AirflowDeployment(
            home=work / "airflow-home",
            db_url=postgres.url,
            connection={"conn_type": "qstash", "host": devserver.url, "password": devserver.token},
            processes=processes,
            deployment_id=deployment_id,
        )
        with _Phase(timer, "airflow db migrate"):
            airflow.migrate()
        with _Phase(timer, "start-up (3 components)"):
            airflow.start_components("scheduler", "dag-processor", "api-server")
            airflow.wait_healthy("scheduler", "dag-processor")
            airflow.wait_dag("nightly_dlq_recovery")
        setup_done = True
        yield Deployment(airflow, devserver, processes, timer, work, chromium_missing)
    except Exception as exc:
        if not setup_done:
            exc.add_note(processes.tails())
        raise
    finally:
        processes.stop_all()
        devserver.stop()
        survivors = processes_marked(MARKER, deployment_id)
        kill_pids([pid for pid, _ in survivors])
        if postgres is not None:
            postgres.cleanup()
        if survivors and setup_done:
            raise AssertionError(f"deployment processes alive after the teardown: {survivors}")


@pytest.fixture
def devserver(deployment: Deployment) -> DevServer:
    """The deployment's dev server, back to an empty DLQ with real-time clock."""
    deployment.devserver.control.reset(entries=0)
    return deployment.devserver


def update_screenshots() -> bool:
    return os.environ.get("WFDLQ_UPDATE_SCREENSHOT") == "1"

"""Test-wide Airflow set-up: a private AIRFLOW_HOME and sqlite DB, made once per session.

Airflow reads its configuration when first imported, so the environment is set here, at
conftest import, before any test module imports Airflow. Tests that need the metadata DB
(``dag.test()``) ask for the ``airflow_db`` fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_HOME = Path(tempfile.mkdtemp(prefix="wfdlq-airflow-home-"))

os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "example_dags")
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {
            "name": name,
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(path)},
        }
        for name, path in (("examples", ROOT / "example_dags"), ("tests", ROOT / "tests" / "dags"))
    ]
)
os.environ.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the session's sqlite metadata DB once (about 5-8 s)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return _HOME

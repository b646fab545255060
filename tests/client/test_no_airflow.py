"""The client layer never imports Airflow, so it works outside an Airflow install."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

AIRFLOW_IMPORT = re.compile(r"^\s*(import|from)\s+airflow(\.|\s|$)")
CLIENT_DIR = Path(__file__).resolve().parents[2] / "airflow_provider_wfdlq" / "client"


def test_importing_the_client_leaves_airflow_out() -> None:
    probe = (
        "import sys, airflow_provider_wfdlq.client\n"
        "leaked = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "print(','.join(leaked))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


def test_no_client_module_mentions_an_airflow_import() -> None:
    for path in CLIENT_DIR.rglob("*.py"):
        for line in path.read_text().splitlines():
            assert not AIRFLOW_IMPORT.match(line), f"{path.name}: {line}"

"""Helpers of the packaging tests (their fixtures are in conftest.py)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Dists:
    wheel: Path
    sdist: Path


def run(*cmd: str | Path, timeout: float = 300, **kwargs: Any) -> str:
    done = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
        **kwargs,
    )
    out: str = done.stdout
    assert done.returncode == 0, f"{cmd}\n{out[-3000:]}\n{done.stderr[-3000:]}"
    return out


def uv() -> str:
    from uv import find_uv_bin  # the Makefile installs uv into .venv

    path: str = find_uv_bin()
    return path


def clean_env(venv: Path, home: Path) -> dict[str, str]:
    """The user's environment, without this repository or this test session's Airflow setup."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "PYTHON", "PYTEST", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["AIRFLOW_HOME"] = str(home)
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    return env

"""The packaging tests' shared fixtures: one build and one clean venv per session.

``test_distribution.py`` and ``test_first_hour.py`` both use them, so the wheel is built
once and installed once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.packaging.helpers import ROOT, Dists, run, uv


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--installer", "uv", "--outdir", out, ROOT)
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return Dists(wheel=wheel, sdist=sdist)


@pytest.fixture(scope="session")
def clean_venv(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the wheel and its dependencies (resolved afresh) plus pytest."""
    venv = tmp_path_factory.mktemp("clean") / "venv"
    run(uv(), "venv", "-q", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    run(
        uv(),
        "pip",
        "install",
        "-q",
        "--python",
        python,
        dists.wheel,
        f"pytest=={pytest.__version__}",
    )
    return venv

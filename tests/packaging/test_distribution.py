"""The distribution as PyPI would get it: wheel and sdist, their metadata, a clean install.

One ``python -m build`` (isolated, hatchling fetched through uv) makes the sdist from the
tree and then the wheel *from the unpacked sdist*, so a wheel at all proves the sdist holds
what a rebuild needs. The wheel then goes into a new venv, resolved on its own metadata
(a full Airflow: about 2 s from uv's cache, which the ``make`` install fills), and is used
there the way a user would: import, provider discovery, the CLI, the pytest plugin.
About 10-15 s in all (the fixtures are in conftest.py, shared with test_first_hour.py); runs
on the newest Airflow only (``make test-lowest`` deselects it).
"""

from __future__ import annotations

import configparser
import sys
import tarfile
import textwrap
import tomllib
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

import airflow_provider_wfdlq
from tests.packaging.helpers import ROOT, Dists, clean_env, run

pytestmark = pytest.mark.packaging

PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT: dict[str, Any] = PYPROJECT["project"]
NAME = PROJECT["name"]
VERSION = airflow_provider_wfdlq.__version__
PACKAGE = "airflow_provider_wfdlq"
DIST_INFO = f"{PACKAGE}-{VERSION}.dist-info"
SDIST_TOP = f"{PACKAGE}-{VERSION}"


def wheel_names(dists: Dists) -> list[str]:
    with zipfile.ZipFile(dists.wheel) as zf:
        return zf.namelist()


def wheel_text(dists: Dists, name: str) -> str:
    with zipfile.ZipFile(dists.wheel) as zf:
        return zf.read(name).decode()


def metadata(dists: Dists) -> Message:
    return Parser().parsestr(wheel_text(dists, f"{DIST_INFO}/METADATA"))


def test_twine_check_strict_passes(dists: Dists) -> None:
    out = run(sys.executable, "-m", "twine", "check", "--strict", dists.wheel, dists.sdist)
    assert out.count("PASSED") == 2, out


def test_wheel_metadata_matches_pyproject(dists: Dists) -> None:
    meta = metadata(dists)
    assert meta["Name"] == NAME
    assert meta["Version"] == VERSION
    assert meta["Requires-Python"] == PROJECT["requires-python"]
    assert meta["Description-Content-Type"] == "text/markdown"
    assert "## Install" in (meta.get_payload() or ""), "the README is the long description"
    requires = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]
    runtime = {str(r) for r in requires if r.marker is None}
    assert runtime == {str(Requirement(r)) for r in PROJECT["dependencies"]}
    assert any(r.name == "apache-airflow" and "3.1" in str(r.specifier) for r in requires)
    assert set(meta.get_all("Classifier") or []) == set(PROJECT["classifiers"])


def test_wheel_entry_points(dists: Dists) -> None:
    entry_points = configparser.ConfigParser(delimiters=("=",))
    entry_points.optionxform = str  # type: ignore[assignment,method-assign]
    entry_points.read_string(wheel_text(dists, f"{DIST_INFO}/entry_points.txt"))
    found = {section: dict(entry_points[section]) for section in entry_points.sections()}
    assert found == {
        "apache_airflow_provider": {
            "provider_info": f"{PACKAGE}.get_provider_info:get_provider_info"
        },
        "pytest11": {"wfdlq": f"{PACKAGE}.devserver.pytest_plugin"},
        "console_scripts": {
            "wfdlq-devserver": f"{PACKAGE}.devserver.cli:main",
            "wfdlq-doctor": f"{PACKAGE}.doctor.cli:main",
        },
    }


def test_wheel_carries_the_package_and_nothing_else(dists: Dists) -> None:
    """The whole package with py.typed, plus the nightly example DAG under
    ``airflow_provider_wfdlq/example_dags/`` (where the README tells a pip user to copy it
    from: Airflow never parses site-packages); no tests."""
    names = wheel_names(dists)
    assert {name.split("/")[0] for name in names} == {PACKAGE, DIST_INFO}
    assert f"{PACKAGE}/py.typed" in names
    source = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / PACKAGE).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    shipped = f"{PACKAGE}/example_dags/nightly_dlq_recovery.py"
    assert {name for name in names if name.startswith(f"{PACKAGE}/")} == source | {shipped}
    example = (ROOT / "example_dags" / "nightly_dlq_recovery.py").read_text()
    assert wheel_text(dists, shipped) == example
    assert not any("/tests/" in name or name.startswith("example_dags/") for name in names)


def test_sdist_holds_what_a_rebuild_and_the_tests_need(dists: Dists) -> None:
    with tarfile.open(dists.sdist) as tf:
        names = {name.removeprefix(f"{SDIST_TOP}/") for name in tf.getnames()}
    top = {name.split("/")[0] for name in names}
    expected_top = {PACKAGE, "tests", "example_dags", "README.md", "CHANGELOG.md"}
    assert expected_top | {"pyproject.toml", "PKG-INFO"} <= top
    # Nothing from a local venv, cache or build directory slips in.
    assert top <= expected_top | {"pyproject.toml", "PKG-INFO", ".gitignore", "LICENSE"}
    assert {
        f"{PACKAGE}/py.typed",
        "tests/conftest.py",
        "example_dags/nightly_dlq_recovery.py",
    } <= names


def test_installed_wheel_is_found_by_python_and_airflow(clean_venv: Path, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import importlib.metadata as md
        import airflow_provider_wfdlq

        print("installed at", airflow_provider_wfdlq.__file__)
        group = md.entry_points(group="apache_airflow_provider")
        (ep,) = [ep for ep in group if ep.dist.name == {NAME!r}]
        info = ep.load()()
        assert info["package-name"] == {NAME!r}, info["package-name"]
        assert info["versions"][0] == md.version({NAME!r}) == {VERSION!r}

        from airflow.providers_manager import ProvidersManager

        manager = ProvidersManager()
        assert {NAME!r} in manager.providers, sorted(manager.providers)
        """
    )
    out = run(
        clean_venv / "bin" / "python",
        "-c",
        script,
        cwd=tmp_path,
        env=clean_env(clean_venv, tmp_path),
    )
    (line,) = (line for line in out.splitlines() if line.startswith("installed at "))
    installed = Path(line.removeprefix("installed at ")).resolve()
    assert installed.is_relative_to(clean_venv.resolve()), installed
    assert not installed.is_relative_to(ROOT)


def test_devserver_console_script_runs(clean_venv: Path, tmp_path: Path) -> None:
    out = run(
        clean_venv / "bin" / "wfdlq-devserver",
        "--help",
        cwd=tmp_path,
        env=clean_env(clean_venv, tmp_path),
        timeout=60,
    )
    assert "usage:" in out
    assert "--port" in out


def test_pytest_plugin_gives_a_users_tests_the_dev_server(clean_venv: Path, tmp_path: Path) -> None:
    """The README's "in your own DAG tests" promise, in a project that only installed us."""
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import json, os

            def test_fixtures(wfdlq_devserver, wfdlq_connection):
                entries = wfdlq_devserver.control.seed_entries(count=3)
                assert len(entries) == 3
                conn = json.loads(os.environ["AIRFLOW_CONN_QSTASH_DEFAULT"])
                assert conn["host"] == wfdlq_devserver.url
            """
        )
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    out = run(
        clean_venv / "bin" / "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--trace-config",
        "test_user.py",
        cwd=tmp_path,
        env=clean_env(clean_venv, tmp_path),
        timeout=120,
    )
    assert "wfdlq" in out
    assert f"{PACKAGE}.devserver.pytest_plugin" in out.replace("/", ".")
    assert "1 passed" in out

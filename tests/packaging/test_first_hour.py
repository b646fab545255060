"""A pip user's first hour, from the README's own text: the first DAG and its pytest example.

The README's python blocks that open with a ``# <path>`` comment (``dags/dlq_recovery.py``,
``tests/conftest.py``, ``tests/test_dlq_recovery.py``) are written verbatim into a scratch
folder, next to the nightly example copied out of the installed package with the README's
``cp`` command. Then the clean venv's pytest runs them there: no checkout, no repository
conftest, no environment of this session. So the README and what a user pastes cannot
drift. Reuses the session's wheel and clean venv (conftest.py); about 20 s on top of them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.packaging.helpers import ROOT, clean_env, run

pytestmark = pytest.mark.packaging

README = (ROOT / "README.md").read_text()
#: A python block whose first line names the file it is: ``# dags/dlq_recovery.py``.
FILE_BLOCK = re.compile(r"^```python\n# ([\w./-]+\.py)\n(.*?)^```$", re.M | re.S)
#: The README's command that copies the shipped nightly example into ``dags/``.
COPY_EXAMPLE = re.compile(r"^```bash\n(cp .*nightly_dlq_recovery\.py.* dags/)\n```$", re.M)


def readme_files() -> dict[str, str]:
    files = {path: text for path, text in FILE_BLOCK.findall(README)}
    assert set(files) == {
        "dags/dlq_recovery.py",
        "tests/conftest.py",
        "tests/test_dlq_recovery.py",
    }, sorted(files)
    return files


def test_readme_blocks_are_complete_files() -> None:
    """Each block is the whole file: it imports what it uses (no WINDOW, no preview
    from elsewhere) and compiles."""
    files = readme_files()
    for path, text in files.items():
        compile(text, path, "exec")
    dag = files["dags/dlq_recovery.py"]
    for name in ("WINDOW", "preview", "callbacks_final", "resume", "follow", "morning_report"):
        assert re.search(rf"^\s*{name} = ", dag, re.M), f"{name} is not defined in the DAG"
    assert "CronDataIntervalTimetable" in dag.split("with DAG(")[0], "the timetable import"


def test_readme_dag_and_its_test_pass_in_a_users_project(clean_venv: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    for path, text in readme_files().items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(text)
    env = clean_env(clean_venv, tmp_path / "home")

    (copy,) = COPY_EXAMPLE.findall(README)
    run("bash", "-c", copy, cwd=project, env=env, timeout=60)
    assert (project / "dags" / "nightly_dlq_recovery.py").read_text() == (
        ROOT / "example_dags" / "nightly_dlq_recovery.py"
    ).read_text()

    out = run(
        clean_venv / "bin" / "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests",
        cwd=project,
        env=env,
        timeout=300,
    )
    assert "1 passed" in out, out

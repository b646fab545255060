"""Debian packages the deployment tests need: PostgreSQL (metadata DB) and Chromium (UI test).

``ensure_packages()`` installs what is missing with ``apt-get`` (as on a fresh CI machine,
which runs as root) and does nothing when everything is present. It returns a reason
when the install cannot happen here at all (not root, no apt-get), so the fixture can skip
with that reason; apt-get failing is an error.

Also a script: ``python tests/deployment/system_packages.py`` installs the same packages.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


@dataclass(frozen=True)
class Package:
    name: str  # the Debian package
    also: tuple[str, ...] = ()  # installed with it (recommends we do want)

    def present(self) -> bool:
        if self.name == "postgresql":
            return postgres_bin_dir() is not None
        if self.name == "chromium":
            return CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)
        raise ValueError(self.name)


POSTGRESQL = Package("postgresql")
CHROMIUM_PACKAGE = Package("chromium", also=("fonts-liberation",))  # readable screenshots
ALL = (POSTGRESQL, CHROMIUM_PACKAGE)


def postgres_bin_dir() -> Path | None:
    """Debian's newest PostgreSQL server binaries (``/usr/lib/postgresql/<version>/bin``)."""
    found = [
        Path(p)
        for p in glob.glob("/usr/lib/postgresql/*/bin")
        if (Path(p) / "postgres").is_file() and (Path(p) / "initdb").is_file()
    ]
    if not found:
        return None
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


class InstallFailed(RuntimeError):
    """apt-get was there and allowed, and failed: an error, not a reason to skip."""


def ensure_packages(packages: tuple[Package, ...] = ALL) -> str | None:
    """Install the missing packages.

    Returns None when all are present (installed now or before), or why they cannot be
    installed here at all (no apt-get, not root): the tests skip with that reason. Raises
    :class:`InstallFailed` when apt-get runs and fails.
    """
    missing = [p for p in packages if not p.present()]
    if not missing:
        return None
    names = " ".join(p.name for p in missing)
    if shutil.which("apt-get") is None:
        return f"Debian packages missing ({names}) and there is no apt-get to install them"
    if os.geteuid() != 0:
        return f"Debian packages missing ({names}); installing them needs root"
    update = _run(["apt-get", "update"])
    if update.returncode != 0:
        raise InstallFailed(f"apt-get update failed ({update.returncode}): {_tail(update.stderr)}")
    apt_names = [name for p in missing for name in (p.name, *p.also)]
    install = _run(["apt-get", "install", "-y", "--no-install-recommends", *apt_names])
    if install.returncode != 0:
        raise InstallFailed(
            f"apt-get install {' '.join(apt_names)} failed ({install.returncode}): "
            f"{_tail(install.stderr)}"
        )
    still = [p.name for p in missing if not p.present()]
    if still:
        raise InstallFailed(f"apt-get install succeeded but {' '.join(still)} is still missing")
    return None


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


if __name__ == "__main__":
    problem = ensure_packages()
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(1)
    print("postgresql and chromium are installed")

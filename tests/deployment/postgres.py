"""A private PostgreSQL for the metadata DB: Debian's binaries, own data dir, loopback port.

PostgreSQL refuses to run as root, so initdb and the server run as the ``postgres`` user
(created by Debian's package) in a data directory that user owns. Trust authentication is
enough: the server listens on 127.0.0.1 only and its socket directory is private.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from tests.deployment.processes import ProcessGroup, free_port, wait_until

DB_NAME = "airflow"
DB_USER = "airflow"


@dataclass
class Postgres:
    bin_dir: Path
    root: Path  # owned by the server's user; removed by cleanup()
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _server_user() -> str | None:
    """Who runs the server: ``postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise RuntimeError("running as root, and no postgres user to run the server") from exc
    return "postgres"


def init_and_start(bin_dir: Path, processes: ProcessGroup, marker: dict[str, str]) -> Postgres:
    """initdb a fresh cluster, start it under ``processes`` and create the Airflow database."""
    user = _server_user()
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="wfdlq-pg-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    if user:
        entry = pwd.getpwnam(user)
        for path in (root, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    server = Postgres(bin_dir=bin_dir, root=root, port=free_port())
    subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            DB_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        user=user,
        group=user,
        extra_groups=[] if user else None,
        cwd=root,
    )
    processes.start(
        "postgres",
        [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(server.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={sockets}",
            # A throwaway DB: durability buys nothing here and costs seconds on migrate.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ],
        {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", **marker},
        user=user,
        cwd=root,
        stop_signal=signal.SIGINT,  # "fast" shutdown: ends the backends too
        stop_last=True,  # after the Airflow components that use it
    )

    def create_database() -> bool:
        processes.check_alive()
        conn = psycopg2.connect(
            host="127.0.0.1", port=server.port, user=DB_USER, dbname="postgres", connect_timeout=2
        )
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {DB_NAME}")
        finally:
            conn.close()
        return True

    wait_until("PostgreSQL accepts connections", create_database, timeout=60, interval=0.2)
    return server

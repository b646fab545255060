"""Long-running processes of the deployment: each in its own process group, logged to a file.

``ProcessGroup.stop_all()`` ends every group it started (SIGTERM, then SIGKILL), so a test
that fails half-way leaves nothing behind; ``tails()`` gives the end of every log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


def free_port() -> int:
    """A free TCP port on loopback (nothing here listens beyond 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ProcessDied(RuntimeError):
    """A deployment process exited while it should be running: waiting on is pointless."""


def wait_until(
    what: str, check: Callable[[], Any], *, timeout: float, interval: float = 0.25
) -> Any:
    """Call ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
        except ProcessDied:
            raise
        except Exception as exc:  # not up yet: connection refused and the like
            result, last_error = None, exc
        if result:
            return result
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"{what}: not within {timeout:.0f} s{detail}")
        time.sleep(interval)


@dataclass
class Started:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]
    stop_signal: signal.Signals
    stop_last: bool
    stopped: bool = False


@dataclass
class ProcessGroup:
    """The deployment's processes; every one is a session leader, killed with its children."""

    log_dir: Path
    started: list[Started] = field(default_factory=list)

    def start(
        self,
        name: str,
        command: Sequence[str],
        env: Mapping[str, str],
        *,
        user: str | None = None,
        cwd: Path | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        stop_last: bool = False,
    ) -> Started:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log_file = log_path.open("ab")
        popen = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
        process = Started(name, popen, log_path, log_file, stop_signal, stop_last)
        self.started.append(process)
        return process

    def check_alive(self) -> None:
        """Fail fast, naming the process, when one of them died."""
        for process in self.started:
            code = process.popen.poll()
            if code is not None:
                raise ProcessDied(f"{process.name} exited with {code}; log: {process.log_path}")

    def stop_all(self, grace: float = 10.0) -> None:
        """Stop everything: the Airflow components first, then what they need (the database).

        Each wave gets SIGTERM (or its own stop signal) and ``grace`` seconds; what is left of
        a group after that gets SIGKILL. Safe to call twice.
        """
        running = [p for p in self.started if not p.stopped]
        for wave in ([p for p in running if not p.stop_last], [p for p in running if p.stop_last]):
            for process in wave:
                _signal_group(process.popen, process.stop_signal)
            deadline = time.monotonic() + grace
            for process in wave:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
                # Children of the leader (task runners, api workers) may outlive it.
                _signal_group(process.popen, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):  # unkillable: report it
                    process.popen.wait(timeout=5)
                process.log_file.close()
                process.stopped = True

    def tails(self, lines: int = 40) -> str:
        parts = []
        for process in self.started:
            try:
                text = process.log_path.read_text(errors="replace")
            except OSError as exc:
                text = f"<cannot read: {exc}>"
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"----- {process.name} ({process.log_path}) -----\n{tail}")
        return "\n".join(parts)


def _signal_group(popen: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, sig)


def processes_marked(name: str, value: str) -> list[tuple[int, str]]:
    """Live processes whose environment has ``name=value``: (pid, command line).

    Every process the deployment starts carries the marker, and children inherit it, so
    this finds what survived ``stop_all`` even when it left its process group (PostgreSQL
    backends call setsid()).
    """
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            if needle not in environ.split(b"\0"):
                continue
            stat = (entry / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":  # a zombie is already dead
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        found.append((int(entry.name), cmdline.strip()))
    return found


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)

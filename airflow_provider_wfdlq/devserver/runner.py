"""`DevServer`: the emulator on a real loopback socket, served by uvicorn in a thread.

with DevServer(seed=7, entries=500) as server:
    httpx.get(f"{server.url}/v2/workflows/dlq",
              headers={"Authorization": f"Bearer {server.token}"})
    server.control.advance_time(60)
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import uvicorn

from airflow_provider_wfdlq.devserver.app import DevApp, DroppedConnection
from airflow_provider_wfdlq.devserver.control import reset_state
from airflow_provider_wfdlq.devserver.control_client import DevServerControl
from airflow_provider_wfdlq.devserver.faults import FaultBook, FaultRule, parse_fault_spec
from airflow_provider_wfdlq.devserver.state import DEV_TOKEN, DevState
from airflow_provider_wfdlq.devserver.world import World, WorldConfig

FaultLike = FaultRule | str | dict[str, Any]


class _HideDroppedConnections(logging.Filter):
    """A dropped connection is a requested fault, not an error worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


def hide_dropped_connection_errors() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDroppedConnections) for f in logger.filters):
        logger.addFilter(_HideDroppedConnections())


def build_state(
    *,
    token: str = DEV_TOKEN,
    seed: int = 42,
    entries: int = 150,
    random_seed: bool = False,
    anchor_ms: int | None = None,
    config: WorldConfig | None = None,
    faults: Iterable[FaultLike] = (),
    allowed_hosts: Iterable[str] = (),
) -> DevState:
    world = World(seed=seed, entries=0, anchor_ms=anchor_ms, config=config)
    world.initial_entries = entries
    state = DevState(world=world, faults=FaultBook(seed), token=token)
    state.allowed_hosts.update(host.strip("[]").lower() for host in allowed_hosts if host)
    state.initial_faults = [_fault_rule(fault).to_json() for fault in faults]
    reset_state(state, random_seed=random_seed)
    world.initial_seed = world.seed
    return state


def _fault_rule(fault: FaultLike) -> FaultRule:
    if isinstance(fault, FaultRule):
        return fault
    if isinstance(fault, str):
        return parse_fault_spec(fault)
    return FaultRule.from_json(fault)


class DevServer:
    """In-process dev server; `port=0` picks a free port. Starts in well under a second."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEV_TOKEN,
        seed: int = 42,
        entries: int = 150,
        random_seed: bool = False,
        anchor_ms: int | None = None,
        page_cap: int = 50,
        success_ratio: float = 0.8,
        run_seconds: float = 30.0,
        callback_seconds: float = 20.0,
        callback_outcome: str = "CALLBACK_SUCCESS",
        rate_limit_rps: float | None = None,
        cursor_ttl_seconds: float | None = None,
        success_ratio_by_url: dict[str, float] | None = None,
        keep_resumed: bool = False,
        resumed_lag: int = 0,
        answer_order: str = "sent",
        max_ids_per_call: int | None = None,
        list_order: str = "oldest",
        stale_cursor_every: int | None = None,
        frozen_cursor: bool = False,
        rate_limit_reset_unit: str = "s",
        created_at_format: str = "ms",
        latency_ms: float = 0,
        bulk_delete_missing: str = "refuse",
        faults: Iterable[FaultLike] = (),
        allowed_hosts: Iterable[str] = (),
        log_level: str = "warning",
    ) -> None:
        """Every WorldConfig field is a keyword here (see `readings.READINGS`);
        `allowed_hosts` adds Host header names the control API accepts besides
        loopback and `host`."""
        config = WorldConfig().updated(
            {
                "page_cap": page_cap,
                "success_ratio": success_ratio,
                "run_seconds": run_seconds,
                "callback_seconds": callback_seconds,
                "callback_outcome": callback_outcome,
                "rate_limit_rps": rate_limit_rps,
                "cursor_ttl_seconds": cursor_ttl_seconds,
                "success_ratio_by_url": dict(success_ratio_by_url or {}),
                "keep_resumed": keep_resumed,
                "resumed_lag": resumed_lag,
                "answer_order": answer_order,
                "max_ids_per_call": max_ids_per_call,
                "list_order": list_order,
                "stale_cursor_every": stale_cursor_every,
                "frozen_cursor": frozen_cursor,
                "rate_limit_reset_unit": rate_limit_reset_unit,
                "created_at_format": created_at_format,
                "latency_ms": latency_ms,
                "bulk_delete_missing": bulk_delete_missing,
            }
        )
        self.state = build_state(
            token=token,
            seed=seed,
            entries=entries,
            random_seed=random_seed,
            anchor_ms=anchor_ms,
            config=config,
            faults=faults,
            allowed_hosts=[host, *allowed_hosts],
        )
        self.host = host
        self._requested_port = port
        self._log_level = log_level
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._control: DevServerControl | None = None
        self.port = 0

    @property
    def token(self) -> str:
        return self.state.token

    @property
    def seed(self) -> int:
        return self.state.world.seed

    @property
    def world(self) -> World:
        """Direct access for inspection; mutate only through HTTP while the server runs."""
        return self.state.world

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the dev server is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def control(self) -> DevServerControl:
        if self._control is None:
            self._control = DevServerControl(self.url)
        return self._control

    def start(self) -> DevServer:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(128)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            DevApp(self.state),
            lifespan="off",
            log_config=None,
            log_level=self._log_level,
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        hide_dropped_connection_errors()
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="wfdlq-devserver", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the dev server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self.port = 0

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

"""Everything one dev server instance holds, shared by the real API and /__dev/."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_provider_wfdlq.devserver.faults import FaultBook
from airflow_provider_wfdlq.devserver.world import World

DEV_TOKEN = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="

#: Host header names (without port) the control API always accepts.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass
class DevState:
    world: World
    faults: FaultBook
    token: str = DEV_TOKEN
    requests: list[dict[str, Any]] = field(default_factory=list)
    initial_faults: list[dict[str, Any]] = field(default_factory=list)
    #: Host header names the control API accepts (DNS-rebinding guard).
    allowed_hosts: set[str] = field(default_factory=lambda: set(LOOPBACK_HOSTS))

"""Fault injection: what the network and the service do on a bad day.

Two kinds of rules: ratio-based (a seeded RNG decides, so a seed replays the same
faults) and scripted ("the next N requests matching METHOD + path prefix get fault F"),
which is what a test uses to hit one exact request. Plus a requests-per-second limit.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

STATUS_FAULTS = {
    "429": (429, "Too many requests"),
    "500": (500, "Internal Server Error"),
    "502": (502, "Bad Gateway"),
    "503": (503, "Service Unavailable"),
    "504": (504, "Gateway Timeout"),
}
FAULT_KINDS = frozenset({*STATUS_FAULTS, "latency", "drop", "stale_cursor"})
DEFAULT_BURST_LIMIT = 100


@dataclass
class FaultRule:
    """`times` set = scripted (consumed per hit); `ratio` set = random with that chance."""

    fault: str
    method: str = "*"
    path_prefix: str = "/"
    times: int | None = None
    ratio: float | None = None
    latency_ms: int = 0
    reset_seconds: int = 1
    rule_id: int = 0

    def __post_init__(self) -> None:
        if self.fault not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.fault!r}; one of {sorted(FAULT_KINDS)}")
        if self.times is not None and self.ratio is not None:
            raise ValueError("give either times (scripted) or ratio (random), not both")
        if self.times is None and self.ratio is None:
            self.times = 1
        if self.times is not None and self.times < 1:
            raise ValueError("times must be >= 1")
        if self.ratio is not None and not 0.0 <= self.ratio <= 1.0:
            raise ValueError("ratio must be within [0, 1]")
        if self.fault == "latency" and self.latency_ms <= 0:
            raise ValueError("a latency fault needs latency_ms > 0")
        if self.latency_ms < 0 or self.reset_seconds < 0:
            raise ValueError("latency_ms and reset_seconds must be >= 0")
        self.method = self.method.upper()

    def applies_to(self, method: str, path: str, has_cursor: bool) -> bool:
        if self.fault == "stale_cursor" and not has_cursor:
            return False
        return self.method in ("*", method) and path.startswith(self.path_prefix)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.rule_id,
            "fault": self.fault,
            "method": self.method,
            "pathPrefix": self.path_prefix,
            "times": self.times,
            "ratio": self.ratio,
            "latencyMs": self.latency_ms,
            "resetSeconds": self.reset_seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        known = {
            "id",
            "fault",
            "method",
            "pathPrefix",
            "times",
            "ratio",
            "latencyMs",
            "resetSeconds",
        }
        if unknown := set(data) - known:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(
            fault=str(data.get("fault", "")),
            method=str(data.get("method", "*")),
            path_prefix=str(data.get("pathPrefix", "/")),
            times=_optional_int(data.get("times")),
            ratio=None if data.get("ratio") is None else float(data["ratio"]),
            latency_ms=int(data.get("latencyMs", 0)),
            reset_seconds=int(data.get("resetSeconds", 1)),
        )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def parse_fault_spec(text: str) -> FaultRule:
    """CLI form `KIND[:key=value...]`, keys ratio, times, method, path, latency, reset;
    e.g. `503:ratio=0.1` or `drop:times=1:method=POST:path=/v2/workflows/dlq/resume`."""
    kind, *options = text.split(":")
    data: dict[str, Any] = {"fault": kind}
    names = {
        "ratio": "ratio",
        "times": "times",
        "method": "method",
        "path": "pathPrefix",
        "latency": "latencyMs",
        "reset": "resetSeconds",
    }
    for option in options:
        name, equals, value = option.partition("=")
        if not equals or name not in names:
            raise ValueError(f"bad fault option {option!r} in {text!r}")
        data[names[name]] = value
    return FaultRule.from_json(data)


@dataclass
class FaultDecision:
    """What to do to one request: wait, then either answer an error, drop, or go on."""

    latency_ms: int = 0
    status: int | None = None
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    fault: str | None = None


class FaultBook:
    def __init__(self, seed: int) -> None:
        self.reset(seed)

    def reset(self, seed: int) -> None:
        self.rules: list[FaultRule] = []
        self._rng = random.Random(f"faults:{seed}")
        self._next_id = 0
        self._accepted: deque[float] = deque()

    def add(self, rule: FaultRule) -> FaultRule:
        self._next_id += 1
        rule.rule_id = self._next_id
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def decide(
        self,
        method: str,
        path: str,
        has_cursor: bool,
        rate_limit_rps: float | None,
        reset_unit: str = "s",
    ) -> FaultDecision:
        decision = FaultDecision()
        for rule in list(self.rules):
            if not rule.applies_to(method, path, has_cursor) or not self._fires(rule):
                continue
            if rule.fault == "latency":
                decision.latency_ms += rule.latency_ms
            elif decision.fault is None:
                decision.latency_ms += rule.latency_ms
                self._apply(rule, decision, reset_unit)
        if decision.fault is None and rate_limit_rps is not None:
            self._rate_limit(rate_limit_rps, decision, reset_unit)
        return decision

    def _fires(self, rule: FaultRule) -> bool:
        if rule.times is not None:
            rule.times -= 1
            if rule.times == 0:
                self.rules.remove(rule)
            return True
        return self._rng.random() < (rule.ratio or 0.0)

    @staticmethod
    def _apply(rule: FaultRule, decision: FaultDecision, reset_unit: str) -> None:
        decision.fault = rule.fault
        if rule.fault == "drop":
            decision.drop = True
        elif rule.fault == "stale_cursor":
            decision.status, decision.message = 400, "cursor is stale"
        else:
            decision.status, decision.message = STATUS_FAULTS[rule.fault]
            if rule.fault == "429":
                decision.headers = burst_headers(
                    DEFAULT_BURST_LIMIT, time.time() + rule.reset_seconds, reset_unit
                )

    def _rate_limit(self, rps: float, decision: FaultDecision, reset_unit: str) -> None:
        """Sliding one-second window over real time; only accepted requests count."""
        now = time.time()
        while self._accepted and self._accepted[0] <= now - 1.0:
            self._accepted.popleft()
        if len(self._accepted) >= rps:
            decision.fault = "rate_limit"
            decision.status, decision.message = 429, "Too many requests"
            # In seconds, one whole second later than the window frees a place (floored
            # seconds would otherwise name a moment that is still too early).
            frees_at = self._accepted[0] + (2.0 if reset_unit == "s" else 1.0)
            decision.headers = burst_headers(int(rps), frees_at, reset_unit)
            return
        self._accepted.append(now)


def burst_headers(limit: int, reset_at: float, unit: str = "s") -> dict[str, str]:
    """Upstash documents `Burst-RateLimit-Reset` as a unix timestamp without a unit:
    `unit` "s" sends whole seconds, "ms" whole milliseconds (both floored)."""
    reset = math.floor(reset_at * 1000) if unit == "ms" else math.floor(reset_at)
    return {
        "Burst-RateLimit-Limit": str(limit),
        "Burst-RateLimit-Remaining": "0",
        "Burst-RateLimit-Reset": str(reset),
    }

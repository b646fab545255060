"""`DevServerControl`: the `/__dev/` API from Python, for tests and scripts."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx


class DevServerControlError(RuntimeError):
    pass


class DevServerControl:
    """Thin synchronous wrapper; every method is one call to `/__dev/...`."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url + "/__dev",
            timeout=timeout,
            headers={"X-Wfdlq-Control": "1"},  # the control API refuses unmarked writes
        )

    def __enter__(self) -> DevServerControl:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if body is None and method != "GET":
            body = {}  # always JSON: the control API takes no other content type
        response = self._http.request(method, path, json=body)
        if response.status_code >= 400:
            raise DevServerControlError(f"{method} /__dev{path}: {response.text}")
        return response.json()

    # world
    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/health")
        return result

    def reset(
        self,
        *,
        seed: int | None = None,
        entries: int | None = None,
        random_seed: bool = False,
        config: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Fresh seeded entries; logs, faults, clock and config back to the startup state."""
        body = {"seed": seed, "entries": entries, "randomSeed": random_seed, "config": config}
        result: dict[str, Any] = self._call("POST", "/reset", body)
        return result

    def seed_entries(self, count: int = 1, **fields: Any) -> list[dict[str, Any]]:
        """Add realistic entries with any DLQMessage field overridden (None removes it).

        `incompatibleStep=True`: the workflow's code changed before the failed step.
        Resume still answers 200, but the new run fails at that step (whatever the
        success ratio) with the workflow SDK's 500 `Incompatible step name` error and
        comes back as a new entry that is incompatible too; restart works normally."""
        result: list[dict[str, Any]] = self._call("POST", "/entries", {"count": count, **fields})[
            "entries"
        ]
        return result

    def entries(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/entries")["entries"]
        return result

    def runs(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/runs")["runs"]
        return result

    def set_callback_state(self, dlq_id: str, state: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/entries/{dlq_id}/callback", {"state": state})
        return result

    # clock
    def now_ms(self) -> int:
        return int(self._call("GET", "/time")["now"])

    def advance_time(self, seconds: float) -> int:
        """Move the simulated clock; due runs finish and callbacks settle right away."""
        return int(self._call("POST", "/time/advance", {"seconds": seconds})["now"])

    def freeze_time(self, at_ms: int | None = None) -> int:
        return int(self._call("POST", "/time/freeze", {"at": at_ms})["now"])

    def unfreeze_time(self) -> int:
        return int(self._call("POST", "/time/unfreeze")["now"])

    # config
    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/config")
        return result

    def set_config(self, **changes: Any) -> dict[str, Any]:
        """Any WorldConfig field: page_cap, success_ratio, success_ratio_by_url
        ({workflow URL: ratio}), run_seconds, callback_seconds, callback_outcome,
        rate_limit_rps, cursor_ttl_seconds, and the readings keep_resumed, resumed_lag,
        answer_order, max_ids_per_call, list_order, stale_cursor_every, frozen_cursor,
        rate_limit_reset_unit, created_at_format, latency_ms, bulk_delete_missing (see
        `READINGS`)."""
        result: dict[str, Any] = self._call("POST", "/config", changes)
        return result

    # logs
    def requests(self) -> list[dict[str, Any]]:
        """Real-API requests seen: method, path, query pairs, headers (no Authorization)."""
        result: list[dict[str, Any]] = self._call("GET", "/requests")["requests"]
        return result

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def actions(self) -> list[dict[str, Any]]:
        """Every resume/restart/delete/callback action actually taken, in order, repeats
        included: `action`, `dlqId`, `workflowRunId`, `newWorkflowRunId`,
        `newWorkflowCreatedAt` (int ms), `overrides`, `via` ("single" | "bulk"), `at`."""
        result: list[dict[str, Any]] = self._call("GET", "/actions")["actions"]
        return result

    def clear_actions(self) -> None:
        self._call("DELETE", "/actions")

    # faults
    def add_fault(
        self,
        fault: str,
        *,
        method: str = "*",
        path_prefix: str = "/",
        times: int | None = None,
        ratio: float | None = None,
        latency_ms: int = 0,
        reset_seconds: int = 1,
    ) -> dict[str, Any]:
        """fault: 429, 500, 502, 503, 504, latency, drop, stale_cursor. Scripted with
        `times` (default 1), random with `ratio`."""
        body = {
            "fault": fault,
            "method": method,
            "pathPrefix": path_prefix,
            "times": times,
            "ratio": ratio,
            "latencyMs": latency_ms,
            "resetSeconds": reset_seconds,
        }
        result: dict[str, Any] = self._call("POST", "/faults", body)
        return result

    def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/faults")["faults"]
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

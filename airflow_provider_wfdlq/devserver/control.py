"""The `/__dev/` control API: no auth, never part of the real API's path space.

It lets a test arrange the world (reset, seed entries, set a callback state, move the
clock, tune config, script faults) and then check what happened (request log with the
Authorization header removed, action log, all entries and runs).

No token, so it guards against the browser instead: every request must name this
server in its Host header (loopback, the bound host, or an allowed host: no DNS
rebinding), and every POST/PUT/PATCH/DELETE must be `Content-Type: application/json` or
carry `X-Wfdlq-Control` (neither is possible for a cross-site form or simple request).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from airflow_provider_wfdlq.devserver.errors import ApiError
from airflow_provider_wfdlq.devserver.faults import FaultRule
from airflow_provider_wfdlq.devserver.state import DevState

ControlHandler = Callable[[Request], Awaitable[Any]]


def reset_state(
    state: DevState,
    *,
    seed: int | None = None,
    entries: int | None = None,
    random_seed: bool = False,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Clean deterministic state; the startup faults (CLI flags) come back too."""
    world = state.world
    if random_seed:
        seed = random.SystemRandom().randrange(2**31)
    new_config = world.initial_config.updated(config or {})
    world.reset(seed=seed, entries=entries, config=new_config)
    state.faults.reset(world.seed)
    for rule in state.initial_faults:
        state.faults.add(FaultRule.from_json(rule))
    state.requests.clear()
    return {"seed": world.seed, "entries": world.entry_count, "now": world.clock.now_ms()}


class Control:
    def __init__(self, state: DevState) -> None:
        self.state = state

    async def health(self, request: Request) -> Any:
        return {"ok": True, "entries": self.state.world.entry_count}

    async def reset(self, request: Request) -> Any:
        body = await _body(request)
        return reset_state(
            self.state,
            seed=_opt_int(body.get("seed")),
            entries=_opt_int(body.get("entries")),
            random_seed=bool(body.get("randomSeed", False)),
            config=body.get("config"),
        )

    async def list_entries(self, request: Request) -> Any:
        return {"entries": self.state.world.all_entries()}

    async def seed_entries(self, request: Request) -> Any:
        body = await _body(request)
        count = int(body.pop("count", 1))
        return {"entries": self.state.world.seed_entries(count, body)}

    async def set_callback(self, request: Request) -> Any:
        body = await _body(request)
        dlq_id = request.path_params["dlq_id"]
        return self.state.world.set_callback_state(dlq_id, str(body.get("state")))

    async def runs(self, request: Request) -> Any:
        return {"runs": self.state.world.all_runs()}

    async def time(self, request: Request) -> Any:
        return self.state.world.clock.snapshot()

    async def advance(self, request: Request) -> Any:
        body = await _body(request)
        self.state.world.clock.advance(float(body.get("seconds", 0)))
        self.state.world.settle()
        return self.state.world.clock.snapshot()

    async def freeze(self, request: Request) -> Any:
        body = await _body(request)
        self.state.world.clock.freeze(_opt_int(body.get("at")))
        return self.state.world.clock.snapshot()

    async def unfreeze(self, request: Request) -> Any:
        self.state.world.clock.unfreeze()
        return self.state.world.clock.snapshot()

    async def get_config(self, request: Request) -> Any:
        return _config_json(self.state)

    async def set_config(self, request: Request) -> Any:
        body = await _body(request)
        self.state.world.set_config(self.state.world.config.updated(body))
        return _config_json(self.state)

    async def requests(self, request: Request) -> Any:
        return {"requests": self.state.requests}

    async def clear_requests(self, request: Request) -> Any:
        self.state.requests.clear()
        return {"requests": []}

    async def actions(self, request: Request) -> Any:
        return {"actions": self.state.world.actions}

    async def clear_actions(self, request: Request) -> Any:
        self.state.world.actions.clear()
        return {"actions": []}

    async def faults(self, request: Request) -> Any:
        return {"faults": [rule.to_json() for rule in self.state.faults.rules]}

    async def add_fault(self, request: Request) -> Any:
        rule = self.state.faults.add(FaultRule.from_json(await _body(request)))
        return rule.to_json()

    async def clear_faults(self, request: Request) -> Any:
        self.state.faults.clear()
        return {"faults": []}

    def routes(self) -> list[Route]:
        def route(path: str, handler: ControlHandler, method: str) -> Route:
            return Route(f"/__dev{path}", _json(self.state, handler), methods=[method])

        return [
            route("/health", self.health, "GET"),
            route("/reset", self.reset, "POST"),
            route("/entries", self.list_entries, "GET"),
            route("/entries", self.seed_entries, "POST"),
            route("/entries/{dlq_id}/callback", self.set_callback, "POST"),
            route("/runs", self.runs, "GET"),
            route("/time", self.time, "GET"),
            route("/time/advance", self.advance, "POST"),
            route("/time/freeze", self.freeze, "POST"),
            route("/time/unfreeze", self.unfreeze, "POST"),
            route("/config", self.get_config, "GET"),
            route("/config", self.set_config, "POST"),
            route("/requests", self.requests, "GET"),
            route("/requests", self.clear_requests, "DELETE"),
            route("/actions", self.actions, "GET"),
            route("/actions", self.clear_actions, "DELETE"),
            route("/faults", self.faults, "GET"),
            route("/faults", self.add_fault, "POST"),
            route("/faults", self.clear_faults, "DELETE"),
        ]


def _config_json(state: DevState) -> dict[str, Any]:
    return asdict(state.world.config)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = await request.json()
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def _json(state: DevState, handler: ControlHandler) -> Callable[[Request], Awaitable[Response]]:
    """Settle the world first (lazy time), answer JSON, map bad input to 400."""

    async def endpoint(request: Request) -> Response:
        try:
            state.world.settle()
            return JSONResponse(await handler(request))
        except ApiError as error:
            return JSONResponse({"error": error.message}, status_code=error.status)
        except (ValueError, TypeError, KeyError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)

    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)


CONTROL_HEADER = "x-wfdlq-control"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def host_name(host_header: str) -> str:
    """`127.0.0.1:8080` -> `127.0.0.1`, `[::1]:8080` -> `::1`, lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host


class ControlGuard:
    """Refuses control requests a web page could make: 403 for a foreign Host, 415 for
    a state-changing request that is neither JSON nor marked with X-Wfdlq-Control."""

    def __init__(self, app: ASGIApp, state: DevState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                status, message = refusal
                await JSONResponse({"error": message}, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = host_name(headers.get("host", ""))
        if host not in self.state.allowed_hosts:
            return 403, (
                f"the control API only answers requests addressed to this server (Host "
                f"{host or 'missing'!r} is not one of {sorted(self.state.allowed_hosts)}; "
                f"start the server with --allow-host to add one)"
            )
        if scope["method"] in UNSAFE_METHODS and CONTROL_HEADER not in headers:
            media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
            if media_type != "application/json":
                return 415, (
                    f"control {scope['method']} requests need Content-Type: application/json "
                    f"(or an X-Wfdlq-Control header); got {media_type or 'none'!r}"
                )
        return None


def build_control_app(state: DevState) -> ASGIApp:
    app = Starlette(routes=Control(state).routes(), exception_handlers={HTTPException: _http_error})
    return ControlGuard(app, state)

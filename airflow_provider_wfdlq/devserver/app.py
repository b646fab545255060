"""The emulated real API over ASGI: routes, bearer auth, faults, request log.

`DevApp` is a thin raw-ASGI front: it sends `/__dev/` to the control app, and for the
real API it logs the request, applies injected faults, checks the token, then hands over
to the Starlette router. A dropped connection is done here too: the handler runs (the
work happens), its answer is held back, the status line goes out with a body that never
follows, and an exception makes uvicorn close the socket.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_wfdlq.devserver.control import build_control_app
from airflow_provider_wfdlq.devserver.errors import ApiError, bad_request
from airflow_provider_wfdlq.devserver.filters import (
    MAX_LIST_PAGE,
    MAX_RUNS_PAGE,
    TOKEN_PARAM,
    group_params,
    parse_dlq_query,
    parse_logs_query,
)
from airflow_provider_wfdlq.devserver.ids import CursorError, decode_any_cursor, encode_cursor
from airflow_provider_wfdlq.devserver.overrides import parse_overrides
from airflow_provider_wfdlq.devserver.state import DevState
from airflow_provider_wfdlq.devserver.world import DlqRecord, World

Handler = Callable[[Request], Awaitable[Response]]

REQUEST_LOG_LIMIT = 100_000


class DroppedConnection(Exception):
    """Raised on purpose after the work is done so that the answer never arrives."""


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class Api:
    """Route handlers of the real API, bound to one DevState."""

    def __init__(self, state: DevState) -> None:
        self.state = state

    @property
    def world(self) -> World:
        return self.state.world

    # ------------------------------------------------------------ cursors

    def _cursor(self, kind: str, position: list[object]) -> str:
        return encode_cursor(kind, self.world.epoch, position, self.world.clock.now_ms())

    def _decode(self, cursor: str, kinds: tuple[str, ...]) -> tuple[str, list[object]]:
        """(kind, position) of one of our cursors; 400 invalid or stale otherwise."""
        try:
            kind, epoch, position, issued = decode_any_cursor(cursor)
        except CursorError as error:
            raise bad_request("invalid cursor") from error
        if kind not in kinds:
            raise bad_request("invalid cursor")
        ttl = self.world.config.cursor_ttl_seconds
        too_old = ttl is not None and self.world.clock.now_ms() - issued > ttl * 1000
        if epoch != self.world.epoch or too_old:
            raise bad_request("cursor is stale")
        return kind, position

    def _position(self, cursor: str | None, kind: str) -> list[object] | None:
        if cursor is None:
            return None
        position = self._decode(cursor, (kind,))[1]
        if len(position) != 2 or not isinstance(position[0], int):
            raise bad_request("invalid cursor")
        return position

    def _dlq_after(self, cursor: str | None) -> tuple[int, int] | None:
        position = self._position(cursor, "dlq")
        return None if position is None else _dlq_key(position)

    # ------------------------------------------------------------ answers

    def _run_answer(self, run: dict[str, Any]) -> dict[str, Any]:
        """A resume/restart answer with `workflowCreatedAt` per `created_at_format`."""
        if self.world.config.created_at_format == "iso":
            return {**run, "workflowCreatedAt": iso_ms(int(run["workflowCreatedAt"]))}
        return run

    def _ordered(self, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`workflowRuns` of a bulk answer in `answer_order` (shuffled: seeded)."""
        order = self.world.config.answer_order
        if order == "reversed":
            return runs[::-1]
        if order == "shuffled":
            shuffled = list(runs)
            self.world.answer_rng.shuffle(shuffled)
            return shuffled
        return runs

    # ------------------------------------------------------------ list & get

    async def list_dlq(self, request: Request) -> Response:
        return self._list(request, extra=())

    async def list_dlq_js(self, request: Request) -> Response:
        """`GET /v2/dlq?source=workflow`, the JS client's listing."""
        sources = request.query_params.getlist("source")
        if sources != ["workflow"]:
            raise bad_request("this emulator only serves source=workflow")
        return self._list(request, extra=("source",))

    def _list(self, request: Request, extra: tuple[str, ...]) -> Response:
        """Listing cursors: `dlq` (oldest first, shared with bulk walks), `dlqnew`
        (newest first) and `dlqfrozen` (`frozen_cursor`: where the page started)."""
        self.world.settle()
        query = parse_dlq_query(request.query_params.multi_items(), bulk=False, extra=extra)
        config = self.world.config
        if query.cursor is not None and self.world.stale_cursor_due():
            raise bad_request("cursor is stale")
        limit = min(query.count or MAX_LIST_PAGE, MAX_LIST_PAGE)
        newest = config.list_order == "newest"
        after: tuple[int, int] | None = None
        frozen = False
        if config.offset_cursor:
            return self._list_by_offset(query, limit, newest)
        if query.cursor is not None:
            kind, position = self._decode(query.cursor, ("dlq", "dlqnew", "dlqfrozen"))
            frozen = kind == "dlqfrozen"
            if frozen:
                if not position or position[0] not in ("oldest", "newest"):
                    raise bad_request("invalid cursor")
                newest = position[0] == "newest"
                after = _dlq_key(position[1:]) if len(position) > 1 else None
            else:
                newest = kind == "dlqnew"  # a walk keeps the order it started in
                after = _dlq_key(position)
        records, more = self.world.page(query.filter, after, limit, newest=newest)
        body: dict[str, Any] = {"messages": [record.message for record in records]}
        if frozen:
            body["cursor"] = query.cursor  # the same cursor, forever
        elif more and config.frozen_cursor:
            start: list[object] = ["newest" if newest else "oldest", *(after or ())]
            body["cursor"] = self._cursor("dlqfrozen", start)
        elif more:
            body["cursor"] = self._cursor("dlqnew" if newest else "dlq", list(records[-1].key))
        return JSONResponse(body)

    def _list_by_offset(self, query: Any, limit: int, newest: bool) -> Response:
        """``offset_cursor``: the cursor is a place among the matches, not a key."""
        offset = 0
        if query.cursor is not None:
            position = self._decode(query.cursor, ("dlqoff",))[1]
            if len(position) != 1 or not isinstance(position[0], int) or position[0] < 0:
                raise bad_request("invalid cursor")
            offset = position[0]
        records, more = self.world.page_at(query.filter, offset, limit, newest=newest)
        body: dict[str, Any] = {"messages": [record.message for record in records]}
        if more:
            body["cursor"] = self._cursor("dlqoff", [offset + len(records)])
        return JSONResponse(body)

    async def get_one(self, request: Request) -> Response:
        record = self._single(request)
        return JSONResponse(record.message)

    def _single(self, request: Request) -> DlqRecord:
        group_params(request.query_params.multi_items(), ())
        self.world.settle()
        return self.world.get(request.path_params["dlq_id"])

    # ------------------------------------------------------------ resume & restart

    async def resume_one(self, request: Request) -> Response:
        return self._act_one(request, "resume")

    async def restart_one(self, request: Request) -> Response:
        return self._act_one(request, "restart")

    def _act_one(self, request: Request, action: str) -> Response:
        overrides = parse_overrides(request.headers)
        record = self._single(request)
        act = self.world.resume if action == "resume" else self.world.restart
        return JSONResponse(self._run_answer(act(record, overrides, "single")))

    async def resume_bulk(self, request: Request) -> Response:
        return self._act_bulk(request, "resume")

    async def restart_bulk(self, request: Request) -> Response:
        return self._act_bulk(request, "restart")

    def _act_bulk(self, request: Request, action: str) -> Response:
        query = parse_dlq_query(request.query_params.multi_items(), bulk=True)
        overrides = parse_overrides(request.headers)
        records, cursor = self._bulk_selection(query.dlq_ids, query, capped=True)
        act = self.world.resume if action == "resume" else self.world.restart
        runs = [self._run_answer(act(record, overrides, "bulk")) for record in records]
        body: dict[str, Any] = {"workflowRuns": self._ordered(runs)}
        if cursor is not None:
            body["cursor"] = cursor
        return JSONResponse(body)

    def _bulk_selection(
        self, dlq_ids: list[str] | None, query: Any, *, capped: bool
    ) -> tuple[list[DlqRecord], str | None]:
        """The entries one bulk call acts on, and the cursor to answer (None: no cursor).

        By `dlqIds` with `max_ids_per_call` C (resume/restart only): the first C ids not
        yet done, in the order sent, and an `ids` cursor while ids remain; that cursor
        sent back with the same ids goes on after them (any other cursor is ignored)."""
        self.world.settle()
        cap = self.world.config.max_ids_per_call if capped else None
        if dlq_ids is not None and cap is not None:
            start = self._ids_offset(query.cursor, dlq_ids)
            records = self.world.select(dlq_ids[start : start + cap])
            cursor = None
            if start + cap < len(dlq_ids):
                cursor = self._cursor("ids", [start + cap, _ids_digest(dlq_ids)])
        elif dlq_ids is not None:
            records = self.world.select(dlq_ids)
            cursor = None
        else:
            cap = self.world.config.page_cap
            limit = min(query.count or cap, cap)
            records, more = self.world.page(query.filter, self._dlq_after(query.cursor), limit)
            cursor = self._cursor("dlq", list(records[-1].key)) if more else ""
        return records, cursor

    def _ids_offset(self, cursor: str | None, dlq_ids: list[str]) -> int:
        if cursor is None:
            return 0
        try:
            kind = decode_any_cursor(cursor)[0]
        except CursorError:
            return 0
        if kind != "ids":
            return 0
        position = self._decode(cursor, ("ids",))[1]
        if len(position) != 2 or not isinstance(position[0], int) or position[0] < 0:
            raise bad_request("invalid cursor")
        return position[0] if position[1] == _ids_digest(dlq_ids) else 0

    # ------------------------------------------------------------ callbacks

    async def retry_callback(self, request: Request) -> Response:
        record = self._single(request)
        return JSONResponse(self.world.retry_callback(record))

    async def cancel_callback(self, request: Request) -> Response:
        record = self._single(request)
        self.world.cancel_callback(record)
        return Response(status_code=302)  # documented as 302; no Location to follow

    # ------------------------------------------------------------ delete

    async def delete_one(self, request: Request) -> Response:
        record = self._single(request)
        self.world.delete(record, "single")
        return Response(status_code=200)

    async def delete_bulk(self, request: Request) -> Response:
        query = parse_dlq_query(request.query_params.multi_items(), bulk=True)
        dlq_ids = query.dlq_ids
        if dlq_ids is not None and self.world.config.bulk_delete_missing == "skip":
            dlq_ids = [i for i in dlq_ids if self.world.exists(i)]  # a reading: see WorldConfig
        records, cursor = self._bulk_selection(dlq_ids, query, capped=False)
        for record in records:
            self.world.delete(record, "bulk")
        body: dict[str, Any] = {"deleted": len(records)}
        if cursor is not None:
            body["cursor"] = cursor
        return JSONResponse(body)

    # ------------------------------------------------------------ logs & flow control

    async def logs(self, request: Request) -> Response:
        return self._logs(request, group_by_required=False)

    async def events(self, request: Request) -> Response:
        """`GET /v2/workflows/events?groupBy=workflowRunId`: what the official JS client's
        `logs()` calls; grouped by run it answers like the run logs."""
        return self._logs(request, group_by_required=True)

    def _logs(self, request: Request, *, group_by_required: bool) -> Response:
        query = parse_logs_query(
            request.query_params.multi_items(), group_by_required=group_by_required
        )
        self.world.settle()
        position = self._position(query.cursor, "logs")
        before = None
        if position is not None:
            before = (int(str(position[0])), str(position[1]))
        limit = min(query.count or MAX_RUNS_PAGE, MAX_RUNS_PAGE)
        runs, last = self.world.runs_page(query, before, limit)
        body: dict[str, Any] = {"runs": runs}
        if last is not None:
            body["cursor"] = self._cursor("logs", list(last))
        return JSONResponse(body)

    async def flow_control(self, request: Request) -> Response:
        group_params(request.query_params.multi_items(), ())
        return JSONResponse(self.world.flow_control_state(request.path_params["key"]))

    async def flow_control_pause(self, request: Request) -> Response:
        group_params(request.query_params.multi_items(), ())
        self.world.pause_flow_control(request.path_params["key"])
        return Response(status_code=200)

    async def flow_control_resume(self, request: Request) -> Response:
        group_params(request.query_params.multi_items(), ())
        self.world.resume_flow_control(request.path_params["key"])
        return Response(status_code=200)

    def routes(self) -> list[Route]:
        dlq = "/v2/workflows/dlq"
        return [
            Route(dlq, _guard(self.list_dlq), methods=["GET"]),
            Route(dlq, _guard(self.delete_bulk), methods=["DELETE"]),
            Route("/v2/dlq", _guard(self.list_dlq_js), methods=["GET"]),
            Route(f"{dlq}/resume", _guard(self.resume_bulk), methods=["POST"]),
            Route(f"{dlq}/restart", _guard(self.restart_bulk), methods=["POST"]),
            Route(f"{dlq}/resume/{{dlq_id}}", _guard(self.resume_one), methods=["POST"]),
            Route(f"{dlq}/restart/{{dlq_id}}", _guard(self.restart_one), methods=["POST"]),
            Route(f"{dlq}/callback/{{dlq_id}}", _guard(self.retry_callback), methods=["POST"]),
            Route(f"{dlq}/callback/{{dlq_id}}", _guard(self.cancel_callback), methods=["DELETE"]),
            Route(f"{dlq}/{{dlq_id}}", _guard(self.get_one), methods=["GET"]),
            Route(f"{dlq}/{{dlq_id}}", _guard(self.delete_one), methods=["DELETE"]),
            Route("/v2/workflows/logs", _guard(self.logs), methods=["GET"]),
            Route("/v2/workflows/events", _guard(self.events), methods=["GET"]),
            Route("/v2/flowControl/{key}", _guard(self.flow_control), methods=["GET"]),
            Route("/v2/flowControl/{key}/pause", _guard(self.flow_control_pause), methods=["POST"]),
            Route(
                "/v2/flowControl/{key}/resume", _guard(self.flow_control_resume), methods=["POST"]
            ),
        ]


def _dlq_key(position: list[object]) -> tuple[int, int]:
    if len(position) != 2 or not all(
        isinstance(part, int) and not isinstance(part, bool) for part in position
    ):
        raise bad_request("invalid cursor")
    return int(str(position[0])), int(str(position[1]))


def _ids_digest(dlq_ids: list[str]) -> str:
    return hashlib.sha256(",".join(dlq_ids).encode()).hexdigest()[:16]


def iso_ms(ms: int) -> str:
    """Unix ms as ISO-8601 UTC text with milliseconds, like JavaScript's toISOString."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _guard(handler: Handler) -> Handler:
    """Turn ApiError into the service's `{"error": ...}` answer."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as error:
            return error_response(error.status, error.message)

    return guarded


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail))


def build_api_app(state: DevState) -> Starlette:
    return Starlette(routes=Api(state).routes(), exception_handlers={HTTPException: _http_error})


class DevApp:
    """The ASGI app uvicorn serves: real API plus `/__dev/` control API."""

    def __init__(self, state: DevState) -> None:
        self.state = state
        self.api: ASGIApp = build_api_app(state)
        self.control: ASGIApp = build_control_app(state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, send)
            return
        path: str = scope["path"]
        if path == "/__dev" or path.startswith("/__dev/"):
            await self.control(scope, receive, send)
            return
        await self._serve_api(scope, receive, send)

    async def _serve_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        entry: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "query": [[k, "***" if k == TOKEN_PARAM else v] for k, v in query],
            "headers": {k: v for k, v in headers.items() if k != "authorization"},
            "status": None,
            "at": self.state.world.clock.now_ms(),
        }
        self.state.requests.append(entry)
        if len(self.state.requests) > REQUEST_LOG_LIMIT:  # a long CLI session stays bounded
            del self.state.requests[: REQUEST_LOG_LIMIT // 2]
        world = self.state.world
        world.count_api_request()

        has_cursor = any(name == "cursor" for name, _ in query)
        config = world.config
        decision = self.state.faults.decide(
            scope["method"],
            scope["path"],
            has_cursor,
            config.rate_limit_rps,
            config.rate_limit_reset_unit,
        )
        if decision.fault is not None:
            entry["fault"] = decision.fault
        delay_ms = decision.latency_ms + config.latency_ms
        if delay_ms:
            # Handlers never await, so the world is only touched between awaits: the
            # sleep lets concurrent requests overlap without a lock.
            await asyncio.sleep(delay_ms / 1000)

        if not self._authorized(headers.get("authorization"), query):
            await self._answer(entry, send, error_response(401, "Unauthorized"), scope, receive)
            return
        if decision.status is not None:
            response = error_response(decision.status, decision.message, decision.headers)
            await self._answer(entry, send, response, scope, receive)
            return
        if decision.drop:
            await self._serve_then_drop(entry, scope, receive, send)
            return

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        await self.api(scope, receive, logging_send)

    def _authorized(self, authorization: str | None, query: list[tuple[str, str]]) -> bool:
        expected = self.state.token
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and secrets.compare_digest(
                token.strip().encode(), expected.encode()
            ):
                return True
        return any(
            name == TOKEN_PARAM and secrets.compare_digest(value.encode(), expected.encode())
            for name, value in query
        )

    @staticmethod
    async def _answer(
        entry: dict[str, Any], send: Send, response: Response, scope: Scope, receive: Receive
    ) -> None:
        entry["status"] = response.status_code
        await response(scope, receive, send)

    async def _serve_then_drop(
        self, entry: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.api(scope, receive, hold)
        start = next(message for message in held if message["type"] == "http.response.start")
        entry["status"] = start["status"]
        entry["dropped"] = True
        bodies = [m.get("body", b"") for m in held if m["type"] == "http.response.body"]
        body_length = sum(len(body) for body in bodies)
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(body_length + 1).encode()))
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        raise DroppedConnection(f"{scope['method']} {scope['path']} dropped on purpose")

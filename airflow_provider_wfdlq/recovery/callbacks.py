"""Waiting for failure callbacks: what to watch, how to poll, and when the wait is over.

Airflow-free on purpose: ``DLQFailureCallbackSensor.poke()`` drives a
:class:`CallbackWatcher` with the sync client (:func:`poll_sync`) and
``DLQFailureCallbackTrigger.run()`` drives the same watcher with the async client
(:func:`poll_async`), so poke, reschedule and deferrable modes decide identically
(:func:`decide` is the one place that turns what was seen into a verdict).

How a poll stays cheap for many ids (the list endpoint cannot filter by ``dlqId``):

* ``CALLBACK_INPROGRESS`` is the only state that changes by itself, so each poll lists the
  in-progress entries (``failureFunctionState=CALLBACK_INPROGRESS``, 100 per page) and
  intersects them with the watched ids. Once every open id has been seen, the listing is
  narrowed to the open entries' own ``workflowUrl`` values and ``createdAt`` window (read
  from the entries, never guessed): a page per 100 open entries, however big the DLQ.
* An id that was in progress and is not any more has a final state (or left the DLQ).
  Those ids are read back from ONE listing of final states narrowed the same way (their
  window and URLs), so a wave of 100 callbacks finishing costs a page, not 100 GETs.
  What that listing does not show (no callback, 404, or an id never seen yet) is fetched
  with a GET, which is authoritative. A final state never changes by itself, so it is not
  asked for again; if someone retries the callback, the entry shows up in the in-progress
  listing and is watched again.
* Every listing stops early once walking on would cost more pages than GETting the ids it
  has not found yet (say, a DLQ with far more in-progress entries than watched ids), so a
  poll never costs much more than the GETs it replaces.

In the common case a poll costs one request per 100 watched entries still in progress
(the API's page size) plus a page per wave of finished ones, instead of one GET per watched
id per poll. Ids not seen on the first poll (already final) cost one GET each, once.
"""

from __future__ import annotations

import ast
import asyncio
import json
from collections.abc import Generator, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final, TypeAlias

from airflow_provider_wfdlq.client import (
    CALLBACK_STATES,
    TERMINAL_CALLBACK_STATES,
    AsyncWorkflowDLQClient,
    DLQFilters,
    DLQMessage,
    DLQPage,
    NotFoundError,
    ValidationError,
    WorkflowDLQClient,
    check_dlq_id,
    check_failure_function_states,
)
from airflow_provider_wfdlq.recovery._polling import drive_async, drive_sync, is_transient
from airflow_provider_wfdlq.recovery.rendered import is_missing

__all__ = [
    "DEFAULT_ON_MISSING_CALLBACK",
    "DEFAULT_ON_VANISHED",
    "DEFAULT_TARGET_STATES",
    "POLICIES",
    "CallbackWatch",
    "CallbackWatcher",
    "EntryStatus",
    "GetCall",
    "ListCall",
    "Verdict",
    "coerce_dlq_ids",
    "decide",
    "is_transient",
    "poll_async",
    "poll_sync",
]

IN_PROGRESS: Final = "CALLBACK_INPROGRESS"
DEFAULT_TARGET_STATES: Final = tuple(sorted(TERMINAL_CALLBACK_STATES))
POLICIES: Final = ("succeed", "fail", "ignore")
DEFAULT_ON_MISSING_CALLBACK: Final = "succeed"
"""No failure callback means nothing can race with a resume: nothing to wait for."""
DEFAULT_ON_VANISHED: Final = "ignore"
"""Gone from the DLQ (resumed, deleted, expired): nothing downstream can race with it or
resume it, so it is left out of the result, which a downstream resume by ids can then use
without a 404."""

LIST_PAGE: Final = 100
EXCERPT_CHARS: Final = 200
MAX_NAMED: Final = 10
"""How many entries a failure or waiting message names."""
MAX_RESULT_ENTRIES: Final = 1000
"""With ``filters``, the most entries the result maps (one listing walk when done)."""
MAX_NARROWING_URLS: Final = 20
GET_CONCURRENCY: Final = 16

_IDS_ACCEPTED = (
    "a DLQ id, a list of ids, a comma-separated string of ids, or a ResumeDLQOperator "
    "result (or its 'runs' list of {'dlq_id': ...} dicts)"
)
_TERMINAL_ACCEPTED = "one or more of " + ", ".join(DEFAULT_TARGET_STATES)


# --- user input --------------------------------------------------------------------------------


def _literal(text: str) -> Any:
    """A list or dict that arrived as text (a template rendered without native objects)."""
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError):
            continue
    return text


def _id_items(value: Any, field: str) -> list[Any]:
    if isinstance(value, str):
        text = value.strip()
        if text and text[0] in "[{(":
            parsed = _literal(text)
            if not isinstance(parsed, str):
                return _id_items(parsed, field)
        return [part for part in text.split(",") if part.strip()]
    if isinstance(value, Mapping):
        if "runs" in value:
            return _id_items(value["runs"], field)
        if "dlq_id" in value:
            return [value["dlq_id"]]
        raise ValidationError(field, value, _IDS_ACCEPTED, "is a mapping without 'runs'/'dlq_id'")
    if isinstance(value, Iterable) and not isinstance(value, bytes):
        items: list[Any] = []
        for item in value:
            items.extend(_id_items(item, field) if isinstance(item, str | Mapping) else [item])
        return items
    raise ValidationError(field, value, _IDS_ACCEPTED, "is not a list of DLQ ids")


def coerce_dlq_ids(value: Any, field: str = "dlq_ids") -> tuple[str, ...] | None:
    """Watched ids in any form an upstream task hands over; None when not given at all.

    An empty list is a real answer (an upstream resume acted on nothing): nothing to wait for.
    """
    if is_missing(value):
        return None
    ids: list[str] = []
    for item in _id_items(value, field):
        dlq_id = check_dlq_id(item, field)
        if dlq_id not in ids:
            ids.append(dlq_id)
    return tuple(ids)


def _terminal_states(value: Any, field: str) -> frozenset[str]:
    if isinstance(value, str):
        parsed = _literal(value.strip()) if value.strip()[:1] == "[" else value
        value = parsed.split(",") if isinstance(parsed, str) else parsed
    states = check_failure_function_states(value, field)
    if IN_PROGRESS in states:
        raise ValidationError(
            field, value, _TERMINAL_ACCEPTED, f"names {IN_PROGRESS}, which is never final"
        )
    return frozenset(states)


def _policy(value: Any, field: str) -> str:
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in POLICIES:
        raise ValidationError(field, value, "one of " + ", ".join(repr(p) for p in POLICIES))
    return str(text)


def _filters(value: Any) -> DLQFilters | None:
    if is_missing(value):
        return None
    if isinstance(value, str):
        value = _literal(value.strip())
    if isinstance(value, DLQFilters):
        filters = value
    elif isinstance(value, Mapping):
        filters = DLQFilters.coerce(value, "filters")
    else:
        accepted = "a mapping of filter names to values, e.g. {'label': 'nightly'}"
        raise ValidationError("filters", value, accepted, "is not a mapping")
    if filters.dlq_ids:
        raise ValidationError(
            "filters", value, "filters without dlq_ids", "names dlq_ids: give them as dlq_ids="
        )
    if filters.failure_function_state:
        raise ValidationError(
            "filters",
            value,
            "filters without failure_function_state (use target_states / failure_states)",
            "names failure_function_state, which the sensor sets itself",
        )
    return filters


# --- what to watch -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CallbackWatch:
    """Which entries to watch and what their final states mean. Build it with :meth:`build`.

    ``dlq_ids`` is None when ``filters`` select the entries instead. A state in both
    ``target_states`` and ``failure_states`` counts as a failure.
    """

    dlq_ids: tuple[str, ...] | None
    filters: DLQFilters | None
    target_states: frozenset[str]
    failure_states: frozenset[str] = frozenset()
    on_missing_callback: str = DEFAULT_ON_MISSING_CALLBACK
    on_vanished: str = DEFAULT_ON_VANISHED

    @classmethod
    def build(
        cls,
        *,
        dlq_ids: Any = None,
        filters: Any = None,
        target_states: Any = DEFAULT_TARGET_STATES,
        failure_states: Any = (),
        on_missing_callback: Any = DEFAULT_ON_MISSING_CALLBACK,
        on_vanished: Any = DEFAULT_ON_VANISHED,
    ) -> CallbackWatch:
        """From rendered user values; every problem raises ValidationError naming the field."""
        ids = coerce_dlq_ids(dlq_ids)
        selected = _filters(filters)
        if ids is not None and selected is not None:
            raise ValidationError(
                "dlq_ids", ids, "either dlq_ids or filters", "cannot be combined with filters"
            )
        if ids is None and selected is None:
            raise ValidationError("dlq_ids", dlq_ids, f"{_IDS_ACCEPTED}; or filters instead")
        failure = _terminal_states(failure_states or (), "failure_states")
        target = _terminal_states(target_states, "target_states") - failure
        if not target:
            accepted = _TERMINAL_ACCEPTED + ", not all of them also in failure_states"
            raise ValidationError("target_states", target_states, accepted, "leaves no target")
        missing = _policy(on_missing_callback, "on_missing_callback")
        vanished = _policy(on_vanished, "on_vanished")
        if selected is not None:
            for name, policy in (("on_missing_callback", missing), ("on_vanished", vanished)):
                if policy == "fail":
                    raise ValidationError(
                        name,
                        policy,
                        "'succeed' or 'ignore' with filters (give dlq_ids to fail on them)",
                        "cannot be honoured with filters: such entries match no state filter",
                    )
        return cls(ids, selected, target, failure, missing, vanished)

    @property
    def open_states(self) -> frozenset[str]:
        """States that keep the wait going: in progress, and final states nobody asked for."""
        return CALLBACK_STATES - self.target_states - self.failure_states

    def to_json(self) -> dict[str, Any]:
        filters = None
        if self.filters is not None:
            filters = {
                name: list(value) if isinstance(value, tuple) else value
                for name, value in asdict(self.filters).items()
                if value not in (None, ())
            }
        return {
            "dlq_ids": None if self.dlq_ids is None else list(self.dlq_ids),
            "filters": filters,
            "target_states": sorted(self.target_states),
            "failure_states": sorted(self.failure_states),
            "on_missing_callback": self.on_missing_callback,
            "on_vanished": self.on_vanished,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallbackWatch:
        return cls.build(**data)


# --- what was seen -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryStatus:
    """One watched entry as last seen; ``state`` None means it has no failure callback."""

    dlq_id: str
    state: str | None = None
    response_status: int | None = None
    response_excerpt: str | None = field(default=None, repr=False)
    vanished: bool = False
    created_at: int | None = None
    workflow_url: str | None = None

    @classmethod
    def of(cls, message: DLQMessage) -> EntryStatus:
        info = message.failure_callback_info
        body = info.response_body if info is not None else None
        return cls(
            dlq_id=message.dlq_id,
            state=message.failure_function_state,
            response_status=info.response_status if info is not None else None,
            response_excerpt=None if body is None else body[:EXCERPT_CHARS],
            created_at=message.created_at,
            workflow_url=message.workflow_url,
        )

    @classmethod
    def gone(cls, dlq_id: str) -> EntryStatus:
        return cls(dlq_id=dlq_id, vanished=True)

    def result(self) -> dict[str, Any]:
        """The XCom value for this entry."""
        value: dict[str, Any] = {"state": self.state, "response_status": self.response_status}
        if self.vanished:
            value["vanished"] = True
        return value

    def describe(self) -> str:
        if self.vanished:
            return f"{self.dlq_id}: gone from the DLQ"
        if self.state is None:
            return f"{self.dlq_id}: no failure callback"
        text = f"{self.dlq_id}: {self.state}"
        if self.response_status is not None:
            text += f", callback answered HTTP {self.response_status}"
        if self.response_excerpt:
            text += f" {self.response_excerpt!r}"
        return text

    def to_json(self) -> list[Any]:
        """Compact and JSON-safe, to hand what a first poke saw over to the trigger."""
        return [self.state, self.response_status, self.vanished, self.created_at, self.workflow_url]

    @classmethod
    def from_json(cls, dlq_id: str, data: list[Any]) -> EntryStatus:
        state, status, vanished, created_at, url = data
        return cls(dlq_id, state, status, None, bool(vanished), created_at, url)


@dataclass(frozen=True)
class Verdict:
    """``success`` (``results`` is the XCom value), ``waiting`` or ``failed``."""

    status: str
    message: str
    results: Mapping[str, Any] = field(default_factory=dict)
    pending: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        return self.status != "waiting"

    def to_event(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "results": dict(self.results),
            "pending": list(self.pending),
        }


def _named(statuses: list[EntryStatus]) -> str:
    shown = "; ".join(s.describe() for s in statuses[:MAX_NAMED])
    more = len(statuses) - MAX_NAMED
    return shown + (f"; and {more} more" if more > 0 else "")


def _plural(n: int) -> str:
    return f"{n} entr{'y' if n == 1 else 'ies'}"


def decide(
    watch: CallbackWatch, statuses: Mapping[str, EntryStatus], *, truncated: bool = False
) -> Verdict:
    """The verdict on what a poll saw: any failure ends the wait at once, else any open
    entry keeps it going, else it succeeds. The only decision logic; both modes use it."""
    failed: list[EntryStatus] = []
    refused: list[tuple[str, EntryStatus]] = []
    open_: list[EntryStatus] = []
    results: dict[str, Any] = {}
    for status in statuses.values():
        if status.vanished or status.state is None:
            name = "on_vanished" if status.vanished else "on_missing_callback"
            policy = getattr(watch, name)
            if policy == "fail":
                refused.append((name, status))
            elif policy == "succeed":
                results[status.dlq_id] = status.result()
        elif status.state in watch.failure_states:
            failed.append(status)
        elif status.state in watch.target_states:
            results[status.dlq_id] = status.result()
        else:
            open_.append(status)
    if failed or refused:
        parts = []
        if failed:
            states = sorted(watch.failure_states)
            parts.append(
                f"{_plural(len(failed))} ended in a failure state {states}: {_named(failed)}"
            )
        for name in ("on_missing_callback", "on_vanished"):
            hit = [status for policy, status in refused if policy == name]
            if hit:
                parts.append(f"{_plural(len(hit))} refused by {name}='fail': {_named(hit)}")
        message = "Failure callbacks of watched DLQ entries: " + " | ".join(parts)
        return Verdict("failed", message, pending=tuple(s.dlq_id for s in open_))
    if open_:
        at_least = "at least " if watch.dlq_ids is None else ""
        message = f"Waiting for {at_least}{_plural(len(open_))}: {_named(open_)}"
        return Verdict("waiting", message, pending=tuple(s.dlq_id for s in open_))
    note = f" (result capped at {MAX_RESULT_ENTRIES})" if truncated else ""
    message = f"Failure callbacks final for {_plural(len(results))} in the result{note}"
    return Verdict("success", message, results=results)


# --- how to poll (sans-IO: the plan names calls, a driver makes them) ---------------------------


@dataclass(frozen=True)
class ListCall:
    """One page of ``GET /v2/workflows/dlq``; the answer is a :class:`DLQPage`."""

    filters: DLQFilters
    cursor: str | None
    count: int


@dataclass(frozen=True)
class GetCall:
    """One GET per id; the answer maps each id to its DLQMessage, or None for a 404."""

    dlq_ids: tuple[str, ...]


Call: TypeAlias = ListCall | GetCall
Answer: TypeAlias = DLQPage | Mapping[str, DLQMessage | None]
PollPlan: TypeAlias = Generator[Call, Any, Verdict]


class CallbackWatcher:
    """Polls one :class:`CallbackWatch`, remembering what it saw between polls.

    ``known`` seeds that memory (what a first poke saw, handed to the trigger).
    """

    def __init__(self, watch: CallbackWatch, known: Mapping[str, EntryStatus] | None = None):
        self.watch = watch
        self.known: dict[str, EntryStatus] = dict(known or {})
        self.last: Verdict | None = None
        self.calls = 0

    def known_json(self) -> dict[str, list[Any]]:
        return {dlq_id: status.to_json() for dlq_id, status in self.known.items()}

    @staticmethod
    def known_from_json(data: Mapping[str, list[Any]] | None) -> dict[str, EntryStatus]:
        return {dlq_id: EntryStatus.from_json(dlq_id, row) for dlq_id, row in (data or {}).items()}

    def poll(self) -> PollPlan:
        """One poll as a generator of calls; its return value is the verdict."""
        if self.watch.dlq_ids is None:
            verdict = yield from self._poll_filters(self.watch.filters or DLQFilters())
        else:
            verdict = yield from self._poll_ids(self.watch.dlq_ids)
        self.last = verdict
        return verdict

    def _call(self, call: Call) -> Call:
        self.calls += len(call.dlq_ids) if isinstance(call, GetCall) else 1
        return call

    def _is_open(self, dlq_id: str) -> bool:
        status = self.known.get(dlq_id)
        if status is None:
            return True
        return not status.vanished and status.state in self.watch.open_states

    def _poll_ids(self, ids: tuple[str, ...]) -> PollPlan:
        open_ids = [i for i in ids if self._is_open(i)]
        seen: dict[str, EntryStatus] = {}
        if open_ids:
            in_progress = self._narrowed((IN_PROGRESS,), open_ids)
            every_in_progress = DLQFilters(failure_function_state=(IN_PROGRESS,))
            seen = yield from self._walk(in_progress or every_in_progress, open_ids, set(ids))
        moved = [i for i in ids if i not in seen and self._may_have_moved(i)]
        final_listing = self._narrowed(DEFAULT_TARGET_STATES, moved) if moved else None
        if final_listing is not None:
            seen.update((yield from self._walk(final_listing, moved, set(moved))))
        to_get = tuple(i for i in moved if i not in seen)
        if to_get:
            got: Mapping[str, DLQMessage | None] = yield self._call(GetCall(to_get))
            seen.update(
                (i, EntryStatus.of(m) if m is not None else EntryStatus.gone(i))
                for i, m in got.items()
            )
        self.known.update(seen)
        return decide(self.watch, {i: self.known[i] for i in ids})

    def _walk(
        self, filters: DLQFilters, wanted: list[str], keep: set[str]
    ) -> Generator[Call, Any, dict[str, EntryStatus]]:
        """List pages, keeping the entries in ``keep``, until the end, or until walking on
        would cost more pages than GETting the ``wanted`` ids not found yet."""
        found: dict[str, EntryStatus] = {}
        cursor: str | None = None
        pages = 0
        while True:
            page: DLQPage = yield self._call(ListCall(filters, cursor, LIST_PAGE))
            pages += 1
            found.update((m.dlq_id, EntryStatus.of(m)) for m in page.messages if m.dlq_id in keep)
            cursor = page.cursor
            if cursor is None or pages >= sum(1 for i in wanted if i not in found):
                return found

    def _may_have_moved(self, dlq_id: str) -> bool:
        """Unknown, or in progress when last seen; final states only move through a retry."""
        status = self.known.get(dlq_id)
        return status is None or (not status.vanished and status.state == IN_PROGRESS)

    def _narrowed(self, states: tuple[str, ...], dlq_ids: list[str]) -> DLQFilters | None:
        """Entries in ``states`` within the given entries' createdAt window (and workflow
        URLs), read from what earlier polls saw; None while any of them is still unknown."""
        known = [self.known.get(i) for i in dlq_ids]
        created = [s.created_at for s in known if s is not None and s.created_at is not None]
        if not created or len(created) < len(dlq_ids):
            return None
        window = DLQFilters(
            failure_function_state=states, from_date=min(created), to_date=max(created)
        )
        urls = {s.workflow_url for s in known if s is not None}
        if None in urls or len(urls) > MAX_NARROWING_URLS:
            return window
        try:
            return replace(window, workflow_url=tuple(sorted(u for u in urls if u)))
        except ValidationError:  # a URL the filter would refuse: the window alone still helps
            return window

    def _poll_filters(self, filters: DLQFilters) -> PollPlan:
        blocking = tuple(sorted(self.watch.open_states | self.watch.failure_states))
        page: DLQPage = yield self._call(
            ListCall(replace(filters, failure_function_state=blocking), None, 1)
        )
        if page.messages:
            first = EntryStatus.of(page.messages[0])
            if first.state not in self.watch.failure_states:
                return decide(self.watch, {first.dlq_id: first})
            failures = tuple(sorted(self.watch.failure_states))
            page = yield self._call(
                ListCall(replace(filters, failure_function_state=failures), None, MAX_NAMED)
            )
            found = {m.dlq_id: EntryStatus.of(m) for m in page.messages}
            return decide(self.watch, found or {first.dlq_id: first})
        return (yield from self._collect_results(filters))

    def _collect_results(self, filters: DLQFilters) -> PollPlan:
        """Nothing open any more: one walk over the entries in target states, for the result."""
        targets = replace(filters, failure_function_state=tuple(sorted(self.watch.target_states)))
        found: dict[str, EntryStatus] = {}
        cursor: str | None = None
        while len(found) < MAX_RESULT_ENTRIES:
            count = min(LIST_PAGE, MAX_RESULT_ENTRIES - len(found))
            page: DLQPage = yield self._call(ListCall(targets, cursor, count))
            found.update((m.dlq_id, EntryStatus.of(m)) for m in page.messages)
            cursor = page.cursor
            if cursor is None:
                break
        return decide(self.watch, found, truncated=cursor is not None)


# --- drivers -----------------------------------------------------------------------------------


def poll_sync(client: WorkflowDLQClient, watcher: CallbackWatcher) -> Verdict:
    """One poll with the blocking client (the sensor's poke)."""

    def make(call: Call) -> Answer:
        if isinstance(call, ListCall):
            return client.list_messages(call.filters, cursor=call.cursor, count=call.count)
        return {dlq_id: _get_sync(client, dlq_id) for dlq_id in call.dlq_ids}

    return drive_sync(watcher.poll(), make)


def _get_sync(client: WorkflowDLQClient, dlq_id: str) -> DLQMessage | None:
    try:
        return client.get_message(dlq_id)
    except NotFoundError:
        return None


async def poll_async(
    client: AsyncWorkflowDLQClient, watcher: CallbackWatcher, concurrency: int = GET_CONCURRENCY
) -> Verdict:
    """One poll with the async client (the trigger); GETs run ``concurrency`` at a time."""
    limit = asyncio.Semaphore(concurrency)

    async def get(dlq_id: str) -> DLQMessage | None:
        async with limit:
            try:
                return await client.get_message(dlq_id)
            except NotFoundError:
                return None

    async def make(call: Call) -> Answer:
        if isinstance(call, ListCall):
            return await client.list_messages(call.filters, cursor=call.cursor, count=call.count)
        # Every GET finishes (none is left running) before the first error is raised.
        got = await asyncio.gather(*(get(i) for i in call.dlq_ids), return_exceptions=True)
        messages: list[DLQMessage | None] = []
        for outcome in got:
            if isinstance(outcome, BaseException):
                raise outcome
            messages.append(outcome)
        return dict(zip(call.dlq_ids, messages, strict=True))

    return await drive_async(watcher.poll(), make)

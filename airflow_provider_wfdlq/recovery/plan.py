"""Step one of a redrive: list every entry the filters match, then order what was selected.

Listing has no side effects, so it can start over at no risk. What it assumes of the
server is as little as it can:

- **Order.** Upstash does not state the listing order, so the worklist is sorted oldest
  first across the whole selection (I5), whatever order the pages come in.
- **Cursors.** A cursor the server rejects (stale) starts the listing over, narrowed to
  what is left when the pages so far came in time order; starting over must find new
  entries within :data:`MAX_RESTARTS_WITHOUT_PROGRESS` tries in a row. A cursor seen twice
  would loop forever: the listing ends with :class:`ListingError` (I1).
- **Size.** At most ``max_entries`` entries are held; past that the walk refuses.

Only what acting and reporting need is kept per entry (:class:`Item`), so memory stays
flat-ish at 100k entries; bodies and headers are looked at while listing (selection) and
dropped.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Container, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any, Final

from airflow_provider_wfdlq.client import (
    BadRequestError,
    DLQFilters,
    DLQMessage,
    DLQPage,
    NotFoundError,
    WFDLQError,
    WorkflowDLQClient,
)
from airflow_provider_wfdlq.recovery.idset import IdSet

log = logging.getLogger("airflow_provider_wfdlq.recovery")

#: The list endpoint's largest page.
MAX_PAGE = 100
#: How often in a row starting over after a stale cursor may find nothing new.
MAX_RESTARTS_WITHOUT_PROGRESS = 3
#: How many pages in a row may bring no entry not seen before (a server going round).
MAX_PAGES_WITHOUT_PROGRESS = 20
#: The most entries one walk plans; a larger DLQ needs narrower filters or several runs.
DEFAULT_MAX_ENTRIES = 1_000_000
#: A window with both ends is listed as this many parts at once when listing ahead.
WINDOWS = 2
#: How much of a response body a dry run's table shows.
EXCERPT = 200


class ListingError(WFDLQError):
    """The DLQ listing cannot end (a repeated cursor, no progress) or is too large."""


class ListingStopped(Exception):
    """A stop was requested while listing; ``listing`` is what was listed until then."""

    def __init__(self, listing: Listing | None = None) -> None:
        super().__init__("stopped while listing")
        self.listing = listing


#: Separates the parts of :attr:`Item.text`.
SEP: Final = "\x1f"
#: Created-at ms are written with this many digits, so texts sort as times do.
_DIGITS: Final = 15


@dataclass(frozen=True, slots=True)
class Item:
    """One entry in the worklist: what acting on it and reporting it need, nothing more.

    Memory is the point: a night can plan 100k entries. The created-at, dlqId and failed
    run id share one text (``"<ms, 15 digits>\x1f<dlqId>\x1f<workflowRunId>"``), which also
    sorts oldest first as it is; what many entries share (workflow URL, status, callback
    state, labels) is one interned tuple."""

    text: str
    #: (workflow URL, response status, failure function state, labels, body excerpt)
    shape: tuple[Any, ...]

    @classmethod
    def of(cls, m: DLQMessage, excerpt: bool = False) -> Item:
        return cls.build(
            m.dlq_id,
            m.created_at,
            m.workflow_run_id,
            (
                m.workflow_url,
                m.response_status,
                m.failure_function_state,
                m.labels,
                (m.response_body or "")[:EXCERPT] if excerpt else None,
            ),
        )

    @classmethod
    def build(
        cls,
        dlq_id: str,
        created_at: int | None = None,
        workflow_run_id: str | None = None,
        shape: tuple[Any, ...] = (None, None, None, (), None),
    ) -> Item:
        at = "~" if created_at is None else str(created_at).zfill(_DIGITS)
        return cls(SEP.join((at, dlq_id, workflow_run_id or "")), shape)

    @property
    def dlq_id(self) -> str:
        return self.text.split(SEP, 2)[1]

    @property
    def created_at(self) -> int | None:
        at = self.text.split(SEP, 1)[0]
        return None if at == "~" else int(at)

    @property
    def workflow_run_id(self) -> str | None:
        return self.text.split(SEP, 2)[2] or None

    @property
    def workflow_url(self) -> str | None:
        return self.shape[0]  # type: ignore[no-any-return]

    @property
    def response_status(self) -> int | None:
        return self.shape[1]  # type: ignore[no-any-return]

    @property
    def failure_function_state(self) -> str | None:
        return self.shape[2]  # type: ignore[no-any-return]

    @property
    def labels(self) -> tuple[str, ...]:
        return self.shape[3]  # type: ignore[no-any-return]

    @property
    def excerpt(self) -> str | None:
        """The start of the failed step's response body: kept for a dry run's table only."""
        return self.shape[4]  # type: ignore[no-any-return]

    def record(self, event: str, **extra: object) -> dict[str, object]:
        """The report line for this entry."""
        at, dlq_id, run_id = self.text.split(SEP, 2)
        shape = self.shape
        return {
            "event": event,
            "dlq_id": dlq_id,
            "workflow_url": shape[0],
            "workflow_run_id": run_id or None,
            "created_at": None if at == "~" else int(at),
            "response_status": shape[1],
            "failure_function_state": shape[2],
            **extra,
        }


class Worklist:
    """The selected entries, oldest first, at about 120 bytes each (100k in ~12 MiB).

    Each entry is one text, its :class:`Item` text plus the number of its shape; Items are
    made as entries are taken, and a taken entry is let go. Sorting the texts sorts the
    entries by created-at, then dlqId (entries without a created-at last)."""

    def __init__(self) -> None:
        self._texts: list[str | None] = []
        self._shapes: list[tuple[Any, ...]] = []
        self._shape_ids: dict[tuple[Any, ...], int] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self._texts) - self._next

    def append(self, item: Item) -> None:
        shape_id = self._shape_ids.setdefault(item.shape, len(self._shapes))
        if shape_id == len(self._shapes):
            self._shapes.append(item.shape)
        self._texts.append(f"{item.text}{SEP}{shape_id}")

    def sort(self) -> Worklist:
        """What is left, oldest first, in place."""
        rest: list[str] = self._texts[self._next :]  # type: ignore[assignment]
        rest.sort()
        self._texts[self._next :] = rest
        return self

    def popleft(self) -> Item:
        text = self._texts[self._next]
        if text is None:
            raise IndexError("the worklist is empty")
        self._texts[self._next] = None  # let it go
        self._next += 1
        body, _, shape_id = text.rpartition(SEP)
        return Item(body, self._shapes[int(shape_id)])

    def take(self, n: int) -> list[Item]:
        return [self.popleft() for _ in range(min(n, len(self)))]

    def drain(self) -> list[Item]:
        return self.take(len(self))


@dataclass
class Listing:
    """What one listing saw: the selected worklist (oldest first) and its counts.

    ``listed`` counts the entries this listing decided on (selected, skipped, or, for named
    ids, vanished); ``already_sent`` those it dropped because the ledger has them."""

    items: Worklist
    listed: int = 0
    already_sent: int = 0
    #: Entries the ledger has that its pages showed (this task acted on them and they had
    #: not left), each once, whether or not an earlier pass saw them: how many, and an
    #: order-free digest of their ids (two listings that show the same ones agree on both).
    sent_shown: int = 0
    sent_digest: int = 0
    sent_seen: IdSet = field(default_factory=IdSet, repr=False)
    #: Every dlqId the listing saw (a second pass skips them).
    seen: IdSet = field(default_factory=IdSet)


#: Decides an entry: None to act on it, else the reason it is skipped.
Judge = Callable[[DLQMessage], "str | None"]
OnSkip = Callable[[DLQMessage, str], None]
OnVanished = Callable[[str], None]


class PlanBuilder:
    """Lists and selects; acts on nothing."""

    def __init__(
        self,
        client: WorkflowDLQClient,
        *,
        judge: Judge,
        on_skip: OnSkip,
        on_vanished: OnVanished,
        exclude: Container[str] = frozenset(),
        page_size: int = MAX_PAGE,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        keep_excerpt: bool = False,
        pace: Callable[[], None] = lambda: None,
        should_stop: Callable[[], bool] = lambda: False,
        on_page: Callable[[Worklist], None] = lambda items: None,
        prefetch: bool = False,
        lean: bool = True,
        while_waiting: Callable[[list[Future[Any]]], None] = lambda pages: None,
    ) -> None:
        self.client = client
        self.judge, self.on_skip, self.on_vanished = judge, on_skip, on_vanished
        self.exclude = exclude
        self.page_size = page_size
        self.max_entries = max_entries
        self.keep_excerpt = keep_excerpt
        self.pace = pace
        self.should_stop = should_stop
        #: Called after each page with the worklist so far (acting while listing).
        self.on_page = on_page
        self.prefetch = prefetch
        #: Called with the list calls out while they are (acting goes on meanwhile).
        self.while_waiting = while_waiting
        #: Decode only what judging and acting read (``list_messages(lean=True)``).
        self.lean = lean

    # -- named entries ----------------------------------------------------------------------

    def by_ids(self, dlq_ids: Iterable[str]) -> Listing:
        """Each named entry is read (selection needs its error); a missing one vanished."""
        listing = Listing(items=Worklist())
        for dlq_id in dict.fromkeys(dlq_ids):
            if dlq_id in self.exclude:
                listing.already_sent += 1
                continue
            self.pace()
            listing.listed += 1
            try:
                message = self.client.get_message(dlq_id)
            except NotFoundError:
                self.on_vanished(dlq_id)
                continue
            self._take(message, listing.items)
        listing.items.sort()
        return listing

    # -- filters ----------------------------------------------------------------------------

    def by_filters(self, filters: DLQFilters, seen: IdSet | None = None) -> Listing:
        """Every entry matching ``filters``, but those in ``seen`` (an earlier pass's).

        With ``prefetch``, each page's successor is asked for as soon as its cursor is
        known, while the page is judged (and acted on), and a window with both ends is
        listed as :data:`WINDOWS` halves at once (each its own cursor walk, with its own
        checks; an entry on the shared edge is seen twice and taken once)."""
        listing = Listing(items=Worklist(), seen=IdSet() if seen is None else seen)
        if self.prefetch:
            self._walk_ahead([_Cursors(w) for w in split(filters, WINDOWS)], listing)
        else:
            self._walk(_Cursors(filters), listing)
        listing.items.sort()
        return listing

    def _walk(self, walk: _Cursors, listing: Listing) -> None:
        """One page after the other."""
        while True:
            if self.should_stop():
                raise ListingStopped(listing)
            self.pace()
            try:
                page = self._page(walk.window, walk.cursor)
            except BadRequestError as exc:
                if walk.cursor is None:
                    raise
                walk.start_over(exc.error)  # a stale cursor
                continue
            fresh = self._judge_page(page, walk, listing)
            self.on_page(listing.items)
            if not walk.next(page.cursor or None, fresh):
                return

    def _walk_ahead(self, walks: list[_Cursors], listing: Listing) -> None:
        """Every walk at once, one list call ahead each; pages judged on this thread."""
        with ThreadPoolExecutor(max_workers=len(walks)) as ahead:

            def ask(walk: _Cursors, cursor: str | None) -> Future[DLQPage]:
                self.pace()
                return ahead.submit(self._page, walk.window, cursor)

            pending = {ask(walk, None): walk for walk in walks}
            while pending:
                if self.should_stop():
                    raise ListingStopped(listing)
                self.while_waiting(list(pending))
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in done:
                    walk = pending.pop(future)
                    try:
                        page = future.result()
                    except BadRequestError as exc:
                        if walk.cursor is None:
                            raise
                        walk.start_over(exc.error)  # a stale cursor
                        pending[ask(walk, None)] = walk
                        continue
                    if page.cursor and walk.is_new(page.cursor):
                        pending[ask(walk, page.cursor)] = walk
                    fresh = self._judge_page(page, walk, listing)
                    self.on_page(listing.items)
                    walk.next(page.cursor or None, fresh)

    def _page(self, window: DLQFilters, cursor: str | None) -> DLQPage:
        return self.client.list_messages(
            window, cursor=cursor, count=self.page_size, lean=self.lean
        )

    def _judge_page(self, page: DLQPage, walk: _Cursors, listing: Listing) -> int:
        """Take or skip each entry not seen before; how many were new."""
        fresh = 0
        for message in page.messages:
            walk.saw(message.created_at)
            sent = message.dlq_id in self.exclude
            if sent and listing.sent_seen.add(message.dlq_id):
                listing.sent_shown += 1
                listing.sent_digest ^= hash(message.dlq_id)
            if not listing.seen.add(message.dlq_id):
                continue
            fresh += 1
            if len(listing.seen) > self.max_entries:
                raise ListingError(
                    f"more than {self.max_entries} entries match; narrow the filters "
                    "(a shorter window) or raise max_entries"
                )
            if sent:
                listing.already_sent += 1
                continue
            listing.listed += 1
            self._take(message, listing.items)
        return fresh

    def _take(self, message: DLQMessage, chosen: Worklist) -> None:
        reason = self.judge(message)
        if reason is None:
            chosen.append(Item.of(message, self.keep_excerpt))
        else:
            self.on_skip(message, reason)


def split(filters: DLQFilters, parts: int) -> list[DLQFilters]:
    """``filters`` as ``parts`` windows of equal time (the date filters are inclusive, so
    neighbours share their edge millisecond); one window without both dates."""
    low, high = filters.from_date, filters.to_date
    if low is None or high is None or parts < 2 or high - low < parts:
        return [filters]
    edges = [low + (high - low) * k // parts for k in range(parts + 1)]
    return [replace(filters, from_date=a, to_date=b) for a, b in itertools.pairwise(edges)]


class _Cursors:
    """Where a listing is, and the checks that make it end (I1): a cursor seen twice, pages
    that bring nothing new, restarts after stale cursors that find nothing new."""

    def __init__(self, filters: DLQFilters) -> None:
        self.filters = self.window = filters
        self.cursor: str | None = None
        self._cursors: set[str] = set()
        self._low: int | None = None  # created-at range seen
        self._high: int | None = None
        self._direction = 0  # +1 oldest first, -1 newest first, 2 neither, 0 unknown
        self._last_at: int | None = None
        self._fruitless_restarts = self._fruitless_pages = self._new_since_restart = 0

    def saw(self, at: int | None) -> None:
        """An entry's created-at: which way the pages run, and the range seen so far."""
        if at is None:
            return
        if self._last_at is not None and at != self._last_at:
            step = 1 if at > self._last_at else -1
            self._direction = step if self._direction in (0, step) else 2
        self._last_at = at
        self._low = at if self._low is None else min(self._low, at)
        self._high = at if self._high is None else max(self._high, at)

    def is_new(self, cursor: str) -> bool:
        """A cursor not seen in this listing (one seen before ends it: :meth:`next`)."""
        return cursor not in self._cursors and cursor != self.cursor

    def next(self, cursor: str | None, fresh: int) -> bool:
        """Go on with ``cursor`` (False: the listing is complete)."""
        self._new_since_restart += fresh
        self._fruitless_pages = 0 if fresh else self._fruitless_pages + 1
        if self._fruitless_pages >= MAX_PAGES_WITHOUT_PROGRESS:
            raise ListingError(f"{MAX_PAGES_WITHOUT_PROGRESS} pages in a row brought no new entry")
        if cursor is None:
            return False
        if cursor in self._cursors or cursor == self.cursor:
            raise ListingError(
                f"the DLQ answered cursor {cursor!r} twice: the listing would never end"
            )
        self._cursors.add(cursor)
        self.cursor = cursor
        return True

    def start_over(self, why: str) -> None:
        """After a stale cursor: list again, past what was seen when the pages came in time
        order (the date filters are inclusive; entries seen again are dropped)."""
        progress = self._new_since_restart
        self._fruitless_restarts = 0 if progress else self._fruitless_restarts + 1
        if self._fruitless_restarts >= MAX_RESTARTS_WITHOUT_PROGRESS:
            raise ListingError(
                f"the DLQ rejected the cursor {MAX_RESTARTS_WITHOUT_PROGRESS} times in a row "
                f"and starting over found nothing new ({why})"
            )
        self._new_since_restart = 0
        filters, low, high = self.filters, self._low, self._high
        if self._direction == 1 and high is not None:
            self.window = replace(filters, from_date=max(high, filters.from_date or high))
        elif self._direction == -1 and low is not None:
            self.window = replace(filters, to_date=min(low, filters.to_date or low))
        log.warning(
            "The DLQ rejected the cursor (%s); listing again from %s.",
            why,
            "the start" if self.window is filters else "where it was",
        )
        self.cursor, self._cursors = None, set()

"""The rules that make a listing end and start over safely (plan.py `_Cursors`), and the
counts of a listing by named ids. Unit level: no server, no Airflow (the listings against
the dev server's readings are in test_redrive.py and test_invariants.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from airflow_provider_wfdlq.client import DLQFilters, DLQMessage, NotFoundError
from airflow_provider_wfdlq.recovery.idset import IdSet
from airflow_provider_wfdlq.recovery.plan import (
    MAX_PAGES_WITHOUT_PROGRESS,
    MAX_RESTARTS_WITHOUT_PROGRESS,
    ListingError,
    PlanBuilder,
    _Cursors,
)

T0 = 1_752_829_295_505


def cursors(**filters: Any) -> _Cursors:
    return _Cursors(DLQFilters.build(**filters))


def seen(c: _Cursors, *ats: int | None) -> _Cursors:
    for at in ats:
        c.saw(at)
    return c


# --- starting over after a stale cursor ------------------------------------------------------


def test_pages_oldest_first_start_over_past_the_newest_seen() -> None:
    c = seen(cursors(), T0, None, T0 + 5, T0 + 5, T0 + 9)
    c.next("c1", fresh=3)
    c.start_over("stale")
    assert c.window == replace(c.filters, from_date=T0 + 9)
    assert c.window.to_date is None
    assert c.cursor is None


def test_pages_newest_first_start_over_below_the_oldest_seen() -> None:
    c = seen(cursors(), T0 + 9, T0 + 5, None, T0)
    c.next("c1", fresh=3)
    c.start_over("stale")
    assert c.window == replace(c.filters, to_date=T0)
    assert c.window.from_date is None


def test_a_window_given_by_the_filters_only_narrows() -> None:
    up = seen(cursors(from_date=T0 + 20), T0 + 21, T0 + 30)
    up.next("c1", fresh=2)
    up.start_over("stale")
    assert up.window.from_date == T0 + 30
    later = seen(cursors(from_date=T0 + 40), T0 + 21, T0 + 30)  # (a server ignoring it)
    later.next("c1", fresh=2)
    later.start_over("stale")
    assert later.window.from_date == T0 + 40
    down = seen(cursors(to_date=T0 + 50), T0 + 30, T0 + 21)
    down.next("c1", fresh=2)
    down.start_over("stale")
    assert down.window.to_date == T0 + 21
    earlier = seen(cursors(to_date=T0 + 10), T0 + 30, T0 + 21)
    earlier.next("c1", fresh=2)
    earlier.start_over("stale")
    assert earlier.window.to_date == T0 + 10


@pytest.mark.parametrize(
    "ats",
    [
        (T0, T0 + 5, T0 + 3),  # up, then down: no order
        (T0 + 5, T0, T0 + 3),  # down, then up
        (T0, T0 + 5, T0 + 3, T0 + 9),
        (T0,),  # one entry: no direction
        (T0, T0),  # equal times: no direction
        (),
    ],
)
def test_pages_in_no_time_order_start_over_from_the_start(ats: tuple[int, ...]) -> None:
    c = seen(cursors(from_date=T0 - 100), *ats)
    c.next("c1", fresh=1)
    c.start_over("stale")
    assert c.window is c.filters


def test_after_starting_over_every_cursor_is_new_again() -> None:
    c = cursors()
    assert c.next("c1", fresh=1) is True
    assert c.next("c2", fresh=1) is True
    c.start_over("stale")
    assert c.cursor is None
    assert c.next("c1", fresh=1) is True
    assert c.next("c2", fresh=1) is True


def test_restarts_that_find_nothing_new_end_the_listing() -> None:
    c = seen(cursors(), T0, T0 + 1)
    c.next("c1", fresh=2)
    c.start_over("one")  # progress since the start: not fruitless
    for _ in range(MAX_RESTARTS_WITHOUT_PROGRESS - 1):
        c.next("c1", fresh=0)
        c.start_over("again")
    c.next("c1", fresh=0)
    with pytest.raises(ListingError, match="rejected the cursor"):
        c.start_over("again")


def test_a_restart_that_found_something_resets_the_count() -> None:
    c = cursors()
    for _ in range(MAX_RESTARTS_WITHOUT_PROGRESS * 3):
        c.next("c1", fresh=1)
        c.start_over("stale")  # each time something new came in: never an error


# --- ending ----------------------------------------------------------------------------------


def test_the_listing_ends_without_a_cursor() -> None:
    c = cursors()
    assert c.next(None, fresh=0) is False
    assert c.next("c1", fresh=0) is True
    assert c.cursor == "c1"


@pytest.mark.parametrize("again", ["c1", "c2"])
def test_a_cursor_seen_twice_ends_the_listing_with_an_error(again: str) -> None:
    c = cursors()
    c.next("c1", fresh=1)
    c.next("c2", fresh=1)
    with pytest.raises(ListingError, match="twice"):
        c.next(again, fresh=1)


def test_pages_that_bring_nothing_new_end_the_listing_with_an_error() -> None:
    c = cursors()
    for n in range(MAX_PAGES_WITHOUT_PROGRESS - 1):
        c.next(f"c{n}", fresh=0)
    c.next("fresh", fresh=1)  # one page with something new starts the count again
    for n in range(MAX_PAGES_WITHOUT_PROGRESS - 1):
        c.next(f"d{n}", fresh=0)
    with pytest.raises(ListingError, match="brought no new entry"):
        c.next("last", fresh=0)


# --- named ids -------------------------------------------------------------------------------


class ByIdClient:
    def __init__(self, *known: str) -> None:
        self.known = known
        self.asked: list[str] = []

    def get_message(self, dlq_id: str) -> DLQMessage:
        self.asked.append(dlq_id)
        if dlq_id not in self.known:
            raise NotFoundError(404, "not found", "GET", f"/v2/workflows/dlq/{dlq_id}")
        return DLQMessage(dlq_id=dlq_id, created_at=int(dlq_id.split("-")[0]))


def test_named_ids_are_read_once_each_and_counted() -> None:
    client = ByIdClient("3-0", "2-0", "6-0")
    vanished: list[str] = []
    skipped: list[str] = []
    paced: list[int] = []
    builder = PlanBuilder(
        client,  # type: ignore[arg-type]
        judge=lambda m: "status" if m.dlq_id == "6-0" else None,
        on_skip=lambda m, reason: skipped.append(m.dlq_id),
        on_vanished=vanished.append,
        exclude={"1-0", "5-0"},
        pace=lambda: paced.append(1),
    )
    listing = builder.by_ids(["1-0", "3-0", "1-0", "5-0", "2-0", "4-0", "3-0", "6-0"])
    assert listing.already_sent == 2  # 1-0 and 5-0, each once
    assert listing.listed == 4  # 3-0, 2-0, 4-0 (vanished), 6-0 (skipped)
    assert client.asked == ["3-0", "2-0", "4-0", "6-0"]
    assert len(paced) == 4
    assert vanished == ["4-0"]
    assert skipped == ["6-0"]
    assert [item.dlq_id for item in listing.items.drain()] == ["2-0", "3-0"]  # oldest first


# --- listing by filters ----------------------------------------------------------------------


class PagesClient:
    """Answers list calls from a script of pages; a cursor named "stale" is refused."""

    def __init__(self, *pages: tuple[list[str], str | None]) -> None:
        self.pages = list(pages)
        self.calls: list[tuple[DLQFilters, str | None, int | None]] = []

    def list_messages(
        self, filters: DLQFilters, *, cursor: str | None, count: int | None, lean: bool = False
    ) -> Any:
        from airflow_provider_wfdlq.client import BadRequestError, DLQPage

        assert lean  # the plan decodes only what judging and acting read
        self.calls.append((filters, cursor, count))
        if cursor == "stale":
            raise BadRequestError(400, "invalid cursor", "GET", "/v2/workflows/dlq")
        ids, next_cursor = self.pages.pop(0)
        messages = tuple(DLQMessage(dlq_id=i, created_at=T0 + int(i.split("-")[0])) for i in ids)
        return DLQPage(messages=messages, cursor=next_cursor)


def builder(client: Any, **kwargs: Any) -> PlanBuilder:
    kwargs.setdefault("judge", lambda m: None)
    return PlanBuilder(client, on_skip=lambda m, r: None, on_vanished=lambda i: None, **kwargs)


def test_a_listing_dedups_counts_and_starts_over_after_a_stale_cursor() -> None:
    client = PagesClient(
        (["1-0", "2-0"], "c1"),
        (["2-0", "3-0"], "stale"),  # the next call is refused: list again past 3
        (["3-0", "4-0", "5-0"], None),
    )
    listing = builder(client, exclude={"2-0", "5-0"}, page_size=7).by_filters(DLQFilters.build())
    assert [item.dlq_id for item in listing.items.drain()] == ["1-0", "3-0", "4-0"]
    assert (listing.listed, listing.already_sent) == (3, 2)
    assert [(c, n) for _, c, n in client.calls] == [
        (None, 7),
        ("c1", 7),
        ("stale", 7),
        (None, 7),
    ]
    assert client.calls[-1][0].from_date == T0 + 3  # past what was seen, oldest first


def test_a_refused_first_page_is_an_error_not_a_restart() -> None:
    from airflow_provider_wfdlq.client import BadRequestError

    class Refusing(PagesClient):
        def list_messages(self, filters: DLQFilters, **kwargs: Any) -> Any:
            raise BadRequestError(400, "bad filter", "GET", "/v2/workflows/dlq")

    with pytest.raises(BadRequestError):
        builder(Refusing()).by_filters(DLQFilters.build())


def test_pages_that_repeat_what_was_seen_end_the_listing() -> None:
    pages: list[tuple[list[str], str | None]] = (
        [(["1-0"], "c0")] + [(["1-0"], f"c{n}") for n in range(1, 40)] + [([], None)]
    )
    with pytest.raises(ListingError, match="brought no new entry"):
        builder(PagesClient(*pages)).by_filters(DLQFilters.build())


def test_max_entries_is_the_most_a_listing_takes() -> None:
    three = builder(PagesClient((["1-0", "2-0", "3-0"], None)), max_entries=3)
    assert three.by_filters(DLQFilters.build()).listed == 3
    four = builder(PagesClient((["1-0", "2-0", "3-0", "4-0"], None)), max_entries=3)
    with pytest.raises(ListingError, match="more than 3 entries"):
        four.by_filters(DLQFilters.build())


def test_a_stop_request_ends_the_listing_before_the_next_call() -> None:
    from airflow_provider_wfdlq.recovery.plan import ListingStopped

    client = PagesClient((["1-0"], "c1"), (["2-0"], None))
    calls = iter([False, True])
    with pytest.raises(ListingStopped):
        builder(client, should_stop=lambda: next(calls)).by_filters(DLQFilters.build())
    assert len(client.calls) == 1


def test_an_entry_already_sent_is_passed_over_not_the_rest_of_its_page() -> None:
    client = PagesClient((["1-0", "2-0", "3-0"], None))
    listing = builder(client, exclude={"1-0"}).by_filters(DLQFilters.build())
    assert [item.dlq_id for item in listing.items.drain()] == ["2-0", "3-0"]
    assert (listing.listed, listing.already_sent) == (2, 1)


def test_a_later_pass_names_the_entries_this_task_sent_that_it_still_saw() -> None:
    """An acted entry a pass still sees may leave while it pages (a server that removes
    late): the walk compares what two passes saw, ones an earlier pass saw included, each
    once however often a page shows it."""
    client = PagesClient((["1-0", "2-0", "3-0"], "c1"), (["3-0", "4-0"], None))
    seen = IdSet()
    seen.add("1-0")
    seen.add("3-0")
    listing = builder(client, exclude={"1-0", "2-0", "3-0"}).by_filters(DLQFilters.build(), seen)
    assert [item.dlq_id for item in listing.items.drain()] == ["4-0"]
    assert (listing.listed, listing.already_sent, listing.sent_shown) == (1, 1, 3)
    assert listing.sent_digest == hash("1-0") ^ hash("2-0") ^ hash("3-0")
    other = PagesClient((["3-0", "2-0", "4-0", "1-0"], None))  # the same ones, in another order
    again = builder(other, exclude={"1-0", "2-0", "3-0"}).by_filters(DLQFilters.build(), seen)
    assert (again.sent_shown, again.sent_digest) == (3, listing.sent_digest)
    quiet = builder(PagesClient((["5-0"], None)), exclude={"1-0"}).by_filters(DLQFilters.build())
    assert (quiet.listed, quiet.sent_shown, quiet.sent_digest) == (1, 0, 0)


def test_progress_since_a_restart_adds_up_over_its_pages() -> None:
    c = cursors()
    for n in range(MAX_RESTARTS_WITHOUT_PROGRESS + 1):
        c.next(f"a{n}", fresh=2)
        c.next(f"b{n}", fresh=0)  # the last page brought nothing, the restart did
        c.start_over("stale")


# --- items -----------------------------------------------------------------------------------


def test_an_item_keeps_what_acting_and_reporting_need() -> None:
    from airflow_provider_wfdlq.recovery.plan import EXCERPT, Item

    message = DLQMessage(
        dlq_id="7-0",
        created_at=T0,
        workflow_run_id="wfr_a",
        workflow_url="https://a.example.com/wf",
        response_status=503,
        labels=("team",),
        response_body="x" * (EXCERPT + 5),
    )
    item = Item.of(message)
    assert (item.dlq_id, item.created_at, item.workflow_run_id) == ("7-0", T0, "wfr_a")
    assert (item.workflow_url, item.response_status, item.labels) == (
        "https://a.example.com/wf",
        503,
        ("team",),
    )
    assert item.excerpt is None  # kept only when asked for (a dry run's table)
    assert Item.of(message, excerpt=True).excerpt == "x" * EXCERPT
    assert Item.of(replace(message, response_body=None), excerpt=True).excerpt == ""
    assert item.record("resumed", new_run="wfr_b") == {
        "event": "resumed",
        "dlq_id": "7-0",
        "workflow_url": "https://a.example.com/wf",
        "workflow_run_id": "wfr_a",
        "created_at": T0,
        "response_status": 503,
        "failure_function_state": None,
        "new_run": "wfr_b",
    }
    bare = Item.build("8-0")
    assert (bare.created_at, bare.workflow_run_id, bare.excerpt) == (None, None, None)
    assert Item.build("1-0", 5).text < Item.build("0-0", 10).text  # texts sort as times


def test_the_builder_keeps_excerpts_only_when_asked() -> None:
    client = PagesClient((["1-0"], None))
    plain = builder(client).by_filters(DLQFilters.build())
    assert plain.items.drain()[0].excerpt is None
    kept = builder(PagesClient((["1-0"], None)), keep_excerpt=True).by_filters(DLQFilters.build())
    assert kept.items.drain()[0].excerpt == ""


def test_a_drained_worklist_says_so() -> None:
    from airflow_provider_wfdlq.recovery.plan import Item, Worklist

    work = Worklist()
    work.append(Item.build("1-0", T0))
    assert work.popleft().dlq_id == "1-0"
    with pytest.raises(IndexError):
        work.popleft()


# --- listing ahead (pacing.in_flight > 1) ------------------------------------------------------


def test_a_second_pass_skips_what_the_first_saw() -> None:
    first = builder(PagesClient((["1-0", "2-0"], None))).by_filters(DLQFilters.build())
    client = PagesClient((["1-0", "2-0", "3-0"], None))
    again = builder(client).by_filters(DLQFilters.build(), seen=first.seen)
    assert [item.dlq_id for item in again.items.drain()] == ["3-0"]
    assert again.listed == 1
    assert again.seen is first.seen


@pytest.mark.parametrize("prefetch", [False, True])
def test_a_stopped_listing_hands_over_what_it_listed(prefetch: bool) -> None:
    from airflow_provider_wfdlq.recovery.plan import ListingStopped

    client = PagesClient((["1-0", "2-0"], "c1"), (["3-0"], None))
    calls = iter([False, True, True])
    with pytest.raises(ListingStopped) as stopped:
        builder(client, should_stop=lambda: next(calls), prefetch=prefetch).by_filters(
            DLQFilters.build()
        )
    assert stopped.value.listing is not None
    assert stopped.value.listing.listed == 2


@pytest.mark.parametrize("prefetch", [False, True])
def test_each_page_is_handed_to_on_page(prefetch: bool) -> None:
    sizes: list[int] = []
    client = PagesClient((["1-0", "2-0"], "c1"), (["3-0"], None))
    on_page = builder(client, on_page=lambda items: sizes.append(len(items)), prefetch=prefetch)
    on_page.by_filters(DLQFilters.build())
    assert sizes == [2, 3]


def test_listing_ahead_never_asks_for_a_cursor_it_has_seen() -> None:
    client = PagesClient((["1-0"], "a"), (["2-0"], "b"), (["3-0"], "a"), ([], None))
    with pytest.raises(ListingError, match="twice"):
        builder(client, prefetch=True).by_filters(DLQFilters.build())
    assert [cursor for _, cursor, _ in client.calls] == [None, "a", "b"]


def test_the_narrowest_window_that_splits_is_as_wide_as_its_parts() -> None:
    from airflow_provider_wfdlq.recovery.plan import split

    window = DLQFilters.build(from_date=T0, to_date=T0 + 2)
    assert [(w.from_date, w.to_date) for w in split(window, 2)] == [
        (T0, T0 + 1),
        (T0 + 1, T0 + 2),
    ]
    narrower = DLQFilters.build(from_date=T0, to_date=T0 + 1)
    assert split(narrower, 2) == [narrower]
    assert split(window, 1) == [window]

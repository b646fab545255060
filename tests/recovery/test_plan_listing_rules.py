"""The rules that make a listing end and start over safely (plan.py `_Cursors`), and the
counts of a listing by named ids. Unit level: no server, no Airflow (the listings against
the dev server's readings are in test_redrive.py and test_invariants.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from airflow_provider_wfdlq.client import DLQFilters, DLQMessage, NotFoundError
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

"""Read-only checks of the listing: its cursors, its order, and a get of one entry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from airflow_provider_wfdlq.client import (
    BadRequestError,
    DLQMessage,
    DLQPage,
    NotFoundError,
    UnexpectedAnswerError,
    WFDLQError,
)
from airflow_provider_wfdlq.doctor.report import DIFFERS, OK, UNKNOWN, Check
from airflow_provider_wfdlq.doctor.session import Session


@dataclass
class Walk:
    """The entries of the pages read, how many pages, and what their cursors did."""

    messages: list[DLQMessage]
    pages: int
    cursor: Check


class CursorWalk:
    """Follows a listing's cursors from its first page, up to ``pages`` pages in all."""

    def __init__(self, session: Session, page_size: int) -> None:
        self.session = session
        self.page_size = page_size
        self.messages: list[DLQMessage] = []
        #: The cursors sent, in order.
        self.sent: list[str] = []
        #: Pages read so far.
        self.read = 0

    def walk(self, first: DLQPage, pages: int) -> Walk:
        self.messages = list(first.messages)
        self.read = 1
        cursor: str | None = first.cursor
        while cursor is not None and self.read < pages:
            if cursor in self.sent:
                return self._ended(frozen_cursor(cursor, self.read))
            self.sent.append(cursor)
            try:
                page = self.session.client.list_messages(cursor=cursor, count=self.page_size)
            except BadRequestError as exc:
                return self._ended(self._refused(exc))
            self.read += 1
            self.messages.extend(page.messages)
            if page.cursor is not None and page.cursor == cursor:
                return self._ended(frozen_cursor(page.cursor, self.read))
            cursor = page.cursor
        return self._ended(self._verdict(cursor))

    def _ended(self, check: Check) -> Walk:
        return Walk(self.messages, self.read, check)

    def _refused(self, exc: BadRequestError) -> Check:
        return Check(
            "cursor",
            DIFFERS,
            f"the cursor of page {self.read} was refused on request {len(self.sent)} with a "
            f"cursor ({self.session.redact(exc.error)})",
            fix="harmless: the engine starts a listing over past what it saw when a "
            "cursor is refused (and fails only if 3 restarts in a row find nothing "
            "new); a smaller walk (a narrower from/to window) meets fewer",
            reading="stale_cursors",
        )

    def _verdict(self, cursor: str | None) -> Check:
        """The cursor check of a walk that ran to its end (or to ``pages``)."""
        if not self.sent and cursor is not None:
            seen = "not walked: one page was read (wfdlq-doctor walks several)"
            return Check("cursor", UNKNOWN, seen)
        if not self.sent:
            seen = (
                f"only one page ({len(self.messages)} entries at count={self.page_size}): "
                "no cursor to follow"
            )
            return Check("cursor", UNKNOWN, seen)
        ids = [m.dlq_id for m in self.messages]
        if len(set(ids)) != len(ids):
            return Check(
                "cursor",
                DIFFERS,
                f"the cursor advanced but {len(ids) - len(set(ids))} entries came twice "
                f"in {self.read} pages",
                fix="the engine dedupes by dlqId and stops a walk that makes no progress; "
                "nothing to set",
            )
        seen = (
            f"advanced on each of {len(self.sent)} cursor requests ({self.read} pages), "
            "none refused"
        )
        return Check("cursor", OK, seen)


def frozen_cursor(cursor: str, read: int) -> Check:
    return Check(
        "cursor",
        DIFFERS,
        f"the same cursor came back after page {read}: the listing does not advance",
        fix="the engine refuses to loop: its listing ends with ListingError and the task "
        "fails. Narrow the selection (filters from/to) so one page holds it, with "
        "pacing={'page_size': 100}",
        reading="frozen_cursor",
        matters=True,
    )


def order_check(messages: Sequence[DLQMessage], pages: int) -> Check:
    firsts = {m.dlq_id: m for m in reversed(messages)}  # a page seen twice counts once
    times = [m.created_at for m in messages if firsts[m.dlq_id] is m and m.created_at is not None]
    where = f"across {pages} pages ({len(times)} entries)" if pages > 1 else "within one page"
    if len(set(times)) < 2:
        return Check("list_order", UNKNOWN, f"too few distinct createdAt {where} to tell")
    if times == sorted(times):
        return Check("list_order", OK, f"oldest first {where}")
    harmless = "harmless: the engine lists everything and sorts it oldest first itself"
    if times == sorted(times, reverse=True):
        return Check(
            "list_order", DIFFERS, f"newest first {where}", harmless, reading="newest_first"
        )
    return Check("list_order", DIFFERS, f"in no createdAt order {where}", harmless)


def get_check(session: Session, messages: Sequence[DLQMessage]) -> Check:
    """A GET of the first entry listed parses and answers the same entry."""
    if not messages:
        return Check("get_entry", UNKNOWN, "the DLQ is empty: no entry to read")
    dlq_id = messages[0].dlq_id
    try:
        message = session.client.get_message(dlq_id)
    except NotFoundError:
        return Check("get_entry", UNKNOWN, f"{dlq_id} left the DLQ between list and get")
    except UnexpectedAnswerError as exc:
        return Check(
            "get_entry",
            DIFFERS,
            f"GET of {dlq_id} does not parse: {session.text(exc)}",
            fix="the engine reads entries back after acting; report this answer",
            matters=True,
        )
    except WFDLQError as exc:
        return Check("get_entry", UNKNOWN, f"GET of {dlq_id} failed: {session.text(exc)}")
    if message.dlq_id != dlq_id:
        return Check(
            "get_entry",
            DIFFERS,
            f"GET of {dlq_id} answered entry {message.dlq_id}",
            fix="the engine reads entries back by id; report this answer",
            matters=True,
        )
    return Check("get_entry", OK, f"GET /v2/workflows/dlq/{dlq_id} parses (same dlqId)")

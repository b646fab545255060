"""A set of ids at 8 bytes each, for the sets a 100k-entry night holds: the ids a listing
has seen, and the ledger of ids sent.

Python's own set of ids costs about 70 bytes an id (the str, or an int hash, plus the
table); this keeps 64-bit hashes in a sorted ``array``, with the newest in a small set
that is merged in now and then, and removals in another small set. A hash collision,
about 1 in 10^9 at 100k ids, can only make an id look present: an entry left for the next
run, never an entry acted on twice.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable
from heapq import merge


class IdSet:
    """Add, test, discard and count ids (strings); no iteration."""

    #: How many new hashes wait in a plain set before they are merged into the array.
    BUFFER = 16_384

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._sorted = array("q")
        self._recent: set[int] = set()
        self._gone: set[int] = set()
        self.update(ids)

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent) - len(self._gone)

    def __contains__(self, dlq_id: object) -> bool:
        key = hash(dlq_id)
        return key not in self._gone and (key in self._recent or self._in_sorted(key))

    def add(self, dlq_id: str) -> bool:
        """Add ``dlq_id``; True if it was not in the set."""
        key = hash(dlq_id)
        if key in self._gone:
            self._gone.discard(key)
            return True
        if key in self._recent or self._in_sorted(key):
            return False
        self._recent.add(key)
        if len(self._recent) >= self.BUFFER:
            self._sorted = array("q", merge(self._sorted, sorted(self._recent)))
            self._recent.clear()
        return True

    def update(self, ids: Iterable[str]) -> None:
        for dlq_id in ids:
            self.add(dlq_id)

    def discard(self, dlq_id: str) -> None:
        key = hash(dlq_id)
        if key in self._recent:
            self._recent.discard(key)
        elif self._in_sorted(key):
            self._gone.add(key)

    def _in_sorted(self, key: int) -> bool:
        at = bisect_left(self._sorted, key)
        return at < len(self._sorted) and self._sorted[at] == key

"""A sorted set of keys split into blocks, so that inserting, removing and resuming a walk
from a cursor are all ~O(sqrt n) instead of O(n) (a bulk resume of 100k entries deletes
every one of them, one page at a time)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from typing import Generic, TypeVar

# DLQ entries are ordered by (ms, seq) of their dlqId, runs by (createdAt, runId).
_K = TypeVar("_K", tuple[int, int], tuple[int, str])

_BLOCK = 512


class SortedKeys(Generic[_K]):
    """Ordered unique keys with bisect-based continuation (`after` / `before`)."""

    def __init__(self) -> None:
        self._blocks: list[list[_K]] = []
        self._maxes: list[_K] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def clear(self) -> None:
        self._blocks.clear()
        self._maxes.clear()
        self._size = 0

    def add(self, key: _K) -> None:
        if not self._blocks:
            self._blocks.append([key])
            self._maxes.append(key)
            self._size = 1
            return
        index = bisect_left(self._maxes, key)
        if index == len(self._maxes):
            index -= 1
        block = self._blocks[index]
        insort(block, key)
        self._maxes[index] = block[-1]
        self._size += 1
        if len(block) > 2 * _BLOCK:
            self._blocks[index : index + 1] = [block[:_BLOCK], block[_BLOCK:]]
            self._maxes[index : index + 1] = [block[_BLOCK - 1], block[-1]]

    def remove(self, key: _K) -> None:
        index = bisect_left(self._maxes, key)
        if index == len(self._maxes):
            raise KeyError(key)
        block = self._blocks[index]
        position = bisect_left(block, key)
        if position == len(block) or block[position] != key:
            raise KeyError(key)
        del block[position]
        self._size -= 1
        if block:
            self._maxes[index] = block[-1]
        else:
            del self._blocks[index]
            del self._maxes[index]

    def after(self, key: _K | None) -> Iterator[_K]:
        """Keys strictly greater than `key` (all keys when None), ascending."""
        if key is None:
            index, position = 0, 0
        else:
            index = bisect_right(self._maxes, key)
            if index == len(self._maxes):
                return
            position = bisect_right(self._blocks[index], key)
        for block_index in range(index, len(self._blocks)):
            block = self._blocks[block_index]
            start = position if block_index == index else 0
            yield from block[start:]

    def before(self, key: _K | None) -> Iterator[_K]:
        """Keys strictly smaller than `key` (all keys when None), descending."""
        if not self._blocks:
            return
        if key is None:
            index, position = len(self._blocks) - 1, len(self._blocks[-1])
        else:
            index = bisect_left(self._maxes, key)
            if index == len(self._maxes):
                index, position = len(self._blocks) - 1, len(self._blocks[-1])
            else:
                position = bisect_left(self._blocks[index], key)
        for block_index in range(index, -1, -1):
            block = self._blocks[block_index]
            end = position if block_index == index else len(block)
            yield from reversed(block[:end])

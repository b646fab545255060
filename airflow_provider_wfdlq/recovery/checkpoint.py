"""Durable per-task state: where a redrive is, and the ledger of every id it ever sent.

Both live in a key-value store that survives task retries: Airflow's ``task_state_store``
in a task (3.3+), a :class:`MemoryStore` in tests and outside Airflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

from airflow_provider_wfdlq.recovery.idset import IdSet

CHECKPOINT_KEY = "wfdlq_redrive"
LEDGER_KEY = "wfdlq_ledger"
CHECKPOINT_VERSION = 2


class StateStore(Protocol):
    """What ``task_state_store`` offers: JSON values by key."""

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...


class MemoryStore:
    """A store that lives as long as the object: tests, and runs without Airflow."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.writes = 0

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, key: str, value: Any) -> None:
        # Strict JSON in, as task_state_store takes: a tuple or a set fails here too.
        self.data[key] = json.loads(json.dumps(value))
        self.writes += 1

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


class Checkpoint:
    """The walk's position and report so far, one JSON value."""

    def __init__(self, store: StateStore, key: str = CHECKPOINT_KEY) -> None:
        self._store, self._key = store, key

    def load(self) -> dict[str, Any] | None:
        value = self._store.get(self._key)
        if isinstance(value, dict) and value.get("version") == CHECKPOINT_VERSION:
            return dict(value)
        return None

    def save(self, state: dict[str, Any]) -> None:
        self._store.set(self._key, {"version": CHECKPOINT_VERSION, **state})

    def clear(self) -> None:
        self._store.delete(self._key)
        for part in self.PARTS:
            self._store.delete(f"{self._key}.{part}")

    #: Parts of the checkpoint kept under keys of their own (written less often).
    PARTS = ("runs",)

    def load_part(self, part: str) -> dict[str, Any] | None:
        value = self._store.get(f"{self._key}.{part}")
        return dict(value) if isinstance(value, dict) else None

    def save_part(self, part: str, value: dict[str, Any]) -> None:
        self._store.set(f"{self._key}.{part}", value)


class Ledger:
    """Every id this task named in an action call, across all its tries (I2).

    Written before the call goes out, one chunk per call, so a worker that dies mid-call
    leaves the ids it may have acted on in the ledger. No id in the ledger is ever sent
    again, whatever the DLQ shows; the only way out is :meth:`release`, for ids named in
    a call the server answered with a refusal (it acted on nothing).

    Chunks keep each write small (no rewrite of a growing list per call); the head key
    holds the chunk count, written after the chunk, so a chunk whose head write was lost
    was never sent.
    """

    def __init__(self, store: StateStore, key: str = LEDGER_KEY) -> None:
        self._store, self._key = store, key
        head = store.get(key)
        self.chunks = int(head.get("chunks", 0)) if isinstance(head, dict) else 0
        self._sent = IdSet()  # 8 bytes an id: a night can send 100k
        for n in range(self.chunks):
            self._apply(store.get(f"{key}.{n}") or {})

    def _apply(self, chunk: dict[str, Any]) -> None:
        for dlq_id in chunk.get("ids", []):
            if chunk.get("released"):
                self._sent.discard(str(dlq_id))
            else:
                self._sent.add(str(dlq_id))

    def __contains__(self, dlq_id: object) -> bool:
        return dlq_id in self._sent

    def __len__(self) -> int:
        return len(self._sent)

    def record(self, ids: Iterable[str]) -> int:
        """Note ``ids`` as sent (before sending); returns the chunk number."""
        chunk = list(ids)
        self._write({"ids": chunk})
        self._sent.update(chunk)
        return self.chunks - 1

    def release(self, ids: Iterable[str]) -> None:
        """The server refused the call that named ``ids``: it acted on none of them."""
        chunk = list(ids)
        self._write({"ids": chunk, "released": True})
        for dlq_id in chunk:
            self._sent.discard(dlq_id)

    def sent_since(self, chunk: int) -> list[str]:
        """The ids recorded in chunks ``chunk`` and later and not released since (a dead
        try's calls in flight), read back from the store."""
        ids: dict[str, None] = {}
        for n in range(chunk, self.chunks):
            value = self._store.get(f"{self._key}.{n}") or {}
            for dlq_id in value.get("ids", []):
                if value.get("released"):
                    ids.pop(str(dlq_id), None)
                else:
                    ids[str(dlq_id)] = None
        return [i for i in ids if i in self]

    def _write(self, value: dict[str, Any]) -> None:
        self._store.set(f"{self._key}.{self.chunks}", value)
        self.chunks += 1
        self._store.set(self._key, {"chunks": self.chunks})

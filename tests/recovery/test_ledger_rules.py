"""The ledger of every id a task sent (I2) and the checkpoint, against a store: what is
written, in which order, and what a later try reads back. Unit level: no server, no
Airflow (the walks that rely on them are in test_redrive.py and test_invariants.py)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_wfdlq.recovery.checkpoint import (
    CHECKPOINT_KEY,
    CHECKPOINT_VERSION,
    LEDGER_KEY,
    Checkpoint,
    Ledger,
    MemoryStore,
)


class RecordingStore(MemoryStore):
    """A MemoryStore that also remembers the order of the writes."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []

    def set(self, key: str, value: Any) -> None:
        super().set(key, value)
        self.order.append(key)


def test_the_keys_and_the_version() -> None:
    assert (CHECKPOINT_KEY, LEDGER_KEY, CHECKPOINT_VERSION) == ("wfdlq_redrive", "wfdlq_ledger", 2)


def test_a_chunk_is_written_before_the_head_that_counts_it() -> None:
    store = RecordingStore()
    ledger = Ledger(store)
    assert ledger.record(["1-0", "2-0"]) == 0
    assert ledger.record(iter(["3-0"])) == 1
    assert store.order == ["wfdlq_ledger.0", "wfdlq_ledger", "wfdlq_ledger.1", "wfdlq_ledger"]
    assert store.data == {
        "wfdlq_ledger.0": {"ids": ["1-0", "2-0"]},
        "wfdlq_ledger.1": {"ids": ["3-0"]},
        "wfdlq_ledger": {"chunks": 2},
    }
    assert store.writes == 4
    assert ("1-0" in ledger, "3-0" in ledger, "4-0" in ledger, len(ledger)) == (
        True,
        True,
        False,
        3,
    )


def test_a_later_try_reads_every_chunk_back_and_releases_count() -> None:
    store = MemoryStore()
    first = Ledger(store, key="k")
    first.record(["1-0", "2-0"])
    first.release(["2-0"])  # refused: it acted on none
    first.record(["3-0", "2-0"])
    first.release(["3-0"])
    again = Ledger(store, key="k")
    assert again.chunks == 4
    assert sorted(i for i in ("1-0", "2-0", "3-0") if i in again) == ["1-0", "2-0"]
    assert len(again) == 2
    assert store.get("k.1") == {"ids": ["2-0"], "released": True}


def test_a_chunk_whose_head_write_was_lost_was_never_sent() -> None:
    store = MemoryStore()
    Ledger(store).record(["1-0"])
    store.set("wfdlq_ledger.1", {"ids": ["2-0"]})  # written, then the worker died
    ledger = Ledger(store)
    assert ("1-0" in ledger, "2-0" in ledger, ledger.chunks) == (True, False, 1)
    assert ledger.record(["3-0"]) == 1  # overwrites the orphan chunk
    assert store.get("wfdlq_ledger.1") == {"ids": ["3-0"]}


def test_a_missing_or_odd_head_is_an_empty_ledger() -> None:
    heads: tuple[Any, ...] = (None, [], "3", {"chunks": "2"})
    for head in heads:
        store = MemoryStore()
        store.data["wfdlq_ledger"] = head
        store.data["wfdlq_ledger.0"] = {"ids": ["1-0"]}
        ledger = Ledger(store)
        expected = 2 if isinstance(head, dict) else 0
        assert ledger.chunks == expected
        assert ("1-0" in ledger) is (expected > 0)


def test_sent_since_names_the_ids_of_the_calls_in_flight() -> None:
    store = MemoryStore()
    ledger = Ledger(store)
    ledger.record(["1-0"])
    ledger.record(["2-0", "3-0", "4-0"])
    ledger.release(["3-0"])
    ledger.record(["5-0", "2-0"])
    assert ledger.sent_since(0) == ["1-0", "2-0", "4-0", "5-0"]
    assert ledger.sent_since(1) == ["2-0", "4-0", "5-0"]
    assert ledger.sent_since(3) == ["5-0", "2-0"]
    assert ledger.sent_since(4) == []
    store.delete("wfdlq_ledger.3")  # a chunk the store lost reads as empty
    assert ledger.sent_since(3) == []


def test_the_checkpoint_round_trips_with_its_version() -> None:
    store = RecordingStore()
    checkpoint = Checkpoint(store)
    assert checkpoint.load() is None
    checkpoint.save({"cursor": "c1", "done": False})
    assert store.get("wfdlq_redrive") == {"version": 2, "cursor": "c1", "done": False}
    loaded = checkpoint.load()
    assert loaded == {"version": 2, "cursor": "c1", "done": False}
    assert loaded is not store.get("wfdlq_redrive")  # a copy
    checkpoint.save_part("runs", {"a": 1})
    assert store.get("wfdlq_redrive.runs") == {"a": 1}
    assert checkpoint.load_part("runs") == {"a": 1}
    assert checkpoint.load_part("other") is None
    checkpoint.clear()
    assert store.data == {}


@pytest.mark.parametrize("stored", [{"version": 1, "cursor": "c"}, {"cursor": "c"}, ["x"], "x"])
def test_a_checkpoint_of_another_version_or_shape_is_ignored(stored: Any) -> None:
    store = MemoryStore()
    store.data["mine"] = stored
    store.data["mine.runs"] = ["not", "a", "mapping"]
    checkpoint = Checkpoint(store, key="mine")
    assert checkpoint.load() is None
    assert checkpoint.load_part("runs") is None


def test_the_memory_store_takes_strict_json_only() -> None:
    store = MemoryStore()
    store.set("k", {"a": [1, 2]})
    assert store.get("k") == {"a": [1, 2]}
    with pytest.raises(TypeError):
        store.set("k", {"a": {1, 2}})
    store.delete("k")
    store.delete("never")
    assert store.get("k") is None


def test_a_release_frees_the_ids_at_once_and_keeps_the_order_of_later_sends() -> None:
    store = MemoryStore()
    ledger = Ledger(store)
    ledger.record(["A"])  # chunk 0
    ledger.record(["B"])  # chunk 1
    ledger.release(["A"])  # chunk 2: refused, so A is free again
    assert "A" not in ledger
    assert "B" in ledger
    ledger.record(["A"])  # chunk 3: sent again, after B
    assert ledger.sent_since(0) == ["B", "A"]
    assert ledger.sent_since(1) == ["B", "A"]  # releasing an id not seen since is no error
    assert ledger.sent_since(2) == ["A"]


def test_a_head_without_a_count_is_an_empty_ledger() -> None:
    store = MemoryStore()
    store.data["wfdlq_ledger"] = {}
    store.data["wfdlq_ledger.0"] = {"ids": ["1-0"]}
    ledger = Ledger(store)
    assert (ledger.chunks, "1-0" in ledger) == (0, False)

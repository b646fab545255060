"""IdSet behaves as a set of ids (against Python's set), across merges of its buffer."""

from __future__ import annotations

import random

import pytest

from airflow_provider_wfdlq.recovery.idset import IdSet


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_idset_agrees_with_a_set(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    monkeypatch.setattr(IdSet, "BUFFER", 7)  # merge often
    rng = random.Random(seed)
    ids, model = IdSet(), set()
    for _ in range(3000):
        dlq_id = f"{rng.randrange(400)}-0"
        if rng.random() < 0.7:
            assert ids.add(dlq_id) == (dlq_id not in model)
            model.add(dlq_id)
        else:
            ids.discard(dlq_id)
            model.discard(dlq_id)
        assert len(ids) == len(model)
    assert all((f"{n}-0" in ids) == (f"{n}-0" in model) for n in range(400))


def test_idset_holds_100k_ids_in_under_a_mebibyte() -> None:
    import tracemalloc

    tracemalloc.start()
    ids = IdSet(f"1795600000{n:06d}-0" for n in range(100_000))
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(ids) == 100_000
    assert size < 2**20

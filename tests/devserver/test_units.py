"""Pure pieces without HTTP: the sorted key index, override parsing, fault specs, config."""

from __future__ import annotations

import random

import pytest

from airflow_provider_wfdlq.devserver.errors import ApiError
from airflow_provider_wfdlq.devserver.faults import parse_fault_spec
from airflow_provider_wfdlq.devserver.overrides import parse_duration_seconds, parse_overrides
from airflow_provider_wfdlq.devserver.sorted_keys import SortedKeys
from airflow_provider_wfdlq.devserver.world import World, WorldConfig


def test_sorted_keys_behave_like_a_sorted_set() -> None:
    rng = random.Random(3)
    keys: SortedKeys[tuple[int, int]] = SortedKeys()
    reference: set[tuple[int, int]] = set()
    for _ in range(5000):
        key = (rng.randrange(3000), rng.randrange(3))
        if key in reference and rng.random() < 0.5:
            keys.remove(key)
            reference.discard(key)
        elif key not in reference:
            keys.add(key)
            reference.add(key)
    ordered = sorted(reference)
    assert list(keys.after(None)) == ordered
    assert len(keys) == len(ordered)
    pivot = ordered[len(ordered) // 2]
    assert list(keys.after(pivot)) == [k for k in ordered if k > pivot]
    assert list(keys.before(pivot)) == [k for k in reversed(ordered) if k < pivot]
    assert list(keys.after((-1, 0))) == ordered
    assert list(keys.after((10**9, 0))) == []
    with pytest.raises(KeyError):
        keys.remove((10**9, 0))


@pytest.mark.parametrize(
    ("text", "seconds"), [("10s", 10), ("5m", 300), ("1d10h30m", 124200), ("2h", 7200)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "5x", "m", "1s1d"])
def test_bad_durations(text: str) -> None:
    assert parse_duration_seconds(text) is None


def test_overrides_are_case_insensitive_enough_and_recorded() -> None:
    overrides = parse_overrides({"Upstash-Retries": "4", "Upstash-Retry-Delay": "1000"})
    assert overrides.retries == 4
    assert overrides.recorded == {"Upstash-Retries": "4", "Upstash-Retry-Delay": "1000"}
    with pytest.raises(ApiError):
        parse_overrides({"Upstash-Flow-Control-Key": " "})


def test_fault_spec_parsing() -> None:
    rule = parse_fault_spec("drop:times=2:method=post:path=/v2/workflows/dlq/resume")
    assert (rule.fault, rule.times, rule.method, rule.path_prefix) == (
        "drop",
        2,
        "POST",
        "/v2/workflows/dlq/resume",
    )
    assert parse_fault_spec("503:ratio=0.1").ratio == 0.1
    assert parse_fault_spec("latency:ratio=1:latency=20").latency_ms == 20
    for bad in ["nope", "503:ratio", "503:speed=1"]:
        with pytest.raises(ValueError, match=r"\w"):
            parse_fault_spec(bad)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="page_cap"):
        WorldConfig().updated({"page_cap": 0})
    with pytest.raises(ValueError, match="unknown config key"):
        WorldConfig().updated({"pagecap": 3})
    with pytest.raises(ValueError, match="callback_outcome"):
        WorldConfig().updated({"callback_outcome": "CALLBACK_INPROGRESS"})


def test_same_seed_and_anchor_give_identical_worlds() -> None:
    first = World(seed=9, entries=40, anchor_ms=1_752_829_295_505)
    second = World(seed=9, entries=40, anchor_ms=1_752_829_295_505)
    assert first.all_entries() == second.all_entries()
    assert first.all_entries() != World(seed=10, entries=40, anchor_ms=1).all_entries()

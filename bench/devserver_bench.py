"""Benchmark: a full-paging bulk resume against the dev server, with plain httpx.

Starts a DevServer with N seeded entries (default 10,000, page cap 50), walks
`POST /v2/workflows/dlq/resume` cursor by cursor to the end, and reports wall time,
request count, per-request latency and the server's memory. A baseline in the same run
sends the same number of cheap requests (`GET /v2/workflows/dlq?count=1`) through the
same stack (auth, request log, fault check), so the ratio shows what bulk resume costs
on top of plain HTTP round trips.

    .venv/bin/python bench/devserver_bench.py [--entries 10000] [--page-cap 50]
"""

from __future__ import annotations

import argparse
import gc
import os
import time
import tracemalloc
from collections import Counter
from typing import Any

import httpx

from airflow_provider_wfdlq.devserver import DevServer
from airflow_provider_wfdlq.devserver.world import World

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE / 2**20


def full_bulk_resume(client: httpx.Client) -> tuple[int, int]:
    """Returns (requests, runs started)."""
    requests = runs = 0
    cursor = ""
    while True:
        params = {"cursor": cursor} if cursor else None
        response = client.post("/v2/workflows/dlq/resume", params=params)
        response.raise_for_status()
        page: dict[str, Any] = response.json()
        requests += 1
        runs += len(page["workflowRuns"])
        cursor = page.get("cursor") or ""
        if not cursor:
            return requests, runs


def baseline(client: httpx.Client, requests: int) -> None:
    for _ in range(requests):
        client.get("/v2/workflows/dlq", params={"count": 1}).raise_for_status()


def traced_world_bytes(entries: int) -> int:
    """Python heap held by a seeded world alone (tracemalloc, outside the timed part)."""
    gc.collect()
    tracemalloc.start()
    world = World(entries=entries, seed=42)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del world
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--page-cap", type=int, default=50)
    args = parser.parse_args()

    gc.collect()
    rss_before = rss_mib()
    started = time.perf_counter()
    server = DevServer(entries=args.entries, page_cap=args.page_cap, seed=42).start()
    startup_s = time.perf_counter() - started
    rss_seeded = rss_mib()
    try:
        server.control.freeze_time()  # no run finishes mid-walk: the walk sees N entries
        headers = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            client.get("/v2/workflows/dlq", params={"count": 1})  # warm the connection

            started = time.perf_counter()
            requests, runs = full_bulk_resume(client)
            walk_s = time.perf_counter() - started
            rss_walked = rss_mib()

            started = time.perf_counter()
            baseline(client, requests)
            baseline_s = time.perf_counter() - started

        resumed = Counter(a["dlqId"] for a in server.control.actions() if a["action"] == "resume")
        assert runs == args.entries == len(resumed), (runs, len(resumed))
        assert set(resumed.values()) == {1}, "an entry was resumed twice"
        assert server.control.entries() == []
    finally:
        server.stop()
    seeded_bytes = traced_world_bytes(args.entries)

    print(f"dev server bulk-resume benchmark: {args.entries} entries, page cap {args.page_cap}")
    print(f"  server start (incl. seeding)   {startup_s * 1000:9.1f} ms")
    print(f"  full bulk resume               {walk_s * 1000:9.1f} ms  ({requests} requests)")
    print(f"    per request                  {walk_s / requests * 1000:9.2f} ms")
    print(f"    entries resumed per second   {runs / walk_s:9.0f}")
    print(f"  baseline GET ?count=1 x {requests:<6} {baseline_s * 1000:9.1f} ms")
    print(f"    per request                  {baseline_s / requests * 1000:9.2f} ms")
    print(f"  ratio bulk resume / baseline   {walk_s / baseline_s:9.2f} x")
    print(f"  memory: seeded world (traced)  {seeded_bytes / 2**20:9.1f} MiB")
    print(f"  memory: RSS after seeding      {rss_seeded - rss_before:+9.1f} MiB")
    print(f"  memory: RSS after the walk     {rss_walked - rss_before:+9.1f} MiB")
    print("  every entry resumed exactly once (checked against the action log)")


if __name__ == "__main__":
    main()

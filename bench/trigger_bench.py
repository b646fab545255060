"""Benchmark: one failure-callback trigger watching 1,000 DLQ entries, against the dev server.

The dev server runs in a SUBPROCESS, so the CPU time and memory printed are the watcher's
own. Its clock is frozen and moved one simulated second per poll cycle; the watched
entries' callbacks finish in ten waves of 100 (plus the seeded DLQ's own in-progress
entries as background). Two strategies poll the same kind of world in the same run:

* ``watcher``: the provider's CallbackWatcher (what the trigger and the sensor run): a
  narrowed listing of in-progress entries per poll, and one of the ones that just finished;
* ``naive``: one GET per watched id per poll, 16 at a time, the obvious baseline.

Then the real DLQFailureCallbackTrigger runs end to end in one event loop.

    .venv/bin/python bench/trigger_bench.py [--entries 1000] [--settle-after 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from airflow_provider_wfdlq.client import AsyncWorkflowDLQClient, RetryPolicy
from airflow_provider_wfdlq.devserver.control_client import DevServerControl
from airflow_provider_wfdlq.devserver.seed import callback_info
from airflow_provider_wfdlq.devserver.state import DEV_TOKEN
from airflow_provider_wfdlq.recovery.callbacks import CallbackWatch, CallbackWatcher, poll_async

IN_PROGRESS = "CALLBACK_INPROGRESS"
WAVES = 10
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE / 2**20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, callback_seconds: float) -> subprocess.Popen[bytes]:
    cli = Path(sys.executable).parent / "wfdlq-devserver"
    args = [str(cli), "--port", str(port), "--callback-seconds", str(callback_seconds)]
    process = subprocess.Popen([*args, "--log-level", "warning"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/__dev/health", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the dev server did not start")


def seed_world(control: DevServerControl, entries: int) -> list[str]:
    """Fresh world, frozen clock; entries whose callbacks finish in WAVES waves, 1 s apart."""
    control.reset()
    control.freeze_time()
    ids: list[str] = []
    per_wave = max(1, entries // WAVES)
    for wave in range(WAVES):
        count = per_wave if wave < WAVES - 1 else entries - per_wave * (WAVES - 1)
        created = control.seed_entries(
            count,
            failureCallback="https://app.example.com/api/workflow/failure",
            failureCallbackInfo=callback_info(IN_PROGRESS),
        )
        ids.extend(entry["dlqId"] for entry in created)
        control.advance_time(1)
    return ids


@dataclass
class Run:
    name: str
    requests: list[int] = field(default_factory=list)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    peak_traced_mib: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.requests)

    def line(self) -> str:
        cycles = len(self.requests)
        return (
            f"{self.name:8} cycles {cycles:3}  requests total {self.total:6}  "
            f"per cycle mean {self.total / cycles:7.1f} "
            f"median {statistics.median(self.requests):6.1f} "
            f"max {max(self.requests):5}  CPU {self.cpu_seconds:6.3f} s "
            f"({1000 * self.cpu_seconds / cycles:6.1f} ms/cycle)  "
            f"peak traced {self.peak_traced_mib:5.2f} MiB"
        )


async def measure(
    name: str,
    control: DevServerControl,
    poll_once: Callable[[], Awaitable[bool]],
    traced: bool = False,
) -> Run:
    """Poll, count the server's requests, move the clock a second, until the wait is over.

    ``traced`` measures the peak Python heap instead (tracemalloc slows everything down, so
    CPU time comes from an untraced run).
    """
    run = Run(name)
    if traced:
        tracemalloc.start()
    started = time.monotonic()
    while True:
        control.clear_requests()
        cpu = time.process_time()
        done = await poll_once()
        run.cpu_seconds += time.process_time() - cpu
        run.requests.append(len(control.requests()))
        if done:
            break
        control.advance_time(1)
    run.wall_seconds = time.monotonic() - started
    if traced:
        run.peak_traced_mib = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return run


async def naive_poll(client: AsyncWorkflowDLQClient, ids: list[str]) -> bool:
    limit = asyncio.Semaphore(16)

    async def state(dlq_id: str) -> str | None:
        async with limit:
            return (await client.get_message(dlq_id)).failure_function_state

    states = await asyncio.gather(*(state(i) for i in ids))
    return IN_PROGRESS not in states


async def compare(url: str, control: DevServerControl, entries: int) -> tuple[Run, Run]:
    """Each strategy twice on a fresh world: timed, then traced for its peak heap."""
    policy = RetryPolicy(backoff_base=0.0)
    runs: dict[str, Run] = {}
    async with AsyncWorkflowDLQClient(DEV_TOKEN, url, retry=policy) as client:
        for traced in (False, True):
            ids = seed_world(control, entries)
            watcher = CallbackWatcher(CallbackWatch.build(dlq_ids=ids))

            async def watcher_poll(watcher: CallbackWatcher = watcher) -> bool:
                return (await poll_async(client, watcher)).done

            ours = await measure("watcher", control, watcher_poll, traced)
            ids = seed_world(control, entries)
            naive = await measure("naive", control, partial(naive_poll, client, ids), traced)
            for run in (ours, naive):
                if traced:
                    runs[run.name].peak_traced_mib = run.peak_traced_mib
                else:
                    runs[run.name] = run
    return runs["watcher"], runs["naive"]


async def end_to_end(url: str, control: DevServerControl, entries: int) -> None:
    """The real trigger in one event loop; the clock moves 1 s per 50 ms of real time."""
    os.environ["AIRFLOW_CONN_QSTASH_DEFAULT"] = json.dumps(
        {"conn_type": "qstash", "host": url, "password": DEV_TOKEN}
    )
    from airflow_provider_wfdlq.triggers.dlq import DLQFailureCallbackTrigger

    ids = seed_world(control, entries)
    watch = CallbackWatch.build(dlq_ids=ids).to_json()
    trigger = DLQFailureCallbackTrigger(watch=watch, poll_interval=0.05, deadline=time.time() + 60)
    control.clear_requests()

    async def move_clock() -> None:  # a thread: the control client is blocking
        while True:
            await asyncio.sleep(0.05)
            await asyncio.to_thread(control.advance_time, 1)

    clock = asyncio.create_task(move_clock())
    cpu, started = time.process_time(), time.monotonic()
    event = await anext(trigger.run())
    cpu, wall = time.process_time() - cpu, time.monotonic() - started
    clock.cancel()
    payload: dict[str, Any] = event.payload
    print(
        f"trigger  end to end: {payload['status']} for {len(payload['results'])} entries in "
        f"{wall:.2f} s wall, {cpu:.3f} s CPU (incl. the clock mover), "
        f"{len(control.requests())} requests, RSS {rss_mib():.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--settle-after", type=float, default=5.0, help="callback seconds")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(port, args.settle_after + WAVES)
    try:
        with DevServerControl(url) as control:
            ours, naive = asyncio.run(compare(url, control, args.entries))
            print(f"{args.entries} watched entries, callbacks finish in {WAVES} waves")
            print(ours.line())
            print(naive.line())
            print(
                f"ratio naive/watcher: requests {naive.total / ours.total:.1f}x, "
                f"CPU {naive.cpu_seconds / ours.cpu_seconds:.1f}x, "
                f"steady-state requests per cycle {naive.requests[1]} vs {ours.requests[1]}"
            )
            asyncio.run(end_to_end(url, control, args.entries))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()

"""Benchmark: the Redrive engine (as ResumeDLQOperator runs it) vs a bare httpx bulk-resume loop.

One run, one dev server, the same seeded DLQ for both sides:

(a) engine: ``Redrive`` over a ``WorkflowDLQClient`` with ``RedrivePlan(filters=
    DLQFilters.build(from_date=...), overrides=Overrides(), pacing=Pacing(page_size=100),
    selection=ErrorSelection(include_non_retryable=True))`` (489s too, as the bare loop),
    a ``RemoteStore`` for the ledger and checkpoint (standing in for Airflow's
    ``task_state_store``) and a ``JsonLinesSink`` to a temp file. Plan, then act: list
    everything (pages of 100), then resume by ``dlqIds`` in batches of 50 (Upstash's
    per-call maximum), each batch's ids in the ledger first, and one entry read back after
    the first 3 calls and every 20th (does the server remove what it acted on?).
(b) bare loop: plain httpx, ``POST /v2/workflows/dlq/resume?fromDate=...`` following
    ``cursor`` to the end; the server's page cap (default 50) bounds each call.

The dev server runs in its own process (the ``wfdlq-devserver`` console script) and every
walk runs in a fresh spawned child process, so time, CPU, tracemalloc and RSS of a walk are
the client's alone. The server's CPU time is read from /proc. Between walks the server is
reset to the same N entries (same seed and anchor) and its clock frozen at one instant, so
no resumed run finishes (and re-enters the DLQ) mid-walk. Timed walks run without
tracemalloc (it slows allocation-heavy code); one extra traced walk per side measures the
peak of Python memory. Every walk is checked against the server's action log: each seeded
entry resumed exactly once, nothing left, nothing else done; for the engine, the JSON-lines
report's dlqId -> new run mapping must equal the action log's.

    .venv/bin/python bench/redrive_bench.py [--entries 10000] [--page-cap 50] [--repeat 1]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing
import os
import platform
import pstats
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from airflow_provider_wfdlq.client import DEV_TOKEN, DLQFilters, Overrides, WorkflowDLQClient
from airflow_provider_wfdlq.devserver.app import REQUEST_LOG_LIMIT
from airflow_provider_wfdlq.devserver.control_client import DevServerControl
from airflow_provider_wfdlq.recovery import (
    JsonLinesSink,
    MemoryStore,
    Pacing,
    Redrive,
    RedrivePlan,
)
from airflow_provider_wfdlq.recovery.checkpoint import CHECKPOINT_KEY
from airflow_provider_wfdlq.recovery.report import DEFAULT_MAX_RUNS_IN_RESULT
from airflow_provider_wfdlq.recovery.selection import ErrorSelection

DLQ = "/v2/workflows/dlq"
DAY_MS = 86_400_000
ENGINE_PAGE = 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SERVER_SCRIPT = Path(sys.executable).with_name("wfdlq-devserver")
PRICE = (
    "The engine lists everything first (one list call per 100 entries), then resumes by\n"
    "dlqIds, 50 per call, and reads one entry back now and then: that is the price of\n"
    "acting oldest first across the whole selection, of crash safety (the ledger names every\n"
    "id before the call that sends it) and of knowing whether a lost answer acted."
)


# --- the client side, run in a fresh child process per walk ------------------------------


class CountingTransport(httpx.BaseTransport):
    """httpx's default transport, counting requests by kind (client-side request count)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.counts: Counter[str] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.counts[request_kind(request.method, request.url.path)] += 1
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def request_kind(method: str, path: str) -> str:
    if method == "GET" and path == DLQ:
        return "list"
    if method == "POST" and path.startswith(f"{DLQ}/resume"):
        return "resume"
    if method == "GET" and path.startswith(f"{DLQ}/"):
        return "read back"
    return f"{method} {path}"


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE / 2**20


@dataclass
class Walk:
    """What one walk measured, client side."""

    side: str
    traced: bool
    wall_s: float
    cpu_s: float
    requests: dict[str, int]
    runs: int
    peak_bytes: int = 0
    held_bytes: int = 0
    rss_before: float = 0.0
    rss_after: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class RemoteStore(MemoryStore):
    """Stands in for ``task_state_store``, which keeps its values in Airflow's metadata DB,
    not in the worker: every write is serialised as there, but the ledger's chunks are not
    kept in this process (a walk that does not die never reads them back). Without this,
    the worker's memory would count a copy of every id that production keeps elsewhere."""

    def set(self, key: str, value: Any) -> None:
        text = json.dumps(value)
        self.writes += 1
        if not key.startswith("wfdlq_ledger."):
            self.data[key] = json.loads(text)


def engine_walk(
    url: str, from_ms: int, report_path: str, traced: bool, profile_path: str | None
) -> Walk:
    transport = CountingTransport()
    plan = RedrivePlan(
        filters=DLQFilters.build(from_date=from_ms),
        overrides=Overrides(),
        pacing=Pacing(page_size=ENGINE_PAGE),
        # Like the bare loop, 489s too (the operator skips them by default).
        selection=ErrorSelection(include_non_retryable=True),
    )
    with WorkflowDLQClient(DEV_TOKEN, url, transport=transport) as client:
        client.list_messages(plan.filters, count=1)  # warm the connection (not counted)
        transport.counts.clear()
        store = RemoteStore()
        profiler = cProfile.Profile() if profile_path else None
        rss_before = rss_mib()
        if traced:
            tracemalloc.start()
        if profiler:
            profiler.enable()
        cpu, started = time.process_time(), time.perf_counter()
        with open(report_path, "w") as stream:
            redrive = Redrive(client, plan, store=store, sink=JsonLinesSink(stream))
            report = redrive.run()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(profile_path))
        held, peak = tracemalloc.get_traced_memory() if traced else (0, 0)
        tracemalloc.stop()
        rss_after = rss_mib()
    state = report.to_state()
    return Walk(
        "engine",
        traced,
        wall,
        cpu,
        dict(transport.counts),
        sum(state["counts"].values()),
        peak,
        held,
        rss_before,
        rss_after,
        {
            "counts": state["counts"],
            "pages": state["pages"],
            "stopped": state["stopped"],
            "runs_in_result": len(state["runs"]),
            "runs_truncated": state["runs_truncated"],
            "store_writes": store.writes,
            "checkpoint_cleared": store.get(CHECKPOINT_KEY) is None,
        },
    )


def bare_walk(url: str, from_ms: int, traced: bool) -> Walk:
    """The naive full-paging bulk resume: same filter, follow the cursor, count the runs."""
    transport = CountingTransport()
    headers = {"Authorization": f"Bearer {DEV_TOKEN}"}
    filters = tuple(DLQFilters.build(from_date=from_ms).to_params())
    with httpx.Client(base_url=url, headers=headers, timeout=60, transport=transport) as client:
        client.get(DLQ, params={"count": 1}).raise_for_status()  # warm the connection
        transport.counts.clear()
        rss_before = rss_mib()
        if traced:
            tracemalloc.start()
        cpu, started = time.process_time(), time.perf_counter()
        runs = 0
        cursor = ""
        while True:
            params = (*filters, ("cursor", cursor)) if cursor else filters
            response = client.post(f"{DLQ}/resume", params=params)
            response.raise_for_status()
            page: dict[str, Any] = response.json()
            runs += len(page["workflowRuns"])
            cursor = page.get("cursor") or ""
            if not cursor:
                break
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        held, peak = tracemalloc.get_traced_memory() if traced else (0, 0)
        tracemalloc.stop()
        rss_after = rss_mib()
    return Walk(
        "bare", traced, wall, cpu, dict(transport.counts), runs, peak, held, rss_before, rss_after
    )


def walk_in_child(
    side: str, url: str, from_ms: int, report_path: str, traced: bool, profile: str | None
) -> Walk:
    if side == "engine":
        walk = engine_walk(url, from_ms, report_path, traced, profile)
    else:
        walk = bare_walk(url, from_ms, traced)
    walk.extra["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return walk


# --- the server and the checks, in the parent --------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def start_server(
    entries: int, page_cap: int, seed: int, latency_ms: int
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [str(SERVER_SCRIPT), "--port", str(port), "--entries", str(entries)]
    command += ["--seed", str(seed), "--page-cap", str(page_cap), "--log-level", "warning"]
    if latency_ms:
        command += ["--latency-ms", str(latency_ms)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the dev server exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/__dev/health", timeout=5).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    server.terminate()
    raise RuntimeError("the dev server did not start")


class BenchCheckError(AssertionError):
    pass


def check(ok: bool, problem: object) -> None:
    """Like assert, but never skipped under ``python -O``."""
    if not ok:
        raise BenchCheckError(problem)


def verify(control: DevServerControl, walk: Walk, entries: int, report_path: str) -> dict[str, Any]:
    """Exactly once, from the server's action log; the engine's report against it too."""
    actions = control.actions()
    resumed = Counter(a["dlqId"] for a in actions if a["action"] == "resume")
    check(len(resumed) == entries == walk.runs, (walk.side, len(resumed), walk.runs))
    check(set(resumed.values()) == {1}, f"{walk.side}: an entry was resumed twice")
    check(all(a["action"] == "resume" for a in actions), f"{walk.side}: another action")
    check(control.health()["entries"] == 0, f"{walk.side}: entries left in the DLQ")
    log = control.requests()
    check(len(log) < REQUEST_LOG_LIMIT, "the server's request log was trimmed")
    server_counts = Counter(request_kind(r["method"], r["path"]) for r in log)
    server_counts["list"] -= 1  # the warm-up call before the walk
    check(server_counts == Counter(walk.requests), (server_counts, walk.requests))
    # A read-back answers 404 when the server removed the entry it acted on, as it does here.
    statuses = Counter(
        (r["status"], request_kind(r["method"], r["path"]) == "read back") for r in log
    )
    check(set(statuses) <= {(200, False), (404, True)}, statuses)
    checked: dict[str, Any] = {"server_requests": len(log) - 1}
    if walk.side == "engine":
        extra = walk.extra
        check(extra["counts"] == {"resumed": entries}, extra["counts"])
        check(extra["stopped"] == "done", extra["stopped"])
        check(extra["checkpoint_cleared"], "the checkpoint was not cleared at the end")
        check(extra["runs_in_result"] == min(entries, DEFAULT_MAX_RUNS_IN_RESULT), extra)
        new_run = {a["dlqId"]: a["newWorkflowRunId"] for a in actions}
        mapped = 0
        with open(report_path) as lines:
            for line in lines:
                record = json.loads(line)
                check(record["event"] == "resumed", record)
                check(new_run[record["dlq_id"]] == record["new_workflow_run_id"], record)
                mapped += 1
        check(mapped == entries, mapped)
        checked["mapped"] = mapped
    return checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--page-cap", type=int, default=50, help="the server's bulk cap")
    parser.add_argument("--repeat", type=int, default=1, help="timed walks per side (median)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--latency-ms", type=int, default=0, help="added by the server to every API call"
    )
    parser.add_argument("--profile", help="write cProfile stats of one engine walk here")
    args = parser.parse_args()
    n = args.entries

    started = time.perf_counter()
    server, url = start_server(n, args.page_cap, args.seed, args.latency_ms)
    startup_s = time.perf_counter() - started
    control = DevServerControl(url, timeout=600)
    pool = ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1
    )
    walks: list[tuple[Walk, float, dict[str, Any]]] = []
    reset_s: list[float] = []
    try:
        frozen_at = control.freeze_time()
        from_ms = frozen_at - 6 * DAY_MS  # seeded entries are 1 min to 5 days old
        plan: list[tuple[str, bool]] = []
        for _ in range(args.repeat):
            plan += [("engine", False), ("bare", False)]
        plan += [("engine", True), ("bare", True)]
        with tempfile.TemporaryDirectory(prefix="redrive-bench-") as tmp:
            report_path = os.path.join(tmp, "report.jsonl")
            for index, (side, traced) in enumerate(plan):
                if index:
                    t0 = time.perf_counter()
                    control.reset(entries=n)
                    reset_s.append(time.perf_counter() - t0)
                    control.freeze_time(frozen_at)
                profile = args.profile if side == "engine" and index == 0 else None
                cpu_before = server_cpu_s(server.pid)
                job = pool.submit(walk_in_child, side, url, from_ms, report_path, traced, profile)
                walk = job.result()
                server_s = server_cpu_s(server.pid) - cpu_before
                checked = verify(control, walk, n, report_path)
                walks.append((walk, server_s, checked))
                print(
                    f"  {side:6} {'traced' if traced else 'timed ':6} "
                    f"{walk.wall_s * 1000:9.1f} ms  {sum(walk.requests.values()):6} requests  "
                    f"ok",
                    flush=True,
                )
    finally:
        pool.shutdown()
        control.close()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()

    print_table(args, startup_s, reset_s, walks)
    if args.profile:
        print(f"\ncProfile of the first engine walk (client side) in {args.profile}; top 25:")
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(25)


def print_table(
    args: argparse.Namespace,
    startup_s: float,
    reset_s: list[float],
    walks: list[tuple[Walk, float, dict[str, Any]]],
) -> None:
    n = args.entries

    def timed(side: str) -> list[tuple[Walk, float, dict[str, Any]]]:
        return [w for w in walks if w[0].side == side and not w[0].traced]

    def traced(side: str) -> Walk:
        return next(w[0] for w in walks if w[0].side == side and w[0].traced)

    def median(side: str, value: Any) -> float:
        return float(statistics.median(value(w) for w in timed(side)))

    wall = {s: median(s, lambda w: w[0].wall_s) for s in ("engine", "bare")}
    cpu = {s: median(s, lambda w: w[0].cpu_s) for s in ("engine", "bare")}
    server_cpu = {s: median(s, lambda w: w[1]) for s in ("engine", "bare")}
    requests = {s: timed(s)[0][0].requests for s in ("engine", "bare")}
    total = {s: sum(requests[s].values()) for s in ("engine", "bare")}
    rss = {s: median(s, lambda w: w[0].rss_after - w[0].rss_before) for s in ("engine", "bare")}
    peak = {s: traced(s).peak_bytes / 2**20 for s in ("engine", "bare")}
    held = {s: traced(s).held_bytes / 2**20 for s in ("engine", "bare")}
    extra = timed("engine")[0][0].extra

    def row(label: str, engine: str, bare: str, ratio: str = "") -> None:
        print(f"  {label:34} {engine:>16} {bare:>16} {ratio:>12}")

    print(
        f"\nredrive benchmark: {n} entries, server page cap {args.page_cap}, engine page "
        f"{ENGINE_PAGE}, clock frozen, dev server in its own process"
        + (f", {args.latency_ms} ms added per API call" if args.latency_ms else "")
    )
    print(
        f"  python {platform.python_version()}, nproc {os.cpu_count()}; server start incl. "
        f"seeding {startup_s:.2f} s; reset to {n} entries {statistics.median(reset_s):.2f} s "
        f"(median of {len(reset_s)})"
    )
    repeat = f"median of {args.repeat}" if args.repeat > 1 else "1 walk each"
    row("", "engine (Redrive)", "bare httpx loop", "engine/bare")
    row(
        f"wall time ({repeat})",
        f"{wall['engine'] * 1000:.1f} ms",
        f"{wall['bare'] * 1000:.1f} ms",
        f"{wall['engine'] / wall['bare']:.2f} x",
    )
    row(
        "requests (client = server log)",
        str(total["engine"]),
        str(total["bare"]),
        f"{total['engine'] / total['bare']:.2f} x",
    )
    row(
        "  list / resume calls",
        f"{requests['engine'].get('list', 0)} / {requests['engine'].get('resume', 0)}",
        f"{requests['bare'].get('list', 0)} / {requests['bare'].get('resume', 0)}",
    )
    row(
        "  ms per request",
        f"{wall['engine'] / total['engine'] * 1000:.2f}",
        f"{wall['bare'] / total['bare'] * 1000:.2f}",
    )
    row(
        "entries resumed per second",
        f"{n / wall['engine']:,.0f}",
        f"{n / wall['bare']:,.0f}",
        f"{wall['bare'] / wall['engine']:.2f} x",
    )
    row(
        "client CPU (walk process)",
        f"{cpu['engine'] * 1000:.0f} ms",
        f"{cpu['bare'] * 1000:.0f} ms",
        f"{cpu['engine'] / cpu['bare']:.2f} x",
    )
    row(
        "server CPU (dev server process)",
        f"{server_cpu['engine'] * 1000:.0f} ms",
        f"{server_cpu['bare'] * 1000:.0f} ms",
        f"{server_cpu['engine'] / server_cpu['bare']:.2f} x",
    )
    row(
        "client peak Python memory (traced)",
        f"{peak['engine']:.2f} MiB",
        f"{peak['bare']:.2f} MiB",
    )
    row("  still held after the walk", f"{held['engine']:.2f} MiB", f"{held['bare']:.2f} MiB")
    row("client RSS growth over the walk", f"{rss['engine']:+.1f} MiB", f"{rss['bare']:+.1f} MiB")
    row(
        "traced walk wall time",
        f"{traced('engine').wall_s * 1000:.1f} ms",
        f"{traced('bare').wall_s * 1000:.1f} ms",
    )
    print(
        f"  engine report: {extra['pages']} batches, {extra['store_writes']} ledger/checkpoint "
        "writes, "
        f"{extra['runs_in_result']} runs named in the result (truncated: "
        f"{extra['runs_truncated']}), JSON-lines report maps all {n} dlqIds to their new runs "
        "(checked against the action log)"
    )
    print(
        f"  exactly once, both sides, every walk ({len(walks)}): {n} entries resumed once each, "
        "none twice, none left, no other action (server action log)"
    )
    print("  " + PRICE.replace("\n", "\n  "))
    if total["engine"] <= total["bare"]:
        print(
            f"  Here the server caps a filtered bulk call at {args.page_cap}, so the engine "
            "needs no more requests in total."
        )


if __name__ == "__main__":
    main()

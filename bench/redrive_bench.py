"""Benchmark: the Redrive engine (as ResumeDLQOperator runs it) vs a bare httpx bulk-resume
loop and the official JS client's documented loop, side by side on one dev server.

Sides (``--sides``, walked in turn, ``--repeat`` rounds, so they alternate):

- ``engine``: ``Redrive`` over a ``WorkflowDLQClient`` with ``RedrivePlan(filters=
  DLQFilters.build(from_date=...), overrides=Overrides(), pacing=Pacing(page_size=100,
  in_flight=--in-flight), selection=ErrorSelection(include_non_retryable=True))`` (489s
  too, as the loops), a ``RemoteStore`` for the ledger and checkpoint (standing in for
  Airflow's ``task_state_store``) and a ``JsonLinesSink`` to a temp file. With in_flight > 1
  it acts while it lists (nothing here needs the whole plan first).
- ``engine-1``: the same with ``in_flight=1``, the default: list everything, then one call
  at a time, strictly oldest first.
- ``bare``: plain httpx, ``POST /v2/workflows/dlq/resume?fromDate=...`` following ``cursor``
  to the end; the server's page cap (default 50) bounds each call.
- ``js``: ``@upstash/workflow`` (pinned, ``npm install``-ed into ~/.cache when ``node`` and
  ``npm`` are here) running the loop its ``dlq.resume`` doc comment gives:
  ``resume({filter, count: 100, cursor})`` until no cursor (bench/js_resume_loop.cjs).

The dev server runs in its own process (the ``wfdlq-devserver`` console script), with
``--latency-ms`` added to every API call (asyncio.sleep: concurrent calls overlap), and
every walk runs in a fresh spawned child process, so time, CPU, tracemalloc and RSS of a
walk are the client's alone (node's CPU is node's own ``process.cpuUsage``). The server's
CPU time is read from /proc. Between walks the server is reset to the same N entries (same
seed and anchor) and its clock frozen at one instant, so no resumed run finishes (and
re-enters the DLQ) mid-walk. Timed walks run without tracemalloc; one extra traced walk per
Python side measures the peak of Python memory (``--no-traced`` skips them). Every walk is
checked against the server's action log: each seeded entry resumed exactly once, nothing
left, nothing else done; for the engine, the JSON-lines report's dlqId -> new run mapping
must equal the action log's.

    .venv/bin/python bench/redrive_bench.py --entries 5000 --latency-ms 20 --repeat 3
    .venv/bin/python bench/redrive_bench.py --entries 10000 --repeat 3
    .venv/bin/python bench/redrive_bench.py --entries 100000 --sides engine,bare --repeat 1
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
import shutil
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
    url: str,
    from_ms: int,
    report_path: str,
    traced: bool,
    profile_path: str | None,
    in_flight: int = 1,
    side: str = "engine",
) -> Walk:
    transport = CountingTransport()
    plan = RedrivePlan(
        filters=DLQFilters.build(from_date=from_ms),
        overrides=Overrides(),
        pacing=Pacing(page_size=ENGINE_PAGE, in_flight=in_flight),
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
        side,
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


def js_walk(url: str, from_ms: int, node_path: str) -> Walk:
    """The official JS client's documented loop (bench/js_resume_loop.cjs), timed in node."""
    script = Path(__file__).with_name("js_resume_loop.cjs")
    done = subprocess.run(
        ["node", str(script), url, DEV_TOKEN, str(from_ms)],
        env={**os.environ, "NODE_PATH": node_path},
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(done.stdout)
    requests = {"resume": int(measured["calls"])}
    return Walk(
        "js",
        False,
        measured["wallMs"] / 1000,
        measured["cpuMs"] / 1000,
        requests,
        int(measured["runs"]),
    )


def walk_in_child(
    side: str,
    url: str,
    from_ms: int,
    report_path: str,
    traced: bool,
    profile: str | None,
    in_flight: int,
    node_path: str,
) -> Walk:
    if side.startswith("engine"):
        flight = 1 if side == "engine-1" else in_flight
        walk = engine_walk(url, from_ms, report_path, traced, profile, flight, side)
    elif side == "js":
        walk = js_walk(url, from_ms, node_path)
    else:
        walk = bare_walk(url, from_ms, traced)
    walk.extra["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return walk


#: The official client, pinned; installed into a cache with npm when ``node`` is here.
JS_PACKAGE = "@upstash/workflow@1.3.3"


def install_js_client() -> str | None:
    """NODE_PATH of an npm install of the official client, or None (no node or npm)."""
    if not shutil.which("node") or not shutil.which("npm"):
        print("  node/npm not found: the official JS client's loop is left out")
        return None
    prefix = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wfdlq-bench-node"
    modules = prefix / "node_modules"
    if not (modules / "@upstash" / "workflow" / "package.json").exists():
        command = ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix"]
        done = subprocess.run([*command, str(prefix), JS_PACKAGE], capture_output=True, text=True)
        if done.returncode != 0:
            print(
                f"  npm install {JS_PACKAGE} failed; the JS loop is left out: {done.stderr[-300:]}"
            )
            return None
    version = json.loads((modules / "@upstash" / "workflow" / "package.json").read_text())[
        "version"
    ]
    print(f"  official JS client: @upstash/workflow {version} on node {node_version()}")
    return str(modules)


def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


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
    if walk.side == "js":  # node counted its resume calls; its warm-up lists elsewhere
        server_counts = Counter({"resume": server_counts["resume"]})
    else:
        server_counts["list"] -= 1  # the warm-up call before the walk
    check(+server_counts == Counter(walk.requests), (server_counts, walk.requests))
    # A read-back answers 404 when the server removed the entry it acted on, as it does here.
    statuses = Counter(
        (r["status"], request_kind(r["method"], r["path"]) == "read back") for r in log
    )
    check(set(statuses) <= {(200, False), (404, True)}, statuses)
    checked: dict[str, Any] = {"server_requests": len(log) - 1}
    if walk.side.startswith("engine"):
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
    parser.add_argument(
        "--in-flight", type=int, default=4, help="pacing.in_flight of the engine side"
    )
    parser.add_argument(
        "--sides",
        default="engine,engine-1,bare,js",
        help="comma-separated: engine (in_flight from --in-flight), engine-1 (in_flight=1, "
        "the default), bare (httpx loop), js (the official client; needs node and npm)",
    )
    parser.add_argument("--no-traced", action="store_true", help="skip the tracemalloc walks")
    parser.add_argument("--profile", help="write cProfile stats of one engine walk here")
    args = parser.parse_args()
    n = args.entries
    sides = [side.strip() for side in args.sides.split(",") if side.strip()]
    node_path = install_js_client() if "js" in sides else None
    if node_path is None and "js" in sides:
        sides.remove("js")
    args.sides_run = sides

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
            plan += [(side, False) for side in sides]  # alternating, side by side
        if not args.no_traced:
            plan += [(side, True) for side in sides if side in ("engine", "bare")]
        with tempfile.TemporaryDirectory(prefix="redrive-bench-") as tmp:
            report_path = os.path.join(tmp, "report.jsonl")
            for index, (side, traced) in enumerate(plan):
                if index:
                    t0 = time.perf_counter()
                    control.reset(entries=n)
                    reset_s.append(time.perf_counter() - t0)
                    control.freeze_time(frozen_at)
                profile = args.profile if side.startswith("engine") and not traced else None
                cpu_before = server_cpu_s(server.pid)
                job = pool.submit(
                    walk_in_child,
                    side,
                    url,
                    from_ms,
                    report_path,
                    traced,
                    profile,
                    args.in_flight,
                    node_path or "",
                )
                walk = job.result()
                server_s = server_cpu_s(server.pid) - cpu_before
                checked = verify(control, walk, n, report_path)
                walks.append((walk, server_s, checked))
                print(
                    f"  {side:8} {'traced' if traced else 'timed ':6} "
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
        print(f"\ncProfile of the last engine walk (client side) in {args.profile}; top 25:")
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(25)


LABELS = {
    "engine": "engine, in_flight={}",
    "engine-1": "engine, in_flight=1",
    "bare": "bare httpx loop",
    "js": "official JS client",
}


def print_table(
    args: argparse.Namespace,
    startup_s: float,
    reset_s: list[float],
    walks: list[tuple[Walk, float, dict[str, Any]]],
) -> None:
    n = args.entries
    sides: list[str] = args.sides_run

    def timed(side: str) -> list[tuple[Walk, float, dict[str, Any]]]:
        return [w for w in walks if w[0].side == side and not w[0].traced]

    def median(side: str, value: Any) -> float:
        return float(statistics.median(value(w) for w in timed(side)))

    wall = {s: median(s, lambda w: w[0].wall_s) for s in sides}
    cpu = {s: median(s, lambda w: w[0].cpu_s) for s in sides}
    server_cpu = {s: median(s, lambda w: w[1]) for s in sides}
    requests = {s: timed(s)[0][0].requests for s in sides}
    total = {s: sum(requests[s].values()) for s in sides}
    base = "bare" if "bare" in sides else sides[0]

    def row(label: str, cells: list[str]) -> None:
        print(f"  {label:30} " + " ".join(f"{c:>22}" for c in cells))

    print(
        f"\nredrive benchmark: {n} entries, server page cap {args.page_cap}, engine page "
        f"{ENGINE_PAGE}, clock frozen, dev server in its own process"
        + (f", {args.latency_ms} ms added per API call" if args.latency_ms else ", loopback")
    )
    print(
        f"  python {platform.python_version()}, nproc {os.cpu_count()}; server start incl. "
        f"seeding {startup_s:.2f} s; reset to {n} entries "
        f"{statistics.median(reset_s) if reset_s else 0:.2f} s; walks alternate side by side"
    )
    repeat = f"median of {args.repeat}" if args.repeat > 1 else "1 walk each"
    row("", [LABELS[s].format(args.in_flight) for s in sides])
    row(f"wall time ({repeat})", [f"{wall[s] * 1000:.1f} ms" for s in sides])
    row(f"  / {LABELS[base]}", [f"{wall[s] / wall[base]:.2f} x" for s in sides])
    row("requests", [str(total[s]) for s in sides])
    row(
        "  list / resume / read back",
        [
            f"{requests[s].get('list', 0)} / {requests[s].get('resume', 0)} / "
            f"{requests[s].get('read back', 0)}"
            for s in sides
        ],
    )
    row("client CPU", [f"{cpu[s] * 1000:.0f} ms" for s in sides])
    row("server CPU (dev server process)", [f"{server_cpu[s] * 1000:.0f} ms" for s in sides])
    traced = {w[0].side: w[0] for w in walks if w[0].traced}
    if traced:
        row(
            "client peak Python memory",
            [f"{traced[s].peak_bytes / 2**20:.2f} MiB" if s in traced else "-" for s in sides],
        )
        row(
            "client RSS growth over the walk",
            [
                f"{median(s, lambda w: w[0].rss_after - w[0].rss_before):+.1f} MiB"
                if s != "js"
                else "-"
                for s in sides
            ],
        )
    print(
        f"  exactly once, every side, every walk ({len(walks)}): {n} entries resumed once "
        "each, none twice, none left, no other action (server action log); the engine's "
        "JSON-lines report maps every dlqId to its new run (checked against the action log)"
    )


if __name__ == "__main__":
    main()

"""Benchmark: what the safe-recovery policies cost a redrive, against a plain one in the same run.

One in-process dev server, the same seeded DLQ for every walk (reset between walks, clock
frozen so no resumed run finishes mid-walk):

(a) baseline: ``Redrive`` with no policy at all (489s included, labels untouched);
(b) selection + breaker: 489s skipped, and the circuit breaker (one run-logs call per batch);
(c) + audit label: as (b) plus the nightly DAG's audit label, appended to each entry's own
    labels: one action call per distinct label set in a batch, since the API replaces labels.

Every walk lists in pages of 100 (``pacing=Pacing(page_size=100)``), then acts by dlqIds in
batches of 50.

Printed: requests by kind, wall time and their ratios to the baseline. Each walk is checked
against the server's action log (every acted entry resumed once).

    .venv/bin/python bench/policies_bench.py [--entries 5000]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from airflow_provider_wfdlq.client import DLQFilters, Overrides, WorkflowDLQClient
from airflow_provider_wfdlq.devserver import DevServer
from airflow_provider_wfdlq.recovery import Pacing, Redrive, RedrivePlan
from airflow_provider_wfdlq.recovery.safety import SafetyPolicy
from airflow_provider_wfdlq.recovery.selection import ErrorSelection

EVERYTHING = DLQFilters.build(from_date="2020-01-01T00:00:00Z")
PAGES = Pacing(page_size=100)
AUDIT = "airflow:nightly_dlq_recovery:scheduled__2026-11-25T00-00-00-00-00"


def plans() -> dict[str, RedrivePlan]:
    return {
        "baseline": RedrivePlan(
            filters=EVERYTHING,
            overrides=Overrides(),
            pacing=PAGES,
            selection=ErrorSelection(include_non_retryable=True),
        ),
        "selection + breaker": RedrivePlan(
            filters=EVERYTHING,
            overrides=Overrides.build(flow_control_key="airflow-redrive-bench"),
            pacing=PAGES,
            safety=SafetyPolicy(breaker_max_failure_ratio=0.5, breaker_min_finished=50),
        ),
        "+ audit label": RedrivePlan(
            filters=EVERYTHING,
            overrides=Overrides.build(flow_control_key="airflow-redrive-bench"),
            pacing=PAGES,
            audit_label=AUDIT,
            safety=SafetyPolicy(breaker_max_failure_ratio=0.5, breaker_min_finished=50),
        ),
    }


def kind(method: str, path: str) -> str:
    if path.startswith("/v2/workflows/dlq/resume"):
        return "resume"
    if path.startswith("/v2/workflows/logs"):
        return "run logs"
    if path.startswith("/v2/flowControl"):
        return "flow control"
    return "list" if path == "/v2/workflows/dlq" else f"{method} one"


def walk(server: DevServer, plan: RedrivePlan, entries: int, seed: int) -> dict[str, Any]:
    server.control.reset(seed=seed, entries=entries)
    server.control.freeze_time()
    server.control.clear_requests()
    with WorkflowDLQClient(server.token, server.url) as client:
        started = time.perf_counter()
        report = Redrive(client, plan).run()
        seconds = time.perf_counter() - started
    requests = Counter(kind(r["method"], r["path"]) for r in server.control.requests())
    resumed = [a["dlqId"] for a in server.control.actions() if a["action"] == "resume"]
    assert len(resumed) == len(set(resumed)) == report.counts["resumed"], "exactly once"
    return {"seconds": seconds, "requests": requests, "counts": dict(report.counts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    with DevServer(entries=0, page_cap=50) as server:
        results = {
            name: walk(server, plan, args.entries, args.seed) for name, plan in plans().items()
        }
    base = results["baseline"]
    print(f"{args.entries} seeded entries, dev server in-process, clock frozen")
    for name, result in results.items():
        total = sum(result["requests"].values())
        print(
            f"{name:>20}: {result['seconds']:.2f} s ({result['seconds'] / base['seconds']:.2f}x), "
            f"{total} requests ({total / sum(base['requests'].values()):.2f}x): "
            + ", ".join(f"{k} {v}" for k, v in sorted(result["requests"].items()))
        )
        print(f"{'':>22}counts: {result['counts']}")


if __name__ == "__main__":
    main()

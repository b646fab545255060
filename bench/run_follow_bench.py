"""Benchmark: requests per poll to follow 1,000 resumed runs, against the dev server.

The dev server's clock is frozen. The runs are resumed in ten waves of 100, one simulated
poll interval apart, so they also finish in waves of 100 (``run_seconds`` after their
resume; ``success_ratio`` 0.8, failed ones re-enter the DLQ). At every poll tick two
strategies ask the SAME world, one after the other, and their requests are counted apart:

* ``follower``: the provider's RunFollower (what WorkflowRunSensor, WorkflowRunTrigger and
  ``follow_runs`` run): one ``workflowRuns=ID@MS,...`` logs call per 100 open runs;
* ``naive``: one ``workflowRunId=...&workflowCreatedAt=...`` logs call per open run per
  poll (it also stops asking about final runs, so the baseline is a generous one).

    .venv/bin/python bench/run_follow_bench.py [--runs 1000] [--waves 10]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from airflow_provider_wfdlq.client import RunLogPage, WorkflowDLQClient
from airflow_provider_wfdlq.devserver import DevServer
from airflow_provider_wfdlq.recovery.runs import FINAL_RUN_STATES, RunFollower, RunWatch, poll_sync

LOGS = "/v2/workflows/logs"
TICK = 60.0  # simulated seconds between polls (and between resume waves)


def naive_poll(client: WorkflowDLQClient, open_runs: dict[str, int], final: dict[str, str]) -> int:
    """One logs call per open run; returns the number of calls."""
    calls = 0
    for run_id, created_at in list(open_runs.items()):
        page: RunLogPage = client.run_logs(workflow_run_id=run_id, workflow_created_at=created_at)
        calls += 1
        for run in page.runs:
            if run.workflow_state in FINAL_RUN_STATES:
                final[run_id] = run.workflow_state
                open_runs.pop(run_id, None)
    return calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--waves", type=int, default=10)
    args = parser.parse_args()

    per_wave = args.runs // args.waves
    with DevServer(seed=11, entries=args.runs, run_seconds=TICK * 2, success_ratio=0.8) as server:
        server.control.freeze_time()
        client = WorkflowDLQClient(server.token, server.url)
        ids = [e["dlqId"] for e in server.control.entries()][: args.runs]
        follower = RunFollower(RunWatch.build(runs=[]))
        naive_open: dict[str, int] = {}
        naive_final: dict[str, str] = {}
        refs: list[Any] = []
        rows: list[dict[str, Any]] = []
        times = {"follower": 0.0, "naive": 0.0}
        poll = 0
        while True:
            wave = ids[poll * per_wave : (poll + 1) * per_wave]
            for start in range(0, len(wave), 50):
                resumed = client.resume_bulk({"dlq_ids": wave[start : start + 50]}).runs
                refs.extend(resumed)
                naive_open.update(
                    (r.workflow_run_id, r.workflow_created_at)
                    for r in resumed
                    if r.workflow_created_at is not None
                )
            # The follower follows every run resumed so far (a canary grows its set the same way).
            follower.watch = RunWatch.build(runs=refs)
            open_before = len(follower.open_runs())
            server.control.clear_requests()
            started = time.perf_counter()
            verdict = poll_sync(client, follower)
            times["follower"] += time.perf_counter() - started
            follower_calls = sum(1 for r in server.control.requests() if r["path"] == LOGS)
            server.control.clear_requests()
            started = time.perf_counter()
            naive_calls = naive_poll(client, naive_open, naive_final)
            times["naive"] += time.perf_counter() - started
            assert naive_calls == sum(1 for r in server.control.requests() if r["path"] == LOGS)
            rows.append(
                {
                    "poll": poll + 1,
                    "open": open_before,
                    "follower": follower_calls,
                    "naive": naive_calls,
                }
            )
            poll += 1
            if poll >= args.waves and verdict.outcome.done:
                break
            server.control.advance_time(TICK)
        client.close()

    outcome = verdict.outcome
    assert outcome.followed == args.runs
    assert outcome.recovered + outcome.failed_again == len(naive_final) == args.runs
    total_f = sum(r["follower"] for r in rows)
    total_n = sum(r["naive"] for r in rows)
    print(f"{args.runs} runs resumed in {args.waves} waves, one poll per {TICK:.0f} s (simulated)")
    print(f"{'poll':>4} {'open':>5} {'follower':>8} {'naive':>6}")
    for r in rows:
        print(f"{r['poll']:>4} {r['open']:>5} {r['follower']:>8} {r['naive']:>6}")
    peak_f = max(r["follower"] for r in rows)
    peak_n = max(r["naive"] for r in rows)
    print(
        f"total requests: follower {total_f}, naive {total_n} ({total_n / total_f:.0f}x); "
        f"largest poll: follower {peak_f}, naive {peak_n} ({peak_n / peak_f:.0f}x)"
    )
    print(
        f"client time asking: follower {times['follower']:.2f} s, naive {times['naive']:.2f} s "
        f"({times['naive'] / times['follower']:.0f}x)"
    )
    print(f"outcome: {outcome.summary()}")
    summary = {
        "runs": args.runs,
        "polls": len(rows),
        "follower_requests": total_f,
        "naive_requests": total_n,
        "follower_peak_per_poll": peak_f,
        "naive_peak_per_poll": peak_n,
        "follower_seconds": round(times["follower"], 3),
        "naive_seconds": round(times["naive"], 3),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

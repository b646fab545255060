"""`wfdlq-devserver`: run the workflow DLQ emulator in the foreground.

wfdlq-devserver --port 8080 --seed 7 --entries 500 --fault 503:ratio=0.05
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence

import uvicorn

from airflow_provider_wfdlq.devserver.app import DevApp
from airflow_provider_wfdlq.devserver.faults import FAULT_KINDS, parse_fault_spec
from airflow_provider_wfdlq.devserver.runner import build_state, hide_dropped_connection_errors
from airflow_provider_wfdlq.devserver.state import DEV_TOKEN
from airflow_provider_wfdlq.devserver.world import WorldConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wfdlq-devserver",
        description="Local emulator of the Upstash Workflow dead-letter-queue API, "
        "with a simulated clock and fault injection (control API under /__dev/).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port (0: a free one)")
    parser.add_argument("--token", default=DEV_TOKEN, help="bearer token (default: dev token)")
    seeding = parser.add_mutually_exclusive_group()
    seeding.add_argument("--seed", type=int, default=42, help="deterministic data seed")
    seeding.add_argument("--random-seed", action="store_true", help="pick a random seed")
    parser.add_argument("--entries", type=int, default=150, help="seeded DLQ entries")
    parser.add_argument("--anchor-ms", type=int, help="'now' of the seeded data (unix ms)")
    parser.add_argument("--page-cap", type=int, default=50, help="entries per bulk call")
    parser.add_argument(
        "--success-ratio",
        type=float,
        default=0.8,
        help="share of resumed runs that succeed (the rest fail back into the DLQ)",
    )
    parser.add_argument(
        "--run-seconds",
        type=float,
        default=30.0,
        help="simulated seconds a resumed run takes (advance the clock with POST "
        "/__dev/time/advance)",
    )
    parser.add_argument(
        "--callback-seconds",
        type=float,
        default=20.0,
        help="simulated seconds a failure callback in progress takes to settle",
    )
    parser.add_argument(
        "--callback-outcome",
        default="CALLBACK_SUCCESS",
        help="what settling callbacks end as (CALLBACK_SUCCESS, CALLBACK_FAIL, ...)",
    )
    faults = parser.add_argument_group("faults")
    faults.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help=f"KIND[:ratio=R][:times=N][:method=M][:path=P][:latency=MS][:reset=S], "
        f"KIND one of {', '.join(sorted(FAULT_KINDS))}; repeatable",
    )
    faults.add_argument(
        "--latency-ms", type=float, default=0, help="delay of every API call (requests overlap)"
    )
    faults.add_argument("--rate-limit-rps", type=float, help="429 beyond N requests/second")
    faults.add_argument("--cursor-ttl-seconds", type=float, help="reject older cursors (400)")
    readings = parser.add_argument_group(
        "readings", "how to play what Upstash leaves unstated (defaults: today's behaviour)"
    )
    readings.add_argument(
        "--keep-resumed",
        action="store_true",
        help="resumed/restarted entries stay in the DLQ and can be acted on again",
    )
    readings.add_argument(
        "--resumed-lag",
        type=int,
        default=0,
        metavar="K",
        help="resumed/restarted entries stay for the next K API requests",
    )
    readings.add_argument(
        "--answer-order",
        default="sent",
        help="workflowRuns of bulk answers: sent|reversed|shuffled",
    )
    readings.add_argument(
        "--max-ids-per-call",
        type=int,
        metavar="C",
        help="a bulk resume/restart by dlqIds acts on the first C ids and answers a cursor",
    )
    readings.add_argument("--list-order", default="oldest", help="DLQ listing: oldest|newest")
    readings.add_argument(
        "--stale-cursor-every",
        type=int,
        metavar="K",
        help="every Kth list request with a cursor answers 400 stale cursor",
    )
    readings.add_argument(
        "--frozen-cursor", action="store_true", help="the listing returns the same cursor forever"
    )
    readings.add_argument(
        "--offset-cursor",
        action="store_true",
        help="the listing cursor is a place among the matches (entries that leave shift it)",
    )
    readings.add_argument(
        "--rate-limit-reset-unit", default="s", help="unit of *-RateLimit-Reset headers: s|ms"
    )
    readings.add_argument(
        "--created-at-format", default="ms", help="workflowCreatedAt of resume answers: ms|iso"
    )
    parser.add_argument(
        "--bulk-delete-missing",
        default="refuse",
        help="a bulk delete by dlqIds naming a missing id: refuse (404) | skip",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another Host header name the control API accepts (besides loopback and --host)",
    )
    parser.add_argument("--log-level", default="info", help="uvicorn's log level")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        faults = [parse_fault_spec(spec) for spec in args.fault]
        config = WorldConfig().updated(
            {
                "page_cap": args.page_cap,
                "success_ratio": args.success_ratio,
                "run_seconds": args.run_seconds,
                "callback_seconds": args.callback_seconds,
                "callback_outcome": args.callback_outcome,
                "rate_limit_rps": args.rate_limit_rps,
                "cursor_ttl_seconds": args.cursor_ttl_seconds,
                "latency_ms": args.latency_ms,
                "keep_resumed": args.keep_resumed,
                "resumed_lag": args.resumed_lag,
                "answer_order": args.answer_order,
                "max_ids_per_call": args.max_ids_per_call,
                "list_order": args.list_order,
                "stale_cursor_every": args.stale_cursor_every,
                "frozen_cursor": args.frozen_cursor,
                "offset_cursor": args.offset_cursor,
                "rate_limit_reset_unit": args.rate_limit_reset_unit,
                "created_at_format": args.created_at_format,
                "bulk_delete_missing": args.bulk_delete_missing,
            }
        )
    except ValueError as error:
        print(f"wfdlq-devserver: {error}", file=sys.stderr)
        return 2
    state = build_state(
        token=args.token,
        seed=args.seed,
        entries=args.entries,
        random_seed=args.random_seed,
        anchor_ms=args.anchor_ms,
        config=config,
        faults=faults,
        allowed_hosts=[args.host, *args.allow_host],
    )
    # The seeded world is long-lived: keep the cyclic GC from rescanning it on every
    # collection (full collections over 100,000 entries took 1-2 s each in bench/).
    gc.freeze()
    url = f"http://{args.host}:{args.port}"
    print(
        f"wfdlq-devserver on {url}  seed={state.world.seed}  entries={state.world.entry_count}\n"
        f"  token:   {state.token}\n"
        f"  control: {url}/__dev/health, /__dev/config, /__dev/entries, /__dev/actions, ...",
        flush=True,
    )
    hide_dropped_connection_errors()
    uvicorn.run(
        DevApp(state),
        host=args.host,
        port=args.port,
        lifespan="off",
        log_level=args.log_level,
        access_log=args.log_level == "debug",
        timeout_graceful_shutdown=1,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``wfdlq-doctor``: check a real account before a nightly redrive trusts it.

Exit codes: 0 nothing the engine relies on differs, 1 something does (or the token is
refused, or the server cannot be reached), 2 a usage error (nothing was sent).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from dataclasses import dataclass
from typing import IO, Any

from airflow_provider_wfdlq.client import RetryPolicy, ValidationError, WFDLQError
from airflow_provider_wfdlq.client._wire import (
    check_base_url,
    check_token,
    check_transport_security,
)
from airflow_provider_wfdlq.client.errors import redact
from airflow_provider_wfdlq.client.validation import check_dlq_id
from airflow_provider_wfdlq.doctor.checks import (
    EU_URL,
    US_URL,
    Doctor,
    ProbeRefused,
    Report,
)

TOKEN_ENV = "QSTASH_TOKEN"
USAGE = 2


class UsageError(Exception):
    """Bad input: reported on stderr, exit 2, nothing sent."""


@dataclass(frozen=True, repr=False)
class Target:
    token: str
    base_url: str
    allow_insecure_http: bool = False
    auth_hint: str | None = None
    timeout: float = 10.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wfdlq-doctor",
        description=(
            "Check a QStash account against what the workflow-DLQ redrive engine assumes. "
            f"Read-only unless --probe-resume/--probe-bulk. The token comes from the Airflow "
            f"connection (--conn-id) or from the environment variable {TOKEN_ENV} (--url)."
        ),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--conn-id", help="an Airflow qstash connection (read via the hook)")
    source.add_argument(
        "--url", help=f"the QStash API URL, e.g. {EU_URL} or {US_URL} (token: ${TOKEN_ENV})"
    )
    parser.add_argument("--flow-control-key", help="also read this flow-control key's state")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--probe-resume",
        metavar="DLQ_ID",
        help="RESUME this one real entry and watch whether and how fast it leaves the DLQ",
    )
    parser.add_argument(
        "--probe-bulk",
        metavar="ID1,ID2,...",
        help="RESUME these entries (two or more) in ONE bulk call and count the runs made",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask before a probe acts")
    parser.add_argument(
        "--probe-reads", type=_positive_int, default=10, help="reads after the resume (10)"
    )
    parser.add_argument(
        "--probe-interval",
        type=_non_negative,
        default=0.5,
        help="seconds between those reads (0.5)",
    )
    parser.add_argument("--pages", type=_positive_int, default=4, help="list pages to walk (4)")
    parser.add_argument(
        "--page-size", type=_page_size, default=10, help="entries per list page (10)"
    )
    parser.add_argument(
        "--timeout", type=_positive_float, default=10.0, help="seconds per request (10)"
    )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return value


def _page_size(text: str) -> int:
    value = _positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"{text!r} is above 100, the largest list page")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds > 0")
    return value


def target_from_url(url: str, environ: dict[str, str] | os._Environ[str]) -> Target:
    """``--url`` plus ``$QSTASH_TOKEN``; every check before any request."""
    try:
        base_url = check_base_url(url)
        check_transport_security(base_url, False)
    except ValidationError as exc:
        raise UsageError(f"--url {url!r}: {exc}") from None
    token = environ.get(TOKEN_ENV)
    if not token:
        raise UsageError(f"--url needs the token in the environment variable {TOKEN_ENV}")
    try:
        token = check_token(token, TOKEN_ENV)
    except ValidationError as exc:
        raise UsageError(str(exc)) from None
    hint = f"check {TOKEN_ENV} and that {base_url} is its region's URL (EU {EU_URL}, US {US_URL})"
    return Target(token, base_url, auth_hint=hint)


def target_from_connection(conn_id: str) -> Target:
    """The connection's settings through the hook (the only place Airflow is imported)."""
    try:
        from airflow_provider_wfdlq.hooks.dlq import WorkflowDLQHook

        settings = WorkflowDLQHook(qstash_conn_id=conn_id).settings
    except ValidationError as exc:
        raise UsageError(f"connection {conn_id!r}: {exc}") from None
    except Exception as exc:  # AirflowNotFoundException and friends, whatever the version
        raise UsageError(f"connection {conn_id!r}: {type(exc).__name__}: {exc}") from None
    return Target(
        settings.token,
        settings.base_url,
        allow_insecure_http=settings.allow_insecure_http,
        auth_hint=settings.auth_hint,
        timeout=min(settings.timeout, 30.0),
    )


def _bulk_ids(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    ids = tuple(part.strip() for part in text.split(",") if part.strip())
    if len(ids) < 2 or len(set(ids)) != len(ids):
        raise UsageError("--probe-bulk needs two or more distinct dlqIds, comma-separated")
    return ids


def _check_ids(ids: tuple[str, ...], flag: str) -> None:
    for dlq_id in ids:
        try:
            check_dlq_id(dlq_id, flag)
        except ValidationError as exc:
            raise UsageError(str(exc)) from None


def confirm(
    resume: str | None, bulk: tuple[str, ...], *, yes: bool, stdin: IO[str], stderr: IO[str]
) -> None:
    """Ask before a probe resumes real entries; refuse without a TTY unless ``--yes``."""
    if yes or (resume is None and not bulk):
        return
    named = ([resume] if resume else []) + list(bulk)
    if not stdin.isatty():
        raise UsageError(
            f"refusing: the probe RESUMES {len(named)} real DLQ entr"
            f"{'y' if len(named) == 1 else 'ies'} (new workflow runs) and there is no "
            "terminal to confirm it; pass --yes to go ahead"
        )
    stderr.write(
        f"This RESUMES {len(named)} real DLQ entr{'y' if len(named) == 1 else 'ies'} "
        f"({', '.join(named)}): each starts a new workflow run. Go on? [y/N] "
    )
    stderr.flush()
    answer = stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise UsageError("not confirmed: nothing was resumed")


def run(args: argparse.Namespace, target: Target) -> Report:
    """The read-only checks, then the probes that were asked for."""
    retry = RetryPolicy(max_attempts=3, max_rate_limit_wait=10.0)
    with Doctor(
        target.token,
        target.base_url,
        timeout=target.timeout,
        retry=retry,
        allow_insecure_http=target.allow_insecure_http,
        auth_hint=target.auth_hint,
    ) as doctor:
        report = doctor.read_only(
            pages=args.pages, page_size=args.page_size, flow_control_key=args.flow_control_key
        )
        if not report.connected:
            return report
        if args.probe_resume:
            report.checks.append(
                doctor.probe_resume(
                    args.probe_resume, reads=args.probe_reads, interval=args.probe_interval
                )
            )
        if args.bulk_ids:
            report.checks.extend(doctor.probe_bulk(args.bulk_ids))
        answer = doctor.answer_check()
        if answer is not None:
            report.checks.append(answer)
    return report


def render(report: Report, *, probed: bool) -> str:
    """The table: status, check, what was seen, and the fix under it."""
    mode = "probes ran: entries were resumed" if probed else "read-only"
    lines = [f"wfdlq-doctor: {report.base_url} ({mode})", ""]
    width = max(len(check.name) for check in report.checks)
    lines.append(f"  {'STATUS':<8} {'CHECK':<{width}}  SEEN / FIX")
    indent = " " * (2 + 8 + 1 + width + 2)
    for check in report.checks:
        seen = check.seen + (f" (reading: {check.reading})" if check.reading else "")
        head = f"  {check.status:<8} {check.name:<{width}}  "
        lines.extend(_wrapped(seen, head, indent))
        if check.fix and check.status != "ok":
            lines.extend(_wrapped("fix: " + check.fix, indent, indent))
    lines.append("")
    if report.readings:
        lines.append(f"reading: {', '.join(report.readings)}")
    if report.exit_code:
        blocking = [c.name for c in report.checks if c.blocking]
        lines.append(f"result: 1 - the engine relies on what differs here: {', '.join(blocking)}")
    else:
        lines.append("result: 0 - nothing the engine relies on differs")
    return "\n".join(lines) + "\n"


def _wrapped(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(
        text, width=max(100, len(rest) + 40), initial_indent=first, subsequent_indent=rest
    ) or [first.rstrip()]


def main(
    argv: list[str] | None = None,
    *,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    environ: dict[str, str] | None = None,
) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    env: Any = os.environ if environ is None else environ
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    token = ""
    try:
        if not args.conn_id and not args.url:
            raise UsageError(f"give --conn-id ID, or --url URL with the token in ${TOKEN_ENV}")
        args.bulk_ids = _bulk_ids(args.probe_bulk)
        probe = (args.probe_resume,) if args.probe_resume else ()
        _check_ids(probe, "--probe-resume")
        _check_ids(args.bulk_ids, "--probe-bulk")
        if args.probe_resume and args.probe_resume in args.bulk_ids:
            raise UsageError("--probe-resume and --probe-bulk must name different entries")
        target = target_from_url(args.url, env) if args.url else None
        confirm(args.probe_resume, args.bulk_ids, yes=args.yes, stdin=stdin, stderr=stderr)
        if target is None:
            target = target_from_connection(args.conn_id)
        token = target.token
        report = run(args, target)
    except (UsageError, ProbeRefused) as exc:
        stderr.write(f"wfdlq-doctor: {redact(str(exc), token)}\n")
        return USAGE
    except WFDLQError as exc:
        stderr.write(f"wfdlq-doctor: {redact(str(exc), token)}\n")
        return 1
    probed = bool(args.probe_resume or args.bulk_ids)
    if args.json:
        text = json.dumps(report.to_json(), indent=2) + "\n"
    else:
        text = render(report, probed=probed)
    stdout.write(redact(text, token))
    return report.exit_code

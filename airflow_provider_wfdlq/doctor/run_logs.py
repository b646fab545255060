"""Read-only check of the run-logs page size: does one call answer 11 named runs?

The client refuses to name more than ``MAX_LOG_RUNS`` runs on purpose, so this call goes
out through the session's raw client, with the same token and URL.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from airflow_provider_wfdlq.client import MAX_LOG_RUNS, DLQMessage, WFDLQError
from airflow_provider_wfdlq.client._wire import USER_AGENT
from airflow_provider_wfdlq.doctor.report import DIFFERS, OK, UNKNOWN, Check
from airflow_provider_wfdlq.doctor.session import Session

#: Runs named in the one call: one more than the engine ever names.
ASKED = MAX_LOG_RUNS + 1
ENGINE = f"the engine names at most {MAX_LOG_RUNS} runs per call"


def run_logs_check(session: Session, messages: Iterable[DLQMessage]) -> Check:
    refs = run_refs(session, messages)
    if len(refs) < ASKED:
        seen = f"only {len(refs)} runs known (from the DLQ and run logs): {ASKED} are needed"
        return Check("run_logs", UNKNOWN, seen)
    try:
        response = _ask(session, refs)
    except httpx.HTTPError as exc:
        return Check("run_logs", UNKNOWN, f"the call failed ({type(exc).__name__})")
    return _judge(session, response)


def run_refs(session: Session, messages: Iterable[DLQMessage]) -> list[tuple[str, int]]:
    """Up to ``ASKED`` (run id, created at ms) pairs: from the DLQ, then from run logs."""
    refs: dict[str, int] = {}
    for message in messages:
        if message.workflow_run_id and message.workflow_created_at is not None:
            refs.setdefault(message.workflow_run_id, message.workflow_created_at)
    cursor: str | None = None
    for _ in range(3):
        if len(refs) > MAX_LOG_RUNS:
            break
        try:
            page = session.client.run_logs(count=MAX_LOG_RUNS, cursor=cursor)
        except WFDLQError:
            break
        for run in page.runs:
            if run.workflow_run_created_at is not None:
                refs.setdefault(run.workflow_run_id, run.workflow_run_created_at)
        if page.cursor is None:
            break
        cursor = page.cursor
    return list(refs.items())[:ASKED]


def _ask(session: Session, refs: list[tuple[str, int]]) -> httpx.Response:
    value = ",".join(f"{run_id}@{ms}" for run_id, ms in refs)
    headers = {
        "Authorization": f"Bearer {session.token}",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    return session.raw.get(
        session.base_url + "/v2/workflows/logs",
        params={"workflowRuns": value},
        headers=headers,
    )


def _judge(session: Session, response: httpx.Response) -> Check:
    if response.status_code == 400:
        text = session.redact(response.text[:200])
        return Check(
            "run_logs", OK, f"{ASKED} runs in workflowRuns are refused (400: {text})", ENGINE
        )
    try:
        body = response.json()
        runs = body.get("runs") or []
        cursor = body.get("cursor") or None
        count = len(runs)
    except (ValueError, AttributeError, TypeError):
        return Check("run_logs", UNKNOWN, f"HTTP {response.status_code}, not a runs page")
    if response.status_code >= 300:
        return Check("run_logs", UNKNOWN, f"HTTP {response.status_code} to {ASKED} runs")
    more = " and a cursor" if cursor else ", no cursor"
    seen = f"{ASKED} runs in workflowRuns: {count} answered{more}"
    if count >= ASKED or (count == MAX_LOG_RUNS and cursor):
        return Check("run_logs", OK, seen, ENGINE)
    if count == MAX_LOG_RUNS:
        return Check(
            "run_logs",
            DIFFERS,
            seen + f" (run {ASKED} dropped silently)",
            fix=f"harmless: {ENGINE}",
        )
    return Check("run_logs", UNKNOWN, seen + " (some runs may be past the logs' retention)", ENGINE)

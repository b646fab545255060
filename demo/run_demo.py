"""`make demo`: the nightly recovery DAG against the local dev server, with a readable report.

Starts the dev server seeded with a realistic DLQ (several apps, a week of failures), runs
``example_dags/nightly_dlq_recovery.py`` for last night through Airflow (``dag.test()`` on a
local sqlite metadata DB under ``.demo/``), and prints what was found, resumed and skipped,
then the morning report: how the resumed runs ended (recovered, failed again and back in
the DLQ as new entries, still running). The dev server finishes resumed runs at once
(``run_seconds=0``), 85% of them successfully, so the follow-up sees every outcome.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo"
HOME = WORK / "airflow"
REPORTS = WORK / "reports"

os.environ.update(
    {
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("DEMO_LOG_LEVEL", "WARNING"),
    }
)


# Airflow's in-process test client says this once per run; it is not the demo's business.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")


#: What each ``paired_by`` of a run in the result means.
PAIRED_BY = {
    "single_id": "a fact (one id per call)",
    "answer_order": "inferred from a bulk answer's order",
    "None": "runs that could not be paired",
}


def say(text: str = "") -> None:
    print(text, flush=True)


def migrate() -> None:
    """A fresh metadata DB every time, so the demo always shows one clean run."""
    shutil.rmtree(WORK, ignore_errors=True)
    HOME.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    say(f"  metadata DB ready in {time.monotonic() - started:.1f} s ({HOME / 'airflow.db'})")


def load_nightly_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "example_dags"))
    if bag.import_errors:
        raise SystemExit(f"example DAGs failed to import: {bag.import_errors}")
    return bag.dags["nightly_dlq_recovery"]


def results(dag: Any, dr: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """Task states and return values of the run, read back from the metadata DB."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows: Any = session.scalars(
            XComModel.get_many(run_id=dr.run_id, dag_ids=dag.dag_id, key="return_value")
        ).all()
        xcom = {row.task_id: XComModel.deserialize_value(row) for row in rows}
        states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances(session=session)}
    return states, xcom


def main() -> int:
    from airflow_provider_wfdlq.devserver import DevServer

    say("== airflow-provider-wfdlq demo: nightly recovery of failed Upstash Workflow runs ==")
    say()
    migrate()
    import pendulum

    last_midnight = pendulum.now("UTC").start_of("day")
    with DevServer(seed=7, entries=400, success_ratio=0.85, run_seconds=0) as server:
        entries = server.control.entries()
        window = [
            e
            for e in entries
            if last_midnight.subtract(days=1).timestamp() * 1000
            <= e["createdAt"]
            <= last_midnight.timestamp() * 1000
        ]
        say(
            f"  dev server on {server.url}: {len(entries)} failed runs in the DLQ, "
            f"{len(window)} of them from last night's window"
        )
        # Let the failure callbacks that are still running finish (simulated time), so
        # the callbacks_final sensor passes at its first check instead of polling.
        server.control.advance_time(60)
        os.environ["AIRFLOW_CONN_QSTASH_DEFAULT"] = json.dumps(
            {"conn_type": "qstash", "host": server.url, "password": server.token}
        )
        say(
            f"  running nightly_dlq_recovery for {last_midnight.subtract(days=1).to_date_string()}"
            " through Airflow (dag.test) ..."
        )
        dag = load_nightly_dag()
        started = time.monotonic()
        dr = dag.test(logical_date=last_midnight, run_conf={"report_dir": str(REPORTS)})
        took = time.monotonic() - started
        states, xcom = results(dag, dr)
        actions = server.control.actions()
        left = server.control.entries()
        runs = server.control.runs()

    preview = xcom.get("preview", {})
    resume = xcom.get("resume", {})
    say()
    say(f"DAG run {dr.run_id}: {dr.state} in {took:.1f} s")
    for task_id, state in sorted(states.items()):
        say(f"  {task_id:<10} {state}")
    say()
    groups = preview.get("groups", [])
    by_url: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    for group in groups:
        by_url[group["workflow_url"]] += group["entries"]
        by_status[str(group["response_status"])] += group["entries"]
    skipped = {
        name.removeprefix("skipped_").replace("_", " "): n
        for name, n in preview.get("counts", {}).items()
        if name.startswith("skipped_")
    }
    found = preview.get("found", sum(by_url.values()) + sum(skipped.values()))
    reasons = ", ".join(f"{n} {why}" for why, n in sorted(skipped.items()))
    say(
        f"Found (dry-run preview): {found} failed runs in the window; "
        f"{sum(by_url.values())} to resume" + (f", skipped: {reasons}" if reasons else "")
    )
    say("  by workflow:")
    for url, n in by_url.most_common():
        say(f"    {n:>4}  {url}")
    say("  by the status the failed step answered:")
    say("    " + ", ".join(f"{status}: {n}" for status, n in sorted(by_status.items())))
    say()
    counts = resume.get("counts", {})
    say("Resumed:")
    resumed, batches = counts.get("resumed", 0), resume.get("pages", 0)
    say(
        f"  listed first: {resume.get('found', '?')} found, {resume.get('selected', '?')} "
        "selected; then acted on oldest first, by dlqIds"
    )
    say(f"  {resumed} runs resumed from the failed step in {batches} batch(es);")
    say(f"  stopped: {resume.get('stopped', '?')}")
    for name, n in sorted(counts.items()):
        if name != "resumed":
            say(f"  {n} {name.replace('_', ' ')}")
    safety = resume.get("safety", {})
    if "canary" in safety:
        canary = safety["canary"]
        say(
            f"  canary: {canary['succeeded']} of {canary['size']} resumed runs recovered "
            f"({canary['success_ratio']:.0%}, {canary['required']:.0%} needed): "
            + ("passed, the rest followed" if canary["passed"] else "FAILED, the walk stopped")
        )
    if "breaker" in safety:
        breaker = safety["breaker"]
        say(
            f"  circuit breaker: {breaker['failed_again']} of {breaker['finished']} finished "
            "runs failed again while the walk went on (trips above 50%)"
        )
    policies = resume.get("policies", {})
    if policies:
        say(f"  labels: {policies.get('labels')}; selection: {policies.get('selection')}")
    basis = Counter(str(run.get("paired_by")) for run in resume.get("runs", []))
    if basis:
        say(
            "  pairs (dlqId -> new run): "
            + ", ".join(f"{n} {PAIRED_BY.get(kind, kind)}" for kind, n in sorted(basis.items()))
        )
    for run in resume.get("runs", [])[:5]:
        say(f"    {run['dlq_id'] or '(unpaired)'} -> {run['workflow_run_id']}")
    if len(resume.get("runs", [])) > 5:
        say(f"    ... and {len(resume['runs']) - 5} more (all in the XCom result and the report)")
    resumed_ids = Counter(a["dlqId"] for a in actions if a["action"] == "resume")
    twice = [d for d, n in resumed_ids.items() if n > 1]
    say()
    say(
        f"Checked against the dev server: {len(resumed_ids)} entries resumed, "
        f"{'none' if not twice else len(twice)} resumed twice; "
        f"{len(left)} entries in the DLQ now (outside the window, skipped, or failed again)."
    )
    if resume.get("report_path"):
        say(f"Full JSON-lines report: {resume['report_path'].removeprefix('file://')}")
    morning = xcom.get("morning_report", {})
    say()
    for line in morning.get("lines", ["Morning report: not written (see the task log)"]):
        say(line)
    new_runs = {r["workflow_run_id"] for r in resume.get("runs", [])}
    failed_again = [
        r for r in runs if r["workflowRunId"] in new_runs and r["workflowState"] == "RUN_FAILED"
    ]
    back = {e["dlqId"] for e in left}
    say(
        f"Checked against the dev server: {len(failed_again)} resumed runs failed again, "
        f"{sum(r.get('dlqId') in back for r in failed_again)} of them back in the DLQ."
    )
    if morning.get("summary_path"):
        say(f"Summary file: {morning['summary_path'].removeprefix('file://')}")
    if morning.get("page_path"):
        # One self-contained HTML file (inline CSS and SVG, no script): it opens offline.
        say(f"Morning report page: {morning['page_path'].removeprefix('file://')}")
    return 0 if str(dr.state) == "success" and not twice else 1


if __name__ == "__main__":
    sys.exit(main())

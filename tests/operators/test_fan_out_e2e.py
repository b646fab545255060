"""A recovery fanned out over 4 partitions through Airflow (``dag.test()``), under faults.

One run checks: the plan's partitions are disjoint and cover the window (also at the slice
boundaries, to the millisecond), every entry is resumed exactly once across all mapped tasks
and their retries, each mapped task has its own report file and flow-control key, and the
sensor and the morning report take the mapped results, per partition and in total.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pendulum
import pytest

from tests.airflow.dagrun import dagbag, run_dag

pytestmark = pytest.mark.airflow

DAY = 86_400_000
URLS = [f"https://shop.example.com/api/workflow/{name}" for name in ("a", "b", "c")]


def load(folder: Path, dag_id: str) -> Any:
    bag = dagbag(str(folder))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def test_four_partitions_under_faults_resume_each_entry_exactly_once(
    airflow_db: Path, wfdlq_devserver: Any, wfdlq_connection: str, tmp_path: Path
) -> None:
    server = wfdlq_devserver
    server.control.reset(entries=0)
    start = int(pendulum.now("UTC").start_of("day").subtract(days=1).timestamp() * 1000)
    end = start + DAY
    # Entries all over the window, at both ends, on both sides of every slice boundary
    # (a quarter of a day), and just outside the window (never to be touched).
    stamps = [start, end, start + 1, end - 1]
    for quarter in (1, 2, 3):
        boundary = start + (end - start + 1) * quarter // 4
        stamps += [boundary - 1, boundary, boundary + 1]
    stamps += [start + DAY * i // 37 for i in range(1, 37)]
    seeded: list[dict[str, Any]] = []
    for i, at in enumerate(stamps):
        seeded += server.control.seed_entries(
            count=1, createdAt=at, workflowUrl=URLS[i % 3], responseStatus=500 if i % 9 else 489
        )
    outside = server.control.seed_entries(count=2, createdAt=start - 1, responseStatus=500)
    outside += server.control.seed_entries(count=2, createdAt=end + 1, responseStatus=500)
    in_window = {e["dlqId"] for e in seeded}
    retryable = {e["dlqId"] for e in seeded if e["responseStatus"] != 489}
    server.control.set_config(run_seconds=0, success_ratio=1.0)
    resume_path = "/v2/workflows/dlq/resume"
    server.control.add_fault("503", method="POST", path_prefix=resume_path, times=3)
    server.control.add_fault("503", method="POST", path_prefix=resume_path, ratio=0.2)
    report = tmp_path / "night.jsonl"

    outcome = run_dag(
        load(Path(__file__).resolve().parents[1] / "dags", "wfdlq_fan_out"),
        conf={"window": [start, end], "report_path": f"file://{report}"},
    )

    assert outcome.task_states["resume"] == "success", outcome.task_states
    # Exactly once, across 4 mapped tasks and whatever retries the 503s caused.
    actions = [a for a in server.control.actions() if a["action"] == "resume"]
    times = Counter(a["dlqId"] for a in actions)
    assert max(times.values()) == 1, [d for d, n in times.items() if n > 1]
    assert set(times) == retryable
    assert not set(times) & {e["dlqId"] for e in outside}
    faulted = [r for r in server.control.requests() if r.get("fault") == "503"]
    assert len(faulted) >= 3
    assert all(r["path"].startswith(resume_path) for r in faulted)

    # One report per partition, none overwritten: together every entry, each once.
    files = sorted(tmp_path.glob("night.*.jsonl"))
    assert [f.name for f in files] == [f"night.{i}.jsonl" for i in range(4)]
    per_file = [{json.loads(line)["dlq_id"] for line in f.read_text().splitlines()} for f in files]
    assert sum(len(ids) for ids in per_file) == len(set().union(*per_file)) == len(in_window)
    assert set().union(*per_file) == in_window

    # One flow-control key per mapped task, and each partition's entries under its own key.
    keys: dict[str, set[str]] = {}
    for action in actions:
        headers = {k.lower(): v for k, v in (action.get("overrides") or {}).items()}
        keys.setdefault(headers["upstash-flow-control-key"], set()).add(action["dlqId"])
    assert len(keys) == 4
    assert sorted(k.rsplit("-", 1)[1] for k in keys) == ["0", "1", "2", "3"]
    for key, ids in keys.items():
        assert ids <= per_file[int(key.rsplit("-", 1)[1])]

    # The sensor followed every partition's runs; the morning report totals and splits.
    follow = outcome.xcom["follow"]
    assert follow["recovered"] == len(retryable)
    assert [p["followed"] for p in follow["partitions"]] == [
        len(ids & retryable) for ids in per_file
    ]
    morning = outcome.xcom["report"]
    assert (morning["found"], morning["resumed"], morning["recovered"]) == (
        len(in_window),
        len(retryable),
        len(retryable),
    )
    assert [p["resumed"] for p in morning["partitions"]] == [
        len(ids & retryable) for ids in per_file
    ]
    assert morning["problems"] == []
    assert morning["summary_path"].endswith("/night.summary.json")
    text = outcome.xcom["report_text"]
    assert (text["resumed"], len(text["partitions"])) == (len(retryable), 4)


def test_the_fan_out_example_dags_load() -> None:
    folder = Path(__file__).resolve().parents[2] / "example_dags"
    for dag_id in ("fan_out_over_partitions", "fan_out_over_accounts"):
        dag = load(folder, dag_id)
        assert dag.doc_md


def test_the_accounts_example_resumes_through_each_connection(
    airflow_db: Path,
    wfdlq_devserver: Any,
    wfdlq_connection: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two connections ("accounts") to one dev server: the first resumes the night, the
    second finds it done; every entry once, one summary with a line per account."""
    server = wfdlq_devserver
    server.control.reset(entries=0)
    logical = pendulum.now("UTC").start_of("day")
    start = int(logical.subtract(days=1).timestamp() * 1000)
    seeded = server.control.seed_entries(count=6, createdAt=start + 1000, responseStatus=500)
    server.control.set_config(run_seconds=0, success_ratio=1.0)
    conn = {"conn_type": "qstash", "host": server.url, "password": server.token}
    for name in ("QSTASH_EU", "QSTASH_US"):
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps(conn))
    dag = load(Path(__file__).resolve().parents[2] / "example_dags", "fan_out_over_accounts")
    for task in dag.tasks:  # no triggerer in dag.test(): follow in the worker
        if task.task_id == "follow":
            task.partial_kwargs["deferrable"] = False
            task.partial_kwargs["poke_interval"] = 0.2

    outcome = run_dag(dag, conf={"report_dir": str(tmp_path)}, logical_date=logical)

    actions = [a for a in server.control.actions() if a["action"] == "resume"]
    assert sorted(a["dlqId"] for a in actions) == sorted(e["dlqId"] for e in seeded)
    morning = outcome.xcom["morning_report"]
    assert (morning["resumed"], morning["recovered"]) == (6, 6)
    assert sorted(p["resumed"] for p in morning["partitions"]) == [0, 6]
    reports = sorted(p.name for p in (tmp_path / "fan_out_over_accounts").glob("*.jsonl"))
    assert len(reports) == 1 or all(".0." in r or ".1." in r for r in reports)

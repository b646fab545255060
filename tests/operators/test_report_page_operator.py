"""DLQRecoveryReportOperator writes the page next to the summary; the task's link."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pendulum
import pytest

from airflow_provider_wfdlq.get_provider_info import get_provider_info
from airflow_provider_wfdlq.links import PAGE_URL_KEY, DLQRecoveryReportLink, _from_result
from airflow_provider_wfdlq.operators.dlq import ResumeDLQOperator
from airflow_provider_wfdlq.operators.report import DLQRecoveryReportOperator
from tests.report_page.night import FOLLOW, MAIL, PREVIEW, RESUME, SHOP, records


class FakeTI:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def run_report(tmp_path: Path) -> tuple[dict[str, Any], FakeTI]:
    report = tmp_path / "2026-11-29.jsonl"
    report.write_text("".join(json.dumps(r) + "\n" for r in records()))
    (tmp_path / "2026-11-28.summary.json").write_text(json.dumps({"found": 9, "recovered": 7}))
    op = DLQRecoveryReportOperator(
        task_id="morning_report",
        preview=json.dumps(PREVIEW),  # as a template renders an XCom
        resume={**RESUME, "report_path": f"file://{report}"},
        follow=FOLLOW,
        fail_on_problems=False,
        qstash_conn_id=None,  # no lookups (tests/report_page/test_failed_details.py)
    )
    ti = FakeTI()
    context: Any = {"ti": ti, "data_interval_start": pendulum.datetime(2026, 11, 29, tz="UTC")}
    return op.execute(context), ti


def test_the_page_is_written_next_to_the_summary_from_the_files(tmp_path: Path) -> None:
    result, ti = run_report(tmp_path)
    page = tmp_path / "2026-11-29.html"
    assert result["page_path"] == f"file://{page}"
    html = page.read_text()
    assert 'data-figure="found" data-value="6"' in html
    assert 'data-night="2026-11-28"' in html  # the earlier night's summary beside it
    summary = json.loads((tmp_path / "2026-11-29.summary.json").read_text())
    assert summary["details"]["night"] == "2026-11-29"
    assert summary["details"]["safety"][0]["paused"]["key"] == "airflow-redrive-2026-11-29"
    assert ti.pushed[PAGE_URL_KEY] == f"file://{page}"


def test_the_link_follows_the_deployments_url_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__WFDLQ__REPORT_URL_MAP", f"file://{tmp_path}/=https://r.example/")
    _, ti = run_report(tmp_path)
    assert ti.pushed[PAGE_URL_KEY] == "https://r.example/2026-11-29.html"


def test_the_link_on_the_resume_is_the_page_next_to_its_report() -> None:
    assert _from_result({"report_path": "file:///r/n.jsonl"}) == "file:///r/n.html"
    assert _from_result({"report_path": "file:///r/n.jsonl", "dry_run": True}) == ""
    assert _from_result({"report_path": None}) == ""
    assert _from_result(None) == ""


def test_both_operators_have_the_link_and_the_provider_registers_it() -> None:
    for operator in (DLQRecoveryReportOperator, ResumeDLQOperator):
        names = [link.name for link in operator.operator_extra_links]
        assert names == ["DLQ recovery report"]
    path = f"{DLQRecoveryReportLink.__module__}.{DLQRecoveryReportLink.__qualname__}"
    assert get_provider_info()["extra-links"] == [path]


def test_a_link_that_cannot_be_worked_out_is_empty_not_an_error() -> None:
    """Airflow 3.1 asks for the link outside any try: it must not raise (here there is no
    task runtime to read XCom from)."""
    key: Any = type("Key", (), {"dag_id": "d", "task_id": "t", "run_id": "r", "map_index": -1})
    op = DLQRecoveryReportOperator(task_id="morning_report")
    assert DLQRecoveryReportLink().get_link(op, ti_key=key) == ""


def test_a_mapped_recovery_counts_the_entries_of_every_partitions_report(
    tmp_path: Path,
) -> None:
    lines = records()
    parts = []
    for i, chunk in enumerate((lines[:3], lines[3:])):
        report = tmp_path / f"night.{i}.jsonl"
        report.write_text("".join(json.dumps(r) + "\n" for r in chunk))
        parts.append({**RESUME, "report_path": f"file://{report}"})
    op = DLQRecoveryReportOperator(
        task_id="morning_report", resume=parts, fail_on_problems=False, qstash_conn_id=None
    )
    context: Any = {"ti": FakeTI()}
    result = op.execute(context)
    assert result["page_path"] == f"file://{tmp_path}/night.html"
    html = (tmp_path / "night.html").read_text()
    marks = html.count('class="mark" data-key="https://')
    assert marks == 2 * 2  # two URLs, in the by-URL and the outcome charts
    assert "night.0.jsonl" in html
    assert "night.1.jsonl" in html
    by_url = html.split('data-chart="by_url"', 1)[1].split("</svg>", 1)[0]
    for url in (SHOP, MAIL):  # every entry of both reports, once
        assert f'data-url="{url}" data-value="3"' in by_url


def test_a_summary_kept_elsewhere_still_counts_the_resumes_report(tmp_path: Path) -> None:
    report = tmp_path / "reports" / "night.jsonl"
    report.parent.mkdir()
    report.write_text("".join(json.dumps(r) + "\n" for r in records()))
    op = DLQRecoveryReportOperator(
        task_id="morning_report",
        resume={**RESUME, "report_path": f"file://{report}"},
        report_path=f"file://{tmp_path}/summaries/night.jsonl",
        fail_on_problems=False,
        qstash_conn_id=None,
    )
    context: Any = {"ti": FakeTI()}
    assert op.execute(context)["page_path"] == f"file://{tmp_path}/summaries/night.html"
    by_url = (tmp_path / "summaries" / "night.html").read_text().split('data-chart="by_url"')[1]
    assert f'data-url="{MAIL}" data-value="3"' in by_url.split("</svg>")[0]  # 489 one too

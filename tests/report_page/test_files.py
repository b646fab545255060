"""The page from files: the JSON-lines report, the summary and the summaries beside it."""

from __future__ import annotations

import json
from pathlib import Path

from airflow_provider_wfdlq.report_page import make_page
from airflow_provider_wfdlq.report_page.files import read_earlier, read_records
from tests.report_page.night import records, summary


def write_night(folder: Path) -> tuple[Path, Path]:
    report = folder / "2026-11-29.jsonl"
    report.write_text("".join(json.dumps(r) + "\n" for r in records()) + '{"cut short')
    summary_path = folder / "2026-11-29.summary.json"
    summary_path.write_text(json.dumps(summary()))
    return report, summary_path


def test_records_keep_what_the_page_needs_and_skip_a_line_cut_short(tmp_path: Path) -> None:
    report, _ = write_night(tmp_path)
    lines = list(read_records(report))
    assert len(lines) == len(records())
    assert set(lines[0]) == {
        "dlq_id",
        "event",
        "workflow_url",
        "response_status",
        "new_workflow_run_id",
    }


def test_earlier_summaries_are_read_from_beside_and_an_unreadable_one_is_left_out(
    tmp_path: Path,
) -> None:
    _, summary_path = write_night(tmp_path)
    (tmp_path / "2026-11-27.summary.json").write_text(json.dumps({"found": 3, "recovered": 2}))
    (tmp_path / "2026-11-28.summary.json").write_text("{not json")
    (tmp_path / "notes.json").write_text("{}")
    earlier = read_earlier(summary_path)
    assert earlier == [{"found": 3, "recovered": 2, "night": "2026-11-27"}]


def test_make_page_names_the_files_it_was_made_from(tmp_path: Path) -> None:
    report, summary_path = write_night(tmp_path)
    page = make_page(summary(), summary_path=summary_path, report_paths=[report])
    assert str(summary_path) in page
    assert str(report) in page
    assert 'data-night="2026-11-29"' in page
    missing = make_page(summary(), summary_path=summary_path, report_paths=[tmp_path / "x.jsonl"])
    assert "x.jsonl" not in missing  # not there: counts come from the summary's groups

"""The morning report builder: what a night did, from whatever results exist."""

from __future__ import annotations

import pytest

from airflow_provider_wfdlq.client import ValidationError
from airflow_provider_wfdlq.recovery.morning import build_morning_report, summary_path_for

PREVIEW = {"counts": {"would_resume": 10, "skipped_non_retryable": 2, "skipped_body": 1}}
RESUME = {
    "counts": {
        "resumed": 9,
        "resumed_answer_lost": 1,
        "skipped_non_retryable": 2,
        "skipped_body": 1,
        "vanished": 1,
    },
    "stopped": "done",
    "report_path": "file:///r/night.jsonl",
}
FOLLOW = {
    "followed": 9,
    "counts": {"RUN_SUCCESS": 6, "RUN_FAILED": 2, "RUN_CANCELED": 0},
    "still_running": 1,
    "unknown": 1,
    "success_ratio": 6 / 9,
    "failed": [
        {"workflow_run_id": "wfr_a", "dlq_id": "200-0", "resumed_from": "100-0"},
        {"workflow_run_id": "wfr_b", "dlq_id": "200-1", "resumed_from": "100-1"},
    ],
    "status": "success",
}


def test_the_summary_says_found_resumed_recovered_failed_again_running_and_skipped() -> None:
    report = build_morning_report(preview=PREVIEW, resume=RESUME, follow=FOLLOW, title="Night")
    assert (report.found, report.resumed, report.recovered) == (13, 10, 6)
    assert (report.failed_again, report.still_running, report.unknown) == (2, 1, 1)
    # Every skipped_<reason> key, whatever the reasons are, generically.
    assert report.skipped == {"body": 1, "non_retryable": 2}
    assert report.other == {"vanished": 1}
    assert report.problems == ()
    text = report.text()
    assert text.splitlines()[0] == "Night"
    assert "skipped         3 by reason:" in text
    assert "non retryable  2" in text
    assert "200-0 <- 100-0" in text  # the NEW dlqId of a run that failed again
    assert report.to_json()["lines"] == text.splitlines()


def test_results_from_a_template_render_and_missing_ones_say_not_known() -> None:
    report = build_morning_report(preview=str(PREVIEW), resume=str(RESUME), follow="None")
    assert report.found == 13
    assert report.recovered is None
    assert "recovered       not known" in report.text()
    assert report.problems == (
        "the follow-up did not report: outcomes of the resumed runs unknown",
    )
    capped = {"counts": {"left_max_resumes": 7}, "stopped": "max_resumes"}
    nothing = build_morning_report(resume=capped)
    assert (nothing.resumed, nothing.recovered, nothing.problems) == (0, 0, ())
    assert any("7 entries left in the DLQ for the next run" in note for note in nothing.notes)
    assert build_morning_report().problems == ("the resume did not report (failed or did not run)",)


def test_entries_whose_outcome_is_unknown_are_a_problem() -> None:
    unknown = {"counts": {"resumed": 3, "answer_lost_unknown": 2}, "stopped": "done"}
    report = build_morning_report(resume=unknown, follow=FOLLOW)
    assert any("2 entries may or may not have been resumed" in p for p in report.problems)


def test_a_failed_follow_up_is_a_problem_and_a_report_timeout_a_note() -> None:
    failed = {**FOLLOW, "status": "failed", "message": "below min_success_ratio 0.9"}
    report = build_morning_report(resume=RESUME, follow=failed)
    assert report.problems == ("the follow-up failed: below min_success_ratio 0.9",)
    timed = build_morning_report(resume=RESUME, follow={**FOLLOW, "timed_out": True})
    assert timed.problems == ()
    assert timed.notes == ("the follow-up timed out with runs still running",)
    truncated = build_morning_report(
        resume=RESUME, follow={**FOLLOW, "not_followed_beyond_result": True, "followed": 5}
    )
    assert truncated.not_followed == 10 - 5 - 1


def test_a_result_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        build_morning_report(follow="[1, 2]")
    assert caught.value.field == "follow"


@pytest.mark.parametrize(
    ("report", "summary"),
    [
        ("file:///r/nightly/2026-01-01.jsonl", "file:///r/nightly/2026-01-01.summary.json"),
        ("s3://bucket/x/night.json", "s3://bucket/x/night.summary.json"),
        ("/tmp/report", "/tmp/report.summary.json"),
    ],
)
def test_the_summary_goes_next_to_the_report(report: str, summary: str) -> None:
    assert summary_path_for(report) == summary

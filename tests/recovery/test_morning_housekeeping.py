"""The morning report's housekeeping part: what was deleted, which callbacks were retried."""

from __future__ import annotations

from airflow_provider_wfdlq.recovery.morning import build_morning_report

RESUME = {"action": "resume", "counts": {"resumed": 2}, "stopped": "done"}
FOLLOW = {"counts": {"RUN_SUCCESS": 2}, "followed": 2, "still_running": 0}
DELETE = {
    "action": "delete",
    "dry_run": False,
    "counts": {"deleted": 3, "deleted_answer_lost": 1, "left_max_resumes": 2},
    "report_path": "file:///r/night.deleted.jsonl",
    "entries": [{"dlq_id": f"d{i}", "event": "deleted"} for i in range(4)],
}
RETRY = {
    "action": "retry_failure_callback",
    "dry_run": False,
    "counts": {"callback_retried": 2, "answer_lost_unknown": 1, "skipped_callback_state": 5},
    "entries": [{"dlq_id": "c1"}, {"dlq_id": "c2"}],
}


def test_housekeeping_counts_what_was_deleted_and_which_callbacks_were_retried() -> None:
    report = build_morning_report(resume=RESUME, follow=FOLLOW, housekeeping=[DELETE, RETRY])

    house = report.to_json()["housekeeping"]
    assert (house["deleted"], house["callbacks_retried"], house["callbacks_canceled"]) == (4, 2, 0)
    assert house["callbacks_retried_ids"] == ["c1", "c2"]
    assert house["deleted_entries_in"] == ["file:///r/night.deleted.jsonl"]
    assert house["left"] == 2
    text = report.text()
    assert "callbacks retried   2  (c1, c2)" in text
    assert "deleted entries, in full, in file:///r/night.deleted.jsonl" in text
    # A lost answer the DLQ cannot settle is a problem for a human.
    assert any("housekeeping" in p for p in report.problems)


def test_housekeeping_that_is_off_or_did_not_report() -> None:
    for off in (None, "None", ""):
        report = build_morning_report(resume=RESUME, follow=FOLLOW, housekeeping=off)
        assert "housekeeping" not in report.to_json()
        assert report.problems == ()
    missing = build_morning_report(resume=RESUME, follow=FOLLOW, housekeeping="[None, None]")
    assert "a housekeeping task did not report" in " ".join(missing.problems)
    preview = {**DELETE, "dry_run": True, "counts": {"would_delete": 6}}
    dry = build_morning_report(resume=RESUME, follow=FOLLOW, housekeeping=preview)
    assert dry.to_json()["housekeeping"]["deleted"] == 0

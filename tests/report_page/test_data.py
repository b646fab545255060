"""The summary file and the report's records, turned into what the page shows."""

from __future__ import annotations

from airflow_provider_wfdlq.report_page.data import (
    HISTORY_NIGHTS,
    Bar,
    Outcomes,
    page_data,
)
from tests.report_page.night import MAIL, SHOP, record, records, summary


def test_headline_figures_are_the_summarys() -> None:
    data = page_data(summary(), records())
    figures = {f.key: f.value for f in data.figures}
    assert figures == {
        "found": 6,
        "resumed": 5,
        "recovered": 2,
        "failed_again": 1,
        "still_running": 1,
        "skipped": 1,
        "expiring": 1,
    }
    assert (
        next(f for f in data.figures if f.key == "recovered").note == "40.0% of the followed runs"
    )


def test_a_figure_no_task_reported_is_not_known() -> None:
    data = page_data({"title": "t", "found": None, "recovered": None}, None)
    figures = {f.key: f.value for f in data.figures}
    assert figures["found"] is None
    assert figures["recovered"] is None
    assert figures["expiring"] is None  # no details: not known, not 0


def test_failures_by_url_and_status_count_each_entry_once_from_the_report() -> None:
    again = record("100-0", SHOP, 500, "resumed", new_workflow_run_id="wfr_0")  # a retry's line
    data = page_data(summary(), [*records(), again])
    assert data.by_url == (Bar(MAIL, 3), Bar(SHOP, 3))  # ties by name
    assert data.by_status == (Bar("500", 3), Bar("503", 2), Bar("489", 1))


def test_without_the_report_failures_come_from_the_previews_groups() -> None:
    data = page_data(summary(), None)
    assert data.by_url == (Bar(SHOP, 3), Bar(MAIL, 2))
    assert data.by_status == (Bar("500", 3), Bar("503", 2))
    assert data.outcomes == ()
    assert "JSON-lines report" in data.outcomes_note


def test_outcomes_per_url_pair_each_run_with_the_entry_it_was_resumed_from() -> None:
    data = page_data(summary(), records())
    assert data.outcomes == (
        # wfr_0, wfr_1 recovered; wfr_2 canceled.
        Outcomes(SHOP, resumed=3, recovered=2, failed_again=0, still_running=0, canceled=1),
        # wfr_3 failed again, wfr_4 still running.
        Outcomes(MAIL, resumed=2, recovered=0, failed_again=1, still_running=1, canceled=0),
    )
    assert sum(o.recovered or 0 for o in data.outcomes) == summary()["recovered"]


def test_outcomes_are_not_known_when_the_follow_up_did_not_report() -> None:
    night = summary()
    night.update(recovered=None, failed_again=None, still_running=None, failed=[])
    data = page_data(night, records())
    assert all(o.recovered is None for o in data.outcomes)
    assert "did not report" in data.outcomes_note


def test_verdicts_and_the_paused_key() -> None:
    data = page_data(summary(), records())
    assert [(v.name, v.ok) for v in data.verdicts] == [("canary", True), ("circuit breaker", True)]
    assert "2 of 2 resumed runs recovered (100%, 75% needed): passed" in data.verdicts[0].text
    assert data.paused == ("airflow-redrive-2026-11-29 by circuit_breaker",)
    tripped = summary()
    tripped["details"]["safety"][0]["stopped"] = "circuit_breaker"
    data = page_data(tripped, records())
    assert data.verdicts[1].ok is False
    assert "TRIPPED" in data.verdicts[1].text
    assert not data.ok


def test_failed_again_rows_name_the_new_entry_and_the_one_it_was_resumed_from() -> None:
    (row,) = page_data(summary(), records()).failed
    assert (row.new_dlq_id, row.resumed_from, row.url) == ("200-0", "100-3", MAIL)
    assert row.status == "503 (first failure)"  # the report's status of the resumed entry
    assert row.body == ""
    night = summary()
    night["failed"][0].update(response_status=502, response_body="x" * 1000)
    (row,) = page_data(night, records()).failed
    assert row.status == "502"
    assert len(row.body) == 300


def test_expiring_rows_are_oldest_first_with_the_entrys_url() -> None:
    night = summary()
    night["details"]["expiring"].insert(0, {"dlq_id": "100-8", "expires_at": 1_797_000_000_000})
    data = page_data(night, records())
    assert [(e.dlq_id, e.url) for e in data.expiring] == [("100-9", MAIL), ("100-8", "")]


def test_history_keeps_the_last_nights_and_the_newest_summary_of_each() -> None:
    earlier = [
        {"details": {"night": f"2026-11-{day:02d}"}, "found": day, "recovered": day - 1}
        for day in range(1, 29)
    ]
    earlier.append({"night": "2026-11-28", "found": 99, "recovered": 98})  # a second run
    data = page_data(summary(), records(), earlier)
    assert len(data.history) == HISTORY_NIGHTS
    assert data.history[-1].night == "2026-11-29"
    assert data.history[-1].found == 6
    assert (data.history[-2].found, data.history[-2].recovered) == (99, 98)
    assert data.history[0].night == "2026-11-16"


def test_problems_make_the_page_say_it_needs_a_look() -> None:
    assert page_data(summary(), records()).ok
    night = summary()
    night["problems"] = ["the follow-up failed: below min_success_ratio"]
    assert not page_data(night, records()).ok


def test_skip_reasons_and_every_other_count_of_the_resume() -> None:
    night = summary()
    night["other"] = {"left_max_resumes": 4, "vanished": 0, "a_count_added_later": 2}
    data = page_data(night, records())
    assert data.skipped == (Bar("non_retryable", 1),)
    assert data.other == (Bar("left_max_resumes", 4), Bar("a_count_added_later", 2))

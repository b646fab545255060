"""Fan-out without Airflow: disjoint partitions, and mapped results in one morning report."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from airflow_provider_wfdlq.client import DLQFilters, ValidationError
from airflow_provider_wfdlq.recovery.morning import build_morning_report, merge_results
from airflow_provider_wfdlq.recovery.partitions import plan_partitions, time_slices

URL = "https://shop.example.com/api/workflow/"


def preview(per_url: dict[str, int], **counts: int) -> dict[str, Any]:
    return {
        "dry_run": True,
        "counts": {"would_resume": sum(per_url.values()), **counts},
        "groups": [
            {"workflow_url": url, "response_status": 500, "entries": n}
            for url, n in per_url.items()
        ],
    }


def test_by_url_names_every_url_once_and_balances_the_entries() -> None:
    per_url = {URL + name: n for name, n in zip("abcdefg", [50, 40, 30, 20, 10, 5, 1], strict=True)}
    window = ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
    parts = plan_partitions(preview(per_url), by="workflow_url", max_partitions=3, window=window)
    assert len(parts) == 3
    named = [url for part in parts for url in part["workflow_url"]]
    assert sorted(named) == sorted(per_url)  # every URL in exactly one partition
    loads = sorted(sum(per_url[u] for u in part["workflow_url"]) for part in parts)
    assert loads == [50, 51, 55]  # largest first, onto the lightest partition
    for part in parts:  # each one a valid filter, with the window
        filters = DLQFilters.coerce(part)
        assert filters.from_date == 1767225600000
        assert filters.to_date == 1767312000000


def test_by_url_never_plans_more_partitions_than_urls_and_none_for_nothing() -> None:
    parts = plan_partitions(preview({URL + "a": 3}), max_partitions=8)
    assert parts == [{"workflow_url": [URL + "a"]}]
    assert plan_partitions(preview({}), max_partitions=8) == []


@pytest.mark.parametrize(
    "result",
    [
        # More URLs than the preview's groups name: entries would be missed.
        {**preview({URL + "a": 3}), "counts": {"would_resume": 5}},
        # A capped preview: the entries beyond max_resumes have no group.
        preview({URL + "a": 3}, left_max_resumes=4),
        # Entries without a URL cannot be named by a filter.
        preview({"": 2}),
        # Not a dry run.
        {**preview({URL + "a": 3}), "dry_run": False},
    ],
)
def test_by_url_refuses_a_preview_that_does_not_name_every_entry(result: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        plan_partitions(result, by="workflow_url")
    assert caught.value.field == "preview"


def test_time_slices_cover_the_inclusive_window_disjointly() -> None:
    rng = random.Random(7)
    for _ in range(200):
        start = rng.randrange(1_700_000_000_000, 1_800_000_000_000)
        end = start + rng.randrange(1, 200)
        n = rng.randrange(1, 12)
        slices = time_slices(start, end, n)
        assert 1 <= len(slices) <= n
        assert slices[0][0] == start
        assert slices[-1][1] == end
        for (_a, b), (c, _) in itertools.pairwise(slices):
            assert c == b + 1  # the API's toDate is inclusive: the next slice starts after
        assert all(b > a for a, b in slices)  # never a zero-length window


def test_by_time_each_millisecond_of_the_window_is_in_exactly_one_partition() -> None:
    window = (1_767_225_600_000, 1_767_312_000_000)
    parts = plan_partitions(
        preview({URL + "a": 5}), by="time", max_partitions=4, window=window, filters={"label": "x"}
    )
    assert len(parts) == 4
    stamps = [window[0], window[1], window[0] + 21_600_000, window[0] + 21_599_999]
    for stamp in stamps:
        holders = [p for p in parts if p["from_date"] <= stamp <= p["to_date"]]
        assert len(holders) == 1
    assert all(part["label"] == "x" for part in parts)
    assert all(DLQFilters.coerce(part) for part in parts)
    # An empty preview plans nothing; no preview at all still slices.
    assert plan_partitions(preview({}), by="time", window=window) == []
    assert len(plan_partitions(None, by="time", max_partitions=2, window=window)) == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"by": "label"}, "by"),
        ({"max_partitions": 0}, "max_partitions"),
        ({"by": "time"}, "window"),
        ({"by": "time", "window": (1767225600000, 1767225600000)}, "window"),
        ({"filters": {"workflow_url": URL}}, "filters"),
        ({"filters": {"dlq_ids": ["1"]}}, "filters"),
    ],
)
def test_bad_plans_are_refused_naming_the_argument(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        plan_partitions(preview({URL + "a": 1}), **kwargs)
    assert caught.value.field == field


RESUMES = [
    {
        "counts": {"resumed": 4, "skipped_non_retryable": 1},
        "stopped": "done",
        "runs": [{"dlq_id": "1", "workflow_run_id": "wfr_1", "workflow_created_at": 1}],
        "found": 5,
        "selected": 4,
        "report_path": "file:///r/night.0.jsonl",
    },
    {
        "counts": {"resumed": 3, "left_max_resumes": 2},
        "stopped": "max_resumes",
        "runs": [],
        "found": 5,
        "selected": 5,
        "report_path": "file:///r/night.1.jsonl",
    },
]


def test_the_morning_report_of_a_mapped_resume_sums_and_lists_each_partition() -> None:
    follows = [
        {"followed": 4, "counts": {"RUN_SUCCESS": 3, "RUN_FAILED": 1}, "status": "success"},
        {"followed": 3, "counts": {"RUN_SUCCESS": 3}, "status": "success"},
    ]
    # As xcom_pull gives it, and as a template renders it (text).
    for resume in (RESUMES, str(RESUMES), iter(RESUMES)):
        report = build_morning_report(resume=resume, follow=follows)
        assert (report.found, report.resumed) == (8, 7)
        assert (report.recovered, report.failed_again) == (6, 1)
        assert report.success_ratio == 6 / 7
        assert [p.resumed for p in report.partitions if p] == [4, 3]
        assert [p.recovered for p in report.partitions if p] == [3, 3]
        assert any("partition #1: the resume stopped early" in n for n in report.notes)
        text = report.text()
        assert "per partition (2):" in text
        assert "#1  found 3, resumed 3" in text
        assert report.to_json()["partitions"][0]["resumed"] == 4


def test_one_follow_over_every_partition_counts_in_the_total_only() -> None:
    follow = {"followed": 7, "counts": {"RUN_SUCCESS": 7}, "status": "success"}
    report = build_morning_report(resume=RESUMES, follow=follow)
    assert (report.resumed, report.recovered) == (7, 7)
    assert [p.recovered for p in report.partitions if p] == [None, None]
    assert not report.problems  # a partition without its own follow-up is not a problem


def test_a_partition_that_did_not_report_is_a_problem() -> None:
    report = build_morning_report(resume=[RESUMES[0], None])
    assert report.resumed == 4
    assert report.partitions[1] is None
    assert any("#1 did not report" in p for p in report.problems)
    assert "#1  did not report" in report.text()


def test_one_result_merges_to_itself() -> None:
    assert merge_results([RESUMES[0]]) is RESUMES[0]
    assert merge_results([None]) is None
    merged = merge_results(RESUMES)
    assert merged is not None
    assert merged["stopped"] == "max_resumes"
    assert merged["counts"]["resumed"] == 7
    assert merged["found"] == 10

"""Mapped ResumeDLQOperator tasks get their own default flow-control key and report path."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_wfdlq.operators.dlq import ResumeDLQOperator, report_path_for_map_index


def context(map_index: int) -> Any:
    ti = SimpleNamespace(map_index=map_index, try_number=1)
    return {"ti": ti, "dag_run": SimpleNamespace(run_id="manual__2026-01-01T00:00:00+00:00")}


def operator(**kwargs: Any) -> ResumeDLQOperator:
    return ResumeDLQOperator(task_id="resume", retention="7d", filters={"label": "x"}, **kwargs)


def test_the_default_flow_control_key_is_one_per_mapped_task() -> None:
    op = operator(overrides={"flow_control": "parallelism=2"})
    unmapped = op.build_plan(context(-1)).overrides.flow_control_key
    assert unmapped == "airflow-redrive-adhoc_airflow-manual__2026-01-01T00:00:00-00:00"
    keys = {op.build_plan(context(i)).overrides.flow_control_key for i in range(4)}
    assert keys == {f"{unmapped}-{i}" for i in range(4)}


def test_a_key_the_user_names_is_used_as_given_also_when_mapped() -> None:
    op = operator(overrides={"flow_control_key": "shared", "flow_control": "rate=10"})
    assert op.build_plan(context(3)).overrides.flow_control_key == "shared"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("file:///r/nightly/2026-01-01.jsonl", "file:///r/nightly/2026-01-01.2.jsonl"),
        ("s3://bucket/x.y/night.json", "s3://bucket/x.y/night.2.json"),
        ("/tmp/report", "/tmp/report.2"),
        ("/tmp/.hidden", "/tmp/.hidden.2"),
    ],
)
def test_the_report_path_of_a_mapped_task_gets_its_map_index(path: str, expected: str) -> None:
    assert report_path_for_map_index(path, 2) == expected
    op = operator(report_path=path)
    assert op._report_path(context(2)) == expected
    assert op._report_path(context(-1)) == path  # not mapped: as given


def test_a_report_path_that_templates_the_map_index_is_left_alone() -> None:
    op = operator(report_path="file:///r/{{ ti.map_index }}/night.jsonl")
    op.report_path = "file:///r/2/night.jsonl"  # as rendered
    assert op._report_path(context(2)) == "file:///r/2/night.jsonl"

"""Reading the report files the page is made from, and writing the page.

Paths are whatever the caller opens files with (Airflow's ``ObjectStoragePath``, or a
``pathlib.Path``): anything with ``open``, ``exists``, ``parent``, ``iterdir`` and
``name``. Only the fields the page needs are kept of each record, so a report of 100k
entries is read in a few tens of MB."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from itertools import chain
from typing import Any, Final

from airflow_provider_wfdlq.report_page.data import HISTORY_NIGHTS, page_data
from airflow_provider_wfdlq.report_page.render import render

log = logging.getLogger("airflow_provider_wfdlq.report_page")

SUMMARY_SUFFIX: Final = ".summary.json"
#: Record fields the page reads.
FIELDS: Final = ("dlq_id", "event", "workflow_url", "response_status", "new_workflow_run_id")


def read_records(path: Any) -> Iterator[dict[str, Any]]:
    """The JSON-lines report's records, trimmed to :data:`FIELDS`; a line that is not
    JSON (a write cut short) is skipped."""
    with path.open("r") as stream:
        # readline, not iteration: Airflow 3.1's ObjectStoragePath file wrapper is not
        # iterable.
        for line in iter(stream.readline, ""):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield {k: record[k] for k in FIELDS if k in record}


def read_earlier(summary_path: Any, keep: int = 3 * HISTORY_NIGHTS) -> list[dict[str, Any]]:
    """The other summary files beside this one (the last ``keep`` by name), oldest first.
    One that cannot be read is left out."""
    try:
        names = sorted(
            (p for p in summary_path.parent.iterdir() if p.name.endswith(SUMMARY_SUFFIX)),
            key=lambda p: p.name,
        )
    except OSError:
        return []
    out = []
    for other in names[-keep:]:
        if other.name == summary_path.name:
            continue
        try:
            with other.open("r") as stream:
                data = json.load(stream)
        except (OSError, ValueError):
            log.warning("Left out of the trend (unreadable): %s", other)
            continue
        if isinstance(data, dict):
            data.setdefault("night", other.name[: -len(SUMMARY_SUFFIX)])
            out.append(data)
    return out


def make_page(summary: Mapping[str, Any], *, summary_path: Any, report_paths: Sequence[Any]) -> str:
    """The page from the summary (as written at ``summary_path``), the JSON-lines reports
    at ``report_paths`` that are there (one per partition of a mapped recovery) and the
    summaries beside it."""
    there = [path for path in report_paths if path.exists()]
    records = chain.from_iterable(read_records(path) for path in there) if there else None
    sources = [str(summary_path)] + [str(path) for path in there]
    data = page_data(summary, records, read_earlier(summary_path))
    return render(data, sources)


def write_page(page: str, page_path: Any) -> None:
    page_path.parent.mkdir(parents=True, exist_ok=True)
    with page_path.open("w") as stream:
        stream.write(page)

"""The HTML page: self-contained, and everything from the DLQ escaped."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from airflow_provider_wfdlq.report_page import page_data, render
from tests.report_page.night import HOSTILE_BODY, record, records, summary


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    return tags


def hostile_night() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    night = summary()
    evil_url = 'https://x.example.com/"><img src=x onerror=alert(1)>'
    night["failed"][0].update(response_body=HOSTILE_BODY, workflow_url=evil_url)
    night["title"] = "<b>night</b>"
    night["problems"] = ["<script>boom()</script>"]
    lines = [*records(), record("100-7", evil_url, 500, "skipped_body")]
    return night, lines


def test_a_body_with_a_script_shows_as_text() -> None:
    night, lines = hostile_night()
    page = render(page_data(night, lines))
    tags = parsed(page)
    assert [t for t, _ in tags.tags if t in ("script", "img", "b", "iframe", "object")] == []
    assert HOSTILE_BODY in "".join(tags.text)  # shown, as text
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp;" in page
    assert "<script" not in page.lower()
    # The URL stays one attribute value (no way out of the quotes).
    marks = [a for _, a in tags.tags if (a.get("data-url") or "").startswith("https://x.example")]
    assert marks
    assert all(a["data-url"] == night["failed"][0]["workflow_url"] for a in marks)


def test_the_page_loads_nothing_and_runs_nothing() -> None:
    page = render(page_data(summary(), records()), sources=["file:///r/2026-11-29.summary.json"])
    tags = parsed(page)
    assert not [t for t, _ in tags.tags if t in ("script", "link", "img", "iframe")]
    assert not re.search(r"\b(src|href)=", page)
    assert not re.search(r"url\(", page)  # no CSS fetches either
    assert "default-src 'none'" in page  # and the browser is told so


def test_each_chart_has_one_mark_per_key() -> None:
    tags = parsed(render(page_data(summary(), records())))
    charts: dict[str, list[str]] = {}
    chart = ""
    for tag, attrs in tags.tags:
        if tag == "svg":
            chart = attrs["data-chart"] or ""
            charts[chart] = []
        elif attrs.get("class") == "mark":
            charts[chart].append(attrs["data-key"] or "")
    assert set(charts) == {"by_url", "by_status", "outcomes", "history"}
    for keys in charts.values():
        assert len(keys) == len(set(keys))
    assert sorted(charts["by_url"]) == sorted(charts["outcomes"])
    assert charts["history"] == ["2026-11-29"]


def test_headline_numbers_carry_their_values() -> None:
    tags = parsed(render(page_data(summary(), records())))
    shown = {a["data-figure"]: a["data-value"] for _, a in tags.tags if "data-figure" in a}
    assert shown["found"] == "6"
    assert shown["recovered"] == "2"
    assert shown["failed_again"] == "1"


def test_what_housekeeping_did_shows_among_the_counts() -> None:
    night = summary()
    night["housekeeping"] = {
        "deleted": 7,
        "callbacks_retried": 3,
        "callbacks_canceled": 0,
        "left": 2,
        "deleted_ids": ["a"],
        "problems": [],
    }

    text = " ".join(parsed(render(page_data(night, records()))).text)

    assert "housekeeping: deleted" in text
    assert "housekeeping: callbacks retried" in text
    assert "housekeeping: left" in text
    assert "callbacks canceled" not in text  # zero counts are left out

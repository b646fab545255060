"""Where the page goes and the address its link opens."""

from __future__ import annotations

import pytest

from airflow_provider_wfdlq.report_page.location import browsable_url, page_path_for


@pytest.mark.parametrize(
    ("report", "page"),
    [
        ("file:///r/night.jsonl", "file:///r/night.html"),
        ("s3://b/reports/2026-11-29.jsonl", "s3://b/reports/2026-11-29.html"),
        ("/r/night.1.jsonl", "/r/night.1.html"),
        ("night.log", "night.html"),
    ],
)
def test_the_page_is_next_to_the_report(report: str, page: str) -> None:
    assert page_path_for(report) == page


@pytest.mark.parametrize(
    ("path", "url_map", "url"),
    [
        ("file:///r/a b.html", "", "file:///r/a%20b.html"),
        ("/r/night.html", None, "file:///r/night.html"),
        (
            "s3://acme/reports/n.html",
            "",
            "https://s3.console.aws.amazon.com/s3/object/acme?prefix=reports%2Fn.html",
        ),
        (
            "gs://acme/reports/n.html",
            "",
            "https://console.cloud.google.com/storage/browser/_details/acme/reports/n.html",
        ),
        (
            "s3://acme/reports/dag/n.html",
            "s3://acme/=https://wrong.example/, s3://acme/reports/=https://r.example/x/",
            "https://r.example/x/dag/n.html",  # the longest prefix wins
        ),
        ("file:///srv/r/n.html", "file:///srv/r/=http://host:8000/\n", "http://host:8000/n.html"),
        ("azure://c/n.html", "", "azure://c/n.html"),
    ],
)
def test_the_address_a_browser_opens(path: str, url_map: str | None, url: str) -> None:
    assert browsable_url(path, url_map) == url

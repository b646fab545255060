"""The morning report page in headless Chromium: what the nightly DAG wrote, offline.

The example nightly DAG runs through Airflow (``dag.test()``) against the dev server, with
thirteen earlier nights' summary files beside its report, so the page has every part: the
headline numbers, the charts, the canary's and breaker's verdicts, the failed-again and
expiring tables. Debian's Chromium (through Playwright) opens the page from its file and
checks it against the summary JSON and the JSON-lines report; every request the page makes
is routed through the test, and any that would leave the file is refused and fails it.

``WFDLQ_UPDATE_SCREENSHOT=1`` also writes the screenshot to docs/img/morning-report.png.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
from playwright.sync_api import Page, Route, sync_playwright

from tests.airflow.dagrun import dagbag, run_dag
from tests.deployment.conftest import update_screenshots
from tests.deployment.system_packages import CHROMIUM, CHROMIUM_PACKAGE, ensure_packages
from tests.deployment.test_connection_form_ui import CHROMIUM_ARGS

pytestmark = pytest.mark.deployment

ROOT = Path(__file__).resolve().parents[2]
README_SCREENSHOT = ROOT / "docs" / "img" / "morning-report.png"
LOGICAL_DATE = pendulum.now("UTC").start_of("day")
#: The headline numbers the page shows, as the summary names them.
FIGURES = ("found", "resumed", "recovered", "failed_again", "still_running")


@pytest.fixture
def browser_page() -> Iterator[tuple[Page, list[str]]]:
    """A page whose every request is routed: file and data URLs only, the rest refused
    and listed."""
    problem = ensure_packages((CHROMIUM_PACKAGE,))
    if problem:
        pytest.skip(problem)
    left: list[str] = []

    def only_local(route: Route) -> None:
        url = route.request.url
        if url.startswith(("file://", "data:")):
            route.continue_()
        else:
            left.append(url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", only_local)
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.on(
                "request", lambda r: None if r.url.startswith("file://") else left.append(r.url)
            )
            yield page, left
        finally:
            browser.close()


def earlier_nights(folder: Path, nights: int = 13) -> None:
    """Summary files of earlier nights, as the report task leaves them (the fields the
    trend reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    for back in range(nights, 0, -1):
        night = LOGICAL_DATE.subtract(days=1 + back).to_date_string()
        found = 60 + (back * 37) % 45
        recovered = found - 8 - (back * 11) % 14
        (folder / f"{night}.summary.json").write_text(
            json.dumps({"found": found, "recovered": recovered, "details": {"night": night}})
        )


def nightly_run(server: Any, report_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    server.control.reset(seed=7, entries=400)
    server.control.advance_time(60)  # callbacks still running finish, so the sensor passes
    server.control.set_config(run_seconds=0, success_ratio=0.85)
    # Entries are kept two days here, so some of those left behind expire before tomorrow.
    conn = {
        "conn_type": "qstash",
        "host": server.url,
        "password": server.token,
        "extra": {"retention": "2"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_QSTASH_DEFAULT", json.dumps(conn))
    bag = dagbag(str(ROOT / "example_dags"))
    outcome = run_dag(
        bag.dags["nightly_dlq_recovery"],
        conf={"report_dir": str(report_dir)},
        logical_date=LOGICAL_DATE,
    )
    morning: dict[str, Any] = outcome.xcom["morning_report"]
    return morning


def test_the_morning_report_page_offline(
    airflow_db: Path,
    wfdlq_devserver: Any,
    browser_page: tuple[Page, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "nightly_dlq_recovery"
    earlier_nights(folder)
    morning = nightly_run(wfdlq_devserver, tmp_path, monkeypatch)
    page_path = Path(morning["page_path"].removeprefix("file://"))
    summary = json.loads(Path(morning["summary_path"].removeprefix("file://")).read_text())
    report = page_path.with_suffix(".jsonl")
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert summary["failed"], "the seeded night should have runs that failed again"
    page, left = browser_page

    page.goto(page_path.as_uri())

    # Headline numbers: those of the summary JSON, shown and in data-value.
    for key in FIGURES:
        figure = page.locator(f'[data-figure="{key}"]')
        assert figure.get_attribute("data-value") == str(summary[key]), key
        assert figure.locator(".value").inner_text() == f"{summary[key]:,}", key
    # Charts by workflow URL: one mark per URL of the report's entries, and of the runs
    # resumed; each chart one mark per key.
    entry_urls = {r["workflow_url"] for r in records if "response_status" in r}
    resumed_urls = {r["workflow_url"] for r in records if r.get("event") == "resumed"}
    for chart, urls in (("by_url", entry_urls), ("outcomes", resumed_urls)):
        marks = page.locator(f'svg[data-chart="{chart}"] g.mark')
        shown = [marks.nth(i).get_attribute("data-url") or "" for i in range(marks.count())]
        assert sorted(shown) == sorted(urls), chart
    statuses = {str(r["response_status"]) for r in records if "response_status" in r}
    marks = page.locator('svg[data-chart="by_status"] g.mark')
    keys = [marks.nth(i).get_attribute("data-key") or "" for i in range(marks.count())]
    assert sorted(keys) == sorted(statuses)
    # Per URL, recovered + failed again + still running + canceled is what was resumed.
    recovered = page.locator('svg[data-chart="outcomes"] rect[data-segment="recovered"]')
    total = sum(
        int(recovered.nth(i).get_attribute("data-value") or 0) for i in range(recovered.count())
    )
    assert total == summary["recovered"]
    # Fourteen nights: the thirteen before and this one.
    assert page.locator('svg[data-chart="history"] g.mark').count() == 14
    # Verdicts, the failed-again table (new dlqId <- resumed from), what expires.
    assert page.locator('[data-verdict="canary"]').count() == 1
    rows = page.locator('table[data-table="failed"] tbody tr')
    assert rows.count() == len(summary["failed"])
    first = summary["failed"][0]
    assert f"{first['dlq_id']} \u2190 {first['resumed_from']}" in rows.first.inner_text()
    # The report task looked up each new entry: its status and body are on the page.
    assert first["response_status"] is not None
    assert rows.first.locator("pre").inner_text() == first["response_body"].strip()
    expiring = page.locator('table[data-table="expiring"] tbody tr')
    assert expiring.count() == min(summary["details"]["expiring_count"], 50)
    assert expiring.count() > 0

    screenshot = tmp_path / "morning-report.png"
    page.screenshot(path=str(screenshot), full_page=True)
    if update_screenshots():
        README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, README_SCREENSHOT)
    assert left == [], f"the page made requests off the file: {left}"

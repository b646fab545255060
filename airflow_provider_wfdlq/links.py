"""The "DLQ recovery report" link on a task in the Airflow UI.

Airflow 3 asks each link for its address once, when the task ends (success or failure),
on the worker, and keeps the answer in XCom, so the link works for as long as the task's
XComs are kept. The report task pushes the page's address under :data:`PAGE_URL_KEY`
when it has written the page; on ``ResumeDLQOperator`` the address is that of the page
next to its JSON-lines report (where the report task writes it by default), from the
resume's result. No page: an empty link, which the UI leaves out.

The address is the one :func:`~airflow_provider_wfdlq.report_page.browsable_url` gives,
with the deployment's ``[wfdlq] report_url_map`` (``AIRFLOW__WFDLQ__REPORT_URL_MAP``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from airflow.sdk import BaseOperatorLink

from airflow_provider_wfdlq.report_page.location import browsable_url, page_path_for

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

log = logging.getLogger(__name__)

#: The XCom key the report task pushes the page's address under.
PAGE_URL_KEY: Final = "dlq_report_page_url"


def url_map() -> str:
    """The deployment's ``[wfdlq] report_url_map`` ("" when not set)."""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # pragma: no cover - Airflow 3.1
        from airflow.configuration import conf  # type: ignore[no-redef]
    return str(conf.get("wfdlq", "report_url_map", fallback="") or "")


def page_url(report_path: str) -> str:
    """The address of the page next to a JSON-lines report."""
    return browsable_url(page_path_for(report_path), url_map())


def _from_result(result: Any) -> str:
    if isinstance(result, Mapping) and result.get("report_path") and not result.get("dry_run"):
        return page_url(str(result["report_path"]))
    return ""


class DLQRecoveryReportLink(BaseOperatorLink):
    """Opens the morning report page of the night this task belongs to."""

    name = "DLQ recovery report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        # Airflow 3.1 calls this outside any try when the task ends: a link that raised
        # would take the task's end down with it. No address is an empty link.
        try:
            from airflow.sdk.execution_time.xcom import XCom

            url = XCom.get_value(ti_key=ti_key, key=PAGE_URL_KEY)
            if url:
                return str(url)
            return _from_result(XCom.get_value(ti_key=ti_key, key="return_value"))
        except Exception:
            log.warning("No address for the %r link", self.name, exc_info=True)
            return ""

"""DLQRecoveryReportOperator: the morning report of a night's recovery, in one summary."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_wfdlq._compat import AirflowException, AirflowFailException
from airflow_provider_wfdlq.client import ValidationError, WFDLQError
from airflow_provider_wfdlq.connection_form import DEFAULT_CONN_NAME
from airflow_provider_wfdlq.hooks.dlq import WorkflowDLQHook
from airflow_provider_wfdlq.links import PAGE_URL_KEY, DLQRecoveryReportLink, page_url
from airflow_provider_wfdlq.operators.dlq import as_bool
from airflow_provider_wfdlq.recovery.morning import (
    MAX_FAILED_SHOWN,
    MorningReport,
    build_morning_report,
    coerce_result,
    coerce_results,
    failed_again_details,
    is_many,
    page_details,
    summary_path_for,
)
from airflow_provider_wfdlq.recovery.rendered import is_missing
from airflow_provider_wfdlq.report_page import make_page, page_path_for, write_page

if TYPE_CHECKING:
    from airflow.sdk import Context


class DLQRecoveryReportOperator(BaseOperator):
    """
    Write one summary of a recovery: found, resumed, recovered, failed again (with the new
    DLQ entries), still running, skipped by reason.

    Give it ``trigger_rule="all_done"`` so the report is written also when the follow-up
    failed: a result that is missing (the task failed before reporting) shows as "not known".

    :param preview: The dry-run ``ResumeDLQOperator`` result (templated; optional).
    :param resume: The ``ResumeDLQOperator`` result (templated). Each of ``preview``,
        ``resume`` and ``follow`` may be a mapped task's results (``.expand()``: its
        ``.output`` or ``xcom_pull``): the summary is the total, with one line per partition.
    :param follow: The ``WorkflowRunSensor`` outcome (templated), e.g.
        ``"{{ ti.xcom_pull(task_ids='follow', key='outcome') }}"``: that key is pushed also
        when the sensor fails.
    :param report_path: The JSON-lines report the summary goes next to, as
        ``<stem>.summary.json`` (templated; default: the resume result's ``report_path``,
        for a mapped resume the first partition's without its ``.<map_index>``; no file
        when neither is set). Any ``ObjectStoragePath`` URL.
    :param title: The summary's first line (templated).
    :param housekeeping: The results of housekeeping tasks (``DeleteDLQOperator``,
        ``RetryFailureCallbackOperator``, ...), one or a list (templated; optional): the
        summary counts what was deleted and which callbacks were retried or canceled.
    :param qstash_conn_id: The connection to look up the new DLQ entries of the runs that
        failed again with (read-only, one ``GET`` per entry, the first 20): their status and
        the start of their response body go into the summary and the page. None: no
        lookups (the page then shows the status the resumed entry had failed with). A
        lookup that fails is logged and left out; it never fails the report.
    :param fail_on_problems: After writing the report, fail when the resume or the follow-up
        failed or did not report (default True), so the DAG run shows that the night's
        recovery did not succeed even though this last task ran.
    :return: The summary as a dict (``lines`` holds the text), with ``summary_path`` and
        ``page_path``: the same report as a page, ``<stem>.html`` beside the summary (one
        self-contained HTML file, made from the report files alone). The task's "DLQ
        recovery report" link opens it (README "The morning report page").
    """

    template_fields: Sequence[str] = (
        "preview",
        "resume",
        "follow",
        "report_path",
        "title",
        "housekeeping",
    )
    template_fields_renderers = {
        "preview": "json",
        "resume": "json",
        "follow": "json",
        "housekeeping": "json",
    }
    ui_color = "#fdf5e6"
    operator_extra_links = (DLQRecoveryReportLink(),)

    def __init__(
        self,
        *,
        preview: Any = None,
        resume: Any = None,
        follow: Any = None,
        report_path: Any = None,
        title: str = "Morning report",
        fail_on_problems: bool | str = True,
        housekeeping: Any = None,
        qstash_conn_id: str | None = DEFAULT_CONN_NAME,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.preview = preview
        self.resume = resume
        self.follow = follow
        self.report_path = report_path
        self.title = title
        self.fail_on_problems = fail_on_problems
        self.housekeeping = housekeeping
        self.qstash_conn_id = qstash_conn_id

    def build_report(self) -> MorningReport:
        """Validate the rendered arguments and build the summary (no I/O)."""
        try:
            return build_morning_report(
                preview=self.preview,
                resume=self.resume,
                follow=self.follow,
                title=self.title,
                housekeeping=getattr(self, "housekeeping", None),
            )
        except ValidationError as exc:
            raise AirflowFailException(str(exc)) from exc

    def execute(self, context: Context) -> dict[str, Any]:
        report = self.build_report()
        try:
            fail = as_bool("fail_on_problems", self.fail_on_problems)
        except ValidationError as exc:
            raise AirflowFailException(str(exc)) from exc
        self.log.info("%s", report.text())
        result = report.to_json()
        result["details"] = {**self._details(), "night": _night(context)}
        result["failed"] = self._failed_details(result["failed"])
        result["summary_path"] = self._write(result)
        result["page_path"] = self._write_page(result, context)
        if fail and report.problems:
            raise AirflowFailException(
                "The morning report is written; the recovery did not succeed: "
                + "; ".join(report.problems)
            )
        return result

    def _details(self) -> dict[str, Any]:
        try:
            return page_details(preview=self.preview, resume=self.resume, follow=self.follow)
        except ValidationError as exc:  # pragma: no cover - build_report validated them
            raise AirflowFailException(str(exc)) from exc

    def _failed_details(self, failed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The failed-again items with their new entries' status and body excerpt."""
        if not failed or not self.qstash_conn_id:
            return failed
        try:
            hook = WorkflowDLQHook(qstash_conn_id=self.qstash_conn_id)
            client = hook.client
        except (AirflowException, WFDLQError) as exc:
            self.log.warning("Not looking up the failed-again entries: %s", exc)
            return failed
        try:
            items, missed = failed_again_details(client.get_message, failed, MAX_FAILED_SHOWN)
        finally:
            hook.close()
        if missed:
            self.log.warning("%d failed-again entr(y/ies) could not be looked up", missed)
        return items

    def _write_page(self, result: dict[str, Any], context: Context) -> str | None:
        """The page next to the summary, made from the files as written; its address goes
        to XCom for the task's link (pushed also when the task then fails)."""
        target = self._target()
        if target is None or result.get("summary_path") is None:
            return None
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(page_path_for(target))
        page = make_page(
            result,
            summary_path=ObjectStoragePath(str(result["summary_path"])),
            report_paths=[ObjectStoragePath(p) for p in self._report_paths(target)],
        )
        write_page(page, path)
        url = page_url(target)
        self.log.info("Morning report page written to %s (link: %s)", path, url)
        context["ti"].xcom_push(key=PAGE_URL_KEY, value=url)
        return str(path)

    def _report_paths(self, target: str) -> list[str]:
        """The JSON-lines reports the page counts entries from: each partition's for a
        mapped resume, else the resume's, else the one the summary is next to."""
        if is_many(self.resume):
            parts = coerce_results(self.resume, "resume") or []
        else:
            parts = [coerce_result(self.resume, "resume")]
        paths = [str(p["report_path"]) for p in parts if p and p.get("report_path")]
        return paths or [target]

    def _target(self) -> str | None:
        if not is_missing(self.report_path):
            return str(self.report_path)
        parts = coerce_results(self.resume, "resume") if is_many(self.resume) else None
        if parts is not None:
            # A mapped resume: one summary for every partition, next to the first
            # partition's report without its ``.<map_index>`` (``night.0.jsonl``: ``night``).
            paths = [str(p["report_path"]) for p in parts if p and p.get("report_path")]
            return re.sub(r"\.\d+(?=(\.[^./]*)?$)", "", paths[0], count=1) if paths else None
        resume = coerce_result(self.resume, "resume")
        path = resume.get("report_path") if resume is not None else None
        return str(path) if path else None

    def _write(self, result: dict[str, Any]) -> str | None:
        target = self._target()
        if target is None:
            return None
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(summary_path_for(target))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as stream:  # type: ignore[no-untyped-call]
            stream.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
        self.log.info("Summary written to %s", path)
        return str(path)


def _night(context: Context) -> str | None:
    """The night the report is of: the data interval's start (else the logical date) as
    a date; None when the run has neither (the page then uses the file's stem)."""
    for key in ("data_interval_start", "logical_date"):
        when = context.get(key)
        if when is not None and hasattr(when, "date"):
            return str(when.date().isoformat())
    return None

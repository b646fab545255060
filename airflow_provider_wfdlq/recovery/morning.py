"""The morning report: one summary of a night's recovery, for the log and next to the report.

Airflow-free: it reads the XCom results of the preview (a dry-run ``ResumeDLQOperator``),
the resume and the follow-up (``WorkflowRunSensor``), any of which may be missing (a task
that failed or did not run), and says so rather than guessing. Skip counters are shown
generically: every ``skipped_<reason>`` key of the resume counts is a line "skipped by
reason", whatever reasons the redrive learns later.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from airflow_provider_wfdlq.client import ValidationError
from airflow_provider_wfdlq.recovery.rendered import is_missing

__all__ = ["MorningReport", "build_morning_report", "coerce_result", "summary_path_for"]

SKIPPED: Final = "skipped_"
ACTED: Final = ("resumed", "restarted")
MAX_FAILED_SHOWN: Final = 20
"""How many runs that failed again the text names (the JSON names every one it got)."""

_ACCEPTED = "an XCom result (a mapping, or its text as a template renders it), or None"


def coerce_result(value: Any, field_: str) -> Mapping[str, Any] | None:
    """An upstream XCom result; None when missing (the task failed or did not run)."""
    if is_missing(value):
        return None
    if isinstance(value, str):
        for parse in (json.loads, ast.literal_eval):
            try:
                value = parse(value.strip())
                break
            except (ValueError, SyntaxError):
                continue
    if not isinstance(value, Mapping):
        raise ValidationError(field_, value, _ACCEPTED, "is not a mapping")
    return value


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _label(key: str) -> str:
    return key.replace("_", " ")


@dataclass(frozen=True)
class MorningReport:
    """What a night did, in the words of the issue: found, resumed, recovered, failed again,
    still running, skipped by reason. ``None`` means "not known" (the task did not report)."""

    found: int | None
    resumed: int | None
    recovered: int | None
    failed_again: int | None
    still_running: int | None
    canceled: int | None = None
    unknown: int = 0
    not_followed: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)
    other: Mapping[str, int] = field(default_factory=dict)
    failed: tuple[Mapping[str, Any], ...] = ()
    success_ratio: float | None = None
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    title: str = "Morning report"

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "found": self.found,
            "resumed": self.resumed,
            "recovered": self.recovered,
            "failed_again": self.failed_again,
            "still_running": self.still_running,
            "canceled": self.canceled,
            "unknown": self.unknown,
            "not_followed": self.not_followed,
            "skipped": dict(self.skipped),
            "other": dict(self.other),
            "success_ratio": self.success_ratio,
            "failed": [dict(item) for item in self.failed],
            "notes": list(self.notes),
            "problems": list(self.problems),
            "lines": self.lines(),
        }

    def lines(self) -> list[str]:
        """The summary as text lines: the log, the file and the demo print these."""

        def n(value: int | None) -> str:
            return "not known" if value is None else str(value)

        out = [self.title]
        out.append(f"  found           {n(self.found)}")
        out.append(f"  resumed         {n(self.resumed)}")
        ratio = "" if self.success_ratio is None else f"  ({self.success_ratio:.1%})"
        out.append(f"  recovered       {n(self.recovered)}{ratio}")
        again = f"  failed again    {n(self.failed_again)}"
        out.append(again + ("  (back in the DLQ as the new entries below)" if self.failed else ""))
        out.append(f"  still running   {n(self.still_running)}")
        if self.canceled:
            out.append(f"  canceled        {self.canceled}")
        if self.unknown:
            out.append(f"  unknown         {self.unknown}  (resume answer lost: run id unknown)")
        if self.not_followed:
            out.append(f"  not followed    {self.not_followed}  (beyond the runs the resume named)")
        total = sum(self.skipped.values())
        out.append(f"  skipped         {total}" + (" by reason:" if self.skipped else ""))
        width = max((len(_label(k)) for k in self.skipped), default=0)
        out.extend(f"    {_label(k):<{width}}  {v}" for k, v in self.skipped.items())
        out.extend(f"  {_label(k)}: {v}" for k, v in self.other.items())
        if self.failed:
            out.append("  failed again, new DLQ entries (new dlqId <- resumed from):")
            for item in self.failed[:MAX_FAILED_SHOWN]:
                new, origin = item.get("dlq_id") or "?", item.get("resumed_from") or "?"
                out.append(f"    {new} <- {origin}  {item.get('workflow_url') or ''}".rstrip())
            if len(self.failed) > MAX_FAILED_SHOWN:
                out.append(f"    ... and {len(self.failed) - MAX_FAILED_SHOWN} more (in the JSON)")
        out.extend(f"  note: {note}" for note in self.notes)
        out.extend(f"  PROBLEM: {problem}" for problem in self.problems)
        return out

    def text(self) -> str:
        return "\n".join(self.lines())


def _found(preview: Mapping[str, Any] | None, resume: Mapping[str, Any] | None) -> int | None:
    """Entries in the window: what the dry run would act on or skip; else what the resume
    saw (acted on, skipped, or found gone)."""
    if preview is not None:
        counts = preview.get("counts") or {}
        return sum(_int(v) for k, v in counts.items() if k.startswith(("would_", SKIPPED)))
    if resume is not None:
        counts = resume.get("counts") or {}
        return sum(
            _int(v) for k, v in counts.items() if k.startswith((*ACTED, SKIPPED, "vanished"))
        )
    return None


def build_morning_report(
    *,
    preview: Any = None,
    resume: Any = None,
    follow: Any = None,
    title: str = "Morning report",
) -> MorningReport:
    """The summary from whatever results exist; a missing one makes its figures 'not known'."""
    preview_ = coerce_result(preview, "preview")
    resume_ = coerce_result(resume, "resume")
    follow_ = coerce_result(follow, "follow")
    notes: list[str] = []
    problems: list[str] = []
    resumed: int | None = None
    skipped: dict[str, int] = {}
    other: dict[str, int] = {}
    if resume_ is None:
        problems.append("the resume did not report (failed or did not run)")
    else:
        counts = {str(k): _int(v) for k, v in sorted((resume_.get("counts") or {}).items())}
        resumed = sum(v for k, v in counts.items() if k.startswith(ACTED))
        skipped = {k.removeprefix(SKIPPED): v for k, v in counts.items() if k.startswith(SKIPPED)}
        other = {
            k: v for k, v in counts.items() if not k.startswith((*ACTED, SKIPPED, "would_")) and v
        }
        stopped = resume_.get("stopped")
        if stopped and stopped != "done":
            left = sum(v for k, v in counts.items() if k.startswith("left_"))
            notes.append(
                f"the resume stopped early ({stopped})"
                + (f"; {left} entries left in the DLQ for the next run" if left else "")
            )
        unknown = counts.get("answer_lost_unknown", 0)
        if unknown:
            problems.append(
                f"{unknown} entries may or may not have been resumed (an answer was lost on a "
                "server that keeps resumed entries); they are never sent again: check them "
                "in the report and the Upstash console"
            )
    report = MorningReport(
        found=_found(preview_, resume_),
        resumed=resumed,
        recovered=None,
        failed_again=None,
        still_running=None,
        skipped=skipped,
        other=other,
        title=title,
    )
    if follow_ is None:
        if resume_ is not None and resumed:
            problems.append("the follow-up did not report: outcomes of the resumed runs unknown")
        elif resume_ is not None:
            report = _with(report, recovered=0, failed_again=0, still_running=0)
        return _with(report, notes=tuple(notes), problems=tuple(problems))
    counts = follow_.get("counts") or {}
    followed = _int(follow_.get("followed"))
    unknown = _int(follow_.get("unknown"))
    not_followed = 0
    if follow_.get("not_followed_beyond_result") and resumed is not None:
        not_followed = max(0, resumed - followed - unknown)
    if follow_.get("timed_out"):
        notes.append("the follow-up timed out with runs still running")
    status, message = follow_.get("status"), follow_.get("message")
    if status in ("failed", "timeout") and message:
        problems.append(f"the follow-up failed: {message}")
    ratio = follow_.get("success_ratio")
    return _with(
        report,
        recovered=_int(counts.get("RUN_SUCCESS")),
        failed_again=_int(counts.get("RUN_FAILED")),
        still_running=_int(follow_.get("still_running")),
        canceled=_int(counts.get("RUN_CANCELED")),
        unknown=unknown,
        not_followed=not_followed,
        failed=tuple(item for item in follow_.get("failed") or () if isinstance(item, Mapping)),
        success_ratio=float(ratio) if isinstance(ratio, int | float) else None,
        notes=tuple(notes),
        problems=tuple(problems),
    )


def _with(report: MorningReport, **changes: Any) -> MorningReport:
    return replace(report, **changes)


def summary_path_for(report_path: str) -> str:
    """Next to the JSON-lines report: ``<dir>/<stem>.summary.json``."""
    head, sep, name = report_path.rpartition("/")
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else name.rsplit(".", 1)[0] or name
    return f"{head}{sep}{stem}.summary.json"

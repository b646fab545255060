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
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from airflow_provider_wfdlq.client import ValidationError, WFDLQError
from airflow_provider_wfdlq.recovery.rendered import is_missing

__all__ = [
    "MorningReport",
    "build_morning_report",
    "coerce_result",
    "coerce_results",
    "housekeeping_summary",
    "is_many",
    "merge_follow",
    "merge_results",
    "summary_path_for",
]

SKIPPED: Final = "skipped_"
ACTED: Final = ("resumed", "restarted")
MAX_FAILED_SHOWN: Final = 20
"""How many runs that failed again the text names (the JSON names every one it got)."""

_ACCEPTED = "an XCom result (a mapping, or its text as a template renders it), or None"
_ACCEPTED_MANY = (
    "an XCom result (a mapping), the list a mapped task's results pull as, their text as a "
    "template renders it, or None"
)


def _parsed(value: Any) -> Any:
    if isinstance(value, str):
        for parse in (json.loads, ast.literal_eval):
            try:
                return parse(value.strip())
            except (ValueError, SyntaxError):
                continue
    return value


def coerce_result(value: Any, field_: str) -> Mapping[str, Any] | None:
    """An upstream XCom result; None when missing (the task failed or did not run)."""
    if is_missing(value):
        return None
    value = _parsed(value)
    if not isinstance(value, Mapping):
        raise ValidationError(field_, value, _ACCEPTED, "is not a mapping")
    return value


def coerce_results(value: Any, field_: str) -> list[Mapping[str, Any] | None] | None:
    """The results of a mapped task (``.expand()``), one per partition in map-index order:
    what ``xcom_pull`` or ``task.output`` of a mapped task gives (a list, or a lazy
    sequence), or its text. None when missing; a partition that did not report is None."""
    if is_missing(value):
        return None
    value = _parsed(value)
    if isinstance(value, Mapping | str | bytes):
        raise ValidationError(field_, value, _ACCEPTED_MANY, "is not a list of results")
    try:
        items = list(value)
    except TypeError:
        raise ValidationError(field_, value, _ACCEPTED_MANY, "is not a list") from None
    out: list[Mapping[str, Any] | None] = []
    for i, item in enumerate(items):
        try:
            out.append(coerce_result(item, field_))
        except ValidationError:
            problem = f"holds {item!r} at [{i}], not a result"
            raise ValidationError(field_, value, _ACCEPTED_MANY, problem) from None
    return out


def is_many(value: Any) -> bool:
    """A mapped task's results rather than one result."""
    if is_missing(value):
        return False
    value = _parsed(value)
    return not isinstance(value, Mapping | str | bytes) and hasattr(value, "__iter__")


def _reported(
    parts: Sequence[Mapping[str, Any] | None] | None,
) -> tuple[list[Mapping[str, Any]], Counter[str]]:
    """The partitions that reported, and their ``counts`` summed."""
    known = [part for part in parts or () if part is not None]
    counts: Counter[str] = Counter()
    for part in known:
        counts.update({str(k): _int(v) for k, v in (part.get("counts") or {}).items()})
    return known, counts


def merge_results(parts: Sequence[Mapping[str, Any] | None] | None) -> Mapping[str, Any] | None:
    """``ResumeDLQOperator`` results of several partitions as one: counts, ``found`` and
    ``selected`` summed, runs in partition order, the first early stop. Partitions that did
    not report are left out (the caller says so); None when none reported."""
    known, counts = _reported(parts)
    if len(known) < 2:
        return known[0] if known else None
    stops = [part.get("stopped") for part in known if part.get("stopped") not in (None, "done")]
    return {
        "dry_run": all(bool(part.get("dry_run")) for part in known),
        "counts": dict(sorted(counts.items())),
        "stopped": stops[0] if stops else "done",
        "runs": [run for part in known for run in part.get("runs") or ()],
        "runs_truncated": any(bool(part.get("runs_truncated")) for part in known),
        "groups": [group for part in known for group in part.get("groups") or ()],
        "found": sum(_int(part.get("found")) for part in known),
        "selected": sum(_int(part.get("selected")) for part in known),
        "report_path": None,
    }


def merge_follow(parts: Sequence[Mapping[str, Any] | None] | None) -> Mapping[str, Any] | None:
    """``WorkflowRunSensor`` outcomes of several partitions as one (counts summed, the
    success ratio over every followed run, the worst status)."""
    known, counts = _reported(parts)
    if len(known) < 2:
        return known[0] if known else None
    followed = sum(_int(part.get("followed")) for part in known)
    statuses = [part.get("status") for part in known]
    status = next((s for s in ("failed", "timeout") if s in statuses), "success")
    messages = [str(p.get("message")) for p in known if p.get("status") == status and status]
    summed = {
        name: sum(_int(part.get(name)) for part in known)
        for name in ("unknown", "still_running", "recovered", "failed_again")
    }
    return {
        **summed,
        "counts": dict(sorted(counts.items())),
        "followed": followed,
        "success_ratio": counts["RUN_SUCCESS"] / followed if followed else None,
        "failed": [item for part in known for item in part.get("failed") or ()],
        "timed_out": any(bool(part.get("timed_out")) for part in known),
        "not_followed_beyond_result": any(
            bool(part.get("not_followed_beyond_result")) for part in known
        ),
        "status": status,
        "message": "; ".join(messages) if status != "success" else "every partition passed",
    }


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
    #: One report per partition of a mapped recovery (``.expand()``), in map-index order;
    #: None for a partition that did not report. Empty for an unmapped one.
    partitions: tuple[MorningReport | None, ...] = ()
    #: What housekeeping did (:func:`housekeeping_summary`); empty when none reported.
    housekeeping: Mapping[str, Any] = field(default_factory=dict)

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
            "partitions": [
                None if part is None else {k: v for k, v in part.to_json().items() if k != "lines"}
                for part in self.partitions
            ],
            "lines": self.lines(),
            **({"housekeeping": dict(self.housekeeping)} if self.housekeeping else {}),
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
        if self.partitions:
            out.append(f"  per partition ({len(self.partitions)}):")
            out.extend(
                f"    #{i}  " + ("did not report" if part is None else part.one_line())
                for i, part in enumerate(self.partitions)
            )
        out.extend(_housekeeping_lines(self.housekeeping))
        out.extend(f"  note: {note}" for note in self.notes)
        out.extend(f"  PROBLEM: {problem}" for problem in self.problems)
        return out

    def one_line(self) -> str:
        """A partition's figures on one line."""

        def n(value: int | None) -> str:
            return "?" if value is None else str(value)

        parts = [f"found {n(self.found)}", f"resumed {n(self.resumed)}"]
        if self.recovered is not None or self.failed_again is not None:
            parts += [
                f"recovered {n(self.recovered)}",
                f"failed again {n(self.failed_again)}",
                f"still running {n(self.still_running)}",
            ]
        parts.append(f"skipped {sum(self.skipped.values())}")
        parts.extend(self.notes)
        parts.extend(f"PROBLEM: {problem}" for problem in self.problems)
        return ", ".join(parts)

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
    housekeeping: Any = None,
) -> MorningReport:
    """As :func:`_build_recovery`, plus what the ``housekeeping`` tasks did (their results,
    one or a list; a task that did not report is None): see :func:`housekeeping_summary`."""
    report = _build_recovery(preview=preview, resume=resume, follow=follow, title=title)
    if is_missing(housekeeping):  # none given, or a template that rendered None
        return report
    summary = housekeeping_summary(housekeeping)
    problems = tuple(summary.pop("problems"))
    return _with(report, housekeeping=summary, problems=report.problems + problems)


def _build_recovery(
    *,
    preview: Any = None,
    resume: Any = None,
    follow: Any = None,
    title: str = "Morning report",
) -> MorningReport:
    """The summary from whatever results exist; a missing one makes its figures 'not known'.

    Each argument may also be the results of a mapped task (``.expand()``): the report is
    then the total, with one line per partition (of the mapped ``resume``, else the mapped
    ``preview``). A ``follow`` mapped alike is split per partition; one ``follow`` over
    every partition's runs counts in the total only."""
    if not any(is_many(value) for value in (preview, resume, follow)):
        return _build(
            coerce_result(preview, "preview"),
            coerce_result(resume, "resume"),
            coerce_result(follow, "follow"),
            title,
        )
    previews, resumes, follows = (
        coerce_results(value, name) if is_many(value) else _one(value, name)
        for value, name in ((preview, "preview"), (resume, "resume"), (follow, "follow"))
    )
    total = _build(merge_results(previews), merge_results(resumes), merge_follow(follows), title)
    mapped = resumes if resumes is not None and is_many(resume) else previews
    count = len(mapped or ())
    if not count:
        return total

    def nth(parts: list[Mapping[str, Any] | None] | None, i: int) -> Mapping[str, Any] | None:
        return parts[i] if parts is not None and len(parts) == count else None

    per_follow = follows is not None and is_many(follow) and len(follows) == count
    partitions: list[MorningReport | None] = []
    missing: list[str] = []
    for i in range(count):
        if mapped is not None and mapped[i] is None:
            partitions.append(None)
            missing.append(f"#{i}")
            continue
        part = _build(nth(previews, i), nth(resumes, i), nth(follows, i), f"partition #{i}")
        if not per_follow:
            part = _with(
                part,
                recovered=None,
                failed_again=None,
                still_running=None,
                problems=tuple(p for p in part.problems if "follow-up" not in p),
            )
        partitions.append(part)
    problems = list(total.problems)
    if missing:
        problems.append(f"partition(s) {', '.join(missing)} did not report")
    notes = [
        f"partition #{i}: {note}"
        for i, part in enumerate(partitions)
        if part is not None
        for note in part.notes
    ]
    notes += [note for note in total.notes if not note.startswith("the resume stopped")]
    return _with(total, partitions=tuple(partitions), notes=tuple(notes), problems=tuple(problems))


def _one(value: Any, field_: str) -> list[Mapping[str, Any] | None] | None:
    result = coerce_result(value, field_)
    return None if result is None else [result]


def _build(
    preview_: Mapping[str, Any] | None,
    resume_: Mapping[str, Any] | None,
    follow_: Mapping[str, Any] | None,
    title: str,
) -> MorningReport:
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


#: Housekeeping actions: what the morning report calls them, and their results' count.
_HOUSEKEEPING: Final = {
    "delete": ("deleted", "deleted"),
    "retry_failure_callback": ("callbacks_retried", "callback_retried"),
    "cancel_failure_callback": ("callbacks_canceled", "callback_canceled"),
}


def housekeeping_summary(value: Any) -> dict[str, Any]:
    """What the housekeeping tasks did, from their results (one, or a list; None for a task
    that did not report): how many entries were deleted and callbacks retried or canceled
    (answers lost but settled by the DLQ included), which ones (as far as each result
    names them), what was left or skipped, where each deletion's full copies are, and
    what did not report or stays unknown (``problems``)."""
    parts = coerce_results(value, "housekeeping") if is_many(value) else _one(value, "housekeeping")
    summary: dict[str, Any] = {name: 0 for name, _ in _HOUSEKEEPING.values()}
    named: dict[str, list[Any]] = {name: [] for name, _ in _HOUSEKEEPING.values()}
    reports: list[str] = []
    left = unknown = 0
    problems: list[str] = []
    for part in parts or [None]:
        if part is None:
            problems.append("a housekeeping task did not report (failed or did not run)")
            continue
        if str(part.get("action")) not in _HOUSEKEEPING or part.get("dry_run"):
            continue  # not housekeeping, or a preview (it did nothing)
        name, word = _HOUSEKEEPING[str(part.get("action"))]
        counts = {str(k): _int(v) for k, v in (part.get("counts") or {}).items()}
        summary[name] += counts.get(word, 0) + counts.get(f"{word}_answer_lost", 0)
        named[name] += [
            e.get("dlq_id") for e in part.get("entries") or () if isinstance(e, Mapping)
        ]
        left += sum(v for k, v in counts.items() if k.startswith("left_"))
        unknown += counts.get("answer_lost_unknown", 0)
        if part.get("report_path") and name == "deleted":
            reports.append(str(part["report_path"]))
    if unknown:
        problems.append(
            f"{unknown} housekeeping entr{'y' if unknown == 1 else 'ies'}: an answer was lost "
            "and the DLQ cannot tell whether it was done; never sent again: check them"
        )
    summary.update(
        {f"{name}_ids": ids for name, ids in named.items() if ids},
        left=left,
        deleted_entries_in=reports,
        problems=problems,
    )
    return summary


def _housekeeping_lines(summary: Mapping[str, Any]) -> list[str]:
    if not summary:
        return []
    out = ["  housekeeping:"]
    for name, _ in _HOUSEKEEPING.values():
        ids = [str(i) for i in summary.get(f"{name}_ids") or ()]
        more = ", ..." if len(ids) > MAX_FAILED_SHOWN else ""
        shown = f"  ({', '.join(ids[:MAX_FAILED_SHOWN])}{more})"
        out.append(f"    {_label(name):<19} {summary.get(name, 0)}" + (shown if ids else ""))
    if summary.get("left"):
        out.append(f"    {'left for next time':<19} {summary['left']}")
    for path in summary.get("deleted_entries_in") or ():
        out.append(f"    deleted entries, in full, in {path}")
    return out


def page_details(*, preview: Any = None, resume: Any = None, follow: Any = None) -> dict[str, Any]:
    """What the morning report page needs beyond the summary's figures, kept in the summary
    file so the page is made from the report files alone: the canary's and breaker's
    verdicts and the paused key (one per partition), what expires before the next run,
    the preview's groups, and the followed runs still running or canceled (run ids).

    Accepts the same arguments as :func:`build_morning_report` (validated there first)."""

    def parts(value: Any, name: str) -> list[Mapping[str, Any] | None]:
        if is_many(value):
            return coerce_results(value, name) or []
        one = coerce_result(value, name)
        return [] if one is None else [one]

    resumes = parts(resume, "resume")
    previews = parts(preview, "preview")
    follows = parts(follow, "follow")
    mapped = len(resumes) > 1
    safety = [
        {
            "partition": i if mapped else None,
            "stopped": part.get("stopped"),
            **{k: v for k, v in (part.get("safety") or {}).items() if k in SAFETY_SHOWN},
        }
        for i, part in enumerate(resumes)
        if part is not None
    ]
    known = [part for part in resumes if part is not None]
    return {
        "safety": safety,
        "expiring": [item for part in known for item in part.get("expiring") or ()],
        "expiring_count": sum(
            _int((part.get("counts") or {}).get("expiring_before_next_run")) for part in known
        ),
        "groups": [
            group
            for part in (previews if any(previews) else resumes)
            if part is not None
            for group in part.get("groups") or ()
        ],
        "running": [run for part in follows if part for run in part.get("running") or ()],
        "canceled": [run for part in follows if part for run in part.get("canceled") or ()],
        "lists_truncated": any(bool(part and part.get("lists_truncated")) for part in follows),
    }


#: The parts of a resume's ``safety`` result the page shows.
SAFETY_SHOWN: Final = ("canary", "breaker", "paused")


#: How much of a failed-again entry's response body the summary keeps.
BODY_EXCERPT: Final = 300


def failed_again_details(
    get_message: Callable[[str], Any], failed: Sequence[Mapping[str, Any]], limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The failed-again items with their NEW entry's status and the start of its response
    body (``response_status``, ``response_body``), looked up one entry at a time
    (``get_message``: the client's, read-only) for the first ``limit`` items; the rest as
    they are. An entry the server no longer has, or cannot give, is left as it is.

    Returns the items and how many lookups failed."""
    out: list[dict[str, Any]] = []
    missed = 0
    for i, item in enumerate(failed):
        row = dict(item)
        dlq_id = row.get("dlq_id")
        if i < limit and isinstance(dlq_id, str) and dlq_id:
            try:
                entry = get_message(dlq_id)
            except WFDLQError:
                missed += 1
            else:
                row["response_status"] = entry.response_status
                row["response_body"] = (entry.response_body or "")[:BODY_EXCERPT]
        out.append(row)
    return out, missed

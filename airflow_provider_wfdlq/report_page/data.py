"""The page's data: the summary file, the JSON-lines report and earlier nights' summaries,
turned into what the page shows. Pure: no I/O, no Airflow, no HTML.

Every figure comes from the report files. Counts by workflow URL and status are made from
the JSON-lines report (one entry per dlqId, the last record wins); without it, from the
preview's groups kept in the summary. Outcomes per workflow URL pair each followed run
with the URL of the entry it was resumed from (the report's ``new_workflow_run_id``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

#: Nights the trend chart shows.
HISTORY_NIGHTS: Final = 14
#: Rows each table shows (the JSON files hold every one).
MAX_ROWS: Final = 50
#: How much of a response body the failed-again table shows.
BODY_EXCERPT: Final = 300
#: The count the headline shows as "expiring" (not repeated among the other counts).
EXPIRING: Final = "expiring_before_next_run"
#: Report events for an entry acted on (a new run exists).
ACTED: Final = ("resumed", "restarted")


@dataclass(frozen=True)
class Figure:
    """One headline number; ``value`` None is "not known" (a task did not report)."""

    key: str
    label: str
    value: int | None
    note: str = ""


@dataclass(frozen=True)
class Bar:
    """One mark of a bar chart."""

    key: str
    value: int


@dataclass(frozen=True)
class Outcomes:
    """What became of the runs resumed for one workflow URL. ``recovered`` None: the
    follow-up did not report."""

    url: str
    resumed: int
    recovered: int | None
    failed_again: int
    still_running: int
    canceled: int


@dataclass(frozen=True)
class Night:
    night: str
    found: int | None
    recovered: int | None


@dataclass(frozen=True)
class Verdict:
    """The canary's or the breaker's word; ``ok`` None when it did not judge."""

    name: str
    ok: bool | None
    text: str


@dataclass(frozen=True)
class FailedAgain:
    new_dlq_id: str
    resumed_from: str
    url: str
    status: str
    body: str


@dataclass(frozen=True)
class Expiring:
    dlq_id: str
    expires_at: int | None
    why: str
    url: str


@dataclass(frozen=True)
class PageData:
    title: str
    night: str
    ok: bool
    figures: tuple[Figure, ...]
    by_url: tuple[Bar, ...]
    by_status: tuple[Bar, ...]
    outcomes: tuple[Outcomes, ...]
    history: tuple[Night, ...]
    verdicts: tuple[Verdict, ...]
    paused: tuple[str, ...]
    failed: tuple[FailedAgain, ...]
    failed_total: int
    expiring: tuple[Expiring, ...]
    expiring_total: int
    skipped: tuple[Bar, ...]
    #: Every other count of the resume (left behind, vanished, ...), as the summary has it.
    other: tuple[Bar, ...]
    #: What the housekeeping tasks did (deleted, callbacks retried or canceled, left).
    housekeeping: tuple[Bar, ...]
    notes: tuple[str, ...]
    problems: tuple[str, ...]
    outcomes_note: str = ""


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def entries(records: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The report's entries by dlqId, the last record of each (a retried task appends).
    Walk events (a trip, a pause) and records without a listing's fields are left out."""
    out: dict[str, Mapping[str, Any]] = {}
    for record in records:
        dlq_id = record.get("dlq_id")
        if isinstance(dlq_id, str) and dlq_id and "response_status" in record:
            out[dlq_id] = record
    return out


def figures(summary: Mapping[str, Any]) -> tuple[Figure, ...]:
    skipped = summary.get("skipped") or {}
    ratio = summary.get("success_ratio")
    details = summary.get("details") or {}
    return (
        Figure("found", "found", _int(summary.get("found")), "failed runs in the window"),
        Figure("resumed", "resumed", _int(summary.get("resumed"))),
        Figure(
            "recovered",
            "recovered",
            _int(summary.get("recovered")),
            f"{ratio:.1%} of the followed runs" if isinstance(ratio, int | float) else "",
        ),
        Figure(
            "failed_again", "failed again", _int(summary.get("failed_again")), "back in the DLQ"
        ),
        Figure("still_running", "still running", _int(summary.get("still_running"))),
        Figure(
            "skipped",
            "skipped",
            sum(v for v in skipped.values() if isinstance(v, int)),
            ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in skipped.items()),
        ),
        Figure(
            "expiring",
            "expiring",
            _int(details.get("expiring_count")) if details else None,
            "before the next run",
        ),
    )


#: The housekeeping summary's counts the page shows (recovery/morning.py housekeeping_summary).
HOUSEKEEPING = ("deleted", "callbacks_retried", "callbacks_canceled", "left")


def _bars(counter: Counter[str]) -> tuple[Bar, ...]:
    return tuple(Bar(key, n) for key, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def _counts(counts: Any) -> tuple[Bar, ...]:
    """A summary's ``{name: count}`` as bars, largest first, zeros left out."""
    if not isinstance(counts, Mapping):
        return ()
    return _bars(Counter({str(k): v for k, v in counts.items() if isinstance(v, int) and v}))


def failures(
    by_id: Mapping[str, Mapping[str, Any]] | None, details: Mapping[str, Any]
) -> tuple[tuple[Bar, ...], tuple[Bar, ...]]:
    """Entries by workflow URL and by the status the failed step answered."""
    urls: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    if by_id:
        for record in by_id.values():
            urls[_text(record.get("workflow_url")) or "(no URL)"] += 1
            statuses[_text(record.get("response_status")) or "(none)"] += 1
    else:
        for group in details.get("groups") or ():
            n = _int(group.get("entries")) or 0
            urls[_text(group.get("workflow_url")) or "(no URL)"] += n
            statuses[_text(group.get("response_status")) or "(none)"] += n
    return _bars(urls), _bars(statuses)


def outcomes(
    summary: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]] | None
) -> tuple[tuple[Outcomes, ...], str]:
    """Resumed -> recovered / failed again / still running, per workflow URL."""
    if not by_id:
        return (), "needs the JSON-lines report (the resume had no report_path)"
    details = summary.get("details") or {}
    url_of = {
        str(r["new_workflow_run_id"]): _text(r.get("workflow_url")) or "(no URL)"
        for r in by_id.values()
        if r.get("new_workflow_run_id") and str(r.get("event", "")).startswith(ACTED)
    }
    resumed = Counter(url_of.values())
    failed: Counter[str] = Counter()
    for item in summary.get("failed") or ():
        run_id = _text(item.get("workflow_run_id"))
        failed[url_of.get(run_id) or _text(item.get("workflow_url")) or "(no URL)"] += 1
    running = Counter(
        url_of.get(str(r), "(not in the report)") for r in details.get("running") or ()
    )
    canceled = Counter(
        url_of.get(str(r), "(not in the report)") for r in details.get("canceled") or ()
    )
    followed = summary.get("recovered") is not None
    rows = []
    for url in sorted(set(resumed) | set(failed), key=lambda u: (-resumed[u], u)):
        done = failed[url] + running[url] + canceled[url]
        rows.append(
            Outcomes(
                url=url,
                resumed=resumed[url],
                recovered=max(resumed[url] - done, 0) if followed else None,
                failed_again=failed[url],
                still_running=running[url],
                canceled=canceled[url],
            )
        )
    note = ""
    if not followed:
        note = "the follow-up did not report: outcomes not known"
    elif details.get("lists_truncated"):
        note = "the follow-up named only the first runs of each kind: recovered is at most"
    return tuple(rows), note


def history(
    summary: Mapping[str, Any], night: str, earlier: Iterable[Mapping[str, Any]]
) -> tuple[Night, ...]:
    """Found and recovered over the last nights: earlier summaries and this one, by night
    (the newest summary of a night counts)."""
    nights: dict[str, Night] = {}
    for other in earlier:
        key = _text((other.get("details") or {}).get("night") or other.get("night"))
        if key:
            nights[key] = Night(key, _int(other.get("found")), _int(other.get("recovered")))
    nights[night] = Night(night, _int(summary.get("found")), _int(summary.get("recovered")))
    return tuple(nights[key] for key in sorted(nights)[-HISTORY_NIGHTS:])


def verdicts(details: Mapping[str, Any]) -> tuple[tuple[Verdict, ...], tuple[str, ...]]:
    """The canary's and breaker's verdicts (per partition when mapped), the paused keys."""
    out: list[Verdict] = []
    paused: list[str] = []
    for part in details.get("safety") or ():
        where = "" if part.get("partition") is None else f" (partition #{part['partition']})"
        canary, breaker = part.get("canary"), part.get("breaker")
        if isinstance(canary, Mapping):
            size, ok = _int(canary.get("size")) or 0, bool(canary.get("passed"))
            ratio, need = canary.get("success_ratio"), canary.get("required")
            text = f"{_int(canary.get('succeeded')) or 0} of {size} resumed runs recovered"
            if isinstance(ratio, int | float) and isinstance(need, int | float):
                text += f" ({ratio:.0%}, {need:.0%} needed)"
            out.append(Verdict("canary" + where, ok, text + (": passed" if ok else ": FAILED")))
        if isinstance(breaker, Mapping):
            tripped = part.get("stopped") == "circuit_breaker"
            ratio = breaker.get("failure_ratio")
            text = (
                f"{_int(breaker.get('failed_again')) or 0} of {_int(breaker.get('finished')) or 0}"
                " finished runs failed again"
                + (f" ({ratio:.0%})" if isinstance(ratio, int | float) else "")
                + (": TRIPPED, the walk stopped" if tripped else ": held")
            )
            out.append(Verdict("circuit breaker" + where, not tripped, text))
        pause = part.get("paused")
        if isinstance(pause, Mapping) and pause.get("key"):
            why = f" by {pause['by']}" if pause.get("by") else ""
            failed = f" (pausing failed: {pause['error']})" if pause.get("error") else ""
            paused.append(f"{pause['key']}{why}{failed}")
    return tuple(out), tuple(paused)


def failed_again(
    summary: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]] | None
) -> tuple[FailedAgain, ...]:
    """The runs that failed again: new dlqId <- resumed from. The status and body are the
    new entry's when the summary has them, else the status the entry it was resumed from
    had failed with (from the report)."""
    rows = []
    for item in list(summary.get("failed") or ())[:MAX_ROWS]:
        origin = _text(item.get("resumed_from"))
        first = (by_id or {}).get(origin) or {}
        status = item.get("response_status")
        if status is None and first.get("response_status") is not None:
            status = f"{first['response_status']} (first failure)"
        rows.append(
            FailedAgain(
                new_dlq_id=_text(item.get("dlq_id")) or "?",
                resumed_from=origin or "?",
                url=_text(item.get("workflow_url") or first.get("workflow_url")),
                status=_text(status),
                body=_text(item.get("response_body"))[:BODY_EXCERPT],
            )
        )
    return tuple(rows)


def expiring(
    details: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]] | None
) -> tuple[Expiring, ...]:
    rows = []
    for item in sorted(details.get("expiring") or (), key=lambda i: _int(i.get("expires_at")) or 0)[
        :MAX_ROWS
    ]:
        dlq_id = _text(item.get("dlq_id"))
        url = _text((by_id or {}).get(dlq_id, {}).get("workflow_url"))
        rows.append(Expiring(dlq_id, _int(item.get("expires_at")), _text(item.get("why")), url))
    return tuple(rows)


def page_data(
    summary: Mapping[str, Any],
    records: Iterable[Mapping[str, Any]] | None = None,
    earlier: Sequence[Mapping[str, Any]] = (),
) -> PageData:
    """The page from the summary file, the JSON-lines report's records (None: no report),
    and earlier nights' summary files."""
    details = summary.get("details") or {}
    by_id = entries(records) if records is not None else None
    night = _text(details.get("night")) or _text(summary.get("night")) or "this night"
    by_url, by_status = failures(by_id, details)
    rows, outcomes_note = outcomes(summary, by_id)
    checks, paused = verdicts(details)
    problems = tuple(_text(p) for p in summary.get("problems") or ())
    return PageData(
        title=_text(summary.get("title")) or "Morning report",
        night=night,
        ok=not problems and all(v.ok is not False for v in checks),
        figures=figures(summary),
        by_url=by_url,
        by_status=by_status,
        outcomes=rows,
        outcomes_note=outcomes_note,
        history=history(summary, night, earlier),
        verdicts=checks,
        paused=paused,
        failed=failed_again(summary, by_id),
        failed_total=_int(summary.get("failed_again")) or len(summary.get("failed") or ()),
        expiring=expiring(details, by_id),
        expiring_total=_int(details.get("expiring_count")) or 0,
        skipped=_counts(summary.get("skipped")),
        other=tuple(b for b in _counts(summary.get("other")) if b.key != EXPIRING),
        housekeeping=_counts(
            {k: v for k, v in (summary.get("housekeeping") or {}).items() if k in HOUSEKEEPING}
        ),
        notes=tuple(_text(n) for n in summary.get("notes") or ()),
        problems=problems,
    )

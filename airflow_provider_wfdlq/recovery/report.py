"""What a redrive did: compact counts for XCom, and a full JSON-lines record as it goes."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

#: How many new runs the XCom result names before it says ``runs_truncated``.
DEFAULT_MAX_RUNS_IN_RESULT = 1000
#: How many (workflow URL, response status) groups a dry run reports, largest first.
MAX_GROUPS = 50
#: How many expiring entries the XCom result names (all are counted and in the report file).
MAX_EXPIRING = 100
#: How many entries a housekeeping result names (deleted, callbacks retried or canceled).
MAX_ENTRIES_NAMED = 100


class ReportSink(Protocol):
    """Receives one JSON-safe record per entry acted on, in order, as the redrive goes."""

    def write(self, record: Mapping[str, Any]) -> None: ...

    def flush(self) -> None: ...


class NullSink:
    """For runs without ``report_path``: the XCom counts are the whole report."""

    def write(self, record: Mapping[str, Any]) -> None:
        pass

    def flush(self) -> None:
        pass


#: One encoder for every report line (``json.dumps`` with options builds one per call).
_LINE = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


class JsonLinesSink:
    """Writes each record as one JSON line to an open text file; flushes after every page."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, record: Mapping[str, Any]) -> None:
        self._stream.write(_LINE.encode(record) + "\n")

    def flush(self) -> None:
        self._stream.flush()

    def sync(self) -> None:
        """Flush, and ask the OS to put it on disk where the stream is a local file (what
        is written before a delete must outlive a crash right after the call)."""
        self._stream.flush()
        # An in-memory or object-store stream has no file: flushed is all there is.
        with contextlib.suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):
            os.fsync(self._stream.fileno())


@dataclass
class RedriveReport:
    """Counts, the cursor where the walk stopped, and a bounded list of the new runs."""

    action: str
    dry_run: bool
    counts: Counter[str] = field(default_factory=Counter)
    pages: int = 0
    cursor: str | None = None
    stopped: str = "done"
    runs: list[dict[str, Any]] = field(default_factory=list)
    runs_truncated: bool = False
    groups: Counter[tuple[str, int | None]] = field(default_factory=Counter)
    report_path: str | None = None
    max_runs: int = DEFAULT_MAX_RUNS_IN_RESULT
    #: The recovery policies in force, in words (selection, labels, pacing, safety).
    policies: dict[str, Any] = field(default_factory=dict)
    #: Entries left in the DLQ that expire before the next run (capped at MAX_EXPIRING).
    expiring: list[dict[str, Any]] = field(default_factory=list)
    #: What the canary and the circuit breaker saw, and whether they tripped.
    safety: dict[str, Any] = field(default_factory=dict)
    #: Entries the latest listing found (matching the filters) and selected to act on.
    found: int = 0
    selected: int = 0
    #: Housekeeping (no runs): the entries acted on, capped at MAX_ENTRIES_NAMED.
    entries: list[dict[str, Any]] = field(default_factory=list)

    def add_entry(self, record: Mapping[str, Any]) -> None:
        if len(self.entries) < MAX_ENTRIES_NAMED:
            self.entries.append(dict(record))

    def add_expiring(self, record: Mapping[str, Any]) -> None:
        if len(self.expiring) < MAX_EXPIRING:
            self.expiring.append(dict(record))

    def add_run(
        self,
        dlq_id: str | None,
        workflow_run_id: str,
        created_at: int | None,
        paired_by: str | None,
    ) -> None:
        """Name a new run in the result, up to ``max_runs``; beyond that only count it.

        ``paired_by`` is the basis of the dlqId -> run pair (``single_id``: a fact;
        ``answer_order``: inferred); a run the server made that cannot be paired has
        ``dlq_id`` None."""
        if len(self.runs) < self.max_runs:
            self.runs.append(
                {
                    "dlq_id": dlq_id,
                    "workflow_run_id": workflow_run_id,
                    "workflow_created_at": created_at,
                    "paired_by": paired_by,
                }
            )
        else:
            self.runs_truncated = True

    def to_state(self) -> dict[str, Any]:
        """JSON-safe: the XCom result, and what a checkpoint keeps of the report."""
        return {
            "action": self.action,
            "dry_run": self.dry_run,
            "counts": dict(sorted(self.counts.items())),
            "pages": self.pages,
            "cursor": self.cursor,
            "stopped": self.stopped,
            "runs": list(self.runs),
            "runs_truncated": self.runs_truncated,
            "groups": [
                {"workflow_url": url, "response_status": status, "entries": n}
                for (url, status), n in self.groups.most_common(MAX_GROUPS)
            ],
            "report_path": self.report_path,
            "policies": dict(self.policies),
            "expiring": list(self.expiring),
            "safety": dict(self.safety),
            "found": self.found,
            "selected": self.selected,
            # Only a housekeeping walk names entries: a resume's result keeps its shape.
            **({"entries": list(self.entries)} if self.entries else {}),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back what an earlier try recorded, so the result covers the whole task."""
        self.counts = Counter(state.get("counts", {}))
        self.pages = int(state.get("pages", 0))
        self.runs = list(state.get("runs", []))
        self.runs_truncated = bool(state.get("runs_truncated", False))
        self.expiring = list(state.get("expiring", []))
        self.safety = dict(state.get("safety", {}))
        self.entries = list(state.get("entries", []))
        self.groups = Counter(
            {
                (g["workflow_url"], g["response_status"]): g["entries"]
                for g in state.get("groups", [])
            }
        )

    def summary(self) -> str:
        """One line for the log and the demo."""
        parts = [f"{name} {n}" for name, n in sorted(self.counts.items())] or ["nothing matched"]
        where = "" if self.cursor is None else f", cursor to go on from: {self.cursor}"
        return (
            f"{self.action}{' (dry run)' if self.dry_run else ''}: "
            + ", ".join(parts)
            + (f" in {self.pages} page(s), stopped: {self.stopped}{where}")
        )


def format_table(
    items: Sequence[Any], when: Callable[[int | None], str], body_chars: int = 60
) -> str:
    """The dry run's readable table: one row per entry, the columns an on-call engineer reads."""
    header = (
        "dlqId",
        "workflow URL",
        "run id",
        "failed at",
        "status",
        "response body",
        "callback",
        "labels",
    )
    rows = [header]
    for m in items:
        # A response body can be binary: no NUL or ESC reaches the log (grep would call it
        # binary, a terminal would obey it).
        body = "".join(
            c if c.isprintable() else " " if c in "\n\r\t" else "?" for c in m.excerpt or ""
        )
        rows.append(
            (
                m.dlq_id,
                m.workflow_url or "",
                m.workflow_run_id or "",
                when(m.created_at),
                "" if m.response_status is None else str(m.response_status),
                body[:body_chars] + ("…" if len(body) > body_chars else ""),
                m.failure_function_state or "-",
                ",".join(m.labels),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

"""What a doctor run reports: one :class:`Check` per observation, gathered in a :class:`Report`.

Every check is ``ok`` / ``differs`` / ``unknown``; a ``differs`` names the dev-server
reading it matches (``airflow_provider_wfdlq.devserver.READINGS``) and says whether it
matters to the engine (then the doctor exits 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_provider_wfdlq.client import WFDLQError

OK = "ok"
DIFFERS = "differs"
UNKNOWN = "unknown"

#: Check names, in the order they are shown, and their titles.
TITLES: dict[str, str] = {
    "token": "token and region URL",
    "list_page": "one list page parses",
    "get_entry": "get of one entry parses",
    "list_order": "listing order",
    "cursor": "list cursors",
    "run_logs": "run-logs page size (11 runs)",
    "flow_control": "flow-control key state",
    "rate_limit": "rate-limit headers",
    "resume_leaves": "a resumed entry leaves the DLQ",
    "resume_answer": "resume answer shape",
    "bulk_cap": "ids acted on per bulk call",
    "answer_order": "order of bulk answers",
}


@dataclass
class Check:
    """One observation: its status, what was seen, and the fix or setting to use."""

    name: str
    status: str
    seen: str
    fix: str = ""
    #: The dev-server reading this matches (a key of ``READINGS``), when it differs.
    reading: str | None = None
    #: A ``differs`` (or, for the token, any non-ok) the engine cannot live with: exit 1.
    matters: bool = False

    @property
    def title(self) -> str:
        return TITLES.get(self.name, self.name)

    @property
    def blocking(self) -> bool:
        return self.matters and self.status != OK

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "seen": self.seen,
            "fix": self.fix,
            "reading": self.reading,
            "matters": self.matters,
        }


@dataclass
class Report:
    """Every check of one doctor run, and what they add up to."""

    base_url: str
    checks: list[Check] = field(default_factory=list)

    def get(self, name: str) -> Check | None:
        return next((check for check in self.checks if check.name == name), None)

    @property
    def connected(self) -> bool:
        token = self.get("token")
        return token is not None and token.status == OK

    @property
    def readings(self) -> list[str]:
        """The dev-server readings seen; ``["default"]`` when nothing differs."""
        if not self.connected:
            return []
        names: list[str] = []
        for check in self.checks:
            if check.status == DIFFERS and check.reading and check.reading not in names:
                names.append(check.reading)
        return names or ["default"]

    @property
    def exit_code(self) -> int:
        return 1 if any(check.blocking for check in self.checks) else 0

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in (OK, DIFFERS, UNKNOWN)}

    def summary(self) -> str:
        """One paragraph: counts, readings, then every check that is not ok."""
        counts = self.counts()
        parts = [", ".join(f"{n} {status}" for status, n in counts.items() if n)]
        if self.readings:
            parts.append(f"reading: {', '.join(self.readings)}")
        text = "; ".join(parts)
        notes = [
            f"{check.name} {check.status}: {check.seen}"
            for check in self.checks
            if check.status == DIFFERS or (check.blocking and check.status != OK)
        ]
        if notes:
            text += ". " + " | ".join(notes)
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "checks": [check.to_json() for check in self.checks],
            "readings": self.readings,
            "exit_code": self.exit_code,
        }


class ProbeRefused(WFDLQError):
    """A probe was not sent: its entry is missing, or the ids cannot go in one call."""

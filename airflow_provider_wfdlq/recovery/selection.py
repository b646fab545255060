"""Which listed entries a redrive acts on, by the error they failed with.

The workflow DLQ has no server-side filter on ``responseStatus`` or the response body
(spec: "Failures worth knowing apart"), so selection happens here, on listed entries; the
selected ones are then resumed by ``dlqIds``. Entries a step marked non-retryable (HTTP 489
with ``Upstash-NonRetryable-Error: true``) are skipped unless asked for: the application
said "do not retry", and a nightly job should not overrule it by default.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from airflow_provider_wfdlq.client import DLQMessage, ValidationError
from airflow_provider_wfdlq.client.validation import as_str_list, check_bool

NON_RETRYABLE_STATUS: Final = 489
NON_RETRYABLE_HEADER: Final = "upstash-nonretryable-error"
#: Reasons an entry is left in the DLQ; the report counts them as ``skipped_<reason>``.
SKIP_REASONS: Final = ("non_retryable", "status", "body", "step_url")
_STATUS_ACCEPTED = "HTTP status codes (e.g. 503), classes ('5xx') or ranges ('500-504')"


@dataclass(frozen=True)
class StatusRange:
    """An inclusive range of HTTP statuses: ``503``, ``"5xx"`` or ``"500-504"``."""

    low: int
    high: int

    def __contains__(self, status: object) -> bool:
        return isinstance(status, int) and self.low <= status <= self.high

    def __str__(self) -> str:
        if self.low == self.high:
            return str(self.low)
        if self.high - self.low == 99 and self.low % 100 == 0:
            return f"{self.low // 100}xx"
        return f"{self.low}-{self.high}"

    @classmethod
    def parse(cls, value: Any, field: str) -> StatusRange:
        text = str(value).strip().lower() if isinstance(value, int | str) else None
        if isinstance(value, bool) or text is None:
            raise ValidationError(field, value, _STATUS_ACCEPTED)
        if re.fullmatch(r"[1-5]xx", text):
            low = int(text[0]) * 100
            return cls(low, low + 99)
        bounds = re.fullmatch(r"(\d{3})\s*-\s*(\d{3})", text)
        if bounds and 100 <= int(bounds[1]) <= int(bounds[2]) <= 599:
            return cls(int(bounds[1]), int(bounds[2]))
        if re.fullmatch(r"\d{3}", text) and 100 <= int(text) <= 599:
            return cls(int(text), int(text))
        raise ValidationError(field, value, _STATUS_ACCEPTED)


def _statuses(value: Any, field: str) -> tuple[StatusRange, ...]:
    if value is None or value == "" or value == ():
        return ()
    items = value if isinstance(value, list | tuple | set | frozenset) else [value]
    parts = [
        p for item in items for p in (str(item).split(",") if isinstance(item, str) else [item])
    ]
    return tuple(StatusRange.parse(p.strip() if isinstance(p, str) else p, field) for p in parts)


def _regex(value: Any, field: str) -> re.Pattern[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, re.Pattern):
        return value
    if not isinstance(value, str):
        raise ValidationError(field, value, "a regular expression (text)")
    try:
        return re.compile(value)
    except re.error as exc:
        raise ValidationError(field, value, "a valid Python regular expression", str(exc)) from exc


def is_non_retryable(message: DLQMessage) -> bool:
    """The step answered 489 or sent ``Upstash-NonRetryable-Error: true``."""
    if message.response_status == NON_RETRYABLE_STATUS:
        return True
    for name, values in message.response_header.items():
        if name.lower() == NON_RETRYABLE_HEADER:
            return any(str(v).strip().lower() == "true" for v in values)
    return False


@dataclass(frozen=True)
class ErrorSelection:
    """Include/exclude rules over the error an entry failed with; all given rules must pass.

    ``statuses``/``exclude_statuses``: codes, classes and ranges; ``body_regex``/
    ``exclude_body_regex``: searched in ``responseBody``; ``step_urls``: glob patterns
    (``https://api.example.com/*``) over the failed step's ``url``;
    ``include_non_retryable``: also act on 489 entries.
    """

    statuses: tuple[StatusRange, ...] = ()
    exclude_statuses: tuple[StatusRange, ...] = ()
    body_regex: re.Pattern[str] | None = None
    exclude_body_regex: re.Pattern[str] | None = None
    step_urls: tuple[str, ...] = ()
    include_non_retryable: bool = False

    @classmethod
    def build(cls, **raw: Any) -> ErrorSelection:
        known = {
            "statuses",
            "exclude_statuses",
            "body_regex",
            "exclude_body_regex",
            "step_urls",
            "include_non_retryable",
        }
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValidationError("select", unknown[0], f"one of {', '.join(sorted(known))}")
        return cls(
            statuses=_statuses(raw.get("statuses"), "select.statuses"),
            exclude_statuses=_statuses(raw.get("exclude_statuses"), "select.exclude_statuses"),
            body_regex=_regex(raw.get("body_regex"), "select.body_regex"),
            exclude_body_regex=_regex(raw.get("exclude_body_regex"), "select.exclude_body_regex"),
            step_urls=as_str_list(raw.get("step_urls") or (), "select.step_urls"),
            include_non_retryable=check_bool(
                raw.get("include_non_retryable", False), "select.include_non_retryable"
            ),
        )

    @classmethod
    def coerce(cls, value: ErrorSelection | Mapping[str, Any] | None) -> ErrorSelection:
        if value is None:
            return cls()
        if isinstance(value, ErrorSelection):
            return value
        if isinstance(value, Mapping):
            return cls.build(**dict(value))
        raise ValidationError("select", value, "a mapping of selection rules, or None")

    def skip_reason(self, message: DLQMessage) -> str | None:
        """Why ``message`` stays in the DLQ (one of :data:`SKIP_REASONS`), or None to act."""
        status = message.response_status
        if not self.include_non_retryable and is_non_retryable(message):
            return "non_retryable"
        if self.statuses and not any(status in r for r in self.statuses):
            return "status"
        if any(status in r for r in self.exclude_statuses):
            return "status"
        body = message.response_body or ""
        if self.body_regex is not None and not self.body_regex.search(body):
            return "body"
        if self.exclude_body_regex is not None and self.exclude_body_regex.search(body):
            return "body"
        if self.step_urls and not any(
            fnmatch.fnmatchcase(message.url or "", pattern) for pattern in self.step_urls
        ):
            return "step_url"
        return None

    def describe(self) -> str:
        """For the log and the report: the rules in force, in words."""
        rules = []
        if self.statuses:
            rules.append("status in " + ", ".join(map(str, self.statuses)))
        if self.exclude_statuses:
            rules.append("status not in " + ", ".join(map(str, self.exclude_statuses)))
        if self.body_regex is not None:
            rules.append(f"body matches /{self.body_regex.pattern}/")
        if self.exclude_body_regex is not None:
            rules.append(f"body does not match /{self.exclude_body_regex.pattern}/")
        if self.step_urls:
            rules.append("step url like " + ", ".join(self.step_urls))
        rules.append(
            "non-retryable (489) included" if self.include_non_retryable else "489s skipped"
        )
        return "; ".join(rules)

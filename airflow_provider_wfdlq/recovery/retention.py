"""DLQ retention: which entries left in the DLQ tonight will be gone before the next run.

Entries expire after the plan's retention (3 days free, 1 week pay-as-you-go, up to 3
months on fixed plans; spec "Retention"). A nightly job that skips an entry, or stops at
``max_resumes``, must say which of those will age out before it runs again, or they are
lost silently. The plan's retention is a connection extra (``retention``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from airflow_provider_wfdlq.client import DLQMessage, ValidationError

DAY_MS: Final = 24 * 60 * 60 * 1000
#: Plan names accepted for ``retention``.
PLAN_DAYS: Final = {"free": 3, "payg": 7, "pay_as_you_go": 7}
_UNITS: Final = {"d": 1, "day": 1, "days": 1, "w": 7, "week": 7, "weeks": 7}
_ACCEPTED = "a number of days, '3d', '7 days', '1 week', 'free' (3 days) or 'payg' (7 days)"


def parse_retention_days(value: Any, field: str = "retention") -> float:
    """Days from ``3``, ``"3d"``, ``"7 days"``, ``"1 week"``, ``"free"`` or ``"payg"``."""
    if isinstance(value, bool):
        raise ValidationError(field, value, _ACCEPTED)
    if isinstance(value, int | float):
        days = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text)
        if text in PLAN_DAYS:
            days = float(PLAN_DAYS[text])
        elif match and (match[2] == "" or match[2] in _UNITS):
            days = float(match[1]) * _UNITS.get(match[2], 1)
        else:
            raise ValidationError(field, value, _ACCEPTED)
    else:
        raise ValidationError(field, value, _ACCEPTED)
    if not 0 < days <= 366:
        raise ValidationError(field, value, _ACCEPTED + ", more than 0 and at most 366 days")
    return days


@dataclass(frozen=True)
class Retention:
    """How long entries live, and how far ahead the next run is."""

    retention_ms: int
    horizon_ms: int

    @classmethod
    def build(cls, retention: Any, horizon_ms: int) -> Retention:
        days = parse_retention_days(retention)
        if horizon_ms < 0:
            raise ValidationError("retention_horizon", horizon_ms, "a duration >= 0")
        return cls(round(days * DAY_MS), horizon_ms)

    def expires_at(self, message: DLQMessage) -> int | None:
        return None if message.created_at is None else message.created_at + self.retention_ms

    def expiring(self, message: DLQMessage, now_ms: int) -> bool:
        """Gone before the next run, if nothing acts on it now."""
        expires = self.expires_at(message)
        return expires is not None and expires <= now_ms + self.horizon_ms

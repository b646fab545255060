"""How fast and in what sizes a redrive talks to the API: ``pacing={...}`` on the operator."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from airflow_provider_wfdlq.client import ValidationError
from airflow_provider_wfdlq.client.validation import check_bool, check_count
from airflow_provider_wfdlq.recovery.actor import MAX_BATCH
from airflow_provider_wfdlq.recovery.inflight import MAX_IN_FLIGHT
from airflow_provider_wfdlq.recovery.plan import MAX_PAGE
from airflow_provider_wfdlq.recovery.rendered import require_value


@dataclass(frozen=True)
class Pacing:
    """``requests_per_second``: client-side pacing of every API call (429s are honoured
    anyway); ``page_size``: entries per list call (1-100); ``batch_size``: ids per action
    call (1-50, Upstash's per-call maximum); ``exact_pairing``: one entry per action call,
    so every dlqId -> run pair is a fact, ``concurrency`` calls at a time; ``in_flight``:
    bulk action calls out at once (1-8). With 1 (the default) each call waits for the one
    before it, so calls reach the server strictly oldest first; with more, calls overlap
    each other and, when nothing needs the whole plan first (no ``max_resumes``, canary or
    breaker), the listing too."""

    requests_per_second: float | None = None
    page_size: int = MAX_PAGE
    batch_size: int = MAX_BATCH
    exact_pairing: bool = False
    concurrency: int = 4
    in_flight: int = 1

    @classmethod
    def build(cls, value: Mapping[str, Any] | Pacing | None) -> Pacing:
        if value is None:
            return cls()
        if isinstance(value, Pacing):
            return value
        raw = require_value("pacing", value)
        if not isinstance(raw, Mapping):
            raise ValidationError("pacing", value, "a mapping of pacing settings")
        known = {f.name for f in fields(cls)}
        for name in raw:
            if name not in known:
                raise ValidationError("pacing", name, f"one of {', '.join(sorted(known))}")

        def given(name: str, default: Any) -> Any:
            return require_value(f"pacing.{name}", raw.get(name, default))

        rps = raw.get("requests_per_second")
        pacing = cls(
            requests_per_second=None
            if rps is None
            else _positive("pacing.requests_per_second", given("requests_per_second", None)),
            page_size=check_count(given("page_size", MAX_PAGE), "pacing.page_size"),
            batch_size=check_count(given("batch_size", MAX_BATCH), "pacing.batch_size"),
            exact_pairing=check_bool(given("exact_pairing", False), "pacing.exact_pairing"),
            concurrency=check_count(given("concurrency", 4), "pacing.concurrency"),
            in_flight=check_count(given("in_flight", 1), "pacing.in_flight"),
        )
        pacing.check()
        return pacing

    def check(self) -> None:
        if not 1 <= self.page_size <= MAX_PAGE:
            raise ValidationError("pacing.page_size", self.page_size, f"1 to {MAX_PAGE}")
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValidationError("pacing.batch_size", self.batch_size, f"1 to {MAX_BATCH}")
        if not 1 <= self.concurrency <= 32:
            raise ValidationError("pacing.concurrency", self.concurrency, "1 to 32")
        if not 1 <= self.in_flight <= MAX_IN_FLIGHT:
            raise ValidationError("pacing.in_flight", self.in_flight, f"1 to {MAX_IN_FLIGHT}")
        if self.requests_per_second is not None and not self.requests_per_second > 0:
            raise ValidationError(
                "pacing.requests_per_second", self.requests_per_second, "a number > 0, or None"
            )

    def describe(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _positive(field: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if isinstance(value, bool) or not number > 0:
        raise ValidationError(field, value, "a number > 0, or None")
    return number


class Pacer:
    """Spaces calls ``1 / requests_per_second`` apart; thread-safe (exact pairing)."""

    def __init__(
        self,
        requests_per_second: float | None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = None if requests_per_second is None else 1.0 / requests_per_second
        self.sleep, self.monotonic = sleep, monotonic
        self._next = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        if self.interval is None:
            return
        with self._lock:
            now = self.monotonic()
            wait = max(self._next - now, 0.0)
            self._next = max(now, self._next) + self.interval
        if wait:
            self.sleep(wait)

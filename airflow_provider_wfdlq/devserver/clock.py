"""The simulated clock: real time plus an offset, optionally frozen.

Tests move the world forward (runs finish, callbacks settle) by advancing this clock
instead of sleeping.
"""

from __future__ import annotations

import time


def real_now_ms() -> int:
    return time.time_ns() // 1_000_000


class SimClock:
    def __init__(self) -> None:
        self._offset_ms = 0
        self._frozen_at_ms: int | None = None

    @property
    def frozen(self) -> bool:
        return self._frozen_at_ms is not None

    def now_ms(self) -> int:
        if self._frozen_at_ms is not None:
            return self._frozen_at_ms
        return real_now_ms() + self._offset_ms

    def advance(self, seconds: float) -> int:
        delta = round(seconds * 1000)
        if delta < 0:
            raise ValueError("time only moves forward")
        if self._frozen_at_ms is not None:
            self._frozen_at_ms += delta
        else:
            self._offset_ms += delta
        return self.now_ms()

    def freeze(self, at_ms: int | None = None) -> int:
        self._frozen_at_ms = self.now_ms() if at_ms is None else at_ms
        return self._frozen_at_ms

    def unfreeze(self) -> int:
        if self._frozen_at_ms is not None:
            self._offset_ms = self._frozen_at_ms - real_now_ms()
            self._frozen_at_ms = None
        return self.now_ms()

    def reset(self) -> None:
        self._offset_ms = 0
        self._frozen_at_ms = None

    def snapshot(self) -> dict[str, object]:
        return {"now": self.now_ms(), "frozen": self.frozen, "offsetMs": self._offset_ms}

"""Action calls out at once (``pacing.in_flight``): at most ``limit`` unanswered.

Only the HTTP part of a call runs on a worker thread (:meth:`BatchActor.send`); preparing a
call (its ids into the ledger) and reading its answer (counts, report, checkpoint) stay on
the walk's thread, so the durable state is written from one thread only, in order. With a
limit of 1 nothing runs on another thread: each call is sent and answered in turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from airflow_provider_wfdlq.recovery.actor import Answer, Call

#: The most action calls a walk may have out at once (``pacing.in_flight``).
MAX_IN_FLIGHT = 8


class InFlight:
    """Sends calls, at most ``limit`` at a time; hands back answered ones."""

    def __init__(self, send: Callable[[Call], Answer], limit: int) -> None:
        self._send = send
        self.limit = limit
        self._pool = ThreadPoolExecutor(max_workers=limit) if limit > 1 else None
        self._out: dict[Future[Answer], Call] = {}
        self._answered: list[tuple[Call, Answer]] = []

    def __len__(self) -> int:
        """Calls sent and not yet handed back."""
        return len(self._out) + len(self._answered)

    @property
    def room(self) -> int:
        return self.limit - len(self)

    def pending_ids(self) -> list[str]:
        """The ids of every call sent and not yet recorded (a checkpoint names them: a
        retry settles exactly these, and nothing a recorded call named)."""
        calls = [*self._out.values(), *(call for call, _ in self._answered)]
        return [item.dlq_id for call in calls for item in call.items]

    def submit(self, call: Call) -> None:
        if self._pool is None:
            self._answered.append((call, self._send(call)))
            return
        self._out[self._pool.submit(self._send, call)] = call

    def answered(
        self, block: bool = False, until: Sequence[Future[Any]] = ()
    ) -> list[tuple[Call, Answer]]:
        """The calls answered so far, in the order they were sent; with ``block``, wait
        until at least one is (if any is out) or one of ``until`` is done. A worker's
        BaseException (a dying task) is raised here."""
        if self._out:
            waiting: list[Future[Any]] = [*self._out, *until]
            timeout = None if block else 0
            done, _ = wait(waiting, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in sorted((f for f in done if f in self._out), key=self._chunk):
                call = self._out.pop(future)
                self._answered.append((call, future.result()))
        answered, self._answered = self._answered, []
        return answered

    def _chunk(self, future: Future[Any]) -> int:
        return self._out[future].chunk

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

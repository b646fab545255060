"""The one driver of the sans-IO poll plans, and which errors a poll waits out.

A poll plan (``CallbackWatcher.poll()``, ``RunFollower.poll()``) is a generator: it yields
the calls it needs, is sent each call's answer, and returns its verdict. :func:`drive_sync`
and :func:`drive_async` run such a plan with a function that makes one call; the modules
that own a plan say how a call is made (``poll_sync`` / ``poll_async`` there).

An error a call raises is not thrown into the plan: it ends the poll and reaches the caller,
and what the plan learnt from the answers before it stays with the watcher / follower.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar, cast

from airflow_provider_wfdlq.client import (
    BadRequestError,
    RateLimitedError,
    ServerError,
    TransportError,
)

__all__ = ["drive_async", "drive_sync", "is_transient"]

CallT = TypeVar("CallT")
VerdictT = TypeVar("VerdictT")


def is_transient(error: BaseException) -> bool:
    """Worth polling again later: rate limits, server trouble, no answer, a stale cursor."""
    if isinstance(error, RateLimitedError | ServerError | TransportError):
        return True
    return isinstance(error, BadRequestError) and "cursor" in error.error.lower()


def drive_sync(
    plan: Generator[CallT, Any, VerdictT], make_call: Callable[[CallT], Any]
) -> VerdictT:
    """Run ``plan`` to its verdict, answering each call with ``make_call(call)``."""
    answer: Any = None
    while True:
        try:
            call = plan.send(answer)
        except StopIteration as finished:
            return cast("VerdictT", finished.value)
        answer = make_call(call)


async def drive_async(
    plan: Generator[CallT, Any, VerdictT], make_call: Callable[[CallT], Awaitable[Any]]
) -> VerdictT:
    """:func:`drive_sync` with a coroutine per call, awaited one after the other."""
    answer: Any = None
    while True:
        try:
            call = plan.send(answer)
        except StopIteration as finished:
            return cast("VerdictT", finished.value)
        answer = await make_call(call)

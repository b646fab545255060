"""Fixed values of the wire contract, in one place so docs and code cannot drift apart."""

from __future__ import annotations

from typing import Final

DEFAULT_BASE_URL: Final = "https://qstash.upstash.io"
"""The EU region; the US region is ``https://qstash-us-east-1.upstash.io`` (own token, own DLQ)."""

DEV_TOKEN: Final = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="
"""The token of Upstash's own local dev server, reused so users' local settings carry over."""

TERMINAL_CALLBACK_STATES: Final = frozenset(
    {"CALLBACK_SUCCESS", "CALLBACK_FAIL", "CALLBACK_CANCELED"}
)
"""Failure-callback states that never change on their own."""

CALLBACK_STATES: Final = frozenset({"CALLBACK_INPROGRESS", *TERMINAL_CALLBACK_STATES})
"""Every failure-callback state; ``CALLBACK_INPROGRESS`` is the only non-terminal one."""

RUN_STATES: Final = frozenset({"RUN_STARTED", "RUN_SUCCESS", "RUN_FAILED", "RUN_CANCELED"})
"""States of a workflow run as the run logs report them."""

"""One dev-server config per reading of what Upstash leaves unstated.

Run a client against each to prove it safe under all of them::

    @pytest.mark.parametrize("reading", sorted(READINGS))
    def test_redrive(reading):
        with DevServer(**READINGS[reading]) as server:
            ...

Every value is a dict of `WorldConfig` fields, usable as `DevServer(**config)`,
`control.set_config(**config)` or `control.reset(config=config)`.
"""

from __future__ import annotations

from typing import Any

READINGS: dict[str, dict[str, Any]] = {
    # What the dev server did before the knobs: entries leave at once, answers in the
    # order sent, every id acted on, oldest first, cursors that advance, seconds, int ms.
    "default": {},
    # A resumed/restarted entry never leaves the DLQ: re-sending duplicates runs.
    "keep_resumed": {"keep_resumed": True},
    # It leaves, but only after the next 3 real-API requests.
    "lag": {"resumed_lag": 3},
    # Bulk answers' workflowRuns do not follow the order of the dlqIds sent.
    "reversed": {"answer_order": "reversed"},
    "shuffled": {"answer_order": "shuffled"},
    # A bulk call by dlqIds acts on the first 7 ids only and answers a cursor.
    "capped": {"max_ids_per_call": 7},
    # The listing comes newest first.
    "newest_first": {"list_order": "newest"},
    # Every 3rd list request with a cursor is refused as stale (400).
    "stale_cursors": {"stale_cursor_every": 3},
    # The listing hands out the same cursor forever (a client must not loop).
    "frozen_cursor": {"frozen_cursor": True},
    # The listing cursor is a place among the matches: entries that leave while a client
    # pages make it step over others.
    "offset_cursor": {"offset_cursor": True},
    # Burst-RateLimit-Reset in unix milliseconds instead of seconds.
    "reset_ms": {"rate_limit_reset_unit": "ms"},
    # workflowCreatedAt of resume/restart answers as ISO-8601 text.
    "iso_created_at": {"created_at_format": "iso"},
    # A bulk delete by dlqIds naming a missing id deletes the others (no 404).
    "delete_skips_missing": {"bulk_delete_missing": "skip"},
    # Several at once: the worst case for a client that trusts order or removal.
    "hostile": {
        "keep_resumed": True,
        "answer_order": "shuffled",
        "max_ids_per_call": 7,
        "list_order": "newest",
    },
}

"""The engine's invariants, asserted against the dev server's action log (the truth of
what the server did), not against the engine's own report."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from typing import Any

from airflow_provider_wfdlq.recovery import RedriveReport

#: Counts that are not a state of an entry (I4 sums the others).
NOT_STATES = ("expiring_before_next_run",)


def acted_ids(server: Any) -> list[str]:
    return [a["dlqId"] for a in server.control.actions() if a["action"] in ("resume", "restart")]


def assert_never_twice(server: Any) -> list[str]:
    """I2: no dlqId was acted on twice, all tries together."""
    ids = acted_ids(server)
    twice = [i for i, n in Counter(ids).items() if n > 1]
    assert not twice, f"acted on more than once: {twice[:10]}"
    return ids


def assert_pairs_true(server: Any, report: RedriveReport) -> None:
    """I3: every pair stated as fact is true; the others say their basis."""
    made = {a["dlqId"]: a["newWorkflowRunId"] for a in server.control.actions()}
    runs_made = set(made.values())
    for run in report.runs:
        assert run["paired_by"] in ("single_id", "answer_order", None), run
        assert run["workflow_run_id"] in runs_made, run  # every run named is real
        if run["paired_by"] == "single_id":
            assert made[run["dlq_id"]] == run["workflow_run_id"], run
        if run["paired_by"] is None:
            assert run["dlq_id"] is None, run


def assert_counts_add_up(report: RedriveReport) -> None:
    """I4: every entry found is in exactly one state."""
    states = sum(
        n
        for key, n in report.counts.items()
        if key not in NOT_STATES and not key.startswith("tripped_")
    )
    assert states == report.found, (dict(report.counts), report.found)


def assert_oldest_first(server: Any, created: dict[str, int], batch: int = 1) -> None:
    """I5: the server acted on entries in created-at order across the whole walk (calls
    of one batch may go out together: ``batch`` > 1 orders batches, not calls in them)."""
    order = [created[i] for i in acted_ids(server) if i in created]
    chunks = [order[k : k + batch] for k in range(0, len(order), batch)]
    for earlier, later in pairwise(chunks):
        assert max(earlier) <= min(later), "not oldest first"
    assert all(c == sorted(c) for c in chunks) or batch > 1, "not oldest first"


def check_all(server: Any, report: RedriveReport, created: dict[str, int], batch: int = 1) -> None:
    assert_never_twice(server)
    assert_pairs_true(server, report)
    assert_counts_add_up(report)
    assert_oldest_first(server, created, batch)

"""What one try of a task hands to the next: the checkpoint, and the ledger's in-flight ids.

A checkpoint is written right after a listing finishes and after every batch: the walk's
start (its bound), how much of the ledger is settled, what the leave probe has seen, the
batch size the server allows, the canary, and the report so far (without the listing's own
counts: a retry lists again). Ids written to the ledger after the last checkpoint were in
flight when a try died: the next try resolves them like lost answers, never sends them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from airflow_provider_wfdlq.recovery.actor import BatchActor, LeaveProbe
from airflow_provider_wfdlq.recovery.checkpoint import Checkpoint, Ledger
from airflow_provider_wfdlq.recovery.gate import SafetyGate
from airflow_provider_wfdlq.recovery.incompatible import IncompatibleRestarts
from airflow_provider_wfdlq.recovery.plan import Item
from airflow_provider_wfdlq.recovery.recorder import Recorder

log = logging.getLogger("airflow_provider_wfdlq.recovery")

#: The checkpoint's part that holds the runs named in the result.
RUNS = "runs"


def _entries(n: int) -> str:
    return f"{n} entr{'y' if n == 1 else 'ies'}"


class TryState:
    """Saves and restores the parts of a walk that outlive a try."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        ledger: Ledger,
        *,
        actor: BatchActor,
        gate: SafetyGate,
        recorder: Recorder,
        restarts: IncompatibleRestarts,
        by_ids: bool,
    ) -> None:
        self.checkpoint = checkpoint
        self.ledger = ledger
        self.actor = actor
        self.gate = gate
        self.recorder = recorder
        self.restarts = restarts
        self.by_ids = by_ids
        self.bound = 0
        self._settled = ledger.chunks
        self._pending: list[str] = []
        self._runs_saved = (-1, False)

    def restore(self, now_ms: int) -> None:
        """Take up an earlier try's walk, if there was one; else start one at ``now_ms``."""
        state = self.checkpoint.load()
        if state is None:
            self.bound = now_ms
            return
        self.bound = int(state["bound"])
        self._settled = int(state.get("settled", 0))
        self._pending = [str(i) for i in state.get("pending", [])]
        report = dict(state.get("report", {}))
        report.update(self.checkpoint.load_part(RUNS) or {})
        self.recorder.report.restore(report)
        self.actor.probe = LeaveProbe(**state.get("probe", {}))
        self.actor.batch_limit = int(state.get("batch_limit", self.actor.batch_limit))
        self.gate.restore(state.get("canary") or {})
        # A checkpoint written after a listing finished: its skipped entries are written
        # (acting while listing, the skipped are written when the listing ends).
        self.recorder.skips_written = bool(state.get("listed", True))
        self.restarts.done = int(self.recorder.report.counts.get("restarted_incompatible", 0))
        log.info(
            "Going on from a checkpoint: %s sent by earlier tries.", _entries(len(self.ledger))
        )

    def settle_in_flight(self) -> None:
        """Ids an earlier try wrote to the ledger but did not live to record."""
        later = self.ledger.sent_since(self._settled)
        out = [i for i in self._pending if i in self.ledger]  # calls out at the checkpoint
        in_flight = list(dict.fromkeys([*out, *later]))
        if not in_flight:
            return
        log.warning("%s were in flight when an earlier try died.", _entries(len(in_flight)))
        for result in self.actor.settle([Item.build(i) for i in in_flight]):
            self.recorder.record(result)
        self.save()

    def save(self, *, pending: Sequence[str] = (), listed: bool = True) -> None:
        """``pending``: the ids of calls sent and not yet recorded (calls in flight);
        ``listed``: False while acting goes on during a listing."""
        self._settled = self.ledger.chunks
        self._pending = list(pending)
        report = self.recorder.state(by_ids=self.by_ids)
        # The runs named in the result (up to 1,000) go in their own key, written only
        # while they change: the checkpoint written after every batch stays small.
        runs = {"runs": report.pop("runs"), "runs_truncated": report.pop("runs_truncated")}
        if (len(runs["runs"]), runs["runs_truncated"]) != self._runs_saved:
            self.checkpoint.save_part(RUNS, runs)
            self._runs_saved = (len(runs["runs"]), runs["runs_truncated"])
        self.checkpoint.save(
            {
                "bound": self.bound,
                "settled": self._settled,
                "pending": self._pending,
                "listed": listed,
                "probe": self.actor.probe.to_state(),
                "batch_limit": self.actor.batch_limit,
                "canary": self.gate.to_state(),
                "report": report,
            }
        )

    def clear(self) -> None:
        """A finished walk leaves no checkpoint; its ledger stays (a cleared task that runs
        again never sends an id twice either)."""
        self.checkpoint.clear()

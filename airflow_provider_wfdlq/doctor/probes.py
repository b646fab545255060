"""The probes (they act): resume one entry, resume several in one bulk call, and the answers.

``sleep`` and ``clock`` are seams for the resume probe's bounded wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from airflow_provider_wfdlq.client import (
    APIError,
    DLQFilters,
    NotFoundError,
    OutcomeUnknownError,
    ResumedRun,
    WFDLQError,
)
from airflow_provider_wfdlq.doctor.report import DIFFERS, OK, UNKNOWN, Check, ProbeRefused
from airflow_provider_wfdlq.doctor.session import Session


class Probes:
    """Resumes the entries a user names and judges what the server did with them."""

    def __init__(
        self,
        session: Session,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.sleep, self.clock = sleep, clock
        #: Every run a probe created (None for an outcome never learnt).
        self.runs: list[ResumedRun | None] = []

    def probe_resume(self, dlq_id: str, *, reads: int = 10, interval: float = 0.5) -> Check:
        """Resume ONE entry, then read it back up to ``reads`` times, ``interval`` apart."""
        self._must_exist([dlq_id])
        try:
            run = self.session.client.resume(dlq_id)
        except OutcomeUnknownError as exc:
            self.runs.append(None)
            return Check(
                "resume_leaves",
                UNKNOWN,
                f"the resume's outcome is unknown ({self.session.text(exc)}): it may have acted",
                fix="look the entry and its run up in the Upstash console",
            )
        except APIError as exc:
            seen = f"the resume was refused: {self.session.text(exc)}"
            return Check("resume_leaves", UNKNOWN, seen)
        self.runs.append(run)
        return self._read_back(dlq_id, run, reads, interval)

    def _read_back(self, dlq_id: str, run: ResumedRun, reads: int, interval: float) -> Check:
        start = self.clock()
        for read in range(1, reads + 1):
            if read > 1 and interval > 0:
                self.sleep(interval)
            try:
                self.session.client.get_message(dlq_id)
            except NotFoundError:
                return _left(dlq_id, read, self.clock() - start)
            except WFDLQError as exc:
                seen = f"reading {dlq_id} back failed: {self.session.text(exc)}"
                return Check("resume_leaves", UNKNOWN, seen)
        waited = self.clock() - start
        return Check(
            "resume_leaves",
            DIFFERS,
            f"{dlq_id} was resumed (new run {run.workflow_run_id}) and is still in the DLQ "
            f"after {reads} reads over {waited:.1f}s: the server keeps resumed entries",
            fix="the engine then never resolves a lost answer by the DLQ (such entries are "
            "reported answer_lost_unknown: check them in the console), and at most once holds "
            "only within one task's ledger: a later run over the same from/to window resumes "
            "them again. Keep nightly windows disjoint, never clear a finished redrive task, "
            "and delete resumed entries if they must go",
            reading="keep_resumed",
            matters=True,
        )

    def probe_bulk(self, dlq_ids: Sequence[str]) -> list[Check]:
        """Resume ``dlq_ids`` (two or more) in ONE bulk call; never follows its cursor."""
        if len(dlq_ids) < 2 or len(set(dlq_ids)) != len(dlq_ids):
            raise ProbeRefused("the bulk probe needs two or more distinct dlqIds")
        self._must_exist(dlq_ids)
        order = _answer_order()
        try:
            result = self.session.client.resume_bulk(DLQFilters(dlq_ids=tuple(dlq_ids)))
        except OutcomeUnknownError as exc:
            text = self.session.text(exc)
            seen = f"the bulk resume's outcome is unknown ({text}): it may have acted"
            return [Check("bulk_cap", UNKNOWN, seen, "look the entries up in the console"), order]
        except APIError as exc:
            seen = f"the bulk resume was refused: {self.session.text(exc)}"
            return [Check("bulk_cap", UNKNOWN, seen)]
        self.runs.extend(result.runs)
        return [_bulk_cap(len(dlq_ids), len(result.runs), bool(result.cursor)), order]

    def _must_exist(self, dlq_ids: Sequence[str]) -> None:
        for dlq_id in dlq_ids:
            try:
                self.session.client.get_message(dlq_id)
            except NotFoundError:
                raise ProbeRefused(
                    f"entry {dlq_id} is not in the DLQ (404): nothing was resumed"
                ) from None

    def answer_check(self) -> Check | None:
        """The shape of the probes' answers: ``workflowCreatedAt`` int ms or ISO text."""
        runs = [run for run in self.runs if run is not None]
        if not runs:
            return None
        kinds = {_created_at_kind(run.workflow_created_at_raw) for run in runs}
        sample = runs[0].workflow_created_at_raw
        if kinds == {"ms"}:
            seen = f"workflowRunId text, workflowCreatedAt int unix ms ({sample!r})"
            return Check("resume_answer", OK, seen)
        if kinds <= {"ms", "iso"} and all(run.workflow_created_at is not None for run in runs):
            return Check(
                "resume_answer",
                DIFFERS,
                f"workflowCreatedAt is ISO-8601 text ({sample!r}), not int ms",
                fix="harmless: the client reads ISO text as ms, so new runs are still followed",
                reading="iso_created_at",
            )
        return Check(
            "resume_answer",
            DIFFERS,
            f"workflowCreatedAt is neither int ms nor ISO text ({sample!r})",
            fix="the engine cannot follow the new runs by (run id, created at); report this",
            matters=True,
        )


def _left(dlq_id: str, read: int, waited: float) -> Check:
    """The entry was gone at read ``read``: at once, or with a lag."""
    if read == 1:
        seen = f"{dlq_id} was gone at the first read after the resume: it leaves at once"
        return Check("resume_leaves", OK, seen)
    return Check(
        "resume_leaves",
        DIFFERS,
        f"{dlq_id} was still listed for {read - 1} reads after the resume and gone at "
        f"read {read} ({waited:.1f}s): it leaves with a lag",
        fix="the engine's read-back sees it still there, so lost answers are not resolved "
        "by the DLQ (reported answer_lost_unknown: check them in the console), and a run "
        "that lists again within the lag would see resumed entries; do not rerun a "
        "redrive right after another",
        reading="lag",
        matters=True,
    )


def _answer_order() -> Check:
    return Check(
        "answer_order",
        UNKNOWN,
        "a bulk answer's workflowRuns carry no dlqId, so their order cannot be observed",
        fix="the engine marks bulk pairs paired_by: answer_order (an inference); "
        "pacing={'exact_pairing': True} sends one id per call so every pair is a fact",
    )


def _bulk_cap(named: int, runs: int, has_cursor: bool) -> Check:
    """One bulk call named ``named`` ids and made ``runs`` runs: is there a cap?"""
    if runs < named or has_cursor:
        cursor = " and answered a cursor" if has_cursor else ""
        return Check(
            "bulk_cap",
            DIFFERS,
            f"one call named {named} ids and made {runs} runs{cursor}: the server acts "
            f"on at most {runs} ids per call ({named - runs} of the named entries were not "
            "resumed; the cursor was not followed)",
            fix=f"set pacing={{'batch_size': {max(runs, 1)}}}; the engine also shrinks its "
            "batches after a short answer, but resolves which ids were acted on only by "
            "the DLQ (see resume_leaves)",
            reading="capped",
            matters=True,
        )
    if runs > named:
        return Check(
            "bulk_cap",
            DIFFERS,
            f"one call named {named} ids and made {runs} runs",
            fix="report this: the engine pairs runs with ids",
            matters=True,
        )
    return Check(
        "bulk_cap",
        OK,
        f"one call named {named} ids and made {runs} runs, no cursor (a cap above "
        f"{named} would not show)",
    )


def _created_at_kind(raw: Any) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return "ms"
    if isinstance(raw, str) and ("T" in raw or "-" in raw):
        return "iso"
    return "other"

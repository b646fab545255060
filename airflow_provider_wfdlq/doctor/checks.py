"""The doctor's checks: what the redrive engine assumes of the server, seen on a real account.

Airflow-free. :class:`Doctor` is what ``wfdlq-doctor`` and the connection form's Test
button use; it puts together small parts, each with one job:

- :mod:`.session`: the client and the raw client of one account, and every answer's
  status and rate-limit headers (:class:`RecordingTransport`);
- :mod:`.read_only`: checks 1-7 (:class:`ReadOnlyChecks`), made of :mod:`.listing`
  (cursors, order, get), :mod:`.run_logs` (11 runs in one call) and :mod:`.limits`
  (flow-control key, rate-limit headers);
- :mod:`.probes`: the probes that act (:class:`Probes`);
- :mod:`.report`: :class:`Check` and :class:`Report`.

Every check is ``ok`` / ``differs`` / ``unknown``; a ``differs`` names the dev-server
reading it matches (``airflow_provider_wfdlq.devserver.READINGS``) and says whether it
matters to the engine (then the doctor exits 1).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self

from airflow_provider_wfdlq.client import ResumedRun, RetryPolicy, WorkflowDLQClient
from airflow_provider_wfdlq.doctor.limits import MS_THRESHOLD, UNIX_SECONDS_FLOOR
from airflow_provider_wfdlq.doctor.probes import Probes
from airflow_provider_wfdlq.doctor.read_only import (
    EU_URL,
    EU_URL_REGIONAL,
    REGION_DOCS,
    US_URL,
    ReadOnlyChecks,
)
from airflow_provider_wfdlq.doctor.report import (
    DIFFERS,
    OK,
    TITLES,
    UNKNOWN,
    Check,
    ProbeRefused,
    Report,
)
from airflow_provider_wfdlq.doctor.session import RecordingTransport, Seen, Session

__all__ = [
    "DIFFERS",
    "EU_URL",
    "EU_URL_REGIONAL",
    "MS_THRESHOLD",
    "OK",
    "REGION_DOCS",
    "TITLES",
    "UNIX_SECONDS_FLOOR",
    "UNKNOWN",
    "US_URL",
    "Check",
    "Doctor",
    "ProbeRefused",
    "Probes",
    "ReadOnlyChecks",
    "RecordingTransport",
    "Report",
    "Seen",
    "Session",
]


class Doctor:
    """Runs the checks against one account; a context manager (closes its connections).

    ``sleep`` and ``clock`` are seams for the resume probe's bounded wait.
    """

    def __init__(
        self,
        token: str,
        base_url: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        allow_insecure_http: bool = False,
        auth_hint: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = Session(
            token,
            base_url,
            timeout=timeout,
            retry=retry,
            allow_insecure_http=allow_insecure_http,
            auth_hint=auth_hint,
        )
        self.checks = ReadOnlyChecks(self.session)
        self.probes = Probes(self.session, sleep=sleep, clock=clock)

    @property
    def base_url(self) -> str:
        return self.session.base_url

    @property
    def client(self) -> WorkflowDLQClient:
        return self.session.client

    @property
    def seen(self) -> list[Seen]:
        return self.session.seen

    @property
    def runs(self) -> list[ResumedRun | None]:
        """Every run a probe created (None for an outcome never learnt)."""
        return self.probes.runs

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def read_only(
        self, *, pages: int = 4, page_size: int = 10, flow_control_key: str | None = None
    ) -> Report:
        """Checks 1-7; nothing is changed on the account."""
        return self.checks.run(pages=pages, page_size=page_size, flow_control_key=flow_control_key)

    def probe_resume(self, dlq_id: str, *, reads: int = 10, interval: float = 0.5) -> Check:
        """Resume ONE entry, then read it back up to ``reads`` times, ``interval`` apart."""
        return self.probes.probe_resume(dlq_id, reads=reads, interval=interval)

    def probe_bulk(self, dlq_ids: Sequence[str]) -> list[Check]:
        """Resume ``dlq_ids`` (two or more) in ONE bulk call; never follows its cursor."""
        return self.probes.probe_bulk(dlq_ids)

    def answer_check(self) -> Check | None:
        """The shape of the probes' answers: ``workflowCreatedAt`` int ms or ISO text."""
        return self.probes.answer_check()

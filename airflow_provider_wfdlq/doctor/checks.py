"""The doctor's checks: what the redrive engine assumes of the server, seen on a real account.

Airflow-free. :class:`Doctor` talks to the API through the project's client (one attempt
per read is enough here, a 429 is waited out) and records every answer's status and
rate-limit headers on the way (:class:`RecordingTransport`), so a header the client does not
surface can still be looked at. The one call the client refuses on purpose (11 runs in one
run-logs call) goes out raw, with the same token and URL.

Every check is ``ok`` / ``differs`` / ``unknown``; a ``differs`` names the dev-server
reading it matches (``airflow_provider_wfdlq.devserver.READINGS``) and says whether it
matters to the engine (then the doctor exits 1).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import httpx

from airflow_provider_wfdlq.client import (
    MAX_LOG_RUNS,
    APIError,
    AuthError,
    BadRequestError,
    DLQFilters,
    DLQMessage,
    NotFoundError,
    OutcomeUnknownError,
    ResumedRun,
    RetryPolicy,
    UnexpectedAnswerError,
    WFDLQError,
    WorkflowDLQClient,
)
from airflow_provider_wfdlq.client._wire import USER_AGENT, check_base_url
from airflow_provider_wfdlq.client.errors import redact

OK = "ok"
DIFFERS = "differs"
UNKNOWN = "unknown"

EU_URL = "https://qstash.upstash.io"
EU_URL_REGIONAL = "https://qstash-eu-central-1.upstash.io"
US_URL = "https://qstash-us-east-1.upstash.io"
REGION_DOCS = "https://upstash.com/docs/workflow/howto/multi-region"

#: A ``*-RateLimit-Reset`` above this is unix milliseconds (as the client reads it).
MS_THRESHOLD = 1e11
#: Below this, a "reset" cannot be a unix time (2001-09-09): it is a delta in seconds.
UNIX_SECONDS_FLOOR = 1e9

#: Check names, in the order they are shown, and their titles.
TITLES: dict[str, str] = {
    "token": "token and region URL",
    "list_page": "one list page parses",
    "get_entry": "get of one entry parses",
    "list_order": "listing order",
    "cursor": "list cursors",
    "run_logs": "run-logs page size (11 runs)",
    "flow_control": "flow-control key state",
    "rate_limit": "rate-limit headers",
    "resume_leaves": "a resumed entry leaves the DLQ",
    "resume_answer": "resume answer shape",
    "bulk_cap": "ids acted on per bulk call",
    "answer_order": "order of bulk answers",
}


@dataclass
class Check:
    """One observation: its status, what was seen, and the fix or setting to use."""

    name: str
    status: str
    seen: str
    fix: str = ""
    #: The dev-server reading this matches (a key of ``READINGS``), when it differs.
    reading: str | None = None
    #: A ``differs`` (or, for the token, any non-ok) the engine cannot live with: exit 1.
    matters: bool = False

    @property
    def title(self) -> str:
        return TITLES.get(self.name, self.name)

    @property
    def blocking(self) -> bool:
        return self.matters and self.status != OK

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "seen": self.seen,
            "fix": self.fix,
            "reading": self.reading,
            "matters": self.matters,
        }


@dataclass
class Report:
    """Every check of one doctor run, and what they add up to."""

    base_url: str
    checks: list[Check] = field(default_factory=list)

    def get(self, name: str) -> Check | None:
        return next((check for check in self.checks if check.name == name), None)

    @property
    def connected(self) -> bool:
        token = self.get("token")
        return token is not None and token.status == OK

    @property
    def readings(self) -> list[str]:
        """The dev-server readings seen; ``["default"]`` when nothing differs."""
        if not self.connected:
            return []
        names: list[str] = []
        for check in self.checks:
            if check.status == DIFFERS and check.reading and check.reading not in names:
                names.append(check.reading)
        return names or ["default"]

    @property
    def exit_code(self) -> int:
        return 1 if any(check.blocking for check in self.checks) else 0

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in (OK, DIFFERS, UNKNOWN)}

    def summary(self) -> str:
        """One paragraph: counts, readings, then every check that is not ok."""
        counts = self.counts()
        parts = [", ".join(f"{n} {status}" for status, n in counts.items() if n)]
        if self.readings:
            parts.append(f"reading: {', '.join(self.readings)}")
        text = "; ".join(parts)
        notes = [
            f"{check.name} {check.status}: {check.seen}"
            for check in self.checks
            if check.status == DIFFERS or (check.blocking and check.status != OK)
        ]
        if notes:
            text += ". " + " | ".join(notes)
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "checks": [check.to_json() for check in self.checks],
            "readings": self.readings,
            "exit_code": self.exit_code,
        }


class ProbeRefused(WFDLQError):
    """A probe was not sent: its entry is missing, or the ids cannot go in one call."""


@dataclass(frozen=True)
class Seen:
    """One HTTP answer as the transport saw it: no body, no request headers."""

    method: str
    path: str
    status: int
    rate_headers: tuple[tuple[str, str], ...]


def _rate_headers(headers: httpx.Headers) -> tuple[tuple[str, str], ...]:
    return tuple(
        (name, value)
        for name, value in headers.items()
        if "ratelimit" in name.lower() or name.lower() == "retry-after"
    )


class RecordingTransport(httpx.BaseTransport):
    """Passes every request on and notes the answer's status and rate-limit headers."""

    def __init__(
        self, seen: list[Seen] | None = None, inner: httpx.BaseTransport | None = None
    ) -> None:
        self.seen: list[Seen] = [] if seen is None else seen
        self.inner = inner if inner is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.seen.append(
            Seen(
                request.method,
                request.url.path,
                response.status_code,
                _rate_headers(response.headers),
            )
        )
        return response

    def close(self) -> None:
        self.inner.close()


@dataclass
class _Walk:
    messages: list[DLQMessage]
    pages: int
    cursor: Check


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
        self.base_url = check_base_url(base_url)
        self._token = token
        self.seen: list[Seen] = []
        self.client = WorkflowDLQClient(
            token,
            self.base_url,
            timeout=timeout,
            retry=retry or RetryPolicy(max_attempts=3, max_rate_limit_wait=10.0),
            transport=RecordingTransport(self.seen),
            allow_insecure_http=allow_insecure_http,
            auth_hint=auth_hint,
        )
        self._raw = httpx.Client(
            transport=RecordingTransport(self.seen), timeout=timeout, follow_redirects=False
        )
        self.sleep, self.clock = sleep, clock
        #: Every run a probe created (None for an outcome never learnt).
        self.runs: list[ResumedRun | None] = []

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
        self.client.close()
        self._raw.close()

    def _text(self, exc: BaseException) -> str:
        return redact(str(exc), self._token)

    # --- read-only ------------------------------------------------------------------------

    def read_only(
        self, *, pages: int = 4, page_size: int = 10, flow_control_key: str | None = None
    ) -> Report:
        """Checks 1-7; nothing is changed on the account."""
        report = Report(self.base_url)
        checks = report.checks
        try:
            first = self.client.list_messages(count=page_size)
        except AuthError as exc:
            checks.append(self._token_refused(exc))
            return report
        except UnexpectedAnswerError as exc:
            checks.append(Check("token", OK, f"the server at {self.base_url} answered"))
            checks.append(
                Check(
                    "list_page",
                    DIFFERS,
                    f"the list answer does not parse: {self._text(exc)}",
                    fix="the engine cannot list this DLQ; check the URL points at the QStash "
                    "API itself, not a proxy or a path under it",
                    matters=True,
                )
            )
            checks.append(self._rate_limit_check())
            return report
        except WFDLQError as exc:
            checks.append(
                Check(
                    "token",
                    UNKNOWN,
                    f"listing the DLQ failed: {self._text(exc)}",
                    fix=f"check the URL ({self.base_url}) is reachable and is the QStash API: "
                    f"EU {EU_URL} (or {EU_URL_REGIONAL}), US {US_URL}",
                    matters=True,
                )
            )
            checks.append(self._rate_limit_check())
            return report
        checks.append(
            Check("token", OK, f"the token is accepted at {self.base_url} (GET /v2/workflows/dlq)")
        )
        more = "a cursor for more" if first.cursor else "no cursor (the last page)"
        checks.append(
            Check("list_page", OK, f"{len(first.messages)} entries (count={page_size}), {more}")
        )
        walk = self._walk(first, pages, page_size)
        checks.append(self._get_check(walk.messages))
        checks.append(_order_check(walk.messages, walk.pages))
        checks.append(walk.cursor)
        checks.append(self._run_logs_check(walk.messages))
        checks.append(self._flow_control_check(flow_control_key))
        checks.append(self._rate_limit_check())
        return report

    def _token_refused(self, exc: AuthError) -> Check:
        return Check(
            "token",
            DIFFERS,
            f"HTTP {exc.status} from {self.base_url}: {redact(exc.error, self._token)}",
            fix="check the token (QSTASH_TOKEN; in an Airflow connection, its password field) "
            "and that the URL is the token's region: EU "
            f"{EU_URL} (or {EU_URL_REGIONAL}), US {US_URL}; each region has its own token "
            f"and its own DLQ ({REGION_DOCS})",
            matters=True,
        )

    def _walk(self, first: Any, pages: int, page_size: int) -> _Walk:
        messages = list(first.messages)
        cursor: str | None = first.cursor
        sent: list[str] = []
        read = 1
        while cursor is not None and read < pages:
            if cursor in sent:
                return _Walk(messages, read, _frozen(cursor, read))
            sent.append(cursor)
            try:
                page = self.client.list_messages(cursor=cursor, count=page_size)
            except BadRequestError as exc:
                check = Check(
                    "cursor",
                    DIFFERS,
                    f"the cursor of page {read} was refused on request {len(sent)} with a "
                    f"cursor ({redact(exc.error, self._token)})",
                    fix="harmless: the engine starts a listing over past what it saw when a "
                    "cursor is refused (and fails only if 3 restarts in a row find nothing "
                    "new); a smaller walk (a narrower from/to window) meets fewer",
                    reading="stale_cursors",
                )
                return _Walk(messages, read, check)
            read += 1
            messages.extend(page.messages)
            if page.cursor is not None and page.cursor == cursor:
                return _Walk(messages, read, _frozen(page.cursor, read))
            cursor = page.cursor
        if not sent and cursor is not None:
            seen = "not walked: one page was read (wfdlq-doctor walks several)"
            return _Walk(messages, read, Check("cursor", UNKNOWN, seen))
        if not sent:
            seen = (
                f"only one page ({len(messages)} entries at count={page_size}): no cursor to follow"
            )
            return _Walk(messages, read, Check("cursor", UNKNOWN, seen))
        ids = [m.dlq_id for m in messages]
        if len(set(ids)) != len(ids):
            check = Check(
                "cursor",
                DIFFERS,
                f"the cursor advanced but {len(ids) - len(set(ids))} entries came twice "
                f"in {read} pages",
                fix="the engine dedupes by dlqId and stops a walk that makes no progress; "
                "nothing to set",
            )
            return _Walk(messages, read, check)
        seen = f"advanced on each of {len(sent)} cursor requests ({read} pages), none refused"
        return _Walk(messages, read, Check("cursor", OK, seen))

    def _get_check(self, messages: Sequence[DLQMessage]) -> Check:
        if not messages:
            return Check("get_entry", UNKNOWN, "the DLQ is empty: no entry to read")
        dlq_id = messages[0].dlq_id
        try:
            message = self.client.get_message(dlq_id)
        except NotFoundError:
            return Check("get_entry", UNKNOWN, f"{dlq_id} left the DLQ between list and get")
        except UnexpectedAnswerError as exc:
            return Check(
                "get_entry",
                DIFFERS,
                f"GET of {dlq_id} does not parse: {self._text(exc)}",
                fix="the engine reads entries back after acting; report this answer",
                matters=True,
            )
        except WFDLQError as exc:
            return Check("get_entry", UNKNOWN, f"GET of {dlq_id} failed: {self._text(exc)}")
        if message.dlq_id != dlq_id:
            return Check(
                "get_entry",
                DIFFERS,
                f"GET of {dlq_id} answered entry {message.dlq_id}",
                fix="the engine reads entries back by id; report this answer",
                matters=True,
            )
        return Check("get_entry", OK, f"GET /v2/workflows/dlq/{dlq_id} parses (same dlqId)")

    def _run_refs(self, messages: Iterable[DLQMessage]) -> list[tuple[str, int]]:
        refs: dict[str, int] = {}
        for message in messages:
            if message.workflow_run_id and message.workflow_created_at is not None:
                refs.setdefault(message.workflow_run_id, message.workflow_created_at)
        cursor: str | None = None
        for _ in range(3):
            if len(refs) > MAX_LOG_RUNS:
                break
            try:
                page = self.client.run_logs(count=MAX_LOG_RUNS, cursor=cursor)
            except WFDLQError:
                break
            for run in page.runs:
                if run.workflow_run_created_at is not None:
                    refs.setdefault(run.workflow_run_id, run.workflow_run_created_at)
            if page.cursor is None:
                break
            cursor = page.cursor
        return list(refs.items())[: MAX_LOG_RUNS + 1]

    def _run_logs_check(self, messages: Iterable[DLQMessage]) -> Check:
        asked = MAX_LOG_RUNS + 1
        refs = self._run_refs(messages)
        if len(refs) < asked:
            seen = f"only {len(refs)} runs known (from the DLQ and run logs): {asked} are needed"
            return Check("run_logs", UNKNOWN, seen)
        value = ",".join(f"{run_id}@{ms}" for run_id, ms in refs)
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        engine = f"the engine names at most {MAX_LOG_RUNS} runs per call"
        try:
            response = self._raw.get(
                self.base_url + "/v2/workflows/logs",
                params={"workflowRuns": value},
                headers=headers,
            )
        except httpx.HTTPError as exc:
            return Check("run_logs", UNKNOWN, f"the call failed ({type(exc).__name__})")
        if response.status_code == 400:
            text = redact(response.text[:200], self._token)
            return Check(
                "run_logs", OK, f"{asked} runs in workflowRuns are refused (400: {text})", engine
            )
        try:
            body = response.json()
            runs = body.get("runs") or []
            cursor = body.get("cursor") or None
            count = len(runs)
        except (ValueError, AttributeError, TypeError):
            return Check("run_logs", UNKNOWN, f"HTTP {response.status_code}, not a runs page")
        if response.status_code >= 300:
            return Check("run_logs", UNKNOWN, f"HTTP {response.status_code} to {asked} runs")
        more = " and a cursor" if cursor else ", no cursor"
        seen = f"{asked} runs in workflowRuns: {count} answered{more}"
        if count >= asked or (count == MAX_LOG_RUNS and cursor):
            return Check("run_logs", OK, seen, engine)
        if count == MAX_LOG_RUNS:
            return Check(
                "run_logs",
                DIFFERS,
                seen + f" (run {asked} dropped silently)",
                fix=f"harmless: {engine}",
            )
        return Check(
            "run_logs", UNKNOWN, seen + " (some runs may be past the logs' retention)", engine
        )

    def _flow_control_check(self, key: str | None) -> Check:
        if key is None:
            return Check("flow_control", UNKNOWN, "not checked: no --flow-control-key given")
        try:
            state = self.client.flow_control_state(key)
        except NotFoundError:
            return Check(
                "flow_control",
                UNKNOWN,
                f"key {key!r} is unknown to the server (404)",
                fix="a typo, or no run has used the key yet; the overrides' flow_control_key "
                "makes it known",
            )
        except WFDLQError as exc:
            return Check("flow_control", UNKNOWN, f"key {key!r}: {self._text(exc)}")
        if "waitListSize" in state.raw or "waitlistSize" in state.raw:
            paused = ", paused" if state.is_paused else ""
            seen = f"key {key!r}: waitListSize={state.waitlist_size}{paused}"
            return Check("flow_control", OK, seen)
        return Check(
            "flow_control",
            DIFFERS,
            f"key {key!r}: the answer has no waitListSize (fields: {sorted(state.raw)})",
            fix="the engine reads waitListSize to see runs waiting; it will read 0",
        )

    def _rate_limit_check(self) -> Check:
        resets: list[tuple[str, float]] = []
        names: set[str] = set()
        for seen in self.seen:
            for header, text in seen.rate_headers:
                names.add(header.lower())
                if header.lower().endswith("ratelimit-reset"):
                    try:
                        resets.append((header, float(text)))
                    except ValueError:
                        continue
        answers = len(self.seen)
        if not resets:
            extra = f" (only {', '.join(sorted(names))})" if names else ""
            return Check(
                "rate_limit",
                UNKNOWN,
                f"no *-RateLimit-Reset header in {answers} answers{extra}",
                fix="nothing to set: the client waits out a 429 by its headers, else backs off",
            )
        name, value = max(resets, key=lambda item: item[1])
        if value > MS_THRESHOLD:
            return Check(
                "rate_limit",
                DIFFERS,
                f"{name}: {value:.0f}, unix milliseconds",
                fix="harmless: the client reads a reset above 10^11 as milliseconds",
                reading="reset_ms",
            )
        if value < UNIX_SECONDS_FLOOR:
            return Check(
                "rate_limit",
                DIFFERS,
                f"{name}: {value:g}, seconds to wait rather than a unix time",
                fix="the client would retry a 429 at once and back off; set "
                "pacing.requests_per_second below the plan's limit",
            )
        return Check("rate_limit", OK, f"{name}: {value:.0f}, unix seconds")

    # --- probes (they act) ----------------------------------------------------------------

    def probe_resume(self, dlq_id: str, *, reads: int = 10, interval: float = 0.5) -> Check:
        """Resume ONE entry, then read it back up to ``reads`` times, ``interval`` apart."""
        self._must_exist([dlq_id])
        try:
            run = self.client.resume(dlq_id)
        except OutcomeUnknownError as exc:
            self.runs.append(None)
            return Check(
                "resume_leaves",
                UNKNOWN,
                f"the resume's outcome is unknown ({self._text(exc)}): it may have acted",
                fix="look the entry and its run up in the Upstash console",
            )
        except APIError as exc:
            return Check("resume_leaves", UNKNOWN, f"the resume was refused: {self._text(exc)}")
        self.runs.append(run)
        start = self.clock()
        for read in range(1, reads + 1):
            if read > 1 and interval > 0:
                self.sleep(interval)
            try:
                self.client.get_message(dlq_id)
            except NotFoundError:
                return self._left(dlq_id, read, self.clock() - start)
            except WFDLQError as exc:
                return Check(
                    "resume_leaves", UNKNOWN, f"reading {dlq_id} back failed: {self._text(exc)}"
                )
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

    def _left(self, dlq_id: str, read: int, waited: float) -> Check:
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

    def probe_bulk(self, dlq_ids: Sequence[str]) -> list[Check]:
        """Resume ``dlq_ids`` (two or more) in ONE bulk call; never follows its cursor."""
        if len(dlq_ids) < 2 or len(set(dlq_ids)) != len(dlq_ids):
            raise ProbeRefused("the bulk probe needs two or more distinct dlqIds")
        self._must_exist(dlq_ids)
        order = Check(
            "answer_order",
            UNKNOWN,
            "a bulk answer's workflowRuns carry no dlqId, so their order cannot be observed",
            fix="the engine marks bulk pairs paired_by: answer_order (an inference); "
            "pacing={'exact_pairing': True} sends one id per call so every pair is a fact",
        )
        try:
            result = self.client.resume_bulk(DLQFilters(dlq_ids=tuple(dlq_ids)))
        except OutcomeUnknownError as exc:
            seen = f"the bulk resume's outcome is unknown ({self._text(exc)}): it may have acted"
            return [Check("bulk_cap", UNKNOWN, seen, "look the entries up in the console"), order]
        except APIError as exc:
            return [Check("bulk_cap", UNKNOWN, f"the bulk resume was refused: {self._text(exc)}")]
        self.runs.extend(result.runs)
        named, runs = len(dlq_ids), len(result.runs)
        cursor = " and answered a cursor" if result.cursor else ""
        if runs < named or result.cursor:
            cap = Check(
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
        elif runs > named:
            cap = Check(
                "bulk_cap",
                DIFFERS,
                f"one call named {named} ids and made {runs} runs",
                fix="report this: the engine pairs runs with ids",
                matters=True,
            )
        else:
            cap = Check(
                "bulk_cap",
                OK,
                f"one call named {named} ids and made {runs} runs, no cursor (a cap above "
                f"{named} would not show)",
            )
        return [cap, order]

    def _must_exist(self, dlq_ids: Sequence[str]) -> None:
        for dlq_id in dlq_ids:
            try:
                self.client.get_message(dlq_id)
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


def _created_at_kind(raw: Any) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return "ms"
    if isinstance(raw, str) and ("T" in raw or "-" in raw):
        return "iso"
    return "other"


def _frozen(cursor: str, read: int) -> Check:
    return Check(
        "cursor",
        DIFFERS,
        f"the same cursor came back after page {read}: the listing does not advance",
        fix="the engine refuses to loop: its listing ends with ListingError and the task "
        "fails. Narrow the selection (filters from/to) so one page holds it, with "
        "pacing={'page_size': 100}",
        reading="frozen_cursor",
        matters=True,
    )


def _order_check(messages: Sequence[DLQMessage], pages: int) -> Check:
    firsts = {m.dlq_id: m for m in reversed(messages)}  # a page seen twice counts once
    times = [m.created_at for m in messages if firsts[m.dlq_id] is m and m.created_at is not None]
    where = f"across {pages} pages ({len(times)} entries)" if pages > 1 else "within one page"
    if len(set(times)) < 2:
        return Check("list_order", UNKNOWN, f"too few distinct createdAt {where} to tell")
    if times == sorted(times):
        return Check("list_order", OK, f"oldest first {where}")
    harmless = "harmless: the engine lists everything and sorts it oldest first itself"
    if times == sorted(times, reverse=True):
        return Check(
            "list_order", DIFFERS, f"newest first {where}", harmless, reading="newest_first"
        )
    return Check("list_order", DIFFERS, f"in no createdAt order {where}", harmless)

"""ResumeDLQOperator: resume (or restart) failed workflow runs from the DLQ, page by page."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

import pendulum
from airflow.sdk import BaseOperator

from airflow_provider_wfdlq._compat import AirflowException, AirflowFailException, Stats
from airflow_provider_wfdlq.client import DLQFilters, Overrides, ValidationError
from airflow_provider_wfdlq.client.validation import LABEL_PATTERN, check_bool, check_count
from airflow_provider_wfdlq.connection_form import DEFAULT_CONN_NAME
from airflow_provider_wfdlq.hooks.dlq import WorkflowDLQHook
from airflow_provider_wfdlq.recovery import JsonLinesSink, MemoryCheckpoint, Redrive, RedrivePlan
from airflow_provider_wfdlq.recovery.checkpoint import CheckpointStore
from airflow_provider_wfdlq.recovery.report import DEFAULT_MAX_RUNS_IN_RESULT, NullSink, ReportSink
from airflow_provider_wfdlq.recovery.retention import Retention
from airflow_provider_wfdlq.recovery.safety import SafetyPolicy
from airflow_provider_wfdlq.recovery.selection import ErrorSelection

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "wfdlq_redrive"
#: The flow-control key resumed runs get when a policy needs one and the overrides name
#: none: one key per DAG run, so a night's redrive can be paused (or paced) as a whole.
DEFAULT_FLOW_CONTROL_KEY = "airflow-redrive-{dag_id}-{run_id}"
#: What ``audit_label=True`` adds to every new run: Upstash's logs lead back to the DAG run.
DEFAULT_AUDIT_LABEL = "airflow:{dag_id}:{run_id}"
METRIC_PREFIX = "wfdlq.redrive"
#: ``stopped`` values that fail the task: a safety policy stopped the redrive.
TRIPPED = ("canary", "circuit_breaker")
_warned_no_state_store = False


def as_bool(field: str, value: Any) -> bool:
    """Booleans that survive Jinja: templates render ``True`` as the text ``'True'``."""
    return check_bool(value, field)


class TaskStateCheckpoint:
    """A redrive checkpoint in Airflow's ``task_state_store``, which survives task retries."""

    def __init__(self, store: Any, key: str = CHECKPOINT_KEY) -> None:
        self._store = store
        self._key = key

    def load(self) -> dict[str, Any] | None:
        value = self._store.get(self._key)
        return dict(value) if isinstance(value, Mapping) else None

    def save(self, state: dict[str, Any]) -> None:
        # The store takes strict JSON values (no tuples): normalise once here.
        self._store.set(self._key, json.loads(json.dumps(state)))

    def clear(self) -> None:
        self._store.delete(self._key)


def checkpoint_for(context: Context) -> CheckpointStore:
    """The task's durable store on Airflow 3.3+; elsewhere memory, with one warning."""
    global _warned_no_state_store
    store = context.get("task_state_store")  # type: ignore[misc]
    if store is not None:
        return TaskStateCheckpoint(store)
    if not _warned_no_state_store:
        _warned_no_state_store = True
        log.warning(
            "This Airflow has no task_state_store (Airflow 3.3+): a retried task walks the DLQ "
            "again from the start. Nothing is resumed twice (resumed entries leave the DLQ), "
            "but the new run ids of the earlier try are only in its log and report."
        )
    return MemoryCheckpoint()


class ResumeDLQOperator(BaseOperator):
    """
    Resume failed Upstash Workflow runs from the workflow DLQ, from the step that failed.

    Lists the entries that match ``filters`` page by page and resumes exactly those by
    ``dlqIds``, so the result maps every entry to its new run; it follows the cursor to the
    end, checkpoints after every page and goes on from there when the task is retried.

    :param filters: Which entries (templated): ``dlq_ids``, ``from_date``, ``to_date``,
        ``workflow_url``, ``workflow_run_id``, ``workflow_created_at``, ``label``,
        ``failure_function_state``, ``caller_ip``, ``flow_control_key``. Dates take
        pendulum/datetime, ISO-8601 text (``{{ data_interval_start }}``) or unix ms.
    :param overrides: What the new runs use instead of the failed run's settings
        (templated): ``retries``, ``delay``, ``retry_delay``, ``flow_control_key``,
        ``flow_control`` (``"parallelism=3, rate=10, period=1m"`` or a mapping), ``label``,
        ``failure_callback``.
    :param action: ``"resume"`` (from the failed step) or ``"restart"`` (from the first).
    :param cursor: Start from a cursor an earlier run reported (templated).
    :param count: Entries per page and per call, 1-100 (templated).
    :param resume_all: Must be True to act with no filter and no ``dlq_ids`` at all.
    :param max_resumes: The most entries this task acts on; it then stops and reports the
        cursor to go on from (templated).
    :param dry_run: List what would be resumed, as a table and grouped counts; resume nothing.
    :param report_path: Where the JSON-lines report goes, record by record (templated);
        a path or URL that ``ObjectStoragePath`` takes (``file:///...``, ``s3://...``).
    :param select: Which listed entries to act on by their error (templated), done
        client-side since the DLQ has no such filter: ``statuses`` / ``exclude_statuses``
        (``503``, ``"5xx"``, ``"500-504"``), ``body_regex`` / ``exclude_body_regex`` (over
        ``responseBody``), ``step_urls`` (globs over the failed step's ``url``) and
        ``include_non_retryable``. Entries that answered 489 (non-retryable) are skipped
        unless ``include_non_retryable`` is True. Skips are counted by reason.
    :param audit_label: A label added to every new run, e.g. ``"airflow:{{ dag.dag_id }}"``;
        True means ``airflow:<dag_id>:<run_id>`` (characters labels cannot hold become ``-``).
    :param label_mode: ``"append"`` (default): new runs keep the entry's labels plus the
        override and audit labels (the API replaces labels, so they are read from the entry
        and all sent); ``"replace"``: only the override and audit labels.
    :param restart_incompatible: When resume answers 400 ``Incompatible step name`` (the
        workflow's code changed before the failed step), restart that entry instead, at
        most ``max_restarts`` times per task; otherwise it is left and counted.
    :param requests_per_second: Client-side pacing of API calls (429s are honoured anyway).
    :param retention: The plan's DLQ retention (``"3d"``, ``"7d"``, days); defaults to the
        connection's ``retention`` extra. Entries left in the DLQ that expire before the
        next run (``retention_horizon``, default the DAG run's data interval, else a day)
        are counted as ``expiring_before_next_run`` and named under ``expiring``.
    :param canary: Resume this many entries first, wait for their runs' outcome, and go on
        only if at least ``canary_min_success_ratio`` succeeded within ``canary_timeout``
        seconds (polled every ``poll_interval`` seconds).
    :param breaker_max_failure_ratio: During the walk, stop when more than this share of the
        resumed runs that have finished failed again (after ``breaker_min_finished``).
    :param pause_on_trip: Pause the redrive's flow-control key when the canary or the breaker
        trips, so runs already resumed wait instead of failing. ``pause_on_kill``: the same
        when the task is killed. Both use ``overrides.flow_control_key``, defaulting to
        ``airflow-redrive-<dag_id>-<run_id>``.
    :param max_runs_in_result: How many new runs the XCom result names.
    :param qstash_conn_id: The ``qstash`` connection.
    :return: ``{"counts", "pages", "cursor", "stopped", "runs", "runs_truncated", ...}``.
    """

    template_fields: Sequence[str] = (
        "filters",
        "overrides",
        "action",
        "resume_all",
        "cursor",
        "count",
        "max_resumes",
        "is_dry_run",
        "report_path",
        "select",
        "audit_label",
        "label_mode",
        "restart_incompatible",
        "max_restarts",
        "requests_per_second",
        "retention",
        "canary",
        "canary_min_success_ratio",
        "canary_timeout",
        "breaker_max_failure_ratio",
        "pause_on_trip",
        "pause_on_kill",
    )
    template_fields_renderers = {"filters": "json", "overrides": "json", "select": "json"}
    ui_color = "#e8f4f8"

    def __init__(
        self,
        *,
        filters: Mapping[str, Any] | str | None = None,
        overrides: Mapping[str, Any] | str | None = None,
        action: str = "resume",
        cursor: str | None = None,
        count: int | str = 50,
        resume_all: bool | str = False,
        max_resumes: int | str | None = None,
        dry_run: bool | str = False,
        report_path: Any = None,
        select: Mapping[str, Any] | None = None,
        audit_label: str | bool | None = None,
        label_mode: str = "append",
        restart_incompatible: bool | str = False,
        max_restarts: int | str = 100,
        requests_per_second: float | str | None = None,
        retention: str | float | None = None,
        retention_horizon: Any = None,
        canary: int | str | None = None,
        canary_min_success_ratio: float | str = 0.9,
        canary_timeout: float | str = 900.0,
        poll_interval: float = 15.0,
        breaker_max_failure_ratio: float | str | None = None,
        breaker_min_finished: int = 20,
        pause_on_trip: bool | str = False,
        pause_on_kill: bool | str = False,
        max_runs_in_result: int = DEFAULT_MAX_RUNS_IN_RESULT,
        qstash_conn_id: str = DEFAULT_CONN_NAME,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = filters if filters is not None else {}
        self.overrides = overrides if overrides is not None else {}
        self.action = action
        self.cursor = cursor
        self.count = count
        self.resume_all = resume_all
        self.max_resumes = max_resumes
        # ``dry_run`` is a BaseOperator method; the flag lives beside it.
        self.is_dry_run = dry_run
        self.report_path = report_path
        self.select = select if select is not None else {}
        self.audit_label = audit_label
        self.label_mode = label_mode
        self.restart_incompatible = restart_incompatible
        self.max_restarts = max_restarts
        self.requests_per_second = requests_per_second
        self.retention = retention
        self.retention_horizon = retention_horizon
        self.canary = canary
        self.canary_min_success_ratio = canary_min_success_ratio
        self.canary_timeout = canary_timeout
        self.poll_interval = poll_interval
        self.breaker_max_failure_ratio = breaker_max_failure_ratio
        self.breaker_min_finished = breaker_min_finished
        self.pause_on_trip = pause_on_trip
        self.pause_on_kill = pause_on_kill
        self.max_runs_in_result = max_runs_in_result
        self.qstash_conn_id = qstash_conn_id
        self._stop = threading.Event()
        self._redrive: Redrive | None = None
        self._executing = False

    def build_plan(self, context: Context | None = None) -> RedrivePlan:
        """Validate the rendered arguments: every bad value fails here, before any request."""
        try:
            safety = SafetyPolicy.build(
                canary=self.canary,
                canary_min_success_ratio=self.canary_min_success_ratio,
                canary_timeout=self.canary_timeout,
                poll_interval=self.poll_interval,
                breaker_max_failure_ratio=self.breaker_max_failure_ratio,
                breaker_min_finished=self.breaker_min_finished,
                pause_on_trip=as_bool("pause_on_trip", self.pause_on_trip),
            )
            overrides = dict(_mapping("overrides", self.overrides))
            needs_key = safety.pause_on_trip or as_bool("pause_on_kill", self.pause_on_kill)
            if not overrides.get("flow_control_key") and (
                needs_key or overrides.get("flow_control")
            ):
                overrides["flow_control_key"] = self._default_key(context)
            plan = RedrivePlan(
                filters=DLQFilters.coerce(_mapping("filters", self.filters)),
                overrides=Overrides.coerce(overrides),
                action=self.action,
                cursor=self.cursor or None,
                count=check_count(self.count, "count"),
                max_resumes=None
                if self.max_resumes in (None, "", "None")
                else check_count(self.max_resumes, "max_resumes"),
                dry_run=as_bool("dry_run", self.is_dry_run),
                resume_all=as_bool("resume_all", self.resume_all),
                selection=ErrorSelection.coerce(_mapping("select", self.select)),
                audit_label=self._audit_label(context),
                label_mode=self.label_mode,
                restart_incompatible=as_bool("restart_incompatible", self.restart_incompatible),
                max_restarts=check_count(self.max_restarts, "max_restarts"),
                requests_per_second=_positive_or_none(
                    "requests_per_second", self.requests_per_second
                ),
                retention=self._retention(context),
                safety=safety,
            )
            plan.check()
        except ValidationError as exc:
            # Bad input does not get better by retrying.
            raise AirflowFailException(str(exc)) from exc
        return plan

    def _default_key(self, context: Context | None) -> str:
        """One key per DAG run (two runs on one date do not share it), no template needed
        (asset-triggered runs have no ``ds``); other characters than ``A-Za-z0-9_.:-`` become
        ``-`` so the key reads the same in a URL path and in the Upstash console."""
        key = DEFAULT_FLOW_CONTROL_KEY.format(dag_id=self.dag_id, run_id=_run_id(context))
        return re.sub(r"[^A-Za-z0-9_.:-]", "-", key)

    def _audit_label(self, context: Context | None) -> str | None:
        value = self.audit_label
        if value in (None, False, "", "False", "None"):
            return None
        if value is True or value == "True":
            label = DEFAULT_AUDIT_LABEL.format(dag_id=self.dag_id, run_id=_run_id(context))
            return "".join(c if LABEL_PATTERN.fullmatch(c) else "-" for c in label)
        if not isinstance(value, str):
            raise ValidationError("audit_label", value, "a label, True, or None")
        return value

    def _retention(self, context: Context | None) -> Retention | None:
        configured = self.retention
        if configured in (None, "", "None"):
            configured = self.hook.settings.retention
        if configured in (None, ""):
            return None
        horizon = self.retention_horizon
        if horizon is None and context is not None:
            start, end = context.get("data_interval_start"), context.get("data_interval_end")
            if start is not None and end is not None and end > start:
                horizon = end - start
        return Retention.build(configured, _duration_ms("retention_horizon", horizon))

    def execute(self, context: Context) -> dict[str, Any]:
        plan = self.build_plan(context)
        checkpoint = checkpoint_for(context)
        # A retry appends to the report (also without a checkpoint, on Airflow < 3.3).
        ti = context.get("ti")
        continuing = checkpoint.load() is not None or getattr(ti, "try_number", 1) > 1
        hook = self.hook
        self._executing = True
        try:
            with self._report_sink(continuing) as sink:
                redrive = Redrive(
                    hook.client,
                    plan,
                    checkpoint=checkpoint,
                    sink=sink,
                    should_stop=self._stop.is_set,
                    max_runs_in_result=self.max_runs_in_result,
                    describe_time=_describe_ms,
                    metrics=self._metrics(),
                )
                self._redrive = redrive
                self.log.info("Recovery policies: %s", plan.describe())
                report = redrive.run()
                if self._stop.is_set() and as_bool("pause_on_kill", self.pause_on_kill):
                    key = plan.overrides.flow_control_key
                    if key:
                        redrive.pause(key, "on_kill")
                        sink.flush()
        finally:
            self._executing = False
            hook.close()
        report.report_path = str(self.report_path) if self.report_path else None
        self.log.info("%s", report.summary())
        result = report.to_state()
        if report.stopped in TRIPPED:
            # A tripped canary or breaker must page someone: fail (without retrying into the
            # same bug), but keep the result for the morning report and the on-call.
            context["ti"].xcom_push(key="return_value", value=result)
            raise AirflowFailException(_trip_message(report.stopped, result))
        if report.stopped == "stopped":
            # Killed (Airflow's SIGTERM handler called on_kill and lets execute go on): a
            # killed task must not end as a success. A retry goes on from the checkpoint.
            context["ti"].xcom_push(key="return_value", value=result)
            raise AirflowException(
                f"Killed: the redrive stopped between pages after {result['counts']}; "
                f"the report and the checkpoint hold exactly what was done."
            )
        return result

    @cached_property
    def hook(self) -> WorkflowDLQHook:
        """The hook for ``qstash_conn_id``; its client keeps one connection pool per task."""
        return WorkflowDLQHook(self.qstash_conn_id)

    def on_kill(self) -> None:
        """Stop between pages (or out of a canary wait); the walk then flushes its report and
        checkpoint, and pauses the redrive's flow-control key if ``pause_on_kill``.

        On an ``execution_timeout`` Airflow calls this after ``execute`` was interrupted:
        then the pause happens here."""
        self._stop.set()
        redrive = self._redrive
        if redrive is not None and not self._executing:
            key = redrive.plan.overrides.flow_control_key
            if key and as_bool("pause_on_kill", self.pause_on_kill):
                redrive.client = self.hook.client  # execute closed the walk's own pool
                try:
                    redrive.pause(key, "on_kill")
                finally:
                    self.hook.close()

    def _metrics(self) -> Any:
        """Airflow ``Stats`` counters ``wfdlq.redrive.<count>``, tagged with the task."""
        tags = {"dag_id": self.dag_id, "task_id": self.task_id}

        def count(name: str, n: int) -> None:
            Stats.incr(f"{METRIC_PREFIX}.{name}", n, tags=tags)

        return count

    @contextlib.contextmanager
    def _report_sink(self, continuing: bool) -> Iterator[ReportSink]:
        if not self.report_path:
            yield NullSink()
            return
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(str(self.report_path))
        stream = self._open_report(path, "a" if continuing else "w")
        try:
            yield JsonLinesSink(stream)
        finally:
            stream.close()

    @staticmethod
    def _open_report(path: Any, mode: str) -> IO[str]:
        if mode == "w":
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return path.open(mode)  # type: ignore[no-any-return]
        except (NotImplementedError, ValueError, OSError):
            # Some object stores cannot append; a retried try then writes its own file.
            return path.with_name(path.stem + ".retry" + path.suffix).open("w")  # type: ignore[no-any-return]


def _mapping(field: str, value: Any) -> Mapping[str, Any]:
    """Filters and overrides are mappings once rendered; say so plainly when they are not."""
    if isinstance(value, Mapping):
        return value
    raise ValidationError(
        field,
        value,
        "a mapping of names to values (with a single-template string, set "
        "render_template_as_native_obj=True on the DAG)",
    )


def _run_id(context: Context | None) -> str:
    dag_run = context.get("dag_run") if context else None
    return str(getattr(dag_run, "run_id", None) or (context or {}).get("run_id") or "run")


def _trip_message(why: str, result: Mapping[str, Any]) -> str:
    safety = result.get("safety", {})
    seen = safety.get("canary" if why == "canary" else "breaker", {})
    paused = safety.get("paused")
    where = f"; flow-control key {paused['key']!r} paused" if paused else ""
    return (
        f"The redrive stopped: the {why.replace('_', ' ')} tripped ({seen}){where}. "
        f"Counts: {result.get('counts')}; go on from cursor {result.get('cursor')!r} once fixed."
    )


def _positive_or_none(field: str, value: Any) -> float | None:
    if value in (None, "", "None"):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if isinstance(value, bool) or number <= 0:
        raise ValidationError(field, value, "a number > 0, or None")
    return number


def _duration_ms(field: str, value: Any) -> int:
    """A horizon: a timedelta, seconds, or None for one day."""
    if value is None:
        return 86_400_000
    if hasattr(value, "total_seconds"):
        return int(value.total_seconds() * 1000)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return round(value * 1000)
    raise ValidationError(field, value, "a timedelta or a number of seconds >= 0")


def _describe_ms(ms: int | None) -> str:
    if ms is None:
        return "-"
    return pendulum.from_timestamp(ms / 1000, tz="UTC").format("YYYY-MM-DD HH:mm:ss")

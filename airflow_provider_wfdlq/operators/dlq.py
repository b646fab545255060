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
from airflow_provider_wfdlq.client import AuthError, DLQFilters, Overrides, ValidationError
from airflow_provider_wfdlq.client.validation import LABEL_PATTERN, check_bool, check_count
from airflow_provider_wfdlq.connection_form import DEFAULT_CONN_NAME
from airflow_provider_wfdlq.hooks.dlq import WorkflowDLQHook
from airflow_provider_wfdlq.links import DLQRecoveryReportLink
from airflow_provider_wfdlq.recovery import (
    Action,
    JsonLinesSink,
    ListingError,
    MemoryStore,
    Pacing,
    Redrive,
    RedrivePlan,
    StateStore,
)
from airflow_provider_wfdlq.recovery.checkpoint import CHECKPOINT_KEY
from airflow_provider_wfdlq.recovery.rendered import OnMissing, check_rendered, templated_paths
from airflow_provider_wfdlq.recovery.report import DEFAULT_MAX_RUNS_IN_RESULT, NullSink, ReportSink
from airflow_provider_wfdlq.recovery.retention import Retention
from airflow_provider_wfdlq.recovery.safety import SafetyPolicy
from airflow_provider_wfdlq.recovery.selection import ErrorSelection

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

#: The flow-control key resumed runs get when a policy needs one and the overrides name
#: none: one key per DAG run, so a night's redrive can be paused (or paced) as a whole.
DEFAULT_FLOW_CONTROL_KEY = "airflow-redrive-{dag_id}-{run_id}"
#: What ``audit_label=True`` adds to every new run: Upstash's logs lead back to the DAG run.
DEFAULT_AUDIT_LABEL = "airflow:{dag_id}:{run_id}"
METRIC_PREFIX = "wfdlq.redrive"
#: Where a task keeps the report path its first try chose (retries append to it).
REPORT_PATH_KEY = "wfdlq_report_path"
#: ``stopped`` values that fail the task: a safety policy stopped the redrive.
TRIPPED = ("canary", "circuit_breaker")
_warned_no_state_store = False


#: What each templated argument does when its template renders to nothing (I6): a limit,
#: a filter or a switch fails the task; cosmetic settings keep their default.
ON_MISSING: Mapping[str, OnMissing] = {
    "filters": OnMissing.FAIL,
    "overrides": OnMissing.FAIL,
    "action": OnMissing.FAIL,
    "resume_all": OnMissing.FAIL,
    "max_resumes": OnMissing.FAIL,
    "is_dry_run": OnMissing.FAIL,
    "report_path": OnMissing.FAIL,
    "select": OnMissing.FAIL,
    "safety": OnMissing.FAIL,
    "pacing": OnMissing.FAIL,
    "audit_label": OnMissing.DEFAULT,
    "label_mode": OnMissing.DEFAULT,
    "retention": OnMissing.DEFAULT,
}


def as_bool(field: str, value: Any) -> bool:
    """Booleans that survive Jinja: templates render ``True`` as the text ``'True'``."""
    return check_bool(value, field)


class TaskStateStore:
    """Airflow's ``task_state_store``, which survives task retries, as the engine's store."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def get(self, key: str) -> Any:
        return self._store.get(key)

    def set(self, key: str, value: Any) -> None:
        # The store takes strict JSON values (no tuples): normalise once here.
        self._store.set(key, json.loads(json.dumps(value)))

    def delete(self, key: str) -> None:
        self._store.delete(key)


class PathStateStore:
    """The engine's store as one small JSON file per key in a folder next to the report
    (``<report>.state/``): the durable ledger on Airflow before 3.3, where there is no
    ``task_state_store``. Whole-file writes only, so object stores (``s3://``) work too."""

    def __init__(self, folder: Any) -> None:
        self._folder = folder

    def _path(self, key: str) -> Any:
        return self._folder / f"{key}.json"

    def get(self, key: str) -> Any:
        path = self._path(key)
        if not path.exists():
            return None
        with path.open("r") as stream:
            return json.load(stream)

    def set(self, key: str, value: Any) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        with self._path(key).open("w") as stream:
            json.dump(value, stream)

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.exists():
            path.unlink()


def state_store_for(context: Context, report_path: Any = None) -> StateStore:
    """The task's durable store: ``task_state_store`` (Airflow 3.3+); before 3.3, files
    next to the report; with neither, memory and one warning."""
    global _warned_no_state_store
    store = context.get("task_state_store")  # type: ignore[misc]
    if store is not None:
        return TaskStateStore(store)
    if report_path:
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(str(report_path))
        return PathStateStore(path.parent / f"{path.name}.state")
    if not _warned_no_state_store:
        _warned_no_state_store = True
        log.warning(
            "This Airflow has no task_state_store (Airflow 3.3+) and the task has no "
            "report_path: a retried task has no ledger of what an earlier try sent. It lists "
            "again and acts on what is still in the DLQ; on a server that keeps resumed "
            "entries listed that can act twice. Set report_path, or use Airflow 3.3+."
        )
    return MemoryStore()


class ResumeDLQOperator(BaseOperator):
    """
    Resume failed Upstash Workflow runs from the workflow DLQ, from the step that failed.

    Plans, then acts: lists every entry that matches ``filters`` (no side effects), selects
    by error, orders the selection oldest first, then resumes it by ``dlqIds`` in batches.
    Every id goes into a ledger in the task's durable state before the call that names it,
    and is never sent again, also by a retried try. See the README's "How it works".

    :param filters: Which entries (templated): ``dlq_ids``, ``from_date``, ``to_date``,
        ``workflow_url``, ``workflow_run_id``, ``workflow_created_at``, ``label``,
        ``failure_function_state``, ``caller_ip``, ``flow_control_key``. Dates take
        pendulum/datetime, ISO-8601 text (``{{ data_interval_start }}``) or unix ms.
    :param overrides: What the new runs use instead of the failed run's settings
        (templated): ``retries``, ``delay``, ``retry_delay``, ``flow_control_key``,
        ``flow_control`` (``"parallelism=3, rate=10, period=1m"`` or a mapping), ``label``,
        ``failure_callback``.
    :param action: ``"resume"`` (from the failed step) or ``"restart"`` (from the first).
    :param resume_all: Must be True to act with no filter and no ``dlq_ids`` at all.
    :param max_resumes: The most entries this task acts on (templated); the oldest go first,
        the rest are left and counted.
    :param dry_run: List what would be resumed, as a table and grouped counts; resume nothing.
    :param report_path: Where the JSON-lines report goes, record by record (templated);
        a path or URL that ``ObjectStoragePath`` takes (``file:///...``, ``s3://...``).
    :param select: Which listed entries to act on by their error (templated):
        ``statuses`` / ``exclude_statuses`` (``503``, ``"5xx"``, ``"500-504"``),
        ``body_regex`` / ``exclude_body_regex``, ``step_urls`` (globs) and
        ``include_non_retryable`` (489s are skipped unless True).
    :param safety: The safety policies (templated mapping): ``canary`` (resume this many
        first and wait for their outcome), ``canary_min_success_ratio``, ``canary_timeout``,
        ``poll_interval``, ``breaker_max_failure_ratio`` / ``breaker_min_finished`` (stop
        when too many resumed runs fail again), ``pause_on_trip`` / ``pause_on_kill``
        (pause the redrive's flow-control key), ``restart_incompatible`` / ``max_restarts``.
    :param pacing: How the API is called (templated mapping): ``requests_per_second``,
        ``page_size`` (list, 1-100), ``batch_size`` (ids per action call, 1-50),
        ``exact_pairing`` (one entry per call: every dlqId -> run pair a fact),
        ``concurrency`` (calls at a time with exact pairing) and ``in_flight`` (bulk calls
        out at once, 1-8, default 1; more overlaps calls, and acting with listing when
        nothing needs the whole plan first).
    :param audit_label: A label added to every new run, e.g. ``"airflow:{{ dag.dag_id }}"``;
        True means ``airflow:<dag_id>:<run_id>`` (characters labels cannot hold become ``-``).
    :param label_mode: ``"append"`` (default): new runs keep the entry's labels plus the
        override and audit labels; ``"replace"``: only the override and audit labels.
    :param retention: The plan's DLQ retention (``"3d"``, ``"7d"``, days); defaults to the
        connection's ``retention`` extra. Entries left in the DLQ that expire before the
        next run (``retention_horizon``, default the DAG run's data interval, else a day)
        are counted as ``expiring_before_next_run`` and named under ``expiring``.
    :param max_runs_in_result: How many new runs the XCom result names.
    :param qstash_conn_id: The ``qstash`` connection.
    :return: ``{"counts", "found", "selected", "stopped", "runs", "runs_truncated", ...}``;
        each run says ``paired_by`` (``single_id``: a fact; ``answer_order``: inferred).

    A templated value that renders null, empty or nothing never switches a limit off: see
    :data:`ON_MISSING` for what each argument does instead.
    """

    template_fields: Sequence[str] = tuple(ON_MISSING)
    template_fields_renderers = {
        "filters": "json",
        "overrides": "json",
        "select": "json",
        "safety": "json",
        "pacing": "json",
    }
    ui_color = "#e8f4f8"
    #: What ``action=`` takes; housekeeping has its own operators (operators/housekeeping.py).
    actions: tuple[str, ...] = ("resume", "restart")
    #: The morning report page next to ``report_path`` (README "The morning report page").
    operator_extra_links = (DLQRecoveryReportLink(),)

    def __init__(
        self,
        *,
        filters: Mapping[str, Any] | str | None = None,
        overrides: Mapping[str, Any] | str | None = None,
        action: str = "resume",
        resume_all: bool | str = False,
        max_resumes: int | str | None = None,
        dry_run: bool | str = False,
        report_path: Any = None,
        select: Mapping[str, Any] | str | None = None,
        safety: Mapping[str, Any] | str | None = None,
        pacing: Mapping[str, Any] | str | None = None,
        audit_label: str | bool | None = None,
        label_mode: str = "append",
        retention: str | float | None = None,
        retention_horizon: Any = None,
        max_runs_in_result: int = DEFAULT_MAX_RUNS_IN_RESULT,
        qstash_conn_id: str = DEFAULT_CONN_NAME,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = filters if filters is not None else {}
        self.overrides = overrides if overrides is not None else {}
        self.action = action
        self.resume_all = resume_all
        self.max_resumes = max_resumes
        # ``dry_run`` is a BaseOperator method; the flag lives beside it.
        self.is_dry_run = dry_run
        self.report_path = report_path
        self.select = select if select is not None else {}
        self.safety = safety if safety is not None else {}
        self.pacing = pacing if pacing is not None else {}
        self.audit_label = audit_label
        self.label_mode = label_mode
        self.retention = retention
        self.retention_horizon = retention_horizon
        self.max_runs_in_result = max_runs_in_result
        self.qstash_conn_id = qstash_conn_id
        # Where each argument holds a template, as given: checked once rendered (I6).
        self._templated = {name: templated_paths(getattr(self, name)) for name in ON_MISSING}
        self._raw_report_path = report_path
        self._stop = threading.Event()
        self._redrive: Redrive | None = None
        self._executing = False

    def _rendered(self, name: str) -> Any:
        """The rendered argument, its templates that rendered to nothing refused or dropped."""
        paths = getattr(self, "_templated", {}).get(name, [])
        return check_rendered(name, paths, getattr(self, name), ON_MISSING[name])

    def build_plan(self, context: Context | None = None) -> RedrivePlan:
        """Validate the rendered arguments: every bad value fails here, before any request."""
        try:
            values = {name: self._rendered(name) for name in ON_MISSING}
            safety = SafetyPolicy.coerce(_mapping("safety", values["safety"] or {}))
            overrides = dict(_mapping("overrides", values["overrides"] or {}))
            needs_key = safety.pause_on_trip or safety.pause_on_kill
            if not overrides.get("flow_control_key") and (
                needs_key or overrides.get("flow_control")
            ):
                overrides["flow_control_key"] = self._default_key(context)
            max_resumes = values["max_resumes"]
            plan = RedrivePlan(
                filters=DLQFilters.coerce(_mapping("filters", values["filters"] or {})),
                overrides=Overrides.coerce(overrides),
                action=_action(values["action"], self.actions),
                max_resumes=None
                if max_resumes is None
                else check_count(max_resumes, "max_resumes"),
                dry_run=as_bool("dry_run", values["is_dry_run"]),
                resume_all=as_bool("resume_all", values["resume_all"]),
                selection=ErrorSelection.coerce(_mapping("select", values["select"] or {})),
                audit_label=self._audit_label(values["audit_label"], context),
                label_mode=values["label_mode"] or "append",
                pacing=Pacing.build(_mapping("pacing", values["pacing"] or {})),
                retention=self._retention(values["retention"], context),
                safety=safety,
            )
            plan.check()
            _refuse_a_zero_length_window(plan.filters)
        except ValidationError as exc:
            # Bad input does not get better by retrying.
            raise AirflowFailException(str(exc)) from exc
        return plan

    def _default_key(self, context: Context | None) -> str:
        """One key per DAG run (two runs on one date do not share it), no template needed
        (asset-triggered runs have no ``ds``); other characters than ``A-Za-z0-9_.:-`` become
        ``-`` so the key reads the same in a URL path and in the Upstash console. A mapped
        task (``.expand()``) gets ``-<map_index>``: one key per partition, so one partition's
        tripped breaker pauses only its own runs."""
        key = DEFAULT_FLOW_CONTROL_KEY.format(dag_id=self.dag_id, run_id=_run_id(context))
        map_index = map_index_of(context)
        if map_index is not None:
            key = f"{key}-{map_index}"
        return re.sub(r"[^A-Za-z0-9_.:-]", "-", key)

    def _report_path(self, context: Context | None) -> Any:
        """The rendered ``report_path``; in a mapped task whose path does not mention
        ``map_index`` (as given, before rendering), ``.<map_index>`` goes before the suffix,
        so partitions never write over each other's report (or, before Airflow 3.3, share
        the ledger kept next to it)."""
        path = self.report_path
        map_index = map_index_of(context)
        if not path or map_index is None:
            return path
        raw = getattr(self, "_raw_report_path", None)
        if "map_index" in str(raw if raw is not None else ""):
            return path
        mapped = report_path_for_map_index(str(path), map_index)
        self.log.info(
            "Mapped task %d: its report goes to %s (template {{ ti.map_index }} into "
            "report_path to choose the name yourself)",
            map_index,
            mapped,
        )
        return mapped

    def _unused_report_path(self, path: Any) -> Any:
        """A new task never writes over an earlier DAG run's report of the same name (two
        runs for one date): it writes ``<stem>.1<suffix>``, ``.2``, ... and says so."""
        if not path:
            return path
        from airflow.sdk import ObjectStoragePath

        target = ObjectStoragePath(str(path))
        if not target.exists():
            return path
        n = 1
        while (candidate := target.with_name(f"{target.stem}.{n}{target.suffix}")).exists():
            n += 1
        self.log.warning(
            "%s exists (an earlier DAG run's report); this run writes %s instead", path, candidate
        )
        return str(candidate)

    def _audit_label(self, value: Any, context: Context | None) -> str | None:
        if value is None or value is False or value == "False":
            return None
        if value is True or value == "True":
            label = DEFAULT_AUDIT_LABEL.format(dag_id=self.dag_id, run_id=_run_id(context))
            return "".join(c if LABEL_PATTERN.fullmatch(c) else "-" for c in label)
        if not isinstance(value, str):
            raise ValidationError("audit_label", value, "a label, True, or None")
        return value

    def _retention(self, configured: Any, context: Context | None) -> Retention | None:
        if configured is None:
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
        report_path = self._report_path(context)
        store = state_store_for(context, report_path)
        # A retry appends to the report (also without a durable store, on Airflow < 3.3).
        ti = context.get("ti")
        continuing = store.get(CHECKPOINT_KEY) is not None or getattr(ti, "try_number", 1) > 1
        if report_path and not isinstance(store, PathStateStore):
            # A new task never writes over an earlier DAG run's report of the same name; its
            # retries go on with the name its first try chose. (Before Airflow 3.3 the
            # ledger lives next to the report, which then keeps its name.)
            chosen = store.get(REPORT_PATH_KEY)
            report_path = chosen or self._unused_report_path(report_path)
            store.set(REPORT_PATH_KEY, str(report_path))
        hook = self.hook
        self._executing = True
        try:
            with self._report_sink(continuing, report_path) as sink:
                redrive = Redrive(
                    hook.client,
                    plan,
                    store=store,
                    sink=sink,
                    should_stop=self._stop.is_set,
                    max_runs_in_result=self.max_runs_in_result,
                    describe_time=_describe_ms,
                    metrics=self._metrics(),
                )
                self._redrive = redrive
                self.log.info("Recovery policies: %s", plan.describe())
                try:
                    report = redrive.run()
                except ListingError as exc:
                    # A listing that cannot end will not end on a retry either.
                    raise AirflowFailException(f"Nothing was acted on: {exc}") from exc
                except AuthError as exc:
                    # A wrong token or region does not get better by retrying.
                    raise AirflowFailException(str(exc)) from exc
                if self._stop.is_set() and plan.safety.pause_on_kill:
                    key = plan.overrides.flow_control_key
                    if key:
                        redrive.pause(key, "on_kill")
                        sink.flush()
        finally:
            self._executing = False
            hook.close()
        report.report_path = str(report_path) if report_path else None
        if report.report_path:
            self.log.info("The JSON-lines report is at %s", report.report_path)
        result = report.to_state()
        if report.counts.get("answer_lost_unknown"):
            self.log.error(
                "%d entr%s may or may not have been acted on (answer lost on a server that "
                "keeps resumed entries); they will not be sent again: check them by hand.",
                report.counts["answer_lost_unknown"],
                "y" if report.counts["answer_lost_unknown"] == 1 else "ies",
            )
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
                f"Killed: the redrive stopped between batches after {result['counts']}; "
                f"the report and the ledger hold exactly what was sent."
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
            if key and redrive.plan.safety.pause_on_kill:
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
    def _report_sink(self, continuing: bool, report_path: Any = None) -> Iterator[ReportSink]:
        if not report_path:
            yield NullSink()
            return
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(str(report_path))
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


def _refuse_a_zero_length_window(filters: DLQFilters) -> None:
    """``from_date == to_date`` selects (almost) nothing, silently: in Airflow 3 a run of
    ``"@daily"`` or ``schedule=None`` has a zero-length data interval."""
    if filters.from_date is not None and filters.from_date == filters.to_date:
        raise ValidationError(
            "filters",
            {"from_date": filters.from_date, "to_date": filters.to_date},
            "a window whose from_date is before its to_date (a schedule with real data "
            "intervals, e.g. CronDataIntervalTimetable('0 0 * * *', timezone='UTC'), or dates "
            "given in the run's conf)",
            "is a zero-length window: from_date equals to_date",
        )


def _action(value: Any, allowed: tuple[str, ...] = ("resume", "restart")) -> Action:
    if value not in allowed:
        raise ValidationError("action", value, " or ".join(repr(a) for a in allowed))
    return Action(value)


def map_index_of(context: Context | None) -> int | None:
    """The task's ``map_index`` when it is one of a mapped task's (``.expand()``), else None."""
    ti = context.get("ti") if context else None
    index = getattr(ti, "map_index", None)
    return index if isinstance(index, int) and not isinstance(index, bool) and index >= 0 else None


def report_path_for_map_index(path: str, map_index: int) -> str:
    """``.../night.jsonl`` -> ``.../night.<map_index>.jsonl`` (no suffix: ``.../night.<i>``)."""
    head, sep, name = path.rpartition("/")
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        return f"{path}.{map_index}"
    return f"{head}{sep}{stem}.{map_index}.{suffix}"


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
        f"Counts: {result.get('counts')}; once fixed, clear the task: it lists again and "
        "never sends an id it sent before."
    )


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

"""ResumeDLQOperator: resume (or restart) failed workflow runs from the DLQ, page by page."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

import pendulum
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_wfdlq.client import DLQFilters, Overrides, ValidationError
from airflow_provider_wfdlq.client.validation import check_count
from airflow_provider_wfdlq.connection_form import DEFAULT_CONN_NAME
from airflow_provider_wfdlq.hooks.dlq import WorkflowDLQHook
from airflow_provider_wfdlq.recovery import JsonLinesSink, MemoryCheckpoint, Redrive, RedrivePlan
from airflow_provider_wfdlq.recovery.checkpoint import CheckpointStore
from airflow_provider_wfdlq.recovery.report import DEFAULT_MAX_RUNS_IN_RESULT, NullSink, ReportSink

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "wfdlq_redrive"
_warned_no_state_store = False


def as_bool(field: str, value: Any) -> bool:
    """Booleans that survive Jinja: templates render ``True`` as the text ``'True'``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValidationError(field, value, "True or False")


class TaskStateCheckpoint:
    """A redrive checkpoint in Airflow's ``task_state_store``, which survives task retries."""

    def __init__(self, store: Any, key: str = CHECKPOINT_KEY) -> None:
        self._store = store
        self._key = key

    def load(self) -> dict[str, Any] | None:
        value = self._store.get(self._key)
        return dict(value) if isinstance(value, Mapping) else None

    def save(self, state: dict[str, Any]) -> None:
        self._store.set(self._key, state)

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
    )
    template_fields_renderers = {"filters": "json", "overrides": "json"}
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
        self.max_runs_in_result = max_runs_in_result
        self.qstash_conn_id = qstash_conn_id
        self._stop = threading.Event()

    def build_plan(self) -> RedrivePlan:
        """Validate the rendered arguments: every bad value fails here, before any request."""
        try:
            plan = RedrivePlan(
                filters=DLQFilters.coerce(_mapping("filters", self.filters)),
                overrides=Overrides.coerce(_mapping("overrides", self.overrides)),
                action=self.action,
                cursor=self.cursor or None,
                count=check_count(self.count, "count"),
                max_resumes=None
                if self.max_resumes in (None, "", "None")
                else check_count(self.max_resumes, "max_resumes"),
                dry_run=as_bool("dry_run", self.is_dry_run),
                resume_all=as_bool("resume_all", self.resume_all),
            )
            plan.check()
        except ValidationError as exc:
            # Bad input does not get better by retrying.
            raise AirflowFailException(str(exc)) from exc
        return plan

    def execute(self, context: Context) -> dict[str, Any]:
        plan = self.build_plan()
        checkpoint = checkpoint_for(context)
        continuing = checkpoint.load() is not None
        hook = self.hook
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
                )
                report = redrive.run()
        finally:
            hook.close()
        report.report_path = str(self.report_path) if self.report_path else None
        self.log.info("%s", report.summary())
        return report.to_state()

    @cached_property
    def hook(self) -> WorkflowDLQHook:
        """The hook for ``qstash_conn_id``; its client keeps one connection pool per task."""
        return WorkflowDLQHook(self.qstash_conn_id)

    def on_kill(self) -> None:
        """Stop between pages; the checkpoint and the report keep what was done."""
        self._stop.set()

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


def _describe_ms(ms: int | None) -> str:
    if ms is None:
        return "-"
    return pendulum.from_timestamp(ms / 1000, tz="UTC").format("YYYY-MM-DD HH:mm:ss")

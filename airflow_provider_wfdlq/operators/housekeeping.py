"""DLQ housekeeping as small operators on the redrive engine: delete entries, retry failed
failure callbacks, cancel in-progress ones.

Each is :class:`~airflow_provider_wfdlq.operators.dlq.ResumeDLQOperator` with its action
fixed and the arguments named for what it does (``max_deletes``, ``delete_all``), so a DAG
reads as what it does and ``ResumeDLQOperator`` keeps taking only ``resume``/``restart``:
a typo in ``action=`` can never turn a resume into a deletion. They share the engine's
listing, ``select``, dry run, cap, ledger (never twice, also across retries), report,
metrics and fail-closed templates (a template that renders to nothing fails the task).
None of them makes a new run, so ``overrides``, labels and safety policies do not apply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_wfdlq._compat import AirflowFailException
from airflow_provider_wfdlq.operators.dlq import ResumeDLQOperator
from airflow_provider_wfdlq.recovery import RedrivePlan

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "CancelFailureCallbackOperator",
    "DeleteDLQOperator",
    "RetryFailureCallbackOperator",
]


class _HousekeepingOperator(ResumeDLQOperator):
    """One fixed action; errors name the arguments as this operator calls them."""

    action_name: str = ""
    cap_name: str = ""
    all_name: str = ""

    def __init__(
        self,
        *,
        filters: Mapping[str, Any] | str | None = None,
        select: Mapping[str, Any] | str | None = None,
        cap: int | str | None = None,
        act_on_all: bool | str = False,
        dry_run: bool | str = False,
        report_path: Any = None,
        pacing: Mapping[str, Any] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            filters=filters,
            action=self.action_name,
            resume_all=act_on_all,
            max_resumes=cap,
            dry_run=dry_run,
            report_path=report_path,
            select=select,
            pacing=pacing,
            **kwargs,
        )

    def build_plan(self, context: Context | None = None) -> RedrivePlan:
        try:
            return super().build_plan(context)
        except AirflowFailException as exc:
            raise AirflowFailException(self._own_words(str(exc))) from exc.__cause__

    def _own_words(self, text: str) -> str:
        names = {"max_resumes": self.cap_name, "resume_all": self.all_name}
        return re.sub(r"\b(max_resumes|resume_all)\b", lambda m: names[m[1]], text)


class DeleteDLQOperator(_HousekeepingOperator):
    """
    Delete DLQ entries, oldest first, each written to the report in full before it goes.

    Deletion cannot be undone, so it is stricter than resuming: it needs a filter or
    ``dlq_ids`` (the whole DLQ only with ``delete_all=True``); right before each delete
    call, every entry in it is read and written whole (body, headers, response, callback)
    to ``report_path`` as an ``entry_before_delete`` line, and the report is flushed and
    synced first, so a deleted entry can still be read and replayed by hand. Give
    ``report_path`` for that; without it nothing keeps the entries. A dry run lists
    exactly what would go (``would_delete``). The 489 "do not retry" rule does not apply:
    deleting 489s is what housekeeping is for (select them with ``select``).

    :param filters: Which entries (templated), as for ``ResumeDLQOperator``.
    :param select: Which listed entries by their error (templated), e.g.
        ``{"statuses": [489]}``.
    :param max_deletes: The most entries this task deletes (templated); oldest first.
    :param delete_all: Must be True to delete with no filter and no ``dlq_ids`` at all.
    :param dry_run: List what would be deleted; delete nothing.
    :param report_path: The JSON-lines report (templated); the deleted entries' copies.
    :param pacing: ``requests_per_second``, ``page_size``, ``batch_size`` (ids per bulk
        delete), ``exact_pairing`` (one delete call per entry), ``concurrency``.
    """

    action_name = "delete"
    actions = ("delete",)
    cap_name = "max_deletes"
    all_name = "delete_all"
    ui_color = "#f8e8e8"

    def __init__(
        self,
        *,
        max_deletes: int | str | None = None,
        delete_all: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(cap=max_deletes, act_on_all=delete_all, **kwargs)


class RetryFailureCallbackOperator(_HousekeepingOperator):
    """
    Call the failure callback (failure function) again for entries whose callback failed
    (``CALLBACK_FAIL``); entries in any other state are skipped as
    ``skipped_callback_state``. The callback then runs (``CALLBACK_INPROGRESS``); no new
    workflow run is made. Arguments as :class:`DeleteDLQOperator`, with ``max_callbacks``
    (the most callbacks this task acts on) and ``all_entries`` (no filter at all).
    """

    action_name = "retry_failure_callback"
    actions = ("retry_failure_callback",)
    cap_name = "max_callbacks"
    all_name = "all_entries"
    ui_color = "#f4f0e0"

    def __init__(
        self,
        *,
        max_callbacks: int | str | None = None,
        all_entries: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(cap=max_callbacks, act_on_all=all_entries, **kwargs)


class CancelFailureCallbackOperator(RetryFailureCallbackOperator):
    """
    Cancel failure callbacks that are running (``CALLBACK_INPROGRESS``); entries in any
    other state are skipped as ``skipped_callback_state``. Arguments as
    :class:`RetryFailureCallbackOperator`.
    """

    action_name = "cancel_failure_callback"
    actions = ("cancel_failure_callback",)

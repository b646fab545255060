"""Plan disjoint partitions of a recovery, for ``ResumeDLQOperator.partial(...).expand()``.

Airflow-free. From a dry-run ``ResumeDLQOperator`` result (the preview) it returns a list of
``filters`` mappings, one per mapped task, that no entry matches twice:

- ``by="workflow_url"``: each partition names exact ``workflow_url`` values (the API
  matches them exactly, never as a prefix), the preview's URLs spread over at most
  ``max_partitions`` partitions by entry count (largest first, onto the lightest partition).
  Refused when the preview does not name every URL it would act on (more than its 50
  groups, or a ``max_resumes`` that left entries out): a partition cannot say "every other
  URL", so those entries would be missed; slice by time instead.
- ``by="time"``: the window ``(from, to)`` cut into equal slices. The API compares
  ``fromDate`` and ``toDate`` inclusively, so a slice ends one millisecond before the next
  one starts: ``[from, s1 - 1], [s1, s2 - 1], ..., [sN, to]``, whole milliseconds, every
  instant of the window in exactly one slice.

``filters`` (e.g. a label, or the window for ``by="workflow_url"``) goes into every
partition. An empty preview plans no partition: ``.expand()`` over ``[]`` skips the task.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

from airflow_provider_wfdlq.client import ValidationError
from airflow_provider_wfdlq.client.validation import to_unix_ms
from airflow_provider_wfdlq.recovery.morning import coerce_result

__all__ = ["BY", "plan_partitions"]

BY: Final = ("workflow_url", "time")
WOULD: Final = "would_"


def plan_partitions(
    preview: Any = None,
    *,
    by: str = "workflow_url",
    max_partitions: int = 8,
    window: Sequence[Any] | None = None,
    filters: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Disjoint ``filters`` mappings for ``.expand(filters=...)``; see the module text.

    :param preview: The dry-run result over the same window and filters (a mapping, or its
        text as a template renders it). Required for ``by="workflow_url"``; for
        ``by="time"`` it is optional and only stops an empty window from fanning out.
    :param by: ``"workflow_url"`` or ``"time"``.
    :param max_partitions: The most partitions (mapped tasks), >= 1.
    :param window: ``(from, to)``, in any form ``from_date``/``to_date`` take; required for
        ``by="time"``, added to every partition when given.
    :param filters: Filters every partition keeps (not the one partitioned by).
    """
    if by not in BY:
        raise ValidationError("by", by, "one of " + ", ".join(map(repr, BY)))
    if isinstance(max_partitions, bool) or not isinstance(max_partitions, int):
        raise ValidationError("max_partitions", max_partitions, "a whole number >= 1")
    if max_partitions < 1:
        raise ValidationError("max_partitions", max_partitions, "a whole number >= 1")
    base = dict(filters or {})
    if "dlq_ids" in base:
        raise ValidationError("filters", base, "filters without dlq_ids (nothing to partition)")
    bounds = _window(window)
    result = coerce_result(preview, "preview")
    if by == "workflow_url":
        if result is None:
            raise ValidationError("preview", preview, "the dry-run result to partition by URL")
        if "workflow_url" in base:
            raise ValidationError("filters", base, "filters without workflow_url (partitioned)")
        if bounds is not None:
            base.update(from_date=bounds[0], to_date=bounds[1])
        return [{**base, "workflow_url": urls} for urls in _by_url(result, max_partitions)]
    if bounds is None:
        raise ValidationError("window", window, "(from, to) to slice by time")
    if "from_date" in base or "to_date" in base:
        raise ValidationError("filters", base, "filters without from_date/to_date (the window)")
    if result is not None and _would(result) == 0:
        return []
    return [{**base, "from_date": a, "to_date": b} for a, b in time_slices(*bounds, max_partitions)]


def time_slices(from_ms: int, to_ms: int, n: int) -> list[tuple[int, int]]:
    """``[from_ms, to_ms]`` (inclusive) in at most ``n`` inclusive, disjoint slices of whole
    milliseconds that cover it; each at least 2 ms long (``from == to`` is refused as a
    zero-length window)."""
    span = to_ms - from_ms + 1
    n = max(1, min(n, span // 2))
    starts = [from_ms + span * i // n for i in range(n)]
    ends = [start - 1 for start in starts[1:]] + [to_ms]
    return list(zip(starts, ends, strict=True))


def _window(window: Sequence[Any] | None) -> tuple[int, int] | None:
    if window is None:
        return None
    if isinstance(window, str | bytes) or len(window) != 2:
        raise ValidationError("window", window, "(from, to)")
    start = to_unix_ms(window[0], "window[0]")
    end = to_unix_ms(window[1], "window[1]")
    if end <= start:
        raise ValidationError("window", window, "(from, to) with from before to")
    return start, end


def _would(result: Mapping[str, Any]) -> int:
    counts = result.get("counts") or {}
    return sum(int(v) for k, v in counts.items() if str(k).startswith(WOULD))


def _by_url(result: Mapping[str, Any], max_partitions: int) -> list[list[str]]:
    if not result.get("dry_run"):
        raise ValidationError("preview", "(a result)", "a dry-run result (dry_run=True)")
    per_url: Counter[str] = Counter()
    for group in result.get("groups") or ():
        per_url[str(group.get("workflow_url") or "")] += int(group.get("entries") or 0)
    counts = result.get("counts") or {}
    would = _would(result)
    left = sum(int(v) for k, v in counts.items() if str(k).startswith("left_"))
    if sum(per_url.values()) != would or left or "" in per_url:
        why = (
            f"names {sum(per_url.values())} of the {would + left} entries it would act on "
            "by URL (more URLs than its groups, a max_resumes, or entries without a URL)"
        )
        raise ValidationError(
            "preview", "(a dry-run result)", "a preview that names every URL (else by='time')", why
        )
    n = min(max_partitions, len(per_url))
    bins: list[list[str]] = [[] for _ in range(n)]
    load = [0] * n
    for url, entries in sorted(per_url.items(), key=lambda kv: (-kv[1], kv[0])):
        lightest = min(range(n), key=lambda i: (load[i], i))
        bins[lightest].append(url)
        load[lightest] += entries
    return [sorted(urls) for urls in bins]

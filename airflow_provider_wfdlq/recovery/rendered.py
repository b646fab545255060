"""Rendered values that are missing: the one place that says what "missing" is (I6).

A templated limit (``"{{ dag_run.conf.get('max_resumes', 3) }}"``) renders to ``None``,
``"None"``, ``"null"`` or ``""`` when an API user passes null or nothing; Jinja's
``Undefined`` when the key is missing. Such a value must never switch a safety limit
off: each field either keeps its default or fails the task, and :data:`ON_MISSING` in the
operator says which, in one table.
"""

from __future__ import annotations

from typing import Any, Final

from airflow_provider_wfdlq.client import ValidationError

#: What a rendered template gives for "no value".
MISSING_TEXT: Final = frozenset({"", "none", "null", "undefined"})


def is_missing(value: Any) -> bool:
    """None, Jinja's ``Undefined`` (without importing Jinja), or a text that means nothing."""
    if value is None or type(value).__name__.endswith("Undefined"):
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING_TEXT


def require_value(field: str, value: Any) -> Any:
    """``value``, unless it is missing: then a clear error naming the field."""
    if is_missing(value):
        raise ValidationError(
            field,
            None if value is None else str(value),
            "a value: a template that renders null, empty or nothing never switches a "
            "limit off (give the value, or leave the argument out for its default)",
            "is missing",
        )
    return value

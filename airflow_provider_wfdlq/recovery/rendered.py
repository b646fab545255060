"""Rendered values that are missing: the one place that says what "missing" is (I6).

A templated limit (``"{{ dag_run.conf.get('max_resumes', 3) }}"``) renders to ``None``,
``"None"``, ``"null"`` or ``""`` when an API user passes null or nothing; Jinja's
``Undefined`` when the key is missing. Such a value must never switch a safety limit
off: each field either keeps its default or fails the task, and :data:`ON_MISSING` in the
operator says which, in one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
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
            _shown(value),
            "a value: a template that renders null, empty or nothing never switches a "
            "limit off (give the value, or leave the argument out for its default)",
            "is missing",
        )
    return value


def _shown(value: Any) -> Any:
    """What an error shows for a missing value (``str()`` of Jinja's StrictUndefined raises)."""
    if value is None:
        return None
    if type(value).__name__.endswith("Undefined"):
        return "<undefined>"
    return str(value)


class OnMissing(StrEnum):
    """What a field does when a template in it renders to nothing."""

    FAIL = "fail"
    DEFAULT = "default"


Path = tuple[str | int, ...]


def templated_paths(value: Any, path: Path = ()) -> list[Path]:
    """Where ``value`` (as given to the operator, before rendering) holds a template."""
    if isinstance(value, str):
        return [path] if ("{{" in value or "{%" in value) else []
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in templated_paths(v, (*path, str(k)))]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in templated_paths(v, (*path, i))]
    return []


def check_rendered(field: str, paths: list[Path], rendered: Any, on_missing: OnMissing) -> Any:
    """``rendered`` with every templated place that rendered to nothing either refused
    (:attr:`OnMissing.FAIL`) or dropped so the default applies (:attr:`OnMissing.DEFAULT`)."""
    for path in paths:
        try:
            value = _at(rendered, path)
        except (KeyError, IndexError, TypeError):
            continue  # rendered into another shape (a native object): checked downstream
        if not is_missing(value):
            continue
        name = ".".join([field, *map(str, path)])
        if on_missing is OnMissing.FAIL:
            require_value(name, value)
        if not path:
            return None
        rendered = _without(rendered, path)
    return rendered


def _at(value: Any, path: Path) -> Any:
    for step in path:
        value = value[step]
    return value


def _without(value: Any, path: Path) -> Any:
    """A copy of mapping ``value`` without the leaf at ``path``."""
    head, *rest = path
    if isinstance(value, Mapping):
        copy = dict(value)
        if rest:
            copy[str(head)] = _without(copy[str(head)], tuple(rest))
        else:
            copy.pop(str(head), None)
        return copy
    return value

"""Argument checks run inside ``fit`` (never ``__init__``), naming the offending field."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from meddl.errors import MedDLError

__all__ = ["check_choice", "check_columns", "check_int"]


def check_choice(value: Any, choices: Sequence[str], field: str) -> None:
    """Raise `MedDLError` unless `value` is one of the strings `choices`."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise MedDLError(f"{field} must be one of {allowed}; got {value!r}")


def check_int(value: Any, minimum: int, field: str) -> None:
    """Raise `MedDLError` unless `value` is an integer (not a bool) of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise MedDLError(f"{field} must be an integer >= {minimum}; got {value!r}")


def check_columns(value: Any, field: str) -> list[str]:
    """Return `value` as a list of distinct, non-empty column names, or raise `MedDLError`."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise MedDLError(f"{field} must be a list of column names; got {value!r}")
    columns = list(value)
    for column in columns:
        if not isinstance(column, str) or column == "":
            raise MedDLError(f"{field} must contain column names (non-empty strings); got {column!r}")
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise MedDLError(f"{field} lists {', '.join(repr(c) for c in duplicated)} more than once")
    return columns

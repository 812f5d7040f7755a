"""Cell-level rules shared by the tabular steps: what counts as missing, numeric coercion, level labels.

These are the rules every step applies to one column (a pandas Series) or one JSON cell, so that the
DataFrame path (`TabularPreprocessor.transform`) and the record path (`transform_records`) code a value the
same way.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from meddl.errors import MedDLError

__all__ = [
    "EXACT_INT",
    "NEEDS_FRAME",
    "binary_codes",
    "binary_keys",
    "binary_kind",
    "coerce_numeric",
    "level_label",
    "missing_mask",
    "record_binary_key",
    "record_label",
    "record_number",
]

EXACT_INT = 2**53
"""Integers up to this size convert to float64 exactly, as pandas would convert them."""

NEEDS_FRAME = object()
"""Marker of a record cell that only the DataFrame path codes exactly."""


def missing_mask(series: pd.Series) -> np.ndarray:
    """Boolean mask of the missing cells of a column: None, NaN, NaT, pd.NA or an empty / blank string."""
    mask = series.isna().to_numpy(dtype=bool, copy=True)  # pandas 3 hands out read-only views
    if not (pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)):
        blank = np.array([isinstance(v, str) and v.strip() == "" for v in series.to_numpy(dtype=object)])
        if blank.size:
            mask |= blank
    return mask


def level_label(value: Any) -> str:
    """The text form of a category: integral numbers without ``.0``, strings stripped.

    ``1``, ``1.0`` and ``"1"`` all give ``"1"`` so that a column read as integers at training time
    and as floats (because of a missing value) later still matches.
    """
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        as_float = float(value)
        if as_float.is_integer():
            return str(int(as_float))
        return repr(as_float)
    return str(value).strip()


def _first_example(series: pd.Series, mask: np.ndarray) -> tuple[Any, Any]:
    """The first flagged value of a column and its index label (the original row number)."""
    position = int(np.flatnonzero(mask)[0])
    return series.iloc[position], series.index[position]


def coerce_numeric(series: pd.Series, column: str) -> np.ndarray:
    """Convert a column to float64, with NaN for missing cells.

    Args:
        series: The column.
        column: Its name, for error messages.

    Returns:
        (n,) float64 values.

    Raises:
        MedDLError: when a cell is neither missing nor a finite number.
    """
    missing = missing_mask(series)
    if pd.api.types.is_bool_dtype(series.dtype):
        values = series.astype("float64").to_numpy(dtype="float64", na_value=np.nan, copy=True)
    elif pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype="float64", na_value=np.nan, copy=True)
    else:
        stripped = series.map(lambda v: v.strip() if isinstance(v, str) else v)
        coerced = pd.to_numeric(stripped.where(~missing, np.nan), errors="coerce")
        values = coerced.to_numpy(dtype="float64", na_value=np.nan, copy=True)
        bad = np.isnan(values) & ~missing
        if bad.any():
            example, row = _first_example(series, bad)
            raise MedDLError(f"column '{column}' has {int(bad.sum())} non-numeric values, e.g. {example!r} (row {row})")
    infinite = np.isinf(values)
    if infinite.any():
        example, row = _first_example(series, infinite)
        raise MedDLError(f"column '{column}' has {int(infinite.sum())} infinite values, e.g. {example!r} (row {row})")
    values[missing] = np.nan
    return values


def binary_kind(values: Sequence[Any], series: pd.Series) -> str:
    """How the two levels of a binary column are compared: 'bool', 'numeric' or 'string'."""
    if pd.api.types.is_bool_dtype(series.dtype) or all(isinstance(v, bool | np.bool_) for v in values):
        return "bool"
    if pd.api.types.is_numeric_dtype(series.dtype) or all(
        isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_) for v in values
    ):
        return "numeric"
    return "string"


def binary_keys(series: pd.Series, kind: str) -> list[Any]:
    """The comparison key of every cell of a binary column (None for a missing cell)."""
    missing = missing_mask(series)
    raw = series.to_numpy(dtype=object)
    if kind == "numeric":
        stripped = series.map(lambda v: v.strip() if isinstance(v, str) else v).astype(object)
        parsed = pd.to_numeric(stripped.where(~missing, np.nan), errors="coerce")
        numbers_ = parsed.to_numpy(dtype="float64", na_value=np.nan)
        # A cell that does not parse keeps its text: it is then neither level, i.e. unseen.
        return [
            None if is_missing else (str(value) if np.isnan(number) else float(number))
            for value, number, is_missing in zip(raw, numbers_, missing, strict=True)
        ]
    keys: list[Any] = []
    for value, is_missing in zip(raw, missing, strict=True):
        if is_missing:
            keys.append(None)
        elif kind == "bool":
            # True == 1 and False == 0 in Python, so 0/1 cells match the boolean levels too.
            keys.append(bool(value) if isinstance(value, bool | np.bool_ | numbers.Real) else str(value))
        else:
            keys.append(level_label(value))
    return keys


def binary_codes(keys: Sequence[Any], levels: Sequence[Any]) -> np.ndarray:
    """0/1 codes of comparison keys; NaN for missing keys and for keys that are neither level."""
    lookup = {levels[0]: 0.0, levels[1]: 1.0}
    codes = np.full(len(keys), np.nan)
    for i, key in enumerate(keys):
        if key is None:
            continue
        try:
            codes[i] = lookup.get(key, np.nan)
        except TypeError:  # an unhashable cell is not one of the levels
            codes[i] = np.nan
    return codes


def record_number(value: Any) -> Any:
    """The float64 value of one JSON cell of a numeric column (NaN when missing); `NEEDS_FRAME` otherwise.

    A non-blank string, a boolean, an infinite number, an integer beyond 2**53 or another type is left to
    the DataFrame path, so that its coercion or error stays that of `coerce_numeric`.
    """
    tp = type(value)
    if value is None or (tp is str and value.strip() == ""):
        return np.nan
    if tp is float and not math.isinf(value):
        return value  # NaN stays NaN: missing
    if tp is int and abs(value) <= EXACT_INT:
        return float(value)
    return NEEDS_FRAME


def record_binary_key(value: Any, kind: str, labels: Mapping[str, Any]) -> Any:
    """`binary_keys` of one JSON cell; `NEEDS_FRAME` when only the DataFrame path reproduces it exactly.

    Args:
        value: The cell (None for a key absent from the record).
        kind: The column's comparison kind: 'bool', 'numeric' or 'string'.
        labels: ``level_label(level) -> level`` of the column's two training levels.
    """
    tp = type(value)
    if value is None or (tp is float and math.isnan(value)):
        return None
    if tp is str:
        if value.strip() == "":
            return None
        if kind == "numeric":
            # pd.to_numeric gives exactly the level for the level's own text form; anything else is left to it.
            return labels.get(value.strip(), NEEDS_FRAME)
        return str(value) if kind == "bool" else value.strip()
    if tp is int and abs(value) > EXACT_INT:
        return NEEDS_FRAME
    if tp is bool:
        return value if kind == "bool" else (NEEDS_FRAME if kind == "numeric" else str(value))
    if tp is int or tp is float:
        if kind == "bool":
            return bool(value)
        if kind == "numeric":
            return float(value)
        return level_label(value)
    return NEEDS_FRAME


def record_label(value: Any) -> Any:
    """The category label of one JSON cell (None when missing); `NEEDS_FRAME` for other types."""
    tp = type(value)
    if value is None or (tp is float and math.isnan(value)):
        return None
    if tp is str:
        return value.strip() or None
    if tp is int and abs(value) > EXACT_INT:
        return NEEDS_FRAME
    if tp is bool or tp is int or tp is float:
        return level_label(value)
    return NEEDS_FRAME

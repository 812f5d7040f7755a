"""Encoding of binary (0/1) and categorical (one-hot) clinical columns, fitted on the training split only.

`BinaryEncoder` maps a two-level column to 0/1 (the levels are sorted, the second one is 1); a value that
is neither training level codes as NaN, like a missing one. `CategoricalEncoder` codes text categories as
indices into the sorted training categories (-1 for an unseen one, NaN for a missing one) and expands the
codes to one-hot columns, as scikit-learn's ``OneHotEncoder(handle_unknown="ignore")``. Both also code
JSON records cell by cell (the serving fast path) and count unseen values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from meddl.errors import MedDLError
from meddl.preprocess._cells import (
    NEEDS_FRAME,
    binary_codes,
    binary_keys,
    binary_kind,
    level_label,
    missing_mask,
    record_binary_key,
    record_label,
)
from meddl.preprocess._checks import check_columns
from meddl.preprocess._state import malformed

__all__ = ["BINARY_KINDS", "BinaryEncoder", "CategoricalEncoder"]

BINARY_KINDS = ("bool", "numeric", "string")
"""How the two levels of a binary column are compared."""


def _check_frame(frame: Any, columns: Sequence[str], step: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise MedDLError(f"{step} expects a pandas DataFrame; got {type(frame).__name__}")
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise MedDLError(f"{step}: the data is missing column(s) " + ", ".join(repr(c) for c in absent))
    return frame


class BinaryEncoder(BaseEstimator):
    """Code two-level columns as 0/1: the levels are sorted and the second one is 1.

    So 1 stays 1, True is 1, and for "F"/"M" "M" is 1. Integers read back as floats (``1.0``) or as text
    (``"1"``) still match their level.

    Args:
        columns: The binary columns.

    Attributes:
        levels_: Per column, ``{"kind": "bool" | "numeric" | "string", "levels": [level 0, level 1]}``.

    Example:
        >>> encoder = BinaryEncoder(columns=["sex"]).fit(train)
        >>> encoder.transform(test)  # (n, 1) float64: 0, 1 or NaN (missing or unseen)
    """

    def __init__(self, *, columns: Sequence[str] = ()) -> None:
        self.columns = columns

    def fit(self, frame: pd.DataFrame, y: Any = None) -> Self:
        """Find the two levels of every column.

        Args:
            frame: The training rows.
            y: Ignored.

        Returns:
            The fitted encoder.

        Raises:
            MedDLError: when a column is absent or does not have exactly two distinct non-missing values.
        """
        self.fit_transform(frame)
        return self

    def fit_transform(self, frame: pd.DataFrame, y: Any = None) -> np.ndarray:
        """Fit on `frame` and return its codes (see `transform`)."""
        columns = check_columns(self.columns, "preprocess.binary")
        frame = _check_frame(frame, columns, "BinaryEncoder.fit")
        levels: dict[str, dict[str, Any]] = {}
        codes = np.empty((len(frame), len(columns)), dtype="float64")  # (n, n_binary)
        for j, column in enumerate(columns):
            series = frame[column]
            mask = missing_mask(series)
            present = [v for v, m in zip(series.to_numpy(dtype=object), mask, strict=True) if not m]
            kind = binary_kind(present, series)
            keys = binary_keys(series, kind)
            distinct = sorted({k for k in keys if k is not None}, key=lambda k: (str(type(k)), k))
            if len(distinct) != 2:
                shown = ", ".join(repr(v) for v in distinct[:5])
                raise MedDLError(
                    f"binary column '{column}' has {len(distinct)} distinct non-missing values in the "
                    f"training data ({shown}); a binary column needs exactly 2 - list it under "
                    "preprocess.categorical instead"
                )
            levels[column] = {"kind": kind, "levels": [distinct[0], distinct[1]]}
            codes[:, j] = binary_codes(keys, levels[column]["levels"])
        self.levels_ = levels
        return codes

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "levels_"):
            raise NotFittedError("This BinaryEncoder is not fitted yet: call fit() on the training split first.")

    def _column(self, frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
        """The codes of one column and the mask of its missing cells."""
        spec = self.levels_[column]
        keys = binary_keys(frame[column], spec["kind"])
        return binary_codes(keys, spec["levels"]), np.array([k is None for k in keys], dtype=bool)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Code every column.

        Args:
            frame: Rows to code; other columns are ignored.

        Returns:
            (n, n_columns) float64: 0, 1, or NaN for a missing value or one that is neither level.

        Raises:
            NotFittedError: before `fit`.
        """
        self._check_is_fitted()
        frame = _check_frame(frame, list(self.levels_), "BinaryEncoder.transform")
        codes = np.empty((len(frame), len(self.levels_)), dtype="float64")  # (n, n_binary)
        for j, column in enumerate(self.levels_):
            codes[:, j] = self._column(frame, column)[0]
        return codes

    def encode_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray | None:
        """`transform` of JSON records (a key absent from a record is missing), cell by cell.

        Returns:
            The codes, or None when a cell can only be coded exactly through a DataFrame.
        """
        self._check_is_fitted()
        specs = list(self.levels_.items())
        labels = [{level_label(level): level for level in spec["levels"]} for _, spec in specs]
        codes = np.full((len(records), len(specs)), np.nan)  # (n, n_binary)
        for i, record in enumerate(records):
            for j, (column, spec) in enumerate(specs):
                key = record_binary_key(record.get(column), spec["kind"], labels[j])
                if key is NEEDS_FRAME:
                    return None
                if key is None:
                    continue
                levels = spec["levels"]
                if key == levels[0] and type(key) is type(levels[0]):
                    codes[i, j] = 0.0
                elif key == levels[1] and type(key) is type(levels[1]):
                    codes[i, j] = 1.0
                else:
                    codes[i, j] = binary_codes([key], levels)[0]
        return codes

    def count_unseen(self, frame: pd.DataFrame) -> dict[str, int]:
        """``{column: number of non-missing values that are neither training level}``."""
        self._check_is_fitted()
        frame = _check_frame(frame, list(self.levels_), "BinaryEncoder.count_unseen")
        counts: dict[str, int] = {}
        for column in self.levels_:
            codes, absent = self._column(frame, column)
            counts[column] = int(np.sum(np.isnan(codes) & ~absent))
        return counts

    def to_state(self) -> dict[str, Any]:
        """JSON-able state: per column its kind and two levels."""
        self._check_is_fitted()
        return {"levels": {c: {"kind": v["kind"], "levels": list(v["levels"])} for c, v in self.levels_.items()}}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild a fitted encoder from `to_state`.

        Raises:
            MedDLError: when a column lacks a known kind or two levels.
        """
        levels: dict[str, dict[str, Any]] = {}
        with malformed("BinaryEncoder state"):
            for column, spec in dict(state["levels"]).items():
                kind, values = spec["kind"], list(spec["levels"])
                if kind not in BINARY_KINDS or len(values) != 2:
                    raise MedDLError("BinaryEncoder state: each binary column needs a kind and 2 levels")
                convert = {"bool": bool, "numeric": float}.get(kind)
                levels[str(column)] = {"kind": kind, "levels": [convert(v) for v in values] if convert else values}
        encoder = cls(columns=list(levels))
        encoder.levels_ = levels
        return encoder


class CategoricalEncoder(BaseEstimator):
    """One-hot encode nominal columns over their sorted training categories.

    Values are compared by their text form (``1``, ``1.0`` and ``"1"`` are the same category). An unseen
    category gives all-zero one-hot columns; a missing value gives NaN in all of them (fill it first, e.g.
    with `Imputer`, to avoid that).

    Args:
        columns: The categorical columns.

    Attributes:
        categories_: Per column, its sorted training categories.
        feature_names_out_: ``col=category`` for every one-hot column.

    Example:
        >>> encoder = CategoricalEncoder(columns=["site"]).fit(train)
        >>> encoder.transform(test)  # (n, n_categories) float64
    """

    def __init__(self, *, columns: Sequence[str] = ()) -> None:
        self.columns = columns

    @staticmethod
    def _labels(series: pd.Series) -> list[str | None]:
        mask = missing_mask(series)
        return [None if m else level_label(v) for v, m in zip(series.to_numpy(dtype=object), mask, strict=True)]

    def fit(self, frame: pd.DataFrame, y: Any = None) -> Self:
        """Learn the sorted categories of every column.

        Args:
            frame: The training rows.
            y: Ignored.

        Returns:
            The fitted encoder.

        Raises:
            MedDLError: when a column is absent or has no non-missing value.
        """
        self.fit_codes(frame)
        return self

    def fit_codes(self, frame: pd.DataFrame) -> np.ndarray:
        """Fit on `frame` and return its codes (see `codes`)."""
        columns = check_columns(self.columns, "preprocess.categorical")
        frame = _check_frame(frame, columns, "CategoricalEncoder.fit")
        categories: dict[str, list[str]] = {}
        codes = np.full((len(frame), len(columns)), np.nan)  # (n, n_categorical)
        for j, column in enumerate(columns):
            labels = self._labels(frame[column])
            present = [lb for lb in labels if lb is not None]
            if not present:
                raise MedDLError(f"column '{column}' has no non-missing values in the training data")
            unique, inverse = np.unique(np.array(present, dtype=object), return_inverse=True)
            categories[column] = [str(v) for v in unique]
            codes[np.array([lb is not None for lb in labels], dtype=bool), j] = inverse
        self.categories_ = categories
        self.feature_names_out_ = [f"{c}={category}" for c, values in categories.items() for category in values]
        return codes

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "categories_"):
            raise NotFittedError("This CategoricalEncoder is not fitted yet: call fit() on the training split first.")

    def codes(self, frame: pd.DataFrame) -> np.ndarray:
        """Category codes of every column.

        Args:
            frame: Rows to code; other columns are ignored.

        Returns:
            (n, n_columns) float64: the index of the category, -1 for an unseen one, NaN for a missing value.

        Raises:
            NotFittedError: before `fit`.
        """
        self._check_is_fitted()
        frame = _check_frame(frame, list(self.categories_), "CategoricalEncoder")
        codes = np.full((len(frame), len(self.categories_)), np.nan)  # (n, n_categorical)
        for j, (column, categories) in enumerate(self.categories_.items()):
            index = {c: i for i, c in enumerate(categories)}
            for i, label in enumerate(self._labels(frame[column])):
                if label is not None:
                    codes[i, j] = index.get(label, -1)
        return codes

    def encode_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray | None:
        """`codes` of JSON records (a key absent from a record is missing), cell by cell.

        Returns:
            The codes, or None when a cell can only be coded exactly through a DataFrame.
        """
        self._check_is_fitted()
        indexes = [(column, {c: i for i, c in enumerate(cats)}) for column, cats in self.categories_.items()]
        codes = np.full((len(records), len(indexes)), np.nan)  # (n, n_categorical)
        for i, record in enumerate(records):
            for j, (column, index) in enumerate(indexes):
                label = record_label(record.get(column))
                if label is NEEDS_FRAME:
                    return None
                if label is not None:
                    codes[i, j] = index.get(label, -1)
        return codes

    def one_hot(self, codes: np.ndarray) -> np.ndarray:
        """Expand codes (see `codes`) to one-hot columns.

        Args:
            codes: (n, n_columns) codes; -1 gives all zeros, NaN gives all NaN.

        Returns:
            (n, len(feature_names_out_)) float64.
        """
        self._check_is_fitted()
        parts = []
        for j, categories in enumerate(self.categories_.values()):
            column = codes[:, j]
            one_hot = np.zeros((len(codes), len(categories)), dtype="float64")  # (n, n_categories)
            known = column >= 0
            one_hot[np.flatnonzero(known), column[known].astype("int64")] = 1.0
            one_hot[np.isnan(column), :] = np.nan
            parts.append(one_hot)
        return np.hstack(parts) if parts else np.zeros((len(codes), 0), dtype="float64")

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """One-hot encode `frame`: ``one_hot(codes(frame))``."""
        return self.one_hot(self.codes(frame))

    def fit_transform(self, frame: pd.DataFrame, y: Any = None) -> np.ndarray:
        """Fit on `frame` and one-hot encode it."""
        return self.one_hot(self.fit_codes(frame))

    def count_unseen(self, frame: pd.DataFrame) -> dict[str, int]:
        """``{column: number of non-missing values that are not a training category}``."""
        codes = self.codes(frame)
        return {column: int(np.sum(codes[:, j] == -1)) for j, column in enumerate(self.categories_)}

    def to_state(self) -> dict[str, Any]:
        """JSON-able state: per column its sorted categories."""
        self._check_is_fitted()
        return {"categories": {c: list(v) for c, v in self.categories_.items()}}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild a fitted encoder from `to_state`."""
        with malformed("CategoricalEncoder state"):
            categories = {str(c): [str(v) for v in values] for c, values in dict(state["categories"]).items()}
        encoder = cls(columns=list(categories))
        encoder.categories_ = categories
        encoder.feature_names_out_ = [f"{c}={category}" for c, values in categories.items() for category in values]
        return encoder

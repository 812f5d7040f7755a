"""Missing-value indicators: one 0/1 column for every column that had a missing value in training.

`MissingIndicators` behaves as scikit-learn's ``MissingIndicator(features="missing-only",
error_on_new=False)`` on a coded float matrix (NaN = missing), with a JSON state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from meddl.errors import MedDLError
from meddl.preprocess._checks import check_columns
from meddl.preprocess._state import malformed

__all__ = ["MissingIndicators"]


class MissingIndicators(BaseEstimator):
    """Flag missing cells of the columns that had a missing value in the training data.

    Args:
        columns: Name of each column of the matrices passed to `fit` and `transform`.

    Attributes:
        indicator_columns_: The columns that get an indicator, in input order.
        features_: Their positions in `columns`.

    Example:
        >>> flags = MissingIndicators(columns=["age", "sex"]).fit(train_block)
        >>> flags.transform(test_block)  # (n, len(flags.indicator_columns_)) float64 of 0/1
    """

    def __init__(self, *, columns: Sequence[str] = ()) -> None:
        self.columns = columns

    def _checked(self, X: Any, action: str) -> np.ndarray:
        matrix = np.asarray(X, dtype="float64")
        if matrix.ndim != 2 or matrix.shape[1] != len(self.columns):
            raise MedDLError(
                f"MissingIndicators.{action} expects a (n, {len(self.columns)}) matrix; got shape {matrix.shape}"
            )
        return matrix

    def fit(self, X: np.ndarray, y: Any = None) -> Self:
        """Find the columns with at least one missing (NaN) cell.

        Args:
            X: (n, len(columns)) coded training values, NaN for missing.
            y: Ignored.

        Returns:
            The fitted step.

        Raises:
            MedDLError: for invalid column names or a matrix of another width.
        """
        columns = check_columns(self.columns, "MissingIndicators columns")
        matrix = self._checked(X, "fit")
        self.features_ = [int(j) for j in np.flatnonzero(np.isnan(matrix).any(axis=0))]
        self.indicator_columns_ = [columns[j] for j in self.features_]
        return self

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "features_"):
            raise NotFittedError("This MissingIndicators is not fitted yet: call fit() on the training split first.")

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Indicators of the missing cells of the flagged columns.

        Args:
            X: (n, len(columns)) coded values, NaN for missing.

        Returns:
            (n, len(indicator_columns_)) float64 of 0/1.

        Raises:
            NotFittedError: before `fit`.
        """
        self._check_is_fitted()
        matrix = self._checked(X, "transform")
        return np.isnan(matrix[:, self.features_]).astype("float64")

    def fit_transform(self, X: np.ndarray, y: Any = None) -> np.ndarray:
        """`fit` on `X`, then `transform` it."""
        return self.fit(X).transform(X)

    def to_state(self) -> dict[str, Any]:
        """JSON-able state: the input columns and those that get an indicator."""
        self._check_is_fitted()
        return {"columns": list(self.columns), "indicator_columns": list(self.indicator_columns_)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild a fitted step from `to_state`.

        Raises:
            MedDLError: when an indicator column is not one of the columns.
        """
        with malformed("MissingIndicators state"):
            columns = [str(c) for c in state["columns"]]
            flagged = [str(c) for c in state["indicator_columns"]]
        if not set(flagged) <= set(columns):
            raise MedDLError("MissingIndicators state: 'indicator_columns' names unknown columns")
        step = cls(columns=columns)
        step.features_ = [columns.index(c) for c in flagged]
        step.indicator_columns_ = flagged
        return step

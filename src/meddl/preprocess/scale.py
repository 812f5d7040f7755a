"""Scaling of numeric columns: scikit-learn's statistics, kept as plain lists and re-applied exactly.

`NumericScaler` learns with `StandardScaler`, `MinMaxScaler` or `RobustScaler` and applies the learned
vectors in the same order of operations as scikit-learn, so its output equals the scikit-learn scaler's
and its state is JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from meddl.errors import MedDLError
from meddl.preprocess._checks import check_choice, check_int
from meddl.preprocess._state import malformed

__all__ = ["SCALERS", "NumericScaler"]

SCALERS: tuple[str, ...] = ("standard", "minmax", "robust", "none")
"""Values accepted by ``preprocess.scale``."""

STATISTICS: dict[str, tuple[str, ...]] = {
    "standard": ("mean", "scale"),
    "minmax": ("scale", "min"),
    "robust": ("center", "scale"),
    "none": (),
}
"""The learned vectors of each method, in the order they are stored."""


def _as_matrix(X: Any, action: str) -> np.ndarray:
    matrix = np.asarray(X, dtype="float64")
    if matrix.ndim != 2:
        raise MedDLError(f"NumericScaler.{action} expects a 2-D matrix; got shape {matrix.shape}")
    return matrix


class NumericScaler(BaseEstimator):
    """Scale numeric columns, fitted on the training split only; NaN passes through.

    Args:
        method: ``"standard"`` (``(x - mean) / scale``), ``"minmax"`` (``x * scale + min``), ``"robust"``
            (``(x - center) / scale``, median and IQR) or ``"none"``.

    Attributes:
        n_features_in_: Number of columns seen at fit.
        statistics_: The learned vectors as lists, e.g. ``{"mean": [...], "scale": [...]}``; empty for
            ``"none"`` or when there are no columns.

    Example:
        >>> scaler = NumericScaler(method="robust").fit(train_matrix)
        >>> scaled = scaler.transform(test_matrix)  # (n, d) float64
    """

    def __init__(self, *, method: str = "standard") -> None:
        self.method = method

    def fit(self, X: np.ndarray, y: Any = None) -> Self:
        """Learn the scaling vectors.

        Args:
            X: (n, d) training values (NaN is ignored, as in scikit-learn).
            y: Ignored.

        Returns:
            The fitted scaler.

        Raises:
            MedDLError: for an unknown method or a matrix that is not 2-D.
        """
        check_choice(self.method, SCALERS, "scale")
        matrix = _as_matrix(X, "fit")
        statistics: dict[str, list[float]] = {}
        if matrix.shape[1] and self.method == "standard":
            standard = StandardScaler().fit(matrix)
            statistics = {"mean": standard.mean_.tolist(), "scale": standard.scale_.tolist()}
        elif matrix.shape[1] and self.method == "minmax":
            minmax = MinMaxScaler().fit(matrix)
            statistics = {"scale": minmax.scale_.tolist(), "min": minmax.min_.tolist()}
        elif matrix.shape[1] and self.method == "robust":
            robust = RobustScaler().fit(matrix)
            statistics = {"center": robust.center_.tolist(), "scale": robust.scale_.tolist()}
        self.n_features_in_ = int(matrix.shape[1])
        self.statistics_ = statistics
        return self

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "statistics_"):
            raise NotFittedError("This NumericScaler is not fitted yet: call fit() on the training split first.")

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Apply the learned vectors in scikit-learn's order of operations.

        Args:
            X: (n, n_features_in_) values.

        Returns:
            (n, n_features_in_) float64 scaled values (`X` itself for ``"none"``).

        Raises:
            NotFittedError: before `fit`.
            MedDLError: when `X` has another number of columns.
        """
        self._check_is_fitted()
        matrix = _as_matrix(X, "transform")
        if matrix.shape[1] != self.n_features_in_:
            raise MedDLError(f"NumericScaler was fitted on {self.n_features_in_} columns; got {matrix.shape[1]}")
        s = self.statistics_
        if not s or self.method == "none":
            return matrix
        if self.method == "standard":
            return (matrix - np.asarray(s["mean"])) / np.asarray(s["scale"])
        if self.method == "minmax":
            return matrix * np.asarray(s["scale"]) + np.asarray(s["min"])
        return (matrix - np.asarray(s["center"])) / np.asarray(s["scale"])

    def fit_transform(self, X: np.ndarray, y: Any = None) -> np.ndarray:
        """`fit` on `X`, then `transform` it."""
        return self.fit(X).transform(X)

    def to_state(self) -> dict[str, Any]:
        """JSON-able state: the method, the number of columns and the learned vectors."""
        self._check_is_fitted()
        return {
            "method": self.method,
            "n_features": self.n_features_in_,
            "statistics": {k: list(v) for k, v in self.statistics_.items()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild a fitted scaler from `to_state`.

        Raises:
            MedDLError: for an unknown method, or vectors that do not match the method and column count.
        """
        with malformed("NumericScaler state"):
            scaler = cls(method=state["method"])
            check_choice(scaler.method, SCALERS, "NumericScaler state: method")
            check_int(state["n_features"], 0, "NumericScaler state: n_features")
            n_features = int(state["n_features"])
            statistics = {str(k): [float(x) for x in v] for k, v in dict(state["statistics"]).items()}
        expected = set(STATISTICS[scaler.method])
        if n_features and (set(statistics) != expected or any(len(v) != n_features for v in statistics.values())):
            raise MedDLError(
                f"NumericScaler state: 'statistics' must hold {sorted(expected)} with one value per column "
                f"({n_features})"
            )
        scaler.n_features_in_ = n_features
        scaler.statistics_ = statistics
        return scaler

"""Imputation of coded clinical columns, learned with scikit-learn and re-applied from plain numbers.

`Imputer` works on a coded float matrix whose columns are, left to right, numeric values, binary 0/1 codes
and categorical codes (NaN = missing; a categorical code of -1, an unseen category, is left alone). The
statistics come from `SimpleImputer`, `KNNImputer` and `IterativeImputer`; they are kept as lists and
arrays so the state is JSON + NumPy, and `replay_iterative` re-applies a fitted `IterativeImputer` from its
arrays exactly as `IterativeImputer.transform` does.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning, NotFittedError

# IterativeImputer is still flagged experimental; this import switches it on.
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.linear_model import BayesianRidge

from meddl.errors import MedDLError
from meddl.preprocess._checks import check_choice, check_columns, check_int
from meddl.preprocess._state import ARRAYS_KEY, malformed

__all__ = ["ITERATIVE_ARRAYS", "MISSING_STRATEGIES", "Imputer", "fit_iterative", "replay_iterative"]

MISSING_STRATEGIES: tuple[str, ...] = ("drop", "mean", "median", "most_frequent", "knn", "iterative")
"""Values accepted by ``preprocess.missing``."""

SIMPLE_STRATEGIES = ("mean", "median", "most_frequent")
JOINT_STRATEGIES = ("knn", "iterative")
ITERATIVE_ARRAYS = (
    "iterative_initial_statistics",
    "iterative_min_value",
    "iterative_max_value",
    "iterative_feat_idx",
    "iterative_neighbor_feat_idx",
    "iterative_coef",
    "iterative_intercept",
)
"""The arrays that hold a fitted `IterativeImputer` (see `replay_iterative`)."""


def fit_iterative(
    block: np.ndarray, n_numeric: int, *, max_iter: int, random_state: int
) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """Fit `IterativeImputer` (BayesianRidge, no posterior sampling) and extract its state.

    Binary features (the columns after the first `n_numeric`) are clipped to [0, 1]; numeric ones are not.

    Args:
        block: (n, F) float64 training matrix, NaN for missing.
        n_numeric: Number of leading numeric columns.
        max_iter: Imputation rounds.
        random_state: Seed of the imputer.

    Returns:
        The imputed training block, the state arrays (`ITERATIVE_ARRAYS`) and the number of rounds run.
    """
    n_features = block.shape[1]
    min_value = np.full(n_features, -np.inf)
    max_value = np.full(n_features, np.inf)
    min_value[n_numeric:] = 0.0
    max_value[n_numeric:] = 1.0
    imputer = IterativeImputer(
        estimator=BayesianRidge(),
        sample_posterior=False,
        max_iter=max_iter,
        random_state=random_state,
        min_value=min_value,
        max_value=max_value,
    )
    with warnings.catch_warnings():
        # Not reaching the tolerance within max_iter is expected for small clinical tables;
        # the number of rounds run is kept in the state instead.
        warnings.simplefilter("ignore", ConvergenceWarning)
        imputed = imputer.fit_transform(block)
    sequence = imputer.imputation_sequence_
    n_neighbours = max(n_features - 1, 0)
    arrays = {
        "iterative_initial_statistics": np.asarray(imputer.initial_imputer_.statistics_, dtype="float64"),
        "iterative_min_value": min_value,
        "iterative_max_value": max_value,
        "iterative_feat_idx": np.array([t.feat_idx for t in sequence], dtype="int64"),
        "iterative_neighbor_feat_idx": np.array([t.neighbor_feat_idx for t in sequence], dtype="int64").reshape(
            len(sequence), n_neighbours
        ),
        "iterative_coef": np.array([t.estimator.coef_ for t in sequence], dtype="float64").reshape(
            len(sequence), n_neighbours
        ),
        "iterative_intercept": np.array([t.estimator.intercept_ for t in sequence], dtype="float64"),
    }
    return np.asarray(imputed, dtype="float64"), arrays, int(imputer.n_iter_)


def replay_iterative(
    block: np.ndarray,
    *,
    initial_statistics: np.ndarray,
    min_value: np.ndarray,
    max_value: np.ndarray,
    feat_idx: np.ndarray,
    neighbor_feat_idx: np.ndarray,
    coef: np.ndarray,
    intercept: np.ndarray,
) -> np.ndarray:
    """Apply a fitted `IterativeImputer` from its saved state, as `IterativeImputer.transform` does.

    Args:
        block: (n, F) float64 matrix with NaN for missing cells.
        initial_statistics: (F,) the initial imputer's statistics (the training means).
        min_value: (F,) lower clip of each imputed feature.
        max_value: (F,) upper clip of each imputed feature.
        feat_idx: (S,) the feature imputed at each step of the round-robin sequence.
        neighbor_feat_idx: (S, F - 1) the features it is predicted from.
        coef: (S, F - 1) the BayesianRidge coefficients of each step.
        intercept: (S,) the BayesianRidge intercept of each step.

    Returns:
        (n, F) float64 matrix with every missing cell imputed.
    """
    missing = np.isnan(block)
    filled = np.where(missing, initial_statistics[np.newaxis, :], block)
    if feat_idx.size == 0 or missing.all():
        return filled
    for step in range(feat_idx.shape[0]):
        feature = int(feat_idx[step])
        rows = missing[:, feature]
        if not rows.any():
            continue
        neighbours = filled[np.ix_(rows, neighbor_feat_idx[step])]  # (n_missing, F - 1)
        predicted = neighbours @ coef[step] + intercept[step]
        filled[rows, feature] = np.clip(predicted, min_value[feature], max_value[feature])
    return filled


def _mode(column: np.ndarray) -> float:
    """The most frequent non-NaN value of a (n, 1) column (the smallest one on ties), as `SimpleImputer`."""
    return float(SimpleImputer(strategy="most_frequent").fit(column).statistics_[0])


class Imputer(BaseEstimator):
    """Fill the missing cells of a coded table, fitted on the training split only.

    The matrix passed to `fit` and `transform` has ``len(numeric) + len(binary) + len(categorical)``
    columns in that order: numeric values, binary 0/1 codes, categorical codes (indices into the sorted
    training categories; -1 for an unseen category); NaN marks a missing cell.

    Args:
        numeric: Names of the numeric columns.
        binary: Names of the binary columns.
        categorical: Names of the categorical columns.
        strategy: ``"drop"`` (nothing is filled: NaN passes through), ``"mean"``, ``"median"`` or
            ``"most_frequent"`` (per numeric column; binary and categorical columns take their training
            mode), ``"knn"`` or ``"iterative"`` (numeric and binary columns are imputed jointly, binary
            values may then be fractions in [0, 1]; categorical columns take their training mode).
        knn_neighbors: Neighbours used by ``"knn"``.
        iterative_max_iter: Imputation rounds of ``"iterative"``.
        random_state: Seed of the iterative imputer.

    Attributes:
        numeric_fill_: Fill value of each numeric column for the simple strategies, else None.
        binary_fill_: Training mode (0 or 1) of each binary column; None for ``"drop"``.
        categorical_fill_: Training mode (a code) of each categorical column; None for ``"drop"``.
        n_iter_: Rounds run by the iterative imputer, else None.
        arrays_: The learned arrays: ``knn_fit_X`` for ``"knn"`` (the training numeric + binary block),
            `ITERATIVE_ARRAYS` for ``"iterative"``; empty otherwise.

    Example:
        >>> imputer = Imputer(numeric=["age"], binary=["smoker"], strategy="knn").fit(train_block)
        >>> filled = imputer.transform(test_block)
    """

    def __init__(
        self,
        *,
        numeric: Sequence[str] = (),
        binary: Sequence[str] = (),
        categorical: Sequence[str] = (),
        strategy: str = "median",
        knn_neighbors: int = 5,
        iterative_max_iter: int = 10,
        random_state: int = 0,
    ) -> None:
        self.numeric = numeric
        self.binary = binary
        self.categorical = categorical
        self.strategy = strategy
        self.knn_neighbors = knn_neighbors
        self.iterative_max_iter = iterative_max_iter
        self.random_state = random_state

    # ------------------------------------------------------------------ helpers

    def _check_params(self) -> None:
        for field in ("numeric", "binary", "categorical"):
            check_columns(getattr(self, field), f"Imputer {field}")
        check_choice(self.strategy, MISSING_STRATEGIES, "Imputer strategy")
        check_int(self.knn_neighbors, 1, "Imputer knn_neighbors")
        check_int(self.iterative_max_iter, 1, "Imputer iterative_max_iter")
        check_int(self.random_state, 0, "Imputer random_state")

    @property
    def _widths(self) -> tuple[int, int, int]:
        return len(self.numeric), len(self.binary), len(self.categorical)

    def _checked(self, X: Any, action: str) -> np.ndarray:
        """A float64 copy of `X`, checked to have one column per named column."""
        block = np.array(X, dtype="float64", copy=True)
        width = sum(self._widths)
        if block.ndim != 2 or block.shape[1] != width:
            raise MedDLError(f"Imputer.{action} expects a (n, {width}) matrix; got shape {block.shape}")
        return block

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "binary_fill_"):
            raise NotFittedError("This Imputer is not fitted yet: call fit() on the training split first.")

    # ------------------------------------------------------------------ fit

    def fit(self, X: np.ndarray, y: Any = None) -> Self:
        """Learn the fill values (and the joint imputer) from the training block.

        Args:
            X: (n, n_columns) coded training values, NaN for missing.
            y: Ignored.

        Returns:
            The fitted imputer.

        Raises:
            MedDLError: for invalid arguments, a matrix of another width, or (unless ``"drop"``) a column
                without an observed value.
        """
        self.fit_transform(X)
        return self

    def fit_transform(self, X: np.ndarray, y: Any = None) -> np.ndarray:
        """Fit on `X` and return it imputed.

        For ``"iterative"`` the result is that of `IterativeImputer.fit_transform` (the last fitting round),
        which is what the downstream steps are fitted on.

        Args:
            X: (n, n_columns) coded training values, NaN for missing.
            y: Ignored.

        Returns:
            (n, n_columns) float64 imputed matrix.
        """
        self._check_params()
        block = self._checked(X, "fit")
        n_numeric, n_binary, n_categorical = self._widths
        if self.strategy != "drop" and len(block):
            empty = np.flatnonzero(np.isnan(block).all(axis=0))
            if empty.size:
                names = [*self.numeric, *self.binary, *self.categorical]
                raise MedDLError(f"Imputer: column '{names[int(empty[0])]}' has no observed value to learn from")
        self.numeric_fill_: list[float] | None = None
        self.binary_fill_: list[Any] = [None] * n_binary
        self.categorical_fill_: list[int | None] = [None] * n_categorical
        self.n_iter_: int | None = None
        self.arrays_: dict[str, np.ndarray] = {}
        if self.strategy in SIMPLE_STRATEGIES and n_numeric:
            imputer = SimpleImputer(strategy=self.strategy).fit(block[:, :n_numeric])
            self.numeric_fill_ = [float(v) for v in imputer.statistics_]
            numbers = block[:, :n_numeric]
            block[:, :n_numeric] = np.where(np.isnan(numbers), imputer.statistics_, numbers)
        if self.strategy != "drop":
            self._fit_modes(block)
        if self.strategy in JOINT_STRATEGIES and n_numeric + n_binary:
            joint = np.array(block[:, : n_numeric + n_binary], order="C")  # (n, n_numeric + n_binary), a copy
            imputed = self._fit_joint(joint)
            # scikit-learn's joint imputers return Fortran order; keep it, as the column sums of the steps
            # fitted next (the scaler) depend on the memory order at the last bit.
            block = np.asfortranarray(block)
            block[:, : n_numeric + n_binary] = imputed
        self._fill_categories(block)
        return block

    def _fit_modes(self, block: np.ndarray) -> None:
        """Learn the training mode of each binary and categorical column; fill the binary ones (simple)."""
        n_numeric, n_binary, n_categorical = self._widths
        for j in range(n_numeric, n_numeric + n_binary):
            mode = _mode(block[:, [j]])
            self.binary_fill_[j - n_numeric] = int(mode)
            if self.strategy in SIMPLE_STRATEGIES:
                block[:, j] = np.where(np.isnan(block[:, j]), mode, block[:, j])
        for j in range(n_categorical):
            self.categorical_fill_[j] = int(_mode(block[:, [n_numeric + n_binary + j]]))

    def _fit_joint(self, joint: np.ndarray) -> np.ndarray:
        """Fit the KNN or iterative imputer on the (n, n_numeric + n_binary) block; return it imputed."""
        if self.strategy == "knn":
            knn = KNNImputer(n_neighbors=int(self.knn_neighbors))
            imputed = np.asarray(knn.fit_transform(joint), dtype="float64")
            self.arrays_ = {"knn_fit_X": joint}
            self._knn_imputer = knn
            return imputed
        imputed, self.arrays_, self.n_iter_ = fit_iterative(
            joint, len(self.numeric), max_iter=int(self.iterative_max_iter), random_state=int(self.random_state)
        )
        return imputed

    # ------------------------------------------------------------------ transform

    def _fill_categories(self, block: np.ndarray) -> None:
        """Replace missing categorical codes by the training mode (unseen codes, -1, stay)."""
        offset = len(self.numeric) + len(self.binary)
        for j, fill in enumerate(self.categorical_fill_):
            if fill is not None:
                column = block[:, offset + j]
                column[np.isnan(column)] = fill

    def _impute_joint(self, joint: np.ndarray) -> np.ndarray:
        """Impute the (n, n_numeric + n_binary) block with the fitted KNN or iterative imputer."""
        if self.strategy == "knn":
            return np.asarray(self._knn_imputer.transform(joint), dtype="float64")
        a = self.arrays_
        return replay_iterative(
            joint,
            initial_statistics=a["iterative_initial_statistics"],
            min_value=a["iterative_min_value"],
            max_value=a["iterative_max_value"],
            feat_idx=a["iterative_feat_idx"],
            neighbor_feat_idx=a["iterative_neighbor_feat_idx"],
            coef=a["iterative_coef"],
            intercept=a["iterative_intercept"],
        )

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Fill the missing cells with what was learned at fit.

        Args:
            X: (n, n_columns) coded values, NaN for missing.

        Returns:
            (n, n_columns) float64 matrix; NaN remains only with ``"drop"``.

        Raises:
            NotFittedError: before `fit`.
        """
        self._check_is_fitted()
        block = self._checked(X, "transform")
        n_numeric, n_binary, _ = self._widths
        numbers, codes = block[:, :n_numeric], block[:, n_numeric : n_numeric + n_binary]
        if self.strategy in SIMPLE_STRATEGIES:
            if self.numeric_fill_ is not None:
                block[:, :n_numeric] = np.where(np.isnan(numbers), np.asarray(self.numeric_fill_), numbers)
            for j, fill in enumerate(self.binary_fill_):
                codes[np.isnan(codes[:, j]), j] = float(fill)
        elif self.strategy in JOINT_STRATEGIES and len(block) and n_numeric + n_binary:
            block[:, : n_numeric + n_binary] = self._impute_joint(np.hstack([numbers, codes]))
        self._fill_categories(block)
        return block

    # ------------------------------------------------------------------ state

    def to_state(self) -> dict[str, Any]:
        """JSON-able state; the KNN training block or the iterative sequence is under ``"arrays"``."""
        self._check_is_fitted()
        return {
            "strategy": self.strategy,
            "numeric": list(self.numeric),
            "binary": list(self.binary),
            "categorical": list(self.categorical),
            "knn_neighbors": int(self.knn_neighbors),
            "iterative_max_iter": int(self.iterative_max_iter),
            "random_state": int(self.random_state),
            "numeric_fill": None if self.numeric_fill_ is None else list(self.numeric_fill_),
            "binary_fill": list(self.binary_fill_),
            "categorical_fill": list(self.categorical_fill_),
            "n_iter": self.n_iter_,
            ARRAYS_KEY: {name: np.array(value, copy=True) for name, value in self.arrays_.items()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild a fitted imputer from `to_state` (arrays as ``{name: ndarray}`` under ``"arrays"``).

        Raises:
            MedDLError: when the fills or arrays do not match the strategy and the columns.
        """
        with malformed("Imputer state"):
            imputer = cls(**{k: state[k] for k in cls().get_params()})
            imputer._check_params()
            imputer._restore_fills(state)
            imputer.arrays_ = {str(name): np.asarray(value) for name, value in dict(state[ARRAYS_KEY]).items()}
            imputer.n_iter_ = state["n_iter"]
        imputer._restore_joint()
        return imputer

    def _restore_fills(self, state: Mapping[str, Any]) -> None:
        n_numeric, n_binary, n_categorical = self._widths
        simple = self.strategy in SIMPLE_STRATEGIES
        numeric_fill = state["numeric_fill"]
        if simple and n_numeric and (numeric_fill is None or len(numeric_fill) != n_numeric):
            raise MedDLError("Imputer state: 'numeric_fill' needs one value per numeric column")
        self.numeric_fill_ = [float(v) for v in numeric_fill] if simple and n_numeric else None
        self.binary_fill_ = list(state["binary_fill"])
        self.categorical_fill_ = [None if v is None else int(v) for v in state["categorical_fill"]]
        if len(self.binary_fill_) != n_binary or len(self.categorical_fill_) != n_categorical:
            raise MedDLError("Imputer state: 'binary_fill' / 'categorical_fill' need one value per column")
        if simple and any(v not in (0, 1) for v in self.binary_fill_):
            raise MedDLError("Imputer state: each binary column needs a fill of 0 or 1")
        if self.strategy != "drop" and any(v is None or v < 0 for v in self.categorical_fill_):
            raise MedDLError("Imputer state: each categorical column needs a fill code >= 0")

    def _restore_joint(self) -> None:
        """Check the arrays of a joint strategy and rebuild the KNN imputer."""
        n_joint = len(self.numeric) + len(self.binary)
        if self.strategy == "knn" and n_joint:
            fit_x = self.arrays_.get("knn_fit_X")
            if fit_x is None or fit_x.ndim != 2 or fit_x.shape[1] != n_joint:
                raise MedDLError(f"Imputer state: 'knn_fit_X' must be a (n, {n_joint}) array")
            self._knn_imputer = KNNImputer(n_neighbors=int(self.knn_neighbors)).fit(fit_x)
        if self.strategy == "iterative" and n_joint:
            absent = [name for name in ITERATIVE_ARRAYS if name not in self.arrays_]
            if absent:
                raise MedDLError(f"Imputer state: array {absent[0]!r} is required for missing='iterative'")
            a = self.arrays_
            steps = a["iterative_feat_idx"].shape[0]
            if (
                a["iterative_initial_statistics"].shape != (n_joint,)
                or a["iterative_neighbor_feat_idx"].shape != (steps, n_joint - 1)
                or a["iterative_coef"].shape != (steps, n_joint - 1)
                or a["iterative_intercept"].shape != (steps,)
            ):
                raise MedDLError("Imputer state: iterative imputation arrays have inconsistent shapes")

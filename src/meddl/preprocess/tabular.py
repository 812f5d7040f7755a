"""Preprocessing of clinical tables: coercion, imputation, scaling, binary and one-hot encoding.

`TabularPreprocessor` is fitted on the training split only and then applied, unchanged, to validation,
test and external data. Every statistic is learned with scikit-learn (`SimpleImputer`, `KNNImputer`,
`IterativeImputer`, `StandardScaler`, `MinMaxScaler`, `RobustScaler`); the learned numbers are then kept
as plain lists and arrays so that the whole state can be written as JSON + NumPy ``.npz`` (never pickle)
and re-applied exactly after loading.
"""

from __future__ import annotations

import json
import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning, NotFittedError

# IterativeImputer is still flagged experimental; this import switches it on.
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.linear_model import BayesianRidge
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from meddl.errors import MedDLError

__all__ = ["MISSING_STRATEGIES", "SCALERS", "STATE_VERSION", "TabularPreprocessor"]

MISSING_STRATEGIES: tuple[str, ...] = ("drop", "mean", "median", "most_frequent", "knn", "iterative")
"""Values accepted by ``preprocess.missing``."""

SCALERS: tuple[str, ...] = ("standard", "minmax", "robust", "none")
"""Values accepted by ``preprocess.scale``."""

STATE_VERSION = 1
"""Version of the layout written by `TabularPreprocessor.get_state`."""

STATE_FILE = "preprocess.json"
ARRAYS_FILE = "preprocess.npz"

_SIMPLE_STRATEGIES = ("mean", "median", "most_frequent")
_JOINT_STRATEGIES = ("knn", "iterative")
_PROFILE_PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)
_STATE_KEYS = (
    "version",
    "kind",
    "config",
    "input_columns",
    "feature_names_out",
    "source_columns",
    "numeric_fill",
    "scaler",
    "binary",
    "categorical",
    "indicator_columns",
    "iterative_n_iter",
    "arrays",
    "column_profile",
)
_ITERATIVE_ARRAYS = (
    "iterative_initial_statistics",
    "iterative_min_value",
    "iterative_max_value",
    "iterative_feat_idx",
    "iterative_neighbor_feat_idx",
    "iterative_coef",
    "iterative_intercept",
)


def _is_missing_scalar(value: Any) -> bool:
    """Whether one cell counts as missing: None, NaN, NaT, pd.NA or an empty / blank string."""
    if isinstance(value, str):
        return value.strip() == ""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # array-like cells
        return False


def _missing_mask(series: pd.Series) -> np.ndarray:
    """Boolean mask of the missing cells of a column (see `_is_missing_scalar`)."""
    mask = series.isna().to_numpy(dtype=bool, copy=True)  # pandas 3 hands out read-only views
    if not (pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)):
        blank = np.array([isinstance(v, str) and v.strip() == "" for v in series.to_numpy(dtype=object)])
        if blank.size:
            mask |= blank
    return mask


def _level_label(value: Any) -> str:
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


def _coerce_numeric(series: pd.Series, column: str) -> np.ndarray:
    """Convert a column to float64, with NaN for missing cells.

    Raises:
        MedDLError: when a cell is neither missing nor a finite number.
    """
    missing = _missing_mask(series)
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


def _binary_kind(values: Sequence[Any], series: pd.Series) -> str:
    """How the two levels of a binary column are compared: 'bool', 'numeric' or 'string'."""
    if pd.api.types.is_bool_dtype(series.dtype) or all(isinstance(v, bool | np.bool_) for v in values):
        return "bool"
    if pd.api.types.is_numeric_dtype(series.dtype) or all(
        isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_) for v in values
    ):
        return "numeric"
    return "string"


def _binary_keys(series: pd.Series, kind: str) -> list[Any]:
    """The comparison key of every cell of a binary column (None for a missing cell)."""
    missing = _missing_mask(series)
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
            keys.append(_level_label(value))
    return keys


_EXACT_INT = 2**53  # integers up to this size convert to float64 exactly, as pandas would convert them
_NEEDS_FRAME = object()  # a record cell that only the DataFrame path codes exactly


def _record_binary_key(value: Any, kind: str, labels: Mapping[str, Any]) -> Any:
    """`_binary_keys` of one JSON cell; `_NEEDS_FRAME` when only the DataFrame path reproduces it exactly.

    Args:
        value: The cell (None for a key absent from the record).
        kind: The column's comparison kind: 'bool', 'numeric' or 'string'.
        labels: ``_level_label(level) -> level`` of the column's two training levels.
    """
    tp = type(value)
    if value is None or (tp is float and math.isnan(value)):
        return None
    if tp is str:
        if value.strip() == "":
            return None
        if kind == "numeric":
            # pd.to_numeric gives exactly the level for the level's own text form; anything else is left to it.
            return labels.get(value.strip(), _NEEDS_FRAME)
        return str(value) if kind == "bool" else value.strip()
    if tp is int and abs(value) > _EXACT_INT:
        return _NEEDS_FRAME
    if tp is bool:
        return value if kind == "bool" else (_NEEDS_FRAME if kind == "numeric" else str(value))
    if tp is int or tp is float:
        if kind == "bool":
            return bool(value)
        if kind == "numeric":
            return float(value)
        return _level_label(value)
    return _NEEDS_FRAME


def _record_label(value: Any) -> Any:
    """The category label of one JSON cell (None when missing); `_NEEDS_FRAME` for other types."""
    tp = type(value)
    if value is None or (tp is float and math.isnan(value)):
        return None
    if tp is str:
        return value.strip() or None
    if tp is int and abs(value) > _EXACT_INT:
        return _NEEDS_FRAME
    if tp is bool or tp is int or tp is float:
        return _level_label(value)
    return _NEEDS_FRAME


def _check_choice(value: Any, choices: Sequence[str], field: str) -> None:
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise MedDLError(f"{field} must be one of {allowed}; got {value!r}")


def _check_int(value: Any, minimum: int, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise MedDLError(f"{field} must be an integer >= {minimum}; got {value!r}")


def _check_columns(value: Any, field: str) -> list[str]:
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


def _replay_iterative(
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


class TabularPreprocessor(BaseEstimator):  # type: ignore[misc]
    """Turn a clinical table into a float32 feature matrix, fitted on the training split only.

    Output layout, left to right: numeric columns (imputed, then scaled), binary columns (0/1), one-hot
    columns of each categorical column (``col=value``, training categories sorted), then one ``col__missing``
    indicator for each column that had a missing value in the training data. A binary value that is
    neither training level is treated as missing (imputed, and its indicator set); an unseen categorical
    value gives all-zero one-hot columns. `count_unseen` counts both.

    Args:
        numeric: Continuous columns (lab values, age, vital signs). Coerced to float.
        categorical: Nominal columns (site, ward, ethnicity). Converted to text and one-hot encoded.
        binary: Columns with exactly two distinct values in training (sex, smoker). Mapped to 0/1:
            the levels are sorted and the second one is 1 (so 1 stays 1, True is 1, for "F"/"M" "M" is 1).
        missing: How missing values are filled: ``"drop"`` (nothing is filled here; the caller drops
            incomplete rows before fit and NaN passes through transform, a missing categorical value
            giving NaN in all its one-hot columns), ``"mean"``, ``"median"``, ``"most_frequent"`` (per
            numeric column; binary and categorical columns take their training mode), ``"knn"`` or
            ``"iterative"`` (numeric and 0/1-coded binary columns are imputed jointly, binary values may
            then be fractions in [0, 1]; categorical columns take their training mode). Note that
            ``"knn"`` keeps the training rows' numeric and binary values in the saved state, as
            KNN imputation needs them.
        missing_indicators: Append a ``col__missing`` 0/1 column for every column with a missing value
            in training.
        scale: Scaling of the numeric columns: ``"standard"``, ``"minmax"``, ``"robust"`` or ``"none"``.
        knn_neighbors: Neighbours used by ``missing="knn"``.
        iterative_max_iter: Imputation rounds of ``missing="iterative"``.
        random_state: Seed of the iterative imputer.

    Attributes:
        input_columns_: All input columns, numeric then binary then categorical.
        feature_names_out_: Name of each output feature.
        source_columns_: The input column each output feature comes from.
        n_features_out_: Number of output features.
        column_profile_: Training distribution of every input column, for shift detection.
        numeric_fill_: Fill value of each numeric column (mean/median/most_frequent), else None.
        scaler_: The scaler's learned vectors (empty dict for ``scale="none"``).
        binary_levels_: Per binary column, its comparison kind, sorted levels and fill code.
        categories_: Per categorical column, its sorted training categories and fill category.
        indicator_columns_: Columns that get a missing-value indicator.

    Example:
        >>> prep = TabularPreprocessor(numeric=["age"], categorical=["site"]).fit(train)
        >>> features = prep.transform(test)  # (n, prep.n_features_out_) float32
    """

    def __init__(
        self,
        *,
        numeric: Sequence[str] = (),
        categorical: Sequence[str] = (),
        binary: Sequence[str] = (),
        missing: str = "median",
        missing_indicators: bool = True,
        scale: str = "standard",
        knn_neighbors: int = 5,
        iterative_max_iter: int = 10,
        random_state: int = 0,
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.binary = binary
        self.missing = missing
        self.missing_indicators = missing_indicators
        self.scale = scale
        self.knn_neighbors = knn_neighbors
        self.iterative_max_iter = iterative_max_iter
        self.random_state = random_state

    # ------------------------------------------------------------------ configuration

    def _validated_config(self) -> dict[str, Any]:
        """Check every constructor argument and return them as a JSON-ready dict."""
        numeric = _check_columns(self.numeric, "preprocess.numeric")
        binary = _check_columns(self.binary, "preprocess.binary")
        categorical = _check_columns(self.categorical, "preprocess.categorical")
        groups = {"numeric": numeric, "binary": binary, "categorical": categorical}
        seen: dict[str, str] = {}
        for group, columns in groups.items():
            for column in columns:
                if column in seen:
                    raise MedDLError(
                        f"column '{column}' is listed both in preprocess.{seen[column]} and preprocess.{group}"
                    )
                seen[column] = group
        if not seen:
            raise MedDLError(
                "preprocess: no columns to use; list them in preprocess.numeric, preprocess.binary "
                "or preprocess.categorical"
            )
        _check_choice(self.missing, MISSING_STRATEGIES, "preprocess.missing")
        _check_choice(self.scale, SCALERS, "preprocess.scale")
        if not isinstance(self.missing_indicators, bool | np.bool_):
            raise MedDLError(f"preprocess.missing_indicators must be true or false; got {self.missing_indicators!r}")
        _check_int(self.knn_neighbors, 1, "preprocess.knn_neighbors")
        _check_int(self.iterative_max_iter, 1, "preprocess.iterative_max_iter")
        _check_int(self.random_state, 0, "preprocess.random_state")
        return {
            "numeric": numeric,
            "binary": binary,
            "categorical": categorical,
            "missing": self.missing,
            "missing_indicators": bool(self.missing_indicators),
            "scale": self.scale,
            "knn_neighbors": int(self.knn_neighbors),
            "iterative_max_iter": int(self.iterative_max_iter),
            "random_state": int(self.random_state),
        }

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "feature_names_out_"):
            raise NotFittedError(
                "This TabularPreprocessor is not fitted yet: call fit() on the training split "
                "(or load a saved one with TabularPreprocessor.load()) before transform()."
            )

    @staticmethod
    def _check_frame(frame: Any, columns: Sequence[str], action: str) -> pd.DataFrame:
        if not isinstance(frame, pd.DataFrame):
            raise MedDLError(f"preprocess {action} expects a pandas DataFrame; got {type(frame).__name__}")
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise MedDLError(
                f"the data is missing {len(absent)} column(s) required by preprocessing: "
                + ", ".join(repr(c) for c in absent)
            )
        return frame

    # ------------------------------------------------------------------ fit

    def fit(self, frame: pd.DataFrame, y: Any = None) -> Self:
        """Learn every statistic from the training split.

        Args:
            frame: The training rows; the index holds the original row numbers (used in error messages).
            y: Ignored; accepted for scikit-learn pipeline compatibility.

        Returns:
            The fitted preprocessor.

        Raises:
            MedDLError: on an invalid configuration, an absent column, a non-numeric value in a numeric
                column, a column with no observed value, or a binary column without exactly two levels.
        """
        config = self._validated_config()
        numeric, binary, categorical = config["numeric"], config["binary"], config["categorical"]
        input_columns = [*numeric, *binary, *categorical]
        frame = self._check_frame(frame, input_columns, "fit")
        if len(frame) == 0:
            raise MedDLError("preprocess fit received a table with no rows (the training split is empty)")
        missing = config["missing"]

        profile: dict[str, dict[str, Any]] = {}
        missing_masks: dict[str, np.ndarray] = {}

        # Numeric columns: coerce, profile.
        numeric_matrix = np.empty((len(frame), len(numeric)), dtype="float64")  # (n, n_numeric)
        for j, column in enumerate(numeric):
            values = _coerce_numeric(frame[column], column)
            observed = values[~np.isnan(values)]
            if observed.size == 0:
                raise MedDLError(f"column '{column}' has no non-missing values in the training data")
            numeric_matrix[:, j] = values
            missing_masks[column] = np.isnan(values)
            profile[column] = {
                "kind": "numeric",
                "mean": float(observed.mean()),
                "std": float(observed.std()),
                "quantiles": [float(q) for q in np.percentile(observed, _PROFILE_PERCENTILES)],
                "missing_rate": float(np.isnan(values).mean()),
            }

        # Binary columns: find the two levels, code 0/1.
        binary_levels: dict[str, dict[str, Any]] = {}
        binary_matrix = np.empty((len(frame), len(binary)), dtype="float64")  # (n, n_binary)
        for j, column in enumerate(binary):
            series = frame[column]
            mask = _missing_mask(series)
            present = [v for v, m in zip(series.to_numpy(dtype=object), mask, strict=True) if not m]
            kind = _binary_kind(present, series)
            keys = _binary_keys(series, kind)
            distinct = sorted({k for k in keys if k is not None}, key=lambda k: (str(type(k)), k))
            if len(distinct) != 2:
                shown = ", ".join(repr(v) for v in distinct[:5])
                raise MedDLError(
                    f"binary column '{column}' has {len(distinct)} distinct non-missing values in the "
                    f"training data ({shown}); a binary column needs exactly 2 - list it under "
                    "preprocess.categorical instead"
                )
            levels = [distinct[0], distinct[1]]
            codes = self._binary_codes(keys, levels)
            binary_matrix[:, j] = codes
            missing_masks[column] = mask
            counts = [int(np.sum(codes == 0)), int(np.sum(codes == 1))]
            n_present = counts[0] + counts[1]
            binary_levels[column] = {"kind": kind, "levels": levels, "fill": None}
            profile[column] = {
                "kind": "categorical",
                "frequencies": {_level_label(lv): c / n_present for lv, c in zip(levels, counts, strict=True)},
                "missing_rate": float(mask.mean()),
            }

        # Categorical columns: text levels, sorted categories.
        categories: dict[str, dict[str, Any]] = {}
        category_labels: dict[str, list[str | None]] = {}
        for column in categorical:
            series = frame[column]
            mask = _missing_mask(series)
            labels = [None if m else _level_label(v) for v, m in zip(series.to_numpy(dtype=object), mask, strict=True)]
            present = [lb for lb in labels if lb is not None]
            if not present:
                raise MedDLError(f"column '{column}' has no non-missing values in the training data")
            unique_labels, label_counts = np.unique(np.array(present, dtype=object), return_counts=True)
            categories[column] = {"categories": [str(v) for v in unique_labels], "fill": None}
            category_labels[column] = labels
            missing_masks[column] = mask
            frequencies = {str(v): int(c) / len(present) for v, c in zip(unique_labels, label_counts, strict=True)}
            profile[column] = {
                "kind": "categorical",
                "frequencies": frequencies,
                "missing_rate": float(mask.mean()),
            }

        # Imputation.
        numeric_fill: list[float] | None = None
        arrays: dict[str, np.ndarray] = {}
        iterative_n_iter: int | None = None
        if missing in _SIMPLE_STRATEGIES and numeric:
            imputer = SimpleImputer(strategy=missing).fit(numeric_matrix)
            numeric_fill = [float(v) for v in imputer.statistics_]
            numeric_matrix = np.where(np.isnan(numeric_matrix), imputer.statistics_, numeric_matrix)
        if missing != "drop":
            for j, column in enumerate(binary):
                mode = SimpleImputer(strategy="most_frequent").fit(binary_matrix[:, [j]]).statistics_[0]
                binary_levels[column]["fill"] = int(mode)
                if missing in _SIMPLE_STRATEGIES:
                    binary_matrix[:, j] = np.where(np.isnan(binary_matrix[:, j]), mode, binary_matrix[:, j])
            for column in categorical:
                labels_array = np.array(
                    [np.nan if lb is None else lb for lb in category_labels[column]], dtype=object
                ).reshape(-1, 1)
                mode_label = SimpleImputer(strategy="most_frequent").fit(labels_array).statistics_[0]
                categories[column]["fill"] = str(mode_label)
        if missing in _JOINT_STRATEGIES and (numeric or binary):
            block = np.hstack([numeric_matrix, binary_matrix])  # (n, n_numeric + n_binary)
            if missing == "knn":
                knn = KNNImputer(n_neighbors=config["knn_neighbors"])
                imputed = knn.fit_transform(block)
                arrays["knn_fit_X"] = block
                self._knn_imputer = knn
            else:
                imputed, arrays, iterative_n_iter = self._fit_iterative(block, len(numeric), config)
            numeric_matrix = imputed[:, : len(numeric)]
            binary_matrix = imputed[:, len(numeric) :]

        # Scaling, fitted on the imputed training numbers (NaN is ignored, as in scikit-learn).
        scaler_state: dict[str, list[float]] = {}
        if numeric and config["scale"] != "none":
            if config["scale"] == "standard":
                standard = StandardScaler().fit(numeric_matrix)
                scaler_state = {"mean": standard.mean_.tolist(), "scale": standard.scale_.tolist()}
            elif config["scale"] == "minmax":
                minmax = MinMaxScaler().fit(numeric_matrix)
                scaler_state = {"scale": minmax.scale_.tolist(), "min": minmax.min_.tolist()}
            else:
                robust = RobustScaler().fit(numeric_matrix)
                scaler_state = {"center": robust.center_.tolist(), "scale": robust.scale_.tolist()}

        indicator_columns = [c for c in input_columns if missing_masks[c].any()] if config["missing_indicators"] else []

        names: list[str] = [*numeric, *binary]
        sources: list[str] = [*numeric, *binary]
        for column in categorical:
            for category in categories[column]["categories"]:
                names.append(f"{column}={category}")
                sources.append(column)
        for column in indicator_columns:
            names.append(f"{column}__missing")
            sources.append(column)

        self.input_columns_ = input_columns
        self.numeric_fill_ = numeric_fill
        self.scaler_ = scaler_state
        self.binary_levels_ = binary_levels
        self.categories_ = categories
        self.indicator_columns_ = indicator_columns
        self.iterative_n_iter_ = iterative_n_iter
        self.column_profile_ = profile
        self.feature_names_out_ = names
        self.source_columns_ = sources
        self.n_features_out_ = len(names)
        self._arrays = arrays
        self._config = config
        return self

    @staticmethod
    def _fit_iterative(
        block: np.ndarray, n_numeric: int, config: Mapping[str, Any]
    ) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
        """Fit `IterativeImputer` (BayesianRidge, no posterior sampling) and extract its state.

        Binary features are clipped to [0, 1]; numeric ones are not clipped.

        Returns:
            The imputed training block, the state arrays and the number of rounds run.
        """
        n_features = block.shape[1]
        min_value = np.full(n_features, -np.inf)
        max_value = np.full(n_features, np.inf)
        min_value[n_numeric:] = 0.0
        max_value[n_numeric:] = 1.0
        imputer = IterativeImputer(
            estimator=BayesianRidge(),
            sample_posterior=False,
            max_iter=config["iterative_max_iter"],
            random_state=config["random_state"],
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

    # ------------------------------------------------------------------ transform

    @staticmethod
    def _binary_codes(keys: Sequence[Any], levels: Sequence[Any]) -> np.ndarray:
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

    def _encode(self, frame: pd.DataFrame) -> dict[str, Any]:
        """Coerce and code every input column (before imputation)."""
        numeric = self._config["numeric"]
        binary = self._config["binary"]
        categorical = self._config["categorical"]
        n = len(frame)
        numeric_matrix = np.empty((n, len(numeric)), dtype="float64")  # (n, n_numeric)
        for j, column in enumerate(numeric):
            numeric_matrix[:, j] = _coerce_numeric(frame[column], column)
        binary_matrix = np.empty((n, len(binary)), dtype="float64")  # (n, n_binary)
        binary_missing = np.zeros((n, len(binary)), dtype=bool)
        binary_unseen = np.zeros((n, len(binary)), dtype=bool)
        for j, column in enumerate(binary):
            spec = self.binary_levels_[column]
            keys = _binary_keys(frame[column], spec["kind"])
            codes = self._binary_codes(keys, spec["levels"])
            absent = np.array([k is None for k in keys], dtype=bool)
            binary_matrix[:, j] = codes
            binary_missing[:, j] = absent
            binary_unseen[:, j] = np.isnan(codes) & ~absent
        category_codes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for column in categorical:
            series = frame[column]
            absent = _missing_mask(series)
            index = {c: i for i, c in enumerate(self.categories_[column]["categories"])}
            codes = np.full(n, -1, dtype="int64")
            for i, (value, is_absent) in enumerate(zip(series.to_numpy(dtype=object), absent, strict=True)):
                if not is_absent:
                    codes[i] = index.get(_level_label(value), -1)
            category_codes[column] = (codes, absent, (codes < 0) & ~absent)
        return {
            "numeric": numeric_matrix,
            "binary": binary_matrix,
            "binary_missing": binary_missing,
            "binary_unseen": binary_unseen,
            "categorical": category_codes,
        }

    def _impute_joint(self, block: np.ndarray) -> np.ndarray:
        """Impute the (n, n_numeric + n_binary) block with the fitted KNN or iterative imputer."""
        if self._config["missing"] == "knn":
            return np.asarray(self._knn_imputer.transform(block), dtype="float64")
        a = self._arrays
        return _replay_iterative(
            block,
            initial_statistics=a["iterative_initial_statistics"],
            min_value=a["iterative_min_value"],
            max_value=a["iterative_max_value"],
            feat_idx=a["iterative_feat_idx"],
            neighbor_feat_idx=a["iterative_neighbor_feat_idx"],
            coef=a["iterative_coef"],
            intercept=a["iterative_intercept"],
        )

    def _scale(self, numeric_matrix: np.ndarray) -> np.ndarray:
        """Apply the saved scaler in the same order of operations as scikit-learn."""
        s = self.scaler_
        scale_kind = self._config["scale"]
        if not s or scale_kind == "none":
            return numeric_matrix
        if scale_kind == "standard":
            return (numeric_matrix - np.asarray(s["mean"])) / np.asarray(s["scale"])
        if scale_kind == "minmax":
            return numeric_matrix * np.asarray(s["scale"]) + np.asarray(s["min"])
        return (numeric_matrix - np.asarray(s["center"])) / np.asarray(s["scale"])

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Turn a table into features with the statistics learned at fit.

        Args:
            frame: Rows to transform; columns not used by the preprocessor are ignored.

        Returns:
            (n, n_features_out_) float32 matrix, columns named by `feature_names_out_`.

        Raises:
            NotFittedError: before `fit` (or `load`).
            MedDLError: when required columns are absent or a numeric column holds text.
        """
        self._check_is_fitted()
        frame = self._check_frame(frame, self.input_columns_, "transform")
        return self._assemble(self._encode(frame), len(frame))

    def transform_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """`transform` for a few records given as mappings (e.g. parsed JSON), without building a DataFrame.

        The result is exactly ``transform(pd.DataFrame.from_records(records, columns=input_columns_))`` (a key
        absent from a record counts as missing). Cells of the plain JSON types (None, bool, int, float, str) are
        coded directly; a record holding anything the direct coding cannot reproduce bit for bit (a non-blank
        string in a numeric column, a boolean in a numeric column, an infinite number, an integer beyond 2**53,
        a string that is not one of a numeric binary column's levels as written, another type) goes through
        the DataFrame path instead, so errors and coercions stay those of `transform`.

        Args:
            records: One mapping per row, keyed by input column name; other keys are ignored.

        Returns:
            (len(records), n_features_out_) float32 matrix, columns named by `feature_names_out_`.

        Raises:
            NotFittedError: before `fit` (or `load`).
            MedDLError: as `transform` (via the DataFrame path) for values it rejects.
        """
        self._check_is_fitted()
        encoded = self._encode_records(records)
        if encoded is None:
            frame = pd.DataFrame.from_records(list(records), columns=self.input_columns_)
            frame.index = pd.RangeIndex(len(frame))
            return self.transform(frame)
        return self._assemble(encoded, len(records))

    def _encode_records(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        """`_encode` of records, cell by cell; None when a cell needs the DataFrame path (see `transform_records`)."""
        n = len(records)
        numeric = self._config["numeric"]
        binary = self._config["binary"]
        categorical = self._config["categorical"]
        numeric_matrix = np.empty((n, len(numeric)), dtype="float64")  # (n, n_numeric)
        binary_matrix = np.full((n, len(binary)), np.nan)  # (n, n_binary)
        binary_missing = np.zeros((n, len(binary)), dtype=bool)
        category_codes = {c: np.full(n, -1, dtype="int64") for c in categorical}
        category_absent = {c: np.zeros(n, dtype=bool) for c in categorical}
        binary_specs = [self.binary_levels_[c] for c in binary]
        binary_labels = [{_level_label(level): level for level in spec["levels"]} for spec in binary_specs]
        category_index = [
            {c: i for i, c in enumerate(self.categories_[column]["categories"])} for column in categorical
        ]
        for i, record in enumerate(records):
            for j, column in enumerate(numeric):
                value = record.get(column)
                if value is None or (type(value) is str and value.strip() == ""):
                    numeric_matrix[i, j] = np.nan
                elif type(value) is float and not math.isinf(value):
                    numeric_matrix[i, j] = value  # NaN stays NaN: missing
                elif type(value) is int and abs(value) <= _EXACT_INT:
                    numeric_matrix[i, j] = float(value)
                else:
                    return None
            for j, spec in enumerate(binary_specs):
                key = _record_binary_key(record.get(binary[j]), spec["kind"], binary_labels[j])
                if key is _NEEDS_FRAME:
                    return None
                if key is None:
                    binary_missing[i, j] = True
                    continue
                levels = spec["levels"]
                if key == levels[0] and type(key) is type(levels[0]):
                    binary_matrix[i, j] = 0.0
                elif key == levels[1] and type(key) is type(levels[1]):
                    binary_matrix[i, j] = 1.0
                else:
                    binary_matrix[i, j] = self._binary_codes([key], levels)[0]
            for j, column in enumerate(categorical):
                label = _record_label(record.get(column))
                if label is _NEEDS_FRAME:
                    return None
                if label is None:
                    category_absent[column][i] = True
                else:
                    category_codes[column][i] = category_index[j].get(label, -1)
        return {
            "numeric": numeric_matrix,
            "binary": binary_matrix,
            "binary_missing": binary_missing,
            "binary_unseen": np.isnan(binary_matrix) & ~binary_missing,
            "categorical": {
                c: (category_codes[c], category_absent[c], (category_codes[c] < 0) & ~category_absent[c])
                for c in categorical
            },
        }

    def _assemble(self, encoded: dict[str, Any], n: int) -> np.ndarray:
        """Impute, scale, one-hot encode and append indicators to encoded columns (see `_encode`)."""
        missing = self._config["missing"]
        numeric_matrix: np.ndarray = encoded["numeric"]
        binary_matrix: np.ndarray = encoded["binary"]
        numeric_missing = np.isnan(numeric_matrix)
        binary_imputed = np.isnan(binary_matrix)  # missing, or neither training level

        if missing in _SIMPLE_STRATEGIES:
            if self.numeric_fill_ is not None:
                numeric_matrix = np.where(numeric_missing, np.asarray(self.numeric_fill_), numeric_matrix)
        elif missing in _JOINT_STRATEGIES and n and numeric_matrix.shape[1] + binary_matrix.shape[1]:
            imputed = self._impute_joint(np.hstack([numeric_matrix, binary_matrix]))
            n_numeric = numeric_matrix.shape[1]
            numeric_matrix, binary_matrix = imputed[:, :n_numeric], imputed[:, n_numeric:]
        if missing in _SIMPLE_STRATEGIES:
            for j, column in enumerate(self._config["binary"]):
                fill = self.binary_levels_[column]["fill"]
                binary_matrix[binary_imputed[:, j], j] = float(fill)

        parts: list[np.ndarray] = [self._scale(numeric_matrix), binary_matrix]
        for column in self._config["categorical"]:
            codes, absent, _ = encoded["categorical"][column]
            spec = self.categories_[column]
            one_hot = np.zeros((n, len(spec["categories"])), dtype="float64")  # (n, n_categories)
            if spec["fill"] is not None:
                codes = np.where(absent, spec["categories"].index(spec["fill"]), codes)
            known = codes >= 0
            one_hot[np.flatnonzero(known), codes[known]] = 1.0
            if missing == "drop":
                one_hot[absent, :] = np.nan  # missing passes through as NaN, like the numeric columns
            parts.append(one_hot)

        if self.indicator_columns_:
            masks: dict[str, np.ndarray] = {}
            for j, column in enumerate(self._config["numeric"]):
                masks[column] = numeric_missing[:, j]
            for j, column in enumerate(self._config["binary"]):
                masks[column] = binary_imputed[:, j]
            for column in self._config["categorical"]:
                masks[column] = encoded["categorical"][column][1]
            indicators = np.column_stack([masks[c] for c in self.indicator_columns_]).astype("float64")
            parts.append(indicators)
        return np.hstack(parts).astype(np.float32) if parts else np.zeros((n, 0), dtype=np.float32)

    def fit_transform(self, frame: pd.DataFrame, y: Any = None) -> np.ndarray:
        """Fit on `frame` and transform it.

        Args:
            frame: The training rows.
            y: Ignored.

        Returns:
            (n, n_features_out_) float32 matrix.
        """
        return self.fit(frame).transform(frame)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output feature names, as scikit-learn transformers expose them.

        Args:
            input_features: Ignored.

        Returns:
            Object array of `feature_names_out_`.
        """
        self._check_is_fitted()
        return np.asarray(self.feature_names_out_, dtype=object)

    def count_unseen(self, frame: pd.DataFrame) -> dict[str, int]:
        """Count values of binary and categorical columns that were never seen in training.

        Unseen categorical values become all-zero one-hot rows; unseen binary values are imputed as
        missing. The counts let a caller report them instead of letting them pass silently.

        Args:
            frame: Rows to check.

        Returns:
            ``{column: number of non-missing values not among the training levels}`` for every binary
            and categorical column.
        """
        self._check_is_fitted()
        frame = self._check_frame(frame, self.input_columns_, "count_unseen")
        counts: dict[str, int] = {}
        for column in self._config["binary"]:
            spec = self.binary_levels_[column]
            keys = _binary_keys(frame[column], spec["kind"])
            codes = self._binary_codes(keys, spec["levels"])
            counts[column] = int(sum(1 for k, c in zip(keys, codes, strict=True) if k is not None and np.isnan(c)))
        for column in self._config["categorical"]:
            series = frame[column]
            absent = _missing_mask(series)
            known = set(self.categories_[column]["categories"])
            counts[column] = sum(
                1
                for v, a in zip(series.to_numpy(dtype=object), absent, strict=True)
                if not a and _level_label(v) not in known
            )
        return counts

    # ------------------------------------------------------------------ state

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The learned state as a JSON-serialisable dict plus NumPy arrays (no pickle).

        Returns:
            ``(state, arrays)``; ``state["version"]`` is `STATE_VERSION`; ``arrays`` is empty unless
            ``missing`` is ``"knn"`` (the training block) or ``"iterative"`` (the imputation sequence).
        """
        self._check_is_fitted()
        arrays = {name: np.array(value, copy=True) for name, value in self._arrays.items()}
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "kind": "TabularPreprocessor",
            "config": dict(self._config),
            "input_columns": list(self.input_columns_),
            "feature_names_out": list(self.feature_names_out_),
            "source_columns": list(self.source_columns_),
            "numeric_fill": None if self.numeric_fill_ is None else list(self.numeric_fill_),
            "scaler": {k: list(v) for k, v in self.scaler_.items()},
            "binary": {c: dict(v, levels=list(v["levels"])) for c, v in self.binary_levels_.items()},
            "categorical": {
                c: {"categories": list(v["categories"]), "fill": v["fill"]} for c, v in self.categories_.items()
            },
            "indicator_columns": list(self.indicator_columns_),
            "iterative_n_iter": self.iterative_n_iter_,
            "arrays": sorted(arrays),
            "column_profile": json.loads(json.dumps(self.column_profile_)),
        }
        return state, arrays

    @classmethod
    def from_state(cls, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> TabularPreprocessor:
        """Rebuild a fitted preprocessor from `get_state` output.

        Args:
            state: The JSON part.
            arrays: The array part (may be empty).

        Returns:
            A fitted preprocessor whose `transform` equals the original's.

        Raises:
            MedDLError: when the state is malformed, of another version or inconsistent with the arrays.
        """
        if not isinstance(state, Mapping):
            raise MedDLError(f"preprocess state must be a JSON object; got {type(state).__name__}")
        version = state.get("version")
        if version != STATE_VERSION:
            raise MedDLError(f"preprocess state has version {version!r}; this MedDL reads version {STATE_VERSION}")
        absent = [k for k in _STATE_KEYS if k not in state]
        if absent:
            raise MedDLError("preprocess state is missing key(s): " + ", ".join(repr(k) for k in absent))
        if state["kind"] != "TabularPreprocessor":
            raise MedDLError(f"preprocess state has kind {state['kind']!r}; expected 'TabularPreprocessor'")
        config = state["config"]
        if not isinstance(config, Mapping):
            raise MedDLError("preprocess state: 'config' must be a JSON object")
        known = set(cls().get_params())
        unknown = sorted(set(config) - known)
        lacking = sorted(known - set(config))
        if lacking:
            raise MedDLError("preprocess state: config is missing key(s): " + ", ".join(repr(k) for k in lacking))
        if unknown:
            raise MedDLError("preprocess state: unknown config key(s): " + ", ".join(repr(k) for k in unknown))
        prep = cls(**config)
        checked = prep._validated_config()
        try:
            cls._restore(prep, state, arrays, checked)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise MedDLError(f"preprocess state is malformed: {error!r}") from error
        return prep

    @staticmethod
    def _restore(
        prep: TabularPreprocessor,
        state: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray],
        config: dict[str, Any],
    ) -> None:
        """Set the learned attributes of `prep` from a state, checking that the pieces agree."""
        numeric, binary, categorical = config["numeric"], config["binary"], config["categorical"]
        input_columns = [*numeric, *binary, *categorical]
        if list(state["input_columns"]) != input_columns:
            raise ValueError("'input_columns' does not match config")
        missing = config["missing"]
        numeric_fill = state["numeric_fill"]
        if missing in _SIMPLE_STRATEGIES and numeric:
            if numeric_fill is None or len(numeric_fill) != len(numeric):
                raise ValueError("'numeric_fill' needs one value per numeric column")
            numeric_fill = [float(v) for v in numeric_fill]
        scaler = {str(k): [float(x) for x in v] for k, v in dict(state["scaler"]).items()}
        expected_scaler = {
            "standard": {"mean", "scale"},
            "minmax": {"scale", "min"},
            "robust": {"center", "scale"},
            "none": set(),
        }[config["scale"]]
        if numeric and (set(scaler) != expected_scaler or any(len(v) != len(numeric) for v in scaler.values())):
            raise ValueError(f"'scaler' must hold {sorted(expected_scaler)} with one value per numeric column")
        binary_levels = {str(c): dict(v) for c, v in dict(state["binary"]).items()}
        if sorted(binary_levels) != sorted(binary):
            raise ValueError("'binary' does not match config")
        for spec in binary_levels.values():
            if spec["kind"] not in ("bool", "numeric", "string") or len(spec["levels"]) != 2:
                raise ValueError("each binary column needs a kind and 2 levels")
            if spec["kind"] == "bool":
                spec["levels"] = [bool(v) for v in spec["levels"]]
            elif spec["kind"] == "numeric":
                spec["levels"] = [float(v) for v in spec["levels"]]
            if missing in _SIMPLE_STRATEGIES and spec["fill"] not in (0, 1):
                raise ValueError("each binary column needs a fill of 0 or 1")
        categories = {str(c): dict(v) for c, v in dict(state["categorical"]).items()}
        if sorted(categories) != sorted(categorical):
            raise ValueError("'categorical' does not match config")
        for spec in categories.values():
            spec["categories"] = [str(v) for v in spec["categories"]]
            if missing != "drop" and spec["fill"] not in spec["categories"]:
                raise ValueError("each categorical fill must be one of its categories")
        indicator_columns = [str(c) for c in state["indicator_columns"]]
        if not set(indicator_columns) <= set(input_columns):
            raise ValueError("'indicator_columns' names unknown columns")
        names = [str(c) for c in state["feature_names_out"]]
        sources = [str(c) for c in state["source_columns"]]
        n_out = len(numeric) + len(binary) + sum(len(s["categories"]) for s in categories.values())
        n_out += len(indicator_columns)
        if len(names) != n_out or len(sources) != n_out:
            raise ValueError("'feature_names_out' / 'source_columns' do not match the encoders")

        listed = sorted(state["arrays"])
        if sorted(arrays) != listed:
            raise ValueError(f"arrays {sorted(arrays)} do not match the listed {listed}")
        n_joint = len(numeric) + len(binary)
        own_arrays = {name: np.asarray(arrays[name]) for name in listed}
        if missing == "knn" and n_joint:
            fit_x = own_arrays.get("knn_fit_X")
            if fit_x is None or fit_x.ndim != 2 or fit_x.shape[1] != n_joint:
                raise ValueError(f"'knn_fit_X' must be a (n, {n_joint}) array")
            prep._knn_imputer = KNNImputer(n_neighbors=config["knn_neighbors"]).fit(fit_x)
        if missing == "iterative" and n_joint:
            for name in _ITERATIVE_ARRAYS:
                if name not in own_arrays:
                    raise ValueError(f"array {name!r} is required for missing='iterative'")
            steps = own_arrays["iterative_feat_idx"].shape[0]
            if (
                own_arrays["iterative_initial_statistics"].shape != (n_joint,)
                or own_arrays["iterative_neighbor_feat_idx"].shape != (steps, n_joint - 1)
                or own_arrays["iterative_coef"].shape != (steps, n_joint - 1)
                or own_arrays["iterative_intercept"].shape != (steps,)
            ):
                raise ValueError("iterative imputation arrays have inconsistent shapes")

        prep.input_columns_ = input_columns
        prep.numeric_fill_ = numeric_fill if missing in _SIMPLE_STRATEGIES and numeric else None
        prep.scaler_ = scaler
        prep.binary_levels_ = binary_levels
        prep.categories_ = categories
        prep.indicator_columns_ = indicator_columns
        prep.iterative_n_iter_ = state["iterative_n_iter"]
        prep.column_profile_ = dict(state["column_profile"])
        prep.feature_names_out_ = names
        prep.source_columns_ = sources
        prep.n_features_out_ = n_out
        prep._arrays = own_arrays
        prep._config = config

    def save(self, directory: Path | str) -> list[Path]:
        """Write the state to ``directory/preprocess.json`` (+ ``preprocess.npz`` when there are arrays).

        Args:
            directory: Folder to write into (created if needed), e.g. a bundle folder.

        Returns:
            The files written.
        """
        state, arrays = self.get_state()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state_path = directory / STATE_FILE
        state_path.write_text(json.dumps(state, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        written = [state_path]
        if arrays:
            arrays_path = directory / ARRAYS_FILE
            np.savez(arrays_path, **arrays)  # type: ignore[arg-type]
            written.append(arrays_path)
        return written

    @classmethod
    def load(cls, directory: Path | str) -> TabularPreprocessor:
        """Read a preprocessor written by `save`.

        Args:
            directory: The folder holding ``preprocess.json`` (and ``preprocess.npz`` if it was written).

        Returns:
            The fitted preprocessor.

        Raises:
            MedDLError: naming the file, when a file is absent, not valid JSON / NPZ, or inconsistent.
        """
        directory = Path(directory)
        state_path = directory / STATE_FILE
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise MedDLError(f"{state_path}: file not found") from error
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise MedDLError(f"{state_path}: not a valid preprocess state ({error})") from error
        arrays: dict[str, np.ndarray] = {}
        needs_arrays = isinstance(state, dict) and bool(state.get("arrays"))
        if needs_arrays:
            arrays_path = directory / ARRAYS_FILE
            try:
                with np.load(arrays_path, allow_pickle=False) as archive:
                    arrays = {name: archive[name] for name in archive.files}
            except FileNotFoundError as error:
                raise MedDLError(f"{arrays_path}: file not found (listed in {state_path.name})") from error
            except (OSError, ValueError) as error:
                raise MedDLError(f"{arrays_path}: not a valid NumPy archive without pickle ({error})") from error
        try:
            return cls.from_state(state, arrays)
        except MedDLError as error:
            raise MedDLError(f"{state_path}: {error}") from error

"""Preprocessing of clinical tables: coercion, imputation, scaling, binary and one-hot encoding.

`TabularPreprocessor` is fitted on the training split only and then applied, unchanged, to validation,
test and external data. It is a thin composition of small steps, each fitted on the output of the one
before and each with its own JSON state (see `meddl.preprocess._state`):

1. numeric coercion (`meddl.preprocess._cells.coerce_numeric`), `BinaryEncoder` (0/1 codes) and
   `CategoricalEncoder` (category codes) turn the table into one coded float matrix, NaN for missing;
2. `MissingIndicators` flags the columns that had a missing value in training;
3. `Imputer` fills missing cells (`SimpleImputer`, `KNNImputer` or `IterativeImputer` statistics);
4. `NumericScaler` scales the numeric columns (`StandardScaler`, `MinMaxScaler` or `RobustScaler`);
5. `CategoricalEncoder.one_hot` expands the category codes.

Resampling of the training split (`meddl.preprocess.imbalance.resample`) comes after, on the features.
The whole state is written as ``preprocess.json`` + ``preprocess.npz`` (never pickle) and re-applied
exactly after loading.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from meddl.errors import MedDLError
from meddl.preprocess._cells import NEEDS_FRAME, coerce_numeric, level_label, record_number
from meddl.preprocess._checks import check_choice, check_columns, check_int
from meddl.preprocess._state import ARRAYS_KEY, join_arrays, read_state, split_arrays, write_state
from meddl.preprocess._tabular_state import ARRAYS_FILE, STATE_FILE, STATE_VERSION, check_header, restore_steps
from meddl.preprocess.encode import BinaryEncoder, CategoricalEncoder
from meddl.preprocess.impute import MISSING_STRATEGIES, Imputer, replay_iterative
from meddl.preprocess.indicators import MissingIndicators
from meddl.preprocess.profile import level_profile, numeric_profile
from meddl.preprocess.scale import SCALERS, NumericScaler

__all__ = ["MISSING_STRATEGIES", "SCALERS", "STATE_VERSION", "TabularPreprocessor"]

_replay_iterative = replay_iterative  # its former name, still imported by callers

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_float32(
    values: np.ndarray, columns: Sequence[str], rows: Sequence[Any], raw: np.ndarray | None = None
) -> None:
    """Refuse a finite number the float32 feature matrix cannot hold: the cast would make it infinite and its row
    would then read as missing. ``values`` are (n, n_numeric) raw numbers, or their scaled features with the raw
    numbers in ``raw`` (shown in the message)."""
    too_large = np.isfinite(values) & (np.abs(values) > _FLOAT32_MAX)
    if too_large.any():
        i, j = (int(k) for k in np.argwhere(too_large)[0])
        shown = values if raw is None else raw
        what = "value(s)" if raw is None else "value(s) scaled"
        raise MedDLError(
            f"column '{columns[j]}' has {int(too_large[:, j].sum())} {what} beyond ±3.4e38 (the float32 range of "
            f"the model's inputs), e.g. {shown[i, j]:g} (row {rows[i]}); check the value and its unit"
        )


class TabularPreprocessor(BaseEstimator):
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
        binary_encoder_: The fitted `BinaryEncoder`.
        category_encoder_: The fitted `CategoricalEncoder`.
        imputer_: The fitted `Imputer`.
        numeric_scaler_: The fitted `NumericScaler`.
        missing_indicator_: The fitted `MissingIndicators`, None when no indicator is added.
        numeric_fill_: Fill value of each numeric column (mean/median/most_frequent), else None.
        scaler_: The scaler's learned vectors (empty dict for ``scale="none"``).
        binary_levels_: Per binary column, its comparison kind, sorted levels and fill code.
        categories_: Per categorical column, its sorted training categories and fill category.
        indicator_columns_: Columns that get a missing-value indicator.
        iterative_n_iter_: Rounds run by ``missing="iterative"``, else None.

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
        numeric = check_columns(self.numeric, "preprocess.numeric")
        binary = check_columns(self.binary, "preprocess.binary")
        categorical = check_columns(self.categorical, "preprocess.categorical")
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
        check_choice(self.missing, MISSING_STRATEGIES, "preprocess.missing")
        check_choice(self.scale, SCALERS, "preprocess.scale")
        if not isinstance(self.missing_indicators, bool | np.bool_):
            raise MedDLError(f"preprocess.missing_indicators must be true or false; got {self.missing_indicators!r}")
        check_int(self.knn_neighbors, 1, "preprocess.knn_neighbors")
        check_int(self.iterative_max_iter, 1, "preprocess.iterative_max_iter")
        check_int(self.random_state, 0, "preprocess.random_state")
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

    @staticmethod
    def _imputer(config: Mapping[str, Any]) -> Imputer:
        return Imputer(
            numeric=config["numeric"],
            binary=config["binary"],
            categorical=config["categorical"],
            strategy=config["missing"],
            knn_neighbors=config["knn_neighbors"],
            iterative_max_iter=config["iterative_max_iter"],
            random_state=config["random_state"],
        )

    # ------------------------------------------------------------------ the steps' views

    @property
    def steps_(self) -> list[tuple[str, Any]]:
        """The fitted steps in the order they are applied, as ``(name, step)`` pairs."""
        steps = [
            ("binary", self.binary_encoder_),
            ("categorical", self.category_encoder_),
            ("indicators", self.missing_indicator_),
            ("impute", self.imputer_),
            ("scale", self.numeric_scaler_),
        ]
        return [(name, step) for name, step in steps if step is not None]

    @property
    def numeric_fill_(self) -> list[float] | None:
        """Fill value of each numeric column (mean/median/most_frequent), else None."""
        return self.imputer_.numeric_fill_

    @property
    def scaler_(self) -> dict[str, list[float]]:
        """The scaler's learned vectors (empty dict for ``scale="none"``)."""
        statistics: dict[str, list[float]] = self.numeric_scaler_.statistics_
        return statistics

    @property
    def binary_levels_(self) -> dict[str, dict[str, Any]]:
        """Per binary column, ``{"kind", "levels", "fill"}`` (a fresh dict: edit the steps, not this)."""
        fills = self.imputer_.binary_fill_
        return {
            column: {"kind": spec["kind"], "levels": list(spec["levels"]), "fill": fill}
            for (column, spec), fill in zip(self.binary_encoder_.levels_.items(), fills, strict=True)
        }

    @property
    def categories_(self) -> dict[str, dict[str, Any]]:
        """Per categorical column, ``{"categories", "fill"}`` (a fresh dict: edit the steps, not this)."""
        fills = self.imputer_.categorical_fill_
        return {
            column: {"categories": list(categories), "fill": None if code is None else categories[code]}
            for (column, categories), code in zip(self.category_encoder_.categories_.items(), fills, strict=True)
        }

    @property
    def indicator_columns_(self) -> list[str]:
        """Columns that get a missing-value indicator."""
        step = self.missing_indicator_
        return [] if step is None else list(step.indicator_columns_)

    @property
    def iterative_n_iter_(self) -> int | None:
        """Rounds run by ``missing="iterative"``, else None."""
        n_iter: int | None = self.imputer_.n_iter_
        return n_iter

    # ------------------------------------------------------------------ fit

    @staticmethod
    def _numbers(frame: pd.DataFrame, columns: Sequence[str], *, fitting: bool = False) -> np.ndarray:
        """Coerce the numeric columns to an (n, n_numeric) float64 matrix, NaN for missing."""
        numbers = np.empty((len(frame), len(columns)), dtype="float64")  # (n, n_numeric)
        for j, column in enumerate(columns):
            numbers[:, j] = coerce_numeric(frame[column], column)
            if fitting and np.isnan(numbers[:, j]).all():
                raise MedDLError(f"column '{column}' has no non-missing values in the training data")
        _check_float32(numbers, columns, frame.index)
        return numbers

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

        numbers = self._numbers(frame, numeric, fitting=True)
        binary_encoder = BinaryEncoder(columns=binary)
        binary_codes = binary_encoder.fit_transform(frame)
        category_encoder = CategoricalEncoder(columns=categorical)
        category_codes = category_encoder.fit_codes(frame)
        block = np.hstack([numbers, binary_codes, category_codes])  # (n, n_columns), NaN = missing

        imputer = self._imputer(config)
        imputed = imputer.fit_transform(block)
        scaler = NumericScaler(method=config["scale"]).fit(imputed[:, : len(numeric)])
        indicators = MissingIndicators(columns=input_columns).fit(block) if config["missing_indicators"] else None

        self.binary_encoder_ = binary_encoder
        self.category_encoder_ = category_encoder
        self.missing_indicator_ = indicators
        self.imputer_ = imputer
        self.numeric_scaler_ = scaler
        self.input_columns_ = input_columns
        self.column_profile_ = self._profile(block, numeric)
        self.feature_names_out_, self.source_columns_ = self._feature_names(numeric, binary)
        self.n_features_out_ = len(self.feature_names_out_)
        self._config = config
        return self

    def _profile(self, block: np.ndarray, numeric: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Training distribution of every column, from the coded training block."""
        profile = {column: numeric_profile(block[:, j]) for j, column in enumerate(numeric)}
        j = len(numeric)
        for column, spec in self.binary_encoder_.levels_.items():
            profile[column] = level_profile(block[:, j], [level_label(v) for v in spec["levels"]])
            j += 1
        for column, categories in self.category_encoder_.categories_.items():
            profile[column] = level_profile(block[:, j], categories)
            j += 1
        return profile

    def _feature_names(self, numeric: Sequence[str], binary: Sequence[str]) -> tuple[list[str], list[str]]:
        """Output feature names and the input column of each."""
        names: list[str] = [*numeric, *binary, *self.category_encoder_.feature_names_out_]
        sources: list[str] = [*numeric, *binary]
        for column, categories in self.category_encoder_.categories_.items():
            sources.extend([column] * len(categories))
        for column in self.indicator_columns_:
            names.append(f"{column}__missing")
            sources.append(column)
        return names, sources

    # ------------------------------------------------------------------ transform

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Turn a table into features with the statistics learned at fit.

        Args:
            frame: Rows to transform; columns not used by the preprocessor are ignored.

        Returns:
            (n, n_features_out_) float32 matrix, columns named by `feature_names_out_`.

        Raises:
            NotFittedError: before `fit` (or `load`).
            MedDLError: when required columns are absent, a numeric column holds text, or a number (or its scaled
                feature) lies beyond the float32 range and would turn infinite.
        """
        self._check_is_fitted()
        frame = self._check_frame(frame, self.input_columns_, "transform")
        numbers = self._numbers(frame, self._config["numeric"])
        block = np.hstack([numbers, self.binary_encoder_.transform(frame), self.category_encoder_.codes(frame)])
        return self._assemble(block, frame.index)

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
        block = self._encode_records(records)
        if block is None:
            frame = pd.DataFrame.from_records(list(records), columns=self.input_columns_)
            frame.index = pd.RangeIndex(len(frame))
            return self.transform(frame)
        return self._assemble(block, range(len(records)))

    def _encode_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray | None:
        """The coded block of records, cell by cell; None when a cell needs the DataFrame path."""
        numeric = self._config["numeric"]
        numbers = np.empty((len(records), len(numeric)), dtype="float64")  # (n, n_numeric)
        for i, record in enumerate(records):
            for j, column in enumerate(numeric):
                value = record_number(record.get(column))
                if value is NEEDS_FRAME:
                    return None
                numbers[i, j] = value
        _check_float32(numbers, numeric, range(len(records)))
        binary_codes = self.binary_encoder_.encode_records(records)
        category_codes = self.category_encoder_.encode_records(records)
        if binary_codes is None or category_codes is None:
            return None
        return np.hstack([numbers, binary_codes, category_codes])

    def _assemble(self, block: np.ndarray, rows: Sequence[Any]) -> np.ndarray:
        """Impute, scale, one-hot encode and append indicators to a coded block (NaN = missing); ``rows`` name
        the block's rows in errors."""
        numeric = self._config["numeric"]
        n_numeric, n_binary = len(numeric), len(self._config["binary"])
        imputed = self.imputer_.transform(block)
        scaled = self.numeric_scaler_.transform(imputed[:, :n_numeric])
        _check_float32(scaled, numeric, rows, raw=block[:, :n_numeric])
        parts = [
            scaled,
            imputed[:, n_numeric : n_numeric + n_binary],
            self.category_encoder_.one_hot(imputed[:, n_numeric + n_binary :]),
        ]
        if self.missing_indicator_ is not None:
            parts.append(self.missing_indicator_.transform(block))
        return np.hstack(parts).astype(np.float32)

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
        return {**self.binary_encoder_.count_unseen(frame), **self.category_encoder_.count_unseen(frame)}

    # ------------------------------------------------------------------ state

    def to_state(self) -> dict[str, Any]:
        """The learned state in the layout of ``preprocess.json``, its arrays under ``"arrays"``.

        Returns:
            A JSON-able dict (``state["version"]`` is `STATE_VERSION`) except for ``state["arrays"]``,
            ``{name: ndarray}``: empty unless ``missing`` is ``"knn"`` (the training block) or
            ``"iterative"`` (the imputation sequence).
        """
        self._check_is_fitted()
        imputer = self.imputer_.to_state()
        return {
            "version": STATE_VERSION,
            "kind": "TabularPreprocessor",
            "config": dict(self._config),
            "input_columns": list(self.input_columns_),
            "feature_names_out": list(self.feature_names_out_),
            "source_columns": list(self.source_columns_),
            "numeric_fill": imputer["numeric_fill"],
            "scaler": self.numeric_scaler_.to_state()["statistics"],
            "binary": self.binary_levels_,
            "categorical": self.categories_,
            "indicator_columns": self.indicator_columns_,
            "iterative_n_iter": imputer["n_iter"],
            ARRAYS_KEY: imputer[ARRAYS_KEY],
            "column_profile": json.loads(json.dumps(self.column_profile_)),
        }

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The learned state as a JSON-serialisable dict plus NumPy arrays (no pickle).

        Returns:
            ``(state, arrays)``: `to_state` with ``state["arrays"]`` the sorted names of ``arrays``.
        """
        return split_arrays(self.to_state())

    @classmethod
    def from_state(cls, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None) -> Self:
        """Rebuild a fitted preprocessor from `get_state` (or `to_state`) output.

        Args:
            state: The JSON part; or, with `arrays` left out, `to_state` output (arrays inside).
            arrays: The array part (may be empty).

        Returns:
            A fitted preprocessor whose `transform` equals the original's.

        Raises:
            MedDLError: when the state is malformed, of another version or inconsistent with the arrays.
        """
        prep = cls(**check_header(state, cls().get_params()))
        config = prep._validated_config()
        try:
            if arrays is not None or not isinstance(state[ARRAYS_KEY], Mapping):
                state = join_arrays(state, arrays or {})
            steps = restore_steps(state, config)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise MedDLError(f"preprocess state is malformed: {error!r}") from error
        except MedDLError as error:
            raise MedDLError(f"preprocess state is malformed: {error}") from error
        prep.binary_encoder_ = steps.binary_encoder
        prep.category_encoder_ = steps.category_encoder
        prep.missing_indicator_ = steps.missing_indicator
        prep.imputer_ = steps.imputer
        prep.numeric_scaler_ = steps.numeric_scaler
        prep.input_columns_ = [*config["numeric"], *config["binary"], *config["categorical"]]
        prep.column_profile_ = steps.column_profile
        prep.feature_names_out_ = steps.feature_names_out
        prep.source_columns_ = steps.source_columns
        prep.n_features_out_ = len(steps.feature_names_out)
        prep._config = config
        return prep

    def save(self, directory: Path | str) -> list[Path]:
        """Write the state to ``directory/preprocess.json`` (+ ``preprocess.npz`` when there are arrays).

        Args:
            directory: Folder to write into (created if needed), e.g. a bundle folder.

        Returns:
            The files written.
        """
        state, arrays = self.get_state()
        return write_state(directory, state, arrays, state_file=STATE_FILE, arrays_file=ARRAYS_FILE)

    @classmethod
    def load(cls, directory: Path | str) -> Self:
        """Read a preprocessor written by `save`.

        Args:
            directory: The folder holding ``preprocess.json`` (and ``preprocess.npz`` if it was written).

        Returns:
            The fitted preprocessor.

        Raises:
            MedDLError: naming the file, when a file is absent, not valid JSON / NPZ, or inconsistent.
        """
        state, arrays = read_state(directory, state_file=STATE_FILE, arrays_file=ARRAYS_FILE)
        try:
            return cls.from_state(state, arrays)
        except MedDLError as error:
            raise MedDLError(f"{Path(directory) / STATE_FILE}: {error}") from error

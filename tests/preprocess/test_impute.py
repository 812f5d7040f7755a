"""Tests of meddl.preprocess.impute.Imputer against the scikit-learn imputers."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.linear_model import BayesianRidge

from meddl.errors import MedDLError
from meddl.preprocess import Imputer
from meddl.preprocess._state import join_arrays, split_arrays
from meddl.preprocess.impute import MISSING_STRATEGIES

COLUMNS = {"numeric": ["age", "crp"], "binary": ["sex"], "categorical": ["site"]}


def coded_block(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """(n, 4) coded table: two numeric columns, a 0/1 column and category codes 0..2, ~20 % NaN."""
    rng = np.random.default_rng(seed)
    block = np.column_stack(
        [
            rng.normal(60 + shift, 12, n),
            rng.gamma(2.0, 4.0, n) + shift,
            rng.integers(0, 2, n).astype(float),
            rng.choice([0.0, 1.0, 2.0], n, p=[0.2, 0.5, 0.3]),
        ]
    )
    block[rng.random(block.shape) < 0.2] = np.nan
    return block


@pytest.fixture(scope="module")
def train() -> np.ndarray:
    return coded_block(80, seed=1)


@pytest.fixture(scope="module")
def test() -> np.ndarray:
    block = coded_block(30, seed=2, shift=25.0)
    block[0, 3] = -1.0  # an unseen category
    return block


def modes(block: np.ndarray) -> list[float]:
    return [float(SimpleImputer(strategy="most_frequent").fit(block[:, [j]]).statistics_[0]) for j in (2, 3)]


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent"])
def test_simple_strategies_fill_with_training_statistics(train: np.ndarray, test: np.ndarray, strategy: str) -> None:
    imputer = Imputer(**COLUMNS, strategy=strategy).fit(train)
    reference = SimpleImputer(strategy=strategy).fit(train[:, :2])
    np.testing.assert_array_equal(imputer.numeric_fill_, reference.statistics_)
    assert imputer.numeric_fill_ != SimpleImputer(strategy=strategy).fit(test[:, :2]).statistics_.tolist()
    binary_mode, site_mode = modes(train)
    assert imputer.binary_fill_ == [int(binary_mode)] and imputer.categorical_fill_ == [int(site_mode)]
    out = imputer.transform(test)
    np.testing.assert_array_equal(out[:, :2], reference.transform(test[:, :2]))
    np.testing.assert_array_equal(out[:, 2], np.where(np.isnan(test[:, 2]), binary_mode, test[:, 2]))
    assert out[0, 3] == -1.0  # an unseen category is not a missing one
    np.testing.assert_array_equal(out[1:, 3], np.where(np.isnan(test[1:, 3]), site_mode, test[1:, 3]))


def test_drop_fills_nothing(train: np.ndarray, test: np.ndarray) -> None:
    imputer = Imputer(**COLUMNS, strategy="drop").fit(train)
    assert imputer.numeric_fill_ is None and imputer.binary_fill_ == [None] and imputer.categorical_fill_ == [None]
    np.testing.assert_array_equal(imputer.transform(test), test)


def test_knn_imputes_numeric_and_binary_jointly_like_sklearn(train: np.ndarray, test: np.ndarray) -> None:
    imputer = Imputer(**COLUMNS, strategy="knn", knn_neighbors=3).fit(train)
    reference = KNNImputer(n_neighbors=3).fit(train[:, :3])
    out = imputer.transform(test)
    np.testing.assert_array_equal(out[:, :3], reference.transform(test[:, :3]))
    np.testing.assert_array_equal(imputer.arrays_["knn_fit_X"], train[:, :3])  # the training rows, not the test


def test_iterative_replays_sklearn_transform(train: np.ndarray, test: np.ndarray) -> None:
    imputer = Imputer(**COLUMNS, strategy="iterative", iterative_max_iter=5).fit(train)
    reference = IterativeImputer(
        estimator=BayesianRidge(),
        max_iter=5,
        random_state=0,
        min_value=[-np.inf, -np.inf, 0.0],
        max_value=[np.inf, np.inf, 1.0],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference.fit(train[:, :3])
    assert imputer.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(imputer.transform(test)[:, :3], reference.transform(test[:, :3]), rtol=0, atol=1e-9)


@pytest.mark.parametrize("strategy", ["knn", "iterative"])
def test_joint_fit_output_keeps_sklearn_memory_order(train: np.ndarray, strategy: str) -> None:
    # The scaler fitted next sums columns; its last bits depend on the memory order, kept as scikit-learn's.
    out = Imputer(**COLUMNS, strategy=strategy).fit_transform(train)
    assert out.flags.f_contiguous and not np.isnan(out).any()


@pytest.mark.parametrize("strategy", MISSING_STRATEGIES)
def test_state_round_trip_through_json_and_npz_arrays(train: np.ndarray, test: np.ndarray, strategy: str) -> None:
    imputer = Imputer(**COLUMNS, strategy=strategy, knn_neighbors=3).fit(train)
    state, arrays = split_arrays(imputer.to_state())
    assert sorted(arrays) == state["arrays"] and (bool(arrays) == (strategy in ("knn", "iterative")))
    again = Imputer.from_state(join_arrays(json.loads(json.dumps(state, allow_nan=False)), arrays))
    np.testing.assert_array_equal(again.transform(test), imputer.transform(test))


def test_transform_before_fit_and_bad_input_are_clear_errors(train: np.ndarray) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        Imputer(**COLUMNS).transform(train)
    with pytest.raises(MedDLError, match="'zero'"):
        Imputer(**COLUMNS, strategy="zero").fit(train)
    with pytest.raises(MedDLError, match=r"expects a \(n, 4\) matrix"):
        Imputer(**COLUMNS).fit(train[:, :3])
    empty = train.copy()
    empty[:, 1] = np.nan
    with pytest.raises(MedDLError, match="column 'crp' has no observed value"):
        Imputer(**COLUMNS).fit(empty)


def test_from_state_rejects_inconsistent_fills_and_arrays(train: np.ndarray) -> None:
    state = Imputer(**COLUMNS, strategy="median").fit(train).to_state()
    with pytest.raises(MedDLError, match="fill of 0 or 1"):
        Imputer.from_state({**state, "binary_fill": [3]})
    with pytest.raises(MedDLError, match="one value per numeric column"):
        Imputer.from_state({**state, "numeric_fill": [1.0]})
    iterative = Imputer(**COLUMNS, strategy="iterative").fit(train).to_state()
    del iterative["arrays"]["iterative_coef"]
    with pytest.raises(MedDLError, match="'iterative_coef' is required"):
        Imputer.from_state(iterative)

"""Tests of meddl.preprocess.scale.NumericScaler against the scikit-learn scalers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from meddl.errors import MedDLError
from meddl.preprocess import NumericScaler
from meddl.preprocess.scale import SCALERS

REFERENCE = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}


@pytest.fixture(scope="module")
def split() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    train = rng.normal([60.0, 5.0, 120.0], [12.0, 2.0, 15.0], (50, 3))
    test = rng.normal([70.0, 9.0, 100.0], [20.0, 4.0, 30.0], (20, 3))  # shifted: its own statistics differ
    test[3, 1] = np.nan
    return train, test


@pytest.mark.parametrize("method", ["standard", "minmax", "robust"])
def test_statistics_come_from_train_and_match_sklearn(split: tuple[np.ndarray, np.ndarray], method: str) -> None:
    train, test = split
    scaler = NumericScaler(method=method).fit(train)
    reference = REFERENCE[method]().fit(train)
    out = scaler.transform(test)
    np.testing.assert_allclose(out, reference.transform(test), rtol=1e-12, atol=1e-12)
    assert np.isnan(out[3, 1]) and np.isfinite(np.delete(out, 3, axis=0)).all()  # NaN passes through
    refitted = REFERENCE[method]().fit(test)
    assert not np.allclose(out, refitted.transform(test), equal_nan=True)  # test data never leaks into fit


def test_none_and_no_columns_learn_nothing(split: tuple[np.ndarray, np.ndarray]) -> None:
    train, test = split
    identity = NumericScaler(method="none").fit(train)
    assert identity.statistics_ == {}
    np.testing.assert_array_equal(identity.transform(test), test)
    empty = NumericScaler().fit(np.zeros((4, 0)))
    assert empty.statistics_ == {} and empty.transform(np.zeros((2, 0))).shape == (2, 0)


@pytest.mark.parametrize("method", SCALERS)
def test_state_round_trip_gives_identical_output(split: tuple[np.ndarray, np.ndarray], method: str) -> None:
    train, test = split
    scaler = NumericScaler(method=method).fit(train)
    again = NumericScaler.from_state(json.loads(json.dumps(scaler.to_state(), allow_nan=False)))
    assert again.statistics_ == scaler.statistics_
    np.testing.assert_array_equal(again.transform(test), scaler.transform(test))


def test_transform_before_fit_and_bad_input_are_clear_errors(split: tuple[np.ndarray, np.ndarray]) -> None:
    train, _ = split
    with pytest.raises(NotFittedError, match="not fitted"):
        NumericScaler().transform(train)
    with pytest.raises(MedDLError, match="'log'"):
        NumericScaler(method="log").fit(train)
    with pytest.raises(MedDLError, match="fitted on 3 columns; got 2"):
        NumericScaler().fit(train).transform(train[:, :2])


def test_from_state_rejects_vectors_of_another_method(split: tuple[np.ndarray, np.ndarray]) -> None:
    state = NumericScaler(method="standard").fit(split[0]).to_state()
    with pytest.raises(MedDLError, match=r"must hold \['center', 'scale'\]"):
        NumericScaler.from_state({**state, "method": "robust"})
    with pytest.raises(MedDLError, match="one value per column"):
        NumericScaler.from_state({**state, "statistics": {"mean": [0.0], "scale": [1.0]}})

"""Tests of meddl.preprocess.indicators.MissingIndicators against scikit-learn's MissingIndicator."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.impute import MissingIndicator

from meddl.errors import MedDLError
from meddl.preprocess import MissingIndicators

COLUMNS = ["age", "crp", "sex", "site"]


@pytest.fixture(scope="module")
def split() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    train = rng.normal(size=(40, 4))
    train[rng.random((40, 4)) < 0.2] = np.nan
    train[:, 1] = 1.0  # 'crp' is complete in training: no indicator, even if test rows miss it
    test = rng.normal(size=(15, 4))
    test[rng.random((15, 4)) < 0.3] = np.nan
    test[0, 1] = np.nan
    return train, test


def test_flags_only_columns_missing_in_train_like_sklearn(split: tuple[np.ndarray, np.ndarray]) -> None:
    train, test = split
    step = MissingIndicators(columns=COLUMNS).fit(train)
    reference = MissingIndicator(features="missing-only", error_on_new=False).fit(train)
    assert step.features_ == reference.features_.tolist()
    assert step.indicator_columns_ == ["age", "sex", "site"]
    out = step.transform(test)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, reference.transform(test))


def test_state_round_trip_and_fitted_check(split: tuple[np.ndarray, np.ndarray]) -> None:
    train, test = split
    with pytest.raises(NotFittedError, match="not fitted"):
        MissingIndicators(columns=COLUMNS).transform(test)
    step = MissingIndicators(columns=COLUMNS).fit(train)
    again = MissingIndicators.from_state(json.loads(json.dumps(step.to_state())))
    np.testing.assert_array_equal(again.transform(test), step.transform(test))
    with pytest.raises(MedDLError, match="unknown columns"):
        MissingIndicators.from_state({"columns": COLUMNS, "indicator_columns": ["lactate"]})
    with pytest.raises(MedDLError, match=r"expects a \(n, 4\) matrix"):
        step.transform(test[:, :3])

"""Tests of meddl.preprocess.imbalance."""

from __future__ import annotations

import numpy as np
import pytest
from imblearn.over_sampling import SMOTE, RandomOverSampler
from sklearn.utils.class_weight import compute_class_weight

from meddl.errors import MedDLError
from meddl.preprocess import IMBALANCE_METHODS, class_weights, resample


def imbalanced(n_major: int = 60, n_minor: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0, 1, (n_major, 4)), rng.normal(2, 1, (n_minor, 4))]).astype(np.float32)
    y = np.r_[np.zeros(n_major, dtype=np.int64), np.ones(n_minor, dtype=np.int64)]
    return X, y


@pytest.mark.parametrize("method", ["none", "class_weight"])
def test_none_and_class_weight_return_the_inputs(method: str) -> None:
    X, y = imbalanced()
    X_out, y_out = resample(X, y, method)
    assert X_out is X and y_out is y


@pytest.mark.parametrize(("method", "per_class"), [("oversample", 60), ("undersample", 12), ("smote", 60)])
def test_resampling_balances_classes_deterministically(method: str, per_class: int) -> None:
    X, y = imbalanced()
    X_out, y_out = resample(X, y, method, seed=3)
    np.testing.assert_array_equal(np.bincount(y_out), [per_class, per_class])
    assert X_out.shape == (2 * per_class, 4) and X_out.dtype == X.dtype and y_out.dtype == y.dtype
    X_again, y_again = resample(X, y, method, seed=3)
    np.testing.assert_array_equal(X_out, X_again)
    np.testing.assert_array_equal(y_out, y_again)
    X_other, _ = resample(X, y, method, seed=4)
    assert not np.array_equal(X_out, X_other)


def test_resampling_is_the_imblearn_sampler() -> None:
    X, y = imbalanced()
    X_out, y_out = resample(X, y, "oversample", seed=7)
    X_ref, y_ref = RandomOverSampler(random_state=7).fit_resample(X, y)
    np.testing.assert_array_equal(X_out, X_ref)
    np.testing.assert_array_equal(y_out, y_ref)
    X_out, _ = resample(X, y, "smote", seed=7)
    X_ref, _ = SMOTE(k_neighbors=5, random_state=7).fit_resample(X, y)
    np.testing.assert_allclose(X_out, X_ref)


def test_multiclass_smote_balances_every_class() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(45, 3))
    y = np.r_[np.zeros(30, int), np.ones(12, int), np.full(3, 2)]
    _, y_out = resample(X, y, "smote", seed=0)  # k_neighbors = min(5, 3 - 1) = 2
    np.testing.assert_array_equal(np.bincount(y_out), [30, 30, 30])


def test_smote_needs_two_minority_rows() -> None:
    X, y = imbalanced(n_minor=1)
    with pytest.raises(MedDLError, match=r"SMOTE needs at least 2 minority rows in the training split; class 1"):
        resample(X, y, "smote")
    X, y = imbalanced(n_minor=2)
    _, y_out = resample(X, y, "smote")
    np.testing.assert_array_equal(np.bincount(y_out), [60, 60])


def test_smote_rejects_missing_values() -> None:
    X, y = imbalanced()
    X[3, 1] = np.nan
    with pytest.raises(MedDLError, match="1 missing values"):
        resample(X, y, "smote")


def test_invalid_method_and_shapes() -> None:
    X, y = imbalanced()
    with pytest.raises(MedDLError, match=r"preprocess\.imbalance must be one of .*got 'adasyn'"):
        resample(X, y, "adasyn")
    with pytest.raises(MedDLError, match="72 feature rows but 71 labels"):
        resample(X, y[:-1], "oversample")
    with pytest.raises(MedDLError, match="at least 2 classes"):
        resample(X, np.zeros_like(y), "undersample")
    assert set(IMBALANCE_METHODS) == {"none", "class_weight", "oversample", "undersample", "smote"}


def test_class_weights_match_sklearn() -> None:
    y = np.r_[np.zeros(50, int), np.ones(15, int), np.full(5, 2)]
    expected = compute_class_weight("balanced", classes=np.arange(3), y=y)
    np.testing.assert_allclose(class_weights(y, 3), expected)
    np.testing.assert_allclose(class_weights(y.astype(float), 3), expected)


def test_class_weights_reject_absent_and_out_of_range_classes() -> None:
    y = np.r_[np.zeros(5, int), np.full(5, 2)]
    with pytest.raises(MedDLError, match=r"class 1 has no rows"):
        class_weights(y, 3)
    with pytest.raises(MedDLError, match=r"class label 2 is outside 0\.\.1"):
        class_weights(y, 2)

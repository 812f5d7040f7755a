"""Classical baselines: fitting, prediction formats and the task checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from meddl.errors import MedDLError
from meddl.evaluate import (
    BASELINES,
    binary_metrics,
    default_baselines,
    evaluate_predictions,
    fit_baseline,
    predict_baseline,
    regression_metrics,
)
from meddl.evaluate.baselines import LOGISTIC_CS


def _tabular(task: str, n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    signal = X[:, 0] + 0.5 * X[:, 1]
    if task == "binary":
        return X, (signal + 0.5 * rng.normal(size=n) > 0).astype(int)
    if task == "multiclass":
        return X, np.digitize(signal + 0.3 * rng.normal(size=n), [-0.5, 0.5])
    return X, 2.0 * signal + 0.1 * rng.normal(size=n)


def test_default_baselines() -> None:
    assert default_baselines("binary") == ["logistic_regression", "gradient_boosting"]
    assert default_baselines("multiclass") == ["logistic_regression", "gradient_boosting"]
    assert default_baselines("regression") == ["linear_regression", "gradient_boosting"]
    # every baseline a task defaults to exists; the random forest is there for kinds that name it (molecules)
    defaults = set(default_baselines("binary")) | set(default_baselines("regression"))
    assert defaults | {"random_forest"} == set(BASELINES)


@pytest.mark.parametrize("name", ["logistic_regression", "gradient_boosting", "random_forest"])
def test_binary_baselines_learn(name: str) -> None:
    X, y = _tabular("binary")
    estimator = fit_baseline(name, "binary", X[:200], y[:200], seed=0)
    if name == "logistic_regression":
        assert isinstance(estimator, Pipeline)
        assert isinstance(estimator[0], StandardScaler) and isinstance(estimator[-1], LogisticRegression)
    elif name == "random_forest":
        assert isinstance(estimator, RandomForestClassifier) and estimator.n_estimators == 500
    else:
        assert isinstance(estimator, HistGradientBoostingClassifier)
    scores = predict_baseline(estimator, "binary", X[200:])
    assert scores.shape == (100,)
    np.testing.assert_allclose(scores, estimator.predict_proba(X[200:])[:, 1])
    assert binary_metrics(y[200:], scores)["auroc"] > 0.85


@pytest.mark.parametrize("name", ["logistic_regression", "gradient_boosting", "random_forest"])
def test_multiclass_baselines_feed_evaluate_predictions(name: str) -> None:
    X, y = _tabular("multiclass")
    estimator = fit_baseline(name, "multiclass", X[:200], y[:200])
    scores = predict_baseline(estimator, "multiclass", X[200:])
    assert scores.shape == (100, 3)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)
    result = evaluate_predictions("multiclass", y[200:], scores, n_bootstrap=20)
    assert result["metrics"]["auroc_macro"]["value"] > 0.8


def test_multiclass_missing_training_class_is_padded_to_n_classes() -> None:
    X, y = _tabular("multiclass")
    keep = y != 1  # class 1 never seen in training
    estimator = fit_baseline("logistic_regression", "multiclass", X[keep], y[keep])
    scores = predict_baseline(estimator, "multiclass", X, n_classes=3)
    assert scores.shape == (300, 3)
    np.testing.assert_array_equal(scores[:, 1], 0.0)
    np.testing.assert_allclose(scores[:, [0, 2]], estimator.predict_proba(X))


@pytest.mark.parametrize(
    ("name", "expected_type"),
    [
        ("linear_regression", Ridge),
        ("gradient_boosting", HistGradientBoostingRegressor),
        ("random_forest", RandomForestRegressor),
    ],
)
def test_regression_baselines_learn(name: str, expected_type: type) -> None:
    X, y = _tabular("regression")
    estimator = fit_baseline(name, "regression", X[:200], y[:200], seed=1)
    assert isinstance(estimator, expected_type)
    predictions = predict_baseline(estimator, "regression", X[200:])
    assert predictions.shape == (100,)
    assert regression_metrics(y[200:], predictions)["r2"] > 0.8


def test_logistic_regression_does_not_depend_on_feature_units() -> None:
    # k-mer frequencies of a 200-base window are ~1/200 each; an unscaled L2-penalised fit (C = 1) shrank to the
    # class prior and predicted the majority class for every row. Standardised columns make units irrelevant.
    X, y = _tabular("multiclass")
    small = fit_baseline("logistic_regression", "multiclass", X[:200] * 1e-3, y[:200])
    plain = fit_baseline("logistic_regression", "multiclass", X[:200], y[:200])
    predicted = predict_baseline(small, "multiclass", X[200:] * 1e-3)
    np.testing.assert_allclose(predicted, predict_baseline(plain, "multiclass", X[200:]), atol=1e-6)
    assert len(np.unique(predicted.argmax(axis=1))) == 3


def test_logistic_regression_learns_small_imbalanced_frequency_features() -> None:
    # The failure on a 3-class DNA set (52 % one class): features that sum to 1 over 256 columns, most of the
    # mass on one uninformative column (padding), informative columns of ~0.005.
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=600, p=[0.52, 0.24, 0.24])
    counts = rng.poisson(0.2, size=(600, 256)).astype(float)
    counts[:, 0] += 140  # padding windows
    counts[y == 1, 1] += 2  # a class-specific k-mer, twice
    counts[y == 2, 2] += 2
    X = counts / counts.sum(axis=1, keepdims=True)
    estimator = fit_baseline("logistic_regression", "multiclass", X[:400], y[:400])
    predicted = predict_baseline(estimator, "multiclass", X[400:]).argmax(axis=1)
    assert len(np.unique(predicted)) == 3
    recall = [np.mean(predicted[y[400:] == k] == k) for k in range(3)]
    assert np.mean(recall) > 0.7


def test_logistic_regression_chooses_its_penalty_by_cross_validation() -> None:
    X, y = _tabular("binary")
    estimator = fit_baseline("logistic_regression", "binary", X, y, seed=3)
    assert estimator.chosen_c_ in LOGISTIC_CS
    assert estimator.chosen_c_ == estimator[-1].C
    again = fit_baseline("logistic_regression", "binary", X, y, seed=3)
    np.testing.assert_array_equal(predict_baseline(estimator, "binary", X), predict_baseline(again, "binary", X))


def test_gradient_boosting_is_seeded() -> None:
    X, y = _tabular("binary")
    first = predict_baseline(fit_baseline("gradient_boosting", "binary", X, y, seed=5), "binary", X)
    again = predict_baseline(fit_baseline("gradient_boosting", "binary", X, y, seed=5), "binary", X)
    np.testing.assert_array_equal(first, again)


def test_sample_weight_is_used() -> None:
    X, y = _tabular("binary")
    plain = fit_baseline("logistic_regression", "binary", X, y)
    weights = np.where(y == 1, 10.0, 1.0)
    weighted = fit_baseline("logistic_regression", "binary", X, y, sample_weight=weights)
    # up-weighting positives raises every predicted probability of class 1
    assert np.all(predict_baseline(weighted, "binary", X) > predict_baseline(plain, "binary", X))


@pytest.mark.parametrize(
    ("name", "task", "message"),
    [
        ("xgboost", "binary", r"evaluate.baselines.*'xgboost'.*logistic_regression"),
        ("logistic_regression", "regression", r"evaluate.baselines.*classification"),
        ("linear_regression", "binary", r"evaluate.baselines.*regression"),
        ("gradient_boosting", "survival", "task"),
    ],
)
def test_wrong_baseline_for_task(name: str, task: str, message: str) -> None:
    X, y = _tabular("binary", n=20)
    with pytest.raises(MedDLError, match=message):
        fit_baseline(name, task, X, y)


def test_bad_training_data() -> None:
    X, y = _tabular("binary", n=20)
    with pytest.raises(MedDLError, match="y_train"):
        fit_baseline("logistic_regression", "binary", X, y[:10])
    with pytest.raises(MedDLError, match="single class"):
        fit_baseline("logistic_regression", "binary", X, np.zeros(20, dtype=int))
    X_missing = X.copy()
    X_missing[3, 1] = np.nan
    with pytest.raises(MedDLError, match="X_train has 1 non-finite"):
        fit_baseline("logistic_regression", "binary", X_missing, y)
    with pytest.raises(MedDLError, match="sample_weight"):
        fit_baseline("logistic_regression", "binary", X, y, sample_weight=np.ones(3))

"""Recalibration maps fitted on validation (temperature, Platt, isotonic, auto) and the calibration slope and
intercept, each checked against scikit-learn / SciPy on the same numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from meddl.errors import MedDLError
from meddl.evaluate.metrics import binary_metrics
from meddl.evaluate.recalibration import (
    Recalibrator,
    calibration_intercept,
    calibration_slope,
    fit_recalibrator,
)


def overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes drawn from a true risk, and a model's probabilities three times too extreme on the logit scale."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(-0.5, 1.2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    return y, 1 / (1 + np.exp(-3.0 * true_logit))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)  # as MedDL clips before taking the logit
    return np.log(p / (1 - p))


def test_slope_and_intercept_match_a_reference_logistic_fit() -> None:
    y, p = overconfident(800, 0)
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(logit(p)[:, None], y)
    assert calibration_slope(y, p) == pytest.approx(reference.coef_[0, 0], rel=1e-5)

    def loss(a: float) -> float:  # intercept with logit(p) as offset, slope fixed at 1
        q = 1 / (1 + np.exp(-(a + logit(p))))
        return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))

    assert calibration_intercept(y, p) == pytest.approx(minimize_scalar(loss).x, abs=1e-5)
    assert calibration_slope(y, p) < 0.5  # three times too extreme: slope near 1/3
    assert math.isnan(calibration_slope(np.zeros(10, int), np.linspace(0.1, 0.9, 10)))
    metrics = binary_metrics(y, p)
    assert metrics["calibration_slope"] == pytest.approx(calibration_slope(y, p))


@pytest.mark.parametrize("method", ["temperature", "platt", "isotonic"])
def test_each_map_fitted_on_validation_calibrates_the_test_split(method: str) -> None:
    y_val, p_val = overconfident(1500, 1)
    y_test, p_test = overconfident(1500, 2)
    recalibrator = fit_recalibrator("binary", y_val, p_val, method)
    before, after = binary_metrics(y_test, p_test), binary_metrics(y_test, recalibrator.apply(p_test))
    assert after["ece"] <= before["ece"] / 2
    assert abs(after["calibration_slope"] - 1) < abs(before["calibration_slope"] - 1)
    if method != "isotonic":  # monotone maps of the logit keep the ranking exactly
        assert after["auroc"] == pytest.approx(before["auroc"], abs=1e-12)
    restored = Recalibrator.from_json(json.loads(json.dumps(recalibrator.to_json())))
    assert np.array_equal(restored.apply(p_test), recalibrator.apply(p_test))


def test_isotonic_is_scikit_learns() -> None:
    y, p = overconfident(600, 3)
    recalibrator = fit_recalibrator("binary", y, p, "isotonic")
    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p, y)
    grid = np.linspace(0.001, 0.999, 97)
    assert np.allclose(recalibrator.apply(grid), np.clip(reference.predict(grid), 1e-6, 1 - 1e-6))


def test_auto_chooses_by_cross_validated_log_loss() -> None:
    y, p = overconfident(1000, 4)
    recalibrator = fit_recalibrator("binary", y, p, "auto", seed=0)
    assert set(recalibrator.chosen_by) == {"none", "temperature", "platt", "isotonic"}
    assert recalibrator.method == min(recalibrator.chosen_by, key=recalibrator.chosen_by.__getitem__)
    assert recalibrator.method != "none"


def test_multiclass_takes_temperature_and_keeps_rows_summing_to_one() -> None:
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(400, 3)) * 4
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=np.exp(row / 4) / np.exp(row / 4).sum()) for row in logits])
    recalibrator = fit_recalibrator("multiclass", y, probabilities, "auto")
    assert set(recalibrator.chosen_by) == {"none", "temperature"}
    calibrated = recalibrator.apply(probabilities)
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    assert (calibrated.argmax(axis=1) == probabilities.argmax(axis=1)).all()
    with pytest.raises(MedDLError, match="'isotonic' is not available for multiclass"):
        fit_recalibrator("multiclass", y, probabilities, "isotonic")


def test_bad_requests_are_clear_errors() -> None:
    from meddl.config import parse_config

    base = {"data": {"path": "x.csv", "target": "y"}}
    with pytest.raises(MedDLError, match=r"evaluate\.recalibrate: 'platt' is for binary and multiclass tasks"):
        parse_config({**base, "task": "regression", "evaluate": {"recalibrate": "platt"}})
    with pytest.raises(MedDLError, match=r"evaluate\.recalibrate: 'isotonic' would break a multiclass"):
        parse_config({**base, "task": "multiclass", "evaluate": {"recalibrate": "isotonic"}})
    with pytest.raises(MedDLError, match="one class only"):
        fit_recalibrator("binary", np.zeros(20, int), np.linspace(0.1, 0.9, 20), "platt")


def test_one_prediction_for_everyone_has_no_slope_and_auto_needs_two_cases_per_class() -> None:
    assert math.isnan(calibration_slope(np.array([0, 1, 1, 1]), np.full(4, 0.3)))
    with pytest.raises(MedDLError, match="auto needs at least 2 validation cases of every class"):
        fit_recalibrator("binary", np.array([0] * 30 + [1]), np.linspace(0.1, 0.9, 31), "auto")

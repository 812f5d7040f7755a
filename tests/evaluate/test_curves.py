"""ROC, PR, calibration and decision curves."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import auc, roc_curve

from meddl.errors import MedDLError
from meddl.evaluate import MAX_CURVE_POINTS, calibration_points, decision_curve, pr_points, roc_points


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = (rng.random(n) < 0.3).astype(int)
    y_prob = np.clip(0.3 * y_true + 0.7 * rng.random(n), 0, 1)
    return y_true, y_prob


def test_roc_points_small_curve_equals_sklearn() -> None:
    y_true, y_prob = _data(50)
    fpr, tpr, _ = roc_curve(y_true, y_prob)
    points = roc_points(y_true, y_prob)
    assert points == {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


def test_long_curves_are_downsampled_keeping_the_ends() -> None:
    y_true, y_prob = _data(5000)
    fpr, tpr, _ = roc_curve(y_true, y_prob)
    assert fpr.size > MAX_CURVE_POINTS
    points = roc_points(y_true, y_prob)
    assert len(points["fpr"]) <= MAX_CURVE_POINTS
    assert (points["fpr"][0], points["tpr"][0]) == (0.0, 0.0)
    assert (points["fpr"][-1], points["tpr"][-1]) == (1.0, 1.0)
    assert np.all(np.diff(points["fpr"]) >= 0)
    assert auc(points["fpr"], points["tpr"]) == pytest.approx(auc(fpr, tpr), abs=5e-3)
    pr = pr_points(y_true, y_prob)
    assert len(pr["recall"]) <= MAX_CURVE_POINTS
    assert pr["recall"][0] == 1.0
    assert (pr["recall"][-1], pr["precision"][-1]) == (0.0, 1.0)


def test_single_class_curves_are_empty() -> None:
    assert roc_points([0, 0, 0], [0.1, 0.5, 0.9]) == {"fpr": [], "tpr": []}
    assert pr_points([1, 1], [0.1, 0.5]) == {"recall": [], "precision": []}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_bins", [5, 10])
def test_calibration_points_match_sklearn(seed: int, n_bins: int) -> None:
    y_true, y_prob = _data(300, seed)
    y_prob = np.round(y_prob, 1)  # values on bin edges
    observed, predicted = calibration_curve(y_true, y_prob, n_bins=n_bins, strategy="uniform")
    points = calibration_points(y_true, y_prob, n_bins=n_bins)
    np.testing.assert_allclose(points["observed"], observed)
    np.testing.assert_allclose(points["mean_predicted"], predicted)
    assert sum(points["count"]) == 300
    assert all(c > 0 for c in points["count"])


def test_calibration_skips_empty_bins() -> None:
    points = calibration_points([0, 1, 1], [0.05, 0.95, 0.97], n_bins=10)
    assert points == {"mean_predicted": [0.05, 0.96], "observed": [0.0, 1.0], "count": [1, 2]}


def test_decision_curve_formulas() -> None:
    y_true = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    y_prob = np.array([0.9, 0.7, 0.2, 0.6, 0.3, 0.1, 0.1, 0.05, 0.05, 0.05])
    thresholds = [0.1, 0.25, 0.5, 0.8]
    curve = decision_curve(y_true, y_prob, thresholds)
    assert curve["threshold"] == thresholds
    prevalence = 0.3
    for k, pt in enumerate(thresholds):
        odds = pt / (1 - pt)
        treated = y_prob >= pt
        tp = np.sum(treated & (y_true == 1))
        fp = np.sum(treated & (y_true == 0))
        assert curve["model"][k] == pytest.approx(tp / 10 - fp / 10 * odds)
        assert curve["treat_all"][k] == pytest.approx(prevalence - (1 - prevalence) * odds)
        assert curve["treat_none"][k] == 0.0
    # at 0.1 the model treats 0.9, 0.7, 0.2, 0.6, 0.3, 0.1, 0.1: TP 3, FP 4
    assert curve["model"][0] == pytest.approx(0.3 - 0.4 / 9)


def test_decision_curve_default_thresholds_and_perfect_model() -> None:
    y_true, _ = _data(200)
    curve = decision_curve(y_true, y_true.astype(float))
    assert curve["threshold"][0] == 0.01 and curve["threshold"][-1] == 0.99
    assert len(curve["threshold"]) == 99
    # a perfect model's net benefit is the prevalence at every threshold
    np.testing.assert_allclose(curve["model"], y_true.mean())
    # treat-all equals the model's net benefit at a threshold low enough to treat everyone
    everyone = decision_curve(y_true, np.full(200, 0.5), [0.2, 0.4])
    np.testing.assert_allclose(everyone["model"], everyone["treat_all"])


@pytest.mark.parametrize("thresholds", [[0.0, 0.5], [0.5, 1.0], [], [float("nan")]])
def test_decision_curve_rejects_bad_thresholds(thresholds: list[float]) -> None:
    with pytest.raises(MedDLError, match="thresholds"):
        decision_curve([0, 1], [0.2, 0.8], thresholds)

"""Threshold rules on constructed cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from meddl.errors import MedDLError
from meddl.evaluate import choose_threshold


def test_fixed_rule_returns_fixed() -> None:
    assert choose_threshold([0, 1, 0, 1], [0.1, 0.9, 0.3, 0.6], "fixed", fixed=0.37) == 0.37


def test_youden_known_answer() -> None:
    # perfectly separable at 0.6: the cut sits at the lowest positive score
    y_true = [0, 0, 0, 1, 1, 1]
    y_prob = [0.1, 0.2, 0.3, 0.6, 0.7, 0.8]
    assert choose_threshold(y_true, y_prob, "youden") == 0.6


def test_youden_with_overlap() -> None:
    # tpr - fpr is 3/4 at both 0.7 and 0.5 (and 1/2 at 0.55): the tie goes to the higher threshold
    y_true = [0, 0, 0, 0, 1, 1, 1, 1]
    y_prob = [0.1, 0.2, 0.35, 0.55, 0.5, 0.7, 0.8, 0.9]
    tpr_minus_fpr = {0.7: 3 / 4 - 0, 0.55: 3 / 4 - 1 / 4, 0.5: 4 / 4 - 1 / 4}
    assert max(tpr_minus_fpr.values()) == tpr_minus_fpr[0.7] == tpr_minus_fpr[0.5]
    assert choose_threshold(y_true, y_prob, "youden") == 0.7


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_youden_matches_roc_curve_argmax(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = (rng.random(300) < 0.4).astype(int)
    y_prob = np.round(np.clip(0.3 * y_true + 0.7 * rng.random(300), 0, 1), 2)
    fpr, tpr, thresholds = roc_curve(y_true, y_prob)
    expected = min(thresholds[np.argmax(tpr - fpr)], 1.0)
    chosen = choose_threshold(y_true, y_prob, "youden")
    assert chosen == expected
    predicted = y_prob >= chosen
    youden = predicted[y_true == 1].mean() - predicted[y_true == 0].mean()
    assert youden == pytest.approx(np.max(tpr - fpr))


def test_youden_infinite_threshold_clipped() -> None:
    # the best operating point of an inverted scorer is "call nobody positive" (threshold inf)
    assert choose_threshold([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9], "youden") == 1.0


def test_sensitivity_rule_known_answer() -> None:
    y_true = np.array([1] * 10 + [0] * 10)
    positive_scores = np.linspace(0.95, 0.5, 10)  # 0.95, 0.9, ..., 0.5
    y_prob = np.r_[positive_scores, np.linspace(0.0, 0.6, 10)]
    # 90% of 10 positives = 9 cases -> the 9th highest positive score
    assert choose_threshold(y_true, y_prob, "sensitivity", target_sensitivity=0.9) == pytest.approx(0.55)
    assert choose_threshold(y_true, y_prob, "sensitivity", target_sensitivity=1.0) == pytest.approx(0.5)
    assert choose_threshold(y_true, y_prob, "sensitivity", target_sensitivity=0.05) == pytest.approx(0.95)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 0.95])
def test_sensitivity_rule_is_the_highest_threshold_reaching_target(seed: int, target: float) -> None:
    rng = np.random.default_rng(seed)
    y_true = (rng.random(200) < 0.3).astype(int)
    y_prob = np.round(np.clip(0.3 * y_true + 0.7 * rng.random(200), 0, 1), 2)  # with ties
    chosen = choose_threshold(y_true, y_prob, "sensitivity", target_sensitivity=target)
    positives = y_prob[y_true == 1]
    assert np.mean(positives >= chosen) >= target
    higher = np.unique(y_prob[y_prob > chosen])
    assert all(np.mean(positives >= t) < target for t in higher)


def test_single_class_returns_fixed() -> None:
    for rule in ["youden", "sensitivity"]:
        assert choose_threshold([0, 0, 0], [0.2, 0.4, 0.9], rule, fixed=0.3) == 0.3
        assert choose_threshold([1, 1], [0.2, 0.4], rule, fixed=0.45) == 0.45


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rule": "median"}, "evaluate.threshold.*'median'"),
        ({"rule": "fixed", "fixed": 1.5}, "evaluate.threshold.*1.5"),
        ({"rule": "sensitivity", "target_sensitivity": 0.0}, "evaluate.target_sensitivity"),
        ({"rule": "sensitivity", "target_sensitivity": 1.2}, "evaluate.target_sensitivity"),
    ],
)
def test_invalid_rule_and_ranges(kwargs: dict, message: str) -> None:
    with pytest.raises(MedDLError, match=message):
        choose_threshold([0, 1], [0.2, 0.8], **kwargs)

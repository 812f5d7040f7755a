"""Selective prediction: confidence, the risk–coverage curve and a referral rule chosen on one split, judged on
another."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from meddl.errors import MedDLError
from meddl.evaluate.selective import ReferralRule, choose_referral, confidence, judge_referral, risk_coverage


def test_confidence_is_the_distance_from_the_decision() -> None:
    p = np.array([0.2, 0.2, 0.6, 1.0, 0.0])
    assert np.allclose(confidence("binary", p, 0.2), [0.0, 0.0, 0.5, 1.0, 1.0])
    assert np.allclose(confidence("binary", np.array([0.25, 0.75])), [0.5, 0.5])  # threshold 0.5 by default
    assert np.allclose(confidence("multiclass", np.array([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]])), [0.5, 0.9])
    with pytest.raises(MedDLError, match="not available for regression"):
        confidence("regression", p)


def _noisy_binary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from calibrated probabilities: the surer cases are right more often."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    return (rng.uniform(size=n) < p).astype(int), p


def test_referring_the_least_sure_raises_the_kept_cases_accuracy() -> None:
    y, p = _noisy_binary(2000, seed=0)
    curve = risk_coverage("binary", y, p, 0.5, n_bootstrap=50)
    accuracy = curve["metrics"]["accuracy"]["value"]
    assert curve["referred"][0] == 0.0 and curve["referred"][-1] == 0.5
    assert accuracy[0] == pytest.approx(((p >= 0.5) == y).mean())
    assert accuracy[-1] > accuracy[0] + 0.1  # the kept half are the confident half
    assert all(b >= a - 0.02 for a, b in itertools.pairwise(accuracy))  # rises, up to noise
    low, high = curve["metrics"]["accuracy"]["ci"][0]
    assert low < accuracy[0] < high
    keep_half = np.abs(p - 0.5) >= np.median(np.abs(p - 0.5))
    assert accuracy[-1] == pytest.approx(((p[keep_half] >= 0.5) == y[keep_half]).mean(), abs=0.01)


def test_the_referral_rule_meets_its_target_on_the_split_it_was_chosen_on() -> None:
    y, p = _noisy_binary(1000, seed=1)
    threshold = 0.5
    base = ((p >= threshold) & (y == 1)).sum() / (y == 1).sum()
    rule = choose_referral("binary", y, p, threshold, "sensitivity", base + 0.05)
    assert rule is not None and 0 < rule.validation_share < 0.9
    kept = confidence("binary", p, threshold) >= rule.cutoff
    assert ((p[kept] >= threshold) & (y[kept] == 1)).sum() / (y[kept] == 1).sum() >= base + 0.05
    assert abs((1 - kept.mean()) - rule.validation_share) < 0.02
    assert choose_referral("binary", y, p, threshold, "sensitivity", base) == ReferralRule(
        "sensitivity", base, 0.0, 0.0
    )  # already met: nothing referred
    assert choose_referral("binary", y, np.full(1000, 0.4), threshold, "sensitivity", 0.5) is None  # unreachable

    y_test, p_test = _noisy_binary(1000, seed=2)
    judged = judge_referral(rule, "binary", y_test, p_test, threshold, n_bootstrap=100)
    assert judged["referred"]["ci"][0] <= judged["referred"]["value"] <= judged["referred"]["ci"][1]
    assert judged["kept_metric"]["value"] > base  # on new cases it still helps
    assert ReferralRule.from_json(rule.to_json()) == rule


def test_tied_confidences_are_kept_or_referred_together() -> None:
    """Isotonic recalibration makes step-shaped probabilities: the rule is searched over the cut-offs prediction can
    apply (confidence >= cut-off), so on the split it was chosen on it meets its target as stored."""
    rng = np.random.default_rng(3)
    p = rng.choice([0.1, 0.3, 0.45, 0.7, 0.9], size=600)
    y = (rng.uniform(size=600) < p).astype(int)
    for target in (0.7, 0.75, 0.8):
        rule = choose_referral("binary", y, p, 0.5, "sensitivity", target)
        assert rule is not None
        kept = confidence("binary", p, 0.5) >= rule.cutoff
        decided = (p >= 0.5).astype(int)
        assert ((decided == 1) & (y == 1))[kept].sum() / (y[kept] == 1).sum() >= target
        assert rule.validation_share == pytest.approx(1 - kept.mean())

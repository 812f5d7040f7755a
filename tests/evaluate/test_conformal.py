"""Split conformal prediction, checked against MAPIE (LAC, APS) and crepes (Mondrian, regression): same scores and
calibration cases → the same sets and intervals; and the coverage guarantee on exchangeable data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meddl.errors import MedDLError
from meddl.evaluate.conformal import (
    ConformalPredictor,
    conformal_coverage,
    conformal_quantile,
    fit_conformal,
    label_scores,
    min_calibration_size,
)


def _softmax_cases(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from them: a perfectly calibrated model."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 1.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = (probs.cumsum(axis=1) > rng.uniform(size=(n, 1))).argmax(axis=1)
    return probs, labels


def test_the_threshold_is_the_finite_sample_order_statistic() -> None:
    scores = np.arange(1, 20, dtype=float)  # 19 scores
    assert conformal_quantile(scores, 0.1) == 18.0  # ceil(20 * 0.9) = 18th smallest
    assert conformal_quantile(scores, 0.05) == 19.0
    assert math.isinf(conformal_quantile(scores[:8], 0.1))  # ceil(9 * 0.9) = 9 > 8
    assert min_calibration_size(0.1) == 9 and min_calibration_size(0.05) == 19 and min_calibration_size(0.5) == 1
    for alpha in (0.3, 0.1, 0.05, 0.01):
        need = min_calibration_size(alpha)
        assert math.isfinite(conformal_quantile(np.ones(need), alpha))
        assert math.isinf(conformal_quantile(np.ones(need - 1), alpha))


@pytest.mark.parametrize("method", ["lac", "aps"])
def test_sets_match_mapie(method: str) -> None:
    from mapie.classification import SplitConformalClassifier
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Fixed(ClassifierMixin, BaseEstimator):  # a "model" whose probabilities are given per row index
        def __init__(self, probs: np.ndarray | None = None) -> None:
            self.probs = probs

        def fit(self, X: np.ndarray, y: np.ndarray) -> Fixed:
            self.classes_ = np.arange(self.probs.shape[1])  # type: ignore[union-attr]
            return self

        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            return self.probs[np.asarray(X)[:, 0].astype(int)]  # type: ignore[index]

        def predict(self, X: np.ndarray) -> np.ndarray:
            return self.predict_proba(X).argmax(axis=1)

    probs, labels = _softmax_cases(600, 4, seed=0)
    rows = np.arange(600)[:, None]
    reference = SplitConformalClassifier(
        Fixed(probs).fit(rows, labels), confidence_level=0.9, conformity_score=method, prefit=True, random_state=7
    )
    reference.conformalize(rows[:300], labels[:300])
    _, expected = reference.predict_set(rows[300:])
    ours = fit_conformal("multiclass", labels[:300], probs[:300], alpha=0.1, method=method, seed=7)
    assert np.array_equal(ours.sets(probs[300:]), expected[:, :, 0])
    assert 300 < expected.sum() < 1200  # neither every label nor one per case: the comparison means something


def test_class_mondrian_sets_match_crepes() -> None:
    from crepes import ConformalClassifier

    probs, labels = _softmax_cases(800, 3, seed=1)
    cal, test = slice(0, 400), slice(400, 800)
    ours = fit_conformal("multiclass", labels[cal], probs[cal], alpha=0.1, method="lac", mondrian="class")
    reference = ConformalClassifier().fit(1.0 - probs[cal][np.arange(400), labels[cal]], bins=labels[cal])
    expected = np.column_stack(
        [reference.predict_p((1.0 - probs[test][:, k]), bins=np.full(400, k), smoothing=False) > 0.1 for k in range(3)]
    )
    assert np.array_equal(ours.sets(probs[test]), expected)
    assert len({ours.thresholds[str(k)] for k in range(3)}) == 3  # one threshold per class


def test_regression_intervals_match_crepes_overall_and_per_group() -> None:
    from crepes import ConformalRegressor

    rng = np.random.default_rng(2)
    y = rng.normal(size=600)
    # group sizes where (n + 1) * alpha is not a whole number: crepes computes the rank in floating point, and at
    # exact multiples its (1 - 0.9) * (n + 1) rounds one order statistic away from the ceil((n + 1)(1 - alpha)) rule
    groups = np.tile(np.array(["a"] * 7 + ["b"] * 8), 40)
    predicted = y + rng.normal(size=600) * np.where(groups == "a", 0.3, 1.2)  # group b is harder
    cal, test = slice(0, 300), slice(300, 600)
    for mondrian, cal_groups, test_groups in ((None, None, None), ("site", groups[cal], groups[test])):
        ours = fit_conformal("regression", y[cal], predicted[cal], alpha=0.1, mondrian=mondrian, groups=cal_groups)
        expected = ConformalRegressor().fit(y[cal] - predicted[cal], bins=cal_groups)
        intervals = expected.predict_int(predicted[test], confidence=0.9, bins=test_groups)
        assert np.allclose(ours.intervals(predicted[test], test_groups), intervals)
    assert ours.thresholds["b"] > 2 * ours.thresholds["a"]


@pytest.mark.parametrize("method", ["lac", "aps", "raps"])
def test_coverage_holds_on_exchangeable_data(method: str) -> None:
    """Averaged over 40 calibration/test draws, coverage is 1 - alpha or a little above (never below by more
    than sampling noise); APS/RAPS keep the last label, so they may over-cover."""
    covered = []
    for seed in range(40):
        probs, labels = _softmax_cases(1000, 5, seed=100 + seed)
        predictor = fit_conformal("multiclass", labels[:500], probs[:500], alpha=0.1, method=method, seed=seed)
        sets = predictor.sets(probs[500:])
        covered.append(sets[np.arange(500), labels[500:]].mean())
    assert 0.89 <= float(np.mean(covered)) <= (0.915 if method == "lac" else 0.97)


def test_raps_penalises_labels_beyond_k_reg() -> None:
    probs = np.array([[0.5, 0.2, 0.15, 0.1, 0.05]])
    aps = label_scores(probs, "aps")
    raps = label_scores(probs, "raps", k_reg=2, lam=0.1)
    assert np.allclose(aps, [[0.0, 0.5, 0.7, 0.85, 0.95]])
    # a label pays the penalty of the rank above it (ranks 4 and 5 follow ranks 3 and 4: 1 and 2 lambdas)
    assert np.allclose(raps - aps, [[0.0, 0.0, 0.0, 0.1, 0.2]])
    predictor = ConformalPredictor("multiclass", "raps", 0.1, thresholds={"*": 0.8}, k_reg=2, lam=0.1)
    assert predictor.sets(probs).tolist() == [[True, True, True, False, False]]  # APS alone would keep 4
    # Angelopoulos et al.'s reference (non-randomised): size = #{r: cumsum(r) + penalties through r <= tau} + 1
    reference = ConformalPredictor("multiclass", "raps", 0.1, thresholds={"*": 0.6}, k_reg=1, lam=0.5)
    assert reference.sets(np.array([[0.5, 0.3, 0.2]])).sum() == 2  # 0.5 <= 0.6, then 0.8 + 0.5 > 0.6


def test_binary_sets_and_empty_sets_under_lac() -> None:
    predictor = ConformalPredictor("binary", "lac", 0.1, thresholds={"*": 0.7})
    sets = predictor.sets(np.array([0.95, 0.5, 0.2]))
    assert sets.tolist() == [[False, True], [True, True], [True, False]]
    strict = ConformalPredictor("binary", "lac", 0.1, thresholds={"*": 0.4})
    assert strict.sets(np.array([0.5])).tolist() == [[False, False]]  # nothing likely enough: empty set


def test_multilabel_sets_per_label_and_group_fallback() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(size=(400, 2))
    y = (rng.uniform(size=(400, 2)) < p).astype(int)
    predictor = fit_conformal("multilabel", y[:200], p[:200], alpha=0.2, labels=["a", "b"])
    sets = predictor.sets(p[200:])
    assert sets.shape == (200, 2, 2)
    coverage = conformal_coverage("multilabel", y[200:], sets, class_names=["a", "b"], n_bootstrap=20)
    assert set(coverage["per_label"]) == {"a", "b"}
    assert 0.7 < coverage["overall"]["coverage"]["value"] < 0.95

    groups = np.array(["x"] * 195 + ["y"] * 5)  # "y" has 5 calibration cases: alpha 0.1 needs 9
    regression = fit_conformal(
        "regression", rng.normal(size=200), np.zeros(200), alpha=0.1, mondrian="site", groups=groups
    )
    assert "x" in regression.thresholds and "y" not in regression.thresholds  # 5 < 9 needed at alpha 0.1
    assert regression.fallbacks(np.array(["x", "y", "z"])) == ["y", "z"]
    _lower, upper = regression.intervals(np.zeros(2), np.array(["y", "x"])).T
    assert upper[0] == regression.thresholds["*"] and upper[1] == regression.thresholds["x"]


def test_round_trip_and_malformed_state() -> None:
    probs, labels = _softmax_cases(200, 3, seed=4)
    predictor = fit_conformal("multiclass", labels, probs, alpha=0.1, method="raps", mondrian="class", lam=0.05)
    again = ConformalPredictor.from_json(predictor.to_json())
    assert np.array_equal(again.sets(probs), predictor.sets(probs))
    tiny = fit_conformal("multiclass", labels[:3], probs[:3], alpha=0.1)
    assert ConformalPredictor.from_json(tiny.to_json()).thresholds["*"] == math.inf  # JSON null, not Infinity
    with pytest.raises(MedDLError, match="conformal: malformed"):
        ConformalPredictor.from_json({"task": "binary"})
    with pytest.raises(MedDLError, match="alpha must be strictly between 0 and 1"):
        fit_conformal("binary", labels % 2, probs[:, 0], alpha=1.5)


def test_coverage_report_breaks_down_by_class_and_group_with_cis() -> None:
    probs, labels = _softmax_cases(600, 3, seed=5)
    predictor = fit_conformal("multiclass", labels[:300], probs[:300], alpha=0.1)
    sets = predictor.sets(probs[300:])
    site = np.where(np.arange(300) % 3 == 0, "north", "south")
    report = conformal_coverage(
        "multiclass", labels[300:], sets, class_names=["a", "b", "c"], breakdowns={"site": site}, n_bootstrap=200
    )
    overall = report["overall"]
    truth = sets[np.arange(300), labels[300:]].mean()
    assert overall["coverage"]["value"] == pytest.approx(truth)
    assert overall["coverage"]["ci"][0] < truth < overall["coverage"]["ci"][1]
    assert overall["mean_set_size"]["value"] == pytest.approx(sets.sum(axis=1).mean())
    assert sum(report["per_class"][name]["n"] for name in "abc") == 300
    assert report["per_group"]["site"]["north"]["n"] == 100


def test_carving_keeps_every_class_in_validation() -> None:
    from meddl.data import carve_calibration

    target = np.array([0] * 18 + [1] * 12 + [2] * 1 + [0] * 10)
    splits = np.array(["validation"] * 31 + ["train"] * 10, dtype=object)
    carved = carve_calibration(splits, target, task="multiclass", fraction=0.5, seed=0)
    validation, calibration = target[carved == "validation"], target[carved == "calibration"]
    assert set(validation.tolist()) == {0, 1, 2}  # the lone class-2 patient stayed
    assert 12 <= len(calibration) <= 16 and set(calibration.tolist()) == {0, 1}
    assert (carved[31:] == "train").all()


def test_survival_lower_bounds_cover_the_event_time_despite_censoring() -> None:
    """Exponential event times with heavy independent censoring: calibrated on follow-up, the bound holds the true
    event time for at least 1 - alpha of new cases (conservative), and the follow-up for about 1 - alpha."""
    rng = np.random.default_rng(6)
    covered_event, covered_follow_up = [], []
    for _ in range(30):
        rate = rng.uniform(0.5, 2.0, size=1000)
        event_time = rng.exponential(1 / rate)
        censor = rng.exponential(1.0, size=1000)
        follow_up, event = np.minimum(event_time, censor), (event_time <= censor).astype(int)
        q = -np.log(0.9) / rate * rng.uniform(0.7, 1.4, size=1000)  # a rough model of the 10 % quantile
        predictor = fit_conformal("survival", np.column_stack([follow_up, event])[:500], q[:500], alpha=0.1)
        lower = predictor.intervals(q[500:])[:, 0]
        assert np.isinf(predictor.intervals(q[500:])[:, 1]).all()
        covered_event.append((event_time[500:] >= lower).mean())
        covered_follow_up.append((follow_up[500:] >= lower).mean())
    assert np.mean(covered_follow_up) == pytest.approx(0.9, abs=0.015)
    assert np.mean(covered_event) > np.mean(covered_follow_up) + 0.02  # censoring makes it conservative

"""Each metric against scikit-learn on random inputs over several seeds (torchmetrics style)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from meddl.errors import MedDLError
from meddl.evaluate import (
    binary_metrics,
    confusion_matrix,
    expected_calibration_error,
    higher_is_better,
    multiclass_metrics,
    regression_metrics,
)

SEEDS = [0, 1, 2, 3, 4]


def _binary_case(seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    y_true = (rng.random(n) < rng.uniform(0.1, 0.6)).astype(int)
    y_prob = np.clip(0.35 * y_true + rng.random(n) * 0.65, 0.0, 1.0)
    if ties:
        y_prob = np.round(y_prob, 1)  # many tied scores, and some exactly on bin edges
    return y_true, y_prob


def _sklearn_ece(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = 10) -> float:
    observed, predicted = calibration_curve(y_true, y_prob, n_bins=n_bins, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], y_prob), minlength=n_bins)
    counts = counts[counts > 0]
    return float(np.sum(counts * np.abs(observed - predicted)) / y_prob.size)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_binary_metrics_match_sklearn(seed: int, ties: bool, threshold: float) -> None:
    y_true, y_prob = _binary_case(seed, ties)
    y_pred = (y_prob >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    expected = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, zero_division=0),
        "sensitivity": skm.recall_score(y_true, y_pred, zero_division=0),
        "specificity": skm.recall_score(y_true, y_pred, pos_label=0, zero_division=0),
        "npv": skm.precision_score(y_true, y_pred, pos_label=0, zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, zero_division=0),
        "auroc": skm.roc_auc_score(y_true, y_prob),
        "auprc": skm.average_precision_score(y_true, y_prob),
        "brier": skm.brier_score_loss(y_true, y_prob),
        "ece": _sklearn_ece(y_true, y_prob),
    }
    result = binary_metrics(y_true, y_prob, threshold=threshold)
    # the calibration slope and intercept are checked against a reference fit in test_recalibration.py
    assert set(result) == set(expected) | {"calibration_slope", "calibration_intercept"}
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, abs=1e-10), name
        assert type(result[name]) is float, name
    assert result["specificity"] == pytest.approx(tn / (tn + fp))
    assert result["npv"] == pytest.approx(tn / (tn + fn) if tn + fn else 0.0)
    assert result["recall"] == pytest.approx(tp / (tp + fn))


def test_binary_metrics_zero_division_and_single_class() -> None:
    y_true = np.array([0, 0, 1, 1])
    nothing_positive = binary_metrics(y_true, np.array([0.1, 0.2, 0.3, 0.4]), threshold=0.9)
    assert nothing_positive["precision"] == 0.0
    assert nothing_positive["f1"] == 0.0
    assert nothing_positive["specificity"] == 1.0

    one_class = binary_metrics(np.zeros(5, dtype=int), np.linspace(0.1, 0.9, 5))
    assert math.isnan(one_class["auroc"])
    assert math.isnan(one_class["auprc"])
    assert one_class["recall"] == 0.0  # no positives: zero_division=0
    assert one_class["specificity"] == pytest.approx(0.4)
    assert one_class["balanced_accuracy"] == pytest.approx(0.4)


def test_binary_metrics_perfect_ranking() -> None:
    result = binary_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert result["auroc"] == 1.0
    assert result["auprc"] == 1.0
    assert result["accuracy"] == 1.0


def _multiclass_case(seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(3, 6))
    n = int(rng.integers(60, 400))
    y_true = rng.integers(0, n_classes, n)
    y_true[:n_classes] = np.arange(n_classes)  # every class present
    logits = rng.normal(size=(n, n_classes)) + 1.5 * np.eye(n_classes)[y_true]
    if ties:
        logits = np.round(logits)
    y_prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y_true, y_prob


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_multiclass_metrics_match_sklearn(seed: int, ties: bool) -> None:
    y_true, y_prob = _multiclass_case(seed, ties)
    n_classes = y_prob.shape[1]
    y_pred = y_prob.argmax(axis=1)
    confidence = y_prob.max(axis=1)
    expected = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
        "precision_macro": skm.precision_score(y_true, y_pred, average="macro", zero_division=0),
        "recall_macro": skm.recall_score(y_true, y_pred, average="macro", zero_division=0),
        "f1_macro": skm.f1_score(y_true, y_pred, average="macro", zero_division=0),
        "auroc_macro": skm.roc_auc_score(y_true, y_prob, multi_class="ovr", average="macro"),
        "brier": skm.brier_score_loss(y_true, y_prob, labels=list(range(n_classes)), scale_by_half=False),
        "log_loss": skm.log_loss(y_true, y_prob, labels=list(range(n_classes))),
        "ece": _sklearn_ece((y_pred == y_true).astype(int), confidence),
    }
    result = multiclass_metrics(y_true, y_prob)
    assert set(result) == set(expected)
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, abs=1e-10), name


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_multiclass_macro_over_seen_labels_and_missing_class_auroc() -> None:
    rng = np.random.default_rng(7)
    y_prob = rng.dirichlet(np.ones(4), size=50)
    y_true = rng.integers(0, 3, 50)  # class 3 never occurs
    y_pred = y_prob.argmax(axis=1)
    result = multiclass_metrics(y_true, y_prob)
    assert math.isnan(result["auroc_macro"])
    assert result["precision_macro"] == pytest.approx(
        skm.precision_score(y_true, y_pred, average="macro", zero_division=0)
    )
    assert result["f1_macro"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert result["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))


@pytest.mark.parametrize("seed", SEEDS)
def test_regression_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.normal(size=200) * 10
    y_pred = y_true + rng.normal(size=200) * 3
    result = regression_metrics(y_true, y_pred)
    assert result["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred))
    assert result["rmse"] == pytest.approx(skm.root_mean_squared_error(y_true, y_pred))
    assert result["r2"] == pytest.approx(skm.r2_score(y_true, y_pred))


def test_regression_r2_constant_target_follows_sklearn() -> None:
    y_true = np.full(5, 2.0)
    assert regression_metrics(y_true, y_true)["r2"] == skm.r2_score(y_true, y_true) == 1.0
    y_pred = y_true + np.arange(5)
    assert regression_metrics(y_true, y_pred)["r2"] == skm.r2_score(y_true, y_pred) == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_confusion_matrix_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, 100)
    y_pred = rng.integers(0, 4, 100)
    expected = skm.confusion_matrix(y_true, y_pred, labels=list(range(5)))
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, n_classes=5), expected)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_bins", [5, 10, 15])
def test_expected_calibration_error_matches_calibration_curve(seed: int, n_bins: int) -> None:
    y_true, y_prob = _binary_case(seed, ties=seed % 2 == 0)
    assert expected_calibration_error(y_true, y_prob, n_bins=n_bins) == pytest.approx(
        _sklearn_ece(y_true, y_prob, n_bins), abs=1e-12
    )


def test_expected_calibration_error_known_value() -> None:
    # bin (0.1, 0.2]: mean 0.2, rate 0.5 -> 0.3; bin (0.8, 0.9]: mean 0.9, rate 1 -> 0.1; equal weights
    assert expected_calibration_error([0, 1, 1, 1], [0.2, 0.2, 0.9, 0.9]) == pytest.approx(0.2)


def test_higher_is_better() -> None:
    for name in ["brier", "ece", "log_loss", "mae", "rmse", "loss"]:
        assert not higher_is_better(name)
    for name in ["auroc", "auprc", "accuracy", "r2", "f1_macro"]:
        assert higher_is_better(name)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: binary_metrics([0, 2], [0.1, 0.2]), "y_true"),
        (lambda: binary_metrics([0, 1], [0.1, 1.2]), "y_prob"),
        (lambda: binary_metrics([0, 1], [0.1, float("nan")]), "y_prob"),
        (lambda: binary_metrics([0, 1, 1], [0.1, 0.2]), "y_true has 3 samples"),
        (lambda: binary_metrics([0, 1], [0.1, 0.2], threshold=float("nan")), "threshold"),
        (lambda: multiclass_metrics([0, 1], [[0.5, 0.6], [0.5, 0.5]]), "sum to 1"),
        (lambda: multiclass_metrics([0, 3], [[0.5, 0.5], [0.5, 0.5]]), "y_true"),
        (lambda: regression_metrics([1.0, np.inf], [1.0, 2.0]), "y_true"),
        (lambda: confusion_matrix([0, 1], [0, 1], n_classes=0), "n_classes"),
        (lambda: expected_calibration_error([0, 1], [0.1, 0.2], n_bins=0), "n_bins"),
    ],
)
def test_bad_input_raises_meddl_error_naming_the_argument(call, message: str) -> None:
    with pytest.raises(MedDLError, match=message):
        call()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multilabel_metrics_match_sklearn(seed: int) -> None:
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score, hamming_loss, roc_auc_score

    from meddl.evaluate.metrics import multilabel_metrics

    rng = np.random.default_rng(seed)
    y_true = (rng.random((120, 4)) < [0.2, 0.5, 0.3, 0.6]).astype(int)
    y_prob = np.clip(y_true * 0.3 + rng.random((120, 4)) * 0.7, 0, 1).round(2)  # ties on purpose
    got = multilabel_metrics(y_true, y_prob, threshold=0.5)
    predicted = (y_prob >= 0.5).astype(int)
    assert got["auroc_macro"] == pytest.approx(roc_auc_score(y_true, y_prob, average="macro"))
    assert got["auprc_macro"] == pytest.approx(average_precision_score(y_true, y_prob, average="macro"))
    assert got["f1_macro"] == pytest.approx(f1_score(y_true, predicted, average="macro", zero_division=0))
    assert got["subset_accuracy"] == pytest.approx(accuracy_score(y_true, predicted))
    assert got["hamming_loss"] == pytest.approx(hamming_loss(y_true, predicted))
    assert got["brier"] == pytest.approx(np.mean((y_prob - y_true) ** 2))


def test_multilabel_metrics_leave_unobserved_labels_out() -> None:
    """NaN marks a label not observed on a case (an assay not run): each label is judged on its observed cases
    as scikit-learn judges that label alone, and the cell-wise figures average observed cells only."""
    from sklearn.metrics import roc_auc_score

    from meddl.evaluate.metrics import multilabel_metrics

    rng = np.random.default_rng(3)
    y_true = (rng.random((150, 3)) < 0.4).astype(float)
    y_prob = np.clip(y_true * 0.4 + rng.random((150, 3)) * 0.6, 0, 1)
    missing = rng.random(y_true.shape) < 0.3
    gappy = np.where(missing, np.nan, y_true)
    got = multilabel_metrics(gappy, y_prob, threshold=0.5)
    seen = ~missing
    aurocs = [roc_auc_score(y_true[seen[:, k], k], y_prob[seen[:, k], k]) for k in range(3)]
    assert got["auroc_macro"] == pytest.approx(np.mean(aurocs))
    predicted = (y_prob >= 0.5).astype(float)
    assert got["hamming_loss"] == pytest.approx(np.mean((predicted != y_true)[seen]))
    assert got["brier"] == pytest.approx(np.mean(((y_prob - y_true) ** 2)[seen]))
    judged = seen.any(axis=1)
    assert got["subset_accuracy"] == pytest.approx(np.mean(~((predicted != y_true) & seen)[judged].any(axis=1)))
    # filling the gaps with 0 (the silent mistake) changes the answer
    assert multilabel_metrics(np.nan_to_num(gappy), y_prob)["auroc_macro"] != pytest.approx(got["auroc_macro"])
    with pytest.raises(MedDLError, match="only 0 and 1"):
        multilabel_metrics(np.where(missing, 2.0, y_true), y_prob)


def test_multilabel_evaluation_has_per_label_and_cis() -> None:
    from meddl.evaluate import evaluate_predictions

    rng = np.random.default_rng(0)
    y_true = (rng.random((200, 3)) < 0.4).astype(int)
    y_prob = np.clip(y_true * 0.4 + rng.random((200, 3)) * 0.6, 0, 1)
    result = evaluate_predictions("multilabel", y_true, y_prob, n_bootstrap=50, class_names=["a", "b", "c"])
    assert set(result["per_label"]) == {"a", "b", "c"}
    low, high = result["metrics"]["auroc_macro"]["ci"]
    assert low <= result["metrics"]["auroc_macro"]["value"] <= high
    assert result["class_counts"] == {
        "a": int(y_true[:, 0].sum()),
        "b": int(y_true[:, 1].sum()),
        "c": int(y_true[:, 2].sum()),
    }

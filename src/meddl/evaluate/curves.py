"""Points of ROC, precision-recall, calibration and decision curves, ready for JSON and plotting."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from meddl.errors import MedDLError
from meddl.evaluate.metrics import (
    _calibration_bins,
    _check_same_length,
    _validate_binary_labels,
    _validate_probabilities,
)

__all__ = ["MAX_CURVE_POINTS", "calibration_points", "decision_curve", "pr_points", "roc_points"]

MAX_CURVE_POINTS = 200


def _validated(y_true: object, y_prob: object) -> tuple[np.ndarray, np.ndarray]:
    labels = _validate_binary_labels(y_true)
    prob = _validate_probabilities(y_prob)
    _check_same_length(labels, prob, "y_true", "y_prob")
    return labels, prob


def _downsample(n_points: int, max_points: int = MAX_CURVE_POINTS) -> np.ndarray:
    """Evenly spaced indices into a curve of ``n_points``, always keeping both ends."""
    if n_points <= max_points:
        return np.arange(n_points)
    return np.unique(np.round(np.linspace(0, n_points - 1, max_points)).astype(np.int64))


def _both_classes(labels: np.ndarray) -> bool:
    return bool(labels.min() == 0 and labels.max() == 1)


def roc_points(y_true: object, y_prob: object) -> dict[str, list[float]]:
    """Receiver operating characteristic curve.

    Args:
        y_true: Labels, 0 or 1, shape ``(n,)``.
        y_prob: Predicted probability of class 1, shape ``(n,)``.

    Returns:
        ``{"fpr": [...], "tpr": [...]}`` from ``sklearn.metrics.roc_curve``, from (0, 0) to
        (1, 1), downsampled to at most 200 points; empty lists if ``y_true`` has one class.
    """
    labels, prob = _validated(y_true, y_prob)
    if not _both_classes(labels):
        return {"fpr": [], "tpr": []}
    fpr, tpr, _ = roc_curve(labels, prob)
    keep = _downsample(fpr.size)
    return {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist()}


def pr_points(y_true: object, y_prob: object) -> dict[str, list[float]]:
    """Precision-recall curve.

    Args:
        y_true: Labels, 0 or 1, shape ``(n,)``.
        y_prob: Predicted probability of class 1, shape ``(n,)``.

    Returns:
        ``{"recall": [...], "precision": [...]}`` from ``sklearn.metrics.precision_recall_curve``
        (recall decreasing to 0), downsampled to at most 200 points; empty lists if ``y_true`` has
        one class.
    """
    labels, prob = _validated(y_true, y_prob)
    if not _both_classes(labels):
        return {"recall": [], "precision": []}
    precision, recall, _ = precision_recall_curve(labels, prob)
    keep = _downsample(recall.size)
    return {"recall": recall[keep].tolist(), "precision": precision[keep].tolist()}


def calibration_points(y_true: object, y_prob: object, n_bins: int = 10) -> dict[str, list]:
    """Reliability diagram: observed event rate against mean predicted probability per bin.

    Args:
        y_true: Outcomes, 0 or 1, shape ``(n,)``.
        y_prob: Predicted probability of the outcome, shape ``(n,)``.
        n_bins: Number of equal-width bins on ``[0, 1]`` (right-closed, as in
            ``sklearn.calibration.calibration_curve``).

    Returns:
        ``{"mean_predicted": [...], "observed": [...], "count": [...]}`` for the non-empty bins,
        in increasing order of probability.

    Raises:
        MedDLError: If ``n_bins`` is not a positive integer or the inputs are invalid.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise MedDLError(f"n_bins must be a positive integer, got {n_bins!r}")
    labels, prob = _validated(y_true, y_prob)
    mean_predicted, observed, counts = _calibration_bins(labels, prob, int(n_bins))
    return {
        "mean_predicted": mean_predicted.tolist(),
        "observed": observed.tolist(),
        "count": [int(c) for c in counts],
    }


def decision_curve(y_true: object, y_prob: object, thresholds: object | None = None) -> dict[str, list[float]]:
    """Decision curve analysis (Vickers & Elkin, 2006): net benefit across threshold probabilities.

    At threshold probability ``pt`` the net benefit of treating the cases with ``y_prob >= pt`` is
    ``TP/n - FP/n * pt / (1 - pt)``. Treating everyone gives ``prevalence - (1 - prevalence) *
    pt / (1 - pt)``; treating no one gives 0.

    Args:
        y_true: Outcomes, 0 or 1, shape ``(n,)``.
        y_prob: Predicted probability of the outcome, shape ``(n,)``.
        thresholds: Threshold probabilities strictly between 0 and 1; default 0.01, 0.02, ..., 0.99.

    Returns:
        ``{"threshold": [...], "model": [...], "treat_all": [...], "treat_none": [...]}``.

    Raises:
        MedDLError: If a threshold is not strictly between 0 and 1, or the inputs are invalid.
    """
    labels, prob = _validated(y_true, y_prob)
    if thresholds is None:
        points = np.round(np.arange(1, 100) / 100.0, 2)
    else:
        points = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
        bad = ~np.isfinite(points) | (points <= 0.0) | (points >= 1.0)
        if points.ndim != 1 or points.size == 0 or bad.any():
            example = points[bad][0] if bad.any() else points.shape
            raise MedDLError(
                f"thresholds must be a non-empty list of numbers strictly between 0 and 1, got {example!r}"
            )
    n = labels.size
    positive_scores = np.sort(prob[labels == 1])
    negative_scores = np.sort(prob[labels == 0])
    # cases with score >= pt = all minus those strictly below pt
    true_positives = positive_scores.size - np.searchsorted(positive_scores, points, side="left")
    false_positives = negative_scores.size - np.searchsorted(negative_scores, points, side="left")
    odds = points / (1.0 - points)
    prevalence = positive_scores.size / n
    model = true_positives / n - false_positives / n * odds
    treat_all = prevalence - (1.0 - prevalence) * odds
    return {
        "threshold": [float(p) for p in points],
        "model": model.tolist(),
        "treat_all": treat_all.tolist(),
        "treat_none": [0.0] * points.size,
    }

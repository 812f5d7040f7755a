"""Choosing the operating threshold of a binary classifier (on validation data, never on test)."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_curve

from meddl.errors import MedDLError
from meddl.evaluate.metrics import (
    _check_same_length,
    _real_number,
    _validate_binary_labels,
    _validate_probabilities,
)

__all__ = ["THRESHOLD_RULES", "choose_threshold", "decision_threshold", "predicted_labels"]

THRESHOLD_RULES = ("fixed", "youden", "sensitivity")


def _check_fraction(value: object, field: str, *, allow_zero: bool) -> float:
    number = _real_number(value)
    if number is None or not math.isfinite(number):
        raise MedDLError(f"{field} must be a number, got {value!r}")
    low_ok = number >= 0.0 if allow_zero else number > 0.0
    if not (low_ok and number <= 1.0):
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise MedDLError(f"{field} must be in {interval}, got {value!r}")
    return number


def choose_threshold(
    y_true: object,
    y_prob: object,
    rule: str,
    *,
    fixed: float = 0.5,
    target_sensitivity: float = 0.9,
) -> float:
    """Pick the probability threshold at or above which a case is called positive.

    Rules:
        * ``"fixed"``: return ``fixed``.
        * ``"youden"``: the ROC threshold maximising ``sensitivity + specificity - 1``
          (``tpr - fpr``) over the thresholds of ``sklearn.metrics.roc_curve``; the infinite
          first threshold is clipped to 1.0; among ties the highest threshold wins.
        * ``"sensitivity"``: the highest threshold whose sensitivity is at least
          ``target_sensitivity`` (the most specific rule that still finds that share of cases).

    If ``y_true`` holds a single class, no curve exists and ``fixed`` is returned.

    Args:
        y_true: Labels, 0 or 1, shape ``(n,)``.
        y_prob: Predicted probability of class 1, shape ``(n,)``.
        rule: One of ``"fixed"``, ``"youden"``, ``"sensitivity"``.
        fixed: Threshold of the ``"fixed"`` rule and fallback for one-class data, in ``[0, 1]``.
        target_sensitivity: Required sensitivity of the ``"sensitivity"`` rule, in ``(0, 1]``.

    Returns:
        The threshold, a float in ``[0, 1]``.

    Raises:
        MedDLError: If ``rule`` is unknown (field ``evaluate.threshold``), ``fixed`` is outside
            ``[0, 1]`` (``evaluate.threshold``), ``target_sensitivity`` is outside ``(0, 1]``
            (``evaluate.target_sensitivity``), or the labels/probabilities are invalid.
    """
    if rule not in THRESHOLD_RULES:
        raise MedDLError(f"evaluate.threshold must be one of {list(THRESHOLD_RULES)}, got {rule!r}")
    fixed = _check_fraction(fixed, "evaluate.threshold", allow_zero=True)
    target_sensitivity = _check_fraction(target_sensitivity, "evaluate.target_sensitivity", allow_zero=False)
    labels = _validate_binary_labels(y_true)
    prob = _validate_probabilities(y_prob)
    _check_same_length(labels, prob, "y_true", "y_prob")

    if rule == "fixed" or np.unique(labels).size < 2:
        return fixed
    if rule == "youden":
        fpr, tpr, thresholds = roc_curve(labels, prob)
        best = int(np.argmax(tpr - fpr))  # first maximum = highest threshold among ties
        return float(min(thresholds[best], 1.0))
    positive_scores = np.sort(prob[labels == 1])[::-1]
    # taking the k highest positive scores gives sensitivity >= k / n_pos (ties only add cases)
    sensitivity_if_k = np.arange(1, positive_scores.size + 1) / positive_scores.size
    k = int(np.argmax(sensitivity_if_k >= target_sensitivity))
    return float(positive_scores[k])


def decision_threshold(threshold: float | None) -> float:
    """The threshold a binary model's label is taken at: the one chosen on validation, or 0.5 when none was
    chosen. A chosen threshold of 0.0 stays 0.0 (it is a value, not a missing one)."""
    return 0.5 if threshold is None else float(threshold)


def predicted_labels(task: str, scores: np.ndarray, classes: list[str], threshold: float | None) -> list[str]:
    """The label of each case from its scores — the one place a threshold is applied.

    Args:
        task: ``binary`` (scores: (N,) P(positive)), ``multiclass`` ((N, K) probabilities, the most probable class),
            or ``multilabel`` ((N, K) probabilities, every label at or above 0.5, joined by ``;``).
        scores: the model's probabilities.
        classes: class (or label) names, the positive class last for binary.
        threshold: the binary decision threshold chosen on validation (None: 0.5).

    Returns:
        One label per case.
    """
    scores = np.asarray(scores)
    if task == "binary":
        cut = decision_threshold(threshold)
        return [classes[1] if p >= cut else classes[0] for p in scores.reshape(-1)]
    if task == "multiclass":
        return [classes[int(k)] for k in np.argmax(scores, axis=1)]
    if task == "multilabel":
        return [";".join(c for c, p in zip(classes, row, strict=True) if p >= 0.5) for row in scores]
    raise MedDLError(f"task {task!r} has no labels (regression predicts a value)")

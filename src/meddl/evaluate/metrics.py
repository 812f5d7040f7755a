"""Classification and regression metrics as plain NumPy functions.

Every metric here is checked against ``sklearn.metrics`` in ``tests/evaluate/test_metrics.py``.
The public functions validate their input and raise :class:`~meddl.errors.MedDLError` on bad
input; the private ``_binary``/``_multiclass``/``_regression`` functions skip validation so the
bootstrap can call them a thousand times cheaply on inputs that were validated once.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from meddl.errors import MedDLError
from meddl.evaluate.recalibration import calibration_intercept, calibration_slope

__all__ = [
    "binary_metrics",
    "confusion_matrix",
    "expected_calibration_error",
    "higher_is_better",
    "multiclass_metrics",
    "multilabel_metrics",
    "regression_metrics",
]

_NAN = float("nan")
_LOWER_IS_BETTER = frozenset(
    {"brier", "ece", "log_loss", "mae", "rmse", "loss", "hamming_loss", "ibs", "hd95", "msd", "volume_error_pct"}
)


# --------------------------------------------------------------------------- validation


def _as_1d(values: object, name: str, dtype: type | None = None) -> np.ndarray:
    """Return ``values`` as a 1-D array, raising MedDLError naming ``name`` otherwise."""
    array = np.asarray(values, dtype=dtype)
    if array.ndim != 1:
        raise MedDLError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise MedDLError(f"{name} is empty; at least one sample is needed")
    return array


def _real_number(value: object) -> float | None:
    """``value`` as a float if it is a real number (Python or NumPy, not bool), else None."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, Real):
        return None
    return float(value)


def _check_finite(array: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        first = int(np.flatnonzero(bad.ravel())[0])
        raise MedDLError(
            f"{name} has {int(bad.sum())} non-finite values, e.g. {array.ravel()[first]!r} (index {first})"
        )


def _check_same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise MedDLError(f"{name_a} has {a.shape[0]} samples but {name_b} has {b.shape[0]}")


def _validate_binary_labels(y_true: object, name: str = "y_true") -> np.ndarray:
    raw = _as_1d(y_true, name)
    try:
        labels = raw.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise MedDLError(f"{name} must contain 0/1 labels, got dtype {raw.dtype}") from exc
    bad = (labels != 0) & (labels != 1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise MedDLError(
            f"{name} must contain only 0/1 labels; {int(bad.sum())} values are not, e.g. {raw[first]!r} (index {first})"
        )
    return labels.astype(np.int64)


def _validate_probabilities(y_prob: object, name: str = "y_prob", ndim: int = 1) -> np.ndarray:
    try:
        prob = np.asarray(y_prob, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MedDLError(f"{name} must be numeric probabilities: {exc}") from exc
    if prob.ndim != ndim:
        raise MedDLError(f"{name} must be {ndim}-dimensional, got shape {prob.shape}")
    if prob.size == 0:
        raise MedDLError(f"{name} is empty; at least one sample is needed")
    _check_finite(prob, name)
    out_of_range = (prob < 0.0) | (prob > 1.0)
    if out_of_range.any():
        first = int(np.flatnonzero(out_of_range.ravel())[0])
        raise MedDLError(
            f"{name} must be probabilities in [0, 1]; {int(out_of_range.sum())} values are not, "
            f"e.g. {prob.ravel()[first]!r} (index {first})"
        )
    return prob


def _validate_multiclass(y_true: object, y_prob: object) -> tuple[np.ndarray, np.ndarray]:
    prob = _validate_probabilities(y_prob, "y_prob", ndim=2)
    n_classes = prob.shape[1]
    if n_classes < 2:
        raise MedDLError(f"y_prob must have at least 2 class columns, got shape {prob.shape}")
    row_sums = prob.sum(axis=1)
    off = np.abs(row_sums - 1.0) > 1e-3
    if off.any():
        first = int(np.flatnonzero(off)[0])
        raise MedDLError(
            f"y_prob rows must sum to 1; {int(off.sum())} rows do not, e.g. row {first} sums to {row_sums[first]:.6g}"
        )
    labels = _validate_class_labels(y_true, n_classes)
    _check_same_length(labels, prob, "y_true", "y_prob")
    return labels, prob


def _validate_class_labels(y_true: object, n_classes: int, name: str = "y_true") -> np.ndarray:
    raw = _as_1d(y_true, name)
    try:
        as_float = raw.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise MedDLError(f"{name} must contain integer class indices, got dtype {raw.dtype}") from exc
    bad = (as_float != np.round(as_float)) | (as_float < 0) | (as_float >= n_classes) | ~np.isfinite(as_float)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise MedDLError(
            f"{name} must contain class indices 0..{n_classes - 1}; {int(bad.sum())} values are not, "
            f"e.g. {raw[first]!r} (index {first})"
        )
    return as_float.astype(np.int64)


# --------------------------------------------------------------------------- building blocks


def _safe_divide(numerator: float, denominator: float, zero_division: float) -> float:
    return float(numerator / denominator) if denominator > 0 else zero_division


def _ranking_curve(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True- and false-positive counts at each distinct score, highest score first.

    Tied scores are collapsed into one threshold, as in ``sklearn.metrics._binary_clf_curve``.
    """
    order = np.argsort(-y_score, kind="mergesort")
    sorted_scores = y_score[order]
    sorted_labels = y_true[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_labels.size - 1]
    true_positives = np.cumsum(sorted_labels)[last_of_tie]
    false_positives = last_of_tie + 1 - true_positives
    return true_positives.astype(np.float64), false_positives.astype(np.float64)


def _auroc_and_auprc(y_true: np.ndarray, y_score: np.ndarray) -> tuple[float, float]:
    """Area under the ROC curve (trapezoidal) and average precision; nan when one class only."""
    true_positives, false_positives = _ranking_curve(y_true, y_score)
    n_positive = true_positives[-1]
    n_negative = false_positives[-1]
    if n_positive == 0 or n_negative == 0:
        return _NAN, _NAN
    tpr = np.r_[0.0, true_positives / n_positive]
    fpr = np.r_[0.0, false_positives / n_negative]
    auroc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)
    precision = true_positives / (true_positives + false_positives)
    recall_step = np.diff(np.r_[0.0, true_positives]) / n_positive
    auprc = float(np.sum(recall_step * precision))
    return auroc, auprc


def _auroc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    return _auroc_and_auprc(y_true, y_score)[0]


def _bin_indices(y_prob: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bin of each probability, right-closed like ``sklearn.calibration.calibration_curve``."""
    inner_edges = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    return np.searchsorted(inner_edges, y_prob)


def _calibration_bins(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per non-empty bin: mean predicted probability, observed event rate and count."""
    bins = _bin_indices(y_prob, n_bins)
    counts = np.bincount(bins, minlength=n_bins)
    prob_sums = np.bincount(bins, weights=y_prob, minlength=n_bins)
    event_sums = np.bincount(bins, weights=y_true.astype(np.float64), minlength=n_bins)
    filled = counts > 0
    return prob_sums[filled] / counts[filled], event_sums[filled] / counts[filled], counts[filled]


def _ece(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int) -> float:
    mean_predicted, observed, counts = _calibration_bins(y_true, y_prob, n_bins)
    return float(np.sum(counts * np.abs(mean_predicted - observed)) / y_prob.size)


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    flat = y_true * n_classes + y_pred
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


# --------------------------------------------------------------------------- unchecked metrics


def _binary(
    y_true: np.ndarray, y_prob: np.ndarray, threshold: float, n_bins: int = 10, *, calibration: bool = True
) -> dict[str, float]:
    """Binary metrics on validated int 0/1 labels and float probabilities. ``calibration=False`` leaves out the
    calibration slope and intercept (two logistic fits, most of the time of a bootstrap replicate) for callers that
    judge one other metric a thousand times (paired comparisons, robustness)."""
    n = y_true.size
    predicted = y_prob >= threshold
    actual = y_true == 1
    tp = float(np.count_nonzero(predicted & actual))
    fp = float(np.count_nonzero(predicted & ~actual))
    fn = float(np.count_nonzero(~predicted & actual))
    tn = float(n - tp - fp - fn)
    precision = _safe_divide(tp, tp + fp, 0.0)
    recall = _safe_divide(tp, tp + fn, 0.0)
    specificity = _safe_divide(tn, tn + fp, 0.0)
    npv = _safe_divide(tn, tn + fn, 0.0)
    f1 = _safe_divide(2 * tp, 2 * tp + fp + fn, 0.0)
    # sklearn.balanced_accuracy_score averages recall over the classes present in y_true only
    present_recalls = [r for r, k in ((recall, tp + fn), (specificity, tn + fp)) if k > 0]
    auroc, auprc = _auroc_and_auprc(y_true, y_prob)
    metrics = {
        "accuracy": (tp + tn) / n,
        "balanced_accuracy": float(np.mean(present_recalls)),
        "precision": precision,
        "recall": recall,
        "sensitivity": recall,
        "specificity": specificity,
        "npv": npv,
        "f1": f1,
        "auroc": auroc,
        "auprc": auprc,
        "brier": float(np.mean((y_prob - y_true) ** 2)),
        "ece": _ece(y_true, y_prob, n_bins),
    }
    if calibration:
        metrics["calibration_slope"] = calibration_slope(y_true, y_prob)
        metrics["calibration_intercept"] = calibration_intercept(y_true, y_prob)
    return metrics


def _multiclass(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = 10) -> dict[str, float]:
    """Multiclass metrics on validated class indices and an (n, K) probability matrix."""
    n, n_classes = y_prob.shape
    y_pred = np.argmax(y_prob, axis=1)
    matrix = _confusion(y_true, y_pred, n_classes).astype(np.float64)
    true_counts = matrix.sum(axis=1)
    pred_counts = matrix.sum(axis=0)
    hits = np.diag(matrix)
    # sklearn's macro averages run over the labels seen in y_true or y_pred, zero_division=0
    seen = (true_counts > 0) | (pred_counts > 0)
    recall = np.divide(hits, true_counts, out=np.zeros(n_classes), where=true_counts > 0)
    precision = np.divide(hits, pred_counts, out=np.zeros(n_classes), where=pred_counts > 0)
    f1_denominator = true_counts + pred_counts
    f1 = np.divide(2 * hits, f1_denominator, out=np.zeros(n_classes), where=f1_denominator > 0)

    one_hot = np.zeros_like(y_prob)
    one_hot[np.arange(n), y_true] = 1.0
    if np.all(true_counts > 0):
        auroc_macro = float(np.mean([_auroc(one_hot[:, k], y_prob[:, k]) for k in range(n_classes)]))
    else:
        auroc_macro = _NAN
    eps = np.finfo(np.float64).eps
    true_class_prob = np.clip(y_prob[np.arange(n), y_true], eps, 1 - eps)
    confidence = y_prob[np.arange(n), y_pred]
    return {
        "accuracy": float(hits.sum() / n),
        "balanced_accuracy": float(np.mean(recall[true_counts > 0])),
        "precision_macro": float(np.mean(precision[seen])),
        "recall_macro": float(np.mean(recall[seen])),
        "f1_macro": float(np.mean(f1[seen])),
        "auroc_macro": auroc_macro,
        "brier": float(np.mean(np.sum((y_prob - one_hot) ** 2, axis=1))),
        "log_loss": float(-np.mean(np.log(true_class_prob))),
        "ece": _ece((y_pred == y_true).astype(np.float64), confidence, n_bins),
    }


def _regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Regression metrics on validated finite float arrays."""
    residual = y_true - y_pred
    squared_error = float(np.mean(residual**2))
    total_variance = float(np.mean((y_true - y_true.mean()) ** 2))
    # sklearn's convention for a constant target: perfect predictions score 1, anything else 0
    constant_target_r2 = 1.0 if squared_error == 0 else 0.0
    r2 = 1.0 - squared_error / total_variance if total_variance > 0 else constant_target_r2
    return {
        "mae": float(np.mean(np.abs(residual))),
        "rmse": math.sqrt(squared_error),
        "r2": r2,
    }


# --------------------------------------------------------------------------- public API


def binary_metrics(y_true: object, y_prob: object, threshold: float = 0.5) -> dict[str, float]:
    """Threshold and ranking metrics of a binary classifier.

    A sample is predicted positive when ``y_prob >= threshold``.

    Counting metrics follow scikit-learn's ``zero_division=0`` convention: precision, recall
    (= sensitivity), specificity, npv and f1 are ``0.0`` when their denominator is zero (e.g.
    precision when nothing is predicted positive). ``balanced_accuracy`` averages the recalls of
    the classes present in ``y_true``, like ``sklearn.metrics.balanced_accuracy_score``.
    ``auroc`` and ``auprc`` are ``nan`` when ``y_true`` holds a single class.

    Args:
        y_true: Labels, 0 or 1, shape ``(n,)``.
        y_prob: Predicted probability of class 1, shape ``(n,)``, values in ``[0, 1]``.
        threshold: Probability at or above which a sample is called positive.

    Returns:
        A dict with keys ``accuracy``, ``balanced_accuracy``, ``precision``, ``recall``,
        ``sensitivity``, ``specificity``, ``npv``, ``f1``, ``auroc``, ``auprc`` (average
        precision as in ``sklearn.metrics.average_precision_score``), ``brier`` and ``ece``
        (10 equal-width bins), ``calibration_slope`` and ``calibration_intercept`` (calibration-in-the-large; see
        :mod:`meddl.evaluate.recalibration`, NaN with one class), all plain Python floats.

    Raises:
        MedDLError: If labels are not 0/1, probabilities are outside ``[0, 1]`` or not finite,
            the lengths differ, or ``threshold`` is not a finite number.
    """
    labels = _validate_binary_labels(y_true)
    prob = _validate_probabilities(y_prob)
    _check_same_length(labels, prob, "y_true", "y_prob")
    cut = _real_number(threshold)
    if cut is None or not math.isfinite(cut):
        raise MedDLError(f"threshold must be a finite number, got {threshold!r}")
    return _binary(labels, prob, cut)


def multiclass_metrics(y_true: object, y_prob: object) -> dict[str, float]:
    """Metrics of a K-class classifier whose prediction is the most probable class.

    Macro averages (precision, recall, f1) run over the classes present in ``y_true`` or in the
    predictions, with ``zero_division=0``, like scikit-learn's defaults. ``auroc_macro`` is the
    one-vs-rest macro AUROC and is ``nan`` when any of the K classes is absent from ``y_true``.

    Args:
        y_true: Class indices ``0..K-1``, shape ``(n,)``.
        y_prob: Class probabilities, shape ``(n, K)``, each row summing to 1.

    Returns:
        A dict with keys ``accuracy``, ``balanced_accuracy``, ``precision_macro``,
        ``recall_macro``, ``f1_macro``, ``auroc_macro``, ``brier`` (mean over samples of the sum
        over classes of the squared error), ``log_loss`` (probabilities clipped to
        ``[eps, 1-eps]``) and ``ece`` (top-label confidence, 10 equal-width bins).

    Raises:
        MedDLError: If shapes disagree, labels are not class indices, or rows are not
            probability distributions.
    """
    labels, prob = _validate_multiclass(y_true, y_prob)
    return _multiclass(labels, prob)


def regression_metrics(y_true: object, y_pred: object) -> dict[str, float]:
    """Mean absolute error, root mean squared error and coefficient of determination.

    Args:
        y_true: Observed values, shape ``(n,)``.
        y_pred: Predicted values, shape ``(n,)``.

    Returns:
        A dict with keys ``mae``, ``rmse`` and ``r2``. With a constant ``y_true``, ``r2`` is 1.0
        for perfect predictions and 0.0 otherwise (scikit-learn's convention).

    Raises:
        MedDLError: If the inputs are not 1-D, differ in length, or contain non-finite values.
    """
    truth = _as_1d(y_true, "y_true", dtype=np.float64)
    pred = _as_1d(y_pred, "y_pred", dtype=np.float64)
    _check_same_length(truth, pred, "y_true", "y_pred")
    _check_finite(truth, "y_true")
    _check_finite(pred, "y_pred")
    return _regression(truth, pred)


def confusion_matrix(y_true: object, y_pred: object, n_classes: int) -> np.ndarray:
    """Count matrix with true classes in rows and predicted classes in columns.

    Args:
        y_true: True class indices ``0..n_classes-1``, shape ``(n,)``.
        y_pred: Predicted class indices ``0..n_classes-1``, shape ``(n,)``.
        n_classes: Number of classes K; the result is ``(K, K)`` even if some are unseen.

    Returns:
        An int64 array of shape ``(n_classes, n_classes)``.

    Raises:
        MedDLError: If ``n_classes`` is below 1 or a label is outside ``0..n_classes-1``.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) or n_classes < 1:
        raise MedDLError(f"n_classes must be a positive integer, got {n_classes!r}")
    truth = _validate_class_labels(y_true, int(n_classes), "y_true")
    pred = _validate_class_labels(y_pred, int(n_classes), "y_pred")
    _check_same_length(truth, pred, "y_true", "y_pred")
    return _confusion(truth, pred, int(n_classes)).astype(np.int64)


def expected_calibration_error(y_true: object, y_prob: object, n_bins: int = 10) -> float:
    """Expected calibration error of binary probabilities.

    Probabilities are put into ``n_bins`` equal-width bins on ``[0, 1]`` (right-closed, as in
    ``sklearn.calibration.calibration_curve``); the ECE is the mean over bins of
    ``|mean predicted probability - observed event rate|`` weighted by the bin's share of samples.

    Args:
        y_true: Outcomes, 0 or 1, shape ``(n,)``.
        y_prob: Predicted probability of the outcome, shape ``(n,)``.
        n_bins: Number of equal-width bins.

    Returns:
        The ECE, a float in ``[0, 1]``.

    Raises:
        MedDLError: On invalid labels, probabilities or ``n_bins``.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise MedDLError(f"n_bins must be a positive integer, got {n_bins!r}")
    labels = _validate_binary_labels(y_true)
    prob = _validate_probabilities(y_prob)
    _check_same_length(labels, prob, "y_true", "y_prob")
    return _ece(labels, prob, int(n_bins))


def higher_is_better(metric_name: str) -> bool:
    """Whether a larger value of the named metric means a better model.

    Args:
        metric_name: A metric key, e.g. ``"auroc"`` or ``"rmse"``.

    Returns:
        False for the error and loss metrics (``brier``, ``ece``, ``log_loss``, ``mae``,
        ``rmse``, ``loss``), True for every other name.
    """
    return metric_name not in _LOWER_IS_BETTER and not metric_name.startswith("brier@")


def _validate_multilabel(y_true: object, y_prob: object) -> tuple[np.ndarray, np.ndarray]:
    """(n, K) truth as float64 — 0, 1, or NaN for a label not observed on a case — and (n, K) probabilities."""
    truth = np.asarray(y_true, dtype=np.float64)
    prob = np.asarray(y_prob, dtype=np.float64)
    if truth.ndim != 2 or prob.shape != truth.shape:
        raise MedDLError(f"multilabel y_true and y_prob must both be (n, K); got {truth.shape} and {prob.shape}")
    if not (np.isin(truth, (0, 1)) | np.isnan(truth)).all():
        raise MedDLError("multilabel y_true must hold only 0 and 1 (or NaN for a label not observed)")
    _check_finite(prob, "y_prob")
    if (prob < 0).any() or (prob > 1).any():
        raise MedDLError("multilabel y_prob must lie in [0, 1]")
    return truth, prob


def _multilabel(y_true: np.ndarray, y_prob: np.ndarray, threshold: float) -> dict[str, float]:
    """Macro averages over labels (labels with one class only in ``y_true`` are left out of AUROC/AUPRC).

    A label not observed on a case (NaN) is left out of every figure: each label is judged on its observed cases,
    a case is exactly right when all its observed labels are, and Hamming loss and Brier score average the
    observed cells."""
    y_true = np.asarray(y_true, dtype=np.float64)
    observed = ~np.isnan(y_true)
    aurocs, auprcs, f1s = [], [], []
    predicted = (y_prob >= threshold).astype(np.int64)
    for k in range(y_true.shape[1]):
        rows = observed[:, k]
        truth, called = y_true[rows, k].astype(np.int64), predicted[rows, k]
        auroc, auprc = _auroc_and_auprc(truth, y_prob[rows, k]) if rows.any() else (_NAN, _NAN)
        if not np.isnan(auroc):
            aurocs.append(auroc)
            auprcs.append(auprc)
        tp = float(np.sum((called == 1) & (truth == 1)))
        fp = float(np.sum((called == 1) & (truth == 0)))
        fn = float(np.sum((called == 0) & (truth == 1)))
        f1s.append(_safe_divide(2 * tp, 2 * tp + fp + fn, 0.0))
    wrong = observed & (predicted != np.nan_to_num(y_true, nan=-1))
    judged = observed.any(axis=1)
    cells = max(int(observed.sum()), 1)
    return {
        "auroc_macro": float(np.mean(aurocs)) if aurocs else _NAN,
        "auprc_macro": float(np.mean(auprcs)) if auprcs else _NAN,
        "f1_macro": float(np.mean(f1s)),
        "subset_accuracy": float(np.mean(~wrong[judged].any(axis=1))) if judged.any() else _NAN,
        "hamming_loss": float(wrong.sum() / cells),
        "brier": float(np.sum(np.where(observed, (y_prob - np.nan_to_num(y_true)) ** 2, 0.0)) / cells),
    }


def multilabel_metrics(y_true: object, y_prob: object, threshold: float = 0.5) -> dict[str, float]:
    """Metrics for several yes/no findings per case (e.g. several lesions on one image).

    Args:
        y_true: (n, K) 0/1 indicator matrix; NaN where a label was not observed (an assay not run), left out.
        y_prob: (n, K) probability of each finding.
        threshold: probability at or above which a finding is called present.

    Returns:
        ``auroc_macro`` and ``auprc_macro`` (means over labels that have both classes; as
        ``roc_auc_score(average="macro")`` when all have), ``f1_macro``, ``subset_accuracy`` (all labels right),
        ``hamming_loss``, ``brier`` (mean squared error over all cells).
    """
    truth, prob = _validate_multilabel(y_true, y_prob)
    return _multilabel(truth, prob, float(threshold))

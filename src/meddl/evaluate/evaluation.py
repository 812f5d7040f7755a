"""The entry point the pipeline calls: every metric with its CI, curves and counts, as JSON-ready data."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from meddl.errors import MedDLError
from meddl.evaluate.bootstrap import bootstrap_metrics, check_bootstrap_arguments, paired_bootstrap_difference
from meddl.evaluate.curves import calibration_points, decision_curve, pr_points, roc_points
from meddl.evaluate.metrics import (
    _as_1d,
    _binary,
    _check_finite,
    _check_same_length,
    _confusion,
    _multiclass,
    _multilabel,
    _real_number,
    _regression,
    _validate_binary_labels,
    _validate_multiclass,
    _validate_multilabel,
    _validate_probabilities,
    binary_metrics,
    higher_is_better,
    multiclass_metrics,
    multilabel_metrics,
    regression_metrics,
)

__all__ = [
    "MAX_SCATTER_POINTS",
    "TASKS",
    "compare_to_baseline",
    "evaluate_predictions",
    "main_metric",
    "main_metric_value",
]

TASKS = ("binary", "multiclass", "multilabel", "regression", "survival")
MAX_SCATTER_POINTS = 500
_MAIN_METRIC = {
    "binary": "auroc",
    "multiclass": "auroc_macro",
    "multilabel": "auroc_macro",
    "regression": "rmse",
    "survival": "c_index",
}

MetricFunction = Callable[[np.ndarray], dict[str, float]]


def main_metric(task: str) -> str:
    """The headline metric of a task, used to compare a model with its baselines.

    Args:
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.

    Returns:
        ``"auroc"``, ``"auroc_macro"`` or ``"rmse"``.

    Raises:
        MedDLError: If ``task`` is unknown.
    """
    _check_task(task)
    return _MAIN_METRIC[task]


def main_metric_value(task: str, y_true: np.ndarray, y_score: np.ndarray) -> float:
    """The task's headline metric (:func:`main_metric`) of one set of predictions, no CI: what permutation
    importance measures the drop of. Survival: ``y_true`` is ``[time, event]`` rows, ``y_score`` starts with the
    risk column."""
    _check_task(task)
    name = main_metric(task)
    if task == "survival":
        from meddl.evaluate.survival import harrell_c

        return float(harrell_c(y_true[:, 0], (y_true[:, 1] > 0).astype(np.int64), np.atleast_2d(y_score.T).T[:, 0]))
    if task == "binary":
        return float(binary_metrics(y_true, y_score)[name])
    if task == "multiclass":
        return float(multiclass_metrics(y_true, y_score)[name])
    if task == "multilabel":
        return float(multilabel_metrics(y_true, y_score)[name])
    return float(regression_metrics(y_true, y_score)[name])


def _check_task(task: object) -> None:
    if task not in TASKS:
        raise MedDLError(f"task must be one of {list(TASKS)}, got {task!r}")


def _check_threshold(threshold: object, name: str) -> float:
    if threshold is None:
        return 0.5
    cut = _real_number(threshold)
    if cut is None or not 0.0 <= cut <= 1.0:
        raise MedDLError(f"{name} must be a probability in [0, 1], got {threshold!r}")
    return cut


def _json_ready(value: object) -> object:
    """Convert NumPy scalars/arrays to Python types and every nan/inf to None."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    return value


def _class_names(class_names: Sequence[object] | None, n_classes: int) -> list[str]:
    if class_names is None:
        return [str(k) for k in range(n_classes)]
    names = [str(name) for name in class_names]
    if len(names) != n_classes:
        raise MedDLError(f"class_names must name {n_classes} classes, got {len(names)}: {names}")
    if len(set(names)) != len(names):
        raise MedDLError(f"class_names must be unique, got {names}")
    return names


def _binary_inputs(y_true: object, y_score: object) -> tuple[np.ndarray, np.ndarray]:
    labels = _validate_binary_labels(y_true)
    score = np.asarray(y_score)
    if score.ndim != 1:
        raise MedDLError(
            f"y_score for a binary task must be the probability of class 1, shape (n,), got shape {score.shape}"
        )
    prob = _validate_probabilities(score, "y_score")
    _check_same_length(labels, prob, "y_true", "y_score")
    return labels, prob


def _multiclass_inputs(y_true: object, y_score: object) -> tuple[np.ndarray, np.ndarray]:
    score = np.asarray(y_score)
    if score.ndim != 2:
        raise MedDLError(
            f"y_score for a multiclass task must be class probabilities, shape (n, K), got shape {score.shape}"
        )
    return _validate_multiclass(y_true, score)


def _regression_inputs(y_true: object, y_score: object) -> tuple[np.ndarray, np.ndarray]:
    truth = _as_1d(y_true, "y_true", dtype=np.float64)
    pred = _as_1d(y_score, "y_score", dtype=np.float64)
    _check_same_length(truth, pred, "y_true", "y_score")
    _check_finite(truth, "y_true")
    _check_finite(pred, "y_score")
    return truth, pred


def _metric_function(
    task: str, y_true: np.ndarray, y_score: np.ndarray, threshold: float, only: str | None = None
) -> MetricFunction:
    """A function of row indices computing the task's metrics on validated arrays; with ``only`` (a caller that
    reads one metric), a binary task skips the calibration fits unless that metric is one of them."""
    if task == "binary":
        calibration = only is None or only.startswith("calibration_")
        return lambda rows: _binary(y_true[rows], y_score[rows], threshold, calibration=calibration)
    if task == "multiclass":
        return lambda rows: _multiclass(y_true[rows], y_score[rows])
    if task == "multilabel":
        return lambda rows: _multilabel(y_true[rows], y_score[rows], threshold)
    return lambda rows: _regression(y_true[rows], y_score[rows])


def _validated_inputs(task: str, y_true: object, y_score: object) -> tuple[np.ndarray, np.ndarray]:
    if task == "binary":
        return _binary_inputs(y_true, y_score)
    if task == "multiclass":
        return _multiclass_inputs(y_true, y_score)
    if task == "multilabel":
        return _validate_multilabel(y_true, y_score)
    return _regression_inputs(y_true, y_score)


def _check_groups(groups: object | None, n: int) -> np.ndarray | None:
    if groups is None:
        return None
    group_array = np.asarray(groups)
    if group_array.ndim != 1 or group_array.shape[0] != n:
        raise MedDLError(f"groups must hold one patient id per sample, shape ({n},), got {group_array.shape}")
    return group_array


def evaluate_predictions(
    task: str,
    y_true: object,
    y_score: object,
    *,
    threshold: float | None = None,
    groups: object | None = None,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    class_names: Sequence[object] | None = None,
) -> dict:
    """Evaluate a model's predictions on one data set: metrics with CIs, confusion matrix, curves.

    Args:
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        y_true: True labels (0/1 or class indices) or values, shape ``(n,)``.
        y_score: Binary: probability of class 1, ``(n,)``. Multiclass: class probabilities,
            ``(n, K)``. Regression: predictions, ``(n,)``.
        threshold: Binary only: probability at or above which a case is positive (default 0.5).
        groups: Optional patient id per row; bootstrap CIs then resample patients.
        n_bootstrap: Number of bootstrap resamples; 0 skips the CIs (they become ``[None, None]``).
        level: Coverage of the confidence intervals.
        seed: Seed of the bootstrap.
        class_names: Names of the classes in index order (classification); default ``"0"``,
            ``"1"``, ...

    Returns:
        A JSON-serialisable dict (Python types only, nan replaced by None)::

            {"task", "n", "threshold" (binary, else None),
             "metrics": {name: {"value", "ci": [low, high]}},
             "confusion_matrix": {"labels", "matrix"} or None (regression),
             "curves": binary {"roc", "pr", "calibration", "decision"};
                       multiclass {"calibration"} (top-label confidence vs accuracy);
                       regression {"scatter": {"y_true", "y_pred"}} (at most 500 points),
             "class_counts": {class name: count} (classification only)}

    Raises:
        MedDLError: On an unknown task, mismatched shapes, invalid labels or probabilities, or
            invalid bootstrap arguments.
    """
    _check_task(task)
    if task == "survival":
        raise MedDLError("task 'survival' is judged by meddl.evaluate.survival.survival_metrics (censored follow-up)")
    check_bootstrap_arguments(n_bootstrap, level)
    truth, score = _validated_inputs(task, y_true, y_score)
    n = truth.shape[0]
    group_array = _check_groups(groups, n)
    cut = _check_threshold(threshold, "threshold") if task in {"binary", "multilabel"} else math.nan

    metrics = bootstrap_metrics(
        _metric_function(task, truth, score, cut),
        n,
        n_resamples=int(n_bootstrap),
        groups=group_array,
        level=level,
        seed=seed,
    )
    undefined = undefined_metrics(task, truth, score, cut)
    for name, reason in undefined.items():
        if name in metrics:  # not a number on this data: no value, no interval — the reason instead
            metrics[name] = {"value": None, "ci": [None, None], "undefined": reason}
    result: dict[str, object] = {
        "task": task,
        "n": int(n),
        "threshold": cut if task == "binary" else None,
        "metrics": metrics,
    }
    if undefined:
        result["undefined"] = undefined
    if task == "multilabel":
        names = _class_names(class_names, score.shape[1])
        result["threshold"] = cut
        result["confusion_matrix"] = None
        per_label = {}
        observed = ~np.isnan(truth)  # a label not observed on a case (NaN) is judged on the other cases only
        for k, name in enumerate(names):
            rows = observed[:, k]
            label_metrics = _binary(truth[rows, k].astype(np.int64), score[rows, k], cut)
            per_label[name] = {key: label_metrics[key] for key in ("auroc", "auprc", "sensitivity", "specificity")}
            if not rows.all():
                per_label[name]["n_observed"] = int(rows.sum())
        result["per_label"] = per_label
        result["curves"] = {"calibration": calibration_points(truth[observed], score[observed])}
        result["class_counts"] = {name: int(np.nansum(truth[:, k])) for k, name in enumerate(names)}
        return _json_ready(result)  # type: ignore[return-value]
    if task == "regression":
        result["confusion_matrix"] = None
        shown = np.arange(n)
        if n > MAX_SCATTER_POINTS:
            shown = np.sort(np.random.default_rng(seed).choice(n, size=MAX_SCATTER_POINTS, replace=False))
        result["curves"] = {"scatter": {"y_true": truth[shown].tolist(), "y_pred": score[shown].tolist()}}
        return _json_ready(result)  # type: ignore[return-value]

    n_classes = 2 if task == "binary" else score.shape[1]
    names = _class_names(class_names, n_classes)
    if task == "binary":
        predicted = (score >= cut).astype(np.int64)
        curves = {
            "roc": roc_points(truth, score),
            "pr": pr_points(truth, score),
            "calibration": calibration_points(truth, score),
            "decision": decision_curve(truth, score),
        }
    else:
        predicted = np.argmax(score, axis=1)
        correct = (predicted == truth).astype(np.int64)
        curves = {"calibration": calibration_points(correct, score.max(axis=1))}
    counts = np.bincount(truth, minlength=n_classes)
    result["confusion_matrix"] = {"labels": names, "matrix": _confusion(truth, predicted, n_classes).tolist()}
    result["curves"] = curves
    result["class_counts"] = {name: int(count) for name, count in zip(names, counts, strict=True)}
    return _json_ready(result)  # type: ignore[return-value]


_CALIBRATION_FIT = ("calibration_slope", "calibration_intercept")


def undefined_warning(undefined: dict[str, str]) -> list[str]:
    """One line per reason: which metrics are undefined on the data, and why."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in undefined.items():
        by_reason.setdefault(reason, []).append(name)
    return [
        f"{', '.join(names)}: undefined on this data ({reason}); not reported" for reason, names in by_reason.items()
    ]


def undefined_metrics(task: str, truth: np.ndarray, score: np.ndarray, cut: float = 0.5) -> dict[str, str]:
    """Metrics that are not defined on this data, each with the reason: a sensitivity without positive cases is
    0/0, not 0. (The metric functions keep scikit-learn's ``zero_division=0`` inside bootstrap resamples; on the
    whole data set such a value is reported as undefined.)"""
    reasons: dict[str, str] = {}
    if task == "binary":
        positives, negatives = int(truth.sum()), int(len(truth) - truth.sum())
        called = int((score >= cut).sum())
        if positives == 0:
            for name in ("sensitivity", "recall", "f1", "auroc", "auprc", "balanced_accuracy", *_CALIBRATION_FIT):
                reasons[name] = "no positive cases in the data"
        if negatives == 0:
            for name in ("specificity", "auroc", "balanced_accuracy", *_CALIBRATION_FIT):
                reasons.setdefault(name, "no negative cases in the data")
        if called == 0:
            reasons.setdefault("precision", "no case was predicted positive")
        if called == len(truth):
            reasons.setdefault("npv", "no case was predicted negative")
    elif task == "multiclass":
        absent = np.setdiff1d(np.arange(score.shape[1]), np.unique(truth))
        if absent.size:
            reasons["auroc_macro"] = f"{absent.size} class(es) have no case in the data"
    elif task == "multilabel":
        column_sums, observed = np.nansum(truth, axis=0), np.sum(~np.isnan(truth), axis=0)
        if np.all((column_sums == 0) | (column_sums == observed)):
            reasons["auroc_macro"] = "every label is present in every case or in none"
    elif task == "regression" and len(truth) > 0 and np.ptp(truth) == 0:
        reasons["r2"] = "the target has one value only (no variance to explain)"
    return reasons


def compare_to_baseline(
    task: str,
    y_true: object,
    score_model: object,
    score_baseline: object,
    *,
    metric: str | None = None,
    threshold_model: float | None = None,
    threshold_baseline: float | None = None,
    groups: object | None = None,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Paired bootstrap comparison of a model with a baseline on the same rows.

    Args:
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        y_true: True labels or values, shape ``(n,)``.
        score_model: The model's scores, in the format of :func:`evaluate_predictions`.
        score_baseline: The baseline's scores, same format.
        metric: Metric to compare; default :func:`main_metric` of the task.
        threshold_model: Binary threshold of the model (default 0.5); matters only for
            threshold metrics such as ``f1``.
        threshold_baseline: Binary threshold of the baseline (default 0.5).
        groups: Optional patient id per row for a cluster bootstrap.
        n_bootstrap: Number of bootstrap resamples.
        level: Coverage of the confidence interval.
        seed: Seed of the bootstrap.

    Returns:
        A JSON-serialisable dict: ``{"metric", "higher_is_better", "model", "baseline",
        "value" (model - baseline), "ci": [low, high], "p_value"}`` with nan replaced by None.

    Raises:
        MedDLError: On an unknown task or metric, or invalid inputs.
    """
    _check_task(task)
    check_bootstrap_arguments(n_bootstrap, level)
    truth, model_score = _validated_inputs(task, y_true, score_model)
    _, baseline_score = _validated_inputs(task, y_true, score_baseline)
    if model_score.shape != baseline_score.shape:
        raise MedDLError(
            f"score_model has shape {model_score.shape} but score_baseline has shape {baseline_score.shape}"
        )
    n = truth.shape[0]
    group_array = _check_groups(groups, n)
    name = main_metric(task) if metric is None else metric
    cut_model = _check_threshold(threshold_model, "threshold_model")
    cut_baseline = _check_threshold(threshold_baseline, "threshold_baseline")
    everything = np.arange(n)
    known = _metric_function(task, truth, model_score, cut_model)(everything)
    if name not in known:
        raise MedDLError(f"metric {name!r} is not a {task} metric; choose one of {sorted(known)}")
    compute_model = _metric_function(task, truth, model_score, cut_model, only=name)
    compute_baseline = _metric_function(task, truth, baseline_score, cut_baseline, only=name)
    model_point, baseline_point = compute_model(everything), compute_baseline(everything)
    difference = paired_bootstrap_difference(
        compute_model,
        compute_baseline,
        n,
        name,
        n_resamples=int(n_bootstrap),
        groups=group_array,
        level=level,
        seed=seed,
    )
    result = {
        "metric": name,
        "higher_is_better": higher_is_better(name),
        "model": model_point[name],
        "baseline": baseline_point[name],
        **difference,
    }
    return _json_ready(result)  # type: ignore[return-value]

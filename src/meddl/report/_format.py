"""How numbers, metrics and names are written in the report and the model card.

One place decides the number of decimals, the label of each metric and the way a confidence interval is
written, so the HTML report and the model card always show the same text for the same number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = [
    "DASH",
    "LOWER_IS_BETTER",
    "THRESHOLD_METRICS",
    "as_float",
    "ci_bounds",
    "fmt_count",
    "fmt_date",
    "fmt_estimate",
    "fmt_interval",
    "fmt_metric",
    "fmt_number",
    "fmt_p_value",
    "fmt_percent",
    "fmt_seconds",
    "fmt_sig",
    "mapping",
    "metric_label",
    "model_name_label",
    "ordered_metrics",
    "sequence",
    "task_label",
]

DASH = "—"

_METRIC_LABELS: dict[str, str] = {
    "dice": "Dice",
    "iou": "IoU (Jaccard)",
    "hd95": "95th-percentile Hausdorff distance (mm)",
    "msd": "Mean surface distance (mm)",
    "auroc": "AUROC",
    "auprc": "AUPRC",
    "sensitivity": "Sensitivity (recall)",
    "specificity": "Specificity",
    "precision": "Positive predictive value (precision)",
    "npv": "Negative predictive value",
    "recall": "Recall",
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "f1": "F1 score",
    "brier": "Brier score (lower is better)",
    "ece": "Expected calibration error (lower is better)",
    "auroc_macro": "AUROC (macro average)",
    "precision_macro": "Precision (macro average)",
    "recall_macro": "Sensitivity / recall (macro average)",
    "f1_macro": "F1 score (macro average)",
    "log_loss": "Log loss (lower is better)",
    "mae": "Mean absolute error (lower is better)",
    "rmse": "Root mean squared error (lower is better)",
    "r2": "R² (variance explained)",
    "c_index": "Harrell's C (concordance)",
    "c_index_uno": "Uno's C (IPCW concordance)",
    "ibs": "Integrated Brier score (lower is better)",
}

_METRIC_ORDER: dict[str, list[str]] = {
    "binary": [
        "auroc",
        "auprc",
        "sensitivity",
        "recall",
        "specificity",
        "precision",
        "npv",
        "accuracy",
        "balanced_accuracy",
        "f1",
        "brier",
        "ece",
    ],
    "multiclass": [
        "auroc_macro",
        "accuracy",
        "balanced_accuracy",
        "recall_macro",
        "precision_macro",
        "f1_macro",
        "brier",
        "log_loss",
        "ece",
    ],
    "regression": ["mae", "rmse", "r2"],
    "survival": ["c_index", "c_index_uno", "ibs"],
}

LOWER_IS_BETTER = frozenset({"brier", "ece", "log_loss", "mae", "rmse", "ibs"})
"""Metrics where a smaller value is a better model."""

THRESHOLD_METRICS = frozenset(
    {"accuracy", "balanced_accuracy", "precision", "recall", "sensitivity", "specificity", "npv", "f1"}
)
"""Binary metrics that depend on the decision threshold (the others use the probabilities directly)."""

_THREE_DECIMALS = frozenset({"brier", "ece", "log_loss"})
_SCALE_DEPENDENT = frozenset({"mae", "rmse"})

_TASK_LABELS = {
    "binary": "Binary classification",
    "multiclass": "Multiclass classification",
    "regression": "Regression",
    "survival": "Time to event (survival)",
    "segmentation": "Segmentation (where and how big)",
    "multilabel": "Multilabel classification",
}

_MODEL_NAME_LABELS = {
    "model": "Model",
    "logistic_regression": "Logistic regression",
    "linear_regression": "Linear regression",
    "gradient_boosting": "Gradient boosting",
    "random_forest": "Random forest",
}


def mapping(value: object) -> Mapping[str, Any]:
    """Return ``value`` if it is a mapping, else an empty one, so absent sections read as empty."""
    return value if isinstance(value, Mapping) else {}


def sequence(value: object) -> list[Any]:
    """Return ``value`` as a list if it is a list or tuple, else an empty list."""
    return list(value) if isinstance(value, list | tuple) else []


def as_float(value: object) -> float | None:
    """Return ``value`` as a finite float, or None when it is missing, not a number, nan or infinite."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def fmt_number(value: object, decimals: int = 2) -> str:
    """Write a number with a fixed number of decimals, or an em dash when it is missing.

    Args:
        value: The number (None, nan and non-numbers give ``"—"``).
        decimals: Digits after the decimal point.

    Returns:
        The text, e.g. ``"0.84"``.
    """
    number = as_float(value)
    if number is None:
        return DASH
    text = f"{number:,.{decimals}f}"
    # "-0.00" reads as a real negative value; a rounded zero is zero.
    return text[1:] if text.startswith("-") and float(text.replace(",", "")) == 0 else text


def _scale_decimals(value: float | None) -> int:
    """Decimals for a value on the outcome's own scale (MAE, RMSE): three significant figures or so."""
    if value is None:
        return 2
    size = abs(value)
    if size >= 100:
        return 1 if size < 1000 else 0
    if size >= 1:
        return 2
    return 3


def _metric_decimals(name: str, reference: float | None) -> int:
    if name in _THREE_DECIMALS:
        return 3
    if name in _SCALE_DEPENDENT:
        return _scale_decimals(reference)
    return 2


def fmt_metric(name: str, value: object, reference: object = None) -> str:
    """Write one metric value with the decimals chosen for that metric.

    Args:
        name: Metric name, e.g. ``"auroc"``.
        value: The value.
        reference: Value that sets the decimals of scale-dependent metrics (MAE, RMSE); default ``value``,
            so a point estimate and its interval bounds share one number of decimals.

    Returns:
        The text, e.g. ``"0.84"`` or ``"—"``.
    """
    number = as_float(value)
    scale = as_float(reference) if reference is not None else number
    return fmt_number(number, _metric_decimals(name, scale))


def ci_bounds(ci: object) -> tuple[float, float] | None:
    """The two bounds of a confidence interval ``[low, high]``, or None when either is missing."""
    bounds = sequence(ci)
    if len(bounds) != 2:
        return None
    low, high = as_float(bounds[0]), as_float(bounds[1])
    if low is None or high is None:
        return None
    return low, high


def fmt_interval(name: str, ci: object, reference: object = None) -> str | None:
    """Write a confidence interval as ``"0.79–0.89"`` (``"-0.02 to 0.04"`` when a bound is negative).

    Args:
        name: Metric name (sets the decimals).
        ci: ``[low, high]``.
        reference: Value that sets the decimals of scale-dependent metrics.

    Returns:
        The text, or None when either bound is missing.
    """
    bounds = ci_bounds(ci)
    if bounds is None:
        return None
    low, high = bounds
    scale = reference if reference is not None else max(abs(low), abs(high))
    low_text, high_text = fmt_metric(name, low, scale), fmt_metric(name, high, scale)
    separator = " to " if low < 0 or high < 0 else "–"
    return f"{low_text}{separator}{high_text}"


def fmt_estimate(name: str, metric: object) -> str:
    """Write a metric with its 95% CI, e.g. ``"0.84 (0.79–0.89)"``.

    Args:
        name: Metric name.
        metric: ``{"value": float | None, "ci": [low, high]}``.

    Returns:
        ``"—"`` when the value is missing, ``"0.84 (no CI)"`` when the interval is missing, ``"undefined
        (no positive cases in the data)"`` when the metric is not defined on the data.
    """
    record = mapping(metric)
    if record.get("undefined"):
        return f"undefined ({record['undefined']})"
    value = as_float(record.get("value"))
    if value is None:
        return DASH
    interval = fmt_interval(name, record.get("ci"), reference=value)
    point = fmt_metric(name, value)
    return f"{point} ({interval})" if interval is not None else f"{point} (no CI)"


def fmt_p_value(value: object) -> str:
    """Write a p-value: ``"<0.001"``, three decimals below 0.01, else two."""
    number = as_float(value)
    if number is None:
        return DASH
    if number < 0.001:
        return "<0.001"
    if number < 0.01:
        return f"{number:.3f}"
    return f"{number:.2f}"


def fmt_count(value: object) -> str:
    """Write a count with thousands separators, e.g. ``"1,204"``."""
    number = as_float(value)
    if number is None:
        return DASH
    return f"{round(number):,}"


def fmt_percent(value: object, decimals: int = 1) -> str:
    """Write a percentage given on the 0–100 scale, e.g. ``"12.5%"``."""
    number = as_float(value)
    if number is None:
        return DASH
    return f"{number:.{decimals}f}%"


def fmt_seconds(value: object) -> str:
    """Write a duration, e.g. ``"42.1 s"`` or ``"3 min 05 s"``."""
    number = as_float(value)
    if number is None:
        return DASH
    if number < 60:
        return f"{number:.1f} s"
    minutes, seconds = divmod(round(number), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_date(value: object) -> str:
    """Write an ISO 8601 timestamp as ``"2026-11-24 10:00 UTC"``; other text is returned unchanged."""
    if value is None or value == "":
        return DASH
    text = str(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    offset = moment.utcoffset()
    zone = "UTC" if offset is not None and offset.total_seconds() == 0 else moment.strftime("UTC%z")
    return f"{moment.strftime('%Y-%m-%d %H:%M')} {zone}"


_AT_LABELS = {
    "auc": "Time-dependent AUC at {}",
    "brier": "Brier score at {} (lower is better)",
    "calibration_slope": "Calibration slope at {}",
}


def metric_label(name: str) -> str:
    """Human label of a metric, e.g. ``"auroc"`` → ``"AUROC"``, ``"auc@365"`` → ``"Time-dependent AUC at 365"``;
    unknown names are shown as given."""
    base, at, horizon = name.partition("@")
    if at and base in _AT_LABELS:
        return _AT_LABELS[base].format(horizon)
    if at and base.startswith("cif_error_cause"):
        return f"Cause {base.removeprefix('cif_error_cause')}: predicted − observed incidence at {horizon}"
    if base.startswith("c_index_cause"):
        return f"Cause {base.removeprefix('c_index_cause')}: concordance (Wolbers)"
    return _METRIC_LABELS.get(name, name)


def task_label(task: object) -> str:
    """Human label of a task, e.g. ``"binary"`` → ``"Binary classification"``."""
    return _TASK_LABELS.get(str(task), str(task))


def model_name_label(name: str) -> str:
    """Human label of a model or baseline key, e.g. ``"logistic_regression"`` → ``"Logistic regression"``."""
    if name in _MODEL_NAME_LABELS:
        return _MODEL_NAME_LABELS[name]
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else name


def ordered_metrics(task: object, names: Iterable[str]) -> list[str]:
    """Order metric names for display: the task's usual order first, then any others as given.

    In a binary report ``recall`` is left out when ``sensitivity`` is present: they are the same number and
    a clinician reads "sensitivity".
    """
    present = list(dict.fromkeys(names))
    known = [name for name in _METRIC_ORDER.get(str(task), []) if name in present]
    others = [name for name in present if name not in known]
    ordered = known + others
    if str(task) == "binary" and "sensitivity" in ordered and "recall" in ordered:
        ordered.remove("recall")
    return ordered


def fmt_sig(value: object) -> str:
    """Write a number with about three significant figures, e.g. ``0.0123`` or ``12.3`` or ``1,234``."""
    number = as_float(value)
    if number is None:
        return DASH
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    if number == 0:
        return "0"
    return f"{number:.3g}"


def write_text_output(text: str, path: Path | str, default_name: str) -> Path:
    """Write ``text`` to ``path``, or to ``path/default_name`` when ``path`` is a folder; parents are created."""
    target = Path(path)
    if target.is_dir():
        target = target / default_name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target

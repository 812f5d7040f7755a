"""Evaluation: metrics checked against scikit-learn, bootstrap CIs, thresholds, curves and baselines."""

from meddl.evaluate.baselines import BASELINES, default_baselines, fit_baseline, predict_baseline
from meddl.evaluate.bootstrap import bootstrap_metrics, paired_bootstrap_difference
from meddl.evaluate.curves import MAX_CURVE_POINTS, calibration_points, decision_curve, pr_points, roc_points
from meddl.evaluate.evaluation import (
    MAX_SCATTER_POINTS,
    TASKS,
    compare_to_baseline,
    evaluate_predictions,
    main_metric,
)
from meddl.evaluate.metrics import (
    binary_metrics,
    confusion_matrix,
    expected_calibration_error,
    higher_is_better,
    multiclass_metrics,
    regression_metrics,
)
from meddl.evaluate.threshold import THRESHOLD_RULES, choose_threshold, decision_threshold, predicted_labels

__all__ = [
    "BASELINES",
    "MAX_CURVE_POINTS",
    "MAX_SCATTER_POINTS",
    "TASKS",
    "THRESHOLD_RULES",
    "binary_metrics",
    "bootstrap_metrics",
    "calibration_points",
    "choose_threshold",
    "compare_to_baseline",
    "confusion_matrix",
    "decision_curve",
    "decision_threshold",
    "default_baselines",
    "evaluate_predictions",
    "expected_calibration_error",
    "fit_baseline",
    "higher_is_better",
    "main_metric",
    "multiclass_metrics",
    "paired_bootstrap_difference",
    "pr_points",
    "predict_baseline",
    "predicted_labels",
    "regression_metrics",
    "roc_points",
]

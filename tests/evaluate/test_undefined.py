"""A metric that the data cannot define (a sensitivity with no positive case) is reported as undefined with the
reason — never as 0.000 (0.000–0.000)."""

from __future__ import annotations

import numpy as np

from meddl.evaluate import evaluate_predictions
from meddl.evaluate.evaluation import undefined_metrics, undefined_warning
from meddl.report._format import fmt_estimate


def test_no_positive_cases_leaves_sensitivity_auroc_and_balanced_accuracy_undefined() -> None:
    result = evaluate_predictions("binary", np.zeros(40, int), np.linspace(0.1, 0.9, 40), n_bootstrap=20)
    metrics = result["metrics"]
    for name in ("sensitivity", "recall", "f1", "auroc", "auprc", "balanced_accuracy"):
        assert metrics[name] == {"value": None, "ci": [None, None], "undefined": "no positive cases in the data"}
    assert metrics["specificity"]["value"] == 0.5  # defined: there are negatives
    assert fmt_estimate("sensitivity", metrics["sensitivity"]) == "undefined (no positive cases in the data)"
    assert undefined_warning(result["undefined"]) == [
        "sensitivity, recall, f1, auroc, auprc, balanced_accuracy, calibration_slope, calibration_intercept: undefined "
        "on this data (no positive cases in the data); not reported"
    ]


def test_defined_data_has_no_undefined_metric() -> None:
    truth = np.array([0, 1] * 20)
    assert undefined_metrics("binary", truth, np.linspace(0, 1, 40), 0.5) == {}
    assert "undefined" not in evaluate_predictions("binary", truth, np.linspace(0, 1, 40), n_bootstrap=0)


def test_other_tasks_name_what_is_missing() -> None:
    assert undefined_metrics("binary", np.ones(5, int), np.full(5, 0.9), 0.5) == {
        "specificity": "no negative cases in the data",
        "auroc": "no negative cases in the data",
        "balanced_accuracy": "no negative cases in the data",
        "calibration_slope": "no negative cases in the data",
        "calibration_intercept": "no negative cases in the data",
        "npv": "no case was predicted negative",
    }
    probabilities = np.full((6, 3), 1 / 3)
    assert undefined_metrics("multiclass", np.array([0, 1, 0, 1, 0, 1]), probabilities) == {
        "auroc_macro": "1 class(es) have no case in the data"
    }
    assert undefined_metrics("regression", np.full(5, 2.0), np.arange(5.0)) == {
        "r2": "the target has one value only (no variance to explain)"
    }

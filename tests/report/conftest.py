"""Realistic run records for the report tests, built from simulated predictions (no training needed)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from meddl.report import render_model_card, render_report

CONFIG_YAML = """name: sepsis-risk
task: binary
data:
  path: data/icu_admissions.csv
  target: sepsis_48h
  positive_label: "yes"
  patient_id: patient_id
preprocess:
  missing: median
  missing_indicators: true
  scale: standard
  imbalance: class_weight
model:
  arch: mlp
  hidden: [64, 32]
  dropout: 0.2
train:
  epochs: 100
  batch_size: 64
  learning_rate: 0.001
  weight_decay: 0.0001
  scheduler: cosine
  seed: 7
evaluate:
  bootstrap: 1000
  threshold: youden
"""


def _binary_curves(y_true: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    order = np.argsort(-score)
    truth = y_true[order]
    positives, negatives = truth.sum(), (1 - truth).sum()
    tps = np.concatenate([[0], np.cumsum(truth)])
    fps = np.concatenate([[0], np.cumsum(1 - truth)])
    recall = tps[1:] / positives
    precision = tps[1:] / np.arange(1, truth.size + 1)
    bins = np.clip((score * 10).astype(int), 0, 9)
    filled = [b for b in range(10) if (bins == b).any()]
    thresholds = np.round(np.arange(1, 100) / 100, 2)
    n = y_true.size
    prevalence = positives / n
    model_nb = []
    for pt in thresholds:
        called = score >= pt
        tp = int((called & (y_true == 1)).sum())
        fp = int((called & (y_true == 0)).sum())
        model_nb.append(tp / n - fp / n * pt / (1 - pt))
    return {
        "roc": {"fpr": (fps / negatives).tolist(), "tpr": (tps / positives).tolist()},
        "pr": {"recall": recall.tolist(), "precision": precision.tolist()},
        "calibration": {
            "mean_predicted": [float(score[bins == b].mean()) for b in filled],
            "observed": [float(y_true[bins == b].mean()) for b in filled],
            "count": [int((bins == b).sum()) for b in filled],
        },
        "decision": {
            "threshold": thresholds.tolist(),
            "model": model_nb,
            "treat_all": (prevalence - (1 - prevalence) * thresholds / (1 - thresholds)).tolist(),
            "treat_none": [0.0] * thresholds.size,
        },
    }


def _binary_eval(rng: np.random.Generator, signal: float, metrics: dict[str, tuple[float, float, float]]) -> dict:
    y_true = (rng.random(150) < 0.3).astype(int)
    score = 1 / (1 + np.exp(-(signal * (y_true - 0.5) * 2 + rng.normal(0, 1, 150))))
    predicted = (score >= 0.42).astype(int)
    matrix = [
        [int(((y_true == 0) & (predicted == 0)).sum()), int(((y_true == 0) & (predicted == 1)).sum())],
        [int(((y_true == 1) & (predicted == 0)).sum()), int(((y_true == 1) & (predicted == 1)).sum())],
    ]
    return {
        "task": "binary",
        "n": 150,
        "threshold": 0.42,
        "metrics": {name: {"value": v, "ci": [lo, hi]} for name, (v, lo, hi) in metrics.items()},
        "confusion_matrix": {"labels": ["no", "yes"], "matrix": matrix},
        "curves": _binary_curves(y_true, score),
        "class_counts": {"no": int((y_true == 0).sum()), "yes": int(y_true.sum())},
    }


MODEL_METRICS = {
    "accuracy": (0.812, 0.751, 0.868),
    "balanced_accuracy": (0.794, 0.731, 0.852),
    "precision": (0.667, 0.552, 0.771),
    "recall": (0.756, 0.641, 0.862),
    "sensitivity": (0.756, 0.641, 0.862),
    "specificity": (0.833, 0.762, 0.897),
    "npv": (0.889, 0.825, 0.941),
    "f1": (0.708, 0.615, 0.789),
    "auroc": (0.864, 0.803, 0.917),
    "auprc": (0.741, 0.639, 0.833),
    "brier": (0.1321, 0.1103, 0.1547),
    "ece": (0.0412, 0.0234, 0.0688),
}


def make_binary_run() -> dict[str, Any]:
    """A training run of a binary model with two baselines, explanations and cross-validation."""
    rng = np.random.default_rng(0)
    logistic = {name: (v - 0.03, lo - 0.03, hi - 0.03) for name, (v, lo, hi) in MODEL_METRICS.items()}
    boosting = {name: (v - 0.01, lo - 0.02, hi - 0.01) for name, (v, lo, hi) in MODEL_METRICS.items()}
    history = [
        {
            "epoch": epoch,
            "train_loss": 0.7 * 0.93**epoch,
            "val_loss": 0.62 * 0.95**epoch + 0.002 * epoch,
            "val_auroc": 0.86 - 0.2 * 0.8**epoch,
        }
        for epoch in range(1, 31)
    ]
    return {
        "kind": "train",
        "name": "sepsis-risk",
        "task": "binary",
        "created": "2026-11-24T10:00:00Z",
        "meddl_version": "0.1.0",
        "bundle_hash": "3f7a9c" + "0" * 58,
        "config_yaml": CONFIG_YAML,
        "data": {
            "path": "data/icu_admissions.csv",
            "n_rows_read": 1003,
            "n_rows_used": 1000,
            "n_patients": 812,
            "target": "sepsis_48h",
            "classes": ["no", "yes"],
            "positive_label": "yes",
            "dropped": {"missing target": 3, "missing feature values (preprocess.missing=drop)": 0},
            "columns": [
                {
                    "name": "age",
                    "type": "numeric",
                    "n_missing": 0,
                    "pct_missing": 0.0,
                    "summary": "median 64 (IQR 52–75)",
                },
                {"name": "lactate", "type": "numeric", "n_missing": 121, "pct_missing": 12.1, "summary": "median 1.9"},
                {"name": "sex", "type": "binary", "n_missing": 0, "pct_missing": 0.0, "summary": "F 46%, M 54%"},
                {
                    "name": "<script>alert(1)</script>",
                    "type": "categorical",
                    "n_missing": 4,
                    "pct_missing": 0.4,
                    "summary": "3 levels",
                },
                {"name": "sepsis_48h", "type": "binary", "n_missing": 3, "pct_missing": 0.3, "summary": "yes 30%"},
            ],
            "splits": {"train": 700, "validation": 150, "test": 150},
            "class_balance": {
                "train": {"no": 490, "yes": 210},
                "validation": {"no": 105, "yes": 45},
                "test": {"no": 105, "yes": 45},
            },
            "notes": ["48-hour horizon: 12 patients discharged before 48 hours were excluded"],
        },
        "model": {"arch": "mlp", "params": {"hidden": [64, 32], "dropout": 0.2}, "n_parameters": 3265},
        "training": {
            "history": history,
            "monitor": "auroc",
            "best_epoch": 22,
            "epochs_run": 30,
            "seconds": 41.7,
            "device": "cpu",
            "stopped_early": True,
        },
        "evaluation": {
            "split": "test",
            "threshold": 0.42,
            "threshold_rule": "youden",
            "model": _binary_eval(rng, 1.6, MODEL_METRICS),
            "baselines": {
                "logistic_regression": _binary_eval(rng, 1.3, logistic),
                "gradient_boosting": _binary_eval(rng, 1.5, boosting),
            },
            "comparisons": {
                "logistic_regression": {"metric": "auroc", "value": 0.031, "ci": [0.004, 0.058], "p_value": 0.0213},
                "gradient_boosting": {"metric": "auroc", "value": 0.012, "ci": [-0.021, 0.044], "p_value": 0.47},
            },
        },
        "explanations": {
            "permutation_importance": [
                {"feature": "lactate", "importance": 0.121, "std": 0.018},
                {"feature": "age", "importance": 0.064, "std": 0.011},
                {"feature": "sex", "importance": -0.002, "std": 0.004},
            ],
            "integrated_gradients": [
                {"feature": "lactate", "mean_abs_attribution": 0.31},
                {"feature": "age", "mean_abs_attribution": 0.18},
            ],
        },
        "cross_validation": {
            "folds": 5,
            "metric": "auroc",
            "per_fold": [0.842, 0.861, 0.828, 0.873, 0.851],
            "mean": 0.851,
            "std": 0.017,
        },
        "warnings": ["column 'lactate' has 12.1% missing values"],
    }


def make_multiclass_run() -> dict[str, Any]:
    """A multiclass run: top-label calibration, a 3×3 confusion matrix, no baselines."""
    classes = ["normal", "benign", "malignant"]
    metrics = {
        "accuracy": (0.78, 0.72, 0.83),
        "balanced_accuracy": (0.74, 0.68, 0.80),
        "precision_macro": (0.75, 0.69, 0.81),
        "recall_macro": (0.74, 0.68, 0.80),
        "f1_macro": (0.74, 0.68, 0.80),
        "auroc_macro": (0.89, 0.85, 0.93),
        "brier": (0.312, 0.281, 0.344),
        "log_loss": (0.561, 0.502, 0.627),
        "ece": (0.052, 0.031, 0.079),
    }
    return {
        "kind": "train",
        "name": "lesion-type",
        "task": "multiclass",
        "created": "2026-11-24T11:30:00+00:00",
        "meddl_version": "0.1.0",
        "data": {
            "path": "data/lesions.parquet",
            "n_rows_read": 1500,
            "n_rows_used": 1500,
            "n_patients": None,
            "target": "diagnosis",
            "classes": classes,
            "dropped": {},
            "splits": {"train": 1050, "validation": 225, "test": 225},
            "class_balance": {"test": {"normal": 120, "benign": 70, "malignant": 35}},
        },
        "model": {"arch": "transformer", "params": {"d_model": 32, "heads": 4}, "n_parameters": 20411},
        "evaluation": {
            "split": "test",
            "model": {
                "task": "multiclass",
                "n": 225,
                "threshold": None,
                "metrics": {name: {"value": v, "ci": [lo, hi]} for name, (v, lo, hi) in metrics.items()},
                "confusion_matrix": {"labels": classes, "matrix": [[101, 15, 4], [12, 51, 7], [3, 8, 24]]},
                "curves": {
                    "calibration": {
                        "mean_predicted": [0.45, 0.62, 0.78, 0.93],
                        "observed": [0.40, 0.60, 0.81, 0.95],
                        "count": [20, 55, 80, 70],
                    }
                },
                "class_counts": {"normal": 120, "benign": 70, "malignant": 35},
            },
        },
    }


def make_regression_run() -> dict[str, Any]:
    """A regression run with a linear-regression baseline and a scatter of predictions."""
    rng = np.random.default_rng(1)
    observed = rng.normal(120, 15, 200)
    predicted = observed + rng.normal(0, 8, 200)
    metric = {"mae": (6.41, 5.72, 7.13), "rmse": (8.05, 7.18, 8.96), "r2": (0.712, 0.655, 0.761)}
    baseline = {"mae": (7.9, 7.1, 8.8), "rmse": (9.93, 8.91, 11.02), "r2": (0.561, 0.49, 0.62)}
    return {
        "kind": "train",
        "name": "systolic-bp",
        "task": "regression",
        "data": {"path": "bp.csv", "n_rows_read": 1340, "n_rows_used": 1340, "target": "sbp_mmhg", "dropped": {}},
        "evaluation": {
            "split": "test",
            "model": {
                "task": "regression",
                "n": 200,
                "threshold": None,
                "metrics": {name: {"value": v, "ci": [lo, hi]} for name, (v, lo, hi) in metric.items()},
                "confusion_matrix": None,
                "curves": {"scatter": {"y_true": observed.tolist(), "y_pred": predicted.tolist()}},
            },
            "baselines": {
                "linear_regression": {
                    "task": "regression",
                    "n": 200,
                    "metrics": {name: {"value": v, "ci": [lo, hi]} for name, (v, lo, hi) in baseline.items()},
                }
            },
            "comparisons": {
                "linear_regression": {"metric": "rmse", "value": -1.88, "ci": [-2.61, -1.12], "p_value": 0.0004}
            },
        },
    }


def make_external_run() -> dict[str, Any]:
    """The binary model evaluated on another site's data, small and shifted."""
    run = make_binary_run()
    run["kind"] = "external_evaluation"
    for key in ("training", "cross_validation", "explanations"):
        run.pop(key)
    run["data"] = {
        "path": "other_site.csv",
        "n_rows_read": 90,
        "n_rows_used": 86,
        "n_patients": 86,
        "target": "sepsis_48h",
        "classes": ["no", "yes"],
        "positive_label": "yes",
        "dropped": {"missing target": 4},
    }
    run["evaluation"]["split"] = "other_site.csv"
    run["evaluation"]["model"]["n"] = 86
    run["evaluation"]["model"]["metrics"]["auroc"] = {"value": 0.71, "ci": [0.58, 0.83]}
    run["shift"] = [
        {
            "column": f"lab_{index:02d}",
            "kind": "numeric",
            "train": f"mean {50 + index:.1f}",
            "new": f"mean {60 + index:.1f}",
            "score": round(0.9 - 0.06 * index, 2),
            "measure": "standardised mean difference",
        }
        for index in range(14)
    ]
    return run


def make_minimal_run() -> dict[str, Any]:
    """Only the required keys, with None where a value could not be computed."""
    return {
        "kind": "train",
        "name": "minimal",
        "task": "binary",
        "evaluation": {
            "model": {
                "task": "binary",
                "n": None,
                "threshold": None,
                "metrics": {"auroc": {"value": 0.5, "ci": [None, None]}, "brier": {"value": None, "ci": [None, None]}},
                "confusion_matrix": None,
                "curves": {"roc": None},
            }
        },
    }


def without_figures(run: dict[str, Any]) -> dict[str, Any]:
    """The run with the data of every figure removed, for tests about text that need not draw (fast)."""
    evaluation = run["evaluation"]
    for record in [evaluation["model"], *(evaluation.get("baselines") or {}).values()]:
        record["curves"] = None
        record["confusion_matrix"] = None
    run.pop("explanations", None)
    run.pop("shift", None)
    if run.get("training"):
        run["training"]["history"] = []
    return run


RUN_BUILDERS = {
    "binary": make_binary_run,
    "multiclass": make_multiclass_run,
    "regression": make_regression_run,
    "external": make_external_run,
    "minimal": make_minimal_run,
}


@pytest.fixture
def binary_run() -> dict[str, Any]:
    return make_binary_run()


@pytest.fixture
def external_run() -> dict[str, Any]:
    return make_external_run()


@pytest.fixture
def minimal_run() -> dict[str, Any]:
    return make_minimal_run()


@pytest.fixture(scope="session")
def rendered_reports() -> dict[str, str]:
    """The HTML report of each kind of run, rendered once (the figures take a second or two)."""
    return {kind: render_report(build()) for kind, build in RUN_BUILDERS.items()}


@pytest.fixture(scope="session")
def rendered_cards() -> dict[str, str]:
    """The model card of each kind of run, rendered once."""
    return {kind: render_model_card(build()) for kind, build in RUN_BUILDERS.items()}

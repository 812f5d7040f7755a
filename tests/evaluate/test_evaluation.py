"""The pipeline's entry point: structure, agreement with the metric functions, JSON safety."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from meddl.errors import MedDLError
from meddl.evaluate import (
    binary_metrics,
    compare_to_baseline,
    evaluate_predictions,
    main_metric,
    multiclass_metrics,
    regression_metrics,
)


def _binary(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = (rng.random(n) < 0.35).astype(int)
    return y_true, np.clip(0.4 * y_true + 0.6 * rng.random(n), 0, 1)


def _multiclass(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 2.0 * np.eye(3)[y_true]
    return y_true, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def _strict_json(result: dict) -> dict:
    return json.loads(json.dumps(result, allow_nan=False))


def test_binary_report_structure_and_values() -> None:
    y_true, y_prob = _binary()
    result = evaluate_predictions(
        "binary", y_true, y_prob, threshold=0.4, n_bootstrap=100, class_names=["healthy", "disease"]
    )
    assert _strict_json(result) == result
    assert result["task"] == "binary" and result["n"] == 300 and result["threshold"] == 0.4
    expected = binary_metrics(y_true, y_prob, threshold=0.4)
    assert set(result["metrics"]) == set(expected)
    for name, value in expected.items():
        entry = result["metrics"][name]
        assert entry["value"] == pytest.approx(value)
        assert entry["ci"][0] <= entry["value"] <= entry["ci"][1]
    predicted = (y_prob >= 0.4).astype(int)
    assert result["confusion_matrix"]["labels"] == ["healthy", "disease"]
    matrix = np.array(result["confusion_matrix"]["matrix"])
    assert matrix[1, 1] == np.sum((predicted == 1) & (y_true == 1))
    assert matrix[0, 1] == np.sum((predicted == 1) & (y_true == 0))
    assert result["class_counts"] == {
        "healthy": int(np.sum(y_true == 0)),
        "disease": int(np.sum(y_true == 1)),
    }
    assert set(result["curves"]) == {"roc", "pr", "calibration", "decision"}
    assert len(result["curves"]["decision"]["threshold"]) == 99


def test_binary_single_class_gives_null_auroc_and_is_strict_json() -> None:
    result = evaluate_predictions("binary", np.zeros(30, dtype=int), np.linspace(0, 1, 30), n_bootstrap=50)
    _strict_json(result)
    assert result["metrics"]["auroc"] == {
        "value": None,
        "ci": [None, None],
        "undefined": "no positive cases in the data",
    }
    assert result["curves"]["roc"] == {"fpr": [], "tpr": []}
    assert result["class_counts"] == {"0": 30, "1": 0}


def test_multiclass_report() -> None:
    y_true, y_prob = _multiclass()
    result = evaluate_predictions("multiclass", y_true, y_prob, n_bootstrap=100, class_names=["a", "b", "c"])
    assert _strict_json(result) == result
    assert result["threshold"] is None
    expected = multiclass_metrics(y_true, y_prob)
    for name, value in expected.items():
        assert result["metrics"][name]["value"] == pytest.approx(value)
    assert result["metrics"]["auroc_macro"]["value"] == pytest.approx(roc_auc_score(y_true, y_prob, multi_class="ovr"))
    matrix = np.array(result["confusion_matrix"]["matrix"])
    assert matrix.sum() == 300 and np.trace(matrix) == np.sum(y_prob.argmax(1) == y_true)
    assert list(result["curves"]) == ["calibration"]
    assert sum(result["curves"]["calibration"]["count"]) == 300
    assert result["class_counts"] == {name: int(np.sum(y_true == k)) for k, name in enumerate("abc")}


def test_regression_report_scatter_downsampled() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.normal(size=1200)
    y_pred = y_true + 0.5 * rng.normal(size=1200)
    result = evaluate_predictions("regression", y_true, y_pred, n_bootstrap=50, seed=3)
    assert _strict_json(result) == result
    assert result["confusion_matrix"] is None and "class_counts" not in result
    for name, value in regression_metrics(y_true, y_pred).items():
        assert result["metrics"][name]["value"] == pytest.approx(value)
    scatter = result["curves"]["scatter"]
    assert len(scatter["y_true"]) == len(scatter["y_pred"]) == 500
    # the points kept are real (y_true, y_pred) pairs
    pairs = set(zip(y_true.tolist(), y_pred.tolist(), strict=True))
    assert all(pair in pairs for pair in zip(scatter["y_true"], scatter["y_pred"], strict=True))


def test_no_bootstrap_gives_null_intervals() -> None:
    y_true, y_prob = _binary()
    result = evaluate_predictions("binary", y_true, y_prob, n_bootstrap=0)
    _strict_json(result)
    assert all(entry["ci"] == [None, None] for entry in result["metrics"].values())


def test_deterministic_and_groups_change_intervals() -> None:
    y_true, y_prob = _binary()
    patients = np.repeat(np.arange(60), 5)
    first = evaluate_predictions("binary", y_true, y_prob, n_bootstrap=100, groups=patients, seed=1)
    again = evaluate_predictions("binary", y_true, y_prob, n_bootstrap=100, groups=patients, seed=1)
    by_row = evaluate_predictions("binary", y_true, y_prob, n_bootstrap=100, seed=1)
    assert first == again
    assert first["metrics"]["auroc"]["ci"] != by_row["metrics"]["auroc"]["ci"]
    assert first["metrics"]["auroc"]["value"] == by_row["metrics"]["auroc"]["value"]


def test_main_metric() -> None:
    assert [main_metric(t) for t in ["binary", "multiclass", "regression"]] == [
        "auroc",
        "auroc_macro",
        "rmse",
    ]


def test_compare_to_baseline_binary() -> None:
    rng = np.random.default_rng(2)
    y_true = (rng.random(400) < 0.4).astype(int)
    model = np.clip(0.5 * y_true + 0.5 * rng.random(400), 0, 1)
    baseline = np.clip(0.1 * y_true + 0.9 * rng.random(400), 0, 1)
    result = compare_to_baseline(
        "binary",
        y_true,
        model,
        baseline,
        metric="auroc",
        threshold_model=0.5,
        threshold_baseline=0.5,
        n_bootstrap=200,
    )
    assert _strict_json(result) == result
    assert result["metric"] == "auroc" and result["higher_is_better"] is True
    assert result["model"] == pytest.approx(roc_auc_score(y_true, model))
    assert result["baseline"] == pytest.approx(roc_auc_score(y_true, baseline))
    assert result["value"] == pytest.approx(result["model"] - result["baseline"])
    assert result["ci"][0] > 0 and result["p_value"] < 0.05


def test_compare_to_baseline_regression_default_metric() -> None:
    rng = np.random.default_rng(3)
    y_true = rng.normal(size=200)
    result = compare_to_baseline(
        "regression",
        y_true,
        y_true + 0.1 * rng.normal(size=200),
        y_true + rng.normal(size=200),
        metric=None,
        threshold_model=None,
        threshold_baseline=None,
        n_bootstrap=100,
        groups=np.repeat(np.arange(40), 5),
    )
    assert result["metric"] == "rmse" and result["higher_is_better"] is False
    assert result["value"] < 0 and result["ci"][1] < 0


def test_compare_to_baseline_multiclass() -> None:
    y_true, y_prob = _multiclass()
    uniform = np.full_like(y_prob, 1 / 3)
    result = compare_to_baseline(
        "multiclass",
        y_true,
        y_prob,
        uniform,
        metric="auroc_macro",
        threshold_model=None,
        threshold_baseline=None,
        n_bootstrap=50,
    )
    assert result["baseline"] == pytest.approx(0.5)
    assert result["value"] > 0.2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: evaluate_predictions("survival", [0, 1], [0.1, 0.9]), "task"),
        (lambda: evaluate_predictions("binary", [0, 1], [[0.9, 0.1], [0.1, 0.9]]), "y_score"),
        (lambda: evaluate_predictions("binary", [0, 1], [0.1, 0.9], threshold=2.0), "threshold"),
        (lambda: evaluate_predictions("binary", [0, 1], [0.1, 0.9], n_bootstrap=-5), "n_bootstrap"),
        (lambda: evaluate_predictions("binary", [0, 1], [0.1, 0.9], groups=[1]), "groups"),
        (lambda: evaluate_predictions("binary", [0, 1], [0.1, 0.9], class_names=["a"]), "class_names"),
        (lambda: evaluate_predictions("multiclass", [0, 1], [0.1, 0.9]), "y_score"),
        (lambda: evaluate_predictions("regression", [0, 1], [0.1, np.nan]), "y_score"),
        (
            lambda: compare_to_baseline(
                "binary", [0, 1], [0.1, 0.9], [0.2, 0.8], metric="rmse", threshold_model=0.5,
                threshold_baseline=0.5, n_bootstrap=0,
            ),
            "metric 'rmse'",
        ),
    ],
)  # fmt: skip
def test_bad_input(call, message: str) -> None:
    with pytest.raises(MedDLError, match=message):
        call()


def test_numpy_scalars_accepted_for_threshold_and_level() -> None:
    y_true, y_prob = _binary()
    result = evaluate_predictions(
        "binary", y_true, y_prob, threshold=np.float32(0.25), level=np.float64(0.9), n_bootstrap=20
    )
    assert result["threshold"] == 0.25
    assert result["metrics"]["recall"]["value"] == pytest.approx(binary_metrics(y_true, y_prob, 0.25)["recall"])

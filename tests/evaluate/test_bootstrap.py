"""Bootstrap confidence intervals: coverage of the point value, determinism, width, clusters."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from meddl.errors import MedDLError
from meddl.evaluate import bootstrap_metrics, paired_bootstrap_difference
from meddl.evaluate.metrics import _binary


def _binary_data(n: int, seed: int = 0, signal: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = (rng.random(n) < 0.3).astype(np.int64)
    y_prob = np.clip(signal * y_true + rng.random(n) * (1 - signal), 0, 1)
    return y_true, y_prob


def _metric_function(y_true: np.ndarray, y_prob: np.ndarray):
    return lambda rows: _binary(y_true[rows], y_prob[rows], 0.5)


def test_point_value_is_the_full_data_metric_and_inside_ci() -> None:
    y_true, y_prob = _binary_data(400)
    result = bootstrap_metrics(_metric_function(y_true, y_prob), 400, n_resamples=300, seed=1)
    assert result["auroc"]["value"] == pytest.approx(roc_auc_score(y_true, y_prob))
    for name, entry in result.items():
        low, high = entry["ci"]
        assert low <= entry["value"] <= high, name
        assert all(type(x) is float for x in [entry["value"], low, high])
    json.dumps(result)


def test_deterministic_per_seed_and_different_across_seeds() -> None:
    y_true, y_prob = _binary_data(200)
    compute = _metric_function(y_true, y_prob)
    first = bootstrap_metrics(compute, 200, n_resamples=200, seed=3)
    again = bootstrap_metrics(compute, 200, n_resamples=200, seed=3)
    other = bootstrap_metrics(compute, 200, n_resamples=200, seed=4)
    assert first == again
    assert first["auroc"]["ci"] != other["auroc"]["ci"]


def test_interval_narrows_with_more_data() -> None:
    small = _binary_data(100, seed=5)
    large = _binary_data(3000, seed=5)
    width = {}
    for label, (y_true, y_prob) in {"small": small, "large": large}.items():
        ci = bootstrap_metrics(_metric_function(y_true, y_prob), y_true.size, n_resamples=300)["auroc"]["ci"]
        width[label] = ci[1] - ci[0]
    assert width["large"] < width["small"] / 2


def test_level_controls_width() -> None:
    y_true, y_prob = _binary_data(300)
    compute = _metric_function(y_true, y_prob)
    wide = bootstrap_metrics(compute, 300, n_resamples=300, level=0.99)["auroc"]["ci"]
    narrow = bootstrap_metrics(compute, 300, n_resamples=300, level=0.5)["auroc"]["ci"]
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_zero_resamples_gives_nan_interval() -> None:
    y_true, y_prob = _binary_data(50)
    result = bootstrap_metrics(_metric_function(y_true, y_prob), 50, n_resamples=0)
    assert math.isfinite(result["accuracy"]["value"])
    assert all(math.isnan(x) for x in result["accuracy"]["ci"])


def test_nan_resamples_ignored_but_mostly_nan_gives_nan_interval() -> None:
    def sometimes_nan(rows: np.ndarray) -> dict[str, float]:
        # about two thirds of resamples are nan for "rare", one third for "common"
        remainder = int(rows.sum()) % 3
        return {
            "rare": float(rows.mean()) if remainder == 0 else math.nan,
            "common": float(rows.mean()) if remainder != 0 else math.nan,
        }

    result = bootstrap_metrics(sometimes_nan, 50, n_resamples=300)
    assert all(math.isnan(x) for x in result["rare"]["ci"])
    low, high = result["common"]["ci"]
    assert low < 24.5 < high  # mean row index of 0..49, over the finite resamples only


def test_one_class_resamples_are_skipped_for_auroc() -> None:
    # 4 positives in 20 rows: about 1% of resamples have none and a nan AUROC; the CI stays finite
    y_true = np.zeros(20, dtype=np.int64)
    y_true[:4] = 1
    result = bootstrap_metrics(_metric_function(y_true, np.linspace(0, 1, 20)), 20, n_resamples=200)
    assert all(math.isfinite(x) for x in result["auroc"]["ci"])


def test_cluster_bootstrap_draws_whole_patients() -> None:
    rng = np.random.default_rng(0)
    rows_per_patient = rng.integers(1, 6, size=30)
    patient_ids = np.repeat([f"p{k:02d}" for k in range(30)], rows_per_patient)
    rng.shuffle(patient_ids)  # rows of one patient are not contiguous
    n = patient_ids.size
    seen: list[np.ndarray] = []

    def record(rows: np.ndarray) -> dict[str, float]:
        seen.append(rows.copy())
        return {"n_rows": float(rows.size)}

    bootstrap_metrics(record, n, n_resamples=50, groups=patient_ids, seed=2)
    resamples = seen[1:]  # the first call is on all rows
    assert len(resamples) == 50
    rows_of = {pid: set(np.flatnonzero(patient_ids == pid)) for pid in np.unique(patient_ids)}
    sizes = set()
    for rows in resamples:
        counts = np.bincount(rows, minlength=n)
        for patient_rows in rows_of.values():
            # every row of a patient is drawn the same number of times
            assert len({counts[r] for r in patient_rows}) == 1
        # 30 patients drawn each time
        drawn = sum(counts[min(patient_rows)] for patient_rows in rows_of.values())
        assert drawn == 30
        sizes.add(rows.size)
    assert len(sizes) > 1  # number of rows varies with the patients drawn


def test_cluster_bootstrap_wider_than_row_bootstrap_for_correlated_rows() -> None:
    rng = np.random.default_rng(1)
    patient_effect = rng.normal(size=60)
    patient_ids = np.repeat(np.arange(60), 10)
    values = patient_effect[patient_ids] + 0.1 * rng.normal(size=600)

    def mean(rows: np.ndarray) -> dict[str, float]:
        return {"mean": float(values[rows].mean())}

    rows_ci = bootstrap_metrics(mean, 600, n_resamples=300)["mean"]["ci"]
    patients_ci = bootstrap_metrics(mean, 600, n_resamples=300, groups=patient_ids)["mean"]["ci"]
    assert patients_ci[1] - patients_ci[0] > 2 * (rows_ci[1] - rows_ci[0])


def test_paired_difference_uses_same_resamples() -> None:
    y_true, y_prob = _binary_data(300)
    compute = _metric_function(y_true, y_prob)
    same = paired_bootstrap_difference(compute, compute, 300, "auroc", n_resamples=200)
    assert same == {"value": 0.0, "ci": [0.0, 0.0], "p_value": 1.0}


def test_paired_difference_detects_a_better_model() -> None:
    rng = np.random.default_rng(3)
    y_true = (rng.random(500) < 0.4).astype(np.int64)
    good = np.clip(0.5 * y_true + 0.5 * rng.random(500), 0, 1)
    poor = np.clip(0.1 * y_true + 0.9 * rng.random(500), 0, 1)
    result = paired_bootstrap_difference(
        _metric_function(y_true, good), _metric_function(y_true, poor), 500, "auroc", n_resamples=300
    )
    expected = roc_auc_score(y_true, good) - roc_auc_score(y_true, poor)
    assert result["value"] == pytest.approx(expected)
    assert 0 < result["ci"][0] <= result["value"] <= result["ci"][1]
    assert result["p_value"] < 0.01
    reverse = paired_bootstrap_difference(
        _metric_function(y_true, poor), _metric_function(y_true, good), 500, "auroc", n_resamples=300
    )
    assert reverse["value"] == pytest.approx(-expected)
    assert reverse["p_value"] == result["p_value"]


def test_paired_difference_p_value_large_for_equivalent_models() -> None:
    rng = np.random.default_rng(4)
    y_true = (rng.random(300) < 0.5).astype(np.int64)
    model_a = np.clip(0.3 * y_true + 0.7 * rng.random(300), 0, 1)
    model_b = np.clip(0.3 * y_true + 0.7 * rng.random(300), 0, 1)
    result = paired_bootstrap_difference(
        _metric_function(y_true, model_a), _metric_function(y_true, model_b), 300, "auroc", n_resamples=300
    )
    assert result["ci"][0] < 0 < result["ci"][1]
    assert 0.05 < result["p_value"] <= 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_resamples": -1}, "n_resamples"),
        ({"level": 1.5}, "level"),
        ({"groups": np.arange(3)}, "groups"),
    ],
)
def test_invalid_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(MedDLError, match=message):
        bootstrap_metrics(lambda rows: {"n": float(rows.size)}, 10, **kwargs)


def test_paired_difference_unknown_metric() -> None:
    with pytest.raises(MedDLError, match="metric 'auroc'"):
        paired_bootstrap_difference(lambda r: {"a": 1.0}, lambda r: {"a": 1.0}, 10, "auroc")

"""Tests of meddl.explain.tabular: grouping, integrated-gradient completeness, formatting, permutation importance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from meddl.explain import format_top_features, group_attributions, integrated_gradients, permutation_importance_table
from meddl.models import MLP


def test_group_attributions_sums_encoded_columns_into_their_variable():
    attributions = np.array([[0.5, 0.1, -0.3, 0.2, 0.05], [-1.0, 0.0, 0.4, 0.0, 0.6]])
    sources = ["age", "smoker", "smoker", "sex", "smoker"]  # smoker=current, smoker=never, ..., smoker__missing
    grouped, names = group_attributions(attributions, sources)
    assert names == ["age", "smoker", "sex"]
    np.testing.assert_allclose(grouped, [[0.5, -0.15, 0.2], [-1.0, 1.0, 0.0]])
    np.testing.assert_allclose(grouped.sum(axis=1), attributions.sum(axis=1))


def small_model(out_features: int) -> MLP:
    torch.manual_seed(0)
    return MLP(5, out_features, hidden=(16, 8), dropout=0.0, activation="gelu").eval()


def test_integrated_gradients_completeness_binary():
    model = small_model(1)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(12, 5)).astype(np.float32)
    baseline = features.mean(axis=0)
    attributions = integrated_gradients(model, features, baseline, steps=64, batch_size=5)
    assert attributions.shape == (12, 5)
    with torch.no_grad():
        f_x = model(torch.from_numpy(features))[:, 0].numpy()
        f_base = model(torch.from_numpy(baseline).unsqueeze(0))[0, 0].item()
    np.testing.assert_allclose(attributions.sum(axis=1), f_x - f_base, atol=5e-3, rtol=1e-2)
    assert np.abs(attributions).sum() > 0.1  # not trivially zero


def test_integrated_gradients_uses_each_cases_target_output():
    model = small_model(3)
    rng = np.random.default_rng(1)
    features = rng.normal(size=(6, 5)).astype(np.float32)
    baseline = np.zeros(5, dtype=np.float32)
    target = np.array([0, 1, 2, 2, 1, 0])
    attributions = integrated_gradients(model, features, baseline, target_index=target, steps=64)
    with torch.no_grad():
        out = model(torch.from_numpy(features)).numpy()
        out_base = model(torch.from_numpy(baseline).unsqueeze(0)).numpy()[0]
    expected = out[np.arange(6), target] - out_base[target]
    np.testing.assert_allclose(attributions.sum(axis=1), expected, atol=5e-3, rtol=1e-2)


def test_integrated_gradients_of_a_linear_model_is_exact():
    model = MLP(3, 1, hidden=(), dropout=0.0).eval()
    with torch.no_grad():
        model.head.weight.copy_(torch.tensor([[2.0, -1.0, 0.5]]))
        model.head.bias.zero_()
    features = np.array([[1.0, 2.0, 4.0]], dtype=np.float32)
    attributions = integrated_gradients(model, features, np.zeros(3, dtype=np.float32), steps=8)
    np.testing.assert_allclose(attributions, [[2.0, -2.0, 2.0]], rtol=1e-5)


def test_format_top_features_orders_by_absolute_value_and_shows_values():
    grouped = np.array([[0.40, -1.21, 0.05, -0.31], [0.0, 0.1, -0.2, 0.3]])
    names = ["age", "glucose", "noise", "smoker"]
    frame = pd.DataFrame(
        {"age": [67.0, 50.0], "glucose": [182.0, 90.5], "noise": [0.1, 0.2], "smoker": ["current", np.nan]}
    )
    lines = format_top_features(grouped, names, frame, top_k=3)
    assert lines[0] == "glucose=182 (-1.210); age=67 (+0.400); smoker=current (-0.310)"
    assert lines[1] == "smoker=missing (+0.300); noise=0.2 (-0.200); glucose=90.5 (+0.100)"


def test_format_top_features_without_frame():
    lines = format_top_features(np.array([[0.1, -0.5]]), ["a", "b"], top_k=5)
    assert lines == ["b (-0.500); a (+0.100)"]


def test_permutation_importance_ranks_the_predictive_column_first():
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"noise": rng.normal(size=n), "glucose": rng.normal(size=n)})
    target = (frame["glucose"] + 0.3 * rng.normal(size=n) > 0).astype(int).to_numpy()

    def predict(table: pd.DataFrame) -> np.ndarray:
        return 1 / (1 + np.exp(-3 * table["glucose"].to_numpy()))

    rows = permutation_importance_table(predict, frame, target, roc_auc_score, n_repeats=3, seed=0)
    assert [row["feature"] for row in rows] == ["glucose", "noise"]
    assert rows[0]["importance"] > 0.3
    assert rows[1]["importance"] == pytest.approx(0.0, abs=1e-12)  # the model never looks at noise
    assert set(rows[0]) == {"feature", "importance", "std"}


def test_permutation_importance_with_no_repeats_is_empty():
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    assert (
        permutation_importance_table(lambda t: t["x"].to_numpy(), frame, np.array([0, 1]), roc_auc_score, n_repeats=0)
        == []
    )

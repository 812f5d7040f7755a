"""ExpressionTransform: the auto-log rule, variance selection with ties, training-only statistics, state."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

from meddl.errors import MedDLError
from meddl.preprocess.expression import ExpressionTransform


def test_auto_log_applies_to_raw_counts_and_not_to_logged_data() -> None:
    counts = np.array([[0, 10, 1000], [5, 20, 3000], [1, 15, 500]], dtype=float)
    raw = ExpressionTransform(select="none", scale="none").fit(counts)
    assert raw.log_ == "log2"
    np.testing.assert_allclose(raw.transform(counts), np.log2(counts + 1), rtol=1e-6)
    logged = np.log2(counts + 1)
    assert ExpressionTransform().fit(logged).log_ == "none"  # maximum below 100
    centred = logged - logged.mean(axis=0)
    assert ExpressionTransform().fit(centred * 50).log_ == "none"  # negative values: already transformed
    assert ExpressionTransform(log="log1p", select="none", scale="none").fit(counts).transform(counts)[0, 2] == (
        pytest.approx(np.log1p(1000), rel=1e-6)
    )


def test_variance_selection_keeps_top_genes_in_original_order_with_ties_by_name() -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((50, 1))
    # Gene standard deviations: D 5, B 3, A 1, C 1 (a tie with A), E 0.5.
    X = np.hstack([base * 1.0, base * 3.0, base * 1.0, base * 5.0, base * 0.5])
    genes = ["A", "B", "C", "D", "E"]
    transform = ExpressionTransform(log="none", n_genes=3).fit(X, genes=genes)
    assert transform.selected_genes_ == ["A", "B", "D"]  # A wins the tie with C by name; file order kept
    assert transform.selected_index_.tolist() == [0, 1, 3]
    renamed = ExpressionTransform(log="none", n_genes=3).fit(X, genes=["Z", "B", "C", "D", "E"])
    assert renamed.selected_genes_ == ["B", "C", "D"]  # now C sorts before Z
    assert ExpressionTransform(log="none", n_genes=10).fit(X).selected_index_.tolist() == [0, 1, 2, 3, 4]
    from_frame = ExpressionTransform(log="none", n_genes=2).fit(pd.DataFrame(X, columns=genes))
    assert from_frame.selected_genes_ == ["B", "D"]  # a DataFrame's columns name the genes


def test_statistics_come_from_training_rows_only_and_match_standard_scaler() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(5.0, 2.0, (40, 6))
    test = rng.normal(50.0, 9.0, (10, 6))  # a very different site: must not shift the fitted statistics
    transform = ExpressionTransform(log="none", select="none").fit(train)
    scaler = StandardScaler().fit(train)
    np.testing.assert_allclose(transform.transform(test), scaler.transform(test), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(transform.mean_, train.mean(axis=0))
    out = transform.transform(train)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.std(axis=0), 1.0, atol=1e-5)
    constant = np.hstack([train, np.full((40, 1), 7.0)])
    assert np.all(ExpressionTransform(log="none", select="none").fit_transform(constant)[:, -1] == 0.0)


def test_variance_is_computed_after_the_log() -> None:
    rng = np.random.default_rng(2)
    # Gene 0: huge counts with small relative spread; gene 1: small counts with large relative spread.
    X = np.column_stack([rng.normal(10000, 500, 60), rng.choice([1, 200], 60)])
    assert np.var(X[:, 0]) > np.var(X[:, 1])
    transform = ExpressionTransform(n_genes=1).fit(np.round(X), genes=["big", "spread"])
    assert transform.log_ == "log2" and transform.selected_genes_ == ["spread"]


def test_transform_matches_columns_by_name_and_reports_missing_genes() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(0, 1, (20, 4)) * np.array([1, 4, 2, 3])
    transform = ExpressionTransform(log="none", n_genes=2).fit(X, genes=["A", "B", "C", "D"])
    assert transform.selected_genes_ == ["B", "D"]
    shuffled = X[:, [3, 0, 1]]  # columns D, A, B; C absent (not used)
    np.testing.assert_allclose(transform.transform(shuffled, genes=["D", "A", "B"]), transform.transform(X))
    with pytest.raises(MedDLError, match=r"1 gene\(s\) the model uses are not in the data, e\.g\. \['D'\]"):
        transform.transform(X[:, :3], genes=["A", "B", "C"])
    with pytest.raises(MedDLError, match=r"expected 4 genes \(as in training\), got 3"):
        transform.transform(X[:, :3])


def test_state_round_trip_through_json() -> None:
    rng = np.random.default_rng(4)
    counts = rng.poisson(rng.gamma(2.0, 200.0, 30), (25, 30)).astype(float)
    transform = ExpressionTransform(n_genes=10).fit(counts, genes=[f"G{i}" for i in range(30)])
    restored = ExpressionTransform.from_state(json.loads(json.dumps(transform.to_state())))
    assert restored.selected_genes_ == transform.selected_genes_ and restored.log_ == "log2"
    np.testing.assert_array_equal(restored.transform(counts), transform.transform(counts))


def test_invalid_settings_and_inputs() -> None:
    X = np.abs(np.random.default_rng(5).normal(0, 1, (5, 3)))
    with pytest.raises(MedDLError, match=r"preprocess\.log must be one of .*got 'log10'"):
        ExpressionTransform(log="log10").fit(X)
    with pytest.raises(MedDLError, match=r"preprocess\.n_genes must be a positive integer, got 0"):
        ExpressionTransform(n_genes=0).fit(X)
    with pytest.raises(MedDLError, match="not fitted"):
        ExpressionTransform().transform(X)
    with pytest.raises(MedDLError, match=r"fit: the matrix holds 1 NaN or infinite value"):
        ExpressionTransform().fit(_with(X, np.nan))
    with pytest.raises(MedDLError, match=r"log log2\(x \+ 1\) needs values above -1, got a minimum of -3"):
        ExpressionTransform(log="log2").fit(_with(X, -3.0))


def _with(X: np.ndarray, value: float) -> np.ndarray:
    out = X.copy()
    out[1, 2] = value
    return out

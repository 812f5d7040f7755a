"""GSE7390 fixed-horizon labels (censoring handled, days vs years) and the synthetic counts' signature."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from meddl.data.expression import gse7390_cohort, synthetic_expression
from meddl.errors import MedDLError
from meddl.preprocess.expression import ExpressionTransform


def test_gse7390_matrix_and_labels() -> None:
    matrix, labels = gse7390_cohort(horizon_years=5.0)
    assert matrix.shape == (198, 76) and matrix.index.name == "sample_id"
    assert "200726_at" in matrix.columns and not any(c in matrix.columns for c in ("age", "er", "grade", "size"))
    assert labels["sample_id"].tolist() == matrix.index.tolist()
    assert {"age", "er", "grade", "size", "time_days", "distant_metastasis", "metastasis_5y"} <= set(labels.columns)
    assert set(labels["er"].unique()) == {"negative", "positive"}
    assert ExpressionTransform().fit(matrix.to_numpy()).log_ == "none"  # already log2 intensities


def test_gse7390_horizon_rule_in_days() -> None:
    _, labels = gse7390_cohort(horizon_years=5.0)
    horizon = 5.0 * 365.25
    time, event, label = labels["time_days"], labels["distant_metastasis"], labels["metastasis_5y"]
    censored_early = (~event) & (time < horizon)
    assert label[censored_early].isna().all()
    assert labels.attrs["censored_before_horizon"] == int(censored_early.sum()) == int(label.isna().sum())
    assert (label[event & (time <= horizon)] == "yes").all()
    assert (label[time > horizon] == "no").all()  # events after the horizon count as event-free within it
    assert "censored before 5 years" in labels.attrs["note"]
    counts = label.value_counts().to_dict()
    assert counts == {"no": 154, "yes": 35} and label.isna().sum() == 9  # fixed data set: the exact split


def test_gse7390_longer_horizon_excludes_more_patients() -> None:
    _, five = gse7390_cohort(5.0)
    _, ten = gse7390_cohort(10.0)
    assert ten.attrs["censored_before_horizon"] > five.attrs["censored_before_horizon"]
    assert (ten["metastasis_10y"] == "yes").sum() >= (five["metastasis_5y"] == "yes").sum()
    with pytest.raises(MedDLError, match="horizon_years must be positive"):
        gse7390_cohort(0)


def test_synthetic_expression_is_counts_with_the_informative_genes_shifted() -> None:
    counts, labels, informative = synthetic_expression(n_samples=120, n_genes=300, n_informative=10, seed=7)
    assert counts.shape == (120, 300) and counts.dtypes.eq(np.int64).all() and (counts.to_numpy() >= 0).all()
    assert len(informative) == 10 and set(informative) <= set(counts.columns)
    assert labels["sample_id"].tolist() == counts.index.tolist()
    responder = (labels["response"] == "yes").to_numpy()
    assert 0.3 < responder.mean() < 0.7
    informative_p = [mannwhitneyu(counts[g][responder], counts[g][~responder]).pvalue for g in informative]
    assert max(informative_p) < 1e-4
    others = [g for g in counts.columns if g not in informative][:50]
    other_p = [mannwhitneyu(counts[g][responder], counts[g][~responder]).pvalue for g in others]
    assert np.median(other_p) > 0.1
    again, _, same = synthetic_expression(n_samples=120, n_genes=300, n_informative=10, seed=7)
    assert same == informative and again.equals(counts)

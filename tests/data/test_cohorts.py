"""Tests of meddl.data.cohorts: fixed-horizon labels, the packaged cohorts and the synthetic table."""

from __future__ import annotations

import re

import numpy as np
import pytest

from meddl.data import fixed_horizon_labels, gbsg2_cohort, synthetic_clinical_table, wdbc_cohort
from meddl.errors import MedDLError


def test_fixed_horizon_labels_hand_made_cases():
    time = np.array([100.0, 100.0, 500.0, 365.0, 365.0, 900.0])
    event = np.array([True, False, False, True, True, True])
    label, known = fixed_horizon_labels(time, event, horizon=365.0)
    # event before horizon → 1 known; censored before → unknown; follow-up past horizon → 0 known;
    # events exactly at the horizon → 1 known; event after the horizon → 0 known
    np.testing.assert_array_equal(label, [1, 0, 0, 1, 1, 0])
    np.testing.assert_array_equal(known, [True, False, True, True, True, True])
    assert label.dtype == np.int64 and known.dtype == bool


def test_fixed_horizon_labels_accepts_0_1_events():
    label, known = fixed_horizon_labels([3, 3, 10], [1, 0, 0], horizon=5)
    np.testing.assert_array_equal(label, [1, 0, 0])
    np.testing.assert_array_equal(known, [True, False, True])


@pytest.mark.parametrize("horizon", [0, -1.0])
def test_fixed_horizon_must_be_positive(horizon):
    with pytest.raises(MedDLError, match="horizon must be positive"):
        fixed_horizon_labels([1.0], [True], horizon)


def test_gbsg2_excludes_exactly_the_censored_before_horizon():
    from sksurv.datasets import load_gbsg2

    _, outcome = load_gbsg2()
    horizon = 5 * 365.25
    censored_early = (~outcome["cens"]) & (outcome["time"] <= horizon)
    positive = outcome["cens"] & (outcome["time"] <= horizon)
    cohort = gbsg2_cohort(5.0)
    assert len(outcome) == 686
    assert len(cohort.frame) == 686
    assert int(cohort.frame[cohort.target].isna().sum()) == int(censored_early.sum())  # unknown → blank
    assert int((cohort.frame[cohort.target] == "yes").sum()) == int(positive.sum())
    numbers = [int(n) for n in re.findall(r"\d+", cohort.notes[0])]
    assert int(censored_early.sum()) in numbers and 686 in numbers
    assert f"{int(censored_early.sum())} of 686" in cohort.notes[0]
    assert cohort.target == "event_5y" and cohort.positive_label == "yes"
    assert cohort.frame["patient_id"].is_unique


def test_gbsg2_shorter_horizon_excludes_fewer():
    def unknown(years: float) -> int:
        cohort = gbsg2_cohort(years)
        return int(cohort.frame[cohort.target].isna().sum())

    assert unknown(2.0) < unknown(5.0)


def test_wdbc_cohort():
    cohort = wdbc_cohort()
    assert cohort.frame.shape[0] == 569
    assert int((cohort.frame["diagnosis"] == "malignant").sum()) == 212
    assert set(cohort.frame["diagnosis"]) == {"malignant", "benign"}
    assert cohort.frame["sample_id"].is_unique
    assert not any(" " in column for column in cohort.frame.columns)
    # malignant tumours have larger mean radius: the label is not flipped
    radius = cohort.frame.groupby("diagnosis")["mean_radius"].mean()
    assert radius["malignant"] > radius["benign"]


COLUMNS = ["patient_id", "visit_date", "age", "sex", "bmi", "glucose", "systolic_bp", "smoker", "noise", "outcome"]


def test_synthetic_table_shape_columns_and_missingness():
    frame = synthetic_clinical_table(500, seed=1, missing_rate=0.1)
    assert frame.shape == (500, len(COLUMNS))
    assert list(frame.columns) == COLUMNS
    for column in ["bmi", "glucose", "systolic_bp", "smoker"]:
        assert frame[column].isna().mean() == pytest.approx(0.1, abs=0.04)
    for column in ["patient_id", "visit_date", "age", "sex", "noise", "outcome"]:
        assert frame[column].notna().all()
    assert set(frame["outcome"]) == {"yes", "no"}
    assert set(frame["sex"]) == {"F", "M"}
    assert set(frame["smoker"].dropna()) == {"never", "former", "current"}


def test_synthetic_table_without_missingness_and_deterministic():
    frame = synthetic_clinical_table(100, seed=3, missing_rate=0.0)
    assert not frame.isna().any().any()
    assert frame.equals(synthetic_clinical_table(100, seed=3, missing_rate=0.0))
    assert not frame.equals(synthetic_clinical_table(100, seed=4, missing_rate=0.0))


def test_synthetic_outcome_follows_glucose():
    frame = synthetic_clinical_table(2000, seed=0, missing_rate=0.0, positive_rate=0.3)
    high = frame["glucose"] > frame["glucose"].median()
    rate = (frame["outcome"] == "yes").groupby(high).mean()
    assert rate[True] > rate[False] + 0.1


def test_synthetic_visits_repeat_patient_ids():
    frame = synthetic_clinical_table(50, seed=0, visits_per_patient=3)
    assert len(frame) == 150
    counts = frame["patient_id"].value_counts()
    assert len(counts) == 50 and (counts == 3).all()
    # patient-level attributes do not change between visits
    assert (frame.groupby("patient_id")[["age", "sex"]].nunique() == 1).all().all()

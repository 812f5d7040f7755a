"""Tests of meddl.data.split: proportions, stratification, patient-level grouping, determinism, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from meddl.data import SPLITS, assert_patient_level, kfold_assignments, split_assignments, splits_frame
from meddl.data.split import group_assignments
from meddl.errors import MedDLError


def binary_target(n: int, rate: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < rate).astype(np.int64)


def shares(splits: np.ndarray) -> dict[str, float]:
    return {name: float((splits == name).mean()) for name in SPLITS}


def test_default_fractions_are_70_15_15():
    splits = split_assignments(binary_target(1000, 0.3, 0), task="binary", seed=0)
    assert set(splits) == set(SPLITS)
    for name, expected in zip(SPLITS, (0.70, 0.15, 0.15), strict=True):
        assert shares(splits)[name] == pytest.approx(expected, abs=0.02)


def test_custom_fractions():
    splits = split_assignments(binary_target(1000, 0.3, 1), task="binary", fractions=(0.5, 0.25, 0.25), seed=0)
    for name, expected in zip(SPLITS, (0.5, 0.25, 0.25), strict=True):
        assert shares(splits)[name] == pytest.approx(expected, abs=0.02)


def test_stratification_keeps_class_proportions():
    target = binary_target(600, 0.2, 2)
    overall = target.mean()
    splits = split_assignments(target, task="binary", seed=3)
    for name in SPLITS:
        assert target[splits == name].mean() == pytest.approx(overall, abs=0.02)


def test_stratification_multiclass():
    target = np.repeat([0, 1, 2], [300, 150, 50])
    splits = split_assignments(target, task="multiclass", seed=0)
    for name in SPLITS:
        counts = np.bincount(target[splits == name], minlength=3) / (splits == name).sum()
        np.testing.assert_allclose(counts, [0.6, 0.3, 0.1], atol=0.03)


def test_patients_with_several_rows_stay_in_one_split():
    n_patients = 200
    ids = np.repeat([f"P{i:03d}" for i in range(n_patients)], 3)
    target = np.repeat(binary_target(n_patients, 0.3, 4), 3)
    splits = split_assignments(target, task="binary", patient_ids=ids, seed=0)
    per_patient = pd.Series(splits).groupby(ids).nunique()
    assert (per_patient == 1).all()
    assert shares(splits)["train"] == pytest.approx(0.7, abs=0.03)


def test_patients_with_unequal_rows_stay_together_and_rows_follow_fractions():
    rng = np.random.default_rng(5)
    visits = rng.integers(1, 6, 300)
    ids = np.repeat([f"P{i}" for i in range(300)], visits)
    target = np.repeat(binary_target(300, 0.4, 6), visits)
    splits = split_assignments(target, task="binary", patient_ids=ids, seed=1)
    assert (pd.Series(splits).groupby(ids).nunique() == 1).all()
    assert shares(splits)["train"] == pytest.approx(0.7, abs=0.03)


def test_assert_patient_level_detects_a_leak():
    ids = np.array(["A", "A", "B", "B"])
    assert_patient_level(np.array(["train", "train", "test", "test"]), ids)  # fine
    assert_patient_level(np.array(["train", "test", "test", "test"]), None)  # no ids: nothing to check
    with pytest.raises(MedDLError, match=r"patient 'A' has rows in more than one split \(1 patients\)"):
        assert_patient_level(np.array(["train", "test", "test", "test"]), ids)


def test_same_seed_same_split_other_seed_other_split():
    target = binary_target(300, 0.3, 7)
    first = split_assignments(target, task="binary", seed=11)
    again = split_assignments(target, task="binary", seed=11)
    other = split_assignments(target, task="binary", seed=12)
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()


def test_temporal_split_puts_earliest_in_train_and_latest_in_test():
    n = 300
    rng = np.random.default_rng(8)
    dates = pd.date_range("2018-01-01", periods=n, freq="D").to_numpy()[rng.permutation(n)]
    target = binary_target(n, 0.3, 9)
    splits = split_assignments(target, task="binary", dates=dates, seed=0)
    when = pd.Series(dates)
    assert when[splits == "train"].max() < when[splits == "validation"].min()
    assert when[splits == "validation"].max() < when[splits == "test"].min()
    assert shares(splits)["test"] == pytest.approx(0.15, abs=0.01)


def test_temporal_split_orders_patients_by_first_visit_and_keeps_them_together():
    n_patients = 60
    ids = np.repeat([f"P{i:02d}" for i in range(n_patients)], 2)
    first_visit = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(n_patients) * 10, unit="D")
    dates = np.empty(2 * n_patients, dtype="datetime64[ns]")
    dates[0::2] = first_visit.to_numpy()
    dates[1::2] = (first_visit + pd.Timedelta(days=700)).to_numpy()  # second visit long after
    target = np.repeat(binary_target(n_patients, 0.5, 10), 2)
    splits = split_assignments(target, task="binary", patient_ids=ids, dates=dates, seed=0)
    assert (pd.Series(splits).groupby(ids).nunique() == 1).all()
    # patients are ordered by their first visit, so P00 (earliest) trains and P59 (latest) tests
    assert splits[0] == "train" and splits[-1] == "test"


def test_regression_split_fractions():
    target = np.random.default_rng(0).normal(size=400)
    splits = split_assignments(target, task="regression", seed=0)
    assert shares(splits)["train"] == pytest.approx(0.7, abs=0.02)
    # stratified on quantile bins: every split spans low and high outcomes
    for name in SPLITS:
        part = target[splits == name]
        assert part.min() < np.quantile(target, 0.2) and part.max() > np.quantile(target, 0.8)


def test_too_few_patients():
    ids = np.repeat(["A", "B", "C", "D", "E", "F", "G", "H", "I"], 5)
    target = np.tile([0, 1, 0, 1, 0], 9)
    with pytest.raises(MedDLError, match="9 patient"):
        split_assignments(target, task="binary", patient_ids=ids, source="cohort.csv")


def test_tiny_class_is_an_error():
    target = np.array([0] * 30 + [1, 1])
    with pytest.raises(MedDLError, match="class code 1 has only 2 patient"):
        split_assignments(target, task="binary", source="cohort.csv")


def test_smallest_accepted_class_reaches_every_split():
    target = np.array([0] * 40 + [1, 1, 1])
    try:
        splits = split_assignments(target, task="binary", seed=0)
    except MedDLError:
        return  # refusing is an honest answer too
    assert set(splits[target == 1]) == set(SPLITS)


def test_kfold_groups_patients_and_balances_folds():
    n_patients = 150
    ids = np.repeat([f"P{i:03d}" for i in range(n_patients)], 3)
    target = np.repeat(binary_target(n_patients, 0.3, 11), 3)
    folds = kfold_assignments(target, task="binary", folds=5, patient_ids=ids, seed=0)
    assert folds.shape == target.shape
    assert set(folds) == set(range(5))
    assert (pd.Series(folds).groupby(ids).nunique() == 1).all()
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 3  # one patient's rows at most
    positives = np.bincount(folds, weights=target)
    assert positives.max() - positives.min() <= 3


def test_kfold_without_patient_ids_is_deterministic():
    target = binary_target(103, 0.5, 12)
    folds = kfold_assignments(target, task="binary", folds=4, seed=3)
    np.testing.assert_array_equal(folds, kfold_assignments(target, task="binary", folds=4, seed=3))
    assert (folds != kfold_assignments(target, task="binary", folds=4, seed=4)).any()
    assert np.bincount(folds).min() >= 25


def test_splits_frame_columns():
    frame = splits_frame(np.array([2, 3, 5]), np.array(["train", "test", "validation"]), np.array(["a", "b", "c"]))
    assert list(frame.columns) == ["row", "patient_id", "split"]
    assert frame["row"].tolist() == [2, 3, 5]
    assert frame["split"].tolist() == ["train", "test", "validation"]
    no_ids = splits_frame(np.array([2, 3]), np.array(["train", "test"]), None)
    assert no_ids["patient_id"].isna().all() and len(no_ids) == 2


def test_regression_with_too_few_patients_for_quantile_bins_still_splits():
    # 15 patients: too few for outcome bins, so all are one stratum (this crashed with a pandas ValueError)
    values = np.linspace(45.0, 150.0, 15)
    splits = split_assignments(values, task="regression", patient_ids=np.arange(15).astype(str), seed=0)
    assert sorted(set(splits)) == ["test", "train", "validation"]
    assert (splits == "train").sum() >= 8


# -- group_assignments: scaffold and compound splits ----------------------------------------------------------


def _groups(sizes: list[int]) -> np.ndarray:
    return np.repeat([f"g{i}" for i in range(len(sizes))], sizes)


def test_groups_never_cross_splits_and_rows_follow_the_fractions():
    sizes = [int(s) for s in np.random.default_rng(0).integers(1, 6, 300)]
    groups = _groups(sizes)
    for balanced in (False, True):
        splits = group_assignments(groups, seed=1, balanced=balanced)
        assert (pd.Series(splits).groupby(groups).nunique() == 1).all()
        for name, expected in zip(SPLITS, (0.8, 0.1, 0.1), strict=True):
            assert shares(splits)[name] == pytest.approx(expected, abs=0.02)
    custom = group_assignments(groups, fractions=(0.6, 0.2, 0.2), seed=1)
    for name, expected in zip(SPLITS, (0.6, 0.2, 0.2), strict=True):
        assert shares(custom)[name] == pytest.approx(expected, abs=0.02)


def test_group_split_is_deterministic_per_seed():
    groups = _groups([2] * 100)
    first = group_assignments(groups, seed=5)
    np.testing.assert_array_equal(first, group_assignments(groups, seed=5))
    assert (first != group_assignments(groups, seed=6)).any()


def test_balanced_puts_the_large_groups_in_train():
    rng = np.random.default_rng(0)
    sizes = [30, 25, *(int(s) for s in rng.integers(1, 4, 180))]  # two groups over half the validation share
    groups = _groups(sizes)
    unbalanced = [group_assignments(groups, seed=seed)[:55] for seed in range(20)]
    balanced = [group_assignments(groups, seed=seed, balanced=True)[:55] for seed in range(20)]
    assert all((split == "train").all() for split in balanced)
    # without balancing, dealt in random order, a large group does land in validation or test
    assert sum(not (split == "train").all() for split in unbalanced) >= 3


def test_too_few_groups_or_an_empty_split_is_an_error():
    with pytest.raises(MedDLError, match=r"scaffolds\.csv: 2 group\(s\) cannot be split into train, validation and"):
        group_assignments(_groups([50, 50]), source="scaffolds.csv")
    # three equal groups: the third fits neither train's room (24 of 30 rows) nor validation's (3)
    with pytest.raises(MedDLError, match=r"the validation split would be empty with 3 groups"):
        group_assignments(_groups([10, 10, 10]))

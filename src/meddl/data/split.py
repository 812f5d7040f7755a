"""Train / validation / test splits that keep every patient in one split.

Stratification works on patients, not rows: each patient gets one stratum (their most frequent label, or a
quantile bin of their mean outcome for regression) and the patients of each stratum are dealt out in the
requested proportions. Rows of one patient therefore never cross a split boundary, and class balance is
kept as far as whole patients allow. A temporal split gives the earliest patients to training and the latest
to test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from meddl.errors import MedDLError

__all__ = [
    "SPLITS",
    "assert_patient_level",
    "carve_calibration",
    "group_assignments",
    "kfold_assignments",
    "split_assignments",
    "splits_frame",
]

SPLITS = ("train", "validation", "test")


def _patient_table(target: np.ndarray, patient_ids: np.ndarray | None, task: str) -> pd.DataFrame:
    ids = patient_ids if patient_ids is not None else np.arange(len(target)).astype(str)
    rows = pd.DataFrame({"patient": ids, "y": target})
    if task == "regression":
        per_patient = rows.groupby("patient", sort=False)["y"].mean()
        n_bins = int(min(5, max(1, per_patient.size // 10)))
        stratum = (
            pd.qcut(per_patient.rank(method="first"), q=n_bins, labels=False)
            if n_bins > 1
            else pd.Series(0, index=per_patient.index)  # too few patients for bins: one stratum
        )
        patients = pd.DataFrame({"stratum": stratum})
    else:
        patients = pd.DataFrame({"stratum": rows.groupby("patient", sort=False)["y"].agg(lambda v: v.mode().iloc[0])})
    patients["n_rows"] = rows.groupby("patient", sort=False).size()
    return patients


def _deal(patients: pd.Index, sizes: np.ndarray, fractions: tuple[float, float, float]) -> dict[str, str]:
    """Give patients (already in their final order) to splits so rows follow the fractions."""
    total = sizes.sum()
    cumulative = np.cumsum(sizes) - sizes / 2.0  # a patient goes where the middle of their rows falls
    edges = np.array([fractions[0], fractions[0] + fractions[1]]) * total
    which = np.searchsorted(edges, cumulative, side="right")
    return {patient: SPLITS[int(w)] for patient, w in zip(patients, which, strict=True)}


def split_assignments(
    target: np.ndarray,
    *,
    task: str,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    patient_ids: np.ndarray | None = None,
    dates: np.ndarray | None = None,
    seed: int = 0,
    source: str = "data",
) -> np.ndarray:
    """Assign each row to ``train``, ``validation`` or ``test``.

    Args:
        target: encoded outcome per row.
        task: binary, multiclass or regression (regression stratifies on quantile bins).
        fractions: shares of rows for train, validation and test.
        patient_ids: one id per row; all rows of a patient go to the same split.
        dates: one date per row for a temporal split (earliest patients train, latest test).
        seed: shuffling seed.
        source: file name for messages.

    Returns:
        An array of split names, one per row.

    Raises:
        MedDLError: too few patients for three splits, or a class too small to appear in each split.
    """
    patients = _patient_table(target, patient_ids, task)
    n_patients = len(patients)
    if n_patients < 10:
        raise MedDLError(f"{source}: {n_patients} patient(s) is too few to split into train, validation and test")
    rng = np.random.default_rng(seed)
    ids = patient_ids if patient_ids is not None else np.arange(len(target)).astype(str)
    assignment: dict[str, str] = {}
    if dates is not None:
        first_date = pd.Series(pd.to_datetime(dates)).groupby(ids, sort=False).min()
        order = first_date.loc[patients.index].sort_values(kind="stable").index
        assignment = _deal(order, patients.loc[order, "n_rows"].to_numpy(), fractions)
    else:
        if task != "regression":
            counts = patients["stratum"].value_counts()
            small = counts[counts < 5]
            if not small.empty:
                raise MedDLError(
                    f"{source}: class code {small.index[0]} has only {int(small.iloc[0])} patient(s); "
                    "each class needs at least 5 to appear in train, validation and test"
                )
        for _, group in patients.groupby("stratum", sort=True):
            order = group.index[rng.permutation(len(group))]
            assignment.update(_deal(order, group.loc[order, "n_rows"].to_numpy(), fractions))
    splits = np.array([assignment[p] for p in ids], dtype=object)
    missing = [name for name in SPLITS if not (splits == name).any()]
    if missing:
        raise MedDLError(f"{source}: the {' and '.join(missing)} split would be empty; add rows or change data.split")
    if task != "regression" and dates is None:
        for code in np.unique(target):
            absent = [name for name in SPLITS if not ((splits == name) & (target == code)).any()]
            if absent:
                raise MedDLError(
                    f"{source}: class code {code} would be absent from the {' and '.join(absent)} split; "
                    "it needs more patients"
                )
    assert_patient_level(splits, patient_ids)
    return splits


def group_assignments(
    groups: np.ndarray,
    *,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    balanced: bool = False,
    source: str = "data",
) -> np.ndarray:
    """Assign rows to ``train``, ``validation`` or ``test`` so that every group (a compound's scaffold, one
    compound's duplicates) falls in one split, the rows following ``fractions``.

    Groups are dealt in random order (``seed``). With ``balanced`` (chemprop's balanced scaffold split), groups
    larger than half the validation or test share go first, so they land in training: one big scaffold in the test
    set would make it a test of that scaffold alone.

    Raises:
        MedDLError: fewer than 3 groups, or a split would be empty.
    """
    ids = np.asarray(groups).astype(str)
    names, sizes = np.unique(ids, return_counts=True)
    if len(names) < 3:
        raise MedDLError(f"{source}: {len(names)} group(s) cannot be split into train, validation and test")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    if balanced:
        big = sizes[order] > min(fractions[1], fractions[2]) * len(ids) / 2
        order = np.concatenate([order[big], order[~big]])
    # chemprop's rule: a group goes to train while train has room for it whole, else to validation, else to test
    room = np.array(fractions[:2]) * len(ids)
    filled = np.zeros(2)
    assignment = {}
    for g in order:
        where = next((k for k in range(2) if filled[k] + sizes[g] <= room[k]), 2)
        if where < 2:
            filled[where] += sizes[g]
        assignment[names[g]] = SPLITS[where]
    splits = np.array([assignment[i] for i in ids], dtype=object)
    missing = [name for name in SPLITS if not (splits == name).any()]
    if missing:
        raise MedDLError(
            f"{source}: the {' and '.join(missing)} split would be empty with {len(names)} groups; add data or use "
            "another data.split.method"
        )
    return splits


def carve_calibration(
    splits: np.ndarray,
    target: np.ndarray,
    *,
    task: str,
    fraction: float,
    patient_ids: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Hold out a share of the validation split's patients as ``calibration`` (conformal prediction).

    The validation patients are stratified as :func:`split_assignments` stratifies (a patient's most frequent
    label, or quantile bins of the outcome for regression), shuffled with ``seed`` and dealt so that ``fraction``
    of each stratum's rows become ``calibration``; a stratum of one patient stays in validation (which must keep
    every class). A patient's rows stay together. Returns a new array.
    """
    splits = np.asarray(splits, dtype=object).copy()
    rows = np.flatnonzero(splits == "validation")
    ids = patient_ids[rows] if patient_ids is not None else None
    patients = _patient_table(np.asarray(target)[rows], ids, task)
    rng = np.random.default_rng(seed + 7919)  # not the main split's stream
    chosen: dict[str, str] = {}
    for _, group in patients.groupby("stratum", sort=True):
        if len(group) < 2:  # a class's only validation patient stays there: validation keeps every class
            continue
        order = group.index[rng.permutation(len(group))]
        dealt = _deal(order, group.loc[order, "n_rows"].to_numpy(), (1.0 - fraction, fraction, 0.0))
        chosen.update({patient: "calibration" for patient, name in dealt.items() if name == "validation"})
    keys = ids if ids is not None else np.arange(len(rows)).astype(str)
    splits[rows] = [chosen.get(key, "validation") for key in keys]
    return splits


def kfold_assignments(
    target: np.ndarray,
    *,
    task: str,
    folds: int,
    patient_ids: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A fold number per row for k-fold cross-validation, stratified and grouped by patient."""
    patients = _patient_table(target, patient_ids, task)
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    offset = 0
    for _, group in patients.groupby("stratum", sort=True):
        order = group.index[rng.permutation(len(group))]
        for position, patient in enumerate(order):
            fold_of[patient] = (position + offset) % folds
        offset += len(order)
    ids = patient_ids if patient_ids is not None else np.arange(len(target)).astype(str)
    return np.array([fold_of[p] for p in ids], dtype=np.int64)


def assert_patient_level(splits: np.ndarray, patient_ids: np.ndarray | None) -> None:
    """Raise if any patient has rows in two splits (a leak between training and evaluation)."""
    if patient_ids is None:
        return
    per_patient = pd.Series(splits).groupby(pd.Series(patient_ids)).nunique()
    leaked = per_patient[per_patient > 1]
    if not leaked.empty:
        raise MedDLError(f"patient {leaked.index[0]!r} has rows in more than one split ({len(leaked)} patients)")


def splits_frame(rows: np.ndarray, splits: np.ndarray, patient_ids: np.ndarray | None) -> pd.DataFrame:
    """The ``splits.csv`` table: file row number, patient id and split of every row used."""
    return pd.DataFrame(
        {
            "row": rows,
            "patient_id": patient_ids if patient_ids is not None else pd.Series([None] * len(rows), dtype=object),
            "split": splits,
        }
    )

"""Real cohorts that ship inside installed packages, and a synthetic clinical table for tests and benchmarks.

* Wisconsin diagnostic breast cancer (scikit-learn): 569 fine-needle aspirates, malignant vs benign.
* German Breast Cancer Study Group 2 (scikit-survival): 686 women with node-positive breast cancer,
  recurrence-free survival. Turned into a fixed-horizon label: recurrence or death within the horizon is
  positive, follow-up beyond the horizon without an event is negative, and a woman censored before the
  horizon has an unknown outcome: her cell is left blank, so the pipeline excludes her — and counts her.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from meddl.errors import MedDLError

__all__ = [
    "SURVIVAL_COHORTS",
    "Cohort",
    "SurvivalCohort",
    "fixed_horizon_labels",
    "gbsg2_cohort",
    "survival_cohort",
    "synthetic_clinical_table",
    "wdbc_cohort",
]


@dataclass
class Cohort:
    """A table ready to write to disk, with what the experiment file needs to know about it."""

    name: str
    frame: pd.DataFrame
    target: str
    positive_label: str
    description: str
    patient_id: str | None = None
    notes: list[str] = field(default_factory=list)


def wdbc_cohort() -> Cohort:
    """The Wisconsin diagnostic breast cancer table with a ``diagnosis`` column (malignant / benign)."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.drop(columns=["target"])
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    # scikit-learn codes malignant as 0; the clinical label is explicit here.
    frame["diagnosis"] = np.where(bunch.target.to_numpy() == 0, "malignant", "benign")
    frame.insert(0, "sample_id", [f"WDBC{i:04d}" for i in range(len(frame))])
    return Cohort(
        name="wdbc",
        frame=frame,
        target="diagnosis",
        positive_label="malignant",
        patient_id="sample_id",
        description="Wisconsin diagnostic breast cancer (scikit-learn): malignant vs benign from 30 nuclear features",
    )


def fixed_horizon_labels(time: np.ndarray, event: np.ndarray, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """Binary outcome "event by ``horizon``" from right-censored survival data.

    Args:
        time: follow-up time per patient.
        event: True where the follow-up ended with the event, False where it was censored.
        horizon: the fixed horizon, in the unit of ``time``.

    Returns:
        ``(label, known)``: label 1 for an event at or before the horizon, 0 for follow-up past the horizon;
        ``known`` is False for patients censored before the horizon, whose outcome is unknown.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    if horizon <= 0:
        raise MedDLError(f"horizon must be positive, got {horizon}")
    label = (event & (time <= horizon)).astype(np.int64)
    # Censored exactly at the horizon: known to be event-free for the whole horizon, so a negative.
    known = (time >= horizon) | (event & (time <= horizon))
    return label, known


def gbsg2_cohort(horizon_years: float = 5.0) -> Cohort:
    """GBSG2 with the outcome "recurrence or death within ``horizon_years``" (scikit-survival's copy)."""
    from sksurv.datasets import load_gbsg2

    features, outcome = load_gbsg2()
    time = outcome["time"]
    event = outcome["cens"]  # scikit-survival names the event indicator 'cens': True = recurrence/death
    label, known = fixed_horizon_labels(time, event, horizon_years * 365.25)
    frame = features.copy()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].astype(str)
    frame.insert(0, "patient_id", [f"GBSG{i:04d}" for i in range(len(frame))])
    name = f"event_{horizon_years:g}y"
    # An unknown outcome is written as a blank cell, so the pipeline drops and counts these patients
    # (as "missing target") in front of the reader instead of them vanishing before the file exists.
    frame[name] = pd.Series(np.where(label == 1, "yes", "no"), dtype=object).where(known, None)
    excluded = int((~known).sum())
    note = (
        f"{horizon_years:g}-year recurrence-free survival: {excluded} of {len(known)} patients were censored "
        f"before {horizon_years:g} years (outcome unknown); their outcome is left blank, so they are excluded "
        "and counted as 'missing target'"
    )
    return Cohort(
        name="gbsg2",
        frame=frame,
        target=name,
        positive_label="yes",
        patient_id="patient_id",
        description="German Breast Cancer Study Group 2 (scikit-survival): recurrence or death within "
        f"{horizon_years:g} years",
        notes=[note],
    )


@dataclass
class SurvivalCohort:
    """A real time-to-event table (scikit-survival's copies) with its follow-up columns named."""

    name: str
    frame: pd.DataFrame
    time: str
    event: str
    description: str
    time_unit: str = "days"
    patient_id: str = "patient_id"
    exclude: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


SURVIVAL_COHORTS = ("gbsg2", "whas500", "flchain")


def survival_cohort(name: str) -> SurvivalCohort:
    """GBSG2 (686 breast-cancer patients, recurrence-free survival), WHAS500 (500 heart-attack patients, death) or
    FLCHAIN (7,874 people in a serum free light chain study, death), every patient kept with time and event."""
    from sksurv import datasets

    loaders = {
        "gbsg2": (datasets.load_gbsg2, "German Breast Cancer Study Group 2: time to recurrence or death"),
        "whas500": (datasets.load_whas500, "Worcester Heart Attack Study (500 patients): time to death"),
        "flchain": (datasets.load_flchain, "Serum free light chain study (Olmsted County): time to death"),
    }
    if name not in loaders:
        raise MedDLError(f"unknown survival cohort {name!r}; choose one of {', '.join(SURVIVAL_COHORTS)}")
    load, description = loaders[name]
    features, outcome = load()
    event_name, time_name = outcome.dtype.names
    frame = features.copy()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].astype(str)
    frame.insert(0, "patient_id", [f"{name.upper()}{i:05d}" for i in range(len(frame))])
    time = np.asarray(outcome[time_name], dtype=np.float64)
    notes = []
    exclude = []
    if name == "flchain":
        # `chapter` is the cause of death: known only after the event, so it would leak the outcome.
        exclude.append("chapter")
        zero = time <= 0
        if zero.any():  # died on the day of sampling: half a day of follow-up, so every patient is kept
            time = np.where(zero, 0.5, time)
            notes.append(f"{int(zero.sum())} patients with 0 days of follow-up are given 0.5 days")
    frame["time"] = time
    frame["event"] = np.asarray(outcome[event_name], dtype=np.int64)
    return SurvivalCohort(name, frame, "time", "event", description, exclude=exclude, notes=notes)


def synthetic_clinical_table(
    n_patients: int = 400,
    *,
    seed: int = 0,
    visits_per_patient: int = 1,
    missing_rate: float = 0.05,
    positive_rate: float = 0.3,
) -> pd.DataFrame:
    """A synthetic patient table whose outcome follows a known logistic risk model.

    Columns: ``patient_id``, ``visit_date``, ``age``, ``sex`` (F/M), ``bmi``, ``glucose``, ``systolic_bp``,
    ``smoker`` (never/former/current), ``noise`` (unrelated to the outcome) and ``outcome`` (yes/no).
    Risk rises with age, glucose, BMI and current smoking. With ``visits_per_patient > 1`` a patient
    appears on several rows (for patient-level split tests); values are missing at ``missing_rate``.
    """
    rng = np.random.default_rng(seed)
    n_rows = n_patients * visits_per_patient
    patient = np.repeat(np.arange(n_patients), visits_per_patient)
    age = np.repeat(rng.normal(58, 12, n_patients).clip(18, 95), visits_per_patient)
    sex = np.repeat(rng.choice(["F", "M"], n_patients), visits_per_patient)
    smoker = np.repeat(rng.choice(["never", "former", "current"], n_patients, p=[0.5, 0.3, 0.2]), visits_per_patient)
    bmi = rng.normal(27, 4.5, n_rows).clip(15, 55)
    glucose = rng.normal(105, 25, n_rows).clip(50, 300)
    systolic = rng.normal(130, 15, n_rows)
    noise = rng.normal(0, 1, n_rows)
    logit = (
        0.045 * (age - 58)
        + 0.035 * (glucose - 105)
        + 0.08 * (bmi - 27)
        + 0.9 * (smoker == "current")
        + 0.3 * (sex == "M")
    )
    intercept = np.log(positive_rate / (1 - positive_rate))
    probability = 1 / (1 + np.exp(-(intercept + logit)))
    outcome = np.where(rng.random(n_rows) < probability, "yes", "no")
    start = np.datetime64("2015-01-01")
    dates = start + rng.integers(0, 3650, n_rows).astype("timedelta64[D]")
    frame = pd.DataFrame(
        {
            "patient_id": [f"P{p:05d}" for p in patient],
            "visit_date": pd.to_datetime(dates).strftime("%Y-%m-%d"),
            "age": age.round(0),
            "sex": sex,
            "bmi": bmi.round(1),
            "glucose": glucose.round(0),
            "systolic_bp": systolic.round(0),
            "smoker": smoker,
            "noise": noise.round(3),
            "outcome": outcome,
        }
    )
    for column in ["bmi", "glucose", "systolic_bp", "smoker"]:
        holes = rng.random(n_rows) < missing_rate
        frame.loc[holes, column] = np.nan
    return frame

"""What an EHR cohort and its features are: the specifications, the cohort, vocabulary and feature results.

These are the data types of :mod:`meddl.data.ehr_cohort` (whose docstring describes outcomes, windows and feature
layouts), kept apart from the SQL that computes them; all are importable from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np

from meddl.errors import MedDLError

__all__ = [
    "COHORT_TABLE",
    "OUTCOMES",
    "SURVIVAL_OUTCOMES",
    "Cohort",
    "CohortSpec",
    "Connection",
    "EHRCohort",
    "EHRFeatures",
    "FeatureSpec",
    "StoreLike",
    "Vocabulary",
    "format_flow",
]

OUTCOMES: tuple[str, ...] = (
    "mortality",
    "readmission",
    "long_stay",
    "next_visit_diagnoses",
    "time_to_death",
    "time_to_readmission",
)
SURVIVAL_OUTCOMES: tuple[str, ...] = ("time_to_death", "time_to_readmission")
"""Time-to-event outcomes: labels are ``[time, event code]`` rows (see :func:`~meddl.data.ehr_cohort.define_cohort`)."""
"""Values accepted by ``CohortSpec.outcome``."""

COHORT_TABLE = "meddl_cohort"
"""Name of the DuckDB temp table of index stays that `define_cohort` creates in the caller's connection."""

_US_PER_HOUR = 3_600_000_000
_US_PER_YEAR = 365.25 * 24 * _US_PER_HOUR
_DEFAULT_HORIZON_DAYS = {"readmission": 30.0, "long_stay": 7.0}
_CODE_TABLES = ("diagnoses", "procedures", "medications")

Connection = duckdb.DuckDBPyConnection
StoreLike = Connection | str | Path


# --------------------------------------------------------------------------------------------------------------
# Specifications


@dataclass
class CohortSpec:
    """Which stays are index stays, when the prediction is made and what is predicted.

    Args:
        outcome: ``mortality`` (in-hospital), ``readmission`` (an admission within ``horizon_days`` after
            discharge), ``long_stay`` (length of stay > ``horizon_days`` days) or ``next_visit_diagnoses``
            (multilabel over the ``label_codes_top`` most frequent diagnosis categories of the next visit); or a
            time to event: ``time_to_death`` (hours from the end of the observation window to death in hospital,
            censored at discharge) or ``time_to_readmission`` (days from discharge to the next admission, death
            after discharge a competing event, censored at the end of the store's follow-up).
        index: the index event; only ``admission`` (every visit, or those of ``visit_types``) is supported.
        observation_hours: features come from ``[admit_time, admit_time + observation_hours)``.
        observation: ``window`` (the first ``observation_hours``) or ``stay`` (the whole stay: prediction at
            discharge). None picks ``stay`` for readmission and next-visit diagnoses, ``window`` otherwise;
            ``stay`` is refused for mortality and long stay (the stay's end reveals the label).
        horizon_days: readmission: days after discharge (default 30); long stay: LOS threshold (default 7).
        min_age: admissions of patients younger than this (completed years at admission) are excluded; a
            missing birth date excludes the stay too (age is a feature).
        min_stay_hours: stays shorter than this are excluded; None means ``observation_hours`` in ``window``
            mode (a stay shorter than its window is no prediction) and 0 in ``stay`` mode.
        first_stay_only: keep one index stay per patient, so a patient never straddles splits and no patient
            weighs more than another: the first eligible one, or a random one (``stay_selection``).
        stay_selection: with ``first_stay_only``: ``first`` (earliest eligible stay) or ``random`` (one eligible
            stay drawn per patient from ``seed``; later stays have previous visits for the ``visits`` mode).
        seed: seeds ``stay_selection='random'``.
        label_codes_top: next-visit diagnoses: number of label categories (most frequent in the cohort).
        label_code_prefix: next-visit diagnoses: characters of the code (dots removed) that form a category,
            3 for ICD chapters' 3-character categories.
        visit_types: only visits whose ``visit_type`` is in this list are index stays and count as
            readmissions / next visits; None keeps every visit.
    """

    outcome: str = "mortality"
    index: str = "admission"
    observation_hours: float = 48.0
    observation: Literal["window", "stay"] | None = None
    horizon_days: float | None = None
    min_age: float = 18.0
    min_stay_hours: float | None = None
    first_stay_only: bool = True
    label_codes_top: int = 20
    label_code_prefix: int = 3
    visit_types: list[str] | None = None
    stay_selection: Literal["first", "random"] = "first"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.stay_selection not in ("first", "random"):
            raise MedDLError(f"cohort.stay_selection: must be 'first' or 'random', got {self.stay_selection!r}")
        if not isinstance(self.seed, int):
            raise MedDLError(f"cohort.seed: must be an integer, got {self.seed!r}")
        if self.outcome not in OUTCOMES:
            raise MedDLError(f"cohort.outcome: unknown outcome {self.outcome!r}; choose one of {list(OUTCOMES)}")
        if self.index != "admission":
            raise MedDLError(f"cohort.index: only 'admission' is supported, got {self.index!r}")
        if self.observation is None:
            after_discharge = ("readmission", "next_visit_diagnoses", "time_to_readmission")
            self.observation = "stay" if self.outcome in after_discharge else "window"
        if self.observation not in ("window", "stay"):
            raise MedDLError(f"cohort.observation: must be 'window' or 'stay', got {self.observation!r}")
        if self.observation == "stay" and self.outcome in ("mortality", "long_stay", "time_to_death"):
            raise MedDLError(
                f"cohort.observation: 'stay' would let the end of the stay reveal the {self.outcome} label; "
                "use 'window' with observation_hours"
            )
        if not (isinstance(self.observation_hours, int | float) and self.observation_hours > 0):
            raise MedDLError(f"cohort.observation_hours: must be a positive number, got {self.observation_hours!r}")
        if self.horizon_days is None:
            self.horizon_days = _DEFAULT_HORIZON_DAYS.get(self.outcome, 0.0)
        if not (isinstance(self.horizon_days, int | float) and self.horizon_days >= 0):
            raise MedDLError(f"cohort.horizon_days: must be a number ≥ 0, got {self.horizon_days!r}")
        if self.outcome in _DEFAULT_HORIZON_DAYS and self.horizon_days <= 0:
            raise MedDLError(f"cohort.horizon_days: must be positive for {self.outcome}, got {self.horizon_days!r}")
        if self.min_stay_hours is None:
            self.min_stay_hours = float(self.observation_hours) if self.observation == "window" else 0.0
        if not (isinstance(self.min_stay_hours, int | float) and self.min_stay_hours >= 0):
            raise MedDLError(f"cohort.min_stay_hours: must be a number ≥ 0, got {self.min_stay_hours!r}")
        if not isinstance(self.min_age, int | float):
            raise MedDLError(f"cohort.min_age: must be a number, got {self.min_age!r}")
        if not (isinstance(self.label_codes_top, int) and self.label_codes_top >= 1):
            raise MedDLError(f"cohort.label_codes_top: must be a positive integer, got {self.label_codes_top!r}")
        if not (isinstance(self.label_code_prefix, int) and self.label_code_prefix >= 1):
            raise MedDLError(f"cohort.label_code_prefix: must be a positive integer, got {self.label_code_prefix!r}")

    def to_state(self) -> dict[str, Any]:
        """JSON-able dictionary of the fields."""
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CohortSpec:
        """Rebuild from `to_state`."""
        return cls(**state)


@dataclass
class FeatureSpec:
    """How index stays become (N, T, F) sequences.

    Args:
        mode: ``grid`` (lab/vital time series on a time grid inside the window) or ``visits`` (one step per
            previous visit with multi-hot codes).
        bin_hours: grid mode: width of one time bin.
        max_steps: grid mode with ``observation='stay'``: number of bins kept before discharge.
        max_visits: visits mode: number of most recent previous visits kept.
        labs: lab/vital items to use; None picks the ``top_labs`` most frequent among training patients.
        top_labs: see ``labs``.
        codes_top: code vocabulary size (most frequent among training patients); others share one channel.
        include_codes: grid mode: add the multi-hot block of codes known before the window end.
        include_static: add age / 100 and sex on every real step.
        include_discharge_codes: only for cohorts with ``observation='stay'`` (prediction at discharge): codes
            known exactly at the window end — the index stay's discharge diagnoses — become features (in visits
            mode the index stay is then the last step). Off by default: the window is half-open everywhere.
    """

    mode: Literal["grid", "visits"] = "grid"
    bin_hours: float = 4.0
    max_steps: int = 48
    max_visits: int = 20
    labs: list[str] | None = None
    top_labs: int = 20
    codes_top: int = 200
    include_codes: bool = True
    include_static: bool = True
    include_discharge_codes: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("grid", "visits"):
            raise MedDLError(f"features.mode: must be 'grid' or 'visits', got {self.mode!r}")
        if not (isinstance(self.bin_hours, int | float) and self.bin_hours > 0):
            raise MedDLError(f"features.bin_hours: must be a positive number, got {self.bin_hours!r}")
        for name in ("max_steps", "max_visits", "top_labs", "codes_top"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= (0 if name in ("top_labs", "codes_top") else 1)):
                raise MedDLError(f"features.{name}: must be a non-negative integer (steps ≥ 1), got {value!r}")
        if self.labs is not None:
            if isinstance(self.labs, str) or not all(isinstance(item, str) for item in self.labs):
                raise MedDLError(f"features.labs: must be a list of item names, got {self.labs!r}")
            self.labs = list(self.labs)

    def to_state(self) -> dict[str, Any]:
        """JSON-able dictionary of the fields."""
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureSpec:
        """Rebuild from `to_state`."""
        return cls(**state)


# --------------------------------------------------------------------------------------------------------------
# Results


@dataclass
class EHRCohort:
    """Index stays with their labels and the cohort flow (also the DuckDB temp table ``meddl_cohort``).

    Attributes:
        spec: the specification the cohort was built from.
        flow: (step description, stays remaining) for each inclusion step, in order.
        labels: (N,) float32 for binary outcomes, (N, K) float32 multi-hot for next-visit diagnoses;
            (N, 0) for stays from `index_stays` (no label).
        label_names: one name per label column (``[outcome]`` for binary outcomes).
        patient_ids, visit_ids: (N,) object arrays of str, rows ordered by patient, then index time.
        index_times, window_ends: (N,) datetime64[us]; features use events in ``[index_time, window_end)``.
        table: name of the temp table in the connection ``define_cohort`` received (rows ``rid`` 0..N-1).
    """

    spec: CohortSpec
    flow: list[tuple[str, int]]
    labels: np.ndarray
    label_names: list[str]
    patient_ids: np.ndarray
    visit_ids: np.ndarray
    index_times: np.ndarray
    window_ends: np.ndarray
    table: str = COHORT_TABLE

    @property
    def n(self) -> int:
        """Number of index stays."""
        return len(self.visit_ids)

    def flow_table(self) -> str:
        """The cohort flow as aligned text lines, for messages and logs."""
        return format_flow(self.flow)

    def subset(self, rows: np.ndarray) -> EHRCohort:
        """The cohort restricted to ``rows`` (indices or a bool mask), in that order; the flow is kept."""
        return EHRCohort(
            spec=self.spec,
            flow=list(self.flow),
            labels=self.labels[rows],
            label_names=list(self.label_names),
            patient_ids=self.patient_ids[rows],
            visit_ids=self.visit_ids[rows],
            index_times=self.index_times[rows],
            window_ends=self.window_ends[rows],
            table=self.table,
        )


Cohort = EHRCohort
"""Alias used in the task text (``meddl.data.cohorts.Cohort`` is the tabular one)."""


@dataclass
class Vocabulary:
    """Lab items and codes chosen on the training patients; channel order follows these lists.

    Attributes:
        labs: lab/vital item names, one group of 3 channels each in grid mode.
        codes: code tokens ``dx:<system>:<code>``, ``px:…``, ``rx:…`` (system omitted when NULL); any other
            code goes to the ``code:other`` channel.
        mode: the feature mode the vocabulary was built for.
    """

    labs: list[str]
    codes: list[str]
    mode: str = "grid"

    def to_state(self) -> dict[str, Any]:
        """JSON-able dictionary."""
        return {"labs": list(self.labs), "codes": list(self.codes), "mode": self.mode}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Vocabulary:
        """Rebuild from `to_state`."""
        return cls(labs=list(state["labs"]), codes=list(state["codes"]), mode=str(state.get("mode", "grid")))


@dataclass
class EHRFeatures:
    """Dense sequence features and their channel layout.

    Attributes:
        x: float32 (N, T, F); an ``np.memmap`` of ``out/features.npy`` when ``out`` was given.
        lengths: (N,) int64 number of real steps (0 only in visits mode for stays without previous visits).
        patient_ids, visit_ids: (N,) object arrays, the cohort rows in order.
        feature_names: F channel names (channel 0 ``step_mask``).
        groups: channel indices per group: ``mask``, ``lab_value``, ``lab_observed``, ``lab_hours_since``,
            ``codes``, ``static`` (grid) or ``mask``, ``codes``, ``time``, ``static`` (visits).
        value_channels: the channels a `SequenceScaler` should standardise (lab values).
        observed_channels: for each value channel, its observed-in-bin channel (same order).
        dropped: events left out on purpose, counted: ``measurement_values_missing`` (NULL / non-finite values
            of selected items inside windows), ``codes_without_time`` (codes with no time and no discharge time).
        path: the ``.npy`` file, or None when in memory.
    """

    x: np.ndarray
    lengths: np.ndarray
    patient_ids: np.ndarray
    visit_ids: np.ndarray
    feature_names: list[str]
    groups: dict[str, list[int]]
    value_channels: list[int]
    observed_channels: list[int]
    dropped: dict[str, int] = field(default_factory=dict)
    path: Path | None = None


def format_flow(flow: Sequence[tuple[str, int]]) -> str:
    """Aligned text of a cohort flow: one ``description  count`` line per step."""
    width = max((len(step) for step, _ in flow), default=0)
    return "\n".join(f"  {step:<{width}}  {count}" for step, count in flow)

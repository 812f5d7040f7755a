"""EHR cohorts and leakage-free sequence features, computed by SQL inside the DuckDB event store.

A cohort is a set of *index stays* (one hospital admission each), with a prediction time and a label:

=========================  ==========================================  =============================================
outcome                    observation window (features)               label
=========================  ==========================================  =============================================
``mortality``              ``[admit, admit + observation_hours)``      died in hospital (after the window)
``long_stay``              ``[admit, admit + observation_hours)``      length of stay > ``horizon_days`` days
``readmission``            the whole stay ``[admit, discharge)``       next admission ≤ ``horizon_days`` days after
                                                                       DISCHARGE
``next_visit_diagnoses``   the whole stay ``[admit, discharge)``       diagnosis categories (code prefixes) of the
                                                                       next visit (multilabel)
=========================  ==========================================  =============================================

Every feature is computed from events strictly before ``window_end`` (half-open window), so a lab at exactly
``window_end`` or later never reaches the features. A code's *known time* is its own time when recorded, else
its visit's ``discharge_time`` (diagnoses, procedures) and a medication's ``start_time`` else the discharge —
so the index stay's discharge diagnoses are never features of a prediction made during (or at the end of) it —
unless ``FeatureSpec.include_discharge_codes`` asks for them when the prediction is made at discharge.

Feature layouts (``x``: float32, (N, T, F); channel 0 is the step mask, real steps left-aligned, in time order):

* ``grid``: T time bins of ``bin_hours`` over the window (or the last ``max_steps`` bins before discharge when
  the window is the whole stay). Per lab/vital item: the last value in the bin forward-filled within the window
  (0 before the first measurement), observed-in-bin (0/1) and hours since the last measurement / window hours
  (capped at 1; 1 before the first measurement). Then a multi-hot block of codes known before ``window_end``
  (previous visits' diagnoses, procedures and medications, plus procedures / medications timed inside the
  window) repeated on every real step, then static demographics (age / 100, sex) on every real step.
* ``visits``: one step per previous visit discharged before ``window_end`` (the last ``max_visits``): the
  multi-hot codes of that visit, years from its discharge to ``window_end`` and static demographics. A stay
  with no previous visit has length 0: all steps are padding, except that step 0 carries the demographics (the
  sequence models read an all-padding row as length 1, so they still see age and sex).

Extraction runs one set-based query per chunk of index stays; DuckDB bins, picks the last value per bin
(``arg_max``) and returns (row, step, channel, value) rows that NumPy scatters into a dense chunk, written to
``out/features.npy`` chunk by chunk, so peak memory depends on the chunk size, not on the number of events.
"""

from __future__ import annotations

import difflib
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa

from meddl.errors import MedDLError
from meddl.io.ehr_schema import TABLE_COLUMNS

__all__ = [
    "OUTCOMES",
    "Cohort",
    "CohortSpec",
    "EHRCohort",
    "EHRFeatures",
    "FeatureSpec",
    "Vocabulary",
    "build_vocabulary",
    "define_cohort",
    "extract_features",
    "format_flow",
    "index_stays",
]

OUTCOMES: tuple[str, ...] = ("mortality", "readmission", "long_stay", "next_visit_diagnoses")
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
            (multilabel over the ``label_codes_top`` most frequent diagnosis categories of the next visit).
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
            self.observation = "stay" if self.outcome in ("readmission", "next_visit_diagnoses") else "window"
        if self.observation not in ("window", "stay"):
            raise MedDLError(f"cohort.observation: must be 'window' or 'stay', got {self.observation!r}")
        if self.observation == "stay" and self.outcome in ("mortality", "long_stay"):
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


# --------------------------------------------------------------------------------------------------------------
# Connection and schema helpers


@contextmanager
def _connect(con_or_path: StoreLike) -> Iterator[Connection]:
    """Yield the connection given, or open the store file read-only (and close it afterwards)."""
    if isinstance(con_or_path, duckdb.DuckDBPyConnection):
        yield con_or_path
        return
    path = Path(con_or_path)
    if not path.is_file():
        raise MedDLError(f"EHR store {path}: no such file")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise MedDLError(f"EHR store {path}: cannot open as a DuckDB database: {exc}") from None
    try:
        yield con
    finally:
        con.close()


def _store_name(con: Connection) -> str:
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return str(row[0]) if row and row[0] else "in-memory EHR store"


def _check_schema(con: Connection, tables: Sequence[str]) -> None:
    """Raise a MedDLError naming every missing table and column among ``tables`` (schema of ehr_schema.py)."""
    present: dict[str, set[str]] = {}
    query = (
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = current_schema()"
    )
    for table, column in con.execute(query).fetchall():
        present.setdefault(str(table).lower(), set()).add(str(column).lower())
    problems = []
    for table in tables:
        if table not in present:
            problems.append(f"table {table!r} is missing")
            continue
        missing = [c for c in TABLE_COLUMNS[table] if c not in present[table]]
        if missing:
            problems.append(f"table {table!r} lacks column(s) {missing}")
    if problems:
        raise MedDLError(
            f"EHR store {_store_name(con)}: {'; '.join(problems)} (expected the schema of meddl.io.ehr_schema)"
        )


def format_flow(flow: Sequence[tuple[str, int]]) -> str:
    """Aligned text of a cohort flow: one ``description  count`` line per step."""
    width = max((len(step) for step, _ in flow), default=0)
    return "\n".join(f"  {step:<{width}}  {count}" for step, count in flow)


def _interval_us(hours: float) -> int:
    return round(hours * _US_PER_HOUR)


# --------------------------------------------------------------------------------------------------------------
# Cohort definition


def define_cohort(con_or_path: StoreLike, spec: CohortSpec) -> EHRCohort:
    """Select index stays, apply the exclusions in order (counted in ``flow``) and compute the labels.

    Exclusion steps: discharge time recorded (and not before admission); age known and ≥ ``min_age``; stay ≥
    ``min_stay_hours``; mortality / long stay: alive at the window end (deaths inside the window are not
    predictions; a death time is the patient's ``death_time``, else the discharge of a stay that ended in
    death); readmission: discharged alive, and the label known — readmitted within the horizon, or the store
    covers the whole horizon after discharge (the store's end is its last admission or discharge time), or the
    patient died within the horizon without readmission (label 0); next-visit diagnoses: a later visit exists;
    then one eligible stay per patient (the first, or a seeded random one). A readmission is a visit admitted
    strictly after the discharge (a transfer at the same instant is not) no later than ``horizon_days`` after it.
    Post-discharge deaths without readmission count as negatives; next-visit labels are the categories of the
    first visit admitted after the discharge, and the label vocabulary is chosen on the whole cohort.

    Args:
        con_or_path: an open DuckDB connection (the temp table ``meddl_cohort`` is created in it) or a store path.
        spec: the cohort specification.

    Returns:
        The cohort; rows ordered by patient id, then index time.

    Raises:
        MedDLError: the store lacks a needed table or column, or no stay remains (the message shows the flow).
    """
    with _connect(con_or_path) as con:
        tables = ["patients", "visits"] + (["diagnoses"] if spec.outcome == "next_visit_diagnoses" else [])
        _check_schema(con, tables)
        window_mode = spec.observation == "window"
        assert spec.horizon_days is not None and spec.min_stay_hours is not None, "resolved in __post_init__"
        horizon_us = round(float(spec.horizon_days) * 24 * _US_PER_HOUR)
        type_filter, parameters = "", []
        if spec.visit_types is not None:
            type_filter, parameters = "WHERE visit_type IN (SELECT unnest(?))", [list(spec.visit_types)]
        window_end = (
            f"s.admit_time + to_microseconds(CAST({_interval_us(spec.observation_hours)} AS BIGINT))"
            if window_mode
            else "s.discharge_time"
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _meddl_stays AS
            WITH v AS (SELECT * FROM visits {type_filter}),
            nxt AS (
                SELECT a.visit_id, min(b.admit_time) AS next_admit_time,
                       arg_min(b.visit_id, (b.admit_time, b.visit_id)) AS next_visit_id
                FROM v a JOIN v b ON a.patient_id = b.patient_id AND b.admit_time > a.discharge_time
                GROUP BY a.visit_id
            ),
            s AS (
                SELECT v.visit_id, v.patient_id, v.admit_time, v.discharge_time,
                       p.birth_date, v.died_in_hospital AS died_flag, p.death_time AS patient_death_time,
                       nxt.next_admit_time, nxt.next_visit_id
                FROM v LEFT JOIN patients p ON p.patient_id = v.patient_id
                LEFT JOIN nxt ON nxt.visit_id = v.visit_id
            )
            SELECT s.visit_id, s.patient_id, s.admit_time, s.discharge_time, s.next_admit_time, s.next_visit_id,
                   s.admit_time AS index_time,
                   {window_end} AS window_end,
                   (epoch_us(s.discharge_time) - epoch_us(s.admit_time)) / {_US_PER_HOUR} AS los_hours,
                   date_sub('year', s.birth_date, CAST(s.admit_time AS DATE)) AS age_years,
                   coalesce(s.patient_death_time,
                            CASE WHEN s.died_flag THEN s.discharge_time END) AS death_time,
                   coalesce(s.died_flag,
                            s.patient_death_time >= s.admit_time AND s.patient_death_time <= s.discharge_time,
                            false) AS died_in_hospital,
                   (SELECT max(greatest(admit_time, coalesce(discharge_time, admit_time))) FROM visits) AS store_end
            FROM s
            """,
            parameters,
        )
        steps: list[tuple[str, str]] = [
            ("discharge time recorded", "discharge_time IS NOT NULL AND discharge_time >= admit_time"),
            (
                f"age known and ≥ {spec.min_age:g} at admission",
                f"age_years IS NOT NULL AND age_years >= {spec.min_age}",
            ),
        ]
        if spec.min_stay_hours > 0:
            steps.append((f"stay ≥ {spec.min_stay_hours:g} h", f"los_hours >= {float(spec.min_stay_hours)}"))
        if spec.outcome in ("mortality", "long_stay"):
            steps.append((f"alive at {spec.observation_hours:g} h", "death_time IS NULL OR death_time >= window_end"))
        readmitted = (
            f"(next_admit_time IS NOT NULL AND epoch_us(next_admit_time) - epoch_us(discharge_time) <= {horizon_us})"
        )
        if spec.outcome == "readmission":
            steps.append(("discharged alive", "NOT died_in_hospital"))
            steps.append(
                (
                    f"readmission status known for {spec.horizon_days:g} days",
                    f"{readmitted} OR epoch_us(store_end) - epoch_us(discharge_time) >= {horizon_us} OR "
                    f"(death_time IS NOT NULL AND epoch_us(death_time) - epoch_us(discharge_time) <= {horizon_us})",
                )
            )
        if spec.outcome == "next_visit_diagnoses":
            steps.append(("has a later visit", "next_visit_id IS NOT NULL"))
        counts_sql = ", ".join(
            ["count(*)"]
            + [
                "count(*) FILTER (WHERE " + " AND ".join(f"({c})" for _, c in steps[: i + 1]) + ")"
                for i in range(len(steps))
            ]
        )
        counts = con.execute(f"SELECT {counts_sql} FROM _meddl_stays").fetchone()
        assert counts is not None, "an aggregate query returns one row"
        store_label = "stays in the store" if spec.visit_types is None else f"{spec.visit_types} stays in the store"
        flow = [(store_label, int(counts[0]))] + [
            (desc, int(c)) for (desc, _), c in zip(steps, counts[1:], strict=True)
        ]
        where = " AND ".join(f"({c})" for _, c in steps) or "true"
        rank_filter = "WHERE stay_rank = 1" if spec.first_stay_only else ""
        stay_order = (
            "admit_time, visit_id"
            if spec.stay_selection == "first"
            else f"md5(visit_id || ':{int(spec.seed)}'), visit_id"
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {COHORT_TABLE} AS
            SELECT CAST(row_number() OVER (ORDER BY patient_id, index_time, visit_id) - 1 AS BIGINT) AS rid, *
            FROM (
                SELECT *, row_number() OVER (PARTITION BY patient_id ORDER BY {stay_order}) AS stay_rank,
                       {readmitted} AS readmitted
                FROM _meddl_stays WHERE {where}
            ) {rank_filter}
            ORDER BY rid
            """
        )
        con.execute("DROP TABLE IF EXISTS _meddl_stays")
        if spec.first_stay_only:
            n_left = con.execute(f"SELECT count(*) FROM {COHORT_TABLE}").fetchone()
            step = (
                "first eligible stay per patient"
                if spec.stay_selection == "first"
                else f"one random eligible stay per patient (seed {spec.seed})"
            )
            flow.append((step, int(n_left[0]) if n_left else 0))
        if flow[-1][1] == 0:
            raise MedDLError(
                f"EHR store {_store_name(con)}: no index stay is left after the exclusions of the cohort "
                f"(outcome {spec.outcome!r}):\n{format_flow(flow)}"
            )
        columns = con.execute(
            f"SELECT patient_id, visit_id, index_time, window_end, died_in_hospital, los_hours, readmitted "
            f"FROM {COHORT_TABLE} ORDER BY rid"
        ).fetchnumpy()
        label_names: list[str]
        if spec.outcome == "mortality":
            labels, label_names = np.asarray(columns["died_in_hospital"], dtype=np.float32), ["mortality"]
        elif spec.outcome == "long_stay":
            threshold = float(spec.horizon_days) * 24
            labels = (np.asarray(columns["los_hours"], dtype=np.float64) > threshold).astype(np.float32)
            label_names = ["long_stay"]
        elif spec.outcome == "readmission":
            labels, label_names = np.asarray(columns["readmitted"], dtype=np.float32), ["readmission"]
        else:
            labels, label_names = _next_visit_labels(con, spec, len(columns["visit_id"]))
        return EHRCohort(
            spec=spec,
            flow=flow,
            labels=labels,
            label_names=label_names,
            patient_ids=np.asarray(columns["patient_id"], dtype=object),
            visit_ids=np.asarray(columns["visit_id"], dtype=object),
            index_times=np.asarray(columns["index_time"], dtype="datetime64[us]"),
            window_ends=np.asarray(columns["window_end"], dtype="datetime64[us]"),
        )


def _next_visit_labels(con: Connection, spec: CohortSpec, n: int) -> tuple[np.ndarray, list[str]]:
    """Multi-hot (n, K) of the K most frequent diagnosis categories of each index stay's next visit."""
    prefix = f"left(replace(d.code, '.', ''), {int(spec.label_code_prefix)})"
    pairs = con.execute(
        f"""
        SELECT DISTINCT c.rid, {prefix} AS category
        FROM {COHORT_TABLE} c JOIN diagnoses d ON d.visit_id = c.next_visit_id
        WHERE d.code IS NOT NULL AND {prefix} <> ''
        """
    ).fetchnumpy()
    rids = np.asarray(pairs["rid"], dtype=np.int64)
    categories = np.asarray(pairs["category"], dtype=object)
    counts = Counter(str(c) for c in categories)
    label_names = sorted(counts, key=lambda name: (-counts[name], name))[: spec.label_codes_top]
    column = {name: j for j, name in enumerate(label_names)}
    labels = np.zeros((n, len(label_names)), dtype=np.float32)
    keep = np.array([c in column for c in categories.astype(str)], dtype=bool)
    if keep.any():
        labels[rids[keep], [column[str(c)] for c in categories[keep]]] = 1.0
    return labels, label_names


def index_stays(con_or_path: StoreLike, spec: CohortSpec, visit_ids: Sequence[str]) -> EHRCohort:
    """Index rows for given stays without labels or exclusions — for predicting new patients.

    The window is the one ``spec`` defines (``window``: admit + observation_hours; ``stay``: up to discharge).

    Raises:
        MedDLError: a visit id is not in the store, or a ``stay`` window needs a discharge time that is missing.
    """
    ids = [str(v) for v in visit_ids]
    with _connect(con_or_path) as con:
        _check_schema(con, ["patients", "visits"])
        rows = con.execute(
            "SELECT patient_id, visit_id, admit_time, discharge_time FROM visits "
            "WHERE visit_id IN (SELECT unnest(?)) ORDER BY patient_id, admit_time, visit_id",
            [ids],
        ).fetchall()
        found = {str(r[1]) for r in rows}
        missing = [v for v in ids if v not in found]
        if missing:
            raise MedDLError(f"EHR store {_store_name(con)}: visit_id(s) {missing[:10]} not found in table 'visits'")
        if spec.observation == "stay":
            open_stays = [str(r[1]) for r in rows if r[3] is None]
            if open_stays:
                raise MedDLError(
                    f"EHR store {_store_name(con)}: visit_id(s) {open_stays[:10]} have no discharge_time, which the "
                    "cohort's observation='stay' window needs"
                )
    index_times = np.array([r[2] for r in rows], dtype="datetime64[us]")
    if spec.observation == "window":
        window_ends = index_times + np.timedelta64(_interval_us(spec.observation_hours), "us")
    else:
        window_ends = np.array([r[3] for r in rows], dtype="datetime64[us]")
    return EHRCohort(
        spec=spec,
        flow=[("requested stays", len(rows))],
        labels=np.zeros((len(rows), 0), dtype=np.float32),
        label_names=[],
        patient_ids=np.array([str(r[0]) for r in rows], dtype=object),
        visit_ids=np.array([str(r[1]) for r in rows], dtype=object),
        index_times=index_times,
        window_ends=window_ends,
    )


# --------------------------------------------------------------------------------------------------------------
# SQL building blocks shared by the vocabulary and the features


def _codes_sql(con: Connection) -> str:
    """SELECT of every code with its patient, visit, token and known time (a code's time, else its discharge)."""
    _check_schema(con, ["visits", *_CODE_TABLES])
    parts = []
    for kind, table, own_time in (
        ("dx", "diagnoses", "t.time"),
        ("px", "procedures", "t.time"),
        ("rx", "medications", "t.start_time"),
    ):
        parts.append(
            f"SELECT t.patient_id, t.visit_id, '{kind}:' || coalesce(t.system || ':', '') || t.code AS token, "
            f"coalesce({own_time}, v.discharge_time) AS known_time "
            f"FROM {table} t LEFT JOIN visits v ON v.visit_id = t.visit_id"
        )
    return " UNION ALL ".join(parts)


def _register(con: Connection, name: str, columns: dict[str, Any]) -> None:
    con.register(name, pa.table(columns))


def _cohort_columns(cohort: EHRCohort, rows: np.ndarray) -> dict[str, Any]:
    return {
        "rid": pa.array(rows.astype(np.int64)),
        "patient_id": pa.array(cohort.patient_ids[rows].astype(str).tolist(), type=pa.string()),
        "visit_id": pa.array(cohort.visit_ids[rows].astype(str).tolist(), type=pa.string()),
        "index_time": pa.array(cohort.index_times[rows].astype("datetime64[us]")),
        "window_end": pa.array(cohort.window_ends[rows].astype("datetime64[us]")),
    }


# --------------------------------------------------------------------------------------------------------------
# Vocabulary


def _code_cutoff(cohort: EHRCohort, spec: FeatureSpec) -> str:
    """SQL comparison of a code's known time with the window end: ``<``, or ``<=`` for discharge codes."""
    if not spec.include_discharge_codes:
        return "<"
    if cohort.spec.observation != "stay":
        raise MedDLError(
            "features.include_discharge_codes: only for cohorts predicting at discharge (observation='stay'); "
            f"this cohort's window ends {cohort.spec.observation_hours:g} h after admission"
        )
    return "<="


def build_vocabulary(
    con_or_path: StoreLike, cohort: EHRCohort, spec: FeatureSpec, train_mask: np.ndarray
) -> Vocabulary:
    """Choose lab items and codes from the training stays only.

    Labs (grid mode): ``spec.labs`` as given (checked against the store), else the ``top_labs`` items with the
    most measurements inside the training stays' windows. Codes: the ``codes_top`` tokens known before the
    window end in the most training stays. Ties are broken by name, so the result is deterministic.

    Args:
        con_or_path: DuckDB connection or store path.
        cohort: the cohort.
        spec: the feature specification.
        train_mask: (N,) bool, True for the cohort rows of training patients.

    Raises:
        MedDLError: ``train_mask`` has the wrong shape or selects no row; an item of ``spec.labs`` is not in
            the store (the message lists close matches).
    """
    mask = np.asarray(train_mask)
    if mask.dtype != bool or mask.shape != (cohort.n,):
        raise MedDLError(f"train_mask must be a bool array of shape ({cohort.n},), got {mask.dtype} {mask.shape}")
    if not mask.any():
        raise MedDLError("train_mask selects no cohort row; the vocabulary is chosen on training patients")
    rows = np.flatnonzero(mask)
    with _connect(con_or_path) as con:
        labs: list[str] = []
        if spec.mode == "grid":
            _check_schema(con, ["measurements"])
            if spec.labs is not None:
                labs = _check_lab_names(con, spec.labs)
        _register(con, "_meddl_train", _cohort_columns(cohort, rows))
        try:
            if spec.mode == "grid" and spec.labs is None and spec.top_labs > 0:
                labs = [
                    str(r[0])
                    for r in con.execute(
                        f"""
                        SELECT m.item, count(*) AS n FROM measurements m JOIN _meddl_train c
                          ON m.patient_id = c.patient_id AND m.time >= c.index_time AND m.time < c.window_end
                        GROUP BY m.item ORDER BY n DESC, m.item LIMIT {int(spec.top_labs)}
                        """
                    ).fetchall()
                ]
            codes: list[str] = []
            if (spec.mode == "visits" or spec.include_codes) and spec.codes_top > 0:
                codes = [
                    str(r[0])
                    for r in con.execute(
                        f"""
                        SELECT k.token, count(DISTINCT c.rid) AS n FROM ({_codes_sql(con)}) k JOIN _meddl_train c
                          ON k.patient_id = c.patient_id AND k.known_time {_code_cutoff(cohort, spec)} c.window_end
                        GROUP BY k.token ORDER BY n DESC, k.token LIMIT {int(spec.codes_top)}
                        """
                    ).fetchall()
                ]
        finally:
            con.unregister("_meddl_train")
    return Vocabulary(labs=labs, codes=codes, mode=spec.mode)


def _check_lab_names(con: Connection, names: Sequence[str]) -> list[str]:
    items = [str(r[0]) for r in con.execute("SELECT DISTINCT item FROM measurements").fetchall()]
    known = set(items)
    unknown = [name for name in names if name not in known]
    if unknown:
        hints = "; ".join(
            f"{name!r}: close matches {difflib.get_close_matches(name, items, n=3, cutoff=0.5) or 'none'}"
            for name in unknown
        )
        raise MedDLError(f"features.labs: item(s) not in table 'measurements' of {_store_name(con)}: {hints}")
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------------------------------------------
# Features


def _layout(spec: FeatureSpec, vocabulary: Vocabulary) -> tuple[list[str], dict[str, list[int]]]:
    names = ["step_mask"]
    groups: dict[str, list[int]] = {"mask": [0]}

    def add(group: str, new: list[str]) -> None:
        groups[group] = list(range(len(names), len(names) + len(new)))
        names.extend(new)

    use_codes = spec.mode == "visits" or spec.include_codes
    if spec.mode == "grid":
        add("lab_value", [f"lab:{item}:value" for item in vocabulary.labs])
        add("lab_observed", [f"lab:{item}:observed" for item in vocabulary.labs])
        add("lab_hours_since", [f"lab:{item}:hours_since" for item in vocabulary.labs])
    if use_codes:
        add("codes", [f"code:{token}" for token in vocabulary.codes] + ["code:other"])
    if spec.mode == "visits":
        add("time", ["years_before_window_end"])
    if spec.include_static:
        add("static", ["age/100", "sex_female", "sex_male"])
    return names, groups


def extract_features(
    con_or_path: StoreLike,
    cohort: EHRCohort | CohortSpec,
    spec: FeatureSpec,
    vocabulary: Vocabulary,
    *,
    out: str | Path | None = None,
    chunk_patients: int = 20000,
    visit_ids: Sequence[str] | None = None,
) -> EHRFeatures:
    """Compute (N, T, F) float32 features for the cohort's index stays, chunk by chunk, inside DuckDB.

    Args:
        con_or_path: DuckDB connection or store path.
        cohort: the cohort; or a `CohortSpec` together with ``visit_ids`` to featurise new stays (prediction):
            their windows come from the spec, with no label and no exclusion.
        spec: the feature specification (mode, bins, …).
        vocabulary: lab items and codes from `build_vocabulary` (or `Vocabulary.from_state`).
        out: folder; when given, ``x`` is written to ``out/features.npy`` and returned as a memmap.
        chunk_patients: index stays per query (cohort rows are ordered by patient); bounds peak memory.
        visit_ids: restrict to these index stays (in the cohort's order).

    Returns:
        The features; see the module docstring for the channel layout.

    Raises:
        MedDLError: a needed table/column is missing, a visit id is not in the cohort, or a patient of a
            requested stay has no birth date while static features are on.
    """
    if chunk_patients < 1:
        raise MedDLError(f"chunk_patients must be positive, got {chunk_patients}")
    if vocabulary.mode != spec.mode:
        raise MedDLError(f"vocabulary was built for mode {vocabulary.mode!r}, features.mode is {spec.mode!r}")
    with _connect(con_or_path) as con:
        if isinstance(cohort, CohortSpec):
            if visit_ids is None:
                raise MedDLError("extract_features: pass visit_ids=[...] with a CohortSpec (or pass a cohort)")
            cohort = index_stays(con, cohort, visit_ids)
        elif visit_ids is not None:
            position = {str(v): i for i, v in enumerate(cohort.visit_ids)}
            missing = [str(v) for v in visit_ids if str(v) not in position]
            if missing:
                raise MedDLError(
                    f"extract_features: visit_id(s) {missing[:10]} are not index stays of the cohort; "
                    "pass the CohortSpec instead to featurise stays outside it"
                )
            cohort = cohort.subset(np.array(sorted(position[str(v)] for v in visit_ids), dtype=np.int64))
        needed = ["patients", "visits"]
        if spec.mode == "grid" and vocabulary.labs:
            needed.append("measurements")
        if spec.mode == "visits" or spec.include_codes:
            needed.extend(_CODE_TABLES)
        _check_schema(con, needed)
        return _Extractor(con, cohort, spec, vocabulary).run(out, chunk_patients)


class _Extractor:
    """One extraction: the layout, the per-row grid and the chunk loop."""

    def __init__(self, con: Connection, cohort: EHRCohort, spec: FeatureSpec, vocabulary: Vocabulary) -> None:
        self.con, self.cohort, self.spec, self.vocabulary = con, cohort, spec, vocabulary
        self.names, self.groups = _layout(spec, vocabulary)
        self.n_features = len(self.names)
        self.bin_us = _interval_us(spec.bin_hours)
        self.cutoff = _code_cutoff(cohort, spec)
        self.dropped = {"measurement_values_missing": 0, "codes_without_time": 0}
        index_us = cohort.index_times.astype("datetime64[us]").astype(np.int64)
        end_us = cohort.window_ends.astype("datetime64[us]").astype(np.int64)
        if np.any(end_us <= index_us):
            bad = int(np.flatnonzero(end_us <= index_us)[0])
            raise MedDLError(
                f"extract_features: index stay {cohort.visit_ids[bad]!r} has an empty observation window "
                f"(window_end {cohort.window_ends[bad]} ≤ index_time {cohort.index_times[bad]})"
            )
        self.index_us, self.end_us = index_us, end_us
        self.discharge_us, self.age, self.sex = self._stay_facts()
        if spec.mode == "grid":
            if cohort.spec.observation == "window":
                self.n_steps = max(1, math.ceil(cohort.spec.observation_hours / spec.bin_hours - 1e-9))
                grid_end = np.minimum(end_us, np.where(self.discharge_us > index_us, self.discharge_us, end_us))
                self.lengths = np.clip(np.ceil((grid_end - index_us) / self.bin_us), 1, self.n_steps).astype(np.int64)
                self.origin_us = index_us
            else:
                self.n_steps = spec.max_steps
                self.lengths = np.clip(np.ceil((end_us - index_us) / self.bin_us), 1, self.n_steps).astype(np.int64)
                self.origin_us = end_us - self.lengths * self.bin_us
            self.window_hours = self.n_steps * spec.bin_hours
        else:
            self.n_steps = spec.max_visits
            self.lengths = np.zeros(cohort.n, dtype=np.int64)

    def _stay_facts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Discharge time (µs; int64 min when unknown), age in years at index and sex per cohort row."""
        n = self.cohort.n
        _register(self.con, "_meddl_rows", _cohort_columns(self.cohort, np.arange(n)))
        try:
            facts = self.con.execute(
                """
                SELECT r.rid, epoch_us(v.discharge_time) AS discharge_us,
                       (epoch_us(r.index_time) - epoch_us(CAST(p.birth_date AS TIMESTAMP))) AS age_us, p.sex
                FROM _meddl_rows r LEFT JOIN visits v ON v.visit_id = r.visit_id
                LEFT JOIN patients p ON p.patient_id = r.patient_id
                ORDER BY r.rid
                """
            ).fetchnumpy()
        finally:
            self.con.unregister("_meddl_rows")
        discharge = np.ma.filled(np.ma.asarray(facts["discharge_us"]).astype(np.int64), np.iinfo(np.int64).min)
        age_us = np.ma.asarray(facts["age_us"]).astype(np.float64)
        if self.spec.include_static and np.ma.getmaskarray(age_us).any():
            bad = int(np.flatnonzero(np.ma.getmaskarray(age_us))[0])
            raise MedDLError(
                f"extract_features: patient {self.cohort.patient_ids[bad]!r} has no birth_date in table 'patients' "
                "(age is a static feature)"
            )
        age = np.ma.filled(age_us, 0.0) / _US_PER_YEAR
        sex = np.array(["" if s is None or s is np.ma.masked else str(s) for s in facts["sex"]], dtype=object)
        return np.asarray(discharge), np.asarray(age), sex

    # ----------------------------------------------------------------------------------------------------------

    def run(self, out: str | Path | None, chunk_rows: int) -> EHRFeatures:
        n, shape = self.cohort.n, (self.cohort.n, self.n_steps, self.n_features)
        path: Path | None = None
        offset = 0
        x: np.ndarray
        if out is not None:
            folder = Path(out)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "features.npy"
            header = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
            offset = int(header.offset)
            del header
        else:
            x = np.zeros(shape, dtype=np.float32)
        row_bytes = self.n_steps * self.n_features * 4
        for start in range(0, n, chunk_rows):
            rows = np.arange(start, min(n, start + chunk_rows))
            chunk = self._chunk(rows)
            if path is not None:
                # Plain file writes, not a writable memmap: written pages do not stay resident in this process.
                with open(path, "r+b") as handle:
                    handle.seek(offset + start * row_bytes)
                    chunk.tofile(handle)
            else:
                x[rows] = chunk
            del chunk
        if path is not None:
            x = np.load(path, mmap_mode="r+")
        value_channels = self.groups.get("lab_value", [])
        return EHRFeatures(
            x=x,
            lengths=self.lengths.copy(),
            patient_ids=self.cohort.patient_ids.copy(),
            visit_ids=self.cohort.visit_ids.copy(),
            feature_names=list(self.names),
            groups={k: list(v) for k, v in self.groups.items()},
            value_channels=list(value_channels),
            observed_channels=list(self.groups.get("lab_observed", [])),
            dropped=dict(self.dropped),
            path=path,
        )

    def _chunk(self, rows: np.ndarray) -> np.ndarray:
        columns = _cohort_columns(self.cohort, rows)
        if self.spec.mode == "grid":
            columns["origin"] = pa.array(self.origin_us[rows].astype("datetime64[us]"))
            columns["n_steps"] = pa.array(self.lengths[rows])
        _register(self.con, "_meddl_chunk", columns)
        try:
            x = np.zeros((len(rows), self.n_steps, self.n_features), dtype=np.float32)
            if self.spec.mode == "grid":
                self._grid_chunk(x, rows)
            else:
                self._visits_chunk(x, rows)
            return x
        finally:
            self.con.unregister("_meddl_chunk")

    def _block(self, group: str) -> slice:
        """The channels of ``group`` as a slice (groups are contiguous), so writes are views, not scatters."""
        channels = self.groups[group]
        return slice(channels[0], channels[-1] + 1) if channels else slice(0, 0)

    def _static(self, x: np.ndarray, rows: np.ndarray, lengths: np.ndarray) -> None:
        """Age / 100 and sex on every real step (step 0 too when a row has none)."""
        if not self.spec.include_static:
            return
        steps = (np.arange(self.n_steps)[None, :] < np.maximum(lengths, 1)[:, None]).astype(np.float32)  # (b, T)
        static = np.stack([self.age[rows] / 100.0, self.sex[rows] == "F", self.sex[rows] == "M"], axis=1).astype(
            np.float32
        )  # (b, 3)
        np.multiply(steps[:, :, None], static[:, None, :], out=x[:, :, self._block("static")])

    def _grid_chunk(self, x: np.ndarray, rows: np.ndarray) -> None:
        b, steps = len(rows), self.n_steps
        lengths = self.lengths[rows]
        real = (np.arange(steps)[None, :] < lengths[:, None]).astype(np.float32)  # (b, T)
        x[:, :, 0] = real
        if self.vocabulary.labs:
            self._labs(x, rows, real)
        if self.spec.include_codes:
            codes = self._codes_known_before_end()
            block = np.zeros((b, len(self.groups["codes"])), dtype=np.float32)
            block[codes[0] - rows[0], codes[1]] = 1.0
            np.multiply(real[:, :, None], block[:, None, :], out=x[:, :, self._block("codes")])
        self._static(x, rows, lengths)

    def _labs(self, x: np.ndarray, rows: np.ndarray, real: np.ndarray) -> None:
        """Last value (forward-filled), observed-in-bin and hours since last measurement per lab item."""
        labs = self.vocabulary.labs
        b, steps, k = len(rows), self.n_steps, len(labs)
        _register(self.con, "_meddl_labs", {"item": pa.array(labs, type=pa.string()), "idx": pa.array(np.arange(k))})
        try:
            result = self.con.execute(
                f"""
                WITH m AS (
                    SELECT c.rid, l.idx, m.time, m.value,
                           CAST(floor((epoch_us(m.time) - epoch_us(c.origin)) / {self.bin_us}) AS BIGINT) AS step
                    FROM measurements m
                    JOIN _meddl_labs l ON l.item = m.item
                    JOIN _meddl_chunk c ON c.patient_id = m.patient_id
                     AND m.time >= c.index_time AND m.time < c.window_end AND m.time >= c.origin
                )
                SELECT rid, step, idx,
                       arg_max(value, (time, value)) FILTER (WHERE isfinite(value)) AS value,
                       epoch_us(max(time) FILTER (WHERE isfinite(value))) AS last_us,
                       count(*) FILTER (WHERE value IS NULL OR NOT isfinite(value)) AS n_missing
                FROM m GROUP BY rid, step, idx
                """
            ).fetchnumpy()
        finally:
            self.con.unregister("_meddl_labs")
        rid = np.asarray(result["rid"], dtype=np.int64) - rows[0]  # chunk rows are contiguous
        step = np.asarray(result["step"], dtype=np.int64)
        idx = np.asarray(result["idx"], dtype=np.int64)
        value_ma = np.ma.asarray(result["value"])
        self.dropped["measurement_values_missing"] += int(np.asarray(result["n_missing"], dtype=np.int64).sum())
        inside = (~np.ma.getmaskarray(value_ma)) & (step >= 0) & (step < self.lengths[rows][rid])
        rid, step, idx = rid[inside], step[inside], idx[inside]
        values = np.asarray(np.ma.filled(value_ma, 0.0), dtype=np.float32)[inside]
        last_us = np.asarray(np.ma.filled(np.ma.asarray(result["last_us"]), 0), dtype=np.int64)[inside]
        value_grid = np.zeros((b, steps, k), dtype=np.float32)
        last_grid = np.zeros((b, steps, k), dtype=np.int64)
        observed = np.zeros((b, steps, k), dtype=bool)
        value_grid[rid, step, idx] = values
        last_grid[rid, step, idx] = last_us
        observed[rid, step, idx] = True
        value_out, observed_out = x[:, :, self._block("lab_value")], x[:, :, self._block("lab_observed")]
        since_out = x[:, :, self._block("lab_hours_since")]
        seen = np.zeros((b, k), dtype=bool)
        value = np.zeros((b, k), dtype=np.float32)
        last = np.zeros((b, k), dtype=np.int64)
        scale = _US_PER_HOUR * self.window_hours
        origin = self.origin_us[rows]
        # Forward fill within the window, one step at a time (T is small; each step is a (b, K) operation).
        for t in range(steps):
            now = observed[:, t]
            seen |= now
            np.copyto(value, value_grid[:, t], where=now)
            np.copyto(last, last_grid[:, t], where=now)
            on = real[:, t, None]  # (b, 1)
            step_end = origin + (t + 1) * self.bin_us  # (b,)
            since = np.where(seen, np.clip((step_end[:, None] - last) / scale, 0.0, 1.0), 1.0)
            value_out[:, t] = value * on
            observed_out[:, t] = now * on
            since_out[:, t] = since * on

    def _codes_known_before_end(self) -> tuple[np.ndarray, np.ndarray]:
        """(rid, position in the codes block) of codes known before each window end; counts timeless codes."""
        other = len(self.vocabulary.codes)
        tokens = {"token": pa.array(self.vocabulary.codes, type=pa.string()), "idx": pa.array(np.arange(other))}
        _register(self.con, "_meddl_tokens", tokens)
        try:
            result = self.con.execute(
                f"""
                SELECT c.rid, CASE WHEN k.known_time IS NULL THEN -1 ELSE coalesce(t.idx, {other}) END AS channel,
                       count(*) AS n
                FROM ({_codes_sql(self.con)}) k
                JOIN _meddl_chunk c ON c.patient_id = k.patient_id
                 AND (k.known_time {self.cutoff} c.window_end OR k.known_time IS NULL)
                LEFT JOIN _meddl_tokens t ON t.token = k.token
                GROUP BY ALL
                """
            ).fetchnumpy()
        finally:
            self.con.unregister("_meddl_tokens")
        rid = np.asarray(result["rid"], dtype=np.int64)
        channel = np.asarray(result["channel"], dtype=np.int64)
        timeless = channel < 0
        self.dropped["codes_without_time"] += int(np.asarray(result["n"], dtype=np.int64)[timeless].sum())
        return rid[~timeless], channel[~timeless]

    def _visits_chunk(self, x: np.ndarray, rows: np.ndarray) -> None:
        other = len(self.vocabulary.codes)
        tokens = {"token": pa.array(self.vocabulary.codes, type=pa.string()), "idx": pa.array(np.arange(other))}
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _meddl_prev AS
            SELECT * FROM (
                SELECT c.rid, v.visit_id, v.discharge_time, c.window_end,
                       row_number() OVER (
                           PARTITION BY c.rid ORDER BY v.discharge_time DESC, v.admit_time DESC, v.visit_id DESC
                       ) AS recency,
                       count(*) OVER (PARTITION BY c.rid) AS n_prev
                FROM _meddl_chunk c JOIN visits v ON v.patient_id = c.patient_id
                WHERE v.discharge_time {self.cutoff} c.window_end
                  AND (v.visit_id <> c.visit_id OR {"true" if self.cutoff == "<=" else "false"})
            ) WHERE recency <= {int(self.spec.max_visits)}
            """
        )
        _register(self.con, "_meddl_tokens", tokens)
        try:
            visits = self.con.execute(
                "SELECT rid, recency, least(n_prev, ?) AS n_steps, "
                "epoch_us(window_end) - epoch_us(discharge_time) AS before_us FROM _meddl_prev",
                [int(self.spec.max_visits)],
            ).fetchnumpy()
            codes = self.con.execute(
                f"""
                SELECT p.rid, p.recency, least(p.n_prev, {int(self.spec.max_visits)}) AS n_steps,
                       coalesce(t.idx, {other}) AS channel
                FROM ({_codes_sql(self.con)}) k
                JOIN _meddl_prev p ON p.visit_id = k.visit_id AND k.known_time {self.cutoff} p.window_end
                LEFT JOIN _meddl_tokens t ON t.token = k.token
                GROUP BY ALL
                """
            ).fetchnumpy()
        finally:
            self.con.unregister("_meddl_tokens")
            self.con.execute("DROP TABLE IF EXISTS _meddl_prev")
        rid = np.asarray(visits["rid"], dtype=np.int64)
        n_steps = np.asarray(visits["n_steps"], dtype=np.int64)
        lengths = np.zeros(len(rows), dtype=np.int64)
        lengths[rid - rows[0]] = n_steps
        self.lengths[rows] = lengths
        step = n_steps - np.asarray(visits["recency"], dtype=np.int64)  # oldest kept visit → step 0
        x[rid - rows[0], step, 0] = 1.0
        years = np.asarray(visits["before_us"], dtype=np.float64) / _US_PER_YEAR
        x[rid - rows[0], step, self.groups["time"][0]] = years
        code_rid = np.asarray(codes["rid"], dtype=np.int64) - rows[0]
        code_step = np.asarray(codes["n_steps"], dtype=np.int64) - np.asarray(codes["recency"], dtype=np.int64)
        channel = np.asarray(self.groups["codes"], dtype=np.int64)[np.asarray(codes["channel"], dtype=np.int64)]
        x[code_rid, code_step, channel] = 1.0
        self._static(x, rows, lengths)

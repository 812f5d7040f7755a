"""A synthetic hospital written straight into a MedDL event store, with an outcome from a known risk model.

Patients (ages 18–95 at their first admission, plus about 3 % children to exercise age exclusions) carry chronic
conditions drawn with realistic correlations — hypertension and diabetes rise with age, diabetes and hypertension
raise chronic kidney disease, hypertension raises heart failure, heart failure raises atrial fibrillation. Each
patient has 1 + Poisson(``mean_visits`` - 1) hospital stays separated by gaps of weeks to years (so 30-day
readmissions happen), each with a log-normal length of stay (median 3.5 days; about a quarter shorter than 48 h)
and a reason for admission (sepsis, pneumonia, acute kidney injury, myocardial infarction, …) that sets an acute
severity.

Per stay the store gets:

* ``diagnoses``: the reason (ICD-10) and each chronic condition billed with probability 0.85, ``time`` NULL —
  known at discharge, so a stay's own codes are visible only from later stays.
* ``medications``: drugs consistent with the conditions (ATC codes: metformin or insulin for diabetes,
  amlodipine or lisinopril for hypertension, furosemide and bisoprolol for heart failure, …), from shortly
  after admission to discharge.
* ``measurements``: seven labs (:data:`LAB_UNITS`, every ~6–18 h at the default ``labs_per_day``; lactate drawn
  more often in sicker patients, other labs absent from some stays, single values missing) and five vitals
  (:data:`VITAL_UNITS`, every 1–4 h), one fixed unit per item. Values start at a stay's admission level and
  recover toward the patient's baseline.
* ``visits.died_in_hospital``: drawn from the logistic model :data:`RISK_COEFFICIENTS` of age, the chronic
  conditions and the admission levels of lactate, creatinine and SpO2 (the levels the first 48 h of labs
  measure, with noise). About 10–20 % of adult stays end in death; the death ends the stay
  (``discharge_time`` = ``death_time``) and the patient's history. The true model separates deaths from
  survivors with an AUROC around 0.8–0.85.

Generation is vectorised NumPy, chunk by chunk of :data:`CHUNK_PATIENTS` patients, each chunk inserted into
DuckDB from Arrow tables: memory stays bounded and 10^7 events take well under a minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from meddl.errors import MedDLError
from meddl.io.ehr import EventStore

__all__ = [
    "CHRONIC_CODES",
    "CHUNK_PATIENTS",
    "LAB_UNITS",
    "RISK_COEFFICIENTS",
    "VITAL_UNITS",
    "SyntheticEHR",
    "synthetic_ehr",
]

CHUNK_PATIENTS = 2000
"""Patients generated and inserted per chunk (fixed, so a seed gives the same store whatever the size)."""

CHRONIC_CODES: dict[str, str] = {
    "E11": "E119",  # type 2 diabetes without complications
    "I10": "I10",  # essential hypertension
    "N18": "N183",  # chronic kidney disease, stage 3
    "I50": "I509",  # heart failure, unspecified
    "J44": "J449",  # COPD, unspecified
    "I48": "I4891",  # atrial fibrillation, unspecified
}
"""Chronic condition (ICD-10 category) → the code billed, stored without the dot as MIMIC does."""

LAB_UNITS: dict[str, str] = {
    "creatinine": "umol/L",
    "lactate": "mmol/L",
    "sodium": "mmol/L",
    "potassium": "mmol/L",
    "haemoglobin": "g/dL",
    "white_cells": "10^9/L",
    "glucose": "mmol/L",
}
VITAL_UNITS: dict[str, str] = {
    "heart_rate": "/min",
    "systolic_bp": "mmHg",
    "resp_rate": "/min",
    "spo2": "%",
    "temperature": "Cel",
}

RISK_COEFFICIENTS: dict[str, float] = {
    "intercept": -2.9,
    "age_per_decade_above_65": 0.45,
    "E11": 0.2,
    "I10": 0.0,
    "N18": 0.4,
    "I50": 0.6,
    "J44": 0.35,
    "I48": 0.2,
    "lactate_above_2_mmol_l": 0.9,
    "log_creatinine_ratio_to_80_umol_l": 0.8,
    "spo2_below_94_percent": 0.3,
}
"""The logistic model of in-hospital death: logit = intercept + Σ coefficient × feature, features named by key
(chronic conditions 0/1; ``lactate_above_2_mmol_l`` = max(lactate - 2, 0) at admission; the log ratio of the
admission creatinine to 80 µmol/L; ``spo2_below_94_percent`` = max(94 - SpO2, 0) at admission)."""

# Reasons for admission: ICD-10 code, probability, acute severity offset.
_REASONS = (
    ("A419", 0.12, 1.1),  # sepsis
    ("J189", 0.15, 0.5),  # pneumonia
    ("N179", 0.08, 0.5),  # acute kidney injury
    ("I214", 0.10, 0.5),  # NSTEMI
    ("K922", 0.08, 0.3),  # GI haemorrhage
    ("R55", 0.10, -0.6),  # syncope
    ("S7200", 0.09, -0.2),  # fractured neck of femur
    ("R074", 0.14, -0.8),  # chest pain
    ("J441", 0.06, 0.3),  # COPD exacerbation
    ("I500", 0.08, 0.4),  # congestive heart failure
)
_DRUGS = {  # chronic condition → (ATC code, probability given during a stay)
    "E11": (("A10BA02", 0.6), ("A10AB01", 0.4)),  # metformin, insulin
    "I10": (("C08CA01", 0.5), ("C09AA03", 0.5)),  # amlodipine, lisinopril
    "I50": (("C03CA01", 0.9), ("C07AB07", 0.6)),  # furosemide, bisoprolol
    "J44": (("R03AC02", 0.9),),  # salbutamol
    "I48": (("B01AF02", 0.8),),  # apixaban
    "N18": (("B03XA01", 0.2),),  # erythropoietin
}
_ANTIBIOTICS = {"A419": "J01CR05", "J189": "J01CA04"}  # piperacillin/tazobactam, amoxicillin
_PILOT_PATIENTS = 400
_PILOT_STREAM = 2**32 - 1
_EPOCH_START = np.datetime64("2015-01-01T00:00:00", "us")
_HOUR_US = 3_600_000_000
_DAY_US = 24 * _HOUR_US


@dataclass(frozen=True)
class SyntheticEHR:
    """A synthetic store that was written, and the truth behind it.

    Attributes:
        path: the event store file.
        n_patients: patients written.
        n_visits: visits written.
        n_events: rows of diagnoses + medications + measurements (procedures stay empty).
        n_deaths: visits that ended in death (``died_in_hospital``).
        coefficients: the true risk model of in-hospital death (:data:`RISK_COEFFICIENTS`).
        events_per_table: rows per event table.
    """

    path: Path
    n_patients: int
    n_visits: int
    n_events: int
    n_deaths: int
    coefficients: dict[str, float] = field(default_factory=lambda: dict(RISK_COEFFICIENTS))
    events_per_table: dict[str, int] = field(default_factory=dict)

    @property
    def mortality(self) -> float:
        """Share of visits ending in death."""
        return self.n_deaths / self.n_visits if self.n_visits else 0.0


def synthetic_ehr(
    path: str | Path,
    n_patients: int = 1000,
    *,
    mean_visits: float = 3.0,
    labs_per_day: float = 2.0,
    vitals_per_day: float = 10.0,
    seed: int = 0,
    target_events: int | None = None,
    overwrite: bool = True,
) -> SyntheticEHR:
    """Write a synthetic hospital into a new event store.

    Args:
        path: the store file to create.
        n_patients: patients to generate (ignored when ``target_events`` is given).
        mean_visits: mean stays per patient (at least 1; deaths end a patient's history early).
        labs_per_day: mean draws per day of each lab measured in a stay.
        vitals_per_day: mean recordings per day of the vital signs.
        seed: seeds everything; the same arguments and seed give the same store.
        target_events: pick ``n_patients`` to write roughly this many events (10^3 to 10^7 and beyond).
        overwrite: replace an existing file at ``path``.

    Returns:
        Counts and the true risk model.

    Raises:
        MedDLError: an argument out of range, or ``path`` exists and ``overwrite`` is False.
    """
    if mean_visits < 1:
        raise MedDLError(f"mean_visits must be at least 1, got {mean_visits}")
    if labs_per_day <= 0 or vitals_per_day <= 0:
        raise MedDLError(f"labs_per_day and vitals_per_day must be positive, got {labs_per_day}, {vitals_per_day}")
    if target_events is not None:
        if target_events < 1:
            raise MedDLError(f"target_events must be positive, got {target_events}")
        # A pilot cohort of its own random stream (chunk index -1 → 2**32 - 1) gives the events per patient.
        pilot = _generate_chunk(_PILOT_STREAM, _PILOT_PATIENTS, 0, 0, mean_visits, labs_per_day, vitals_per_day, seed)
        per_patient = pilot.n_events / _PILOT_PATIENTS
        n_patients = max(1, round(target_events / per_patient))
    if n_patients < 1:
        raise MedDLError(f"n_patients must be at least 1, got {n_patients}")
    path = Path(path)
    store = EventStore.create(path, overwrite=overwrite)
    try:
        con = store.connection
        totals = {"patients": 0, "visits": 0, "diagnoses": 0, "medications": 0, "measurements": 0}
        deaths = 0
        visit_offset = 0
        for chunk_index, start in enumerate(range(0, n_patients, CHUNK_PATIENTS)):
            size = min(CHUNK_PATIENTS, n_patients - start)
            chunk = _generate_chunk(
                chunk_index, size, start, visit_offset, mean_visits, labs_per_day, vitals_per_day, seed
            )
            for table, arrow in chunk.tables.items():
                con.register("meddl_chunk", arrow)
                con.execute(f"INSERT INTO {table} SELECT * FROM meddl_chunk")
                con.unregister("meddl_chunk")
                totals[table] += arrow.num_rows
            deaths += chunk.n_deaths
            visit_offset += chunk.tables["visits"].num_rows
        con.execute(
            "INSERT INTO meddl_meta VALUES ('source_format', 'synthetic'), ('synthetic_seed', ?), "
            "('synthetic_risk_coefficients', ?)",
            [str(seed), repr(RISK_COEFFICIENTS)],
        )
        con.execute("CHECKPOINT")
    finally:
        store.close()
    events = {table: totals[table] for table in ("diagnoses", "medications", "measurements")}
    return SyntheticEHR(
        path=path,
        n_patients=totals["patients"],
        n_visits=totals["visits"],
        n_events=sum(events.values()),
        n_deaths=deaths,
        events_per_table=events,
    )


@dataclass
class _Chunk:
    tables: dict[str, pa.Table]
    n_deaths: int

    @property
    def n_events(self) -> int:
        return sum(self.tables[t].num_rows for t in ("diagnoses", "medications", "measurements"))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _ids(prefix: str, start: int, n: int, width: int) -> pa.Array:
    return pa.array([f"{prefix}{i:0{width}d}" for i in range(start, start + n)], type=pa.string())


def _dictionary(indices: np.ndarray, values: pa.Array) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)), values)


def _generate_chunk(
    chunk_index: int,
    n: int,
    patient_offset: int,
    visit_offset: int,
    mean_visits: float,
    labs_per_day: float,
    vitals_per_day: float,
    seed: int,
) -> _Chunk:
    """Patients ``patient_offset … + n`` with their visits and events, as Arrow tables in store column order."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, chunk_index]))

    # -- patients and chronic conditions (at the first admission)
    child = rng.random(n) < 0.03
    age0 = np.where(child, rng.uniform(1, 18, n), 18 + 77 * rng.beta(2.2, 1.6, n))
    male = rng.random(n) < 0.5
    z = (age0 - 60) / 15
    chronic: dict[str, np.ndarray] = {}
    chronic["I10"] = rng.random(n) < _sigmoid(-0.5 + 1.2 * z)
    chronic["E11"] = rng.random(n) < _sigmoid(-1.6 + 0.6 * z + 0.6 * chronic["I10"])
    chronic["N18"] = rng.random(n) < _sigmoid(-2.6 + 0.7 * z + 1.0 * chronic["E11"] + 0.7 * chronic["I10"])
    chronic["I50"] = rng.random(n) < _sigmoid(-2.8 + 0.9 * z + 1.1 * chronic["I10"] + 0.4 * chronic["E11"])
    chronic["J44"] = rng.random(n) < _sigmoid(-2.5 + 0.6 * z)
    chronic["I48"] = rng.random(n) < _sigmoid(-2.8 + 1.0 * z + 0.5 * chronic["I50"])
    burden: np.ndarray = np.sum([flags.astype(float) for flags in chronic.values()], axis=0)

    # -- visits: counts, admission times, lengths of stay
    visits_per = 1 + rng.poisson(mean_visits - 1, n)
    visits_per = np.minimum(visits_per, 25)
    v_patient = np.repeat(np.arange(n), visits_per)  # (V,)
    n_visits = len(v_patient)
    first = np.zeros(n_visits, dtype=bool)
    first[np.cumsum(visits_per) - visits_per] = True
    los_us = (np.exp(rng.normal(np.log(3.5), 0.8, n_visits)) * _DAY_US).astype(np.int64)
    los_us = np.maximum(los_us, 2 * _HOUR_US)
    gap_us = (rng.exponential(1.0, n_visits) * 365 / (1 + burden[v_patient]) * _DAY_US).astype(np.int64)
    gap_us += _DAY_US
    start_us = (rng.uniform(0, 6 * 365, n) * _DAY_US).astype(np.int64)  # first admission, days after 2015
    step = np.where(first, 0, gap_us + np.roll(los_us, 1))  # since the previous admission
    cumulative = np.cumsum(step)
    patient_base = cumulative[first]  # cumulative value at each patient's first visit
    admit_us = start_us[v_patient] + cumulative - patient_base[v_patient]
    age = age0[v_patient] + (admit_us - start_us[v_patient]) / (365.25 * _DAY_US)

    # -- reason, severity, admission levels, death
    probabilities = np.array([r[1] for r in _REASONS])
    reason = rng.choice(len(_REASONS), n_visits, p=probabilities / probabilities.sum())
    severity = rng.normal(0, 1, n_visits) + np.array([r[2] for r in _REASONS])[reason] + 0.15 * burden[v_patient]
    has = {code: flags[v_patient].astype(float) for code, flags in chronic.items()}
    female = ~male[v_patient]
    aki = np.array([r[0] == "N179" for r in _REASONS])[reason]
    bleed = np.array([r[0] == "K922" for r in _REASONS])[reason]
    infection = np.isin(reason, [i for i, r in enumerate(_REASONS) if r[0] in _ANTIBIOTICS])
    baseline = {
        "creatinine": 80 * np.exp(0.9 * has["N18"] + 0.12 * rng.normal(size=n_visits)) * np.where(female, 0.85, 1.0),
        "lactate": np.full(n_visits, 1.0),
        "sodium": np.full(n_visits, 139.0),
        "potassium": 4.2 + 0.3 * has["N18"],
        "haemoglobin": 14.0 - 1.3 * female - 1.2 * has["N18"],
        "white_cells": np.full(n_visits, 7.5),
        "glucose": 5.5 + 2.5 * has["E11"],
        "heart_rate": 78 + 8 * has["I48"],
        "systolic_bp": 128 + 10 * has["I10"],
        "resp_rate": 15 + 2 * has["J44"],
        "spo2": 97.5 - 2.0 * has["J44"] - 0.8 * has["I50"],
        "temperature": np.full(n_visits, 36.8),
    }
    pos = np.maximum(severity, 0)
    admission = {
        "creatinine": baseline["creatinine"] * np.exp(0.22 * severity + 0.6 * aki),
        "lactate": np.exp(0.45 * severity + 0.25 * rng.normal(size=n_visits)),
        "sodium": 139 + 3.0 * rng.normal(size=n_visits) - 1.0 * pos,
        "potassium": baseline["potassium"] + 0.35 * rng.normal(size=n_visits) + 0.4 * aki,
        "haemoglobin": baseline["haemoglobin"] - 2.5 * bleed + 1.0 * rng.normal(size=n_visits),
        "white_cells": 7.5 * np.exp(0.3 * severity + 0.25 * infection + 0.2 * rng.normal(size=n_visits)),
        "glucose": baseline["glucose"] + 0.8 * pos + rng.normal(size=n_visits),
        "heart_rate": baseline["heart_rate"] + 9 * severity + 6 * rng.normal(size=n_visits),
        "systolic_bp": baseline["systolic_bp"] - 9 * pos + 10 * rng.normal(size=n_visits),
        "resp_rate": baseline["resp_rate"] + 2.5 * pos + 1.5 * rng.normal(size=n_visits),
        "spo2": np.minimum(100, baseline["spo2"] - 2.2 * pos - 0.8 * np.abs(rng.normal(size=n_visits))),
        "temperature": 36.8 + 0.7 * infection * pos + 0.3 * rng.normal(size=n_visits),
    }
    c = RISK_COEFFICIENTS
    logit = (
        c["intercept"]
        + c["age_per_decade_above_65"] * (age - 65) / 10
        + sum(c[code] * has[code] for code in CHRONIC_CODES)
        + c["lactate_above_2_mmol_l"] * np.maximum(admission["lactate"] - 2, 0)
        + c["log_creatinine_ratio_to_80_umol_l"] * np.log(admission["creatinine"] / 80)
        + c["spo2_below_94_percent"] * np.maximum(94 - admission["spo2"], 0)
    )
    died = rng.random(n_visits) < _sigmoid(logit)
    # A death ends the patient's history: keep visits up to and including the first death.
    deaths_so_far: np.ndarray = np.cumsum(died) - died
    keep: np.ndarray = deaths_so_far - deaths_so_far[first][v_patient] == 0  # no death earlier in this history
    v_patient, admit_us, los_us, age = v_patient[keep], admit_us[keep], los_us[keep], age[keep]
    reason, severity, died = reason[keep], severity[keep], died[keep]
    has = {code: flags[keep] for code, flags in has.items()}
    infection = infection[keep]
    baseline = {item: values[keep] for item, values in baseline.items()}
    admission = {item: values[keep] for item, values in admission.items()}
    n_visits = len(v_patient)
    discharge_us = admit_us + los_us

    # -- patients and visits tables
    patient_ids = _ids("P", patient_offset, n, 7)
    visit_ids = _ids("V", visit_offset, n_visits, 8)
    birth_us = start_us - (age0 * 365.25 * _DAY_US).astype(np.int64)
    death_us = np.full(n, np.iinfo(np.int64).min)
    death_us[v_patient[died]] = discharge_us[died]
    to_time = _to_timestamps
    patients = pa.table(
        {
            "patient_id": patient_ids,
            "sex": pa.array(np.where(male, "M", "F")),
            "birth_date": pa.array((_EPOCH_START + birth_us.astype("timedelta64[us]")).astype("datetime64[D]")),
            "death_time": pa.array(
                _EPOCH_START + (death_us // 60_000_000 * 60_000_000).astype("timedelta64[us]"),
                mask=death_us == np.iinfo(np.int64).min,
                type=pa.timestamp("us"),
            ),
        }
    )
    visits = pa.table(
        {
            "visit_id": visit_ids,
            "patient_id": _dictionary(v_patient, patient_ids),
            "admit_time": to_time(admit_us),
            "discharge_time": to_time(discharge_us),
            # sicker patients come in through the emergency department more often
            "visit_type": pa.array(
                np.where(rng.random(n_visits) < _sigmoid(0.8 + 1.2 * severity), "emergency", "elective")
            ),
            "died_in_hospital": pa.array(died),
        }
    )

    # -- diagnoses: the reason and billed chronic conditions, known at discharge (time NULL)
    codes = [r[0] for r in _REASONS] + list(CHRONIC_CODES.values())
    dx_visit = [np.arange(n_visits)]
    dx_code = [reason]
    for k, category in enumerate(CHRONIC_CODES):
        billed = (has[category] > 0) & (rng.random(n_visits) < 0.85)
        dx_visit.append(np.flatnonzero(billed))
        dx_code.append(np.full(billed.sum(), len(_REASONS) + k))
    diagnoses = _event_table(
        np.concatenate(dx_visit),
        v_patient,
        patient_ids,
        visit_ids,
        {"code": (np.concatenate(dx_code), pa.array(codes)), "system": "ICD10"},
        {"time": None},
    )

    # -- medications consistent with the conditions
    drug_codes: list[str] = []
    med_visit: list[np.ndarray] = []
    med_code: list[np.ndarray] = []
    for category, options in _DRUGS.items():
        for atc, probability in options:
            given = np.flatnonzero((has[category] > 0) & (rng.random(n_visits) < probability))
            med_visit.append(given)
            med_code.append(np.full(len(given), len(drug_codes)))
            drug_codes.append(atc)
    for reason_code, atc in _ANTIBIOTICS.items():
        given = np.flatnonzero(reason == next(i for i, r in enumerate(_REASONS) if r[0] == reason_code))
        med_visit.append(given)
        med_code.append(np.full(len(given), len(drug_codes)))
        drug_codes.append(atc)
    mv = np.concatenate(med_visit)
    med_start = admit_us[mv] + (rng.uniform(0, 6, len(mv)) * _HOUR_US).astype(np.int64)
    medications = _event_table(
        mv,
        v_patient,
        patient_ids,
        visit_ids,
        {"code": (np.concatenate(med_code), pa.array(drug_codes)), "system": "ATC"},
        {"start_time": to_time(np.minimum(med_start, discharge_us[mv])), "end_time": to_time(discharge_us[mv])},
    )

    # -- measurements: labs and vitals over each stay
    items = list(LAB_UNITS) + list(VITAL_UNITS)
    units = {**LAB_UNITS, **VITAL_UNITS}
    noise = {"creatinine": 0.06, "lactate": 0.12, "white_cells": 0.1}  # multiplicative (log-normal) noise
    additive = {
        "sodium": 1.5,
        "potassium": 0.2,
        "haemoglobin": 0.4,
        "glucose": 0.8,
        "heart_rate": 5.0,
        "systolic_bp": 8.0,
        "resp_rate": 1.5,
        "spo2": 1.0,
        "temperature": 0.25,
    }
    decimals = {
        "creatinine": 0,
        "lactate": 1,
        "sodium": 0,
        "potassium": 1,
        "haemoglobin": 1,
        "white_cells": 1,
        "glucose": 1,
        "heart_rate": 0,
        "systolic_bp": 0,
        "resp_rate": 0,
        "spo2": 0,
        "temperature": 1,
    }
    m_visit, m_item, m_time, m_value = [], [], [], []
    vital_interval_h = rng.uniform(0.4, 1.6, n_visits) * 24 / vitals_per_day
    for index, item in enumerate(items):
        is_lab = item in LAB_UNITS
        if is_lab:
            interval_h = np.clip(rng.uniform(0.5, 1.5, n_visits) * 24 / labs_per_day, 2, 72)
            if item == "lactate":  # drawn when the patient looks sick
                present = rng.random(n_visits) < _sigmoid(-0.3 + 1.5 * severity)
                interval_h = interval_h * np.where(severity > 1, 0.5, 1.0)
            else:
                present = rng.random(n_visits) < 0.88
            value_missing = 0.08
        else:
            interval_h = vital_interval_h * (2.0 if item == "temperature" else 1.0)
            present = np.ones(n_visits, dtype=bool)
            value_missing = 0.04
        interval_us = (interval_h * _HOUR_US).astype(np.int64)
        draws = np.where(present, los_us // interval_us + 1, 0)
        visit_of = np.repeat(np.arange(n_visits), draws)
        k = np.arange(len(visit_of)) - np.repeat(np.cumsum(draws) - draws, draws)
        jitter = (rng.uniform(0, 0.5, len(visit_of)) * interval_us[visit_of]).astype(np.int64)
        offset_us = k * interval_us[visit_of] + jitter
        keep = (offset_us <= los_us[visit_of]) & (rng.random(len(visit_of)) >= value_missing)
        visit_of, offset_us = visit_of[keep], offset_us[keep]
        hours = offset_us / _HOUR_US
        recovery = np.exp(-np.maximum(hours - 24, 0) / 72)  # the admission level holds a day, then recovers
        level = baseline[item][visit_of] + (admission[item][visit_of] - baseline[item][visit_of]) * recovery
        if item in noise:
            values = level * np.exp(noise[item] * rng.normal(size=len(level)))
        else:
            values = level + additive[item] * rng.normal(size=len(level))
        if item == "spo2":
            values = np.minimum(values, 100)
        m_visit.append(visit_of)
        m_item.append(np.full(len(visit_of), index))
        m_time.append(admit_us[visit_of] + offset_us)
        m_value.append(np.round(np.maximum(values, 0), decimals[item]))
    mv_all, mi_all, mt_all = np.concatenate(m_visit), np.concatenate(m_item), np.concatenate(m_time)
    order = np.lexsort((mi_all, mt_all, mv_all))  # by visit, then time: each patient's events sit together
    mv_all, mi_all, mt_all = mv_all[order], mi_all[order], mt_all[order]
    measurements = _event_table(
        mv_all,
        v_patient,
        patient_ids,
        visit_ids,
        {
            "item": (mi_all, pa.array(items)),
            "category": (np.where(mi_all < len(LAB_UNITS), 0, 1), pa.array(["lab", "vital"])),
            "value": pa.array(np.concatenate(m_value)[order]),
            "unit": (mi_all, pa.array([units[i] for i in items])),
        },
        {"time": to_time(mt_all)},
    )
    return _Chunk(
        tables={
            "patients": patients,
            "visits": visits,
            "diagnoses": diagnoses,
            "medications": medications,
            "measurements": measurements,
        },
        n_deaths=int(died.sum()),
    )


def _to_timestamps(offset_us: np.ndarray) -> pa.Array:
    """Offsets from 2015-01-01 as timestamps, to the minute (as charted)."""
    minutes = offset_us // 60_000_000 * 60_000_000
    return pa.array(_EPOCH_START + minutes.astype("timedelta64[us]"), type=pa.timestamp("us"))


def _event_table(
    visit_index: np.ndarray,
    visit_patient: np.ndarray,
    patient_ids: pa.Array,
    visit_ids: pa.Array,
    columns: dict[str, Any],
    times: dict[str, pa.Array | None],
) -> pa.Table:
    """An event table: patient and visit ids by dictionary, then ``columns`` and ``times`` in store order.

    ``columns`` values are an Arrow array, a constant string, or ``(indices, dictionary)``; a ``None`` time is
    an all-NULL timestamp column.
    """
    n = len(visit_index)
    data: dict[str, pa.Array] = {
        "patient_id": _dictionary(visit_patient[visit_index], patient_ids),
        "visit_id": _dictionary(visit_index, visit_ids),
    }
    for name, spec in columns.items():
        if isinstance(spec, str):
            data[name] = _dictionary(np.zeros(n, dtype=np.int32), pa.array([spec]))
        elif isinstance(spec, tuple):
            data[name] = _dictionary(spec[0], spec[1])
        else:
            data[name] = spec
    for name, values in times.items():
        data[name] = pa.nulls(n, type=pa.timestamp("us")) if values is None else values
    return pa.table(data)

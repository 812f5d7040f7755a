"""The synthetic hospital: counts, determinism, realism and the known risk model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from meddl.data.ehr_synth import CHRONIC_CODES, LAB_UNITS, RISK_COEFFICIENTS, VITAL_UNITS, synthetic_ehr
from meddl.errors import MedDLError
from meddl.io.ehr import EventStore


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return synthetic_ehr(tmp_path_factory.mktemp("synth") / "ehr.duckdb", 1500, seed=7)


def test_counts_match_the_store_and_the_store_is_sound(hospital) -> None:  # type: ignore[no-untyped-def]
    with EventStore.open(hospital.path) as store:
        counts = store.counts()
        assert store.validate() == []
        assert store.meta()["source_format"] == "synthetic"
    assert counts["patients"] == hospital.n_patients == 1500
    assert counts["visits"] == hospital.n_visits
    assert hospital.n_events == counts["diagnoses"] + counts["medications"] + counts["measurements"]
    assert hospital.events_per_table == {t: counts[t] for t in ("diagnoses", "medications", "measurements")}
    assert hospital.coefficients == RISK_COEFFICIENTS
    # 1 + Poisson(2) stays, cut short by deaths
    assert 2.0 < hospital.n_visits / hospital.n_patients < 3.0


def test_same_seed_same_store_other_seed_other_store(tmp_path: Path) -> None:
    def fingerprint(path: Path) -> tuple:
        with EventStore.open(path) as store:
            con = store.connection
            return tuple(
                con.execute(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {table}").fetchone()
                for table in ("patients", "visits", "diagnoses", "medications", "measurements")
            )

    a = synthetic_ehr(tmp_path / "a.duckdb", 300, seed=1)
    b = synthetic_ehr(tmp_path / "b.duckdb", 300, seed=1)
    c = synthetic_ehr(tmp_path / "c.duckdb", 300, seed=2)
    assert a.n_events == b.n_events and a.n_deaths == b.n_deaths
    assert fingerprint(a.path) == fingerprint(b.path)
    assert fingerprint(a.path) != fingerprint(c.path)


def test_labs_and_vitals_have_their_planted_units(hospital) -> None:  # type: ignore[no-untyped-def]
    with EventStore.open(hospital.path) as store:
        rows = store.connection.execute(
            "SELECT item, category, unit, count(*), median(value) FROM measurements GROUP BY ALL ORDER BY item"
        ).fetchall()
    planted = {**LAB_UNITS, **VITAL_UNITS}
    assert {row[0] for row in rows} == set(planted)
    assert len(rows) == len(planted)  # one unit and one category per item
    for item, category, unit, n, _median in rows:
        assert unit == planted[item]
        assert category == ("lab" if item in LAB_UNITS else "vital")
        assert n > 0
    medians = {row[0]: row[4] for row in rows}
    assert 60 < medians["creatinine"] < 130  # µmol/L, not mg/dL
    assert 135 < medians["sodium"] < 143 and 92 < medians["spo2"] <= 100 and 36 < medians["temperature"] < 38


def test_realistic_stays_missingness_and_ages(hospital) -> None:  # type: ignore[no-untyped-def]
    with EventStore.open(hospital.path) as store:
        con = store.connection
        short = con.execute(
            "SELECT avg(CAST(discharge_time - admit_time < INTERVAL 48 HOUR AS INTEGER)) FROM visits"
        ).fetchone()[0]
        ages = np.array(
            [
                r[0]
                for r in con.execute(
                    "SELECT date_diff('day', p.birth_date, min(v.admit_time)) / 365.25 FROM visits v "
                    "JOIN patients p USING (patient_id) GROUP BY p.patient_id, p.birth_date"
                ).fetchall()
            ]
        )
        lactate_share = con.execute(
            "SELECT count(DISTINCT visit_id) FILTER (item = 'lactate') / count(DISTINCT visit_id) FROM measurements"
        ).fetchone()[0]
        lab_gap, vital_gap = con.execute(
            "SELECT median(gap) FILTER (category = 'lab'), median(gap) FILTER (category = 'vital') FROM ("
            "SELECT category, date_diff('minute', lag(time) OVER (PARTITION BY visit_id, item ORDER BY time), time) "
            "/ 60 AS gap FROM measurements)"
        ).fetchone()
        readmitted = con.execute(
            "SELECT count(*) FROM (SELECT admit_time - lag(discharge_time) OVER (PARTITION BY patient_id "
            "ORDER BY admit_time) AS gap FROM visits) WHERE gap < INTERVAL 30 DAY"
        ).fetchone()[0]
        undated = con.execute("SELECT count(*) FROM diagnoses WHERE time IS NOT NULL").fetchone()[0]
    assert 0.1 < short < 0.4
    assert 0 < (ages < 18).mean() < 0.08 and ages.max() < 96 and np.median(ages) > 50
    assert 0.2 < lactate_share < 0.8  # lactate only in some stays
    assert 6 <= lab_gap <= 18 and 1 <= vital_gap <= 4
    assert readmitted > 0
    assert undated == 0  # billed codes are known at discharge


def test_comorbidities_are_correlated_and_treated(hospital) -> None:  # type: ignore[no-untyped-def]
    with EventStore.open(hospital.path) as store:
        con = store.connection
        flags = con.execute(
            "SELECT bool_or(code = 'E119'), bool_or(code = 'N183'), bool_or(code = 'I10'), bool_or(code = 'I509') "
            "FROM diagnoses GROUP BY patient_id"
        ).fetchall()
        diabetes_drugs, to_non_diabetics = con.execute(
            "SELECT count(*), count(*) FILTER (m.patient_id NOT IN (SELECT patient_id FROM diagnoses "
            "WHERE code = 'E119')) FROM medications m WHERE m.code IN ('A10BA02', 'A10AB01')"
        ).fetchone()
        codes = {row[0] for row in con.execute("SELECT DISTINCT code FROM diagnoses").fetchall()}
    diabetes, ckd, hypertension, heart_failure = (np.array(column) for column in zip(*flags, strict=True))
    assert ckd[diabetes].mean() > 1.5 * ckd[~diabetes].mean()
    assert heart_failure[hypertension].mean() > 1.5 * heart_failure[~hypertension].mean()
    # diabetes drugs go to diabetics (a one-stay patient may have the code unbilled: 15 % of stays)
    assert diabetes_drugs > 0 and to_non_diabetics < 0.1 * diabetes_drugs
    assert set(CHRONIC_CODES.values()) <= codes


def test_deaths_follow_the_risk_model(hospital) -> None:  # type: ignore[no-untyped-def]
    assert 0.10 <= hospital.mortality <= 0.20
    with EventStore.open(hospital.path) as store:
        con = store.connection
        frame = con.execute(
            "SELECT v.died_in_hospital::INTEGER AS died, date_diff('day', p.birth_date, v.admit_time) / 365.25 AS age,"
            " max(m.value) FILTER (m.item = 'lactate') AS lactate, min(m.value) FILTER (m.item = 'spo2') AS spo2, "
            " max(m.value) FILTER (m.item = 'creatinine') AS creatinine "
            "FROM visits v JOIN patients p USING (patient_id) LEFT JOIN measurements m ON m.visit_id = v.visit_id "
            "AND m.time < v.admit_time + INTERVAL 48 HOUR GROUP BY ALL"
        ).df()
        after_death = con.execute(
            "SELECT count(*) FROM visits v JOIN patients p USING (patient_id) WHERE v.admit_time > p.death_time"
        ).fetchone()[0]
        death_matches = con.execute(
            "SELECT bool_and(p.death_time = v.discharge_time) FROM visits v JOIN patients p USING (patient_id) "
            "WHERE v.died_in_hospital"
        ).fetchone()[0]
    assert after_death == 0 and death_matches
    c = RISK_COEFFICIENTS
    # the model's lab part, from what the first 48 h measured (missing lactate read as normal)
    score = (
        c["age_per_decade_above_65"] * (frame["age"] - 65) / 10
        + c["lactate_above_2_mmol_l"] * np.maximum(frame["lactate"].fillna(1.0) - 2, 0)
        + c["log_creatinine_ratio_to_80_umol_l"] * np.log(frame["creatinine"].fillna(80) / 80)
        + c["spo2_below_94_percent"] * np.maximum(94 - frame["spo2"].fillna(97), 0)
    )
    assert roc_auc_score(frame["died"], score) > 0.75


def test_target_events(tmp_path: Path) -> None:
    result = synthetic_ehr(tmp_path / "t.duckdb", target_events=100_000, seed=3)  # speed: benchmarks/ehr_scale.py
    assert 70_000 < result.n_events < 130_000
    small = synthetic_ehr(tmp_path / "s.duckdb", target_events=1_000, seed=3)
    assert 1 <= small.n_patients <= 5


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(MedDLError, match=r"mean_visits must be at least 1, got 0\.5"):
        synthetic_ehr(tmp_path / "x.duckdb", 10, mean_visits=0.5)
    with pytest.raises(MedDLError, match="n_patients must be at least 1, got 0"):
        synthetic_ehr(tmp_path / "x.duckdb", 0)
    synthetic_ehr(tmp_path / "y.duckdb", 5)
    with pytest.raises(MedDLError, match="already exists"):
        synthetic_ehr(tmp_path / "y.duckdb", 5, overwrite=False)

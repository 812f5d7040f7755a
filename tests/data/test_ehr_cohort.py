"""Cohorts, labels, leakage and bad input of meddl.data.ehr_cohort on tiny hand-made DuckDB stores."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from meddl.data.ehr_cohort import (
    CohortSpec,
    FeatureSpec,
    Vocabulary,
    build_vocabulary,
    define_cohort,
    extract_features,
)
from meddl.errors import MedDLError
from meddl.io.ehr_schema import SCHEMA_SQL

T0 = datetime(2020, 1, 1)


def _day(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2020, month, day, hour)


def _store(path: Path | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path) if path else ":memory:")
    con.execute(SCHEMA_SQL)
    return con


def _add_patient(con: duckdb.DuckDBPyConnection, pid: str, sex: str, born: str, death: datetime | None = None) -> None:
    con.execute("INSERT INTO patients VALUES (?, ?, ?, ?)", [pid, sex, born, death])


def _add_visit(
    con: duckdb.DuckDBPyConnection, vid: str, pid: str, admit: datetime, discharge: datetime, died: bool = False
) -> None:
    con.execute("INSERT INTO visits VALUES (?, ?, ?, ?, 'inpatient', ?)", [vid, pid, admit, discharge, died])


def _add_dx(con: duckdb.DuckDBPyConnection, pid: str, vid: str | None, code: str, time: datetime | None = None) -> None:
    con.execute("INSERT INTO diagnoses VALUES (?, ?, ?, 'ICD10', ?)", [pid, vid, code, time])


def _add_lab(
    con: duckdb.DuckDBPyConnection, pid: str, vid: str | None, item: str, value: float | None, time: datetime
) -> None:
    con.execute("INSERT INTO measurements VALUES (?, ?, ?, 'lab', ?, NULL, ?)", [pid, vid, item, value, time])


@pytest.fixture
def labelled_store() -> duckdb.DuckDBPyConnection:
    """Eight patients with known answers for every outcome (see each comment)."""
    con = _store()
    # P1: died in hospital on day 5 → mortality 1; excluded from readmission (in-hospital death).
    _add_patient(con, "P1", "F", "1960-01-01", _day(1, 6))
    _add_visit(con, "P1A", "P1", _day(1, 1), _day(1, 6), died=True)
    # P2: 9-day stay (long stay 1); readmitted 26 days after DISCHARGE (35 days after admission) → readmission 1.
    _add_patient(con, "P2", "M", "1970-01-01")
    _add_visit(con, "P2A", "P2", _day(1, 1), _day(1, 10))
    _add_visit(con, "P2B", "P2", _day(2, 5), _day(2, 7))
    _add_dx(con, "P2", "P2B", "I50.9")
    _add_dx(con, "P2", "P2B", "E11.9")
    # P3: readmitted 31 days after discharge → readmission 0 (the 30-day horizon counts from discharge).
    _add_patient(con, "P3", "F", "1980-01-01")
    _add_visit(con, "P3A", "P3", _day(3, 1), _day(3, 3))
    _add_visit(con, "P3B", "P3", _day(4, 3), _day(4, 5))
    _add_dx(con, "P3", "P3B", "I50.1")
    # P4: readmitted exactly 30 days after discharge → readmission 1; its second stay lasts 24 h.
    _add_patient(con, "P4", "F", "1950-01-01")
    _add_visit(con, "P4A", "P4", _day(7, 1), _day(7, 5))
    _add_visit(con, "P4B", "P4", _day(8, 4), _day(8, 5))
    _add_dx(con, "P4", "P4B", "J18.9")
    # P5: 16 years old → excluded by age.
    _add_patient(con, "P5", "M", "2004-01-01")
    _add_visit(con, "P5A", "P5", _day(5, 1), _day(5, 10))
    # P6: a 24-hour stay → excluded from mortality / long stay (shorter than the 48 h window), kept for readmission.
    _add_patient(con, "P6", "M", "1990-01-01")
    _add_visit(con, "P6A", "P6", _day(6, 1), _day(6, 2))
    # P7: died at 40 h (recorded discharge later) → excluded at "alive at 48 h".
    _add_patient(con, "P7", "F", "1940-01-01", _day(5, 2, 16))
    _add_visit(con, "P7A", "P7", _day(5, 1), _day(5, 4), died=True)
    # P8: discharged on the store's last day → readmission status unknown (no follow-up).
    _add_patient(con, "P8", "M", "1945-01-01")
    _add_visit(con, "P8A", "P8", _day(12, 20), _day(12, 25))
    return con


def _labels(cohort: object) -> dict[str, object]:
    return {str(p): lab for p, lab in zip(cohort.patient_ids, cohort.labels.tolist(), strict=True)}  # type: ignore[attr-defined]


def test_mortality_flow_and_labels(labelled_store: duckdb.DuckDBPyConnection) -> None:
    cohort = define_cohort(labelled_store, CohortSpec(outcome="mortality"))
    assert cohort.flow == [
        ("stays in the store", 11),
        ("discharge time recorded", 11),
        ("age known and ≥ 18 at admission", 10),
        ("stay ≥ 48 h", 8),
        ("alive at 48 h", 7),
        ("first eligible stay per patient", 5),
    ]
    assert _labels(cohort) == {"P1": 1.0, "P2": 0.0, "P3": 0.0, "P4": 0.0, "P8": 0.0}
    assert list(cohort.visit_ids) == ["P1A", "P2A", "P3A", "P4A", "P8A"]
    assert cohort.window_ends[1] == np.datetime64("2020-01-03T00:00:00", "us")
    assert labelled_store.execute("SELECT count(*) FROM meddl_cohort").fetchone() == (5,)


def test_long_stay_labels(labelled_store: duckdb.DuckDBPyConnection) -> None:
    cohort = define_cohort(labelled_store, CohortSpec(outcome="long_stay", horizon_days=7))
    assert _labels(cohort) == {"P1": 0.0, "P2": 1.0, "P3": 0.0, "P4": 0.0, "P8": 0.0}
    shorter = define_cohort(labelled_store, CohortSpec(outcome="long_stay", horizon_days=4.5))
    assert _labels(shorter) == {"P1": 1.0, "P2": 1.0, "P3": 0.0, "P4": 0.0, "P8": 1.0}  # 5, 9, 2, 4, 5 days


def test_readmission_counts_from_discharge(labelled_store: duckdb.DuckDBPyConnection) -> None:
    cohort = define_cohort(labelled_store, CohortSpec(outcome="readmission", horizon_days=30))
    assert cohort.spec.observation == "stay"
    assert [step for step, _ in cohort.flow] == [
        "stays in the store",
        "discharge time recorded",
        "age known and ≥ 18 at admission",
        "discharged alive",
        "readmission status known for 30 days",
        "first eligible stay per patient",
    ]
    assert [count for _, count in cohort.flow] == [11, 11, 10, 8, 7, 4]
    # P2: 26 days after discharge (35 after admission) → 1; P3: 31 days → 0; P4: exactly 30 days → 1.
    assert _labels(cohort) == {"P2": 1.0, "P3": 0.0, "P4": 1.0, "P6": 0.0}
    assert cohort.window_ends[0] == np.datetime64("2020-01-10T00:00:00", "us")  # P2's discharge


def test_next_visit_diagnoses_multilabel(labelled_store: duckdb.DuckDBPyConnection) -> None:
    cohort = define_cohort(labelled_store, CohortSpec(outcome="next_visit_diagnoses", label_codes_top=20))
    assert cohort.flow[-2:] == [("has a later visit", 3), ("first eligible stay per patient", 3)]
    assert cohort.label_names == ["I50", "E11", "J18"]
    assert cohort.labels.dtype == np.float32
    assert cohort.labels.tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 1]]  # P2, P3, P4
    top1 = define_cohort(labelled_store, CohortSpec(outcome="next_visit_diagnoses", label_codes_top=1))
    assert top1.label_names == ["I50"] and top1.labels.shape == (3, 1)


def test_all_stays_when_not_first_only(labelled_store: duckdb.DuckDBPyConnection) -> None:
    cohort = define_cohort(labelled_store, CohortSpec(outcome="mortality", first_stay_only=False))
    assert cohort.n == 7 and cohort.flow[-1] == ("alive at 48 h", 7)
    assert {"P2B", "P3B"} <= set(cohort.visit_ids)
    drawn = define_cohort(labelled_store, CohortSpec(outcome="mortality", stay_selection="random", seed=3))
    again = define_cohort(labelled_store, CohortSpec(outcome="mortality", stay_selection="random", seed=3))
    assert drawn.flow[-1] == ("one random eligible stay per patient (seed 3)", 5)
    assert list(drawn.visit_ids) == list(again.visit_ids) and len(set(drawn.patient_ids)) == 5
    seeds = {
        tuple(define_cohort(labelled_store, CohortSpec(stay_selection="random", seed=s)).visit_ids) for s in range(8)
    }
    assert len(seeds) > 1  # P2 and P3 have two eligible stays each: different seeds pick differently
    typed = define_cohort(labelled_store, CohortSpec(outcome="mortality", visit_types=["inpatient"]))
    assert typed.flow[0] == ("['inpatient'] stays in the store", 11) and typed.n == 5
    with pytest.raises(MedDLError, match=r"\['icu'\] stays in the store\s+0"):
        define_cohort(labelled_store, CohortSpec(outcome="mortality", visit_types=["icu"]))


# ----------------------------------------------------------------------------------------------------------------
# Features and leakage


@pytest.fixture
def lab_store() -> duckdb.DuckDBPyConnection:
    """One patient (M, born 1970) with a previous visit and a 4-day index stay with labs and codes."""
    con = _store()
    _add_patient(con, "A", "M", "1970-01-01")
    _add_visit(con, "A0", "A", datetime(2019, 6, 1), datetime(2019, 6, 4))
    _add_dx(con, "A", "A0", "E11.9")  # billed at the previous discharge: known before the index stay
    _add_visit(con, "A1", "A", T0, T0 + timedelta(days=4))
    _add_dx(con, "A", "A1", "I10")  # the index stay's own diagnosis, billed at its discharge
    con.execute("INSERT INTO procedures VALUES ('A', 'A1', 'P-IN', 'CPT', ?)", [T0 + timedelta(hours=3)])
    con.execute("INSERT INTO procedures VALUES ('A', 'A1', 'P-LATE', 'CPT', ?)", [T0 + timedelta(hours=60)])
    _add_lab(con, "A", "A1", "hr", 80.0, T0 + timedelta(hours=1))
    _add_lab(con, "A", "A1", "hr", 90.0, T0 + timedelta(hours=5))
    _add_lab(con, "A", "A1", "hr", None, T0 + timedelta(hours=6))  # no value: dropped and counted
    _add_lab(con, "A", "A1", "lactate", 2.0, T0 + timedelta(hours=2))
    _add_lab(con, "A", "A1", "lactate", 5.0, T0 - timedelta(hours=1))  # before admission: outside the window
    return con


def _grid(con: duckdb.DuckDBPyConnection, **spec: object) -> tuple[object, object]:
    cohort = define_cohort(con, CohortSpec(outcome="mortality", first_stay_only=False))
    fspec = FeatureSpec(mode="grid", bin_hours=4, **spec)  # type: ignore[arg-type]
    vocabulary = build_vocabulary(con, cohort, fspec, np.ones(cohort.n, dtype=bool))
    return cohort, extract_features(con, cohort, fspec, vocabulary)


def test_grid_values_masks_and_time_since(lab_store: duckdb.DuckDBPyConnection) -> None:
    cohort, features = _grid(lab_store)
    row = list(cohort.visit_ids).index("A1")  # type: ignore[attr-defined]
    x, names = features.x[row], features.feature_names  # type: ignore[attr-defined]
    assert features.x.shape[1] == 12 and features.x.dtype == np.float32  # type: ignore[attr-defined]
    col = {name: i for i, name in enumerate(names)}
    assert names[0] == "step_mask" and x[:, 0].tolist() == [1.0] * 12
    assert x[:, col["lab:hr:value"]].tolist() == [80.0] + [90.0] * 11  # last value in bin, forward-filled
    assert x[:, col["lab:hr:observed"]].tolist() == [1.0, 1.0] + [0.0] * 10
    np.testing.assert_allclose(x[:3, col["lab:hr:hours_since"]], [3 / 48, 3 / 48, 7 / 48], rtol=1e-6)
    assert x[0, col["lab:lactate:value"]] == pytest.approx(2.0)  # the pre-admission 5.0 is not in the window
    np.testing.assert_allclose(x[:, col["age/100"]], 0.5, atol=1e-3)
    assert x[0, col["sex_male"]] == 1.0 and x[0, col["sex_female"]] == 0.0
    assert features.dropped["measurement_values_missing"] == 1  # type: ignore[attr-defined]
    assert features.value_channels == features.groups["lab_value"]  # type: ignore[attr-defined]
    assert features.lengths.tolist() == [12, 12]  # type: ignore[attr-defined]


def test_grid_codes_known_before_window_end_only(lab_store: duckdb.DuckDBPyConnection) -> None:
    cohort = define_cohort(lab_store, CohortSpec(outcome="mortality", first_stay_only=False))
    spec = FeatureSpec(mode="grid")
    vocabulary = Vocabulary(labs=["hr"], codes=["dx:ICD10:E11.9", "dx:ICD10:I10", "px:CPT:P-IN", "px:CPT:P-LATE"])
    features = extract_features(lab_store, cohort, spec, vocabulary)
    row = list(cohort.visit_ids).index("A1")
    col = {name: i for i, name in enumerate(features.feature_names)}
    x = features.x[row]
    assert x[:, col["code:dx:ICD10:E11.9"]].min() == 1.0  # previous visit's diagnosis, on every step
    assert x[:, col["code:px:CPT:P-IN"]].min() == 1.0  # timed inside the window
    assert x[:, col["code:dx:ICD10:I10"]].max() == 0.0  # the index stay's own discharge diagnosis: leakage
    assert x[:, col["code:px:CPT:P-LATE"]].max() == 0.0  # after the window
    assert x[:, col["code:other"]].max() == 0.0
    # The vocabulary built on the training rows never even sees the index stay's discharge code.
    built = build_vocabulary(lab_store, cohort, FeatureSpec(), np.ones(cohort.n, dtype=bool))
    assert "dx:ICD10:I10" not in built.codes and "dx:ICD10:E11.9" in built.codes
    assert built.labs == ["hr", "lactate"]


def test_events_at_or_after_window_end_change_nothing(lab_store: duckdb.DuckDBPyConnection) -> None:
    _, before = _grid(lab_store)
    end = T0 + timedelta(hours=48)
    _add_lab(lab_store, "A", "A1", "lactate", 99.0, end)  # exactly at window_end
    _add_lab(lab_store, "A", "A1", "hr", 999.0, end + timedelta(hours=2))
    _add_lab(lab_store, "A", None, "hr", 555.0, end + timedelta(days=30))
    _add_dx(lab_store, "A", "A1", "Z99", end)  # a coded diagnosis at window_end
    _, after = _grid(lab_store)
    np.testing.assert_array_equal(before.x, after.x)  # type: ignore[attr-defined]
    # Sanity: the same plant one microsecond before the window end does change the features.
    _add_lab(lab_store, "A", "A1", "lactate", 77.0, end - timedelta(microseconds=1))
    _, inside = _grid(lab_store)
    assert not np.array_equal(before.x, inside.x)  # type: ignore[attr-defined]


def test_stay_window_grid_is_left_aligned_before_discharge(lab_store: duckdb.DuckDBPyConnection) -> None:
    cohort = define_cohort(lab_store, CohortSpec(outcome="readmission", first_stay_only=False, min_age=0))
    spec = FeatureSpec(mode="grid", bin_hours=4, max_steps=6, labs=["hr"], include_codes=False)
    vocabulary = build_vocabulary(lab_store, cohort, spec, np.ones(cohort.n, dtype=bool))
    features = extract_features(lab_store, cohort, spec, vocabulary)
    row = list(cohort.visit_ids).index("A0")  # 72-hour stay, no labs
    assert features.lengths[row] == 6 and features.x.shape[1] == 6


def test_visits_mode_excludes_future_and_index_visits() -> None:
    con = _store()
    _add_patient(con, "B", "F", "1960-01-01")
    _add_visit(con, "B1", "B", datetime(2018, 1, 1), datetime(2018, 1, 5))
    _add_visit(con, "B2", "B", datetime(2019, 1, 1), datetime(2019, 1, 3))
    _add_visit(con, "B3", "B", T0, T0 + timedelta(days=5))  # index
    _add_visit(con, "B4", "B", datetime(2021, 1, 1), datetime(2021, 1, 4))  # future
    _add_dx(con, "B", "B1", "A01")
    _add_dx(con, "B", "B2", "B02")
    _add_dx(con, "B", "B3", "C03")
    _add_dx(con, "B", "B4", "Z99")
    cohort = define_cohort(con, CohortSpec(outcome="mortality", first_stay_only=False)).subset(np.array([2]))
    assert list(cohort.visit_ids) == ["B3"]
    spec = FeatureSpec(mode="visits", max_visits=5)
    vocabulary = Vocabulary(labs=[], codes=["dx:ICD10:A01", "dx:ICD10:B02", "dx:ICD10:C03"], mode="visits")
    features = extract_features(con, cohort, spec, vocabulary)
    col = {name: i for i, name in enumerate(features.feature_names)}
    x = features.x[0]
    assert features.lengths.tolist() == [2] and x[:, 0].tolist() == [1, 1, 0, 0, 0]
    assert x[0, col["code:dx:ICD10:A01"]] == 1 and x[1, col["code:dx:ICD10:B02"]] == 1  # time order
    assert x[:, col["code:dx:ICD10:C03"]].max() == 0 and x[:, col["code:other"]].max() == 0  # index + future
    expected_years = (np.datetime64("2020-01-03") - np.datetime64("2019-01-03")) / np.timedelta64(1, "D") / 365.25
    assert x[1, col["years_before_window_end"]] == pytest.approx(expected_years, rel=1e-5)
    assert x[2:].sum() == 0.0  # padding is zero
    one_visit = extract_features(con, cohort, FeatureSpec(mode="visits", max_visits=1), vocabulary)
    assert one_visit.x[0, 0, col["code:dx:ICD10:B02"]] == 1 and one_visit.lengths.tolist() == [1]
    # Predicting at discharge with include_discharge_codes: the index stay is the last step, the future still absent.
    at_discharge = define_cohort(con, CohortSpec(outcome="readmission", first_stay_only=False))
    assert list(at_discharge.visit_ids) == ["B1", "B2", "B3"]  # B4's 30-day follow-up is beyond the store's end
    spec = FeatureSpec(mode="visits", max_visits=5, include_discharge_codes=True)
    with_index = extract_features(con, at_discharge.subset(np.array([2])), spec, vocabulary)
    assert with_index.lengths.tolist() == [3] and with_index.x[0, 2, col["code:dx:ICD10:C03"]] == 1
    assert (
        with_index.x[0, 2, col["years_before_window_end"]] == 0.0 and with_index.x[0, :, col["code:other"]].max() == 0
    )
    strict = extract_features(
        con, at_discharge.subset(np.array([2])), FeatureSpec(mode="visits", max_visits=5), vocabulary
    )
    assert strict.lengths.tolist() == [2] and strict.x[0, :, col["code:dx:ICD10:C03"]].max() == 0
    with pytest.raises(MedDLError, match="include_discharge_codes"):
        extract_features(con, cohort, spec, vocabulary)


def test_memmap_chunks_and_single_stay_match_in_memory(
    tmp_path: Path, labelled_store: duckdb.DuckDBPyConnection
) -> None:
    _add_lab(labelled_store, "P2", "P2A", "hr", 70.0, _day(1, 1, 3))
    _add_lab(labelled_store, "P3", "P3A", "hr", 60.0, _day(3, 1, 9))
    _add_lab(labelled_store, "P3", "P3A", "sbp", 120.0, _day(3, 2, 9))
    cohort = define_cohort(labelled_store, CohortSpec(outcome="mortality"))
    spec = FeatureSpec(mode="grid")
    vocabulary = build_vocabulary(labelled_store, cohort, spec, np.arange(cohort.n) % 2 == 1)
    assert vocabulary.labs == ["hr"]  # P3 (row 2) is not a training row, so "sbp" is never chosen
    memory = extract_features(labelled_store, cohort, spec, vocabulary)
    on_disk = extract_features(labelled_store, cohort, spec, vocabulary, out=tmp_path, chunk_patients=2)
    assert isinstance(on_disk.x, np.memmap) and on_disk.path == tmp_path / "features.npy"
    np.testing.assert_array_equal(memory.x, on_disk.x)
    np.testing.assert_array_equal(np.load(tmp_path / "features.npy"), memory.x)
    single = extract_features(labelled_store, cohort, spec, vocabulary, visit_ids=["P3A"])
    np.testing.assert_array_equal(single.x[0], memory.x[2])
    # A new stay outside the cohort (P5 is 16) featurised from the spec alone, as `meddl predict` does.
    new = extract_features(
        labelled_store, cohort.spec, spec, Vocabulary.from_state(vocabulary.to_state()), visit_ids=["P5A"]
    )
    assert new.x.shape == (1, 12, memory.x.shape[2]) and list(new.visit_ids) == ["P5A"]
    # A 24-hour stay (excluded from the cohort) has 6 real 4-hour bins; the rest is zero padding.
    short = extract_features(labelled_store, cohort.spec, spec, vocabulary, visit_ids=["P6A"])
    assert short.lengths.tolist() == [6] and short.x[0, :6, 0].tolist() == [1.0] * 6 and short.x[0, 6:].sum() == 0
    with pytest.raises(MedDLError, match=r"\['P9'\] not found"):
        extract_features(labelled_store, cohort.spec, spec, vocabulary, visit_ids=["P9"])
    with pytest.raises(MedDLError, match="not index stays of the cohort"):
        extract_features(labelled_store, cohort, spec, vocabulary, visit_ids=["P6A"])


# ----------------------------------------------------------------------------------------------------------------
# Bad input


def test_missing_table_and_columns_are_named() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE patients (patient_id VARCHAR, sex VARCHAR, birth_date DATE, death_time TIMESTAMP)")
    with pytest.raises(MedDLError, match="table 'visits' is missing"):
        define_cohort(con, CohortSpec())
    con.execute("CREATE TABLE visits (visit_id VARCHAR, patient_id VARCHAR, admit_time TIMESTAMP)")
    with pytest.raises(
        MedDLError, match=r"'visits' lacks column\(s\) \['discharge_time', 'visit_type', 'died_in_hospital'\]"
    ):
        define_cohort(con, CohortSpec())


def test_missing_store_file(tmp_path: Path) -> None:
    with pytest.raises(MedDLError, match="no such file"):
        define_cohort(tmp_path / "absent.duckdb", CohortSpec())


def test_store_path_is_opened_read_only(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    con = _store(path)
    _add_patient(con, "Q", "F", "1970-01-01")
    _add_visit(con, "Q1", "Q", T0, T0 + timedelta(days=3))
    con.close()
    cohort = define_cohort(path, CohortSpec())
    assert cohort.n == 1 and list(cohort.patient_ids) == ["Q"]


def test_empty_cohort_shows_the_flow(labelled_store: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(MedDLError, match=r"no index stay is left[\s\S]*age known and ≥ 200 at admission\s+0"):
        define_cohort(labelled_store, CohortSpec(min_age=200))


def test_unknown_lab_names_list_close_matches(lab_store: duckdb.DuckDBPyConnection) -> None:
    cohort = define_cohort(lab_store, CohortSpec(first_stay_only=False))
    with pytest.raises(MedDLError, match=r"'lactat': close matches \['lactate'\]"):
        build_vocabulary(lab_store, cohort, FeatureSpec(labs=["hr", "lactat"]), np.ones(cohort.n, dtype=bool))


def test_invalid_specs_name_the_field() -> None:
    with pytest.raises(MedDLError, match=r"cohort\.outcome"):
        CohortSpec(outcome="death")
    with pytest.raises(MedDLError, match=r"cohort\.observation"):
        CohortSpec(outcome="mortality", observation="stay")
    with pytest.raises(MedDLError, match=r"features\.mode"):
        FeatureSpec(mode="image")  # type: ignore[arg-type]
    assert CohortSpec(outcome="readmission").min_stay_hours == 0.0
    assert CohortSpec.from_state(CohortSpec(outcome="long_stay").to_state()).horizon_days == 7.0

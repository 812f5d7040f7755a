"""The EHR event store and its MIMIC-IV, OMOP CDM and FHIR R4 importers, on small files written in the real layout."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from meddl.errors import MedDLError
from meddl.io.ehr import EventStore, import_fhir, import_mimic, import_omop
from meddl.io.ehr_schema import TABLE_COLUMNS

# -- writers of small source folders ---------------------------------------------------------------------


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
    return path


def mimic_tables() -> dict[str, list[dict[str, Any]]]:
    return {
        "patients": [
            {"subject_id": 10001, "gender": "F", "anchor_age": 60, "anchor_year": 2150, "dod": None},
            {"subject_id": 10002, "gender": "M", "anchor_age": 75, "anchor_year": 2160, "dod": "2161-03-02"},
        ],
        "admissions": [
            {
                "subject_id": 10001,
                "hadm_id": 201,
                "admittime": "2150-01-01 08:00:00",
                "dischtime": "2150-01-05 12:00:00",
                "deathtime": None,
                "admission_type": "EW EMER.",
                "hospital_expire_flag": 0,
            },
            {
                "subject_id": 10002,
                "hadm_id": 202,
                "admittime": "2161-02-20 10:00:00",
                "dischtime": "2161-03-01 23:00:00",
                "deathtime": "2161-03-01 23:00:00",
                "admission_type": "URGENT",
                "hospital_expire_flag": 1,
            },
        ],
        "diagnoses_icd": [
            {"subject_id": 10001, "hadm_id": 201, "seq_num": 1, "icd_code": "E119", "icd_version": 10},
            {"subject_id": 10001, "hadm_id": 201, "seq_num": 2, "icd_code": "4019", "icd_version": 9},
            {"subject_id": 10002, "hadm_id": 202, "seq_num": 1, "icd_code": "I50.9", "icd_version": 10},
        ],
        "labevents": [
            {
                "labevent_id": 1,
                "subject_id": 10001,
                "hadm_id": 201,
                "itemid": 50912,
                "charttime": "2150-01-01 09:00:00",
                "value": "1.1",
                "valuenum": 1.1,
                "valueuom": "mg/dL",
            },
            {
                "labevent_id": 2,
                "subject_id": 10001,
                "hadm_id": 201,
                "itemid": 50931,
                "charttime": "2150-01-01 09:00:00",
                "value": "180",
                "valuenum": 180,
                "valueuom": "mg/dL",
            },
            {
                "labevent_id": 3,
                "subject_id": 10002,
                "hadm_id": 202,
                "itemid": 50912,
                "charttime": "2161-02-21 06:00:00",
                "value": "2.0",
                "valuenum": 2.0,
                "valueuom": "mg/dL",
            },
            {
                "labevent_id": 4,
                "subject_id": 10002,
                "hadm_id": None,
                "itemid": 51221,
                "charttime": "2161-01-01 06:00:00",
                "value": "35",
                "valuenum": 35,
                "valueuom": "%",
            },
        ],
        "d_labitems": [
            {"itemid": 50912, "label": "Creatinine", "fluid": "Blood", "category": "Chemistry"},
            {"itemid": 50931, "label": "Glucose", "fluid": "Blood", "category": "Chemistry"},
            {"itemid": 51981, "label": "Glucose", "fluid": "Urine", "category": "Chemistry"},
            {"itemid": 51221, "label": "Hematocrit", "fluid": "Blood", "category": "Hematology"},
        ],
    }


def write_mimic(folder: Path, tables: dict[str, list[dict[str, Any]]] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (tables or mimic_tables()).items():
        write_csv(folder / f"{name}.csv", rows)
    return folder


def omop_tables() -> dict[str, list[dict[str, Any]]]:
    return {
        "person": [
            {
                "person_id": 1,
                "gender_concept_id": 8532,
                "year_of_birth": 1950,
                "month_of_birth": 4,
                "day_of_birth": 2,
                "birth_datetime": None,
            },
            {
                "person_id": 2,
                "gender_concept_id": 8507,
                "year_of_birth": 1940,
                "month_of_birth": None,
                "day_of_birth": None,
                "birth_datetime": "1940-06-15 00:00:00",
            },
        ],
        "visit_occurrence": [
            {
                "visit_occurrence_id": 11,
                "person_id": 1,
                "visit_concept_id": 9201,
                "visit_start_datetime": "2020-01-01 08:00:00",
                "visit_start_date": "2020-01-01",
                "visit_end_datetime": "2020-01-04 10:00:00",
                "visit_end_date": "2020-01-04",
            },
            {
                "visit_occurrence_id": 12,
                "person_id": 2,
                "visit_concept_id": 9203,
                "visit_start_datetime": None,
                "visit_start_date": "2021-05-01",
                "visit_end_datetime": None,
                "visit_end_date": "2021-05-03",
            },
        ],
        "condition_occurrence": [
            {
                "person_id": 1,
                "condition_concept_id": 201826,
                "condition_start_datetime": None,
                "condition_start_date": "2020-01-01",
                "visit_occurrence_id": 11,
                "condition_source_value": "E11.9",
            },
            {
                "person_id": 2,
                "condition_concept_id": 0,
                "condition_start_datetime": None,
                "condition_start_date": "2019-03-01",
                "visit_occurrence_id": None,
                "condition_source_value": "XYZ",
            },
        ],
        "measurement": [
            {
                "person_id": 1,
                "measurement_concept_id": 3016723,
                "measurement_datetime": "2020-01-01 09:00:00",
                "measurement_date": "2020-01-01",
                "value_as_number": 1.2,
                "unit_source_value": "mg/dL",
                "visit_occurrence_id": 11,
                "measurement_source_value": "creatinine",
            },
            {
                "person_id": 2,
                "measurement_concept_id": 3027018,
                "measurement_datetime": None,
                "measurement_date": "2021-05-02",
                "value_as_number": 88,
                "unit_source_value": "/min",
                "visit_occurrence_id": 12,
                "measurement_source_value": "heart rate",
            },
        ],
        "drug_exposure": [
            {
                "person_id": 1,
                "drug_concept_id": 1503297,
                "drug_exposure_start_datetime": "2020-01-01 12:00:00",
                "drug_exposure_end_datetime": "2020-01-04 10:00:00",
                "visit_occurrence_id": 11,
            },
        ],
        "death": [{"person_id": 2, "death_datetime": None, "death_date": "2021-05-03"}],
    }


def write_omop(folder: Path, tables: dict[str, list[dict[str, Any]]] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (tables or omop_tables()).items():
        write_csv(folder / f"{name}.csv", rows)
    return folder


def fhir_resources() -> dict[str, list[dict[str, Any]]]:
    icd10 = "http://hl7.org/fhir/sid/icd-10-cm"
    loinc = "http://loinc.org"
    return {
        "Patient": [
            {"resourceType": "Patient", "id": "pat-1", "gender": "female", "birthDate": "1950-02-03"},
            {
                "resourceType": "Patient",
                "id": "pat-2",
                "gender": "male",
                "birthDate": "1945-07-08",
                "deceasedDateTime": "2021-03-04T10:00:00+01:00",
            },
        ],
        "Encounter": [
            {
                "resourceType": "Encounter",
                "id": "enc-1",
                "class": {"code": "IMP"},
                "subject": {"reference": "Patient/pat-1"},
                "period": {"start": "2020-01-01T08:00:00Z", "end": "2020-01-03T08:00:00Z"},
            },
            {
                "resourceType": "Encounter",
                "id": "enc-2",
                "class": {"code": "EMER"},
                "subject": {"reference": "urn:uuid:pat-2"},
                "period": {"start": "2021-03-01T08:00:00Z", "end": "2021-03-04T09:00:00Z"},
                "hospitalization": {"dischargeDisposition": {"coding": [{"code": "exp"}]}},
            },
        ],
        "Condition": [
            {
                "resourceType": "Condition",
                "subject": {"reference": "Patient/pat-1"},
                "encounter": {"reference": "Encounter/enc-1"},
                "code": {"coding": [{"system": icd10, "code": "E11.9"}]},
            },
            {
                "resourceType": "Condition",
                "subject": {"reference": "Patient/pat-2"},
                "code": {"coding": [{"system": "http://example.org/local", "code": "L1"}]},
                "onsetDateTime": "2015-06-01",
            },
        ],
        "Observation": [
            {
                "resourceType": "Observation",
                "subject": {"reference": "Patient/pat-1"},
                "encounter": {"reference": "Encounter/enc-1"},
                "category": [{"coding": [{"code": "laboratory"}]}],
                "code": {"coding": [{"system": loinc, "code": "2160-0", "display": "Creatinine"}]},
                "valueQuantity": {"value": 1.0, "unit": "mg/dL"},
                "effectiveDateTime": "2020-01-01T10:00:00Z",
            },
            {
                "resourceType": "Observation",
                "subject": {"reference": "Patient/pat-2"},
                "encounter": {"reference": "Encounter/enc-2"},
                "category": [{"coding": [{"code": "vital-signs"}]}],
                "code": {"coding": [{"system": loinc, "code": "85354-9", "display": "Blood pressure panel"}]},
                "component": [
                    {
                        "code": {"coding": [{"code": "8480-6", "display": "Systolic blood pressure"}]},
                        "valueQuantity": {"value": 120, "unit": "mm[Hg]"},
                    },
                    {
                        "code": {"coding": [{"code": "8462-4", "display": "Diastolic blood pressure"}]},
                        "valueQuantity": {"value": 80, "unit": "mm[Hg]"},
                    },
                ],
                "effectiveDateTime": "2021-03-01T09:00:00Z",
            },
        ],
    }


def write_fhir(folder: Path, resources: dict[str, list[dict[str, Any]]] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (resources or fhir_resources()).items():
        (folder / f"{name}.ndjson").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


# -- the store -------------------------------------------------------------------------------------------


def test_create_open_counts_and_close(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    with EventStore.create(path) as store:
        assert store.counts() == dict.fromkeys(TABLE_COLUMNS, 0)
        store.connection.execute("INSERT INTO patients VALUES ('p1', 'F', DATE '1950-01-01', NULL)")
    with EventStore.open(path) as store:
        assert store.counts()["patients"] == 1
        assert store.meta()["schema_version"] == "1"
        assert store.validate() == []
        with pytest.raises(duckdb.Error):  # read-only by default
            store.connection.execute("DELETE FROM patients")
    with pytest.raises(MedDLError, match="is closed"):
        _ = store.connection
    with pytest.raises(MedDLError, match="already exists"):
        EventStore.create(path)
    with EventStore.create(path, overwrite=True) as store:
        assert store.counts()["patients"] == 0


def test_open_rejects_what_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(MedDLError, match="does not exist"):
        EventStore.open(tmp_path / "missing.duckdb")
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE patients (patient_id VARCHAR)")
    con.close()
    with pytest.raises(MedDLError, match=r"missing table\(s\) visits, diagnoses.*found: patients"):
        EventStore.open(other)
    old = tmp_path / "old.duckdb"
    EventStore.create(old).close()
    con = duckdb.connect(str(old))
    con.execute("UPDATE meddl_meta SET value = '0' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(MedDLError, match="schema version '0'"):
        EventStore.open(old)
    text = tmp_path / "notes.duckdb"
    text.write_text("not a database")
    with pytest.raises(MedDLError, match="not a readable DuckDB"):
        EventStore.open(text)


def test_validate_names_each_problem(tmp_path: Path) -> None:
    with EventStore.create(tmp_path / "s.duckdb") as store:
        con = store.connection
        con.execute("INSERT INTO patients VALUES ('p1', 'F', DATE '1950-01-01', NULL)")
        con.execute(
            "INSERT INTO visits VALUES ('v1', 'p1', TIMESTAMP '2020-01-05', TIMESTAMP '2020-01-01', 'x', TRUE), "
            "('v2', 'ghost', TIMESTAMP '2020-01-05', TIMESTAMP '2020-01-06', 'x', FALSE)"
        )
        con.execute(
            "INSERT INTO measurements VALUES ('p1', 'v9', 'glucose', 'lab', 5, 'mmol/L', TIMESTAMP '2020-01-05'), "
            "('p1', NULL, 'glucose', 'lab', 90, 'mg/dL', TIMESTAMP '2020-01-05')"
        )
        problems = store.validate()
    text = "\n".join(problems)
    assert "1 visit(s) discharged before admission, e.g. visit v1" in text
    assert "visit(s) whose patient is not in patients, e.g. visit v2 of patient ghost" in text
    assert "measurements row(s) whose visit is not among their patient's visits, e.g. visit v9" in text
    assert "measurement item(s) with more than one unit, e.g. glucose: mg/dL, mmol/L" in text
    assert "in-hospital death(s) whose patient has no death_time" in text
    assert len(problems) == 5


# -- MIMIC-IV --------------------------------------------------------------------------------------------


def test_import_mimic(tmp_path: Path) -> None:
    report = import_mimic(write_mimic(tmp_path / "mimic"), tmp_path / "ehr.duckdb")
    assert report.source_format == "mimic"
    assert report.rows_read == {
        "patients.csv": 2,
        "admissions.csv": 2,
        "diagnoses_icd.csv": 3,
        "d_labitems.csv": 4,
        "labevents.csv": 4,
    }
    assert report.rows_written == {
        "patients": 2,
        "visits": 2,
        "diagnoses": 3,
        "procedures": 0,
        "medications": 0,
        "measurements": 4,
    }
    assert report.handled == {}
    with EventStore.open(tmp_path / "ehr.duckdb") as store:
        con = store.connection
        assert con.execute("SELECT * FROM patients ORDER BY patient_id").fetchall() == [
            ("10001", "F", date(2090, 1, 1), None),
            ("10002", "M", date(2085, 1, 1), datetime(2161, 3, 1, 23)),  # the admission's deathtime beats dod
        ]
        assert con.execute("SELECT visit_id, died_in_hospital, visit_type FROM visits ORDER BY 1").fetchall() == [
            ("201", False, "ew emer."),
            ("202", True, "urgent"),
        ]
        assert con.execute("SELECT code, system, time FROM diagnoses ORDER BY code").fetchall() == [
            ("4019", "ICD9", None),
            ("E119", "ICD10", None),
            ("I509", "ICD10", None),
        ]
        rows = con.execute(
            "SELECT item, category, value, unit, visit_id FROM measurements ORDER BY time, item"
        ).fetchall()
        assert rows == [
            ("Creatinine", "lab", 1.1, "mg/dL", "201"),
            ("Glucose (Blood)", "lab", 180.0, "mg/dL", "201"),
            ("Hematocrit", "lab", 35.0, "%", None),
            ("Creatinine", "lab", 2.0, "mg/dL", "202"),
        ]
        assert json.loads(store.meta()["import_report"])["rows_written"]["measurements"] == 4
        assert store.validate() == []
    assert not (tmp_path / "ehr.duckdb.partial").exists()


def test_import_mimic_reads_gzip_and_optional_files(tmp_path: Path) -> None:
    tables = mimic_tables()
    del tables["d_labitems"]
    tables["procedures_icd"] = [
        {
            "subject_id": 10001,
            "hadm_id": 201,
            "seq_num": 1,
            "chartdate": "2150-01-02",
            "icd_code": "0DTJ4ZZ",
            "icd_version": 10,
        }
    ]
    tables["prescriptions"] = [
        {
            "subject_id": 10001,
            "hadm_id": 201,
            "starttime": "2150-01-01 10:00:00",
            "stoptime": "2150-01-03 10:00:00",
            "drug": "Metformin",
            "ndc": "00087606010",
        },
        {
            "subject_id": 10001,
            "hadm_id": 201,
            "starttime": "2150-01-04 10:00:00",
            "stoptime": "2150-01-02 10:00:00",
            "drug": "Insulin",
            "ndc": "0",
        },
    ]
    folder = write_mimic(tmp_path / "mimic", tables)
    labs = folder / "labevents.csv"
    with gzip.open(folder / "labevents.csv.gz", "wb") as stream:
        stream.write(labs.read_bytes())
    labs.unlink()
    report = import_mimic(folder, tmp_path / "ehr.duckdb")
    assert report.rows_written["procedures"] == 1 and report.rows_written["medications"] == 2
    assert report.handled == {"medications ending before they start (end_time set to NULL)": 1}
    with EventStore.open(tmp_path / "ehr.duckdb") as store:
        con = store.connection
        assert sorted(con.execute("SELECT DISTINCT item FROM measurements").fetchall()) == [
            ("50912",),
            ("50931",),
            ("51221",),
        ]  # itemids without d_labitems
        assert con.execute("SELECT code, system, end_time FROM medications ORDER BY start_time").fetchall() == [
            ("00087606010", "NDC", datetime(2150, 1, 3, 10)),
            ("Insulin", "DRUG_NAME", None),
        ]


def test_missing_file_and_columns_are_named(tmp_path: Path) -> None:
    folder = write_mimic(tmp_path / "mimic")
    (folder / "labevents.csv").unlink()
    with pytest.raises(MedDLError, match=r"required file labevents\.csv .*not found \(found: admissions\.csv"):
        import_mimic(folder, tmp_path / "a.duckdb")
    tables = mimic_tables()
    for row in tables["admissions"]:
        del row["dischtime"]
    write_mimic(folder, tables)
    with pytest.raises(MedDLError) as error:
        import_mimic(folder, tmp_path / "a.duckdb")
    message = str(error.value)
    assert "admissions.csv: missing required column(s) 'dischtime'" in message
    assert "found: subject_id, hadm_id, admittime, deathtime" in message
    assert not (tmp_path / "a.duckdb").exists() and not (tmp_path / "a.duckdb.partial").exists()


def test_unparseable_timestamp_names_file_row_column_value(tmp_path: Path) -> None:
    tables = mimic_tables()
    tables["labevents"][2]["charttime"] = "2161-02-31 06:00:00"  # no 31 February
    tables["labevents"][3]["charttime"] = "yesterday"
    with pytest.raises(MedDLError) as error:
        import_mimic(write_mimic(tmp_path / "m", tables), tmp_path / "a.duckdb")
    assert str(error.value).startswith(
        "labevents.csv row 4, column 'charttime': cannot read '2161-02-31 06:00:00' as a timestamp (2 such values"
    )
    tables = mimic_tables()
    tables["labevents"][1]["valuenum"] = "1,5"
    with pytest.raises(MedDLError, match=r"labevents\.csv row 3, column 'valuenum': cannot read '1,5' as a number"):
        import_mimic(write_mimic(tmp_path / "m", tables), tmp_path / "a.duckdb")


def test_discharge_before_admission_errors_or_is_dropped(tmp_path: Path) -> None:
    tables = mimic_tables()
    tables["admissions"][0]["dischtime"] = "2149-12-31 12:00:00"
    folder = write_mimic(tmp_path / "m", tables)
    with pytest.raises(MedDLError) as error:
        import_mimic(folder, tmp_path / "a.duckdb")
    assert str(error.value).startswith(
        "admissions.csv: visit '201' is discharged before admission (admit 2150-01-01 08:00:00, "
        "discharge 2149-12-31 12:00:00)"
    )
    report = import_mimic(folder, tmp_path / "a.duckdb", on_bad_visit="drop")
    assert report.handled == {
        "visits discharged before admission dropped": 1,
        # the dropped visit's events stay on the patient's timeline without a visit
        "diagnoses whose visit is not among the patient's visits (kept, visit_id set to NULL)": 2,
        "measurements whose visit is not among the patient's visits (kept, visit_id set to NULL)": 2,
    }
    assert report.rows_written["visits"] == 1 and report.rows_written["measurements"] == 4


def test_duplicates_unknown_visits_patients_and_missing_values_are_counted(tmp_path: Path) -> None:
    tables = mimic_tables()
    labs = tables["labevents"]
    labs.append(dict(labs[0], labevent_id=5))  # the same event again under another id: a duplicate
    labs.append(dict(labs[0], labevent_id=6))
    labs.append(dict(labs[0], labevent_id=7, hadm_id=999))  # visit that does not exist
    labs.append(dict(labs[0], labevent_id=8, subject_id=77777))  # patient that does not exist
    labs.append(dict(labs[0], labevent_id=9, valuenum=None, value="hemolysed"))
    tables["diagnoses_icd"].append(
        {"subject_id": 10001, "hadm_id": 201, "seq_num": 3, "icd_code": "X1", "icd_version": None}
    )
    tables["diagnoses_icd"].append(dict(tables["diagnoses_icd"][0]))
    tables["admissions"].append(dict(tables["admissions"][0]))  # exact duplicate visit
    tables["admissions"].append(dict(tables["admissions"][0], subject_id=55555, hadm_id=300))  # unknown patient
    report = import_mimic(write_mimic(tmp_path / "m", tables), tmp_path / "a.duckdb")
    assert report.handled == {
        "duplicate visit rows removed": 1,
        "visits whose patient is not in patients dropped": 1,
        "measurements whose patient is not in patients dropped": 1,
        "measurements without a numeric value dropped": 1,
        "measurements whose visit is not among the patient's visits (kept, visit_id set to NULL)": 1,
        "duplicate measurements rows removed": 2,
        "duplicate diagnoses rows removed": 1,
        "diagnoses with an unknown code system (kept)": 1,
    }
    assert report.rows_written["measurements"] == 5  # 4 + the unknown-visit row


def test_conflicting_duplicate_visit_ids_are_an_error(tmp_path: Path) -> None:
    tables = mimic_tables()
    tables["admissions"].append(dict(tables["admissions"][0], dischtime="2150-01-06 12:00:00"))
    with pytest.raises(MedDLError, match=r"admissions\.csv: visit id '201' appears 2 times with different values"):
        import_mimic(write_mimic(tmp_path / "m", tables), tmp_path / "a.duckdb")


def test_units_are_converted_or_named(tmp_path: Path) -> None:
    tables = mimic_tables()
    labs = tables["labevents"]
    for k in range(3):  # creatinine: 3 in mg/dL (majority with the first two), 1 in µmol/L
        labs.append(dict(labs[0], labevent_id=10 + k, charttime=f"2150-01-02 0{k}:00:00"))
    labs.append(dict(labs[0], labevent_id=20, charttime="2150-01-03 00:00:00", valuenum=88.4, valueuom="µmol/L"))
    labs.append(dict(labs[3], labevent_id=21, charttime="2161-01-02 00:00:00", valuenum=0.4, valueuom=None))
    report = import_mimic(write_mimic(tmp_path / "m", tables), tmp_path / "a.duckdb")
    assert report.handled == {
        "measurements converted from µmol/L to mg/dL (Creatinine)": 1,
        "measurements without a unit given their item's unit": 1,
    }
    with EventStore.open(tmp_path / "a.duckdb") as store:
        converted = store.connection.execute(
            "SELECT value, unit FROM measurements WHERE time = TIMESTAMP '2150-01-03 00:00:00'"
        ).fetchone()
        assert converted == (pytest.approx(1.0), "mg/dL")
        assert store.validate() == []

    labs.append(dict(labs[3], labevent_id=30, charttime="2161-01-03 00:00:00", valuenum=0.35, valueuom="L/L"))
    labs.append(dict(labs[3], labevent_id=31, charttime="2161-01-04 00:00:00", valuenum=0.36, valueuom="L/L"))
    folder = write_mimic(tmp_path / "m", tables)
    with pytest.raises(MedDLError) as error:
        import_mimic(folder, tmp_path / "b.duckdb")
    assert (
        "labevents.csv: measurement item 'Hematocrit' has units that disagree and no known conversion: "
        "L/L (2 rows), % (1 row)" in str(error.value)
    )
    report = import_mimic(folder, tmp_path / "b.duckdb", on_unit_conflict="majority")
    assert report.handled["measurements in a minority unit without conversion dropped (Hematocrit: %)"] == 1
    with EventStore.open(tmp_path / "b.duckdb") as store:  # the majority unit, also given to the unit-less row
        assert store.connection.execute(
            "SELECT unit, count(*) FROM measurements WHERE item = 'Hematocrit' GROUP BY unit"
        ).fetchall() == [("L/L", 3)]


def test_out_of_window_measurements_are_kept_and_counted(tmp_path: Path) -> None:
    tables = mimic_tables()
    tables["labevents"][0]["charttime"] = "2149-12-30 07:00:00"  # 25 h before admission
    tables["labevents"][1]["charttime"] = "2149-12-31 09:00:00"  # 23 h before: inside the window
    report = import_mimic(write_mimic(tmp_path / "m", tables), tmp_path / "a.duckdb")
    assert report.handled == {"out-of-window measurements (kept)": 1}
    assert report.rows_written["measurements"] == 4


def test_existing_store_is_kept_unless_overwrite(tmp_path: Path) -> None:
    folder = write_mimic(tmp_path / "m")
    import_mimic(folder, tmp_path / "a.duckdb")
    with pytest.raises(MedDLError, match="already exists"):
        import_mimic(folder, tmp_path / "a.duckdb")
    tables = mimic_tables()
    tables["labevents"][0]["charttime"] = "bad"
    write_mimic(folder, tables)
    with pytest.raises(MedDLError, match="row 2"):
        import_mimic(folder, tmp_path / "a.duckdb", overwrite=True)
    with EventStore.open(tmp_path / "a.duckdb") as store:  # the failed import left the old store alone
        assert store.counts()["measurements"] == 4
    with pytest.raises(MedDLError, match="on_bad_visit must be 'error' or 'drop', got 'skip'"):
        import_mimic(folder, tmp_path / "b.duckdb", on_bad_visit="skip")  # type: ignore[arg-type]


# -- OMOP CDM --------------------------------------------------------------------------------------------


def test_import_omop(tmp_path: Path) -> None:
    report = import_omop(write_omop(tmp_path / "omop"), tmp_path / "ehr.duckdb")
    assert report.rows_written == {
        "patients": 2,
        "visits": 2,
        "diagnoses": 2,
        "procedures": 0,
        "medications": 1,
        "measurements": 2,
    }
    assert report.handled == {"diagnoses with an unknown code system (kept)": 1}
    with EventStore.open(tmp_path / "ehr.duckdb") as store:
        con = store.connection
        assert con.execute("SELECT * FROM patients ORDER BY patient_id").fetchall() == [
            ("1", "F", date(1950, 4, 2), None),
            ("2", "M", date(1940, 6, 15), datetime(2021, 5, 3)),
        ]
        assert con.execute("SELECT * FROM visits ORDER BY visit_id").fetchall() == [
            ("11", "1", datetime(2020, 1, 1, 8), datetime(2020, 1, 4, 10), "inpatient", False),
            ("12", "2", datetime(2021, 5, 1), datetime(2021, 5, 3, 23, 59, 59), "emergency", True),
        ]
        assert con.execute("SELECT code, system, visit_id, time FROM diagnoses ORDER BY code").fetchall() == [
            ("201826", "OMOP", "11", None),  # linked to its visit: known at discharge
            ("XYZ", None, None, datetime(2019, 3, 1)),  # concept 0: the source value, no system
        ]
        assert con.execute("SELECT item, category, value, unit FROM measurements ORDER BY time").fetchall() == [
            ("creatinine", "lab", 1.2, "mg/dL"),
            ("heart rate", "vital", 88.0, "/min"),
        ]
        assert con.execute("SELECT code, system, start_time FROM medications").fetchall() == [
            ("1503297", "OMOP", datetime(2020, 1, 1, 12))
        ]
        assert store.validate() == []


def test_omop_bad_input(tmp_path: Path) -> None:
    tables = omop_tables()
    for row in tables["measurement"]:
        del row["measurement_datetime"], row["measurement_date"]
    with pytest.raises(
        MedDLError,
        match=r"measurement\.csv: missing required column\(s\) "
        r"'measurement_datetime or measurement_date' \(found: person_id, measurement_concept_id",
    ):
        import_omop(write_omop(tmp_path / "a", tables), tmp_path / "a.duckdb")
    tables = omop_tables()
    tables["visit_occurrence"][1]["visit_end_date"] = "2021-04-30"
    with pytest.raises(
        MedDLError,
        match=r"visit_occurrence\.csv: visit '12' is discharged before admission "
        r"\(admit 2021-05-01 00:00:00, discharge 2021-04-30 23:59:59\)",
    ):
        import_omop(write_omop(tmp_path / "b", tables), tmp_path / "b.duckdb")
    tables = omop_tables()
    tables["person"][0]["year_of_birth"] = "nineteen fifty"
    with pytest.raises(
        MedDLError,
        match=r"person\.csv row 2, column 'year_of_birth': cannot read "
        r"'nineteen fifty' as an integer",
    ):
        import_omop(write_omop(tmp_path / "c", tables), tmp_path / "c.duckdb")


# -- FHIR R4 ---------------------------------------------------------------------------------------------


def test_import_fhir(tmp_path: Path) -> None:
    report = import_fhir(write_fhir(tmp_path / "fhir"), tmp_path / "ehr.duckdb")
    assert report.rows_read == {
        "Patient.ndjson": 2,
        "Encounter.ndjson": 2,
        "Condition.ndjson": 2,
        "Observation.ndjson": 2,
    }
    assert report.rows_written == {
        "patients": 2,
        "visits": 2,
        "diagnoses": 2,
        "procedures": 0,
        "medications": 0,
        "measurements": 3,
    }
    assert report.handled == {"diagnoses with an unknown code system (kept)": 1}
    with EventStore.open(tmp_path / "ehr.duckdb") as store:
        con = store.connection
        assert con.execute("SELECT * FROM patients ORDER BY 1").fetchall() == [
            ("pat-1", "F", date(1950, 2, 3), None),
            ("pat-2", "M", date(1945, 7, 8), datetime(2021, 3, 4, 9)),  # +01:00 → UTC
        ]
        assert con.execute("SELECT * FROM visits ORDER BY 1").fetchall() == [
            ("enc-1", "pat-1", datetime(2020, 1, 1, 8), datetime(2020, 1, 3, 8), "inpatient", False),
            ("enc-2", "pat-2", datetime(2021, 3, 1, 8), datetime(2021, 3, 4, 9), "emergency", True),
        ]
        assert con.execute("SELECT code, system, visit_id, time FROM diagnoses ORDER BY 1").fetchall() == [
            ("E119", "ICD10", "enc-1", None),
            ("L1", "http://example.org/local", None, datetime(2015, 6, 1)),
        ]
        assert con.execute("SELECT item, category, value, unit FROM measurements ORDER BY item").fetchall() == [
            ("Creatinine", "lab", 1.0, "mg/dL"),
            ("Diastolic blood pressure", "vital", 80.0, "mm[Hg]"),
            ("Systolic blood pressure", "vital", 120.0, "mm[Hg]"),
        ]
        assert store.validate() == []


def test_fhir_bad_input_names_line_and_field(tmp_path: Path) -> None:
    folder = write_fhir(tmp_path / "a")
    text = (folder / "Observation.ndjson").read_text()
    (folder / "Observation.ndjson").write_text(text + "\n" + '{"resourceType": "Observation", "subject": \n')
    with pytest.raises(MedDLError, match=r"Observation\.ndjson line 4: not valid JSON: '\{\"resourceType\""):
        import_fhir(folder, tmp_path / "a.duckdb")

    resources = fhir_resources()
    resources["Encounter"][1]["period"]["end"] = "2021-02-28T08:00:00Z"
    with pytest.raises(MedDLError, match=r"Encounter\.ndjson: visit 'enc-2' is discharged before admission"):
        import_fhir(write_fhir(tmp_path / "b", resources), tmp_path / "b.duckdb")

    resources = fhir_resources()
    del resources["Encounter"][1]["subject"]
    with pytest.raises(
        MedDLError,
        match=r"Encounter\.ndjson line 2: missing required field 'subject\.reference' "
        r"\(found fields: resourceType, id, class, period, hospitalization\)",
    ):
        import_fhir(write_fhir(tmp_path / "c", resources), tmp_path / "c.duckdb")

    resources = fhir_resources()
    resources["Observation"][0]["effectiveDateTime"] = "01/02/2020"
    with pytest.raises(
        MedDLError,
        match=r"Observation\.ndjson line 1, field 'effectiveDateTime': cannot read "
        r"'01/02/2020' as a timestamp",
    ):
        import_fhir(write_fhir(tmp_path / "d", resources), tmp_path / "d.duckdb")

    resources = fhir_resources()
    resources["Patient"][1]["resourceType"] = "Practitioner"
    with pytest.raises(MedDLError, match=r"Patient\.ndjson line 2: resourceType is 'Practitioner'"):
        import_fhir(write_fhir(tmp_path / "e", resources), tmp_path / "e.duckdb")


def test_fhir_drops_values_without_quantity_and_counts_them(tmp_path: Path) -> None:
    resources = fhir_resources()
    resources["Observation"].append(
        {
            "resourceType": "Observation",
            "subject": {"reference": "Patient/pat-1"},
            "code": {"coding": [{"code": "72166-2", "display": "Smoking status"}]},
            "valueCodeableConcept": {"text": "Never smoker"},
            "effectiveDateTime": "2020-01-01T10:00:00Z",
        }
    )
    resources["Condition"].append(
        {
            "resourceType": "Condition",
            "subject": {"reference": "Patient/pat-1"},
            "verificationStatus": {"coding": [{"code": "entered-in-error"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
        }
    )
    report = import_fhir(write_fhir(tmp_path / "f", resources), tmp_path / "f.duckdb")
    assert report.handled == {
        "conditions entered in error dropped": 1,
        "measurements without a numeric value dropped": 1,
        "diagnoses with an unknown code system (kept)": 1,
    }

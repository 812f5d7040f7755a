"""Importing a MIMIC-IV ``hosp`` module folder of CSVs into an EHR event store (:func:`import_mimic`).

Importable from :mod:`meddl.io.ehr`, whose docstring lists the bad-input rules every importer follows.
"""

from __future__ import annotations

from pathlib import Path

from meddl.io._ehr_import import _CSV, ImportReport, OnBadVisit, OnUnitConflict, _Importer, _run_import
from meddl.io._ehr_sql import _ts

__all__ = ["import_mimic"]


def import_mimic(
    folder: str | Path,
    store_path: str | Path,
    *,
    overwrite: bool = False,
    on_bad_visit: OnBadVisit = "error",
    on_unit_conflict: OnUnitConflict = "error",
) -> ImportReport:
    """Import a MIMIC-IV ``hosp`` module folder into a new event store.

    Files (``.csv`` or ``.csv.gz``; required columns first, optional in brackets):

    * ``patients``: subject_id, gender, anchor_age, anchor_year [dod]. ``birth_date`` is 1 January of
      ``anchor_year - anchor_age``: MIMIC shifts dates and gives only the age in the anchor year, so ages are
      exact to within a year (and MIMIC caps anchor_age at 91).
    * ``admissions``: subject_id, hadm_id, admittime, dischtime [deathtime, admission_type,
      hospital_expire_flag]. ``died_in_hospital`` = hospital_expire_flag = 1 or a deathtime; a patient's
      ``death_time`` is their latest admission deathtime, else ``dod``.
    * ``diagnoses_icd``: subject_id, hadm_id, icd_code, icd_version [seq_num]; ``time`` NULL (known at discharge),
      system ``ICD9`` / ``ICD10`` from icd_version.
    * ``labevents``: subject_id, itemid, charttime, valuenum [labevent_id, hadm_id, value, valueuom];
      category ``lab``; rows without ``valuenum`` (text results) are dropped and counted.
    * optional ``d_labitems``: itemid, label [fluid, category]: the item is the label, or ``label (fluid)``
      where several items share a label, or ``label [itemid]`` where that is not unique either; items not in
      the dictionary keep their itemid.
    * optional ``procedures_icd``: subject_id, hadm_id, icd_code, icd_version [chartdate, seq_num].
    * optional ``prescriptions``: subject_id, hadm_id, drug, starttime [stoptime, ndc]: the code is the NDC
      (system ``NDC``) when given and not ``0``, else the drug name (system ``DRUG_NAME``).

    Args:
        folder: the folder holding the files.
        store_path: the event store to write.
        overwrite: replace an existing store (only once the import has succeeded).
        on_bad_visit: ``"error"`` (default) or ``"drop"`` (counted) for admissions discharged before admission.
        on_unit_conflict: ``"error"`` (default) or ``"majority"`` (minority units dropped, counted).

    Returns:
        What was read, written and handled.

    Raises:
        MedDLError: a bad-input rule of the :mod:`meddl.io.ehr` docstring.
    """
    return _run_import("mimic", folder, store_path, overwrite, _mimic_body, on_bad_visit, on_unit_conflict)


def _mimic_body(imp: _Importer, folder: Path) -> dict[str, str]:
    con = imp.con
    patients = imp.find(folder, "patients", _CSV, required=True)
    admissions = imp.find(folder, "admissions", _CSV, required=True)
    diagnoses = imp.find(folder, "diagnoses_icd", _CSV, required=True)
    labevents = imp.find(folder, "labevents", _CSV, required=True)
    assert patients and admissions and diagnoses and labevents, "required files were checked above"
    d_labitems = imp.find(folder, "d_labitems", _CSV, required=False)
    procedures = imp.find(folder, "procedures_icd", _CSV, required=False)
    prescriptions = imp.find(folder, "prescriptions", _CSV, required=False)

    has = imp.stage_csv(patients, "raw_patients", ["subject_id", "gender", "anchor_age", "anchor_year"], ["dod"])
    imp.check_values(
        "raw_patients",
        patients.name,
        {"anchor_age": "integer", "anchor_year": "integer"} | ({"dod": "timestamp"} if "dod" in has else {}),
    )
    has_adm = imp.stage_csv(
        admissions,
        "raw_admissions",
        ["subject_id", "hadm_id", "admittime", "dischtime"],
        ["deathtime", "admission_type", "hospital_expire_flag"],
    )
    imp.check_values(
        "raw_admissions",
        admissions.name,
        {"admittime": "timestamp", "dischtime": "timestamp"}
        | ({"deathtime": "timestamp"} if "deathtime" in has_adm else {})
        | ({"hospital_expire_flag": "integer"} if "hospital_expire_flag" in has_adm else {}),
    )
    deathtime = _ts("deathtime") if "deathtime" in has_adm else "NULL::TIMESTAMP"
    expire = (
        "TRY_CAST(TRY_CAST(hospital_expire_flag AS DOUBLE) AS INTEGER) = 1"
        if ("hospital_expire_flag" in has_adm)
        else "FALSE"
    )
    admission_type = "admission_type" if "admission_type" in has_adm else "NULL"
    con.execute(
        f"CREATE TEMP TABLE st_visits AS SELECT hadm_id AS visit_id, subject_id AS patient_id, "
        f"{_ts('admittime')} AS admit_time, {_ts('dischtime')} AS discharge_time, "
        f"lower({admission_type}) AS visit_type, ({expire} OR {deathtime} IS NOT NULL) AS died_in_hospital, "
        f"{deathtime} AS death_time FROM raw_admissions"
    )
    dod = _ts("dod") if "dod" in has else "NULL::TIMESTAMP"
    con.execute(
        "CREATE TEMP TABLE st_patients AS SELECT subject_id AS patient_id, "
        "CASE upper(gender) WHEN 'F' THEN 'F' WHEN 'M' THEN 'M' ELSE 'U' END AS sex, "
        "make_date(CAST(TRY_CAST(anchor_year AS DOUBLE) - TRY_CAST(anchor_age AS DOUBLE) AS BIGINT), 1, 1) "
        f"AS birth_date, coalesce(d.death, {dod}) AS death_time FROM raw_patients "
        "LEFT JOIN (SELECT patient_id, max(death_time) AS death FROM st_visits GROUP BY patient_id) d "
        "ON d.patient_id = raw_patients.subject_id"
    )
    con.execute("ALTER TABLE st_visits DROP COLUMN death_time")

    imp.stage_csv(diagnoses, "raw_diagnoses", ["subject_id", "hadm_id", "icd_code", "icd_version"], ["seq_num"])
    con.execute(
        "CREATE TEMP TABLE st_diagnoses AS SELECT subject_id AS patient_id, hadm_id AS visit_id, "
        f"{_icd_code('icd_code')} AS code, {_icd_system('icd_version')} AS system, NULL::TIMESTAMP AS time "
        "FROM raw_diagnoses"
    )
    sources = {
        "patients": patients.name,
        "visits": admissions.name,
        "diagnoses": diagnoses.name,
        "measurements": labevents.name,
    }

    item = "itemid"
    if d_labitems is not None:
        has_items = imp.stage_csv(d_labitems, "raw_d_labitems", ["itemid", "label"], ["fluid", "category"])
        fluid = "fluid" if "fluid" in has_items else "NULL"
        con.execute(
            "CREATE TEMP TABLE lab_names AS SELECT itemid, CASE "
            "WHEN count(*) OVER (PARTITION BY label) = 1 THEN label "
            f"WHEN {fluid} IS NOT NULL AND count(*) OVER (PARTITION BY label, {fluid}) = 1 "
            f"THEN label || ' (' || {fluid} || ')' "
            "ELSE label || ' [' || itemid || ']' END AS name FROM raw_d_labitems WHERE label IS NOT NULL"
        )
        item = "coalesce(n.name, l.itemid)"
    has_labs = imp.stage_csv(
        labevents,
        "raw_labevents",
        ["subject_id", "itemid", "charttime", "valuenum"],
        ["labevent_id", "hadm_id", "value", "valueuom"],
    )
    imp.check_values("raw_labevents", labevents.name, {"charttime": "timestamp", "valuenum": "double"})
    join = "LEFT JOIN lab_names n ON n.itemid = l.itemid" if d_labitems is not None else ""
    hadm = "l.hadm_id" if "hadm_id" in has_labs else "NULL"
    uom = "l.valueuom" if "valueuom" in has_labs else "NULL"
    con.execute(
        f"CREATE TEMP TABLE st_measurements AS SELECT l.subject_id AS patient_id, {hadm} AS visit_id, "
        f"{item} AS item, 'lab' AS category, TRY_CAST(l.valuenum AS DOUBLE) AS value, {uom} AS unit, "
        f"{_ts('l.charttime')} AS time FROM raw_labevents l {join}"
    )

    if procedures is not None:
        has_proc = imp.stage_csv(
            procedures, "raw_procedures", ["subject_id", "hadm_id", "icd_code", "icd_version"], ["chartdate", "seq_num"]
        )
        if "chartdate" in has_proc:
            imp.check_values("raw_procedures", procedures.name, {"chartdate": "timestamp"})
        chartdate = _ts("chartdate") if "chartdate" in has_proc else "NULL::TIMESTAMP"
        con.execute(
            "CREATE TEMP TABLE st_procedures AS SELECT subject_id AS patient_id, hadm_id AS visit_id, "
            f"{_icd_code('icd_code')} AS code, {_icd_system('icd_version')} AS system, {chartdate} AS time "
            "FROM raw_procedures"
        )
        sources["procedures"] = procedures.name
    if prescriptions is not None:
        has_rx = imp.stage_csv(
            prescriptions, "raw_prescriptions", ["subject_id", "hadm_id", "drug", "starttime"], ["stoptime", "ndc"]
        )
        imp.check_values(
            "raw_prescriptions",
            prescriptions.name,
            {"starttime": "timestamp"} | ({"stoptime": "timestamp"} if "stoptime" in has_rx else {}),
        )
        ndc = "CASE WHEN ndc IS NOT NULL AND ndc <> '0' THEN ndc END" if "ndc" in has_rx else "NULL"
        stop = _ts("stoptime") if "stoptime" in has_rx else "NULL::TIMESTAMP"
        con.execute(
            "CREATE TEMP TABLE st_medications AS SELECT subject_id AS patient_id, hadm_id AS visit_id, "
            f"coalesce({ndc}, drug) AS code, CASE WHEN {ndc} IS NOT NULL THEN 'NDC' ELSE 'DRUG_NAME' END AS system, "
            f"{_ts('starttime')} AS start_time, {stop} AS end_time FROM raw_prescriptions"
        )
        sources["medications"] = prescriptions.name
    return sources


def _icd_code(column: str) -> str:
    return f"upper(replace({column}, '.', ''))"


def _icd_system(version_column: str) -> str:
    return (
        f"CASE TRY_CAST(TRY_CAST({version_column} AS DOUBLE) AS INTEGER) WHEN 9 THEN 'ICD9' WHEN 10 THEN 'ICD10' "
        f"ELSE CASE WHEN {version_column} IS NOT NULL THEN 'ICD' || {version_column} END END"
    )

"""Importing OMOP CDM (v5.3/v5.4) tables into an EHR event store (:func:`import_omop`).

Importable from :mod:`meddl.io.ehr`, whose docstring lists the bad-input rules every importer follows.
"""

from __future__ import annotations

from pathlib import Path

from meddl.io._ehr_import import _CSV, ImportReport, OnBadVisit, OnUnitConflict, _Importer, _run_import
from meddl.io._ehr_sql import _day_end, _literal, _ts

__all__ = ["import_omop"]

# OMOP standard concepts.
_OMOP_MALE, _OMOP_FEMALE = 8507, 8532
_OMOP_VISIT_TYPES = {"9201": "inpatient", "9202": "outpatient", "9203": "emergency", "262": "inpatient"}
_OMOP_VITAL_CONCEPTS = ("3027018", "3004249", "3012888", "3024171", "3016502", "40762499", "3020891", "3025315")


def import_omop(
    folder: str | Path,
    store_path: str | Path,
    *,
    overwrite: bool = False,
    on_bad_visit: OnBadVisit = "error",
    on_unit_conflict: OnUnitConflict = "error",
) -> ImportReport:
    """Import OMOP CDM (v5.3/v5.4) tables, one ``<table>.csv`` (or ``.csv.gz``) each, into a new event store.

    Required columns (``a | b``: at least one of them; the datetime wins over the date where both are given):

    * ``person``: person_id, gender_concept_id, year_of_birth [month_of_birth, day_of_birth, birth_datetime].
      Sex from 8507 (M) / 8532 (F), else ``U``; birth_date from birth_datetime, else the year with month and
      day (1 where missing).
    * ``visit_occurrence``: visit_occurrence_id, person_id, visit_start_datetime | visit_start_date
      [visit_end_datetime, visit_end_date, visit_concept_id]. A date-only start is midnight, a date-only end
      is 23:59:59 of that day. Visit type from 9201 inpatient, 9202 outpatient, 9203 emergency, 262 inpatient,
      else the concept id.
    * ``condition_occurrence``: person_id, condition_concept_id, condition_start_datetime | condition_start_date
      [visit_occurrence_id, condition_source_value]. Code = the concept id (system ``OMOP``); concept 0
      (unmapped) keeps the source value with no system (counted as unknown). A condition linked to a visit gets
      ``time`` NULL (known at discharge, as billed codes are), others keep their start.
    * ``measurement``: person_id, measurement_concept_id, measurement_datetime | measurement_date,
      value_as_number [unit_source_value, visit_occurrence_id, measurement_source_value]. Item =
      measurement_source_value, else the concept id; category ``vital`` for the LOINC vital-sign concepts
      (heart rate, blood pressure, respiratory rate, SpO2, temperature), else ``lab``.
    * optional ``drug_exposure``: person_id, drug_concept_id, drug_exposure_start_datetime |
      drug_exposure_start_date [drug_exposure_end_datetime, drug_exposure_end_date, visit_occurrence_id].
    * optional ``procedure_occurrence``: person_id, procedure_concept_id, procedure_datetime | procedure_date
      [visit_occurrence_id].
    * optional ``death``: person_id, death_datetime | death_date. ``died_in_hospital`` = the death date falls
      between the visit's start and end dates.

    Args:
        folder: the folder holding the CSV files.
        store_path: the event store to write.
        overwrite: replace an existing store (only once the import has succeeded).
        on_bad_visit: ``"error"`` (default) or ``"drop"`` (counted) for visits ending before they start.
        on_unit_conflict: ``"error"`` (default) or ``"majority"`` (minority units dropped, counted).

    Returns:
        What was read, written and handled.

    Raises:
        MedDLError: a bad-input rule of the :mod:`meddl.io.ehr` docstring.
    """
    return _run_import("omop", folder, store_path, overwrite, _omop_body, on_bad_visit, on_unit_conflict)


def _pick_time(has: set[str], datetime_column: str, date_column: str, *, end: bool = False) -> str:
    parts = []
    if datetime_column in has:
        parts.append(_ts(datetime_column))
    if date_column in has:
        parts.append(_day_end(date_column) if end else f"CAST(TRY_CAST({date_column} AS DATE) AS TIMESTAMP)")
    return f"coalesce({', '.join(parts)})" if parts else "NULL::TIMESTAMP"


def _time_checks(has: set[str], *pairs: tuple[str, str]) -> dict[str, str]:
    checks: dict[str, str] = {}
    for datetime_column, date_column in pairs:
        if datetime_column in has:
            checks[datetime_column] = "timestamp"
        if date_column in has:
            checks[date_column] = "date"
    return checks


def _omop_body(imp: _Importer, folder: Path) -> dict[str, str]:
    con = imp.con
    person = imp.find(folder, "person", _CSV, required=True)
    visits = imp.find(folder, "visit_occurrence", _CSV, required=True)
    conditions = imp.find(folder, "condition_occurrence", _CSV, required=True)
    measurement = imp.find(folder, "measurement", _CSV, required=True)
    assert person and visits and conditions and measurement, "required files were checked above"
    drugs = imp.find(folder, "drug_exposure", _CSV, required=False)
    procedures = imp.find(folder, "procedure_occurrence", _CSV, required=False)
    death = imp.find(folder, "death", _CSV, required=False)

    has = imp.stage_csv(
        person,
        "raw_person",
        ["person_id", "gender_concept_id", "year_of_birth"],
        ["month_of_birth", "day_of_birth", "birth_datetime"],
    )
    imp.check_values(
        "raw_person",
        person.name,
        {"year_of_birth": "integer", "gender_concept_id": "integer"}
        | {c: "integer" for c in ("month_of_birth", "day_of_birth") if c in has}
        | ({"birth_datetime": "timestamp"} if "birth_datetime" in has else {}),
    )
    month = "TRY_CAST(TRY_CAST(month_of_birth AS DOUBLE) AS BIGINT)" if "month_of_birth" in has else "NULL"
    day = "TRY_CAST(TRY_CAST(day_of_birth AS DOUBLE) AS BIGINT)" if "day_of_birth" in has else "NULL"
    birth = f"CAST({_ts('birth_datetime')} AS DATE)" if "birth_datetime" in has else "NULL::DATE"
    death_time = "NULL::TIMESTAMP"
    death_join = ""
    if death is not None:
        has_death = imp.stage_csv(death, "raw_death", ["person_id"], one_of=[("death_datetime", "death_date")])
        imp.check_values("raw_death", death.name, _time_checks(has_death, ("death_datetime", "death_date")))
        con.execute(
            "CREATE TEMP TABLE omop_death AS SELECT person_id, "
            f"min({_pick_time(has_death, 'death_datetime', 'death_date')}) AS death_time "
            "FROM raw_death GROUP BY person_id"
        )
        death_time, death_join = "d.death_time", "LEFT JOIN omop_death d USING (person_id)"
    con.execute(
        "CREATE TEMP TABLE st_patients AS SELECT person_id AS patient_id, "
        f"CASE TRY_CAST(TRY_CAST(gender_concept_id AS DOUBLE) AS BIGINT) WHEN {_OMOP_MALE} THEN 'M' "
        f"WHEN {_OMOP_FEMALE} THEN 'F' ELSE 'U' END AS sex, "
        f"coalesce({birth}, make_date(TRY_CAST(TRY_CAST(year_of_birth AS DOUBLE) AS BIGINT), "
        f"coalesce({month}, 1), coalesce({day}, 1))) AS birth_date, {death_time} AS death_time "
        f"FROM raw_person {death_join}"
    )

    has_v = imp.stage_csv(
        visits,
        "raw_visits",
        ["visit_occurrence_id", "person_id"],
        ["visit_concept_id"],
        one_of=[("visit_start_datetime", "visit_start_date"), ("visit_end_datetime", "visit_end_date")],
    )
    imp.check_values(
        "raw_visits",
        visits.name,
        _time_checks(has_v, ("visit_start_datetime", "visit_start_date"), ("visit_end_datetime", "visit_end_date")),
    )
    visit_type = "visit_concept_id" if "visit_concept_id" in has_v else "NULL"
    types = " ".join(f"WHEN {_literal(k)} THEN {_literal(v)}" for k, v in _OMOP_VISIT_TYPES.items())
    con.execute(
        "CREATE TEMP TABLE st_visits AS SELECT visit_occurrence_id AS visit_id, person_id AS patient_id, "
        f"{_pick_time(has_v, 'visit_start_datetime', 'visit_start_date')} AS admit_time, "
        f"{_pick_time(has_v, 'visit_end_datetime', 'visit_end_date', end=True)} AS discharge_time, "
        f"CASE {visit_type} {types} ELSE {visit_type} END AS visit_type, FALSE AS died_in_hospital FROM raw_visits"
    )
    if death is not None:
        con.execute(
            "UPDATE st_visits SET died_in_hospital = TRUE FROM omop_death d WHERE d.person_id = st_visits.patient_id "
            "AND CAST(d.death_time AS DATE) BETWEEN CAST(admit_time AS DATE) AND CAST(discharge_time AS DATE)"
        )

    has_c = imp.stage_csv(
        conditions,
        "raw_conditions",
        ["person_id", "condition_concept_id"],
        ["visit_occurrence_id", "condition_source_value"],
        one_of=[("condition_start_datetime", "condition_start_date")],
    )
    imp.check_values(
        "raw_conditions", conditions.name, _time_checks(has_c, ("condition_start_datetime", "condition_start_date"))
    )
    visit = "visit_occurrence_id" if "visit_occurrence_id" in has_c else "NULL"
    source = "condition_source_value" if "condition_source_value" in has_c else "NULL"
    unmapped = "TRY_CAST(TRY_CAST(condition_concept_id AS DOUBLE) AS BIGINT) = 0"
    con.execute(
        f"CREATE TEMP TABLE st_diagnoses AS SELECT person_id AS patient_id, {visit} AS visit_id, "
        f"CASE WHEN {unmapped} THEN {source} ELSE condition_concept_id END AS code, "
        f"CASE WHEN {unmapped} THEN NULL ELSE 'OMOP' END AS system, "
        f"CASE WHEN {visit} IS NULL THEN "
        f"{_pick_time(has_c, 'condition_start_datetime', 'condition_start_date')} END AS time FROM raw_conditions"
    )

    has_m = imp.stage_csv(
        measurement,
        "raw_measurement",
        ["person_id", "measurement_concept_id", "value_as_number"],
        ["unit_source_value", "visit_occurrence_id", "measurement_source_value"],
        one_of=[("measurement_datetime", "measurement_date")],
    )
    imp.check_values(
        "raw_measurement",
        measurement.name,
        {"value_as_number": "double"} | _time_checks(has_m, ("measurement_datetime", "measurement_date")),
    )
    item = (
        "coalesce(measurement_source_value, measurement_concept_id)"
        if "measurement_source_value" in has_m
        else "measurement_concept_id"
    )
    vitals = ", ".join(_literal(c) for c in _OMOP_VITAL_CONCEPTS)
    con.execute(
        "CREATE TEMP TABLE st_measurements AS SELECT person_id AS patient_id, "
        f"{'visit_occurrence_id' if 'visit_occurrence_id' in has_m else 'NULL'} AS visit_id, {item} AS item, "
        f"CASE WHEN measurement_concept_id IN ({vitals}) THEN 'vital' ELSE 'lab' END AS category, "
        "TRY_CAST(value_as_number AS DOUBLE) AS value, "
        f"{'unit_source_value' if 'unit_source_value' in has_m else 'NULL'} AS unit, "
        f"{_pick_time(has_m, 'measurement_datetime', 'measurement_date')} AS time FROM raw_measurement"
    )
    sources = {
        "patients": person.name,
        "visits": visits.name,
        "diagnoses": conditions.name,
        "measurements": measurement.name,
    }

    if drugs is not None:
        has_d = imp.stage_csv(
            drugs,
            "raw_drugs",
            ["person_id", "drug_concept_id"],
            ["visit_occurrence_id", "drug_exposure_end_datetime", "drug_exposure_end_date"],
            one_of=[("drug_exposure_start_datetime", "drug_exposure_start_date")],
        )
        imp.check_values(
            "raw_drugs",
            drugs.name,
            _time_checks(
                has_d,
                ("drug_exposure_start_datetime", "drug_exposure_start_date"),
                ("drug_exposure_end_datetime", "drug_exposure_end_date"),
            ),
        )
        con.execute(
            "CREATE TEMP TABLE st_medications AS SELECT person_id AS patient_id, "
            f"{'visit_occurrence_id' if 'visit_occurrence_id' in has_d else 'NULL'} AS visit_id, "
            "drug_concept_id AS code, 'OMOP' AS system, "
            f"{_pick_time(has_d, 'drug_exposure_start_datetime', 'drug_exposure_start_date')} AS start_time, "
            f"{_pick_time(has_d, 'drug_exposure_end_datetime', 'drug_exposure_end_date', end=True)} AS end_time "
            "FROM raw_drugs"
        )
        sources["medications"] = drugs.name
    if procedures is not None:
        has_p = imp.stage_csv(
            procedures,
            "raw_procedures",
            ["person_id", "procedure_concept_id"],
            ["visit_occurrence_id"],
            one_of=[("procedure_datetime", "procedure_date")],
        )
        imp.check_values(
            "raw_procedures", procedures.name, _time_checks(has_p, ("procedure_datetime", "procedure_date"))
        )
        con.execute(
            "CREATE TEMP TABLE st_procedures AS SELECT person_id AS patient_id, "
            f"{'visit_occurrence_id' if 'visit_occurrence_id' in has_p else 'NULL'} AS visit_id, "
            "procedure_concept_id AS code, 'OMOP' AS system, "
            f"{_pick_time(has_p, 'procedure_datetime', 'procedure_date')} AS time FROM raw_procedures"
        )
        sources["procedures"] = procedures.name
    return sources

"""Importing FHIR R4 NDJSON files into an EHR event store (:func:`import_fhir`).

Importable from :mod:`meddl.io.ehr`, whose docstring lists the bad-input rules every importer follows.
"""

from __future__ import annotations

from pathlib import Path

from meddl.io._ehr_import import ImportReport, OnBadVisit, OnUnitConflict, _Importer, _run_import
from meddl.io._ehr_sql import _literal, _ts

__all__ = ["import_fhir"]

# FHIR code system URIs → store systems.
_FHIR_SYSTEMS = {
    "http://hl7.org/fhir/sid/icd-10": "ICD10",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD10",
    "http://hl7.org/fhir/sid/icd-9-cm": "ICD9",
    "http://snomed.info/sct": "SNOMED",
    "http://loinc.org": "LOINC",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RXNORM",
}
_FHIR_VISIT_TYPES = {
    "IMP": "inpatient",
    "ACUTE": "inpatient",
    "NONAC": "inpatient",
    "EMER": "emergency",
    "AMB": "outpatient",
    "OBSENC": "observation",
    "HH": "home",
    "VR": "virtual",
}
_NDJSON = (".ndjson", ".ndjson.gz")


def import_fhir(
    folder: str | Path,
    store_path: str | Path,
    *,
    overwrite: bool = False,
    on_bad_visit: OnBadVisit = "error",
    on_unit_conflict: OnUnitConflict = "error",
) -> ImportReport:
    """Import FHIR R4 bulk-export NDJSON files (one resource per line) into a new event store.

    Files and the fields read (required ones first):

    * ``Patient.ndjson``: id [gender (male/female → M/F, else U), birthDate, deceasedDateTime].
    * ``Encounter.ndjson``: id, subject.reference [period.start, period.end, class.code → visit_type (IMP
      inpatient, EMER emergency, AMB outpatient …), hospitalization.dischargeDisposition.coding[0].code ``exp``
      → died_in_hospital]. An encounter without period.start is dropped and counted.
    * optional ``Condition.ndjson``: subject.reference, code.coding[0].code [code.coding[0].system,
      encounter.reference, recordedDate, onsetDateTime, verificationStatus]. System from the URI (ICD-10(-CM),
      ICD-9-CM, SNOMED CT, LOINC, RxNorm), else the URI itself (counted as unknown). Time = recordedDate, else
      NULL when linked to an encounter (known at discharge), else onsetDateTime. ``entered-in-error``
      conditions are dropped and counted.
    * optional ``Observation.ndjson``: subject.reference, code.coding[0].code [display, valueQuantity.value /
      unit, effectiveDateTime (else effectivePeriod.start, else issued), encounter.reference, category].
      Blood-pressure style panels: each ``component`` with a valueQuantity becomes its own measurement.
      Item = coding[0].display, else the code; category ``vital`` for vital-signs, ``lab`` for laboratory,
      else the category code. Observations without a numeric valueQuantity are dropped and counted.

    References may be ``Patient/<id>`` or ``urn:uuid:<id>``.

    Args:
        folder: the folder holding the NDJSON files (``.ndjson`` or ``.ndjson.gz``).
        store_path: the event store to write.
        overwrite: replace an existing store (only once the import has succeeded).
        on_bad_visit: ``"error"`` (default) or ``"drop"`` (counted) for encounters ending before they start.
        on_unit_conflict: ``"error"`` (default) or ``"majority"`` (minority units dropped, counted).

    Returns:
        What was read, written and handled.

    Raises:
        MedDLError: a bad-input rule of the :mod:`meddl.io.ehr` docstring; a line that is not JSON or holds another
            resourceType (line number).
    """
    return _run_import("fhir", folder, store_path, overwrite, _fhir_body, on_bad_visit, on_unit_conflict)


def _reference(path: str) -> str:
    """SQL: the id in a reference field (``Patient/1`` → ``1``, ``urn:uuid:x`` → ``x``)."""
    return f"regexp_replace(line->>{_literal(path)}, '^(urn:uuid:|.*/)', '')"


def _fhir_body(imp: _Importer, folder: Path) -> dict[str, str]:
    con = imp.con
    patient = imp.find(folder, "Patient", _NDJSON, required=True)
    encounter = imp.find(folder, "Encounter", _NDJSON, required=True)
    assert patient and encounter, "required files were checked above"
    condition = imp.find(folder, "Condition", _NDJSON, required=False)
    observation = imp.find(folder, "Observation", _NDJSON, required=False)

    imp.stage_ndjson(patient, "raw_patient", "Patient")
    imp.require_fields("raw_patient", patient.name, {"id": "$.id"})
    birth, deceased = "line->>'$.birthDate'", "line->>'$.deceasedDateTime'"
    imp.check_values(
        "raw_patient",
        patient.name,
        {birth: "date", deceased: "timestamp"},
        where="line IS NOT NULL",
        unit="line",
        field_names={birth: "birthDate", deceased: "deceasedDateTime"},
    )
    con.execute(
        "CREATE TEMP TABLE st_patients AS SELECT line->>'$.id' AS patient_id, "
        "CASE line->>'$.gender' WHEN 'male' THEN 'M' WHEN 'female' THEN 'F' ELSE 'U' END AS sex, "
        f"TRY_CAST({birth} AS DATE) AS birth_date, "
        f"{_ts(deceased)} AS death_time "
        "FROM raw_patient WHERE line IS NOT NULL"
    )

    imp.stage_ndjson(encounter, "raw_encounter", "Encounter")
    imp.require_fields("raw_encounter", encounter.name, {"id": "$.id", "subject.reference": "$.subject.reference"})
    start, end = "line->>'$.period.start'", "line->>'$.period.end'"
    imp.check_values(
        "raw_encounter",
        encounter.name,
        {start: "timestamp", end: "timestamp"},
        where="line IS NOT NULL",
        unit="line",
        field_names={start: "period.start", end: "period.end"},
    )
    types = " ".join(f"WHEN {_literal(k)} THEN {_literal(v)}" for k, v in _FHIR_VISIT_TYPES.items())
    con.execute(
        "CREATE TEMP TABLE st_visits AS SELECT line->>'$.id' AS visit_id, "
        f"{_reference('$.subject.reference')} AS patient_id, {_ts(start)} AS admit_time, {_ts(end)} AS discharge_time, "
        f"CASE line->>'$.class.code' {types} ELSE lower(line->>'$.class.code') END AS visit_type, "
        "coalesce(line->>'$.hospitalization.dischargeDisposition.coding[0].code' = 'exp', FALSE) "
        "AS died_in_hospital FROM raw_encounter WHERE line IS NOT NULL"
    )
    sources = {"patients": patient.name, "visits": encounter.name}

    if condition is not None:
        imp.stage_ndjson(condition, "raw_condition", "Condition")
        imp.require_fields(
            "raw_condition",
            condition.name,
            {"subject.reference": "$.subject.reference", "code.coding[0].code": "$.code.coding[0].code"},
        )
        recorded, onset = "line->>'$.recordedDate'", "line->>'$.onsetDateTime'"
        imp.check_values(
            "raw_condition",
            condition.name,
            {recorded: "timestamp", onset: "timestamp"},
            where="line IS NOT NULL",
            unit="line",
            field_names={recorded: "recordedDate", onset: "onsetDateTime"},
        )
        in_error = con.execute(
            "SELECT count(*) FROM raw_condition WHERE line->>'$.verificationStatus.coding[0].code' = 'entered-in-error'"
        ).fetchone()[0]  # type: ignore[index]
        imp.report.count("conditions entered in error dropped", in_error)
        systems = " ".join(f"WHEN {_literal(k)} THEN {_literal(v)}" for k, v in _FHIR_SYSTEMS.items())
        system = f"CASE line->>'$.code.coding[0].system' {systems} ELSE line->>'$.code.coding[0].system' END"
        encounter_id = _reference("$.encounter.reference")
        con.execute(
            f"CREATE TEMP TABLE st_diagnoses AS SELECT patient_id, visit_id, "
            "CASE WHEN system IN ('ICD9', 'ICD10') THEN upper(replace(code, '.', '')) ELSE code END AS code, "
            "system, time FROM (SELECT "
            f"{_reference('$.subject.reference')} AS patient_id, {encounter_id} AS visit_id, "
            f"line->>'$.code.coding[0].code' AS code, {system} AS system, "
            f"coalesce({_ts(recorded)}, CASE WHEN {encounter_id} IS NULL THEN {_ts(onset)} END) AS time "
            "FROM raw_condition WHERE line IS NOT NULL AND "
            "coalesce(line->>'$.verificationStatus.coding[0].code', '') <> 'entered-in-error')"
        )
        sources["diagnoses"] = condition.name

    if observation is not None:
        imp.stage_ndjson(observation, "raw_observation", "Observation")
        imp.require_fields(
            "raw_observation",
            observation.name,
            {"subject.reference": "$.subject.reference", "code.coding[0].code": "$.code.coding[0].code"},
        )
        effective = "coalesce(line->>'$.effectiveDateTime', line->>'$.effectivePeriod.start', line->>'$.issued')"
        value = "line->>'$.valueQuantity.value'"
        imp.check_values(
            "raw_observation",
            observation.name,
            {effective: "timestamp", value: "double"},
            where="line IS NOT NULL",
            unit="line",
            field_names={effective: "effectiveDateTime", value: "valueQuantity.value"},
        )
        categories = "json_extract_string(line, '$.category[*].coding[*].code')"
        category = (
            f"CASE WHEN list_contains({categories}, 'vital-signs') THEN 'vital' "
            f"WHEN list_contains({categories}, 'laboratory') THEN 'lab' ELSE {categories}[1] END"
        )
        common = (
            f"{_reference('$.subject.reference')} AS patient_id, {_reference('$.encounter.reference')} AS visit_id, "
            f"{category} AS category, {_ts(effective)} AS time"
        )
        con.execute(
            "CREATE TEMP TABLE st_measurements AS "
            f"SELECT {common}, coalesce(line->>'$.code.coding[0].display', line->>'$.code.coding[0].code') AS item, "
            f"TRY_CAST({value} AS DOUBLE) AS value, line->>'$.valueQuantity.unit' AS unit FROM raw_observation "
            "WHERE line IS NOT NULL AND json_extract(line, '$.component') IS NULL "
            f"UNION ALL SELECT patient_id, visit_id, category, time, "
            "coalesce(component->>'$.code.coding[0].display', component->>'$.code.coding[0].code') AS item, "
            "TRY_CAST(component->>'$.valueQuantity.value' AS DOUBLE) AS value, "
            "component->>'$.valueQuantity.unit' AS unit FROM (SELECT "
            f"{common}, unnest(CAST(json_extract(line, '$.component[*]') AS JSON[])) AS component "
            "FROM raw_observation WHERE line IS NOT NULL AND json_extract(line, '$.component') IS NOT NULL)"
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE st_measurements AS SELECT patient_id, visit_id, item, category, value, "
            "unit, time FROM st_measurements"
        )
        sources["measurements"] = observation.name
    return sources

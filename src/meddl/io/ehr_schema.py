"""The EHR event store's schema: one DuckDB database file, six tables, every time a ``TIMESTAMP``.

Importers (MIMIC-IV, OMOP CDM, FHIR R4) write these tables; cohort definitions and feature extraction read them
with SQL inside DuckDB, so an extract larger than memory never passes through pandas whole.

=============  ==============================================================================================
table          columns
=============  ==============================================================================================
patients       patient_id, sex ('F' / 'M' / 'U'), birth_date, death_time (NULL if alive or unknown)
visits         visit_id, patient_id, admit_time, discharge_time, visit_type, died_in_hospital
diagnoses      patient_id, visit_id, code, system ('ICD9' / 'ICD10' / 'SNOMED' / 'OMOP' …), time (often NULL)
procedures     patient_id, visit_id, code, system, time
medications    patient_id, visit_id, code, system, start_time, end_time
measurements   patient_id, visit_id, item, category ('lab' / 'vital'), value, unit, time
=============  ==============================================================================================

Diagnosis codes of a hospital stay are usually billed at discharge: when ``time`` is NULL, a diagnosis is known
at its visit's ``discharge_time`` — never earlier. Feature extraction relies on that rule to keep a stay's own
discharge codes out of features computed during the stay.
"""

from __future__ import annotations

__all__ = ["REQUIRED_TABLES", "SCHEMA_SQL", "SCHEMA_VERSION", "TABLE_COLUMNS"]

SCHEMA_VERSION = 1

TABLE_COLUMNS: dict[str, dict[str, str]] = {
    "patients": {
        "patient_id": "VARCHAR NOT NULL PRIMARY KEY",
        "sex": "VARCHAR",
        "birth_date": "DATE",
        "death_time": "TIMESTAMP",
    },
    "visits": {
        "visit_id": "VARCHAR NOT NULL PRIMARY KEY",
        "patient_id": "VARCHAR NOT NULL",
        "admit_time": "TIMESTAMP NOT NULL",
        "discharge_time": "TIMESTAMP",
        "visit_type": "VARCHAR",
        "died_in_hospital": "BOOLEAN",
    },
    "diagnoses": {
        "patient_id": "VARCHAR NOT NULL",
        "visit_id": "VARCHAR",
        "code": "VARCHAR NOT NULL",
        "system": "VARCHAR",
        "time": "TIMESTAMP",
    },
    "procedures": {
        "patient_id": "VARCHAR NOT NULL",
        "visit_id": "VARCHAR",
        "code": "VARCHAR NOT NULL",
        "system": "VARCHAR",
        "time": "TIMESTAMP",
    },
    "medications": {
        "patient_id": "VARCHAR NOT NULL",
        "visit_id": "VARCHAR",
        "code": "VARCHAR NOT NULL",
        "system": "VARCHAR",
        "start_time": "TIMESTAMP",
        "end_time": "TIMESTAMP",
    },
    "measurements": {
        "patient_id": "VARCHAR NOT NULL",
        "visit_id": "VARCHAR",
        "item": "VARCHAR NOT NULL",
        "category": "VARCHAR",
        "value": "DOUBLE",
        "unit": "VARCHAR",
        "time": "TIMESTAMP NOT NULL",
    },
}

REQUIRED_TABLES = ("patients", "visits")

SCHEMA_SQL = (
    "\n".join(
        f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(f'{name} {kind}' for name, kind in columns.items())});"
        for table, columns in TABLE_COLUMNS.items()
    )
    + "\nCREATE TABLE IF NOT EXISTS meddl_meta (key VARCHAR PRIMARY KEY, value VARCHAR);"
)

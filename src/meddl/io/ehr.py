"""The EHR event store (one DuckDB file, schema in :mod:`meddl.io.ehr_schema`) and its importers.

Importers read a MIMIC-IV-style folder of CSVs (:func:`import_mimic`), OMOP CDM tables (:func:`import_omop`) or
FHIR R4 NDJSON files (:func:`import_fhir`) with DuckDB's own readers, stage them as temporary tables (spilled to
disk by DuckDB when larger than memory), and write the six store tables with SQL. Nothing passes through pandas.

The store is built at ``<store>.partial`` and moved into place only when the import succeeded, so a failed
import never leaves a half-written store (nor destroys the one it would have replaced).

Bad input, by rule (the same for every importer):

* A required file or column missing → :class:`MedDLError` naming the file, the column(s) and what was found.
* A value that cannot be read as a timestamp or number → :class:`MedDLError` naming the file, the row (1-based
  data row of a CSV, 1-based line of an NDJSON file), the column or field, the value and how many such values
  the column has. Timestamps with a UTC offset are converted to UTC; those without one are kept as written.
* Discharge before admission → :class:`MedDLError` naming the file, the visit id and both times
  (``on_bad_visit="error"``, the default), or the visit dropped and counted (``on_bad_visit="drop"``).
* Exact duplicates (identical in every stored column) → removed, counted per table.
* Events of a patient not in the patients table → dropped, counted. Visits likewise.
* Events whose visit id is not among the visits of their patient → kept with ``visit_id`` NULL, counted (they
  still belong to the patient's timeline). Events of a dropped visit fall under this rule.
* Visits without an admission time, measurements without a time, item or numeric value, diagnoses,
  procedures and medications without a code → dropped, counted.
* Measurements earlier than their visit's admission - 24 h or later than its discharge + 24 h → kept, counted
  as ``"out-of-window measurements (kept)"``.
* Medications whose end is before their start → end set to NULL, counted.
* Units that disagree within one measurement item: the item's majority unit wins; other units are converted
  when a conversion is known (glucose mg/dL↔mmol/L ×0.0555, creatinine mg/dL↔µmol/L ×88.4, g/dL↔g/L,
  mg/dL↔mg/L, mEq/L↔mmol/L for sodium, potassium, chloride and bicarbonate), counted per conversion;
  otherwise :class:`MedDLError` naming the item and its units with their row counts
  (``on_unit_conflict="error"``, the default), or the rows in other units dropped and counted
  (``on_unit_conflict="majority"``). Rows without a unit in an item that has one unit get that unit, counted.
* Diagnosis codes whose system is not one of :data:`KNOWN_CODE_SYSTEMS` (or is missing) → kept, counted.
  ICD codes are stored upper case without the dot (``E119``), as MIMIC writes them.

The counts land in :attr:`ImportReport.handled` (only the rules that fired) and, as JSON, in the store's
``meddl_meta`` table under ``import_report``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import duckdb

from meddl.errors import MedDLError
from meddl.io.ehr_schema import SCHEMA_SQL, SCHEMA_VERSION, TABLE_COLUMNS

__all__ = [
    "KNOWN_CODE_SYSTEMS",
    "OUT_OF_WINDOW_HOURS",
    "EventStore",
    "ImportReport",
    "import_fhir",
    "import_mimic",
    "import_omop",
]

KNOWN_CODE_SYSTEMS = frozenset({"ICD9", "ICD10", "SNOMED", "OMOP", "LOINC", "RXNORM", "ATC", "NDC"})
"""Code systems the store knows; diagnoses with any other (or none) are counted at import."""

OUT_OF_WINDOW_HOURS = 24
"""Measurements this many hours before admission or after discharge are counted as out of their visit's window."""

EVENT_TABLES = ("diagnoses", "procedures", "medications", "measurements")

OnBadVisit = Literal["error", "drop"]
OnUnitConflict = Literal["error", "majority"]

# Multiplicative unit conversions, keyed by (item family, from unit, to unit) with normalised unit spellings
# (lower case, no spaces, µ → u). Family "*" applies to every item.
_UNIT_FACTORS: dict[tuple[str, str, str], float] = {
    ("*", "g/dl", "g/l"): 10.0,
    ("*", "g/l", "g/dl"): 0.1,
    ("*", "mg/dl", "mg/l"): 10.0,
    ("*", "mg/l", "mg/dl"): 0.1,
    ("glucose", "mg/dl", "mmol/l"): 0.0555,
    ("glucose", "mmol/l", "mg/dl"): 1 / 0.0555,
    ("creatinine", "mg/dl", "umol/l"): 88.4,
    ("creatinine", "umol/l", "mg/dl"): 1 / 88.4,
    **{
        (ion, a, b): 1.0
        for ion in ("sodium", "potassium", "chloride", "bicarbonate")
        for a, b in (("meq/l", "mmol/l"), ("mmol/l", "meq/l"))
    },
}
_FAMILIES = {
    "glucose": ("glucose",),
    "creatinine": ("creatinine",),
    "sodium": ("sodium",),
    "potassium": ("potassium",),
    "chloride": ("chloride",),
    "bicarbonate": ("bicarbonate", "hco3"),
}

# OMOP standard concepts.
_OMOP_MALE, _OMOP_FEMALE = 8507, 8532
_OMOP_VISIT_TYPES = {"9201": "inpatient", "9202": "outpatient", "9203": "emergency", "262": "inpatient"}
_OMOP_VITAL_CONCEPTS = ("3027018", "3004249", "3012888", "3024171", "3016502", "40762499", "3020891", "3025315")

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


# -- the store ---------------------------------------------------------------------------------------------


class EventStore:
    """A MedDL EHR event store: one DuckDB database file holding the tables of :mod:`meddl.io.ehr_schema`.

    Use :meth:`create` for a new, empty store and :meth:`open` for an existing one; both can be used as context
    managers. SQL runs on :attr:`connection`.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, path: Path, read_only: bool) -> None:
        self._connection: duckdb.DuckDBPyConnection | None = connection
        self.path = path
        self.read_only = read_only

    @classmethod
    def create(cls, path: str | Path, overwrite: bool = False) -> EventStore:
        """Create an empty store (all tables, ``meddl_meta`` with the schema version).

        Args:
            path: the database file to create.
            overwrite: replace an existing file; otherwise an existing file is an error.

        Raises:
            MedDLError: the file exists and ``overwrite`` is False, or its folder cannot be written.
        """
        path = Path(path)
        if path.exists():
            if not overwrite:
                raise MedDLError(f"event store {path} already exists; pass overwrite=True to replace it")
            _remove_database(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = duckdb.connect(str(path))
        except (OSError, duckdb.Error) as error:
            raise MedDLError(f"cannot create event store {path}: {error}") from None
        connection.execute(SCHEMA_SQL)
        connection.execute(
            "INSERT INTO meddl_meta VALUES ('schema_version', ?), ('created_by', 'meddl')", [str(SCHEMA_VERSION)]
        )
        return cls(connection, path, read_only=False)

    @classmethod
    def open(cls, path: str | Path, read_only: bool = True) -> EventStore:
        """Open an existing store.

        Args:
            path: the database file.
            read_only: open without write access (several processes may read one store at once).

        Raises:
            MedDLError: the file is missing, not a DuckDB database, lacks a store table or ``meddl_meta``, or was
                written with another schema version.
        """
        path = Path(path)
        if not path.is_file():
            raise MedDLError(f"event store {path} does not exist")
        try:
            connection = duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as error:
            raise MedDLError(f"{path} is not a readable DuckDB event store: {error}") from None
        try:
            tables = {
                row[0]
                for row in connection.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
                ).fetchall()
            }
            missing = [name for name in (*TABLE_COLUMNS, "meddl_meta") if name not in tables]
            if missing:
                raise MedDLError(
                    f"{path} is not a MedDL event store: missing table(s) {', '.join(missing)} "
                    f"(found: {', '.join(sorted(tables)) or 'none'})"
                )
            row = connection.execute("SELECT value FROM meddl_meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                raise MedDLError(f"{path} is not a MedDL event store: meddl_meta has no schema_version")
            if row[0] != str(SCHEMA_VERSION):
                raise MedDLError(
                    f"event store {path} has schema version {row[0]!r}; this MedDL reads version {SCHEMA_VERSION}"
                )
        except BaseException:
            connection.close()
            raise
        return cls(connection, path, read_only=read_only)

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The open DuckDB connection."""
        if self._connection is None:
            raise MedDLError(f"event store {self.path} is closed")
        return self._connection

    def meta(self) -> dict[str, str]:
        """The ``meddl_meta`` key/value pairs (schema_version, source_format, import_report as JSON, …)."""
        return dict(self.connection.execute("SELECT key, value FROM meddl_meta ORDER BY key").fetchall())

    def counts(self) -> dict[str, int]:
        """Rows per store table, in schema order."""
        return {
            table: int(self.connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
            for table in TABLE_COLUMNS
        }

    def validate(self) -> list[str]:
        """Check the store's internal consistency.

        Returns:
            One sentence per problem found, each with its count and an example; empty when the store is sound.
            Checks: visits discharged before admission, visits and events whose patient is missing, events whose
            visit is missing or belongs to another patient, measurement items with several units, deaths before
            birth, visits that start after the patient's death, in-hospital deaths without a patient death time.
        """
        con = self.connection
        problems: list[str] = []

        def check(sql: str, describe: str) -> None:
            row = con.execute(f"SELECT count(*), min(example) FROM ({sql})").fetchone()
            if row is not None and row[0]:
                problems.append(f"{row[0]} {describe}, e.g. {row[1]}")

        check(
            "SELECT format('visit {} (admit {}, discharge {})', visit_id, admit_time, discharge_time) AS example "
            "FROM visits WHERE discharge_time < admit_time",
            "visit(s) discharged before admission",
        )
        check(
            "SELECT format('visit {} of patient {}', visit_id, patient_id) AS example FROM visits "
            "WHERE patient_id NOT IN (SELECT patient_id FROM patients)",
            "visit(s) whose patient is not in patients",
        )
        for table in EVENT_TABLES:
            check(
                f"SELECT format('patient {{}}', patient_id) AS example FROM {table} "
                "WHERE patient_id NOT IN (SELECT patient_id FROM patients)",
                f"{table} row(s) whose patient is not in patients",
            )
            check(
                f"SELECT format('visit {{}} of patient {{}}', e.visit_id, e.patient_id) AS example FROM {table} e "
                "LEFT JOIN visits v ON v.visit_id = e.visit_id AND v.patient_id = e.patient_id "
                "WHERE e.visit_id IS NOT NULL AND v.visit_id IS NULL",
                f"{table} row(s) whose visit is not among their patient's visits",
            )
        check(
            "SELECT format('{}: {}', item, string_agg(DISTINCT unit, ', ' ORDER BY unit)) AS example "
            "FROM measurements GROUP BY item HAVING count(DISTINCT unit) > 1",
            "measurement item(s) with more than one unit",
        )
        check(
            "SELECT format('patient {} (born {}, died {})', patient_id, birth_date, death_time) AS example "
            "FROM patients WHERE death_time < birth_date",
            "patient(s) who died before birth",
        )
        check(
            "SELECT format('visit {} (admit {}, patient died {})', v.visit_id, v.admit_time, p.death_time) AS example "
            "FROM visits v JOIN patients p USING (patient_id) WHERE v.admit_time > p.death_time + INTERVAL 1 DAY",
            "visit(s) admitted after their patient's death",
        )
        check(
            "SELECT format('visit {} of patient {}', v.visit_id, v.patient_id) AS example "
            "FROM visits v JOIN patients p USING (patient_id) WHERE v.died_in_hospital AND p.death_time IS NULL",
            "in-hospital death(s) whose patient has no death_time",
        )
        return problems

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._connection is None else ("read-only" if self.read_only else "writable")
        return f"EventStore({str(self.path)!r}, {state})"


@dataclass
class ImportReport:
    """What an import read, wrote and handled.

    Attributes:
        source_format: ``"mimic"``, ``"omop"`` or ``"fhir"``.
        store_path: the store written.
        files_read: source files read, in reading order.
        rows_read: data rows (CSV) or non-blank lines (NDJSON) read per source file name.
        rows_written: rows per store table.
        handled: counted, documented handling (module docstring), only the rules that fired.
    """

    source_format: str
    store_path: str
    files_read: list[str] = field(default_factory=list)
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_written: dict[str, int] = field(default_factory=dict)
    handled: dict[str, int] = field(default_factory=dict)

    def count(self, rule: str, n: int) -> None:
        """Add ``n`` to the count of ``rule`` (nothing when ``n`` is 0)."""
        if n:
            self.handled[rule] = self.handled.get(rule, 0) + int(n)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able copy."""
        return asdict(self)


# -- shared import machinery -------------------------------------------------------------------------------


def _remove_database(path: Path) -> None:
    for candidate in (path, Path(f"{path}.wal")):
        if candidate.is_dir():
            shutil.rmtree(candidate)
        elif candidate.exists():
            candidate.unlink()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ts(expression: str) -> str:
    """SQL reading a VARCHAR as a TIMESTAMP: ISO dates and times, a UTC offset converted to UTC (TimeZone=UTC)."""
    return f"TRY_CAST(TRY_CAST({expression} AS TIMESTAMPTZ) AS TIMESTAMP)"


def _day_end(expression: str) -> str:
    """A date-only end time read as the end of that day (a visit ending "on 3 May" ends at 23:59:59)."""
    return f"(TRY_CAST({expression} AS DATE) + INTERVAL 1 DAY - INTERVAL 1 SECOND)"


_PARSERS = {
    "timestamp": (_ts, "a timestamp"),
    "date": (lambda e: f"TRY_CAST({e} AS DATE)", "a date"),
    "double": (lambda e: f"TRY_CAST({e} AS DOUBLE)", "a number"),
    "integer": (lambda e: f"TRY_CAST(TRY_CAST({e} AS DOUBLE) AS BIGINT)", "an integer"),
}


class _Importer:
    """One import: a connection to the partial store, the report, and the staged-table helpers."""

    def __init__(self, store: EventStore, report: ImportReport) -> None:
        self.con = store.connection
        self.report = report
        self.con.execute("SET TimeZone = 'UTC'")

    # ---- CSV files

    def find(self, folder: Path, stem: str, suffixes: Sequence[str], *, required: bool) -> Path | None:
        for suffix in suffixes:
            for name in (f"{stem}{suffix}", f"{stem.upper()}{suffix}"):
                candidate = folder / name
                if candidate.is_file():
                    return candidate
        if required:
            present = sorted(p.name for p in folder.iterdir() if p.is_file())
            raise MedDLError(
                f"{folder}: required file {stem}{suffixes[0]} (or {', '.join(stem + s for s in suffixes[1:])}) "
                f"not found (found: {', '.join(present) or 'no files'})"
            )
        return None

    def stage_csv(
        self,
        path: Path,
        table: str,
        required: Sequence[str],
        optional: Sequence[str] = (),
        one_of: Sequence[Sequence[str]] = (),
    ) -> set[str]:
        """Copy the needed columns of a CSV, all as VARCHAR (blank → NULL), into temp table ``table``.

        Column names are matched case-insensitively and stored lower case. ``rowid + 1`` is the data row.

        Returns:
            The lower-case names of the columns staged (required, present optional ones, present one-of ones).
        """
        reader = (
            f"read_csv({_literal(str(path))}, header = true, all_varchar = true, delim = ',', quote = '\"', "
            "escape = '\"', null_padding = true)"
        )
        try:
            description = self.con.execute(f"SELECT * FROM {reader} LIMIT 0").description
        except duckdb.Error as error:
            raise MedDLError(f"{path.name}: cannot read as CSV: {error}") from None
        found = {str(column[0]).strip().lower(): str(column[0]) for column in description}
        missing = [name for name in required if name not in found]
        missing += [" or ".join(group) for group in one_of if not any(name in found for name in group)]
        if missing:
            raise MedDLError(
                f"{path.name}: missing required column(s) {', '.join(repr(m) for m in missing)} "
                f"(found: {', '.join(found) or 'none'})"
            )
        wanted = [*required, *(n for n in optional if n in found)]
        wanted += [n for group in one_of for n in group if n in found and n not in wanted]
        columns = ", ".join(f"NULLIF(trim({_quote(found[n])}), '') AS {_quote(n)}" for n in wanted)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {columns} FROM {reader}")
        except duckdb.Error as error:
            raise MedDLError(f"{path.name}: cannot read as CSV: {error}") from None
        self._read(path, table)
        return set(wanted)

    def _read(self, path: Path, table: str) -> None:
        rows = self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
        self.report.files_read.append(str(path))
        self.report.rows_read[path.name] = int(rows)

    def check_values(
        self,
        table: str,
        file_name: str,
        columns: dict[str, str],
        *,
        where: str = "TRUE",
        unit: str = "row",
        field_names: dict[str, str] | None = None,
    ) -> None:
        """Raise on the first value of each column that its parser cannot read.

        Args:
            table: the staged table (``rowid + 1`` is the row / line).
            file_name: named in the message.
            columns: column (or SQL expression over the staged table) → parser kind.
            where: only rows matching this SQL are checked.
            unit: ``"row"`` (CSV) or ``"line"`` (NDJSON).
            field_names: how to name each column in the message (default: the column).
        """
        for column, kind in columns.items():
            parse, description = _PARSERS[kind]
            shown = (field_names or {}).get(column, column)
            query = (
                f"SELECT rowid + 1, {column}, count(*) OVER () FROM {table} "
                f"WHERE ({where}) AND {column} IS NOT NULL AND {parse(column)} IS NULL ORDER BY rowid LIMIT 1"
            )
            bad = self.con.execute(query).fetchone()
            if bad is not None:
                others = f" ({bad[2]} such values in this column)" if bad[2] > 1 else ""
                label = "field" if unit == "line" else "column"
                raise MedDLError(
                    f"{file_name} {unit} {bad[0]}, {label} '{shown}': cannot read {bad[1]!r} as {description}{others}"
                )

    # ---- NDJSON files

    def stage_ndjson(self, path: Path, table: str, resource_type: str) -> None:
        """Copy an NDJSON file line by line into temp table ``table`` (column ``line`` JSON, ``rowid + 1`` = line).

        Raises:
            MedDLError: a line is not valid JSON or is another resourceType (line number and a snippet).
        """
        reader = (
            f"read_csv({_literal(str(path))}, columns = {{'line': 'VARCHAR'}}, header = false, delim = '\x01', "
            "quote = '', escape = '', auto_detect = false, strict_mode = false, max_line_size = 134217728)"
        )
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table}_text AS SELECT line FROM {reader}")
        except duckdb.Error as error:
            raise MedDLError(f"{path.name}: cannot read as NDJSON: {error}") from None
        bad = self.con.execute(
            f"SELECT rowid + 1, line FROM {table}_text WHERE line IS NOT NULL AND NOT json_valid(line) "
            "ORDER BY rowid LIMIT 1"
        ).fetchone()
        if bad is not None:
            raise MedDLError(f"{path.name} line {bad[0]}: not valid JSON: {_snippet(bad[1])}")
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT CAST(line AS JSON) AS line FROM {table}_text "
            "ORDER BY rowid"
        )
        self.con.execute(f"DROP TABLE {table}_text")
        wrong = self.con.execute(
            f"SELECT rowid + 1, line->>'$.resourceType' FROM {table} WHERE line IS NOT NULL AND "
            f"coalesce(line->>'$.resourceType', '') <> {_literal(resource_type)} ORDER BY rowid LIMIT 1"
        ).fetchone()
        if wrong is not None:
            raise MedDLError(
                f"{path.name} line {wrong[0]}: resourceType is {wrong[1]!r}, expected {resource_type!r} "
                f"(one resource type per file)"
            )
        rows = self.con.execute(f"SELECT count(line) FROM {table}").fetchone()[0]  # type: ignore[index]
        self.report.files_read.append(str(path))
        self.report.rows_read[path.name] = int(rows)

    def require_fields(self, table: str, file_name: str, fields: dict[str, str]) -> None:
        """Raise on the first line lacking one of ``fields`` (field name → JSON path)."""
        for name, json_path in fields.items():
            bad = self.con.execute(
                f"SELECT rowid + 1, json_keys(line) FROM {table} WHERE line IS NOT NULL AND "
                f"line->>{_literal(json_path)} IS NULL ORDER BY rowid LIMIT 1"
            ).fetchone()
            if bad is not None:
                raise MedDLError(
                    f"{file_name} line {bad[0]}: missing required field '{name}' "
                    f"(found fields: {', '.join(bad[1] or []) or 'none'})"
                )

    # ---- finishing: staged standard tables → store tables

    def finish(
        self,
        sources: dict[str, str],
        *,
        on_bad_visit: OnBadVisit,
        on_unit_conflict: OnUnitConflict,
    ) -> None:
        """Write the store tables from the staged ``st_<table>`` temp tables (same columns as the store's).

        Args:
            sources: store table → source file name, for messages.
            on_bad_visit: ``"error"`` or ``"drop"`` for visits discharged before admission.
            on_unit_conflict: ``"error"`` or ``"majority"`` for units that cannot be converted.
        """
        con, report = self.con, self.report
        self._write_patients(sources["patients"])
        self._write_visits(sources["visits"], on_bad_visit)
        # A visit that ended in death gives its patient a death time when the source has none.
        filled = con.execute(
            "SELECT count(*) FROM patients p WHERE p.death_time IS NULL AND EXISTS "
            "(SELECT 1 FROM visits v WHERE v.patient_id = p.patient_id AND v.died_in_hospital "
            "AND v.discharge_time IS NOT NULL)"
        ).fetchone()[0]  # type: ignore[index]
        if filled:
            con.execute(
                "UPDATE patients SET death_time = d.death FROM (SELECT patient_id, max(discharge_time) AS death "
                "FROM visits WHERE died_in_hospital GROUP BY patient_id) d "
                "WHERE patients.patient_id = d.patient_id AND patients.death_time IS NULL AND d.death IS NOT NULL"
            )
            report.count("patient death times taken from the discharge of an in-hospital death", filled)
        for table in EVENT_TABLES:
            if self._staged(table):
                self._write_events(table, sources.get(table, table), on_unit_conflict)
        report.rows_written = self._counts()

    def _staged(self, table: str) -> bool:
        return bool(
            self.con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_catalog = 'temp'",
                [f"st_{table}"],
            ).fetchone()[0]  # type: ignore[index]
        )

    def _counts(self) -> dict[str, int]:
        return {
            table: int(self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
            for table in TABLE_COLUMNS
        }

    def _dedupe_ids(self, table: str, key: str, file_name: str, singular: str) -> None:
        """Exact duplicate rows removed (counted); one id with differing rows is an error naming it."""
        con = self.con
        before = con.execute(f"SELECT count(*) FROM st_{table}").fetchone()[0]  # type: ignore[index]
        con.execute(f"CREATE OR REPLACE TEMP TABLE st_{table} AS SELECT DISTINCT * FROM st_{table}")
        after = con.execute(f"SELECT count(*) FROM st_{table}").fetchone()[0]  # type: ignore[index]
        self.report.count(f"duplicate {singular} rows removed", before - after)
        clash = con.execute(
            f"SELECT {key}, count(*) FROM st_{table} WHERE {key} IS NOT NULL GROUP BY {key} HAVING count(*) > 1 "
            f"ORDER BY {key} LIMIT 1"
        ).fetchone()
        if clash is not None:
            rows = con.execute(f"SELECT * FROM st_{table} WHERE {key} = ? LIMIT 2", [clash[0]]).fetchall()
            raise MedDLError(
                f"{file_name}: {singular} id {clash[0]!r} appears {clash[1]} times with different values, "
                f"e.g. {rows[0]} and {rows[1]}"
            )
        missing = con.execute(f"SELECT count(*) FROM st_{table} WHERE {key} IS NULL").fetchone()[0]  # type: ignore[index]
        if missing:
            con.execute(f"DELETE FROM st_{table} WHERE {key} IS NULL")
            self.report.count(f"{singular} rows without an id dropped", missing)

    def _write_patients(self, file_name: str) -> None:
        self._dedupe_ids("patients", "patient_id", file_name, "patient")
        self.con.execute("INSERT INTO patients SELECT patient_id, sex, birth_date, death_time FROM st_patients")

    def _write_visits(self, file_name: str, on_bad_visit: OnBadVisit) -> None:
        con, report = self.con, self.report
        self._dedupe_ids("visits", "visit_id", file_name, "visit")
        no_admit = con.execute("SELECT count(*) FROM st_visits WHERE admit_time IS NULL").fetchone()[0]  # type: ignore[index]
        report.count("visits without an admission time dropped", no_admit)
        bad = con.execute(
            "SELECT visit_id, admit_time, discharge_time, count(*) OVER () FROM st_visits "
            "WHERE discharge_time < admit_time ORDER BY admit_time, visit_id LIMIT 1"
        ).fetchone()
        if bad is not None and on_bad_visit == "error":
            others = f"; {bad[3] - 1} more visit(s) like it" if bad[3] > 1 else ""
            raise MedDLError(
                f"{file_name}: visit {bad[0]!r} is discharged before admission (admit {bad[1]}, discharge {bad[2]})"
                f"{others}; pass on_bad_visit='drop' to drop such visits (counted)"
            )
        report.count("visits discharged before admission dropped", bad[3] if bad is not None else 0)
        sound = "admit_time IS NOT NULL AND (discharge_time IS NULL OR discharge_time >= admit_time)"
        orphans = con.execute(
            f"SELECT count(*) FROM st_visits WHERE {sound} "
            "AND (patient_id IS NULL OR patient_id NOT IN (SELECT patient_id FROM patients))"
        ).fetchone()[0]  # type: ignore[index]
        report.count("visits whose patient is not in patients dropped", orphans)
        con.execute(
            "INSERT INTO visits SELECT visit_id, patient_id, admit_time, discharge_time, visit_type, died_in_hospital "
            f"FROM st_visits WHERE {sound} AND patient_id IN (SELECT patient_id FROM patients)"
        )

    def _write_events(self, table: str, file_name: str, on_unit_conflict: OnUnitConflict) -> None:
        con, report = self.con, self.report
        columns = list(TABLE_COLUMNS[table])
        key = "item" if table == "measurements" else "code"
        required = ["s.patient_id", f"s.{key}"] + (["s.time", "s.value"] if table == "measurements" else [])
        reason_sql = (
            "CASE WHEN p.patient_id IS NULL THEN 'whose patient is not in patients' "
            f"WHEN s.{key} IS NULL THEN 'without {'an item' if key == 'item' else 'a code'}' "
            + (
                "WHEN s.time IS NULL THEN 'without a time' WHEN s.value IS NULL THEN 'without a numeric value' "
                if table == "measurements"
                else ""
            )
            + "END"
        )
        for reason, n in con.execute(
            f"SELECT {reason_sql} AS reason, count(*) FROM st_{table} s LEFT JOIN patients p USING (patient_id) "
            "GROUP BY reason HAVING reason IS NOT NULL ORDER BY reason"
        ).fetchall():
            report.count(f"{table} {reason} dropped", n)
        kept_where = " AND ".join(f"{c} IS NOT NULL" for c in required)
        unknown_visit = con.execute(
            f"SELECT count(*) FROM st_{table} s JOIN patients p USING (patient_id) "
            "LEFT JOIN visits v ON v.visit_id = s.visit_id AND v.patient_id = s.patient_id "
            f"WHERE {kept_where} AND s.visit_id IS NOT NULL AND v.visit_id IS NULL"
        ).fetchone()[0]  # type: ignore[index]
        report.count(
            f"{table} whose visit is not among the patient's visits (kept, visit_id set to NULL)", unknown_visit
        )
        selected = {c: f"s.{c}" for c in columns}
        selected["visit_id"] = "v.visit_id"
        if table == "medications":
            backwards = con.execute(f"SELECT count(*) FROM st_{table} s WHERE s.end_time < s.start_time").fetchone()[0]  # type: ignore[index]
            report.count("medications ending before they start (end_time set to NULL)", backwards)
            selected["end_time"] = "CASE WHEN s.end_time < s.start_time THEN NULL ELSE s.end_time END"
        joins = ""
        if table == "measurements":
            joins, unit_kept = self._unit_plan(file_name, kept_where, on_unit_conflict)
            kept_where = f"{kept_where} AND {unit_kept}"
            selected["value"] = "s.value * coalesce(u.factor, 1.0)"
            selected["unit"] = "coalesce(u.target_unit, s.unit)"
        select = ", ".join(f"{expression} AS {name}" for name, expression in selected.items())
        kept = con.execute(
            f"SELECT count(*) FROM st_{table} s JOIN patients p USING (patient_id) {joins} WHERE {kept_where}"
        ).fetchone()[0]  # type: ignore[index]
        con.execute(
            f"INSERT INTO {table} SELECT DISTINCT {select} FROM st_{table} s JOIN patients p USING (patient_id) "
            f"LEFT JOIN visits v ON v.visit_id = s.visit_id AND v.patient_id = s.patient_id {joins} WHERE {kept_where}"
        )
        written = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
        report.count(f"duplicate {table} rows removed", kept - written)
        if table == "diagnoses":
            systems = ", ".join(_literal(s) for s in sorted(KNOWN_CODE_SYSTEMS))
            unknown = con.execute(
                f"SELECT count(*) FROM diagnoses WHERE system IS NULL OR system NOT IN ({systems})"
            ).fetchone()[0]  # type: ignore[index]
            report.count("diagnoses with an unknown code system (kept)", unknown)
        if table == "measurements":
            outside = con.execute(
                "SELECT count(*) FROM measurements m JOIN visits v USING (visit_id) WHERE "
                f"m.time < v.admit_time - INTERVAL {OUT_OF_WINDOW_HOURS} HOUR OR "
                f"m.time > v.discharge_time + INTERVAL {OUT_OF_WINDOW_HOURS} HOUR"
            ).fetchone()[0]  # type: ignore[index]
            report.count("out-of-window measurements (kept)", outside)
        con.execute(f"DROP TABLE st_{table}")

    def _unit_plan(self, file_name: str, kept_where: str, on_unit_conflict: OnUnitConflict) -> tuple[str, str]:
        """Decide, per (item, unit), a factor and target unit or a drop.

        Returns:
            The SQL join applying the plan (alias ``u``) and the condition that drops minority-unit rows.
        """
        con = self.con
        norm = "replace(replace(replace(lower(s.unit), ' ', ''), 'µ', 'u'), 'μ', 'u')"
        rows = con.execute(
            f"SELECT s.item, {norm} AS unit_key, min(s.unit), count(*) FROM st_measurements s "
            f"JOIN patients p USING (patient_id) WHERE {kept_where} GROUP BY ALL ORDER BY 1, 4 DESC, 2 NULLS LAST"
        ).fetchall()
        by_item: dict[str, list[tuple[str | None, str | None, int]]] = {}
        for item, unit_key, unit, n in rows:
            by_item.setdefault(item, []).append((unit_key, unit, int(n)))
        plan: list[tuple[str, str | None, float | None, str | None]] = []  # item, unit_key, factor, target unit
        conflicts: list[str] = []
        for item, units in by_item.items():
            named = [u for u in units if u[0] is not None]
            if not named:
                continue
            target_key, target_unit, _ = named[0]  # majority (ties: alphabetical key)
            family = _family(item)
            for unit_key, unit, n in units:
                if unit_key is None:
                    plan.append((item, None, 1.0, target_unit))
                    self.report.count("measurements without a unit given their item's unit", n)
                elif unit_key == target_key:
                    plan.append((item, unit_key, 1.0, target_unit))  # one spelling for the item
                else:
                    factor = _unit_factor(family, unit_key, target_key)
                    if factor is not None:
                        plan.append((item, unit_key, factor, target_unit))
                        self.report.count(f"measurements converted from {unit} to {target_unit} ({item})", n)
                    else:
                        plan.append((item, unit_key, None, None))
                        conflicts.append(item)
        if conflicts and on_unit_conflict == "error":
            item = conflicts[0]
            listed = ", ".join(f"{unit} ({_rows(n)})" for _, unit, n in by_item[item] if unit is not None)
            more = f"; {len(set(conflicts)) - 1} more item(s) like it" if len(set(conflicts)) > 1 else ""
            raise MedDLError(
                f"{file_name}: measurement item {item!r} has units that disagree and no known conversion: {listed}"
                f"{more}; pass on_unit_conflict='majority' to keep the majority unit and drop the others (counted)"
            )
        for item, unit_key, factor, _ in plan:
            if factor is None:
                n, unit = next((n, unit) for key, unit, n in by_item[item] if key == unit_key)
                self.report.count(f"measurements in a minority unit without conversion dropped ({item}: {unit})", n)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE unit_plan "
            "(item VARCHAR, unit_key VARCHAR, factor DOUBLE, target_unit VARCHAR)"
        )
        if plan:  # a missing unit is keyed '' so that the join is a plain equi-join
            con.executemany("INSERT INTO unit_plan VALUES (?, ?, ?, ?)", [(i, k or "", f, t) for i, k, f, t in plan])
        # A planned (item, unit) with a NULL factor is a minority unit without conversion: its rows are dropped.
        return (
            f"LEFT JOIN unit_plan u ON u.item = s.item AND u.unit_key = coalesce({norm}, '')",
            "(u.item IS NULL OR u.factor IS NOT NULL)",
        )


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _unit_factor(family: str, unit_key: str, target_key: str | None) -> float | None:
    if target_key is None:
        return None
    return _UNIT_FACTORS.get((family, unit_key, target_key), _UNIT_FACTORS.get(("*", unit_key, target_key)))


def _family(item: str) -> str:
    lowered = item.lower()
    for family, words in _FAMILIES.items():
        if any(word in lowered for word in words):
            return family
    return "*"


def _snippet(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _run_import(
    source_format: str,
    folder: str | Path,
    store_path: str | Path,
    overwrite: bool,
    body: Any,
    on_bad_visit: OnBadVisit,
    on_unit_conflict: OnUnitConflict,
) -> ImportReport:
    """Check arguments, build the store at ``<store>.partial`` with ``body(importer, folder)``, move it in place."""
    folder, store_path = Path(folder), Path(store_path)
    if on_bad_visit not in ("error", "drop"):
        raise MedDLError(f"on_bad_visit must be 'error' or 'drop', got {on_bad_visit!r}")
    if on_unit_conflict not in ("error", "majority"):
        raise MedDLError(f"on_unit_conflict must be 'error' or 'majority', got {on_unit_conflict!r}")
    if not folder.is_dir():
        raise MedDLError(f"{source_format} source folder {folder} does not exist or is not a folder")
    if store_path.exists() and not overwrite:
        raise MedDLError(f"event store {store_path} already exists; pass overwrite=True to replace it")
    partial = store_path.with_name(store_path.name + ".partial")
    report = ImportReport(source_format=source_format, store_path=str(store_path))
    store = EventStore.create(partial, overwrite=True)
    try:
        importer = _Importer(store, report)
        sources = body(importer, folder)
        importer.finish(sources, on_bad_visit=on_bad_visit, on_unit_conflict=on_unit_conflict)
        con = store.connection
        con.execute(
            "INSERT INTO meddl_meta VALUES ('source_format', ?), ('source_folder', ?), ('import_report', ?)",
            [source_format, str(folder.resolve()), json.dumps(report.as_dict())],
        )
        con.execute("CHECKPOINT")
    except BaseException:
        store.close()
        _remove_database(partial)
        raise
    store.close()
    if store_path.exists():
        _remove_database(store_path)
    os.replace(partial, store_path)
    return report


# -- MIMIC-IV ----------------------------------------------------------------------------------------------

_CSV = (".csv", ".csv.gz")


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
        MedDLError: a bad-input rule of the module docstring.
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


# -- OMOP CDM ----------------------------------------------------------------------------------------------


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
        MedDLError: a bad-input rule of the module docstring.
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


# -- FHIR R4 -----------------------------------------------------------------------------------------------

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
        MedDLError: a bad-input rule of the module docstring; a line that is not JSON or holds another
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

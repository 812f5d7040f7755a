"""The machinery every EHR importer shares: the import report, the staging and writing of tables, the partial store.

Each source format (:mod:`meddl.io._ehr_mimic`, :mod:`meddl.io._ehr_omop`, :mod:`meddl.io._ehr_fhir`) stages its
files as ``st_<table>`` temp tables through an :class:`_Importer`; :func:`_run_import` builds the store at
``<store>.partial`` and moves it into place. The bad-input rules are listed in the :mod:`meddl.io.ehr` docstring.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb

from meddl.errors import MedDLError
from meddl.io._ehr_sql import _PARSERS, _family, _literal, _quote, _rows, _snippet, _unit_factor
from meddl.io._ehr_store import EVENT_TABLES, KNOWN_CODE_SYSTEMS, OUT_OF_WINDOW_HOURS, EventStore, _remove_database
from meddl.io.ehr_schema import TABLE_COLUMNS

__all__ = ["ImportReport", "OnBadVisit", "OnUnitConflict"]

OnBadVisit = Literal["error", "drop"]
OnUnitConflict = Literal["error", "majority"]
_CSV = (".csv", ".csv.gz")


@dataclass
class ImportReport:
    """What an import read, wrote and handled.

    Attributes:
        source_format: ``"mimic"``, ``"omop"`` or ``"fhir"``.
        store_path: the store written.
        files_read: source files read, in reading order.
        rows_read: data rows (CSV) or non-blank lines (NDJSON) read per source file name.
        rows_written: rows per store table.
        handled: counted, documented handling (:mod:`meddl.io.ehr` docstring), only the rules that fired.
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

        Column names are matched case-insensitively and stored lower case. ``rowid + 2`` is the row a spreadsheet
        shows (the header is row 1; blank lines, which DuckDB skips, would shift it).

        Raises:
            MedDLError: the file cannot be read as CSV, lacks a required column, or has a row with more or fewer
                fields than the header or that DuckDB cannot parse (naming the first such row).

        Returns:
            The lower-case names of the columns staged (required, present optional ones, present one-of ones).
        """
        # The first line is the header and no line is a comment (skip = 0, comment = '': DuckDB's sniffer may
        # otherwise skip to a later line it finds more regular, or take '#' for a comment). A row with too few or
        # too many fields is neither padded nor read: DuckDB stores it in ``rejects`` with its row number (header =
        # 1, a quoted line break kept inside its row) for the message.
        rejects = f"{table}_rejects"
        reader = (
            f"read_csv({_literal(str(path))}, header = true, skip = 0, comment = '', all_varchar = true, "
            "delim = ',', quote = '\"', escape = '\"', null_padding = false, strict_mode = true, "
            f"store_rejects = true, rejects_table = '{rejects}', rejects_scan = '{rejects}_scans')"
        )
        self.con.execute(f"DROP TABLE IF EXISTS {rejects}; DROP TABLE IF EXISTS {rejects}_scans")
        try:
            description = self.con.execute(f"SELECT * FROM {reader} LIMIT 0").description
        except duckdb.Error as error:
            raise MedDLError(f"{path.name}: cannot read as CSV: {_first_line(error)}") from None
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
            raise MedDLError(f"{path.name}: cannot read as CSV: {_first_line(error)}") from None
        self._check_rejects(path, rejects, len(description))
        self._read(path, table)
        return set(wanted)

    def _check_rejects(self, path: Path, rejects: str, width: int) -> None:
        """Raise on the first row DuckDB rejected while reading ``path`` (wrong field count, bad quoting…)."""
        bad = self.con.execute(
            f"SELECT line, error_type, csv_line, error_message, count(DISTINCT line) OVER () FROM {rejects} "
            "ORDER BY line, column_idx LIMIT 1"
        ).fetchone()
        self.con.execute(f"DROP TABLE IF EXISTS {rejects}; DROP TABLE IF EXISTS {rejects}_scans")
        if bad is None:
            return
        row, kind, text, reason, n = bad
        others = f" ({n} such rows in this file)" if n > 1 else ""
        if kind in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
            # DuckDB's copy of the row may start with the "\n" of a "\r\n" line end
            fields = len(next(csv.reader(io.StringIO((text or "").strip("\r\n"))), []))
            raise MedDLError(
                f"{path.name} row {row}: has {fields} field(s) but the header has {width}; a missing or extra field "
                f"would shift the values after it into the wrong columns — fix the row (an empty field is ',,'){others}"
            )
        raise MedDLError(f"{path.name} row {row}: cannot read as CSV: {_first_line(reason)}{others}")

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
            table: the staged table (``rowid + 2`` is the CSV row as a spreadsheet shows it, ``rowid + 1`` the
                NDJSON line).
            file_name: named in the message.
            columns: column (or SQL expression over the staged table) → parser kind.
            where: only rows matching this SQL are checked.
            unit: ``"row"`` (CSV) or ``"line"`` (NDJSON).
            field_names: how to name each column in the message (default: the column).
        """
        first = 1 if unit == "line" else 2  # an NDJSON line is counted from 1; a CSV's header is row 1
        for column, kind in columns.items():
            parse, description = _PARSERS[kind]
            shown = (field_names or {}).get(column, column)
            query = (
                f"SELECT rowid + {first}, {column}, count(*) OVER () FROM {table} "
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


def _first_line(error: BaseException | str) -> str:
    """The first line of a (DuckDB) error: enough to say what went wrong, on the one line a message has."""
    return next(iter(str(error).strip().splitlines()), type(error).__name__)

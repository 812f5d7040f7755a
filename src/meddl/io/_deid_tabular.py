"""The table and event-store halves of :mod:`meddl.io.deid`: shifting a table's date column, copying a store."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from meddl.errors import MedDLError
from meddl.io._deid_common import date_offset_days, pseudonym
from meddl.io.ehr_schema import TABLE_COLUMNS

__all__ = ["copy_store", "shift_date_column"]


def shift_date_column(column: pd.Series, days: pd.Series, path: Path, name: str) -> tuple[pd.Series, int, int]:
    """The column shifted by ``days`` per row, written back in its own kind; (column, values shifted, emptied)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed, kind = column, "datetime"
    elif pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        raise MedDLError(f"{path}: column {name!r} (--date-column) holds numbers, not dates")
    elif any(isinstance(v, date) for v in column.dropna().head(1)):
        parsed = pd.to_datetime(column, errors="coerce")
        kind = "date" if not isinstance(column.dropna().iloc[0], datetime) else "datetime"
    else:
        text = column.map(lambda v: str(v).strip() if v is not None and not pd.isna(v) and str(v).strip() else None)
        try:
            parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        except (ValueError, TypeError) as error:  # e.g. values with different UTC offsets
            raise MedDLError(f"{path}: column {name!r} (--date-column) cannot be read as dates: {error}") from None
        bad = text.notna() & parsed.isna()
        if bad.any():
            row = bad.idxmax()
            raise MedDLError(
                f"{path}: column {name!r} (--date-column) has {int(bad.sum())} value(s) that are not ISO 8601 dates "
                f"(YYYY-MM-DD[ HH:MM[:SS]]), e.g. {text[row]!r} (row {row})"
            )
        kind = "text"
    no_patient = int((parsed.notna() & days.isna()).sum())
    moved = parsed + pd.to_timedelta(days, unit="D")
    count = int(moved.notna().sum())
    if kind == "datetime":
        return moved, count, no_patient
    if kind == "date":
        return moved.map(lambda t: None if pd.isna(t) else t.date()).astype(object), count, no_patient
    # Text is written back as it came: a date as YYYY-MM-DD, a date and time in ISO 8601 with its separator.
    formatted = [
        None if pd.isna(t) else t.strftime("%Y-%m-%d") if len(original) <= 10 else t.isoformat(original[10])
        for t, original in zip(moved, text, strict=True)
    ]
    return pd.Series(formatted, index=column.index, dtype=object), count, no_patient


def copy_store(
    source: Path, target: Path, salt: bytes, source_format: str | None, method: dict[str, Any]
) -> dict[str, Any]:
    """Write the de-identified copy of store ``source`` at ``target``: rows per table, ids and dates counted."""
    from meddl.io._ehr_store import EventStore

    with EventStore.create(target, overwrite=True) as store:
        con = store.connection
        con.execute(f"ATTACH '{str(source.resolve()).replace(chr(39), chr(39) * 2)}' AS src (READ_ONLY)")
        maps: dict[str, int] = {}
        for column, alias in (("patient_id", "patient_map"), ("visit_id", "visit_map")):
            union = " UNION ".join(
                f"SELECT {column} AS original FROM src.{table}"
                for table, columns in TABLE_COLUMNS.items()
                if column in columns
            )
            originals = [
                row[0] for row in con.execute(f"SELECT * FROM ({union}) WHERE original IS NOT NULL").fetchall()
            ]
            keys = [pseudonym(salt, str(value)) for value in originals]
            if len(set(keys)) != len(keys):
                raise MedDLError(f"{source}: two values of {column} got the same key; report this (use a new salt)")
            mapping = pd.DataFrame({"original": pd.Series(originals, dtype=object), "key": keys})
            if column == "patient_id":
                mapping["days"] = [date_offset_days(salt, str(value)) for value in originals]
            con.register(f"{alias}_frame", mapping)
            days = ", CAST(days AS INTEGER) AS days" if column == "patient_id" else ""
            con.execute(
                f"CREATE TEMP TABLE {alias} AS "
                f"SELECT CAST(original AS VARCHAR) AS original, key{days} FROM {alias}_frame"
            )
            con.unregister(f"{alias}_frame")
            maps[column] = len(originals)
        rows: dict[str, int] = {}
        shifted: dict[str, int] = {}
        for table, columns in TABLE_COLUMNS.items():
            select = []
            for column, sql_type in columns.items():
                if column == "patient_id":
                    select.append("p.key")
                elif column == "visit_id":
                    select.append("v.key")
                elif sql_type.startswith("DATE"):
                    select.append(f"t.{column} + p.days")
                elif sql_type.startswith("TIMESTAMP"):
                    select.append(f"t.{column} + to_days(p.days)")
                else:
                    select.append(f"t.{column}")
                if sql_type.startswith(("DATE", "TIMESTAMP")):
                    count = con.execute(f"SELECT count({column}) FROM src.{table}").fetchone()
                    shifted[f"{table}.{column}"] = int(count[0]) if count else 0
            joins = "JOIN patient_map p ON p.original = t.patient_id"
            if "visit_id" in columns:
                joins += " LEFT JOIN visit_map v ON v.original = t.visit_id"
            con.execute(f"INSERT INTO main.{table} SELECT {', '.join(select)} FROM src.{table} t {joins}")
            rows[table] = store.counts()[table]
            expected = con.execute(f"SELECT count(*) FROM src.{table}").fetchone()
            assert expected is not None and expected[0] == rows[table], f"{table}: rows lost in the copy"
        method_json = json.dumps(method)
        con.execute("INSERT INTO meddl_meta VALUES ('deidentified', ?)", [method_json])
        if source_format is not None:
            con.execute("INSERT INTO meddl_meta VALUES ('source_format', ?)", [source_format])
        con.execute("DETACH src")
        con.execute("CHECKPOINT")
    return {"rows": rows, "patients": maps["patient_id"], "visits": maps["visit_id"], "date_shifted": shifted}

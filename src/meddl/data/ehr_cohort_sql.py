"""Connection, schema and SQL helpers shared by the cohort definition, the vocabulary and the features.

Private helpers of :mod:`meddl.data.ehr_cohort`: opening a store, checking its tables and columns, the SQL of
every code with its known time, and registering cohort rows as a DuckDB view.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from meddl.data.ehr_cohort_spec import _CODE_TABLES, _US_PER_HOUR, Connection, EHRCohort, StoreLike
from meddl.errors import MedDLError
from meddl.io._ehr_store import _connect_database
from meddl.io.ehr_schema import TABLE_COLUMNS

__all__: list[str] = []

# --------------------------------------------------------------------------------------------------------------
# Connection and schema helpers


@contextmanager
def _connect(con_or_path: StoreLike) -> Iterator[Connection]:
    """Yield the connection given, or open the store file read-only (and close it afterwards)."""
    if isinstance(con_or_path, duckdb.DuckDBPyConnection):
        yield con_or_path
        return
    path = Path(con_or_path)
    if not path.exists():
        raise MedDLError(f"EHR store {path}: no such file")
    # The one way EHR code opens a store file: extensions never downloaded or loaded, a folder or a non-DuckDB
    # file (SQLite, CSV…) named as such.
    con = _connect_database(path, read_only=True)
    try:
        yield con
    finally:
        con.close()


def _store_name(con: Connection) -> str:
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return str(row[0]) if row and row[0] else "in-memory EHR store"


def _check_schema(con: Connection, tables: Sequence[str]) -> None:
    """Raise a MedDLError naming every missing table and column among ``tables`` (schema of ehr_schema.py)."""
    present: dict[str, set[str]] = {}
    query = (
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = current_schema()"
    )
    for table, column in con.execute(query).fetchall():
        present.setdefault(str(table).lower(), set()).add(str(column).lower())
    problems = []
    for table in tables:
        if table not in present:
            problems.append(f"table {table!r} is missing")
            continue
        missing = [c for c in TABLE_COLUMNS[table] if c not in present[table]]
        if missing:
            problems.append(f"table {table!r} lacks column(s) {missing}")
    if problems:
        raise MedDLError(
            f"EHR store {_store_name(con)}: {'; '.join(problems)} (expected the schema of meddl.io.ehr_schema)"
        )


def _interval_us(hours: float) -> int:
    return round(hours * _US_PER_HOUR)


# --------------------------------------------------------------------------------------------------------------
# SQL building blocks shared by the vocabulary and the features


def _codes_sql(con: Connection) -> str:
    """SELECT of every code with its patient, visit, token and known time (a code's time, else its discharge)."""
    _check_schema(con, ["visits", *_CODE_TABLES])
    parts = []
    for kind, table, own_time in (
        ("dx", "diagnoses", "t.time"),
        ("px", "procedures", "t.time"),
        ("rx", "medications", "t.start_time"),
    ):
        parts.append(
            f"SELECT t.patient_id, t.visit_id, '{kind}:' || coalesce(t.system || ':', '') || t.code AS token, "
            f"coalesce({own_time}, v.discharge_time) AS known_time "
            f"FROM {table} t LEFT JOIN visits v ON v.visit_id = t.visit_id"
        )
    return " UNION ALL ".join(parts)


def _register(con: Connection, name: str, columns: dict[str, Any]) -> None:
    con.register(name, pa.table(columns))


def _cohort_columns(cohort: EHRCohort, rows: np.ndarray) -> dict[str, Any]:
    return {
        "rid": pa.array(rows.astype(np.int64)),
        "patient_id": pa.array(cohort.patient_ids[rows].astype(str).tolist(), type=pa.string()),
        "visit_id": pa.array(cohort.visit_ids[rows].astype(str).tolist(), type=pa.string()),
        "index_time": pa.array(cohort.index_times[rows].astype("datetime64[us]")),
        "window_end": pa.array(cohort.window_ends[rows].astype("datetime64[us]")),
    }

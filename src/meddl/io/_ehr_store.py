"""The EHR event store: :class:`EventStore`, one DuckDB file holding the tables of :mod:`meddl.io.ehr_schema`.

Also the constants the store shares with the importers (known code systems, the measurement window, the event
tables). Everything here is importable from :mod:`meddl.io.ehr`.
"""

from __future__ import annotations

import codecs
import shutil
from pathlib import Path
from types import TracebackType

import duckdb

from meddl.errors import MedDLError
from meddl.io.ehr_schema import SCHEMA_SQL, SCHEMA_VERSION, TABLE_COLUMNS

__all__ = ["EVENT_TABLES", "KNOWN_CODE_SYSTEMS", "OUT_OF_WINDOW_HOURS", "EventStore"]

KNOWN_CODE_SYSTEMS = frozenset({"ICD9", "ICD10", "SNOMED", "OMOP", "LOINC", "RXNORM", "ATC", "NDC"})
"""Code systems the store knows; diagnoses with any other (or none) are counted at import."""

OUT_OF_WINDOW_HOURS = 24
"""Measurements this many hours before admission or after discharge are counted as out of their visit's window."""

EVENT_TABLES = ("diagnoses", "procedures", "medications", "measurements")

_NO_EXTENSION_LOADING = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
"""Settings of every EHR connection: DuckDB never downloads nor loads an extension on its own. Opening an SQLite
file would otherwise fetch ``sqlite_scanner`` from the internet (there is no network at run time)."""

_DUCKDB_MAGIC = (8, b"DUCK")  # offset and bytes of the magic in a DuckDB file's main header
_FOREIGN_MAGIC = (
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"PAR1", "Parquet"),
    (b"PK\x03\x04", "a ZIP archive (e.g. an Excel workbook)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
)


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
            connection = duckdb.connect(str(path), config=dict(_NO_EXTENSION_LOADING))
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
            MedDLError: the file is missing or a folder, not a DuckDB database (named when it looks like SQLite,
                Parquet, text…), lacks a store table or ``meddl_meta``, or was written with another schema version.
        """
        path = Path(path)
        connection = _connect_database(path, read_only=read_only)
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


def _connect_database(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open the existing DuckDB file ``path``, extensions never installed nor loaded (``_NO_EXTENSION_LOADING``).

    Every EHR connection to a store file is made here: DuckDB refuses a second connection to one file with other
    settings, so they must all be the same.

    Raises:
        MedDLError: ``path`` does not exist, is a folder, or is not a DuckDB file (saying what it looks like), or
            DuckDB cannot open it.
    """
    if path.is_dir():
        raise MedDLError(f"event store {path} is a folder, not a DuckDB store file (written by `meddl ehr import`)")
    if not path.is_file():
        raise MedDLError(f"event store {path} does not exist")
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError as error:
        raise MedDLError(f"event store {path} cannot be read: {error.strerror or error}") from None
    offset, magic = _DUCKDB_MAGIC
    if head[offset : offset + len(magic)] != magic:
        raise MedDLError(f"{path} is not a readable DuckDB event store: {_looks_like(head)}")
    try:
        return duckdb.connect(str(path), read_only=read_only, config=dict(_NO_EXTENSION_LOADING))
    except duckdb.Error as error:  # e.g. a store cut short; DuckDB's first line says what it found
        reason = next(iter(str(error).strip().splitlines()), type(error).__name__)
        raise MedDLError(f"{path} is not a readable DuckDB event store: {reason}") from None


def _looks_like(head: bytes) -> str:
    """What the first bytes of a file that is not a DuckDB database suggest it is, as a clause."""
    if not head:
        return "the file is empty"
    for magic, kind in _FOREIGN_MAGIC:
        if head.startswith(magic):
            return f"it looks like {kind}, not a DuckDB file"
    try:  # an incremental decoder accepts a character cut at the end of ``head``
        text = b"\x00" not in head and bool(codecs.getincrementaldecoder("utf-8")().decode(head, final=False))
    except UnicodeDecodeError:
        text = False
    if text:
        return "it looks like a text file (a CSV table?), not a DuckDB file"
    return "its first bytes are not those of a DuckDB file"


def _remove_database(path: Path) -> None:
    for candidate in (path, Path(f"{path}.wal")):
        if candidate.is_dir():
            shutil.rmtree(candidate)
        elif candidate.exists():
            candidate.unlink()

"""Opening what is not an EHR event store: a folder, an SQLite file; and no extension is ever fetched or loaded."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from meddl.data.ehr_cohort import CohortSpec, define_cohort
from meddl.errors import MedDLError
from meddl.io.ehr import EventStore

EXTENSION_SETTINGS = (
    "SELECT current_setting('autoinstall_known_extensions'), current_setting('autoload_known_extensions')"
)


SQLITE = "it looks like an SQLite database, not a DuckDB file"


def sqlite_file(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE patients (patient_id TEXT)")
    con.commit()
    con.close()
    return path


def test_a_folder_is_named_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "events.duckdb"
    folder.mkdir()
    for open_store in (EventStore.open, lambda path: define_cohort(path, CohortSpec())):
        with pytest.raises(MedDLError, match=r"events\.duckdb is a folder, not a DuckDB store file") as error:
            open_store(folder)
        assert "does not exist" not in str(error.value)


def test_missing_file_still_said_missing(tmp_path: Path) -> None:
    with pytest.raises(MedDLError, match=r"absent\.duckdb does not exist"):
        EventStore.open(tmp_path / "absent.duckdb")


def test_sqlite_file_is_named_without_fetching_an_extension(tmp_path: Path) -> None:
    path = sqlite_file(tmp_path / "new.duckdb")
    for open_store in (EventStore.open, lambda path: define_cohort(path, CohortSpec())):
        with pytest.raises(MedDLError) as error:
            open_store(path)
        message = str(error.value)
        assert message == f"{path} is not a readable DuckDB event store: {SQLITE}"
        assert "download" not in message and "http" not in message and "INSTALL" not in message


@pytest.mark.parametrize(
    ("content", "looks_like"),
    [
        (b"", "the file is empty"),
        (b"subject_id,hadm_id\n1,11\n", "it looks like a text file (a CSV table?), not a DuckDB file"),
        (b"PAR1" + bytes(60), "it looks like Parquet, not a DuckDB file"),
        (bytes(range(200, 256)) * 2, "its first bytes are not those of a DuckDB file"),
    ],
)
def test_other_files_say_what_they_look_like(tmp_path: Path, content: bytes, looks_like: str) -> None:
    path = tmp_path / "events.duckdb"
    path.write_bytes(content)
    with pytest.raises(MedDLError, match=r"events\.duckdb is not a readable DuckDB event store: (.*)$") as error:
        EventStore.open(path)
    assert str(error.value).endswith(looks_like)


def test_connections_never_install_or_load_extensions(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    with EventStore.create(path) as store:
        assert store.connection.execute(EXTENSION_SETTINGS).fetchone() == (False, False)
    with EventStore.open(path) as store:
        assert store.connection.execute(EXTENSION_SETTINGS).fetchone() == (False, False)


def test_store_and_cohort_connections_share_settings(tmp_path: Path) -> None:
    # DuckDB refuses a second connection to one file with other settings; the cohort code opens the store file
    # itself while a model holds it open with EventStore.open.
    path = tmp_path / "events.duckdb"
    EventStore.create(path).close()
    with EventStore.open(path), pytest.raises(MedDLError, match="no index stay"):  # an empty store: it opened
        define_cohort(path, CohortSpec())

"""Rows of a source CSV that ``meddl ehr import`` must refuse, named by the row a spreadsheet shows (header = 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meddl.errors import MedDLError
from meddl.io.ehr import EventStore, import_mimic

LABEVENTS_HEADER = "subject_id,hadm_id,itemid,charttime,valuenum,valueuom"


def write_mimic(folder: Path, labevents: list[str] | None = None, admissions: list[str] | None = None) -> Path:
    """A three-patient MIMIC-IV folder; ``labevents`` / ``admissions`` replace those files' data rows."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "patients": ["subject_id,gender,anchor_age,anchor_year,dod", "1,F,60,2150,", "2,M,71,2151,", "3,F,45,2149,"],
        "admissions": [
            "subject_id,hadm_id,admittime,dischtime,deathtime,hospital_expire_flag",
            *(
                admissions
                or [
                    "1,11,2150-01-02 10:00:00,2150-01-09 12:00:00,,0",
                    "2,21,2151-03-01 08:00:00,2151-03-05 09:00:00,,0",
                    "3,31,2149-06-10 22:00:00,2149-06-20 10:00:00,,0",
                ]
            ),
        ],
        "diagnoses_icd": ["subject_id,hadm_id,icd_code,icd_version", "1,11,I10,10", "2,21,E119,10"],
        "labevents": [
            LABEVENTS_HEADER,
            *(labevents or ["1,11,50912,2150-01-02 12:00:00,1.1,mg/dL", "2,21,50912,2151-03-01 10:00:00,0.9,mg/dL"]),
        ],
    }
    for name, lines in files.items():
        (folder / f"{name}.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_short_row_is_an_error_naming_file_and_row(tmp_path: Path) -> None:
    folder = write_mimic(tmp_path / "m", labevents=["1,11,50912,2150-01-02 12:00:00,1.1,mg/dL", "2,21,50912"])
    with pytest.raises(MedDLError) as error:
        import_mimic(folder, tmp_path / "events.duckdb")
    assert str(error.value).startswith("labevents.csv row 3: has 3 field(s) but the header has 6;")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "events.duckdb").exists() and not (tmp_path / "events.duckdb.partial").exists()


def test_long_row_is_an_error_naming_file_and_row(tmp_path: Path) -> None:
    rows = ["1,11,50912,2150-01-02 12:00:00,1.1,mg/dL", "2,21,50912,2151-03-01 10:00:00,0,9,mg/dL"]  # 0,9: a comma
    with pytest.raises(MedDLError, match=r"^labevents\.csv row 3: has 7 field\(s\) but the header has 6;"):
        import_mimic(write_mimic(tmp_path / "m", labevents=rows), tmp_path / "events.duckdb")


def test_every_bad_row_is_counted_and_the_first_named(tmp_path: Path) -> None:
    rows = ["1,11,50912", "1,11,50912,2150-01-02 12:00:00,1.1,mg/dL", "2,21"]
    with pytest.raises(MedDLError, match=r"^labevents\.csv row 2: has 3 field.*\(2 such rows in this file\)$"):
        import_mimic(write_mimic(tmp_path / "m", labevents=rows), tmp_path / "events.duckdb")


def test_short_row_of_a_windows_file(tmp_path: Path) -> None:
    folder = write_mimic(tmp_path / "m")
    rows = [LABEVENTS_HEADER, "1,11,50912,2150-01-02 12:00:00,1.1,mg/dL", "2,21,50912"]
    (folder / "labevents.csv").write_bytes("\r\n".join(rows).encode() + b"\r\n")
    with pytest.raises(MedDLError, match=r"^labevents\.csv row 3: has 3 field\(s\) but the header has 6;"):
        import_mimic(folder, tmp_path / "events.duckdb")


def test_row_number_counts_a_quoted_line_break_as_one_row(tmp_path: Path) -> None:
    rows = ['1,11,50912,2150-01-02 12:00:00,1.1,"mg/\ndL"', "2,21,50912"]  # the break stays inside row 2
    with pytest.raises(MedDLError, match=r"^labevents\.csv row 3: has 3 field"):
        import_mimic(write_mimic(tmp_path / "m", labevents=rows), tmp_path / "events.duckdb")


def test_a_wide_last_row_is_an_error_not_a_header(tmp_path: Path) -> None:
    # Row 2 (a leading '#' is data, not a comment) counts, and the wider last row is refused rather than taken by
    # DuckDB's sniffer for the header of the file's "real" start.
    rows = ["#1,11,50912,2150-01-02 12:00:00,1.1,mg/dL", "2,21,50912,2151-03-01 10:00:00,0.9,mg/dL,extra"]
    with pytest.raises(MedDLError, match=r"^labevents\.csv row 3: has 7 field"):
        import_mimic(write_mimic(tmp_path / "m", labevents=rows), tmp_path / "events.duckdb")


def test_sound_rows_with_empty_trailing_fields_import(tmp_path: Path) -> None:
    rows = ["1,11,50912,2150-01-02 12:00:00,1.1,", "2,21,50912,2151-03-01 10:00:00,0.9,mg/dL"]
    report = import_mimic(write_mimic(tmp_path / "m", labevents=rows), tmp_path / "events.duckdb")
    assert report.rows_read["labevents.csv"] == 2 and report.rows_written["measurements"] == 2
    with EventStore.open(tmp_path / "events.duckdb") as store:
        units = store.connection.execute("SELECT unit FROM measurements").fetchall()
    assert units == [("mg/dL",), ("mg/dL",)]  # the unit-less row took its item's unit


def test_unreadable_value_names_the_spreadsheet_row(tmp_path: Path) -> None:
    admissions = [
        "1,11,2150-01-02 10:00:00,2150-01-09 12:00:00,,0",
        "2,21,2151-03-01 08:00:00,next tuesday,,0",
        "3,31,2149-06-10 22:00:00,2149-06-20 10:00:00,,0",
    ]
    with pytest.raises(
        MedDLError, match=r"^admissions\.csv row 3, column 'dischtime': cannot read 'next tuesday' as a timestamp$"
    ):
        import_mimic(write_mimic(tmp_path / "m", admissions=admissions), tmp_path / "events.duckdb")
    rows = ["1,11,50912,2150-01-02 12:00:00,1.1,mg/dL", "2,21,50912,2151-03-01 10:00:00,0.9,mg/dL"]
    rows.append("3,31,50912,2149-06-11 10:00:00,high,mg/dL")
    with pytest.raises(MedDLError, match=r"^labevents\.csv row 4, column 'valuenum': cannot read 'high'"):
        import_mimic(write_mimic(tmp_path / "l", labevents=rows), tmp_path / "events.duckdb")

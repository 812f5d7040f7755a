"""Tests of meddl.io.tables: round trips, spreadsheet row numbers and errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meddl.errors import MedDLError
from meddl.io import FIRST_DATA_ROW, read_table, write_table


@pytest.fixture
def cohort() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3", "P4"],
            "age": [61, 47, 70, 55],
            "crp": [3.5, 12.25, 0.5, 7.0],
            "sex": ["F", "M", "F", "M"],
            "outcome": ["yes", "no", "no", "yes"],
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".pq"])
def test_round_trip_keeps_values_and_numbers_rows_from_two(tmp_path: Path, cohort: pd.DataFrame, suffix: str):
    path = write_table(cohort, tmp_path / f"cohort{suffix}")
    frame = read_table(path)
    assert frame.index.name == "row"
    assert frame.index.tolist() == [2, 3, 4, 5]
    assert FIRST_DATA_ROW == 2
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), cohort, check_dtype=False)
    assert pd.api.types.is_numeric_dtype(frame["crp"])


def test_tsv_is_split_on_tabs_not_commas(tmp_path: Path):
    path = tmp_path / "notes.tsv"
    path.write_text("id\tcomment\n1\tpain, fever\n2\tnone\n", encoding="utf-8")
    frame = read_table(path)
    assert list(frame.columns) == ["id", "comment"]
    assert frame.loc[2, "comment"] == "pain, fever"


def test_row_index_matches_spreadsheet_row(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text("name,value\nfirst,1\nsecond,2\nthird,3\n", encoding="utf-8")
    frame = read_table(path)
    # Row 4 of the spreadsheet (header is row 1) holds "third".
    assert frame.loc[4, "name"] == "third"
    assert frame.loc[2, "name"] == "first"


def test_na_values_are_honoured(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text("age,crp\n61,?\n?,4.5\n50,n/a\n", encoding="utf-8")
    frame = read_table(path, na_values=["?"])
    assert frame["crp"].isna().tolist() == [True, False, True]
    assert frame["age"].isna().tolist() == [False, True, False]
    assert pd.api.types.is_numeric_dtype(frame["crp"])
    # Without the extra code the '?' stays text.
    plain = read_table(path)
    assert plain.loc[2, "crp"] == "?"


def _assert_names_file(exc: pytest.ExceptionInfo[MedDLError], path: Path) -> None:
    assert path.name in str(exc.value)


def test_missing_file(tmp_path: Path):
    path = tmp_path / "absent.csv"
    with pytest.raises(MedDLError, match="not found") as exc:
        read_table(path)
    _assert_names_file(exc, path)


def test_folder_is_rejected(tmp_path: Path):
    folder = tmp_path / "cohort.csv"
    folder.mkdir()
    with pytest.raises(MedDLError, match="folder") as exc:
        read_table(folder)
    _assert_names_file(exc, folder)


def test_excel_extension_is_rejected(tmp_path: Path):
    path = tmp_path / "cohort.xlsx"
    path.write_bytes(b"PK\x03\x04 not really excel")
    with pytest.raises(MedDLError, match=r"unsupported file type '\.xlsx'") as exc:
        read_table(path)
    _assert_names_file(exc, path)


@pytest.mark.parametrize("content", [b"", b"\n\n"], ids=["zero-bytes", "blank-lines"])
def test_empty_file(tmp_path: Path, content: bytes):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(MedDLError, match="empty") as exc:
        read_table(path)
    _assert_names_file(exc, path)


def test_header_only(tmp_path: Path):
    path = tmp_path / "header.csv"
    path.write_text("age,sex,outcome\n", encoding="utf-8")
    with pytest.raises(MedDLError, match="header but no rows") as exc:
        read_table(path)
    _assert_names_file(exc, path)


def test_duplicate_column_names(tmp_path: Path):
    path = tmp_path / "dup.csv"
    path.write_text("age,sex,age\n1,F,2\n", encoding="utf-8")
    with pytest.raises(MedDLError, match="'age' appears more than once") as exc:
        read_table(path)
    _assert_names_file(exc, path)


def test_unnamed_column_is_reported_by_position(tmp_path: Path):
    path = tmp_path / "unnamed.csv"
    path.write_text("age,,outcome\n1,2,yes\n", encoding="utf-8")
    with pytest.raises(MedDLError, match=r"\[2\] have no name") as exc:
        read_table(path)
    _assert_names_file(exc, path)


def test_non_utf8_bytes(tmp_path: Path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("name,age\nJosé,30\n".encode("latin-1"))
    with pytest.raises(MedDLError, match="not UTF-8") as exc:
        read_table(path)
    _assert_names_file(exc, path)
    assert r"b'\xe9'" in str(exc.value)
    assert "offset 12" in str(exc.value)  # "name,age\nJos" is 12 bytes


def test_non_utf8_offset_is_the_offset_in_the_file(tmp_path: Path):
    path = tmp_path / "latin1.csv"
    head = b"name,age\n" + b"abc,3\n" * 100_000
    path.write_bytes(head + "José,30\n".encode("latin-1"))
    with pytest.raises(MedDLError) as exc:
        read_table(path)
    assert f"offset {len(head) + 3}" in str(exc.value)


def test_corrupt_parquet(tmp_path: Path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not a parquet file")
    with pytest.raises(MedDLError, match="cannot be read") as exc:
        read_table(path)
    _assert_names_file(exc, path)


def test_ragged_row_after_the_first_is_a_parse_error(tmp_path: Path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3,4,5\n", encoding="utf-8")
    with pytest.raises(MedDLError, match="cannot be parsed") as exc:
        read_table(path)
    _assert_names_file(exc, path)


def test_trailing_comma_on_data_rows_does_not_shift_columns(tmp_path: Path):
    path = tmp_path / "excel_export.csv"
    path.write_text("age,crp\n61,3.5,\n47,12.0,\n", encoding="utf-8")
    try:
        frame = read_table(path)
    except MedDLError:
        return  # refusing the file is acceptable; silently shifting it is not
    assert frame["age"].tolist() == [61, 47]


def test_write_table_rejects_unknown_extension(tmp_path: Path, cohort: pd.DataFrame):
    with pytest.raises(MedDLError, match=r"cohort.json"):
        write_table(cohort, tmp_path / "cohort.json")


def test_parquet_keeps_missing_values(tmp_path: Path):
    frame = pd.DataFrame({"age": [1.0, np.nan, 3.0], "sex": ["F", None, "M"]})
    back = read_table(write_table(frame, tmp_path / "t.parquet"))
    assert back["age"].isna().tolist() == [False, True, False]
    assert back["sex"].isna().tolist() == [False, True, False]

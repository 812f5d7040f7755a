"""Reading patient tables (CSV, TSV, Parquet) with errors that name the file and what is wrong.

Rows keep the number a spreadsheet shows for them: the header is row 1, the first patient row 2. That number
is the frame's index (named ``row``) so every later message can point back into the file.
"""

from __future__ import annotations

import csv
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from meddl.errors import MedDLError

__all__ = ["FIRST_DATA_ROW", "TABLE_SUFFIXES", "read_table", "write_table"]

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
FIRST_DATA_ROW = 2


def read_table(path: str | Path, *, na_values: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a table of patients.

    Args:
        path: a ``.csv``, ``.tsv`` or ``.parquet`` file.
        na_values: strings that mean "missing" in text files (pandas' defaults are always included).

    Returns:
        The table; its index (``row``) is the row number as shown in a spreadsheet.

    Raises:
        MedDLError: the file is missing, has an unsupported extension, is empty, cannot be parsed,
            or has duplicate or empty column names.
    """
    path = Path(path)
    if not path.exists():
        raise MedDLError(f"data file not found: {path}")
    if path.is_dir():
        raise MedDLError(f"{path}: expected a table file (.csv, .tsv, .parquet), got a folder")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise MedDLError(
            f"{path}: unsupported file type {suffix or '(no extension)'!r}; expected one of {', '.join(TABLE_SUFFIXES)}"
        )
    if path.stat().st_size == 0:
        raise MedDLError(f"{path}: the file is empty")
    try:
        if suffix in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
        else:
            sep = "\t" if suffix == ".tsv" else ","
            _check_header(path, sep)
            with warnings.catch_warnings():
                # A row with more fields than the header would otherwise shift every column silently.
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(
                    path,
                    sep=sep,
                    index_col=False,
                    na_values=list(na_values or []),
                    keep_default_na=True,
                    skipinitialspace=True,
                    encoding_errors="strict",
                    low_memory=False,
                )
    except pd.errors.EmptyDataError:
        raise MedDLError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        raise MedDLError(f"{path}: cannot be parsed as {suffix[1:].upper()}: {_first_line(exc)}") from None
    except UnicodeDecodeError:
        raise MedDLError(_not_utf8(path)) from None
    except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) for a broken Parquet file
        raise MedDLError(f"{path}: cannot be read: {_first_line(exc)}") from None
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise MedDLError(f"{path}: has a header but no rows" if frame.shape[1] else f"{path}: the file is empty")
    _check_columns(frame, path)
    frame.index = pd.RangeIndex(FIRST_DATA_ROW, FIRST_DATA_ROW + len(frame), name="row")
    return frame


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as CSV or Parquet, chosen by the extension. The file is written beside ``path`` and moved
    into place when complete, so an interrupted write never leaves half a table where a whole one was."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".parquet", ".pq", ".csv", ".tsv"}:
        raise MedDLError(f"{path}: cannot write {suffix or 'a file without extension'!r}; use .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        if suffix in {".parquet", ".pq"}:
            frame.to_parquet(partial, index=False)
        else:
            frame.to_csv(partial, index=False, sep="\t" if suffix == ".tsv" else ",")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _check_header(path: Path, sep: str) -> None:
    """Duplicate names are checked on the header itself: pandas would rename the second 'age' to 'age.1'.

    Every row must have as many fields as the header: pandas fills a short row with missing values (its values
    shifted left into the wrong columns), and a file cut mid-line ends in such a row. Both are errors naming the
    line, the truncated file said to be so.
    """
    limit = csv.field_size_limit(sys.maxsize)  # a long sequence or note is a valid cell (pandas reads it)
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, delimiter=sep, skipinitialspace=True)
            header = next(reader, [])
            width = len(header)
            short: tuple[int, int] | None = None
            start = reader.line_num + 1  # the line the next row starts on (a quoted field may span lines)
            for row in reader:
                if row and len(row) < width and not (len(row) == 1 and not row[0].strip()):
                    if reader.line_num > start and _ends_at(path, reader.line_num, sep):
                        raise MedDLError(
                            f"{path}: line {start}: a quoted field opened on this line is never closed, so the rest "
                            "of the file was read as one value; close the quote (or double a quote inside a value)"
                        )
                    short = (reader.line_num, len(row))
                    break
                start = reader.line_num + 1
                if any("\x00" in field for field in row):
                    raise MedDLError(
                        f"{path}: line {reader.line_num} holds a NUL byte (a damaged or binary file); fix or "
                        "re-export the file"
                    )
    except UnicodeDecodeError:
        raise MedDLError(_not_utf8(path)) from None
    except csv.Error as exc:
        raise MedDLError(f"{path}: cannot be parsed as {path.suffix[1:].upper()}: {_first_line(exc)}") from None
    finally:
        csv.field_size_limit(limit)
    if short is not None:
        line, fields = short
        if _ends_at(path, line, sep) and not _ends_with_newline(path):
            raise MedDLError(
                f"{path}: the file looks truncated: its last line ({line}) stops after {fields} of {width} fields "
                "with no line end; copy the whole file again"
            )
        raise MedDLError(
            f"{path}: line {line} has {fields} fields but the header has {width}; a missing field would shift the "
            "values after it into the wrong columns — add the empty field (e.g. ',,') or fix the row"
        )
    seen: set[str] = set()
    for name in (h.strip() for h in header):
        if name and name in seen:
            raise MedDLError(f"{path}: column {name!r} appears more than once in the header")
        seen.add(name)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) in (b"\n", b"\r")


def _ends_at(path: Path, line: int, sep: str) -> bool:
    """Whether a row ending on physical ``line`` (as the csv module counts) ends the file (error path only)."""
    limit = csv.field_size_limit(sys.maxsize)
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, delimiter=sep, skipinitialspace=True)
            for _ in reader:
                pass
            return line >= reader.line_num
    finally:
        csv.field_size_limit(limit)


def _not_utf8(path: Path) -> str:
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return (
            f"{path}: not UTF-8 text (byte {data[exc.start : exc.start + 1]!r} at offset {exc.start}, line {line}); "
            "save the file as UTF-8"
        )
    return f"{path}: not UTF-8 text; save the file as UTF-8"


def _check_columns(frame: pd.DataFrame, path: Path) -> None:
    names = [str(column) for column in frame.columns]
    unnamed = [i + 1 for i, name in enumerate(names) if name.startswith("Unnamed:") or not name.strip()]
    if unnamed:
        raise MedDLError(f"{path}: column(s) {unnamed} have no name in the header")
    if len(set(names)) != len(names):  # Parquet keeps duplicate names as they are
        duplicate = next(n for n in names if names.count(n) > 1)
        raise MedDLError(f"{path}: column {duplicate!r} appears more than once in the header")
    frame.columns = names


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

"""De-identification of DICOM files, patient tables and EHR event stores, before MedDL touches real records.

* **DICOM** (:func:`deidentify_dicom`): the Basic Application Level Confidentiality Profile of DICOM PS3.15 Annex E
  (its attribute table as data in :mod:`meddl.io._deid_dicom_profile`) with the Retain Longitudinal Temporal
  Information with Modified Dates Option: identifying attributes removed, emptied or replaced, every private
  attribute, overlay and curve removed, every instance UID replaced consistently, every date shifted by the
  patient's offset, Patient ID replaced by its key. Images that may show burned-in text are warned about and
  counted (or left out with ``burned_in="skip"``); their pixels are not read or cleaned.
* **Tables** (:func:`deidentify_table`): declared identifier columns replaced by keys, declared date columns
  shifted by the patient's offset, declared columns dropped. Other columns pass through unchanged.
* **EHR event stores** (:func:`deidentify_event_store`): patient and visit ids replaced by keys and every date and
  time of :mod:`meddl.io.ehr_schema` shifted by the patient's offset, in SQL inside DuckDB.

Keys, UIDs and offsets are keyed hashes (HMAC-SHA256) of the original value under a secret salt
(:func:`load_salt`): the same Patient ID gives the same key in a table, a store and a DICOM file, and the same
date offset everywhere, so records stay linked and intervals within a patient are kept. Each function returns its
log (also written as ``deid_log.json``): counts, new names and warnings — no original value, no input path, no salt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from meddl._version import __version__
from meddl.errors import MedDLError
from meddl.io._deid_common import (
    KEY_LENGTH,
    LOG_NAME,
    MAX_SHIFT_DAYS,
    date_offset_days,
    load_salt,
    normalize_id,
    prepare_file_output,
    prepare_folder_output,
    pseudonym,
    write_log,
)
from meddl.io._deid_dicom import DicomDeidentifier, deidentify_files, dicom_files
from meddl.io._deid_tabular import copy_store, shift_date_column
from meddl.io.ehr_schema import TABLE_COLUMNS
from meddl.io.tables import TABLE_SUFFIXES, read_table, write_table

__all__ = [
    "STORE_NAME",
    "deidentify",
    "deidentify_dicom",
    "deidentify_event_store",
    "deidentify_table",
    "detect_kind",
    "load_salt",
]

Kind = Literal["dicom", "table", "event_store"]
STORE_NAME = "events.duckdb"
"""The de-identified event store's file name inside the output folder."""
_STORE_SUFFIXES = (".duckdb", ".ddb")
_DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


def _method() -> dict[str, Any]:
    return {
        "tool": f"meddl deid {__version__}",
        "identifiers": f"HMAC-SHA256(salt, value), hex, first {KEY_LENGTH} characters",
        "dates": f"shifted by a whole number of days in [-{MAX_SHIFT_DAYS}, -1] per patient, from HMAC-SHA256(salt, "
        "patient id); intervals within a patient are kept",
        "salt": "secret, kept by the data owner; not in any output",
    }


def _as_bytes(salt: bytes | str) -> bytes:
    data = salt.encode("utf-8") if isinstance(salt, str) else bytes(salt)
    if not data:
        raise MedDLError("the salt is empty")
    return data


def detect_kind(source: str | Path) -> Kind:
    """What ``source`` is: a folder or DICOM file → ``"dicom"``; .csv/.tsv/.parquet → ``"table"``; .duckdb →
    ``"event_store"``.

    Raises:
        MedDLError: the path does not exist or is none of these.
    """
    source = Path(source)
    if not source.exists():
        raise MedDLError(f"input not found: {source}")
    suffix = source.suffix.lower()
    if source.is_dir() or suffix in _DICOM_SUFFIXES:
        return "dicom"
    if suffix in TABLE_SUFFIXES:
        return "table"
    if suffix in _STORE_SUFFIXES:
        return "event_store"
    with source.open("rb") as handle:
        if handle.read(132)[128:] == b"DICM":
            return "dicom"
    raise MedDLError(
        f"{source}: cannot tell what to de-identify; give a DICOM file or folder, a table "
        f"({', '.join(TABLE_SUFFIXES)}) or an event store (.duckdb)"
    )


def deidentify(
    source: str | Path,
    out: str | Path,
    salt: bytes | str,
    *,
    id_columns: Sequence[str] = (),
    date_columns: Sequence[str] = (),
    patient_id: str | None = None,
    drop: Sequence[str] = (),
    keep_patient_characteristics: bool = False,
    burned_in: Literal["warn", "skip"] = "warn",
    on_bad_file: Literal["error", "skip"] = "error",
    overwrite: bool = False,
    salt_file: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """De-identify ``source``, choosing by :func:`detect_kind`; the options of the other kinds must be left unset.

    Returns:
        The log (see :func:`deidentify_dicom`, :func:`deidentify_table`, :func:`deidentify_event_store`).

    Raises:
        MedDLError: an option that does not apply to this kind of input, or any error of the chosen function.
    """
    kind = detect_kind(source)
    table_options = [
        name
        for name, given in (
            ("--id-column", id_columns),
            ("--date-column", date_columns),
            ("--patient-id", patient_id),
            ("--drop", drop),
        )
        if given
    ]
    dicom_options = [
        name
        for name, given in (
            ("--keep-patient-characteristics", keep_patient_characteristics),
            ("--burned-in skip", burned_in != "warn"),
            ("--on-bad-file skip", on_bad_file != "error"),
        )
        if given
    ]
    described = {
        "dicom": "DICOM input",
        "table": "a table",
        "event_store": "an event store (its patient and visit ids and every date are handled from its schema)",
    }[kind]
    if table_options and kind != "table":
        raise MedDLError(f"{', '.join(table_options)}: for tables (.csv, .tsv, .parquet) only; {source} is {described}")
    if dicom_options and kind != "dicom":
        raise MedDLError(f"{', '.join(dicom_options)}: for DICOM input only; {source} is {described}")
    if kind == "dicom":
        return deidentify_dicom(
            source,
            out,
            salt,
            keep_patient_characteristics=keep_patient_characteristics,
            burned_in=burned_in,
            on_bad_file=on_bad_file,
            overwrite=overwrite,
            salt_file=salt_file,
            progress=progress,
        )
    if kind == "table":
        return deidentify_table(
            source,
            out,
            salt,
            id_columns=id_columns,
            date_columns=date_columns,
            patient_id=patient_id,
            drop=drop,
            overwrite=overwrite,
            salt_file=salt_file,
        )
    return deidentify_event_store(source, out, salt, overwrite=overwrite, salt_file=salt_file)


def deidentify_dicom(
    source: str | Path,
    out: str | Path,
    salt: bytes | str,
    *,
    keep_patient_characteristics: bool = False,
    burned_in: Literal["warn", "skip"] = "warn",
    on_bad_file: Literal["error", "skip"] = "error",
    overwrite: bool = False,
    salt_file: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """De-identify a DICOM file or every file under a folder into ``out/<patient key>/<study>/<series>/<SOP>.dcm``.

    Args:
        source: a DICOM file or a folder (searched recursively; hidden files and DICOMDIR indexes are left out).
        out: a new (or empty) folder; it receives the files and ``deid_log.json``.
        salt: the secret key (see :func:`load_salt`).
        keep_patient_characteristics: the Retain Patient Characteristics Option (sex, age, size, weight, …).
        burned_in: ``"warn"`` writes images that may show burned-in text and lists them as warnings; ``"skip"``
            leaves them out (still listed).
        on_bad_file: ``"error"`` stops at a file that cannot be read or written; ``"skip"`` counts it and goes on.
        overwrite: write into a non-empty ``out`` (files listed in its previous log are removed first).
        salt_file: where the salt came from, to refuse an ``out`` that holds it.
        progress: receives one line per skipped file and per warning (these name the input file: console only).

    Returns:
        The log: counts per action and per attribute, files read and written (new names), patients, studies and
        series, burned-in warnings, skipped files by reason.

    Raises:
        MedDLError: the input or output is not usable, or (``on_bad_file="error"``) a file is not readable DICOM.
    """
    source, salt_bytes = Path(source), _as_bytes(salt)
    if not source.exists():
        raise MedDLError(f"input not found: {source}")
    files = dicom_files(source)
    out = prepare_folder_output(out, source, overwrite, salt_file)
    deidentifier = DicomDeidentifier(salt_bytes, keep_patient_characteristics=keep_patient_characteristics)
    result = deidentify_files(
        files, out, deidentifier, burned_in=burned_in, on_bad_file=on_bad_file, progress=progress or (lambda _: None)
    )
    log = {
        "kind": "dicom",
        "method": {
            **_method(),
            "profile": "DICOM PS3.15 Annex E",
            "options": list(deidentifier.method_codes().values()),
            "codes": list(deidentifier.method_codes()),
            "uids": "2.25.<integer of the UUID made from HMAC-SHA256(salt, UID)>",
            "burned_in": burned_in,
        },
        **{key: value for key, value in result.items() if key != "files_written"},
        "actions": dict(sorted(deidentifier.actions.items())),
        "attributes": {keyword: dict(counts) for keyword, counts in sorted(deidentifier.attributes.items())},
        "files_written": result["files_written"],
    }
    write_log(out / LOG_NAME, log)
    return log


def deidentify_table(
    path: str | Path,
    out: str | Path,
    salt: bytes | str,
    *,
    id_columns: Sequence[str] = (),
    date_columns: Sequence[str] = (),
    patient_id: str | None = None,
    drop: Sequence[str] = (),
    overwrite: bool = False,
    salt_file: str | Path | None = None,
) -> dict[str, Any]:
    """De-identify a table (CSV, TSV, Parquet): keys for identifiers, shifted dates, dropped columns.

    Args:
        path: the table.
        out: the table to write (.csv, .tsv, .parquet); its log goes beside it as ``<name>.deid_log.json``.
        salt: the secret key (see :func:`load_salt`).
        id_columns: columns whose values are replaced by keys (missing values stay missing).
        date_columns: columns of dates or date-times (ISO 8601 text, or date/datetime columns of a Parquet
            file), shifted by the offset of the row's patient. Rows without a patient id lose these dates (counted).
        patient_id: the column naming each row's patient: its values become keys and set each row's date offset.
        drop: columns left out of the output.
        overwrite: replace an existing ``out`` (and its log).
        salt_file: where the salt came from, to refuse an ``out`` that holds it.

    Returns:
        The log: rows, patients, values replaced and dates shifted per column, dropped and unchanged columns.

    Raises:
        MedDLError: a declared column is not in the table (the message lists its columns), a column is declared
            twice, dates are declared without ``patient_id``, or a date value cannot be read (row and value named).
    """
    path, out, salt_bytes = Path(path), Path(out), _as_bytes(salt)
    log_path = prepare_file_output(out, path, overwrite, salt_file)
    if out.suffix.lower() not in TABLE_SUFFIXES:
        raise MedDLError(f"--out {out}: write a table as one of {', '.join(TABLE_SUFFIXES)}")
    id_columns, date_columns, drop = list(dict.fromkeys(id_columns)), list(dict.fromkeys(date_columns)), list(drop)
    if patient_id is not None and patient_id not in id_columns:
        id_columns.insert(0, patient_id)
    if not (id_columns or date_columns or drop):
        raise MedDLError(f"{path}: nothing declared to de-identify; give --id-column, --date-column or --drop")
    if date_columns and patient_id is None:
        raise MedDLError("--date-column needs --patient-id: the column whose patient sets each row's date shift")
    frame = read_table(path)
    columns = [str(c) for c in frame.columns]
    for option, names in (("--id-column", id_columns), ("--date-column", date_columns), ("--drop", drop)):
        for name in names:
            if name not in columns:
                option = "--patient-id" if name == patient_id else option
                raise MedDLError(
                    f"{path}: column {name!r} ({option}) is not in the table; its columns are: {', '.join(columns)}"
                )
    for first, second in ((id_columns, date_columns), (id_columns, drop), (date_columns, drop)):
        both = sorted(set(first) & set(second))
        if both:
            raise MedDLError(f"{path}: column(s) {', '.join(map(repr, both))} declared twice; give each one action")

    shifted: dict[str, int] = {}
    emptied = 0
    if date_columns:
        assert patient_id is not None, "checked above"
        patients = frame[patient_id].map(normalize_id)
        offsets = {p: date_offset_days(salt_bytes, p) for p in patients.dropna().unique()}
        days = patients.map(lambda p: offsets.get(p) if p is not None else None).astype("float64")
        for name in date_columns:
            frame[name], count, dropped = shift_date_column(frame[name], days, path, name)
            shifted[name], emptied = count, emptied + dropped
    replaced: dict[str, int] = {}
    for name in id_columns:
        originals = frame[name].map(normalize_id)
        keys = {value: pseudonym(salt_bytes, value) for value in originals.dropna().unique()}
        if len(set(keys.values())) != len(keys):
            raise MedDLError(f"{path}: two values of column {name!r} got the same key; report this (use a new salt)")
        frame[name] = originals.map(keys).astype(object)  # missing ids stay missing
        replaced[name] = int(originals.notna().sum())
    n_patients = int(frame[patient_id].nunique()) if patient_id is not None else None
    frame = frame.drop(columns=drop)
    unchanged = [c for c in frame.columns if c not in id_columns and c not in date_columns]
    write_table(frame, out)
    warnings = []
    if emptied:
        warnings.append(f"{emptied} date value(s) in rows without a patient id were emptied (no offset to apply)")
    if unchanged:
        warnings.append(
            f"{len(unchanged)} column(s) passed through unchanged (not checked for identifiers or free text): "
            + ", ".join(unchanged)
        )
    log = {
        "kind": "table",
        "method": _method(),
        "rows": len(frame),
        "patients": n_patients,
        "pseudonymised": replaced,
        "date_shifted": shifted,
        "dates_emptied_without_patient_id": emptied,
        "dropped": drop,
        "unchanged": unchanged,
        "warnings": warnings,
        "files_written": [out.name],
    }
    write_log(log_path, log)
    return log


def deidentify_event_store(
    path: str | Path,
    out: str | Path,
    salt: bytes | str,
    *,
    overwrite: bool = False,
    salt_file: str | Path | None = None,
) -> dict[str, Any]:
    """De-identify a MedDL EHR event store into ``out/events.duckdb`` (and ``out/deid_log.json``).

    Patient and visit ids become keys (the same as :func:`deidentify_table` and the DICOM Patient ID give), every
    DATE and TIMESTAMP column of :data:`meddl.io.ehr_schema.TABLE_COLUMNS` moves by the patient's offset, codes,
    values and units are kept. The source's import report is not copied (its examples quote raw ids), nor tables
    outside the schema (listed in the log). Runs in SQL inside DuckDB; only the distinct ids pass through Python.

    Raises:
        MedDLError: ``path`` is not a MedDL event store, or ``out`` is not usable.
    """
    from meddl.io._ehr_store import EventStore

    path, salt_bytes = Path(path), _as_bytes(salt)
    with EventStore.open(path) as source:
        source_format = source.meta().get("source_format")
        all_tables = {
            row[0]
            for row in source.connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        }
    out = prepare_folder_output(out, path, overwrite, salt_file)
    target = out / STORE_NAME
    if target.exists():
        raise MedDLError(f"{target} exists and was not written by meddl deid; remove it or choose another --out")
    partial = out / f"{STORE_NAME}.partial"
    try:
        counts = copy_store(path, partial, salt_bytes, source_format, {**_method(), "log": LOG_NAME})
        partial.rename(target)
    finally:
        for leftover in (partial, Path(f"{partial}.wal")):
            leftover.unlink(missing_ok=True)
    log = {
        "kind": "event_store",
        "method": _method(),
        **counts,
        "tables_not_copied": sorted(all_tables - set(TABLE_COLUMNS) - {"meddl_meta"}),
        "meta_not_copied": "import_report (its examples quote original ids)",
        "files_written": [STORE_NAME],
    }
    write_log(out / LOG_NAME, log)
    return log

"""Reading and writing physiological signals (ECG) — WFDB records, DICOM waveforms, NumPy and CSV arrays.

Every reader returns a :class:`Signal`: ``data`` float32 ``(C, L)`` (channels × samples) in physical units,
the sampling rate ``fs`` in Hz, one name and one unit per channel, and the file it came from.

* WFDB (PhysioNet's format: a ``.hea`` header next to one or more ``.dat`` signal files) through the ``wfdb``
  package, in physical units (``p_signal``, usually mV).
* DICOM waveforms (e.g. *12-Lead ECG Waveform Storage*) through pydicom's ``waveform_array``: the first
  multiplex group, with *Channel Sensitivity*, its correction factor and the baseline applied. Values in µV, mV
  or V are converted to mV, so every format reads in the same unit; other units are kept as they are.
  Channel names come from each channel's *Channel Source Sequence* code meaning, without a leading
  ``"Lead "`` (``"Lead II"`` → ``"II"``).
* ``.npy`` arrays ``(C, L)`` or ``(L,)`` and ``.csv`` files with one column per channel (and optionally a
  ``time`` column in seconds, from which the sampling rate is taken). Their units are not stated: ``""``.

Errors name the file and the reason: a header without its signal file, a corrupt record, a DICOM without
waveforms (named by its SOP class), a non-numeric cell (row and column), a channel holding only NaN.

The :class:`Signal` type lives in :mod:`meddl.io._signal_types` and the DICOM waveform reader and writer in
:mod:`meddl.io._signal_dicom`; all are importable from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from meddl.errors import MedDLError
from meddl.io._signal_dicom import read_dicom_waveform, write_dicom_ecg
from meddl.io._signal_types import ECG_12_LEADS, Signal, _check_not_all_nan, _first_line
from meddl.io.tables import read_table

__all__ = [
    "ECG_12_LEADS",
    "Signal",
    "read_dicom_waveform",
    "read_signal",
    "read_signal_array",
    "read_wfdb",
    "signal_manifest",
    "write_dicom_ecg",
    "write_wfdb",
]

_WFDB_DIGITAL_PEAK = 32000.0
_WFDB_MISSING = -32768
SIGNAL_ARRAY_SUFFIXES = (".npy", ".csv")
DICOM_WAVEFORM_SUFFIXES = (".dcm", ".dicom")


# -- WFDB -----------------------------------------------------------------------------------------


def _record_base(path: str | Path) -> Path:
    """The record path without ``.hea``; a folder holding exactly one header stands for that record."""
    path = Path(path)
    if path.is_dir():
        headers = sorted(path.glob("*.hea"))
        if len(headers) != 1:
            found = f"{len(headers)} headers, e.g. {headers[0].name!r}" if headers else "no .hea header"
            raise MedDLError(f"{path}: a WFDB record folder must hold exactly one record (.hea header); found {found}")
        path = headers[0]
    return path.with_suffix("") if path.suffix.lower() == ".hea" else path


def read_wfdb(path: str | Path) -> Signal:
    """Read a WFDB record (``.hea`` header + signal files) in physical units.

    Args:
        path: the record, with or without ``.hea`` (``data/100`` or ``data/100.hea``), or a folder holding
            exactly one record.

    Returns:
        The record as a :class:`Signal` (``data`` (C, L) float32 in the header's units, usually mV).

    Raises:
        MedDLError: the header is missing, a signal file the header names is missing, the record is
            unreadable or corrupt, or a channel holds only NaN (no valid sample).
    """
    import wfdb

    base = _record_base(path)
    header = Path(f"{base}.hea")
    if not header.exists():
        raise MedDLError(f"WFDB header not found: {header}")
    try:
        meta = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises ValueError, IndexError, HeaderSyntaxError… on a bad header
        raise MedDLError(f"{header}: the WFDB header cannot be parsed: {_first_line(exc)}") from None
    files = sorted({str(name) for name in (getattr(meta, "file_name", None) or []) if name})
    missing = [name for name in files if not (header.parent / name).exists()]
    if missing:
        raise MedDLError(
            f"{header}: the header names signal file(s) {missing} that do not exist in {header.parent} "
            "(a WFDB record needs its .dat file next to the .hea header)"
        )
    try:
        record = wfdb.rdrecord(str(base), physical=True)
    except Exception as exc:  # truncated .dat files raise ValueError (reshape) and others
        raise MedDLError(f"{base}: the WFDB record is unreadable or corrupt: {_first_line(exc)}") from None
    values = getattr(record, "p_signal", None)
    if values is None or np.asarray(values).size == 0:
        raise MedDLError(f"{base}: the WFDB record holds no samples")
    data = np.asarray(values, dtype=np.float64).T  # (L, C) → (C, L)
    names = [str(n) for n in (record.sig_name or [f"ch{i}" for i in range(data.shape[0])])]
    _check_not_all_nan(data, names, header)
    units = [str(u) for u in (record.units or [""] * data.shape[0])]
    fs = float(record.fs)
    if not np.isfinite(fs) or fs <= 0:
        raise MedDLError(f"{header}: the sampling frequency must be a positive number of Hz, got {record.fs!r}")
    return Signal(data.astype(np.float32), fs, names, units, str(base))


def write_wfdb(signal: Signal, folder: str | Path, name: str) -> Path:
    """Write a :class:`Signal` as a WFDB record: format 16, one ``.dat`` file next to the ``.hea`` header.

    Each channel's gain makes its largest absolute value 32,000 digital units (baseline 0), so the
    quantisation step is ``max|x| / 32000``; NaN samples are stored as WFDB's missing value (-32768) and read
    back as NaN.

    Args:
        signal: the signal to write; channels without units are written as ``"NU"`` (no units).
        folder: where to write (created if needed).
        name: the record name (letters, digits, ``_`` and ``-``).

    Returns:
        The path of the ``.hea`` header.
    """
    import wfdb

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    units = [u or "NU" for u in signal.units]
    channels = [c.replace(" ", "_") for c in signal.channels]  # a space would split the header line
    values = signal.data.astype(np.float64)  # (C, L)
    gains = []
    for channel in values:
        finite = channel[np.isfinite(channel)]
        peak = float(np.max(np.abs(finite))) if finite.size else 0.0
        gains.append(_WFDB_DIGITAL_PEAK / peak if peak > 0 else 1.0)
    digital = np.round(values * np.asarray(gains)[:, None])
    digital = np.where(np.isfinite(digital), digital, _WFDB_MISSING).astype(np.int64)
    wfdb.wrsamp(
        name,
        fs=signal.fs,
        units=units,
        sig_name=channels,
        d_signal=digital.T,  # (L, C)
        fmt=["16"] * len(channels),
        adc_gain=gains,
        baseline=[0] * len(channels),
        write_dir=str(folder),
    )
    return folder / f"{name}.hea"


# -- arrays ---------------------------------------------------------------------------------------


def read_signal_array(path: str | Path, fs: float | None = None) -> Signal:
    """Read a ``.npy`` array or a ``.csv`` table of samples.

    Args:
        path: ``.npy`` holding ``(C, L)`` or ``(L,)`` numbers, or ``.csv`` with one column per channel and an
            optional ``time`` column in seconds (evenly spaced).
        fs: sampling rate in Hz; required for ``.npy`` and for a CSV without a ``time`` column. With a
            ``time`` column it must agree with it (within 1 %).

    Returns:
        The samples as a :class:`Signal` (units ``""``: the file does not state them).

    Raises:
        MedDLError: the file is missing or unreadable, an array has the wrong shape or is not numeric, a CSV
            cell is not a number (its row, column and value are named, with the number of such cells), the
            time column is not evenly spaced, ``fs`` is missing or disagrees with the time column, or a
            channel holds only NaN.
    """
    path = Path(path)
    if not path.exists():
        raise MedDLError(f"signal file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _read_npy(path, fs)
    if suffix == ".csv":
        return _read_csv(path, fs)
    raise MedDLError(f"{path}: unsupported signal array type {suffix or '(no extension)'!r}; expected .npy or .csv")


def _read_npy(path: Path, fs: float | None) -> Signal:
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:  # ValueError for pickled objects or bad headers, OSError for truncated files
        raise MedDLError(f"{path}: cannot be read as a NumPy array: {_first_line(exc)}") from None
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise MedDLError(f"{path}: expected real numbers, got an array of dtype {array.dtype}")
    if array.ndim == 1:
        array = array[None]  # (1, L)
    if array.ndim != 2 or array.size == 0:
        raise MedDLError(f"{path}: expected an array of shape (channels, samples) or (samples,), got {array.shape}")
    if array.shape[0] > array.shape[1]:
        raise MedDLError(
            f"{path}: array of shape {array.shape} has more channels than samples; the layout is (channels, "
            f"samples) — transpose it (e.g. np.save(path, array.T))"
        )
    if fs is None:
        raise MedDLError(f"{path}: a .npy signal does not store its sampling rate; pass fs (Hz)")
    names = [f"ch{i}" for i in range(array.shape[0])]
    data = array.astype(np.float64)
    _check_not_all_nan(data, names, path)
    return Signal(data.astype(np.float32), _positive_fs(fs, path), names, [""] * len(names), str(path))


def _read_csv(path: Path, fs: float | None) -> Signal:
    frame = read_table(path)
    time_column = next((c for c in frame.columns if c.strip().lower() == "time"), None)
    channels = [c for c in frame.columns if c != time_column]
    if not channels:
        raise MedDLError(f"{path}: no signal column besides {time_column!r}")
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() & frame.notna()
    if bad.to_numpy().any():
        count = int(bad.to_numpy().sum())
        row, column = next((r, c) for r in bad.index for c in bad.columns if bad.at[r, c])
        raise MedDLError(
            f"{path}: {count} non-numeric cell(s), e.g. row {row}, column {column!r}: {frame.at[row, column]!r}"
        )
    if time_column is not None:
        time = numeric[time_column].to_numpy(dtype=np.float64)
        if len(time) < 2 or np.isnan(time).any():
            raise MedDLError(f"{path}: column {time_column!r} needs at least two times and no blank cell")
        steps = np.diff(time)
        step = float(np.median(steps))
        if step <= 0 or np.any(np.abs(steps - step) > 0.01 * step):
            i = int(np.argmax(np.abs(steps - step)))
            raise MedDLError(
                f"{path}: column {time_column!r} is not evenly spaced (step {steps[i]:g} s between rows "
                f"{frame.index[i]} and {frame.index[i + 1]}, median {step:g} s)"
            )
        time_fs = 1.0 / step
        if fs is not None and abs(fs - time_fs) > 0.01 * time_fs:
            raise MedDLError(f"{path}: fs={fs:g} Hz disagrees with the time column ({time_fs:g} Hz)")
        fs = time_fs
    if fs is None:
        raise MedDLError(f"{path}: no 'time' column; pass fs (Hz) to give the sampling rate")
    data = numeric[channels].to_numpy(dtype=np.float64).T  # (L, C) → (C, L)
    _check_not_all_nan(data, channels, path)
    return Signal(data.astype(np.float32), _positive_fs(fs, path), channels, [""] * len(channels), str(path))


def _positive_fs(fs: float, path: Path) -> float:
    try:
        value = float(fs)
    except (TypeError, ValueError):
        raise MedDLError(f"{path}: fs must be a number of Hz, got {fs!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise MedDLError(f"{path}: fs must be a positive number of Hz, got {fs!r}")
    return value


# -- dispatch and manifests -----------------------------------------------------------------------


def read_signal(path: str | Path, fs: float | None = None) -> Signal:
    """Read any supported signal file, choosing the reader by suffix (and content).

    A folder, a ``.hea`` file or a path ``p`` with a ``p.hea`` beside it is a WFDB record; ``.dcm``/``.dicom``
    (or a file with the DICOM preamble) a DICOM waveform; ``.npy`` and ``.csv`` arrays.

    Args:
        path: the signal file or record.
        fs: sampling rate for formats that do not store it (``.npy``, CSV without a time column).

    Returns:
        The :class:`Signal`.

    Raises:
        MedDLError: the path does not exist or its format is not supported, or the reader's own errors.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".hea" or (not path.exists() and Path(f"{path}.hea").exists()):
        return read_wfdb(path)
    if suffix in SIGNAL_ARRAY_SUFFIXES:
        return read_signal_array(path, fs)
    if suffix in DICOM_WAVEFORM_SUFFIXES or _has_dicom_preamble(path):
        return read_dicom_waveform(path)
    if not path.exists():
        raise MedDLError(f"signal file not found: {path}")
    if suffix == ".dat":
        return read_wfdb(path.with_suffix(""))
    raise MedDLError(
        f"{path}: unsupported signal format {suffix or '(no extension)'!r}; expected a WFDB record (.hea), "
        "a DICOM waveform (.dcm), .npy or .csv"
    )


def _has_dicom_preamble(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def signal_manifest(
    path: str | Path,
    path_column: str = "path",
    target: str = "label",
    patient_id: str | None = None,
    *,
    missing_files: Literal["error", "keep"] = "error",
) -> pd.DataFrame:
    """Read a manifest table listing one signal file per row with its label.

    Args:
        path: a CSV/TSV/Parquet manifest.
        path_column: the column holding each record's path, relative to the manifest's folder (or absolute).
            A WFDB record may be given without its ``.hea``.
        target: the label column. Blank labels are kept as missing (the pipeline drops and counts them).
        patient_id: the column identifying patients (for patient-level splits); without one, each record is
            its own patient (its path).
        missing_files: ``"error"``: rows naming files that do not exist are an error; ``"keep"``: they are
            returned, so a caller that skips unreadable records (and counts them) finds them when reading.

    Returns:
        Columns ``path`` (absolute, str), ``label``, ``patient_id`` (str) and ``row`` (the manifest's
        spreadsheet row number), in file order.

    Raises:
        MedDLError: a named column is missing, a path cell is blank, or files do not exist (the rows and the
            first missing paths are named).
    """
    path = Path(path)
    frame = read_table(path)
    for role, column in (("path_column", path_column), ("target", target), ("patient_id", patient_id)):
        if column is not None and column not in frame.columns:
            raise MedDLError(f"{path}: {role} column {column!r} not found; columns are {list(frame.columns)}")
    blank = frame.index[frame[path_column].isna() | (frame[path_column].astype(str).str.strip() == "")]
    if len(blank):
        raise MedDLError(f"{path}: {len(blank)} row(s) have no {path_column!r}, e.g. row {blank[0]}")
    root = path.parent
    resolved = [(root / str(value).strip()).resolve() for value in frame[path_column]]
    missing = [
        (row, str(file))
        for row, file in zip(frame.index, resolved, strict=True)
        if not file.exists() and not Path(f"{file}.hea").exists()
    ]
    if missing and missing_files == "error":
        examples = "; ".join(f"row {row}: {file}" for row, file in missing[:3])
        raise MedDLError(f"{path}: {len(missing)} signal file(s) listed in {path_column!r} do not exist ({examples})")
    # Without a patient column each record is its own patient.
    patients = frame[patient_id].astype(str).tolist() if patient_id is not None else [str(f) for f in resolved]
    return pd.DataFrame(
        {
            "path": [str(file) for file in resolved],
            "label": frame[target].to_numpy(),
            "patient_id": patients,
            "row": frame.index.to_numpy(),
        }
    )

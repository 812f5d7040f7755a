"""Listing the images of a data set with their labels, from a manifest table or from class folders.

:func:`image_manifest` is importable from :mod:`meddl.io.images` as well, where the image readers are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from meddl.errors import MedDLError
from meddl.io._image_types import DICOM_SUFFIXES, IMAGE_SUFFIXES, is_dicom_file
from meddl.io.tables import TABLE_SUFFIXES, read_table

__all__ = ["image_manifest"]


def image_manifest(
    path: str | Path,
    *,
    path_column: str = "path",
    target: str = "label",
    patient_id: str | None = None,
    label_columns: Sequence[str] | None = None,
    missing_files: str = "error",
) -> pd.DataFrame:
    """List the images of a data set with their labels, from a manifest CSV or from class folders.

    * A manifest (``.csv``, ``.tsv``, ``.parquet``): ``path_column`` names an image file or DICOM series
      folder, relative to the manifest's folder (absolute paths are kept); ``target`` (or ``label_columns``
      for multilabel) holds the label; ``patient_id`` optionally names the patient column.
    * A folder with one sub-folder per class (``benign/``, ``malignant/``): every file of a known image type
      in a class folder is one image, and every sub-folder of a class folder is one DICOM series. Other files
      (``.txt``, ``Thumbs.db``) and hidden entries are not images and are passed over.

    Args:
        path: the manifest file or the folder of class folders.
        path_column: manifest column with the image paths.
        target: manifest column with the label (ignored with ``label_columns``).
        patient_id: manifest column with the patient id (manifests only).
        label_columns: multilabel: one 0/1 column per finding (manifests only).
        missing_files: ``"error"`` (a file the manifest names that does not exist is an error naming its rows) or
            ``"keep"`` (kept, for a caller that skips and lists unreadable files: ``data.on_bad_file: skip``).

    Returns:
        A frame with ``path`` (absolute), ``label`` (or the ``label_columns``), ``patient_id`` (if given) and
        ``row``: the manifest row as a spreadsheet shows it (header = 1), ``<NA>`` for class folders. A blank
        label stays missing (NaN): the caller drops and counts such rows.

    Raises:
        MedDLError: missing columns, blank paths, paths that do not exist (how many, and the first few with
            their rows), an empty folder, a folder without class sub-folders, or a class folder without images.
    """
    path = Path(path)
    if not path.exists():
        raise MedDLError(f"data path not found: {path}")
    if path.is_dir():
        if patient_id is not None or label_columns:
            which = "data.patient_id" if patient_id is not None else "data.label_columns"
            raise MedDLError(
                f"{path}: {which} needs a manifest CSV; a folder of class folders only gives one label per image"
            )
        return _folder_manifest(path)
    if path.name.lower().endswith(TABLE_SUFFIXES):
        return _table_manifest(
            path, path_column, target, patient_id, list(label_columns) if label_columns else None, missing_files
        )
    if path.suffix.lower() == ".npz":
        raise MedDLError(f"{path}: an .npz holds the images themselves; read it with read_npz, not as a manifest")
    raise MedDLError(
        f"{path}: expected a manifest ({', '.join(TABLE_SUFFIXES)}) or a folder with one sub-folder per class"
    )


def _table_manifest(
    path: Path,
    path_column: str,
    target: str,
    patient_id: str | None,
    label_columns: list[str] | None,
    missing_files: str = "error",
) -> pd.DataFrame:
    table = read_table(path)
    wanted = [path_column, *(label_columns or [target]), *([patient_id] if patient_id else [])]
    missing = [column for column in wanted if column not in table.columns]
    if missing:
        raise MedDLError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"the manifest has {', '.join(repr(str(c)) for c in table.columns)}"
        )
    blank = table.index[table[path_column].isna() | (table[path_column].astype(str).str.strip() == "")]
    if len(blank):
        raise MedDLError(
            f"{path}: column {path_column!r} is blank in {len(blank)} row(s), e.g. row(s) {_rows(list(blank))}"
        )
    folder = path.parent.resolve()
    resolved = [_resolve(folder, str(value).strip()) for value in table[path_column]]
    absent = [
        (row, raw, p) for row, raw, p in zip(table.index, table[path_column], resolved, strict=True) if not p.exists()
    ]
    if absent and missing_files == "error":
        examples = "; ".join(f"row {row}: {str(raw).strip()!r}" for row, raw, _ in absent[:5])
        raise MedDLError(
            f"{path}: {len(absent)} of {len(table)} file(s) named in column {path_column!r} do not exist "
            f"(paths are relative to {folder}), e.g. {examples}"
        )
    frame = pd.DataFrame({"path": [str(p) for p in resolved]})
    if label_columns:
        for column in label_columns:
            frame[column] = table[column].to_numpy()
    else:
        frame["label"] = table[target].to_numpy()
    if patient_id:
        frame["patient_id"] = table[patient_id].to_numpy()
    frame["row"] = np.asarray(table.index, dtype=np.int64)
    return frame


def _folder_manifest(path: Path) -> pd.DataFrame:
    entries = [entry for entry in sorted(path.iterdir()) if not entry.name.startswith(".")]
    if not entries:
        raise MedDLError(f"{path}: the folder is empty; expected one sub-folder of images per class")
    classes = [entry for entry in entries if entry.is_dir()]
    if not classes:
        raise MedDLError(
            f"{path}: has {len(entries)} file(s) but no class sub-folders; put each class's images in a "
            "sub-folder named after the class (e.g. benign/, malignant/), or give a manifest CSV"
        )
    paths: list[str] = []
    labels: list[str] = []
    for class_folder in classes:
        items = [item for item in sorted(class_folder.iterdir()) if _is_image_item(item)]
        if not items:
            raise MedDLError(
                f"{class_folder}: class folder {class_folder.name!r} has no images "
                f"({', '.join(IMAGE_SUFFIXES)} files or DICOM series folders)"
            )
        paths.extend(str(item.resolve()) for item in items)
        labels.extend(class_folder.name for _ in items)
    return pd.DataFrame({"path": paths, "label": labels, "row": pd.array([pd.NA] * len(paths), dtype="Int64")})


def _is_image_item(item: Path) -> bool:
    if item.name.startswith("."):
        return False
    if item.is_dir():
        return any(
            child.is_file() and (child.name.lower().endswith(DICOM_SUFFIXES) or is_dicom_file(child))
            for child in item.iterdir()
        )
    name = item.name.lower()
    return name.endswith(IMAGE_SUFFIXES) or ("." not in name and is_dicom_file(item))


def _resolve(folder: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else folder / candidate


def _rows(rows: list[Any], limit: int = 5) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" (and {len(rows) - limit} more)" if len(rows) > limit else "")

"""The image list of a data set: a manifest (or folder, or npz) read, labels encoded, every file checked.

:func:`load_image_items` is what the image modality reads for training and external evaluation; decoding and
preprocessing happen later, lazily, in :mod:`meddl.data.image_dataset`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from meddl.data.tabular import encode_known_labels, encode_target
from meddl.errors import MedDLError
from meddl.io.images import ImageFormat, check_readable, image_manifest, read_npz

__all__ = ["ImageItems", "load_image_items"]


@dataclass
class ImageItems:
    """Every usable image of a data set: what to read, its label, its patient and (npz) its given split."""

    sources: list[Any]  # paths (files or DICOM series folders) or (npz path, split, index) keys
    arrays: dict[str, np.ndarray] | None  # npz: split name → (N, C, *spatial) images; else None
    target: np.ndarray
    classes: list[str]
    patient_ids: np.ndarray | None
    given_splits: np.ndarray | None
    rows: np.ndarray
    mask_paths: list[str | None]
    n_read: int
    dropped: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _encode_multilabel(frame: pd.DataFrame, columns: list[str], source: str) -> np.ndarray:
    values = frame[columns].apply(pd.to_numeric, errors="coerce")
    bad = values.isna() | ~values.isin([0, 1])
    if bad.to_numpy().any():
        row, column = next((r, c) for r in bad.index for c in columns if bad.loc[r, c])
        raise MedDLError(
            f"{source}: multilabel column {column!r} must hold 0 or 1, got {frame.loc[row, column]!r} (row {row})"
        )
    return values.to_numpy(dtype=np.int64)


class ImageSource(Protocol):
    """Where images and their labels are: the image modality's ``data`` section (its fields used here)."""

    @property
    def path(self) -> Path: ...
    @property
    def format(self) -> ImageFormat: ...
    @property
    def path_column(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def label_columns(self) -> list[str] | None: ...
    @property
    def positive_label(self) -> Any: ...
    @property
    def classes(self) -> Any: ...
    @property
    def patient_id(self) -> str | None: ...
    @property
    def spatial_dims(self) -> int: ...
    @property
    def on_bad_file(self) -> str: ...


def _beside(manifest: Path, value: str) -> Path:
    """A path from a manifest, relative to the manifest's folder unless absolute."""
    candidate = Path(value)
    return candidate if candidate.is_absolute() else (manifest.parent / candidate).resolve()


def load_image_items(
    data: ImageSource,
    task: str,
    *,
    log: Any = None,
    check: Callable[[str], str | None] | None = None,
    checking: str = "checking {n} image header(s)",
    known_classes: list[str] | None = None,
) -> ImageItems:
    """Read the manifest (or npz), encode labels, check every file can be read (skip or fail).

    Args:
        data: the experiment's ``data`` section.
        task: the experiment's task.
        log: optional ``callable(str)`` for progress messages.
        check: ``path -> reason or None``, run on every image of a manifest; default the header-level
            :func:`~meddl.io.images.check_readable` (nothing decoded: a file that only fails to decode is
            reported by the reader, naming it, when it is loaded).
        checking: the progress message before the check (``{n}``: the number of images).
        known_classes: a trained model's classes (external evaluation): a label outside them is an error naming
            its manifest row, never a new class.
    """
    say = log or (lambda message: None)
    check = check or (lambda item: check_readable(item, data.format))
    path = data.path
    source = path.name
    if data.format == "npz" or path.suffix.lower() == ".npz":
        splits = read_npz(path, data.spatial_dims)
        arrays, sources, labels, given = {}, [], [], []
        for split, (images, y) in splits.items():
            arrays[split] = images
            sources += [(str(path), split, i) for i in range(len(images))]
            labels.append(y)
            given += [split] * len(images)
        y_all = np.concatenate(labels)
        if task == "multilabel":
            target, classes = (
                y_all.astype(np.int64),
                list(data.label_columns or [f"label_{k}" for k in range(y_all.shape[1])]),
            )
        else:
            flat = pd.Series(y_all.reshape(len(y_all), -1)[:, 0])
            target, classes = encode_target(flat, task, data.positive_label, data.classes, "label", source)
        n = len(sources)
        return ImageItems(
            sources, arrays, target, classes, None, np.array(given, dtype=object), np.arange(1, n + 1), [None] * n, n
        )

    manifest = image_manifest(
        path,
        path_column=data.path_column,
        target=data.target,
        patient_id=data.patient_id,
        label_columns=data.label_columns,
        missing_files="keep" if data.on_bad_file == "skip" else "error",  # skipped and listed by the check below
    )
    if path.is_file() and "mask_path" not in manifest.columns:
        # Lesion masks (optional) score the heat maps; the manifest reader keeps only what it needs, so take
        # them from the CSV by row.
        from meddl.io.tables import read_table

        table = read_table(path)
        if "mask_path" in table.columns and "row" in manifest.columns:
            manifest = manifest.assign(mask_path=table["mask_path"].reindex(manifest["row"].to_numpy()).to_numpy())
    n_read = len(manifest)
    dropped: dict[str, int] = {}
    skipped: list[tuple[str, str]] = []
    say(checking.format(n=n_read))
    keep = np.ones(n_read, dtype=bool)
    every = max(1, -(-n_read // 10))  # a line per tenth of the files: checking may read every image in full
    for i, item in enumerate(manifest["path"]):
        if i and i % every == 0:
            say(f"checked {i}/{n_read} image(s)")
        reason = check(str(item))
        if reason is not None:
            if data.on_bad_file == "error":
                raise MedDLError(f"{item}: {reason} (set data.on_bad_file: skip to leave such files out)")
            keep[i] = False
            skipped.append((str(item), reason))
    if skipped:
        dropped["unreadable image files (data.on_bad_file: skip)"] = len(skipped)
    manifest = manifest.loc[keep]
    label_column = "label" if "label" in manifest.columns else data.target
    if task == "multilabel":
        columns = list(data.label_columns or [])
        target, classes = _encode_multilabel(manifest, columns, source), columns
    else:
        has_label = manifest[label_column].notna().to_numpy()
        dropped["missing label"] = int((~has_label).sum())
        manifest = manifest.loc[has_label]
        if known_classes is not None:
            labels = (
                manifest[label_column].set_axis(manifest["row"])
                if "row" in manifest.columns
                else manifest[label_column]
            )
            target, classes = encode_known_labels(labels, task, known_classes, data.target, source), known_classes
        else:
            target, classes = encode_target(
                manifest[label_column], task, data.positive_label, data.classes, data.target, source
            )
    if manifest.empty:
        raise MedDLError(f"{source}: no readable, labelled image left")
    patients = manifest["patient_id"].astype(str).to_numpy() if "patient_id" in manifest.columns else None
    masks = manifest["mask_path"].tolist() if "mask_path" in manifest.columns else [None] * len(manifest)
    rows = manifest["row"].to_numpy() if "row" in manifest.columns else np.arange(1, len(manifest) + 1)
    for row, mask in zip(rows, masks, strict=True):  # a lesion mask named but absent would silently not be scored
        if (
            mask is not None
            and not (isinstance(mask, float) and np.isnan(mask))
            and not _beside(path, str(mask)).exists()
        ):
            raise MedDLError(f"{source}: row {row}: the mask_path file {str(mask)!r} does not exist")
    return ImageItems(
        [str(p) for p in manifest["path"]],
        None,
        target,
        classes,
        patients,
        None,
        rows,
        [None if (m is None or (isinstance(m, float) and np.isnan(m))) else str(_beside(path, str(m))) for m in masks],
        n_read,
        dropped,
        skipped,
    )

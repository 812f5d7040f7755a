"""Where the slices of a DICOM series lie: the files of a series folder, their order along the slice normal, spacing.

Used by :mod:`meddl.io.dicom` to read and to check series folders and multi-frame files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from meddl.errors import MedDLError
from meddl.io._dicom_tags import _PIXEL_DATA_TAGS, _no_pixel_data, _shared_item, _two_floats
from meddl.io._image_types import DICOM_SUFFIXES, is_dicom_file

# Slices whose spacing differs from the median by more than this fraction are reported in meta["warnings"].
_SPACING_TOLERANCE = 0.1


@dataclass
class _SeriesLayout:
    """Where the slices of a series lie: their order along the slice normal and the spacing between them."""

    order: np.ndarray  # (D,) indices of the datasets, sorted along the normal
    positions: np.ndarray  # (D, 3) Image Position (Patient) of each dataset, mm
    normal: np.ndarray  # (3,) unit slice normal
    orientation: list[float]
    slice_spacing: float
    notes: list[str]


def _series_files(folder: Path) -> tuple[list[Path], list[str]]:
    """The DICOM files of a series folder and the names of the other files in it (passed over)."""
    if not folder.exists():
        raise MedDLError(f"DICOM series folder not found: {folder}")
    if not folder.is_dir():
        raise MedDLError(f"{folder}: expected a folder holding one DICOM series, got a file")
    entries = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    files = [p for p in entries if p.name.upper() != "DICOMDIR" and (_has_dicom_suffix(p) or is_dicom_file(p))]
    ignored = [p.name for p in entries if p not in files]
    if not files:
        others = f" ({len(entries)} other file(s), e.g. {entries[0].name!r})" if entries else ""
        raise MedDLError(f"{folder}: no DICOM files in the folder{others}")
    return files, ignored


def _series_layout(folder: Path, datasets: Sequence[tuple[Path, Any]]) -> _SeriesLayout:
    """Check that several slices make one volume (same size and orientation, distinct positions) and order them."""
    _check_same_size(folder, datasets)
    normal, orientation = _common_orientation(folder, datasets)
    positions = np.array([_position(path, dataset) for path, dataset in datasets])  # (D, 3)
    distance = positions @ normal  # (D,) along the slice normal
    order = np.argsort(distance, kind="stable")
    sorted_distance = distance[order]
    gaps = np.diff(sorted_distance)
    if np.any(gaps < 1e-4):
        i = int(np.argmin(gaps))
        first, second = datasets[order[i]][0].name, datasets[order[i + 1]][0].name
        raise MedDLError(
            f"{folder}: slices {first!r} and {second!r} lie at the same position ({sorted_distance[i]:.3f} mm "
            "along the slice normal); the folder holds repeated acquisitions (e.g. several time points or "
            "echoes), not one volume"
        )
    slice_spacing = float(np.median(gaps))
    notes: list[str] = []
    irregular = np.abs(gaps - slice_spacing) > _SPACING_TOLERANCE * slice_spacing
    if np.any(irregular):
        notes.append(
            f"slice gaps vary from {gaps.min():.3f} to {gaps.max():.3f} mm (median {slice_spacing:.3f} mm used); "
            "a slice may be missing"
        )
    return _SeriesLayout(order, positions, normal, orientation, slice_spacing, notes)


def _pixel_spacing(dataset: Any) -> tuple[float, float]:
    spacing = dataset.get("PixelSpacing")
    if spacing is None:
        measures = _shared_item(dataset, "PixelMeasuresSequence")
        spacing = measures.get("PixelSpacing") if measures is not None else None
    if spacing is None:
        spacing = dataset.get("ImagerPixelSpacing")
    return _two_floats(spacing)


def _frame_spacing(dataset: Any) -> tuple[float, list[str]]:
    """Spacing between the frames of a multi-frame file, and notes on how it was found."""
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence")
    orientation = dataset.get("ImageOrientationPatient")
    plane = _shared_item(dataset, "PlaneOrientationSequence")
    if orientation is None and plane is not None:
        orientation = plane.get("ImageOrientationPatient")
    if per_frame is not None and orientation is not None and len(per_frame) > 1:
        positions: list[list[float]] = []
        for group in per_frame:
            plane_position = group.get("PlanePositionSequence")
            if not plane_position or "ImagePositionPatient" not in plane_position[0]:
                positions = []
                break
            positions.append([float(v) for v in plane_position[0].ImagePositionPatient])
        if positions:
            normal = _normal(orientation)
            gaps = np.abs(np.diff(np.asarray(positions) @ normal))
            if len(gaps) and float(np.median(gaps)) > 0:
                return float(np.median(gaps)), []
    for source in (dataset, _shared_item(dataset, "PixelMeasuresSequence")):
        if source is None:
            continue
        for tag in ("SpacingBetweenSlices", "SliceThickness"):
            value = source.get(tag)
            if value not in (None, "") and float(value) > 0:
                return float(value), []
    return 1.0, ["the spacing between frames is not recorded; 1.0 used"]


def _check_one_series(folder: Path, datasets: Sequence[tuple[Path, Any]]) -> None:
    series: dict[str, list[Path]] = {}
    for path, dataset in datasets:
        series.setdefault(str(dataset.get("SeriesInstanceUID", "(no SeriesInstanceUID)")), []).append(path)
    if len(series) > 1:
        listing = "; ".join(
            f"{uid} ({len(paths)} file{'s' if len(paths) != 1 else ''}, e.g. {paths[0].name!r})"
            for uid, paths in sorted(series.items(), key=lambda item: -len(item[1]))
        )
        raise MedDLError(
            f"{folder}: holds {len(series)} DICOM series (SeriesInstanceUID): {listing}; "
            "one folder must hold one series"
        )


def _check_same_size(folder: Path, datasets: Sequence[tuple[Path, Any]]) -> None:
    sizes: dict[tuple[int, int], list[Path]] = {}
    for path, dataset in datasets:
        if not any(tag in dataset for tag in _PIXEL_DATA_TAGS):
            raise _no_pixel_data(path, dataset)
        if int(dataset.get("NumberOfFrames", 1) or 1) > 1:
            raise MedDLError(
                f"{path}: is a multi-frame file inside a series folder of {len(datasets)} files; "
                "read it on its own (one multi-frame file is a whole volume)"
            )
        sizes.setdefault((int(dataset.get("Rows", 0)), int(dataset.get("Columns", 0))), []).append(path)
    if len(sizes) > 1:
        listing = "; ".join(
            f"{rows}x{columns} ({len(paths)} file{'s' if len(paths) != 1 else ''}, e.g. {paths[0].name!r})"
            for (rows, columns), paths in sorted(sizes.items(), key=lambda item: -len(item[1]))
        )
        raise MedDLError(f"{folder}: slices have different sizes (rows x columns): {listing}")


def _common_orientation(folder: Path, datasets: Sequence[tuple[Path, Any]]) -> tuple[np.ndarray, list[float]]:
    first_orientation: np.ndarray | None = None
    first_path = datasets[0][0]
    for path, dataset in datasets:
        value = dataset.get("ImageOrientationPatient")
        if value is None or len(value) != 6:
            raise MedDLError(
                f"{path}: has no Image Orientation (Patient) (0020,0037); the slices of a series cannot be "
                "ordered without it"
            )
        orientation = np.array([float(v) for v in value])
        if first_orientation is None:
            first_orientation, first_path = orientation, path
        elif not np.allclose(orientation, first_orientation, atol=1e-3):
            raise MedDLError(
                f"{folder}: slices are oriented differently ({first_path.name!r}: {first_orientation.tolist()}, "
                f"{path.name!r}: {orientation.tolist()}); not one volume"
            )
    assert first_orientation is not None, "a series has at least one slice"
    return _normal(first_orientation), first_orientation.tolist()


def _position(path: Path, dataset: Any) -> list[float]:
    value = dataset.get("ImagePositionPatient")
    if value is None or len(value) != 3:
        raise MedDLError(
            f"{path}: has no Image Position (Patient) (0020,0032); the slices of a series cannot be ordered without it"
        )
    return [float(v) for v in value]


def _normal(orientation: Sequence[Any] | np.ndarray) -> np.ndarray:
    values = np.array([float(v) for v in orientation])
    normal = np.cross(values[:3], values[3:])
    length = float(np.linalg.norm(normal))
    return normal / length if length > 0 else np.array([0.0, 0.0, 1.0])


def _has_dicom_suffix(path: Path) -> bool:
    return path.name.lower().endswith(DICOM_SUFFIXES)

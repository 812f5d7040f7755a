"""Small helpers that read what a DICOM dataset says about itself: identifiers, transfer syntax, functional groups.

Shared by the readers and header checks in :mod:`meddl.io.dicom` and the series geometry in
:mod:`meddl.io._dicom_geometry`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meddl.errors import MedDLError

_PIXEL_DATA_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _meta(dataset: Any) -> dict[str, Any]:
    transfer_syntax = _transfer_syntax(dataset)
    sop_class = dataset.get("SOPClassUID")
    orientation = dataset.get("ImageOrientationPatient")
    position = dataset.get("ImagePositionPatient")
    return {
        "format": "dicom",
        "modality": str(dataset.get("Modality", "")) or None,
        "photometric": str(dataset.get("PhotometricInterpretation", "")) or None,
        "patient_id": str(dataset.get("PatientID", "")) or None,
        "study_uid": str(dataset.get("StudyInstanceUID", "")) or None,
        "series_uid": str(dataset.get("SeriesInstanceUID", "")) or None,
        "sop_class": getattr(sop_class, "name", None) if sop_class is not None else None,
        "transfer_syntax": getattr(transfer_syntax, "name", None),
        "number_of_frames": int(dataset.get("NumberOfFrames", 1) or 1),
        "orientation": [float(v) for v in orientation] if orientation is not None else None,
        "position": [float(v) for v in position] if position is not None else None,
        "warnings": [],
    }


def _no_pixel_data(path: Path, dataset: Any) -> MedDLError:
    """A file cut short and a non-image object both lack pixel data; pydicom stops quietly at the end of file."""
    file_meta = getattr(dataset, "file_meta", None)
    sop_class = dataset.get("SOPClassUID") or (file_meta.get("MediaStorageSOPClassUID") if file_meta else None)
    sop_name = str(getattr(sop_class, "name", "") or "")
    if len(dataset) == 0:
        return MedDLError(f"{path}: the DICOM file is truncated or corrupt: no data elements after the file header")
    if "Rows" in dataset or sop_name.endswith("Image Storage"):
        return MedDLError(
            f"{path}: the DICOM file is truncated or corrupt: it ends before its pixel data ({_describe(dataset)})"
        )
    return MedDLError(f"{path}: has no pixel data ({_describe(dataset)}); it is not an image")


def _describe(dataset: Any) -> str:
    file_meta = getattr(dataset, "file_meta", None)
    sop_class = dataset.get("SOPClassUID") or (file_meta.get("MediaStorageSOPClassUID") if file_meta else None)
    name = getattr(sop_class, "name", None) or (str(sop_class) if sop_class else "unknown")
    return f"SOP class {name!r}, modality {str(dataset.get('Modality', '')) or 'not given'}"


def _transfer_syntax(dataset: Any) -> Any:
    file_meta = getattr(dataset, "file_meta", None)
    return file_meta.get("TransferSyntaxUID") if file_meta is not None else None


def _shared_item(dataset: Any, name: str) -> Any:
    shared = dataset.get("SharedFunctionalGroupsSequence")
    if not shared:
        return None
    sequence = shared[0].get(name)
    return sequence[0] if sequence else None


def _two_floats(value: Any) -> tuple[float, float]:
    try:
        row, column = (float(v) for v in value)
    except (TypeError, ValueError):
        return 1.0, 1.0
    return (row if row > 0 else 1.0), (column if column > 0 else 1.0)

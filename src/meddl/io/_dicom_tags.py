"""Small helpers that read what a DICOM dataset says about itself: identifiers, transfer syntax, functional groups.

Shared by the readers and header checks in :mod:`meddl.io.dicom` and the series geometry in
:mod:`meddl.io._dicom_geometry`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from meddl.errors import MedDLError

_PIXEL_DATA_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_PIXEL_DATA_TAG_NUMBERS = (0x7FE00008, 0x7FE00009, 0x7FE00010)
# Elements the readers compute with: one number each, or several (orientation, position).
_ONE_NUMBER = frozenset(
    {
        "Rows",
        "Columns",
        "BitsAllocated",
        "BitsStored",
        "SamplesPerPixel",
        "NumberOfFrames",
        "PixelRepresentation",
        "RescaleSlope",
        "RescaleIntercept",
        "SpacingBetweenSlices",
        "SliceThickness",
        "SamplingFrequency",
    }
)
# (Pixel Spacing is not here: :func:`_two_floats` already reads a spacing that is not two numbers as unknown, 1.0.)
_NUMBERS = frozenset({"ImageOrientationPatient", "ImagePositionPatient"})


def _parse_elements(dataset: Any, path: Path) -> None:
    """Convert every data element of ``dataset`` (nested sequences and the file meta included) now.

    pydicom keeps each element's raw bytes and converts them the first time the element is read, so a corrupt
    value (an unknown VR, a length that is not a multiple of the value's size, a sequence cut short) would
    otherwise fail in whichever line first touches it, outside the reader's handling of a corrupt file. The
    caller calls this inside that handling. Pixel data is left as it is (a header check leaves it on disk); other
    values a header check left on disk are read, as a corrupt length field can make any element look long.

    Raises:
        MedDLError: an element the readers compute with (*Rows*, *Rescale Slope*, *Image Position*…) does not
            hold finite numbers (a corrupt byte can turn its value representation into text), naming the file
            and the element.
        Exception: whatever pydicom raises on a corrupt element; the caller turns it into a MedDLError.
    """
    file_meta = getattr(dataset, "file_meta", None)
    if file_meta is not None:
        _parse_elements(file_meta, path)
    for tag in list(dataset.keys()):
        if int(tag) in _PIXEL_DATA_TAG_NUMBERS:
            continue
        element = dataset[tag]
        if element.VR == "SQ":
            for item in element.value or []:
                _parse_elements(item, path)
        elif element.keyword in _ONE_NUMBER or element.keyword in _NUMBERS:
            _check_numbers(element, path)


def _check_numbers(element: Any, path: Path) -> None:
    from pydicom.multival import MultiValue

    value = element.value
    if value is None or value == "" or value == []:
        return  # an empty element: the readers use their default
    values = list(value) if isinstance(value, list | tuple | MultiValue) else [value]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) and _finite(v) for v in values)
    if not numbers or (element.keyword in _ONE_NUMBER and len(values) != 1):
        shown = repr(value)[:60]
        expected = "one finite number" if element.keyword in _ONE_NUMBER else "finite numbers"
        raise MedDLError(
            f"{path}: the DICOM file is truncated or corrupt: {element.keyword} {element.tag} holds {shown} "
            f"(value representation {element.VR}); expected {expected}"
        )


def _finite(value: float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer beyond the float range
        return False


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
    known_class = bool(sop_name) and sop_name != str(sop_class)  # pydicom names every registered SOP class
    if "Rows" in dataset or sop_name.endswith("Image Storage") or not known_class:
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

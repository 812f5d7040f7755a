"""Small helpers that read what a DICOM dataset says about itself: identifiers, transfer syntax, functional groups.

Shared by the readers and header checks in :mod:`meddl.io.dicom` and the series geometry in
:mod:`meddl.io._dicom_geometry`.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import Iterator
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


# What a single-file image read converts before it reads anything: the numbers it computes with (checked here, so
# that a corrupt one is named) and the sequences that may hold more of them (multi-frame functional groups). The
# rest it reads (identifiers, photometric interpretation) is converted where it is read, inside the same handling.
_NUMBER_KEYWORDS = frozenset(
    _ONE_NUMBER
    | _NUMBERS
    | {"ModalityLUTSequence", "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"}
)
# What reading an image computes with or reports (pixels, rescale, spacing, geometry, identifiers); sequences among
# them are converted whole. The rest of a file (its dates, names, private tags) is never looked at by an image read.
_IMAGE_KEYWORDS = frozenset(
    _ONE_NUMBER
    | _NUMBERS
    | {
        "PixelSpacing",
        "ImagerPixelSpacing",
        "PhotometricInterpretation",
        "PlanarConfiguration",
        "HighBit",
        "Modality",
        "PatientID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPClassUID",
        "SOPInstanceUID",
        "ModalityLUTSequence",
        "SharedFunctionalGroupsSequence",
        "PerFrameFunctionalGroupsSequence",
    }
)


_FILE_META_TAGS = (0x00020002, 0x00020010)  # Media Storage SOP Class UID, Transfer Syntax UID: what readers use


@functools.cache
def _tags(keywords: frozenset[str]) -> tuple[int, ...]:
    from pydicom.datadict import tag_for_keyword

    return tuple(tag for tag in map(tag_for_keyword, sorted(keywords)) if tag is not None)


def _parse_elements(dataset: Any, path: Path, keywords: frozenset[str] | None = None) -> None:
    """Convert the data elements of ``dataset`` now: every one (nested sequences and the file meta included), or
    with ``keywords`` only the top-level elements named (sequences among them whole) and the file meta's
    transfer syntax and SOP class.

    ``keywords`` is for a reader that touches nothing else outside its own handling of a corrupt value (a single
    file: :data:`_NUMBER_KEYWORDS`; a series: :data:`_IMAGE_KEYWORDS`): converting a value costs ~15 µs, and a file
    carries dozens the reader never reads.

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
    if keywords is not None:
        for source, tags in ((file_meta, _FILE_META_TAGS), (dataset, _tags(keywords))):
            if source is None:
                continue
            present = source.keys()  # a dict view: no Tag() per lookup
            for tag in tags:
                if tag in present:
                    _parse_element(source[tag], path)
        return
    if file_meta is not None:
        _parse_elements(file_meta, path)
    for tag in list(dataset.keys()):
        if int(tag) in _PIXEL_DATA_TAG_NUMBERS:
            continue
        _parse_element(dataset[tag], path)


def _parse_element(element: Any, path: Path) -> None:
    if element.VR == "SQ":
        for item in element.value or []:
            _parse_elements(item, path)
        return
    keyword = element.keyword
    if keyword in _ONE_NUMBER or keyword in _NUMBERS:
        _check_numbers(element, keyword, path)


def _check_numbers(element: Any, keyword: str, path: Path) -> None:
    from pydicom.multival import MultiValue

    value = element.value
    if value is None or value == "" or value == []:
        return  # an empty element: the readers use their default
    values = list(value) if isinstance(value, list | tuple | MultiValue) else [value]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) and _finite(v) for v in values)
    if not numbers or (keyword in _ONE_NUMBER and len(values) != 1):
        shown = repr(value)[:60]
        expected = "one finite number" if keyword in _ONE_NUMBER else "finite numbers"
        raise MedDLError(
            f"{path}: the DICOM file is truncated or corrupt: {keyword} {element.tag} holds {shown} "
            f"(value representation {element.VR}); expected {expected}"
        )


# Elements whose raw bytes :class:`FastValues` converts itself, by their standard value representation; the VR
# a file states must match it (anything else, e.g. UN, is left to pydicom).
_FAST_VR = {
    "Rows": "US",
    "Columns": "US",
    "BitsAllocated": "US",
    "BitsStored": "US",
    "HighBit": "US",
    "SamplesPerPixel": "US",
    "PixelRepresentation": "US",
    "PlanarConfiguration": "US",
    "NumberOfFrames": "IS",
    "RescaleSlope": "DS",
    "RescaleIntercept": "DS",
    "PixelSpacing": "DS",
    "ImagerPixelSpacing": "DS",
    "SliceThickness": "DS",
    "SpacingBetweenSlices": "DS",
    "ImageOrientationPatient": "DS",
    "ImagePositionPatient": "DS",
    "Modality": "CS",
    "PhotometricInterpretation": "CS",
    "PatientID": "LO",
    "StudyInstanceUID": "UI",
    "SeriesInstanceUID": "UI",
    "SOPClassUID": "UI",
    "SOPInstanceUID": "UI",
}
_NOT_FAST = object()  # "leave this element to pydicom"
_ABSENT = object()


@functools.cache
def _fast_tag(keyword: str) -> int | None:
    from pydicom.datadict import tag_for_keyword

    return tag_for_keyword(keyword)


def _fast_value(raw: Any, vr: str) -> Any:
    """The value of a raw element of value representation ``vr`` as pydicom would give it (a number or a list of
    them, a str, a UID), converted from its bytes; ``_NOT_FAST`` when that is not plainly safe (big-endian, a
    stated VR that is not ``vr``, text that is not ASCII, a value that does not parse, several text values)."""
    data = raw.value
    stated = raw.VR
    if not isinstance(data, bytes) or (stated is not None and str(stated) != vr):
        return _NOT_FAST
    if vr == "US":
        if not raw.is_little_endian or len(data) != 2:
            return _NOT_FAST
        return data[0] | (data[1] << 8)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return _NOT_FAST
    if vr in ("DS", "IS"):
        items = text.strip(" \x00").split("\\")
        if items == [""]:
            return None  # an empty number: pydicom's None
        try:
            numbers = [float(item) if vr == "DS" else int(item) for item in items]
        except ValueError:
            return _NOT_FAST  # pydicom says what is wrong, and the check names the element
        if not all(math.isfinite(n) for n in numbers):
            return _NOT_FAST
        return numbers[0] if len(numbers) == 1 else numbers
    text = text.rstrip(" \x00") if vr != "CS" else text.strip(" \x00")
    if "\\" in text or not text.isprintable():
        return _NOT_FAST  # several values (pydicom's MultiValue), or control codes (ISO 2022 escapes): pydicom's
    if vr != "UI":
        return text
    from pydicom.uid import UID  # here, not at the top: the other values skip the import on every read

    return UID(text)


class FastValues:
    """A pydicom dataset, read as the image reader reads it: the values in :data:`_FAST_VR` are converted from
    their raw bytes once each (about 1 µs, against about 10 µs for pydicom's conversion, which also builds a data
    element), everything else is the dataset's own (``pixel_array``, sequences, ``file_meta``…).

    Numbers come back as ``int``/``float`` or lists of them where pydicom gives ``DSfloat``/``IS``/``MultiValue``;
    the readers compute with them the same way (tested against pydicom on every DICOM file and series pydicom ships).
    """

    __slots__ = ("_values", "dataset")

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        self._values: dict[str, Any] = {}

    def _fast(self, keyword: str) -> Any:
        """The keyword's value, ``_ABSENT`` when the dataset lacks it, ``_NOT_FAST`` when pydicom must convert it."""
        value = self._values.get(keyword, _NOT_FAST)
        if value is not _NOT_FAST:
            return value
        tag = _fast_tag(keyword) if keyword in _FAST_VR else None
        if tag is None:
            return _NOT_FAST
        raw = self.dataset.get_item(tag)
        if raw is None:
            value = _ABSENT
        elif not getattr(raw, "is_raw", False):
            return _NOT_FAST  # already a data element: the dataset has it converted
        else:
            value = _fast_value(raw, _FAST_VR[keyword])
            if value is _NOT_FAST:
                return value
        self._values[keyword] = value
        return value

    def convert(self, keyword: str) -> bool:
        """Convert ``keyword`` now (checking a number); ``False`` when pydicom must (then the caller does)."""
        value = self._fast(keyword)
        if value is _NOT_FAST:
            return False
        if keyword in _ONE_NUMBER and isinstance(value, list):
            del self._values[keyword]
            return False  # several numbers where one belongs: pydicom's value, and the check's error
        return True

    def convert_all(self, keywords: frozenset[str]) -> frozenset[str]:
        """Convert (and check) each of ``keywords`` this can; the rest, for pydicom (:func:`_parse_elements`)."""
        return frozenset(k for k in keywords if not self.convert(k))

    def get(self, keyword: Any, default: Any = None) -> Any:
        value = self._fast(keyword) if isinstance(keyword, str) else _NOT_FAST
        if value is _NOT_FAST:
            return self.dataset.get(keyword, default)
        return default if value is _ABSENT else value

    def __contains__(self, keyword: Any) -> bool:
        value = self._fast(keyword) if isinstance(keyword, str) else _NOT_FAST
        if value is _NOT_FAST:
            return keyword in self.dataset
        return value is not _ABSENT

    def __getattr__(self, name: str) -> Any:
        value = self._fast(name) if name in _FAST_VR else _NOT_FAST
        if value is _NOT_FAST:
            return getattr(self.dataset, name)
        if value is _ABSENT:
            raise AttributeError(name)
        return value

    def __len__(self) -> int:
        return len(self.dataset)


_validation_lock = threading.Lock()
_validation_depth = 0
_validation_saved: Any = None


@contextlib.contextmanager
def values_unvalidated() -> Iterator[None]:
    """pydicom's check of each value against its VR's rules switched off while the block runs (restored after,
    also when blocks on several threads overlap).

    MedDL checks the values it computes with itself (:func:`_check_numbers`) and reports problems by file and
    element; pydicom's check would only add warnings, at about a third of the cost of converting each value.
    """
    from pydicom import config

    global _validation_depth, _validation_saved
    with _validation_lock:
        if _validation_depth == 0:
            _validation_saved = config.settings.reading_validation_mode
            config.settings.reading_validation_mode = config.IGNORE
        _validation_depth += 1
    try:
        yield
    finally:
        with _validation_lock:
            _validation_depth -= 1
            if _validation_depth == 0:
                config.settings.reading_validation_mode = _validation_saved


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

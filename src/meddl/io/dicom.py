"""Reading DICOM files and series with pydicom, into the values a radiologist reads.

* The modality LUT is applied (pydicom's ``apply_modality_lut``: *Rescale Slope/Intercept*, or a *Modality
  LUT Sequence*), so CT comes back in Hounsfield units. Enhanced multi-frame files that keep the rescale in
  their functional groups are rescaled frame by frame.
* ``MONOCHROME1`` (higher value = darker, common in radiographs) is inverted over the stored value range, so
  that every grey image reads like ``MONOCHROME2``: higher = brighter.
* A multi-frame file is a volume ``(C, F, H, W)``; a series folder is a volume ``(C, D, H, W)`` whose slices
  are sorted by *Image Position (Patient)* projected on the slice normal (the cross product of the two
  direction cosines in *Image Orientation (Patient)*), with the slice spacing taken from those positions.
* Spacing is ``(row spacing, column spacing)`` from *Pixel Spacing* (or *Imager Pixel Spacing* for
  projection radiographs), with the slice spacing in front for volumes; 1.0 where the file does not say.

Errors name the file and the reason: not DICOM, truncated or corrupt, no pixel data (e.g. a Structured
Report, named by its SOP class and modality), a transfer syntax that cannot be decoded here, several series
in one folder, mixed slice sizes, missing position tags.

:func:`check_dicom_file` and :func:`check_dicom_series` find the same problems from the headers alone, without
decoding a pixel: the data elements are parsed with the pixel data skipped over (``defer_size``), and the pixel
data element's length is checked against *Rows* × *Columns* × frames × samples × bits and against the file's size.
What only decoding can find (a corrupt compressed codestream) is left to the readers, which name the file.

The geometry of a series (file listing, slice order, spacing) is in :mod:`meddl.io._dicom_geometry`, the small
dataset helpers in :mod:`meddl.io._dicom_tags`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from meddl.errors import MedDLError
from meddl.io._dicom_geometry import _check_one_series, _frame_spacing, _pixel_spacing, _series_files, _series_layout
from meddl.io._dicom_tags import (
    _IMAGE_KEYWORDS,
    _NUMBER_KEYWORDS,
    _PIXEL_DATA_TAGS,
    FastValues,
    _meta,
    _no_pixel_data,
    _parse_elements,
    _transfer_syntax,
    values_unvalidated,
)
from meddl.io._image_types import ImageVolume, _first_line

__all__ = ["check_dicom_file", "check_dicom_series", "read_dicom_file", "read_dicom_series"]

# Values longer than this are skipped over, not read, by the header check (only their offset and length are kept).
_DEFER_BYTES = 1024
_UNDEFINED_LENGTH = 0xFFFFFFFF


def read_dicom_file(path: str | Path) -> ImageVolume:
    """Read one DICOM file: a 2D image, or a volume for a multi-frame file.

    Args:
        path: the DICOM file (a ``.dcm`` or any file with the ``DICM`` preamble).

    Returns:
        ``(C, H, W)`` or, for a multi-frame file, ``(C, F, H, W)``; C is 1 for grey, 3 for colour. Values
        after the modality LUT (Hounsfield units for CT); ``MONOCHROME1`` inverted.

    Raises:
        MedDLError: the file is missing, not DICOM, truncated or corrupt, has no pixel data, or uses a
            transfer syntax that cannot be decoded here.
    """
    path = Path(path)
    with values_unvalidated():
        # Only the numbers are converted (and checked) up front; the rest is converted where it is read below,
        # inside the same handling of a corrupt value. Converting each element twice over cost a fifth of a read.
        dataset = _read_dataset(path, keywords=_NUMBER_KEYWORDS, fast=True)
        try:
            array = _pixels(dataset, path)
            row_spacing, column_spacing = _pixel_spacing(dataset)
            meta = _meta(dataset)
            if array.ndim == 4:  # (C, F, H, W): multi-frame
                frame_spacing, frame_warnings = _frame_spacing(dataset)
                meta["warnings"] = frame_warnings
                return ImageVolume(array, (frame_spacing, row_spacing, column_spacing), str(path), meta)
        except MedDLError:
            raise
        except Exception as exc:  # a value pydicom cannot convert (an unknown VR, a bad length)
            raise MedDLError(f"{path}: the DICOM file is truncated or corrupt: {_first_line(exc)}") from None
    return ImageVolume(array, (row_spacing, column_spacing), str(path), meta)


def read_dicom_series(folder: str | Path) -> ImageVolume:
    """Read all slices of one DICOM series in a folder as a volume.

    Files that are neither ``.dcm`` nor start with the ``DICM`` preamble (a ``README``, ``DICOMDIR``) are not
    slices; they are passed over and listed in ``meta["ignored_files"]``. A folder with a single DICOM file
    gives what :func:`read_dicom_file` gives for it.

    Args:
        folder: a folder holding the files of one series.

    Returns:
        ``(C, D, H, W)`` sorted along the slice normal, spacing ``(slice, row, column)``. Slices whose gap
        differs from the median by more than 10 % (a missing slice?) are reported in ``meta["warnings"]``.

    Raises:
        MedDLError: no DICOM files, several series (each named with its number of files), slices of
            different sizes (a file of each size named), slices without position/orientation tags, slices
            with different orientations or two slices at the same position, or an unreadable file.
    """
    folder = Path(folder)
    files, ignored = _series_files(folder)
    with values_unvalidated():
        datasets = [(path, _read_dataset(path, keywords=_IMAGE_KEYWORDS, fast=True)) for path in files]
    _check_one_series(folder, datasets)
    if len(datasets) == 1:
        volume = read_dicom_file(files[0])
        volume.meta["ignored_files"] = ignored
        return volume
    layout = _series_layout(folder, datasets)
    order = layout.order
    slices = [_pixels(datasets[i][1], datasets[i][0]) for i in order]  # each (C, H, W)
    if len({s.shape for s in slices}) > 1:
        raise MedDLError(f"{folder}: slices decode to different shapes {sorted({s.shape for s in slices})}")
    array = np.stack(slices, axis=1)  # (C, D, H, W)
    first = datasets[order[0]][1]
    row_spacing, column_spacing = _pixel_spacing(first)
    meta = _meta(first)
    meta.update(
        {
            "orientation": layout.orientation,
            "position": layout.positions[order[0]].tolist(),
            "slice_normal": layout.normal.tolist(),
            "files": [datasets[i][0].name for i in order],
            "ignored_files": ignored,
            "warnings": layout.notes,
        }
    )
    return ImageVolume(array, (layout.slice_spacing, row_spacing, column_spacing), str(folder), meta)


def check_dicom_file(path: str | Path) -> None:
    """Check that a DICOM file holds a whole, decodable-looking image, from its header alone.

    The data elements are parsed with long values (the pixel data) skipped over, not read. Found here: a missing
    or empty file, not DICOM, a header cut short, no pixel data (a Structured Report…), a header that does not
    describe an image (*Rows* or *Columns* 0, unknown *Bits Allocated*), uncompressed pixel data shorter than
    *Rows* × *Columns* × frames × samples × bits, a file that ends inside its pixel data, a compressed transfer
    syntax with no decoder installed, or compressed pixel data that is not a valid sequence of fragments.
    A corrupt compressed codestream is only found by decoding it: :func:`read_dicom_file` names the file then.

    Args:
        path: the DICOM file.

    Raises:
        MedDLError: the problem, naming the file, worded as :func:`read_dicom_file` words it.
    """
    path = Path(path)
    _check_pixel_header(_read_dataset(path, header_only=True), path)


def check_dicom_series(folder: str | Path) -> None:
    """:func:`check_dicom_file` for every slice of a series folder, plus the series checks of
    :func:`read_dicom_series` (one series, one slice size, orientation and positions present, no two slices at
    the same position), all from the headers.

    Args:
        folder: a folder holding the files of one series.

    Raises:
        MedDLError: the problem, naming the folder or the file, worded as :func:`read_dicom_series` words it.
    """
    folder = Path(folder)
    files, _ = _series_files(folder)
    datasets = [(path, _read_dataset(path, header_only=True)) for path in files]
    _check_one_series(folder, datasets)
    if len(datasets) > 1:
        _series_layout(folder, datasets)
    for path, dataset in datasets:
        _check_pixel_header(dataset, path)


# -- reading --------------------------------------------------------------------------------------


def _read_dataset(
    path: Path, *, header_only: bool = False, keywords: frozenset[str] | None = None, fast: bool = False
) -> Any:
    """The parsed file; ``header_only`` skips over values longer than ``_DEFER_BYTES`` (the pixel data)
    without reading them, keeping their offset and length. Every value is converted (checked) now, or with
    ``keywords`` only those named (see :func:`~meddl.io._dicom_tags._parse_elements`). ``fast``: the dataset
    wrapped in :class:`~meddl.io._dicom_tags.FastValues`, which converts the common image values from their bytes
    (a third of a small image's read went on pydicom converting a dozen values)."""
    import pydicom

    try:
        dataset: Any = pydicom.dcmread(path, defer_size=_DEFER_BYTES if header_only else None)
        values = FastValues(dataset) if fast else None
        if values is not None and keywords is not None:
            keywords = values.convert_all(keywords)  # its own conversions first; pydicom converts what they leave
        _parse_elements(dataset, path, keywords)  # pydicom converts values lazily: those used now, in this try
        if values is not None:
            dataset = values
    except MedDLError:
        raise
    except Exception as exc:  # pydicom's parser raises many types (EOFError, struct.error, ValueError…) on bad bytes
        # The path is looked at only now that the read failed (three stat calls on every read cost a tenth of it).
        raise _unreadable(path, exc) from None
    return dataset


def _unreadable(path: Path, exc: Exception) -> MedDLError:
    """Why ``pydicom.dcmread`` (or converting a value) failed on ``path``, in words."""
    from pydicom.errors import InvalidDicomError

    if not path.exists():
        return MedDLError(f"DICOM file not found: {path}")
    if path.is_dir():
        return MedDLError(f"{path}: is a folder; read a DICOM series folder with read_dicom_series")
    if path.stat().st_size == 0:
        return MedDLError(f"{path}: the file is empty")
    if isinstance(exc, InvalidDicomError):
        return MedDLError(f"{path}: not a DICOM file (no 'DICM' marker after the 128-byte preamble)")
    return MedDLError(f"{path}: the DICOM file is truncated or corrupt: {_first_line(exc)}")


def _pixel_transfer_syntax(dataset: Any, path: Path) -> Any:
    """The transfer syntax the pixel data is encoded in; a UID that is not one cannot say how to decode it."""
    transfer_syntax = _transfer_syntax(dataset)
    if transfer_syntax is not None and not transfer_syntax.is_transfer_syntax:
        raise MedDLError(
            f"{path}: unsupported transfer syntax {str(transfer_syntax)[:64]!r}: the TransferSyntaxUID (0002,0010) "
            "is not a standard DICOM transfer syntax (a private one, or a corrupt file); convert the file to an "
            "uncompressed transfer syntax"
        )
    return transfer_syntax


def _pixels(dataset: Any, path: Path) -> np.ndarray:
    """Decoded, rescaled, MONOCHROME2-like pixels, channel-first: (C, H, W) or (C, F, H, W)."""
    if not any(tag in dataset for tag in _PIXEL_DATA_TAGS):
        raise _no_pixel_data(path, dataset)
    transfer_syntax = _pixel_transfer_syntax(dataset, path)
    try:
        raw = _uncompressed_grey(dataset, transfer_syntax)
        if raw is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. "pixel data is longer than expected": pydicom trims it
                raw = np.asarray(dataset.pixel_array)
    except Exception as exc:  # decoders raise NotImplementedError, RuntimeError, ValueError… by plugin
        reason = " ".join(str(exc).split()) or type(exc).__name__  # pydicom lists each plugin on its own line
        if transfer_syntax is not None and transfer_syntax.is_compressed:
            if "missing dependencies" in reason or isinstance(exc, NotImplementedError):
                raise MedDLError(
                    f"{path}: unsupported transfer syntax {transfer_syntax.name!r} ({transfer_syntax}): no decoder for "
                    f"it is installed ({reason}); install one of them or convert the file to an uncompressed "
                    "transfer syntax"
                ) from None
            raise MedDLError(
                f"{path}: unsupported transfer syntax {transfer_syntax.name!r} ({transfer_syntax}) or corrupt pixel "
                f"data: decoding failed ({reason}); convert the file to an uncompressed transfer syntax"
            ) from None
        raise MedDLError(f"{path}: the pixel data cannot be decoded (truncated or corrupt?): {reason}") from None
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    if samples == 1:
        values = _rescale(raw, dataset, frames)
        if str(dataset.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
            low, high = _value_range(dataset, raw, values)
            values = (low + high) - values
        array = values[None]  # (1, H, W) or (1, F, H, W)
    else:
        array = np.moveaxis(raw.astype(np.float32), -1, 0)  # (H, W, C) → (C, H, W); (F, H, W, C) → (C, F, H, W)
    expected = 3 if frames == 1 else 4
    if array.ndim != expected:
        raise MedDLError(
            f"{path}: pixel data of shape {raw.shape} does not match NumberOfFrames={frames}, SamplesPerPixel={samples}"
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def _uncompressed_grey(dataset: Any, transfer_syntax: Any) -> np.ndarray | None:
    """The stored values of uncompressed little-endian greyscale pixel data, straight from its bytes — what
    pydicom's ``pixel_array`` returns for it (unused high bits corrected as it does), without the set-up its decoder
    framework costs on every call (about as long as the rest of a small image's read and preprocessing together).
    ``None`` for everything else (compressed, big-endian, colour, float, 1-bit, too short): pydicom decodes those.
    """
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    if transfer_syntax not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian) or "PixelData" not in dataset:
        return None
    bits = int(dataset.get("BitsAllocated", 0) or 0)
    stored = int(dataset.get("BitsStored", bits) or bits)
    if int(dataset.get("SamplesPerPixel", 1) or 1) != 1 or bits not in (8, 16, 32) or not 1 <= stored <= bits:
        return None
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    signed = int(dataset.get("PixelRepresentation", 0) or 0) == 1
    dtype = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")
    data = dataset.PixelData
    count = rows * columns * frames
    if rows < 1 or columns < 1 or frames < 1 or not isinstance(data, bytes) or len(data) < count * dtype.itemsize:
        return None  # pydicom says what is wrong
    array = np.frombuffer(data, dtype, count).reshape((frames, rows, columns) if frames > 1 else (rows, columns))
    if stored < bits:  # PS3.5 8.1.1: the unused high bits are not part of the value (sign-extended when signed)
        shift = bits - stored
        array = np.right_shift(np.left_shift(array, shift), shift)
    return array


def _check_pixel_header(dataset: Any, path: Path) -> None:
    """What :func:`_pixels` would fail on, found from a ``header_only`` dataset without decoding."""
    tag = next((name for name in _PIXEL_DATA_TAGS if name in dataset), None)
    if tag is None:
        raise _no_pixel_data(path, dataset)
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    bits = int(dataset.get("BitsAllocated", 0) or 0)
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if rows < 1 or columns < 1 or bits not in (1, 8, 16, 32, 64) or samples not in (1, 3, 4) or frames < 1:
        raise MedDLError(
            f"{path}: the DICOM header does not describe an image: Rows={rows}, Columns={columns}, "
            f"BitsAllocated={bits}, SamplesPerPixel={samples}, NumberOfFrames={frames}"
        )
    transfer_syntax = _pixel_transfer_syntax(dataset, path)
    element = dataset.get_item(tag, keep_deferred=True)
    length = int(element.length) if hasattr(element, "length") else len(element.value or b"")
    if transfer_syntax is not None and transfer_syntax.is_encapsulated and tag == "PixelData":
        _check_decoder(transfer_syntax, path)
        _check_fragments(element, frames, path)
        return
    needed = (rows * columns * frames * samples * bits + 7) // 8
    if length == _UNDEFINED_LENGTH or length < needed:
        shown = "undefined" if length == _UNDEFINED_LENGTH else f"{length} bytes"
        raise MedDLError(
            f"{path}: the pixel data cannot be decoded (truncated or corrupt?): the pixel data element holds "
            f"{shown} but Rows × Columns × frames × samples × bits ({rows} × {columns} × {frames} × {samples} × "
            f"{bits}) need {needed} bytes"
        )
    value_tell = getattr(element, "value_tell", None)
    deflated = transfer_syntax is not None and "Deflate" in str(getattr(transfer_syntax, "name", ""))
    if value_tell is not None and not deflated:  # a deflated file's offsets count inflated bytes
        size = path.stat().st_size
        if int(value_tell) + needed > size:
            raise MedDLError(
                f"{path}: the DICOM file is truncated or corrupt: it ends {size - int(value_tell)} bytes into its "
                f"{needed}-byte pixel data (file of {size} bytes)"
            )


def _check_decoder(transfer_syntax: Any, path: Path) -> None:
    """A compressed transfer syntax needs a decoder plugin installed (pydicom names those it could use)."""
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(transfer_syntax)
        available = bool(decoder.is_available)
        missing = "; ".join(decoder.missing_dependencies) if not available else ""
    except (NotImplementedError, ValueError) as exc:
        available, missing = False, _first_line(exc)
    if not available:
        raise MedDLError(
            f"{path}: unsupported transfer syntax {transfer_syntax.name!r} ({transfer_syntax}): no decoder for it "
            f"is installed ({missing}); install one of them or convert the file to an uncompressed transfer syntax"
        )


def _check_fragments(element: Any, frames: int, path: Path) -> None:
    """Encapsulated pixel data must parse as a Basic Offset Table and at least one fragment per frame."""
    from pydicom.encaps import parse_fragments

    value = element.value
    if not isinstance(value, bytes | bytearray):
        return  # left deferred: a defined length, checked when decoded
    try:
        # Skip the Basic Offset Table item: (FFFE,E000) tag, 4-byte length, then its value.
        table_length = int.from_bytes(value[4:8], "little") if len(value) >= 8 else None
        if value[:4] != b"\xfe\xff\x00\xe0" or table_length is None:
            raise ValueError("no Basic Offset Table item at the start of the encapsulated pixel data")
        fragments, _ = parse_fragments(value[8 + table_length :])
    except ValueError as exc:
        raise MedDLError(
            f"{path}: the DICOM file is truncated or corrupt: its compressed pixel data is not a valid sequence "
            f"of fragments ({_first_line(exc)})"
        ) from None
    if fragments < frames:
        raise MedDLError(
            f"{path}: the DICOM file is truncated or corrupt: its compressed pixel data holds {fragments} "
            f"fragment(s) for {frames} frame(s)"
        )


def _rescale(raw: np.ndarray, dataset: Any, frames: int) -> np.ndarray:
    """Stored values → modality values (HU for CT): top-level tags, or per frame from the functional groups."""
    from pydicom.pixels import apply_modality_lut

    if dataset.get("ModalityLUTSequence"):
        pydicom_dataset = dataset.dataset if isinstance(dataset, FastValues) else dataset
        return np.asarray(apply_modality_lut(raw, pydicom_dataset), dtype=np.float32)
    if "RescaleSlope" in dataset or "RescaleIntercept" in dataset:
        values = raw.astype(np.float32)
        if "RescaleSlope" in dataset and "RescaleIntercept" in dataset:
            # apply_modality_lut's linear rescale (it needs both tags), in float32 and in place: no float64 copy
            values *= np.float32(dataset.RescaleSlope)
            values += np.float32(dataset.RescaleIntercept)
        return values
    per_frame = [_functional_rescale(dataset, i) for i in range(frames)]
    values = raw.astype(np.float32)
    if all(item is None for item in per_frame):
        return values
    for i, item in enumerate(per_frame):
        slope, intercept = item if item is not None else (1.0, 0.0)
        if frames == 1:
            values = values * slope + intercept
        else:
            values[i] = values[i] * slope + intercept
    return values


def _functional_rescale(dataset: Any, frame: int) -> tuple[float, float] | None:
    groups = []
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and len(per_frame) > frame:
        groups.append(per_frame[frame])
    shared = dataset.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    for group in groups:
        transform = group.get("PixelValueTransformationSequence")
        if transform:
            item = transform[0]
            return float(item.get("RescaleSlope", 1.0)), float(item.get("RescaleIntercept", 0.0))
    return None


def _value_range(dataset: Any, raw: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """The range of modality values the stored bits can hold, used to invert MONOCHROME1."""
    bits = int(dataset.get("BitsStored", raw.dtype.itemsize * 8))
    if int(dataset.get("PixelRepresentation", 0)) == 1:
        stored_low, stored_high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        stored_low, stored_high = 0, 2**bits - 1
    if dataset.get("ModalityLUTSequence"):  # a lookup table: the range is the table's, take the data's
        return float(values.min()), float(values.max())
    rescale = (
        (float(dataset.get("RescaleSlope", 1.0)), float(dataset.get("RescaleIntercept", 0.0)))
        if "RescaleSlope" in dataset or "RescaleIntercept" in dataset
        else _functional_rescale(dataset, 0) or (1.0, 0.0)
    )
    slope, intercept = rescale
    ends = sorted((stored_low * slope + intercept, stored_high * slope + intercept))
    return ends[0], ends[1]

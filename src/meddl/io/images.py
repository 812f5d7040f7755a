"""Reading medical images (DICOM, NIfTI, PNG/JPEG), MedMNIST-style ``.npz`` files and image manifests.

Every image comes back as an :class:`ImageVolume`: a float32, channel-first array — ``(C, H, W)`` for 2D,
``(C, D, H, W)`` for 3D — with the voxel spacing per spatial axis and what the file said about itself.
Values are kept as numbers: Hounsfield units for CT (rescale applied), the stored grey levels for PNG
(16-bit PNGs are not squeezed into 8 bits). Windowing and normalisation belong to ``preprocess/``.

Axis order per format:

* DICOM: ``(C, H, W)`` = rows × columns; a series or multi-frame file is ``(C, D, H, W)`` with the slices
  sorted along the slice normal (see :mod:`meddl.io.dicom`).
* NIfTI: the voxel axes after reorientation to RAS+ (nibabel's ``as_closest_canonical``), so the same anatomy
  gives the same array whatever orientation the file was saved in; a third axis of length 1 is dropped (2D).
* PNG/JPEG: ``(C, H, W)``, grey → 1 channel, RGB → 3; an alpha channel is dropped.

Every problem with a user's file is a :class:`~meddl.errors.MedDLError` that names the file and the reason.

This module holds the readers of single images and their header checks. The shared types live in
:mod:`meddl.io._image_types`, the ``.npz`` reader in :mod:`meddl.io._npz` and the manifests in
:mod:`meddl.io._manifests`; all are importable from here.
"""

from __future__ import annotations

import math
import stat
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from meddl.errors import MedDLError
from meddl.io._image_types import (
    DICOM_SUFFIXES,
    IMAGE_SUFFIXES,
    NIFTI_SUFFIXES,
    PNG_SUFFIXES,
    ImageFormat,
    ImageVolume,
    _first_line,
    is_dicom_file,
)
from meddl.io._manifests import image_manifest
from meddl.io._npz import NPZ_SPLITS, read_npz
from meddl.io.dicom import check_dicom_file, check_dicom_series, read_dicom_file, read_dicom_series

__all__ = [
    "DICOM_SUFFIXES",
    "IMAGE_SUFFIXES",
    "NIFTI_SUFFIXES",
    "NPZ_SPLITS",
    "PNG_SUFFIXES",
    "ImageFormat",
    "ImageVolume",
    "check_readable",
    "image_channels",
    "image_geometry",
    "image_manifest",
    "is_dicom_file",
    "read_image",
    "read_npz",
    "unreadable_reason",
]


# -- single images --------------------------------------------------------------------------------


def read_image(path: str | Path, *, format: ImageFormat = "auto") -> ImageVolume:
    """Read one image: a DICOM file or series folder, a NIfTI file, or a PNG/JPEG.

    Args:
        path: the file, or a folder holding one DICOM series.
        format: ``"auto"`` decides from the suffix (``.dcm``, ``.nii``, ``.nii.gz``, ``.png``, ``.jpg``,
            ``.jpeg``), from the ``DICM`` preamble for DICOM files without a suffix, and treats a folder as a
            DICOM series. ``"dicom"``, ``"nifti"`` or ``"png"`` (which also reads JPEG) force a reader.

    Returns:
        The image as an :class:`ImageVolume`.

    Raises:
        MedDLError: the file is missing, empty, of an unknown type, or cannot be decoded; the message names
            the file and the reason.
    """
    path = Path(path)
    kind = _dispatch(path, format)
    if kind == "series":
        return read_dicom_series(path)
    if kind == "dicom":
        return read_dicom_file(path)
    if kind == "nifti":
        return _read_nifti(path)
    return _read_pillow(path)


def _dispatch(path: Path, format: ImageFormat) -> str:
    """Which reader a path needs (``series``, ``dicom``, ``nifti`` or ``png``), after the checks every format
    shares: the path exists, is not an npz, is a file or a DICOM series folder, and is not empty."""
    if format == "npz":
        raise MedDLError(f"{path}: a .npz holds a whole data set, not one image; read it with read_npz")
    try:
        status = path.stat()  # once: every read starts here
    except (FileNotFoundError, NotADirectoryError):
        raise MedDLError(f"image not found: {path}") from None
    folder = stat.S_ISDIR(status.st_mode)
    kind = _detect_format(path, folder=folder) if format == "auto" else format
    if folder:
        if kind != "dicom":
            raise MedDLError(f"{path}: is a folder; only a DICOM series can be read from a folder (format {kind!r})")
        return "series"
    if status.st_size == 0:
        raise MedDLError(f"{path}: the file is empty")
    if kind not in ("dicom", "nifti", "png"):
        raise MedDLError(f"{path}: unknown image format {kind!r}; expected auto, dicom, nifti or png")
    return kind


def check_readable(path: str | Path, format: ImageFormat = "auto", *, decode: bool = False) -> str | None:
    """Why an image cannot be read, in one line, or ``None`` if it reads.

    Used by ``data.on_bad_file`` to check a data set before training. By default only what a file says about
    itself is checked, without decoding its pixels, so the check costs a fraction of a read:

    * DICOM: the header (:func:`meddl.io.dicom.check_dicom_file`; every slice of a series folder, with the series
      checks): pixel data present, *Rows* / *Columns* / *Bits Allocated* sane, uncompressed pixel data as long as
      they require and inside the file, a decoder installed for a compressed transfer syntax.
    * NIfTI: the header (nibabel's lazy image), and the file's size — for ``.nii.gz`` the uncompressed size in the
      gzip trailer — against the data the header describes. When the trailer does not settle it (a multi-member
      gzip), the stream is decompressed without building the array.
    * PNG: the header and every chunk's CRC up to the end marker (Pillow's ``verify``), without decompressing.
      JPEG: the header and the end-of-image marker; a file without one at its end is decoded in full.

    What passes here can still fail to decode (a corrupt compressed codestream); the reader then raises a
    :class:`~meddl.errors.MedDLError` naming the file when the image is loaded. ``decode=True`` reads the image
    in full instead, finding every problem at the price of a whole read.

    Args:
        path: the file or DICOM series folder.
        format: as for :func:`read_image`.
        decode: read and decode the whole image (:func:`read_image`) instead of checking headers.

    Returns:
        The reason without the file name in front (e.g. ``"the file is empty"``), or ``None``.
    """
    try:
        if decode:
            read_image(path, format=format)
        else:
            _check_header(Path(path), format)
    except MedDLError as exc:
        return unreadable_reason(exc, path)
    return None


def image_geometry(path: str | Path, format: ImageFormat = "auto") -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The spatial size and voxel spacing (mm) of an image from its header alone, without decoding pixels.

    Axes and spacing follow :func:`read_image` (NIfTI in RAS order; a DICOM series' slice spacing from its first
    header's *SpacingBetweenSlices* or *SliceThickness*, 1 mm when neither is given); PNG/JPEG have spacing 1.

    Raises:
        MedDLError: the header cannot be read (naming the file).
    """
    path = Path(path)
    kind = _dispatch(path, format)
    if kind in {"dicom", "series"}:
        from meddl.io._dicom_geometry import _pixel_spacing
        from meddl.io._dicom_tags import _PIXEL_DATA_TAGS, _no_pixel_data

        files, dataset = _dicom_header(path, kind)
        if not any(tag in dataset for tag in _PIXEL_DATA_TAGS):  # a report, a plan, a waveform: no image size
            raise _no_pixel_data(files[0], dataset)
        rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
        if rows < 1 or columns < 1:
            raise MedDLError(f"{files[0]}: the DICOM header does not describe an image: Rows={rows}, Columns={columns}")
        row_spacing, column_spacing = _pixel_spacing(dataset)
        frames = len(files) if kind == "series" else int(dataset.get("NumberOfFrames", 1) or 1)
        if frames > 1:
            between = dataset.get("SpacingBetweenSlices") or dataset.get("SliceThickness") or 1.0
            return (frames, rows, columns), (float(between), row_spacing, column_spacing)
        return (rows, columns), (row_spacing, column_spacing)
    if kind == "nifti":
        import nibabel as nib

        try:
            header = nib.as_closest_canonical(_nifti_header(path)).header
        except Exception as exc:  # nibabel raises many types on a bad header
            raise MedDLError(f"{path}: not a readable NIfTI file: {_first_line(exc)}") from None
        shape, zooms = header.get_data_shape(), header.get_zooms()
        if not shape or min(shape) < 1:
            raise MedDLError(f"{path}: the NIfTI header gives the image shape {shape}; each axis needs a voxel or more")
        axes = 2 if len(shape) == 2 or (len(shape) == 3 and shape[2] == 1) else 3
        return tuple(int(n) for n in shape[:axes]), tuple(float(z) if z > 0 else 1.0 for z in zooms[:axes])
    width, height = _pillow_header(path)[1]
    return (int(height), int(width)), (1.0, 1.0)


def _dicom_header(path: Path, kind: str) -> tuple[list[Path], Any]:
    """The files of a DICOM image (one, or a series folder's) and the first one's header, no pixels read."""
    from meddl.io._dicom_geometry import _series_files
    from meddl.io.dicom import _read_dataset

    files = _series_files(path)[0] if kind == "series" else [path]
    return files, _read_dataset(files[0], header_only=True)


def _nifti_header(path: Path) -> Any:
    """A NIfTI image, loaded lazily (header only until its data is asked for)."""
    import nibabel as nib

    try:
        return nib.load(path)
    except Exception as exc:  # nibabel raises many types on a bad header
        raise MedDLError(f"{path}: not a readable NIfTI file: {_first_line(exc)}") from None


def _pillow_header(path: Path) -> tuple[str, tuple[int, int]]:
    """A PNG/JPEG's mode and (width, height), from its header."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.mode, image.size
    except Exception as exc:  # Pillow raises many types on a bad header
        raise MedDLError(f"{path}: not a readable image: {_first_line(exc)}") from None


_ALPHA_MODES = {"RGBA", "PA", "LA", "La", "RGBa"}
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def image_channels(path: str | Path, format: ImageFormat = "auto") -> tuple[int, bool]:
    """How many channels :func:`read_image` gives for an image (1 grey, 3 colour; a NIfTI's 4th axis), and
    whether the reader drops an alpha (transparency) channel from it — from the header alone.

    Raises:
        MedDLError: the header cannot be read (naming the file).
    """
    path = Path(path)
    kind = _dispatch(path, format)
    if kind in {"dicom", "series"}:
        return int(_dicom_header(path, kind)[1].get("SamplesPerPixel", 1) or 1), False
    if kind == "nifti":
        shape = _nifti_header(path).shape
        return (int(shape[3]) if len(shape) == 4 else 1), False
    mode = _pillow_header(path)[0]
    return (1 if mode in _GREY_MODES else 3), mode in _ALPHA_MODES


def unreadable_reason(error: MedDLError, path: str | Path) -> str:
    """The first line of a reader's error with the file name in front taken off (it is listed beside it)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else "cannot be read"
    for prefix in (f"{path}: ", f"{Path(path)}: "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def _check_header(path: Path, format: ImageFormat) -> None:
    kind = _dispatch(path, format)
    if kind == "series":
        check_dicom_series(path)
    elif kind == "dicom":
        check_dicom_file(path)
    elif kind == "nifti":
        _check_nifti(path)
    else:
        _check_pillow(path)


def _detect_format(path: Path, *, folder: bool | None = None) -> str:
    if path.is_dir() if folder is None else folder:
        return "dicom"
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(PNG_SUFFIXES):
        return "png"
    if name.endswith(DICOM_SUFFIXES) or is_dicom_file(path):
        return "dicom"
    if path.stat().st_size == 0:
        raise MedDLError(f"{path}: the file is empty")
    suffix = "".join(path.suffixes[-2:]) if name.endswith(".gz") else path.suffix
    raise MedDLError(
        f"{path}: unknown image type {suffix or '(no extension)'!r} and no DICOM preamble; "
        f"expected one of {', '.join(IMAGE_SUFFIXES)}, or a DICOM series folder"
    )


def _read_nifti(path: Path) -> ImageVolume:
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError
    from nibabel.orientations import OrientationError
    from nibabel.spatialimages import HeaderDataError

    try:
        image = nib.load(path)
    except (ImageFileError, HeaderDataError, OSError, ValueError, EOFError, zlib.error) as exc:
        raise MedDLError(f"{path}: not a readable NIfTI file: {_first_line(exc)}") from None
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise MedDLError(f"{path}: expected a NIfTI image, got {type(image).__name__}")
    _check_nifti_size(path, image)  # before decoding: a corrupt header can describe terabytes of voxels
    original_affine = np.asarray(image.affine, dtype=float)
    try:
        original_axes = "".join(str(code) for code in nib.aff2axcodes(original_affine))
        canonical = nib.as_closest_canonical(image)
    except (OrientationError, ValueError) as exc:
        raise MedDLError(
            f"{path}: the NIfTI header's affine {original_affine.round(3).tolist()} gives no orientation: "
            f"{_first_line(exc)}"
        ) from None
    try:
        data = np.asarray(canonical.get_fdata(dtype=np.float32))
    except (OSError, ValueError, EOFError, zlib.error) as exc:
        raise MedDLError(f"{path}: the NIfTI data cannot be read (truncated or corrupt?): {_first_line(exc)}") from None
    zooms = tuple(float(z) for z in canonical.header.get_zooms())
    if data.ndim == 2:  # (X, Y)
        array, spacing = data[None], zooms[:2]
    elif data.ndim == 3 and data.shape[2] == 1:  # one slice: a 2D image
        array, spacing = data[None, :, :, 0], zooms[:2]
    elif data.ndim == 3:  # (X, Y, Z)
        array, spacing = data[None], zooms[:3]
    elif data.ndim == 4:  # (X, Y, Z, T) → time points / echoes as channels
        array, spacing = np.moveaxis(data, 3, 0), zooms[:3]
    else:
        raise MedDLError(f"{path}: NIfTI image of shape {data.shape} has {data.ndim} axes; expected 2 to 4")
    spacing = tuple(s if s > 0 else 1.0 for s in spacing)
    meta = {
        "format": "nifti",
        "modality": None,
        "orientation": "RAS",
        "original_orientation": original_axes,
        "affine": np.asarray(canonical.affine, dtype=float).tolist(),
        "original_affine": original_affine.tolist(),
    }
    return ImageVolume(np.ascontiguousarray(array, dtype=np.float32), spacing, str(path), meta)


def _check_nifti(path: Path) -> None:
    """The NIfTI header, and the bytes on disk against the data it describes (see :func:`check_readable`)."""
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError

    try:
        image = nib.load(path)  # lazy: the header only, the data stays on disk behind a proxy
    except (ImageFileError, HeaderDataError, OSError, ValueError, EOFError, zlib.error) as exc:
        raise MedDLError(f"{path}: not a readable NIfTI file: {_first_line(exc)}") from None
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise MedDLError(f"{path}: expected a NIfTI image, got {type(image).__name__}")
    _check_nifti_size(path, image)


def _check_nifti_size(path: Path, image: Any) -> None:
    """The bytes on disk against the voxels the header of a loaded (lazy) NIfTI image describes."""
    proxy: Any = image.dataobj  # where the voxels start (the header's vox_offset as nibabel applies it), shape, dtype
    shape = tuple(int(n) for n in proxy.shape)
    if not 2 <= len(shape) <= 4:
        raise MedDLError(f"{path}: NIfTI image of shape {shape} has {len(shape)} axes; expected 2 to 4")
    if min(shape) < 1:
        raise MedDLError(f"{path}: the NIfTI header gives the image shape {shape}; every axis needs at least 1 voxel")
    dtype = np.dtype(proxy.dtype)
    needed = int(proxy.offset) + math.prod(shape) * dtype.itemsize  # exact: np.prod would wrap around
    compressed = path.name.lower().endswith(".gz")
    if compressed:
        # ISIZE is the uncompressed size modulo 2**32 (of the last gzip member only): when it is exactly the size
        # the header needs, the stream is whole; a file cut short ends in arbitrary bytes instead, and a
        # multi-member gzip may disagree too, so anything else is settled by decompressing the stream.
        if needed < 2**32 and _gzip_trailer_size(path) == needed:
            return
        stored = _gunzip_size(path)
    else:
        stored = path.stat().st_size
    if stored < needed:
        raise MedDLError(
            f"{path}: the NIfTI data cannot be read (truncated or corrupt?): the header describes {shape} {dtype} "
            f"voxels ending at byte {needed}, but the {'uncompressed ' if compressed else ''}file holds {stored} bytes"
        )


def _gzip_trailer_size(path: Path) -> int | None:
    """ISIZE, the last 4 bytes of a gzip file (uncompressed size mod 2**32), or None if the file is too short."""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        if handle.tell() < 18:  # a gzip header (10 bytes) and trailer (8 bytes)
            return None
        handle.seek(-4, 2)
        return int.from_bytes(handle.read(4), "little")


def _gunzip_size(path: Path) -> int:
    """How many bytes a gzip file decompresses to (all members), counted in bounded chunks: no array is built.

    A stream that is cut short or corrupt counts the bytes it gives before the damage (the caller compares them
    with what it needs), as do bytes that are not gzip data after the last member.
    """
    total = 0
    decompressor = zlib.decompressobj(wbits=31)  # 31: a gzip header and trailer around the deflate stream
    with path.open("rb") as handle:
        pending = b""
        while True:
            if not pending:
                pending = handle.read(1 << 16)
                if not pending:
                    break
            try:
                total += len(decompressor.decompress(pending, 1 << 20))
            except zlib.error:  # corrupt data, or bytes after the last member: count what came before
                break
            if decompressor.eof:  # a member ended; another may follow
                pending = decompressor.unused_data
                decompressor = zlib.decompressobj(wbits=31)
            else:
                pending = decompressor.unconsumed_tail
        if not decompressor.eof:
            total += len(decompressor.flush())
    return total


def _check_pillow(path: Path) -> None:
    """The PNG/JPEG header and structure without decoding the pixels (see :func:`check_readable`)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            kind = opened.format
            opened.verify()  # PNG: every chunk and its CRC up to IEND, not decompressed
    except UnidentifiedImageError:
        raise MedDLError(f"{path}: not a readable PNG/JPEG image (unknown or corrupt image data)") from None
    except Image.DecompressionBombError as exc:
        raise MedDLError(f"{path}: the image cannot be decoded (truncated or corrupt?): {_first_line(exc)}") from None
    except (OSError, ValueError, SyntaxError, EOFError):
        # verify() is stricter than decoding (e.g. a PNG whose end marker is cut off after whole image data
        # decodes): only a failed decode rejects the file.
        _read_pillow(path)
        return
    if kind == "JPEG":
        with path.open("rb") as handle:
            handle.seek(-min(path.stat().st_size, 2), 2)
            ends_with_marker = handle.read() == b"\xff\xd9"
        if not ends_with_marker:  # cut short, or trailing bytes after the image: only decoding tells
            _read_pillow(path)


def _read_pillow(path: Path) -> ImageVolume:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            opened.load()
            mode = opened.mode
            image: Image.Image = opened
            if mode in {"RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"}:
                image = opened.convert("RGB")
            elif mode in {"LA", "La", "1"}:
                image = opened.convert("L")
            pixels = np.asarray(image)
    except UnidentifiedImageError:
        raise MedDLError(f"{path}: not a readable PNG/JPEG image (unknown or corrupt image data)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise MedDLError(f"{path}: the image cannot be decoded (truncated or corrupt?): {_first_line(exc)}") from None
    if pixels.ndim == 2:  # (H, W)
        array = pixels[None]
    elif pixels.ndim == 3:  # (H, W, C)
        array = np.moveaxis(pixels, 2, 0)
    else:
        raise MedDLError(f"{path}: unexpected image of shape {pixels.shape} (mode {mode})")
    meta = {
        "format": "png" if path.suffix.lower() == ".png" else "jpeg",
        "modality": None,
        "photometric": "RGB" if array.shape[0] == 3 else "MONOCHROME2",
        "mode": mode,
        "alpha_dropped": mode in _ALPHA_MODES,
        "bits": 16 if pixels.dtype == np.uint16 else 8 if pixels.dtype == np.uint8 else 32,
    }
    return ImageVolume(np.ascontiguousarray(array, dtype=np.float32), (1.0, 1.0), str(path), meta)

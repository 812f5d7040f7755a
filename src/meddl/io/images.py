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
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from meddl.errors import MedDLError
from meddl.io.tables import TABLE_SUFFIXES, read_table

__all__ = [
    "DICOM_SUFFIXES",
    "IMAGE_SUFFIXES",
    "NIFTI_SUFFIXES",
    "NPZ_SPLITS",
    "PNG_SUFFIXES",
    "ImageFormat",
    "ImageVolume",
    "check_readable",
    "image_manifest",
    "is_dicom_file",
    "read_image",
    "read_npz",
    "unreadable_reason",
]

ImageFormat = Literal["auto", "dicom", "nifti", "png", "npz"]

PNG_SUFFIXES = (".png", ".jpg", ".jpeg")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom")
IMAGE_SUFFIXES = PNG_SUFFIXES + NIFTI_SUFFIXES + DICOM_SUFFIXES

#: The split names of a MedMNIST-style ``.npz`` (file prefix → MedDL split name).
NPZ_SPLITS = {"train": "train", "val": "validation", "test": "test"}


@dataclass
class ImageVolume:
    """One image as read from disk.

    Attributes:
        array: float32, channel-first: ``(C, H, W)`` for 2D or ``(C, D, H, W)`` for 3D.
        spacing: voxel size (mm where the file says so) per spatial axis, in the array's order; 1.0 when unknown.
        source: the file or folder it was read from.
        meta: what the file says about the image: ``format``, ``modality``, ``photometric``, ``orientation``,
            ``affine`` (NIfTI), DICOM identifiers, ``warnings``…
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    source: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.array.ndim in (3, 4), f"array must be (C, H, W) or (C, D, H, W), got shape {self.array.shape}"
        assert len(self.spacing) == self.array.ndim - 1, (
            f"spacing {self.spacing} must have one value per spatial axis of shape {self.array.shape}"
        )

    @property
    def spatial_dims(self) -> int:
        """2 for an image, 3 for a volume."""
        return self.array.ndim - 1

    @property
    def channels(self) -> int:
        """Number of channels (1 grey, 3 RGB)."""
        return int(self.array.shape[0])


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
        from meddl.io.dicom import read_dicom_series

        return read_dicom_series(path)
    if kind == "dicom":
        from meddl.io.dicom import read_dicom_file

        return read_dicom_file(path)
    if kind == "nifti":
        return _read_nifti(path)
    return _read_pillow(path)


def _dispatch(path: Path, format: ImageFormat) -> str:
    """Which reader a path needs (``series``, ``dicom``, ``nifti`` or ``png``), after the checks every format
    shares: the path exists, is not an npz, is a file or a DICOM series folder, and is not empty."""
    if format == "npz":
        raise MedDLError(f"{path}: a .npz holds a whole data set, not one image; read it with read_npz")
    if not path.exists():
        raise MedDLError(f"image not found: {path}")
    kind = _detect_format(path) if format == "auto" else format
    if path.is_dir():
        if kind != "dicom":
            raise MedDLError(f"{path}: is a folder; only a DICOM series can be read from a folder (format {kind!r})")
        return "series"
    if path.stat().st_size == 0:
        raise MedDLError(f"{path}: the file is empty")
    if kind not in ("dicom", "nifti", "png"):
        raise MedDLError(f"{path}: unknown image format {kind!r}; expected auto, dicom, nifti or png")
    return kind


def is_dicom_file(path: str | Path) -> bool:
    """True if the file starts with the DICOM preamble (128 bytes, then ``DICM``)."""
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


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
        from meddl.io.dicom import check_dicom_series

        check_dicom_series(path)
    elif kind == "dicom":
        from meddl.io.dicom import check_dicom_file

        check_dicom_file(path)
    elif kind == "nifti":
        _check_nifti(path)
    else:
        _check_pillow(path)


def _detect_format(path: Path) -> str:
    if path.is_dir():
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

    try:
        image = nib.load(path)
    except (ImageFileError, OSError, ValueError, EOFError, zlib.error) as exc:
        raise MedDLError(f"{path}: not a readable NIfTI file: {_first_line(exc)}") from None
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise MedDLError(f"{path}: expected a NIfTI image, got {type(image).__name__}")
    original_affine = np.asarray(image.affine, dtype=float)
    try:
        original_axes = "".join(str(code) for code in nib.aff2axcodes(original_affine))
        canonical = nib.as_closest_canonical(image)
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

    try:
        image = nib.load(path)  # lazy: the header only, the data stays on disk behind a proxy
    except (ImageFileError, OSError, ValueError, EOFError, zlib.error) as exc:
        raise MedDLError(f"{path}: not a readable NIfTI file: {_first_line(exc)}") from None
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise MedDLError(f"{path}: expected a NIfTI image, got {type(image).__name__}")
    proxy: Any = image.dataobj  # where the voxels start (the header's vox_offset as nibabel applies it), shape, dtype
    shape = tuple(int(n) for n in proxy.shape)
    if not 2 <= len(shape) <= 4:
        raise MedDLError(f"{path}: NIfTI image of shape {shape} has {len(shape)} axes; expected 2 to 4")
    dtype = np.dtype(proxy.dtype)
    needed = int(proxy.offset) + int(np.prod(shape)) * dtype.itemsize
    compressed = path.name.lower().endswith(".gz")
    if compressed:
        # ISIZE is the uncompressed size modulo 2**32 (of the last gzip member only): when it is exactly the size
        # the header needs, the stream is whole; a file cut short ends in arbitrary bytes instead, and a
        # multi-member gzip may disagree too, so anything else is settled by decompressing the stream.
        if _gzip_trailer_size(path) == needed % 2**32:
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
        "bits": 16 if pixels.dtype == np.uint16 else 8 if pixels.dtype == np.uint8 else 32,
    }
    return ImageVolume(np.ascontiguousarray(array, dtype=np.float32), (1.0, 1.0), str(path), meta)


# -- MedMNIST-style npz ---------------------------------------------------------------------------


def read_npz(path: str | Path, spatial_dims: int = 2) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a MedMNIST-style ``.npz`` that carries its own train / validation / test splits.

    Args:
        path: an ``.npz`` with ``train_images``, ``train_labels``, ``val_images``, ``val_labels``,
            ``test_images`` and ``test_labels``.
        spatial_dims: 2 for images ``(N, H, W)`` or ``(N, H, W, 3)``; 3 for volumes ``(N, D, H, W)``
            (a trailing channel axis of 1 or 3 is accepted).

    Returns:
        ``{"train": (X, y), "validation": (X, y), "test": (X, y)}`` with ``X`` float32 channel-first
        ``(N, C, H, W)`` or ``(N, C, D, H, W)`` and ``y`` of shape ``(N,)`` (one label; ``(N, 1)`` is
        flattened) or ``(N, K)`` (multilabel, one 0/1 column per finding).

    Raises:
        MedDLError: the file is missing or not an npz, holds pickled objects, lacks keys (all are listed),
            has an image shape that does not fit ``spatial_dims``, or images and labels of different lengths.
    """
    path = Path(path)
    if spatial_dims not in (2, 3):
        raise MedDLError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    if not path.exists():
        raise MedDLError(f"data file not found: {path}")
    if path.is_dir() or path.stat().st_size == 0:
        raise MedDLError(f"{path}: {'is a folder' if path.is_dir() else 'the file is empty'}; expected an .npz file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            required = [f"{prefix}_{kind}" for prefix in NPZ_SPLITS for kind in ("images", "labels")]
            missing = [key for key in required if key not in keys]
            if missing:
                raise MedDLError(
                    f"{path}: missing key(s) {', '.join(missing)}; a MedMNIST-style .npz needs "
                    f"{', '.join(required)} (found: {', '.join(sorted(keys)) or 'none'})"
                )
            raw = {key: archive[key] for key in required}
    except MedDLError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise MedDLError(
                f"{path}: holds Python objects (pickled arrays); only plain numeric arrays are read"
            ) from None
        raise MedDLError(f"{path}: not a readable .npz file: {_first_line(exc)}") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise MedDLError(f"{path}: not a readable .npz file: {_first_line(exc)}") from None
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for prefix, split in NPZ_SPLITS.items():
        images = _npz_images(raw[f"{prefix}_images"], spatial_dims, path, f"{prefix}_images")
        labels = _npz_labels(raw[f"{prefix}_labels"], path, f"{prefix}_labels")
        if len(images) != len(labels):
            raise MedDLError(
                f"{path}: {prefix}_images has {len(images)} images but {prefix}_labels has {len(labels)} labels"
            )
        splits[split] = (images, labels)
    widths = {split: (1 if y.ndim == 1 else y.shape[1]) for split, (_, y) in splits.items()}
    if len(set(widths.values())) > 1:
        raise MedDLError(f"{path}: the label arrays have different numbers of columns per split: {widths}")
    return splits


def _npz_images(images: np.ndarray, spatial_dims: int, path: Path, key: str) -> np.ndarray:
    if not (np.issubdtype(images.dtype, np.number) or images.dtype == np.bool_):
        raise MedDLError(f"{path}: {key} has dtype {images.dtype}; expected numbers")
    shape = images.shape
    if images.ndim == spatial_dims + 1:  # (N, H, W) or (N, D, H, W): grey
        out = images[:, None]
    elif images.ndim == spatial_dims + 2 and shape[-1] in (1, 3):  # (N, H, W, C) or (N, D, H, W, C)
        out = np.moveaxis(images, -1, 1)
    else:
        expected = "(N, H, W) or (N, H, W, 3)" if spatial_dims == 2 else "(N, D, H, W) or (N, D, H, W, 3)"
        hint = ""
        if spatial_dims == 2 and images.ndim == 4:
            hint = "; if these are volumes, set data.spatial_dims: 3"
        elif spatial_dims == 3 and images.ndim == 3:
            hint = "; if these are 2D images, set data.spatial_dims: 2"
        raise MedDLError(f"{path}: {key} has shape {shape}; expected {expected} for {spatial_dims}D images{hint}")
    return np.ascontiguousarray(out, dtype=np.float32)


def _npz_labels(labels: np.ndarray, path: Path, key: str) -> np.ndarray:
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim not in (1, 2):
        raise MedDLError(f"{path}: {key} has shape {labels.shape}; expected (N,), (N, 1) or (N, K) for multilabel")
    if np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_:
        return labels.astype(np.int64)
    return labels


# -- manifests ------------------------------------------------------------------------------------


def image_manifest(
    path: str | Path,
    *,
    path_column: str = "path",
    target: str = "label",
    patient_id: str | None = None,
    label_columns: Sequence[str] | None = None,
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
        return _table_manifest(path, path_column, target, patient_id, list(label_columns) if label_columns else None)
    if path.suffix.lower() == ".npz":
        raise MedDLError(f"{path}: an .npz holds the images themselves; read it with read_npz, not as a manifest")
    raise MedDLError(
        f"{path}: expected a manifest ({', '.join(TABLE_SUFFIXES)}) or a folder with one sub-folder per class"
    )


def _table_manifest(
    path: Path, path_column: str, target: str, patient_id: str | None, label_columns: list[str] | None
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
    if absent:
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


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

"""Segmentation masks: label maps read voxel-aligned with their image, and predicted label maps written back.

A mask is an integer label map with exactly the image's spatial shape (``image.array.shape[1:]``): 0 is the
background, each positive value one label. :func:`read_mask` returns it in the voxel order of the array that
:func:`meddl.io.images.read_image` gave for the image, so ``image.array[0][mask == 1]`` are the voxels of label 1.

Formats read (``format="auto"`` decides from the suffix, or from the ``DICM`` preamble):

* NIfTI (``.nii``, ``.nii.gz``): reoriented onto the image's voxel axes the way :func:`read_image` reorients a
  NIfTI image (nibabel orientations: the closest canonical, RAS+, for a NIfTI image), then its grid is checked
  against the image's: same shape, same voxel spacing, same direction cosines, same origin (to 1e-3 of a voxel).
  For a DICOM image the image's grid is built from *Image Position* / *Orientation (Patient)* and the spacing.
  A mask saved in another orientation of the same grid (e.g. LPS for an RAS image) lines up and is accepted.
* PNG (8 or 16-bit grey): the stored values are the labels, except a mask holding only 0 and the top value
  (255, or 65535 for 16 bits), which is a binary mask and reads as 0/1. An RGB(A) mask whose three colour
  channels are equal reads as grey; any other colour mask is an error. JPEG is refused (lossy: it blurs labels).
* ``.npy`` / ``.npz``: the array (in an npz, the key ``mask`` or the only array), in the image's voxel order.
* DICOM-SEG (Segmentation Storage): each frame is placed on the image slice it was derived from, found by the
  *Referenced SOP Instance UID* in its *Derivation Image Sequence* or, failing that, by its *Image Position
  (Patient)* (within half a slice along the slice normal, and half a pixel in plane). Segment number ``k`` becomes
  label ``k``. A FRACTIONAL segment is thresholded at half its *Maximum Fractional Value*; a LABELMAP SEG's pixel
  values are the segment numbers. Where segments overlap, the higher segment number is kept (a label map holds
  one label per voxel; a lesion numbered after its organ stays visible).

Values must be non-negative integers: a negative, fractional or non-finite value is an error naming the file and
the values found. Masks come back as ``uint8`` (labels up to 255) or ``int16`` (up to 32767).

:func:`write_mask` writes a predicted label map in the format of its reference image: NIfTI in the original file's
orientation and affine (so it opens aligned with the image in ITK-SNAP or 3D Slicer), a DICOM-SEG (with highdicom)
referencing the source instances, a PNG of the label values, or an ``.npz`` with key ``mask``.

Every problem is a :class:`~meddl.errors.MedDLError` naming the mask and, for alignment, the image.
"""

from __future__ import annotations

import logging
import warnings
import zlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from meddl.errors import MedDLError
from meddl.io._image_types import NIFTI_SUFFIXES, ImageVolume, _first_line, is_dicom_file
from meddl.io._npz import numpy_file_errors

__all__ = ["MASK_SUFFIXES", "MaskFormat", "check_mask_values", "mask_labels", "read_mask", "write_mask"]

MaskFormat = Literal["auto", "dicom", "nifti", "png", "npz"]

#: Suffixes :func:`read_mask` recognises with ``format="auto"``.
MASK_SUFFIXES = (".nii", ".nii.gz", ".png", ".npz", ".npy", ".dcm", ".dicom")

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
LABEL_MAP_SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"

# Grids agree when their affines differ by less than this fraction of the image's voxel spacing.
_GRID_TOLERANCE = 1e-3
_MAX_LABEL = int(np.iinfo(np.int16).max)
# Patient and study attributes of type 2 (required, may be empty) that highdicom copies from the source images;
# de-identified or synthetic files often leave them out, so the in-memory copies get empty ones.
_TYPE_2_SOURCE_ATTRIBUTES = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)
_LONG_STRING_LENGTH = 64  # DICOM LO: Segment Label


# -- public API -----------------------------------------------------------------------------------


def read_mask(path: str | Path, image: ImageVolume, *, format: MaskFormat = "auto") -> np.ndarray:
    """Read a segmentation mask as a label map voxel-aligned with its image.

    Args:
        path: the mask: a NIfTI, PNG, ``.npy``/``.npz`` or DICOM-SEG file.
        image: the image it segments, as :func:`meddl.io.images.read_image` read it; the mask is checked against
            its shape and, for NIfTI and DICOM-SEG masks, its position in the patient.
        format: ``"auto"`` (from the suffix or the DICOM preamble), ``"nifti"``, ``"png"``, ``"npz"`` (also
            ``.npy``) or ``"dicom"`` (a DICOM-SEG).

    Returns:
        A ``uint8`` (labels up to 255) or ``int16`` array of shape ``image.array.shape[1:]``; 0 is background.

    Raises:
        MedDLError: the mask is missing or unreadable, holds negative, fractional or non-finite values (named),
            or does not line up with the image (naming both files and what differs: shape, spacing,
            orientation, origin, slice).
    """
    path = Path(path)
    kind = _mask_format(path, format)
    if kind == "nifti":
        return _read_nifti_mask(path, image)
    if kind == "png":
        return _read_png_mask(path, image)
    if kind == "npz":
        return _read_array_mask(path, image)
    return _read_dicom_seg(path, image)


def mask_labels(mask: np.ndarray) -> list[int]:
    """The label values present in a mask, sorted, without the background 0."""
    return [int(value) for value in np.unique(np.asarray(mask)) if value != 0]


def check_mask_values(mask: np.ndarray, allowed: Collection[int], path: str | Path) -> None:
    """Check that a mask holds only the allowed labels (0, the background, is always allowed).

    Args:
        mask: the label map.
        allowed: the label values the experiment declares.
        path: the mask's file, named in the error.

    Raises:
        MedDLError: naming the file, each unexpected value with its voxel count, and the allowed labels.
    """
    values, counts = np.unique(np.asarray(mask), return_counts=True)
    permitted = {0, *(int(v) for v in allowed)}
    unexpected = [(value, int(count)) for value, count in zip(values.tolist(), counts, strict=True)]
    unexpected = [(value, count) for value, count in unexpected if value not in permitted]
    if unexpected:
        shown = ", ".join(f"{value} ({count} voxel{'s' if count != 1 else ''})" for value, count in unexpected[:10])
        more = f" and {len(unexpected) - 10} more" if len(unexpected) > 10 else ""
        raise MedDLError(
            f"{path}: the mask holds label value(s) {shown}{more} not among the allowed labels "
            f"{sorted(permitted - {0})} (0 is the background)"
        )


def write_mask(
    mask: np.ndarray,
    reference: ImageVolume,
    out_path: str | Path,
    *,
    labels: Mapping[int, str] | None = None,
) -> Path:
    """Write a predicted label map in the format of the image it was predicted on.

    * NIfTI reference → ``.nii.gz`` (``.nii`` if asked for) in the original file's voxel order and affine: the
      canonical (RAS+) reorientation of :func:`read_image` is undone, so the mask opens aligned with the image in
      ITK-SNAP or 3D Slicer.
    * DICOM reference (a file or a series folder) → a DICOM-SEG ``.dcm`` (BINARY) referencing the source
      instances, written with highdicom. Segment ``k`` holds label ``k``, for ``k`` from 1 to the largest label
      (in the mask or in ``labels``), so that :func:`read_mask` gives the same values back; a label absent from
      the mask is an empty segment. Each segment is named from ``labels`` (``"label k"`` otherwise).
    * PNG/JPEG reference → a grey PNG of the label values as they are (a binary mask is stored as 0/1, not 0/255;
      it looks black in an image viewer), 8-bit, or 16-bit when a label exceeds 255.
    * Any other reference (e.g. an array from an ``.npz``) → ``.npz`` with the key ``mask``.

    Args:
        mask: the label map, of shape ``reference.array.shape[1:]``, non-negative integers.
        reference: the image the mask was predicted on, as :func:`read_image` read it.
        out_path: the file to write; without one of the format's suffixes, the suffix is added (a suffix of
            another mask format is an error). Its folder is created.
        labels: label value → name, for the DICOM-SEG segment labels (at most 64 characters each).

    Returns:
        The written file.

    Raises:
        MedDLError: the mask's shape or values do not fit the reference, ``out_path`` has another format's
            suffix, ``labels`` is not a mapping of positive integers to names, or the DICOM-SEG cannot be
            built from the reference's files (the reason named).
    """
    out_path = Path(out_path)
    mask = np.asarray(mask)
    expected = tuple(reference.array.shape[1:])
    if mask.shape != expected:
        raise MedDLError(
            f"{out_path}: the mask of shape {mask.shape} does not fit the image {reference.source} "
            f"of spatial shape {expected}"
        )
    mask = _label_map(mask, f"{out_path}: the mask to write")
    kind = _reference_kind(reference)
    out_path = _output_path(out_path, kind)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "nifti":
        _write_nifti_mask(mask, reference, out_path)
    elif kind == "dicom":
        _write_dicom_seg(mask, reference, out_path, _segment_names(labels, mask, out_path))
    elif kind == "png":
        _write_png_mask(mask, out_path)
    else:
        np.savez_compressed(out_path, mask=mask)
    return out_path


# -- values ---------------------------------------------------------------------------------------


def _label_map(values: np.ndarray, where: str) -> np.ndarray:
    """Non-negative integer values as ``uint8`` (up to 255) or ``int16``; anything else is an error."""
    values = np.asarray(values)
    if values.dtype == bool:
        return values.astype(np.uint8)
    if not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise MedDLError(f"{where} holds values of type {values.dtype}; expected integer labels")
    if values.size == 0:
        return values.astype(np.uint8)
    if np.issubdtype(values.dtype, np.floating):
        finite = np.isfinite(values)
        bad = ~finite | (np.where(finite, values, 0) != np.round(np.where(finite, values, 0))) | (values < 0)
    else:
        bad = values < 0
    if np.any(bad):
        found = np.unique(values[bad])
        shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in found[:8].tolist())
        more = f" and {len(found) - 8} more" if len(found) > 8 else ""
        raise MedDLError(
            f"{where} holds {int(bad.sum())} voxel(s) that are not non-negative integer labels: "
            f"{shown}{more}; a mask holds 0 for the background and 1, 2, … for the labels"
        )
    largest = int(values.max())
    if largest > _MAX_LABEL:
        raise MedDLError(f"{where} holds the label value {largest}; labels go up to {_MAX_LABEL}")
    return values.astype(np.uint8 if largest <= 255 else np.int16)


# -- which format ---------------------------------------------------------------------------------


def _mask_format(path: Path, format: MaskFormat) -> str:
    if format not in ("auto", "dicom", "nifti", "png", "npz"):
        raise MedDLError(f"{path}: unknown mask format {format!r}; expected auto, dicom, nifti, png or npz")
    if not path.exists():
        raise MedDLError(f"mask not found: {path}")
    if path.is_dir():
        raise MedDLError(f"{path}: is a folder; a mask is one file (NIfTI, PNG, .npy/.npz or a DICOM-SEG)")
    if path.stat().st_size == 0:
        raise MedDLError(f"{path}: the mask file is empty")
    if format != "auto":
        return format
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(".png"):
        return "png"
    if name.endswith((".npz", ".npy")):
        return "npz"
    if name.endswith((".jpg", ".jpeg")):
        raise MedDLError(
            f"{path}: a JPEG cannot hold a mask (its lossy compression changes the labels at every edge); "
            "save masks as PNG, NIfTI, .npz or DICOM-SEG"
        )
    if name.endswith((".dcm", ".dicom")) or is_dicom_file(path):
        return "dicom"
    raise MedDLError(
        f"{path}: unknown mask type {path.suffix or '(no extension)'!r}; expected one of {', '.join(MASK_SUFFIXES)}"
    )


def _reference_kind(reference: ImageVolume) -> str:
    kind = str(reference.meta.get("format") or "")
    if kind in ("nifti", "dicom"):
        return kind
    if kind in ("png", "jpeg"):
        return "png"
    return "npz"


_DEFAULT_SUFFIX = {"nifti": ".nii.gz", "dicom": ".dcm", "png": ".png", "npz": ".npz"}
_ACCEPTED_SUFFIXES = {"nifti": (".nii.gz", ".nii"), "dicom": (".dcm",), "png": (".png",), "npz": (".npz",)}


def _output_path(out_path: Path, kind: str) -> Path:
    name = out_path.name.lower()
    if name.endswith(_ACCEPTED_SUFFIXES[kind]):
        return out_path
    other = next((s for s in (*MASK_SUFFIXES, ".jpg", ".jpeg", ".gz") if name.endswith(s)), None)
    if other is not None:
        raise MedDLError(
            f"{out_path}: a mask for a {kind} image is written as {' or '.join(_ACCEPTED_SUFFIXES[kind])}, "
            f"not {other}; give a name ending in {_DEFAULT_SUFFIX[kind]} or without a suffix"
        )
    return out_path.with_name(out_path.name + _DEFAULT_SUFFIX[kind])


# -- NIfTI ----------------------------------------------------------------------------------------


@dataclass
class _Grid:
    """Where the voxels of the image's array lie: a 4×4 RAS affine over three axes (a 2D image gets a third
    axis of one voxel), and the file's own orientation code for messages."""

    affine: np.ndarray
    shape: tuple[int, ...]
    orientation: str


def _image_grid(image: ImageVolume, mask_path: Path) -> _Grid:
    """The image's voxel grid in patient (RAS) space, from the NIfTI affine or the DICOM position tags."""
    import nibabel as nib

    spatial = tuple(int(n) for n in image.array.shape[1:])
    shape3 = (*spatial, 1) if len(spatial) == 2 else spatial
    meta = image.meta
    if meta.get("format") == "nifti" and meta.get("affine") is not None:
        affine = np.asarray(meta["affine"], dtype=float)
        orientation = str(meta.get("original_orientation") or "".join(nib.aff2axcodes(affine)))
        return _Grid(affine, shape3, orientation)
    if meta.get("format") == "dicom" and meta.get("orientation") and meta.get("position"):
        cosines = np.asarray(meta["orientation"], dtype=float)
        row_direction, column_direction = cosines[:3], cosines[3:]  # along a row (columns grow), along a column
        normal = np.asarray(meta.get("slice_normal") or np.cross(row_direction, column_direction), dtype=float)
        lps = np.eye(4)
        if len(spatial) == 3:  # (D, H, W): slice, row, column
            slice_spacing, row_spacing, column_spacing = image.spacing
            lps[:3, 0] = normal * slice_spacing
            lps[:3, 1] = column_direction * row_spacing
            lps[:3, 2] = row_direction * column_spacing
        else:  # (H, W), then the slice normal
            row_spacing, column_spacing = image.spacing
            lps[:3, 0] = column_direction * row_spacing
            lps[:3, 1] = row_direction * column_spacing
            lps[:3, 2] = normal
        lps[:3, 3] = np.asarray(meta["position"], dtype=float)
        affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # DICOM patient space is LPS, NIfTI's RAS
        return _Grid(affine, shape3, "".join(nib.aff2axcodes(affine)))
    raise MedDLError(
        f"{mask_path}: a NIfTI mask needs an image that says where it lies in the patient (a NIfTI image, or DICOM "
        f"with Image Position and Orientation); {image.source} ({meta.get('format') or 'unknown format'}) does not. "
        "Save the mask as PNG or .npz in the image's voxel order instead"
    )


def _read_nifti_mask(path: Path, image: ImageVolume) -> np.ndarray:
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError
    from nibabel.orientations import OrientationError, apply_orientation, inv_ornt_aff, io_orientation, ornt_transform
    from nibabel.spatialimages import HeaderDataError

    grid = _image_grid(image, path)
    try:
        nifti = nib.load(path)
        if not isinstance(nifti, nib.Nifti1Image | nib.Nifti2Image):
            raise MedDLError(f"{path}: expected a NIfTI mask, got {type(nifti).__name__}")
        data = np.asanyarray(nifti.dataobj)
    except MedDLError:
        raise
    except (ImageFileError, HeaderDataError, OSError, ValueError, EOFError, zlib.error) as exc:
        raise MedDLError(f"{path}: not a readable NIfTI file: {_first_line(exc)}") from None
    if data.ndim == 4 and data.shape[3] == 1:  # (X, Y, Z, 1): a 4th axis of one volume
        data = data[..., 0]
    if data.ndim == 2:  # (X, Y) → (X, Y, 1)
        data = data[..., None]
    if data.ndim != 3:
        raise MedDLError(
            f"{path}: a NIfTI mask of shape {data.shape} has {data.ndim} axes; a label map has 2 or 3 "
            "(one label per voxel, not one volume per label)"
        )
    affine = np.asarray(nifti.affine, dtype=float)
    mask_orientation = "".join(str(code) for code in nib.aff2axcodes(affine))
    try:
        transform = ornt_transform(io_orientation(affine), io_orientation(grid.affine))
    except (OrientationError, ValueError) as exc:
        raise MedDLError(f"{path}: the NIfTI affine {affine.round(3).tolist()} gives no orientation: {exc}") from None
    aligned = apply_orientation(data, transform)
    aligned_affine = affine @ inv_ornt_aff(transform, data.shape)
    where = f"{path} does not line up with {image.source}"
    orientations = (
        f" (orientation {mask_orientation} vs {grid.orientation}, compared on the image's axes)"
        if mask_orientation != grid.orientation
        else ""
    )
    if aligned.shape != grid.shape:
        shown: tuple[int, ...] = tuple(aligned.shape)
        expected: tuple[int, ...] = grid.shape
        if image.spatial_dims == 2 and shown[2] == 1:
            shown, expected = shown[:2], expected[:2]
        raise MedDLError(f"{where}: shape {shown} vs {expected}{orientations}")
    difference = _grid_difference(aligned_affine, grid, mask_orientation)
    if difference:
        raise MedDLError(f"{where}: affines differ: {difference}")
    values = _label_map(aligned, f"{path}: the mask")
    return np.ascontiguousarray(values[..., 0] if image.spatial_dims == 2 else values)


def _grid_difference(affine: np.ndarray, grid: _Grid, mask_orientation: str) -> str | None:
    """What differs between two affines over the same voxel axes (None when they agree), in a few words.

    Only the axes with more than one voxel count: a 2D image's third axis has no spacing to compare.
    """
    axes = [axis for axis in range(3) if grid.shape[axis] > 1] or [0, 1, 2]
    mask_zooms = np.linalg.norm(affine[:3, :3], axis=0)  # (3,) mm per voxel along each axis
    image_zooms = np.linalg.norm(grid.affine[:3, :3], axis=0)
    tolerance = _GRID_TOLERANCE * image_zooms
    if np.any(np.abs(mask_zooms - image_zooms)[axes] > tolerance[axes]):
        return f"spacing {_numbers(mask_zooms[axes])} vs {_numbers(image_zooms[axes])} mm"
    directions = np.abs(affine[:3, :3] - grid.affine[:3, :3]).max(axis=0)  # (3,) per voxel axis
    if np.any(directions[axes] > tolerance[axes]):
        if mask_orientation != grid.orientation:
            return f"orientation {mask_orientation} vs {grid.orientation}"
        cosines = affine[:3, :3] / np.where(mask_zooms > 0, mask_zooms, 1.0)
        reference = grid.affine[:3, :3] / np.where(image_zooms > 0, image_zooms, 1.0)
        angle = np.degrees(np.arccos(np.clip(np.sum(cosines * reference, axis=0), -1.0, 1.0)))[axes].max()
        return f"direction cosines differ by up to {angle:.2f}° (both {grid.orientation})"
    if np.max(np.abs(affine[:3, 3] - grid.affine[:3, 3])) > _GRID_TOLERANCE * float(image_zooms[axes].max()):
        flipped = (
            f"orientation {mask_orientation} vs {grid.orientation}; " if mask_orientation != grid.orientation else ""
        )
        return f"{flipped}origin {_numbers(affine[:3, 3])} vs {_numbers(grid.affine[:3, 3])} mm (RAS)"
    return None


def _numbers(values: np.ndarray | Sequence[float]) -> str:
    return "(" + ", ".join(f"{float(v):.4g}" for v in values) + ")"


def _write_nifti_mask(mask: np.ndarray, reference: ImageVolume, out_path: Path) -> None:
    import nibabel as nib
    from nibabel.orientations import apply_orientation, io_orientation, ornt_transform

    canonical_affine = np.asarray(reference.meta["affine"], dtype=float)
    original_affine = np.asarray(reference.meta.get("original_affine", canonical_affine), dtype=float)
    data = mask[..., None] if mask.ndim == 2 else mask  # (X, Y) → (X, Y, 1): NIfTI stores a slice as 3D
    # Back from the RAS+ axes read_image gives to the axes of the file it read.
    transform = ornt_transform(io_orientation(canonical_affine), io_orientation(original_affine))
    stored = np.ascontiguousarray(apply_orientation(data, transform))
    image = nib.Nifti1Image(stored, original_affine)
    image.set_data_dtype(stored.dtype)
    image.set_sform(original_affine, code=1)
    image.set_qform(original_affine, code=1)
    image.header.set_xyzt_units("mm")
    nib.save(image, out_path)


# -- PNG and arrays -------------------------------------------------------------------------------


def _read_png_mask(path: Path, image: ImageVolume) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            opened.load()
            mode = opened.mode
            decoded: Image.Image = opened
            if mode in {"LA", "La", "PA"}:
                decoded = opened.getchannel(0)  # the grey (or palette index) channel; transparency is not a label
            elif mode in {"RGBA", "RGBa", "RGBX"}:
                decoded = opened.convert("RGB")
            pixels = np.asarray(decoded)
    except UnidentifiedImageError:
        raise MedDLError(f"{path}: not a readable PNG mask (unknown or corrupt image data)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise MedDLError(
            f"{path}: the PNG mask cannot be decoded (truncated or corrupt?): {_first_line(exc)}"
        ) from None
    if pixels.ndim == 3:  # (H, W, 3)
        if pixels.shape[2] != 3 or not (
            np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 0], pixels[..., 2])
        ):
            differing = int(np.sum(np.any(pixels != pixels[..., :1], axis=2)))
            raise MedDLError(
                f"{path}: a colour mask (mode {mode}) whose channels differ in {differing} pixel(s); a mask is one "
                "grey channel of label values (save it as 8- or 16-bit grey)"
            )
        pixels = pixels[..., 0]  # (H, W)
    if image.spatial_dims != 2:
        raise MedDLError(
            f"{path} does not line up with {image.source}: a PNG mask is 2D, the image is 3D of shape "
            f"{tuple(image.array.shape[1:])}; use NIfTI, .npz or DICOM-SEG for a volume"
        )
    if pixels.shape != tuple(image.array.shape[1:]):
        raise MedDLError(
            f"{path} does not line up with {image.source}: shape {pixels.shape} vs {tuple(image.array.shape[1:])} "
            "(height, width)"
        )
    if pixels.dtype in (np.uint8, np.uint16) and mode not in {"P", "PA"}:
        top = int(np.iinfo(pixels.dtype).max)
        present = np.unique(pixels)
        if present[-1] == top and set(present.tolist()) <= {0, top}:  # a binary mask saved as 0 / white
            pixels = (pixels == top).astype(np.uint8)
    return _label_map(pixels, f"{path}: the mask")


def _read_array_mask(path: Path, image: ImageVolume) -> np.ndarray:
    with numpy_file_errors(path, ".npy/.npz"):
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded as archive:
                keys = list(archive.files)
                if "mask" in keys:
                    key = "mask"
                elif len(keys) == 1:
                    key = keys[0]
                else:
                    raise MedDLError(
                        f"{path}: holds {len(keys)} arrays ({', '.join(keys) or 'none'}); the mask must be the only "
                        "array or be stored under the key 'mask'"
                    )
                values = archive[key]
        else:
            values = loaded
    expected = tuple(image.array.shape[1:])
    if values.shape != expected:
        raise MedDLError(f"{path} does not line up with {image.source}: shape {values.shape} vs {expected}")
    return _label_map(values, f"{path}: the mask")


def _write_png_mask(mask: np.ndarray, out_path: Path) -> None:
    from PIL import Image

    if mask.ndim != 2:
        raise MedDLError(f"{out_path}: a PNG holds a 2D mask; got shape {mask.shape}")
    stored = mask.astype(np.uint8) if int(mask.max(initial=0)) <= 255 else mask.astype(np.uint16)
    Image.fromarray(stored).save(out_path)


# -- DICOM-SEG ------------------------------------------------------------------------------------


@dataclass
class _Slices:
    """The image's slices, in the order of its array: SOP Instance UIDs, positions, and the plane's geometry."""

    uids: list[str | None]  # per slice; a multi-frame file repeats its one UID
    positions: np.ndarray | None  # (D, 3) Image Position (Patient), mm, or None where the files do not say
    orientation: np.ndarray | None  # (6,) Image Orientation (Patient)
    normal: np.ndarray | None  # (3,)
    slice_spacing: float
    row_spacing: float
    column_spacing: float
    multi_frame: bool


def _image_slices(image: ImageVolume, mask_path: Path) -> _Slices:
    """Read the headers of the image's DICOM files for the UIDs and positions of its slices."""
    from meddl.io._dicom_tags import _shared_item
    from meddl.io.dicom import _read_dataset

    if image.meta.get("format") != "dicom":
        raise MedDLError(
            f"{mask_path}: a DICOM-SEG mask needs a DICOM image; {image.source} is "
            f"{image.meta.get('format') or 'not DICOM'}"
        )
    source = Path(image.source)
    row_spacing, column_spacing = (float(s) for s in image.spacing[-2:])
    slice_spacing = float(image.spacing[0]) if image.spatial_dims == 3 else 1.0
    orientation = image.meta.get("orientation")
    cosines = np.asarray(orientation, dtype=float) if orientation else None
    if source.is_dir():
        files = [source / name for name in image.meta.get("files", [])]
        datasets = [_read_dataset(file, header_only=True) for file in files]
        uids: list[str | None] = [str(ds.get("SOPInstanceUID", "")) or None for ds in datasets]
        positions = [ds.get("ImagePositionPatient") for ds in datasets]
        multi_frame = False
    else:
        dataset = _read_dataset(source, header_only=True)
        frames = int(image.array.shape[1]) if image.spatial_dims == 3 else 1
        uids = [str(dataset.get("SOPInstanceUID", "")) or None] * frames
        multi_frame = image.spatial_dims == 3
        if multi_frame:
            per_frame = dataset.get("PerFrameFunctionalGroupsSequence") or []
            positions = []
            for i in range(frames):
                plane = per_frame[i].get("PlanePositionSequence") if i < len(per_frame) else None
                positions.append(plane[0].get("ImagePositionPatient") if plane else None)
            if cosines is None:
                plane_orientation = _shared_item(dataset, "PlaneOrientationSequence")
                if plane_orientation is not None and plane_orientation.get("ImageOrientationPatient"):
                    cosines = np.asarray(plane_orientation.ImageOrientationPatient, dtype=float)
        else:
            positions = [dataset.get("ImagePositionPatient")]
    known = all(p is not None and len(p) == 3 for p in positions)
    position_array = np.asarray([[float(v) for v in p] for p in positions]) if known and positions else None
    normal = None
    if cosines is not None and len(cosines) == 6:
        normal = np.cross(cosines[:3], cosines[3:])
        normal = normal / (np.linalg.norm(normal) or 1.0)
    return _Slices(uids, position_array, cosines, normal, slice_spacing, row_spacing, column_spacing, multi_frame)


def _frame_item(dataset: Any, frame: int, name: str) -> Any:
    """The first item of functional group ``name`` for a frame: its per-frame group, else the shared one."""
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame < len(per_frame):
        sequence = per_frame[frame].get(name)
        if sequence:
            return sequence[0]
    shared = dataset.get("SharedFunctionalGroupsSequence")
    if shared:
        sequence = shared[0].get(name)
        if sequence:
            return sequence[0]
    return None


def _frame_references(dataset: Any, frame: int) -> list[tuple[str, list[int]]]:
    """(Referenced SOP Instance UID, referenced frame numbers) of the images a frame was derived from."""
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence")
    groups = [per_frame[frame]] if per_frame is not None and frame < len(per_frame) else []
    shared = dataset.get("SharedFunctionalGroupsSequence")
    groups += [shared[0]] if shared else []
    references: list[tuple[str, list[int]]] = []
    for group in groups:
        for derivation in group.get("DerivationImageSequence") or []:
            for source in derivation.get("SourceImageSequence") or []:
                uid = str(source.get("ReferencedSOPInstanceUID", ""))
                numbers = source.get("ReferencedFrameNumber")
                if numbers is None or numbers == "":
                    frame_numbers: list[int] = []
                elif isinstance(numbers, int | str):
                    frame_numbers = [int(numbers)]
                else:
                    frame_numbers = [int(n) for n in numbers]
                if uid:
                    references.append((uid, frame_numbers))
        if references:
            break
    return references


def _read_dicom_seg(path: Path, image: ImageVolume) -> np.ndarray:
    from meddl.io.dicom import _read_dataset

    dataset = _read_dataset(path)
    sop_class = str(dataset.get("SOPClassUID", ""))
    if sop_class not in (SEGMENTATION_STORAGE, LABEL_MAP_SEGMENTATION_STORAGE):
        name = getattr(dataset.get("SOPClassUID"), "name", None) or sop_class or "not given"
        raise MedDLError(f"{path}: not a DICOM-SEG (SOP class {name!r}, modality {dataset.get('Modality', '')!r})")
    kind = str(dataset.get("SegmentationType", "")).upper()
    if kind not in ("BINARY", "FRACTIONAL", "LABELMAP"):
        raise MedDLError(
            f"{path}: unknown Segmentation Type {kind or '(none)'!r}; expected BINARY, FRACTIONAL or LABELMAP"
        )
    slices = _image_slices(image, path)
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    expected = tuple(image.array.shape[-2:])
    if (rows, columns) != expected:
        raise MedDLError(
            f"{path} does not line up with {image.source}: frames of {rows}x{columns} pixels vs the image's "
            f"{expected[0]}x{expected[1]} (rows x columns)"
        )
    _check_seg_plane(dataset, path, image, slices)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = np.asarray(dataset.pixel_array)
    except Exception as exc:  # decoders raise many types
        raise MedDLError(f"{path}: the DICOM-SEG pixel data cannot be decoded: {_first_line(exc)}") from None
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if pixels.size != frames * rows * columns:
        raise MedDLError(
            f"{path}: the DICOM-SEG pixel data decodes to shape {pixels.shape}, not {frames} frame(s) of "
            f"{rows}x{columns} (NumberOfFrames, Rows, Columns)"
        )
    pixels = pixels.reshape(frames, rows, columns)  # (F, R, C)
    if kind == "FRACTIONAL":
        maximum = float(dataset.get("MaximumFractionalValue", 255) or 255)
        present = pixels >= 0.5 * maximum
    else:
        present = pixels > 0
    segments = [_segment_number(dataset, i, path) for i in range(frames)] if kind != "LABELMAP" else [0] * frames
    largest = max([*segments, int(pixels.max(initial=0)) if kind == "LABELMAP" else 0, 1])
    if largest > _MAX_LABEL:
        raise MedDLError(f"{path}: the DICOM-SEG holds segment number {largest}; labels go up to {_MAX_LABEL}")
    spatial = tuple(image.array.shape[1:])
    mask = np.zeros(spatial, dtype=np.uint8 if largest <= 255 else np.int16)
    # Frames in ascending segment number: where segments overlap, the higher number is written last and kept.
    for frame in sorted(range(frames), key=lambda i: segments[i]):
        index = _frame_slice(dataset, frame, segments[frame], path, image, slices)
        target = mask if image.spatial_dims == 2 else mask[index]
        if kind == "LABELMAP":
            target[present[frame]] = pixels[frame][present[frame]]
        else:
            target[present[frame]] = segments[frame]
    return mask


def _segment_number(dataset: Any, frame: int, path: Path) -> int:
    item = _frame_item(dataset, frame, "SegmentIdentificationSequence")
    number = item.get("ReferencedSegmentNumber") if item is not None else None
    if number is None or int(number) < 1:
        raise MedDLError(
            f"{path}: frame {frame + 1} has no Referenced Segment Number (Segment Identification Sequence) "
            f"{'' if number is None else f'({number}) '}; the segment it belongs to is unknown"
        )
    if int(number) > _MAX_LABEL:
        raise MedDLError(f"{path}: frame {frame + 1} belongs to segment {int(number)}; labels go up to {_MAX_LABEL}")
    return int(number)


def _check_seg_plane(dataset: Any, path: Path, image: ImageVolume, slices: _Slices) -> None:
    """The SEG's pixel spacing and plane orientation, where it records them, against the image's."""
    measures = _frame_item(dataset, 0, "PixelMeasuresSequence")
    spacing = measures.get("PixelSpacing") if measures is not None else None
    if spacing is not None and len(spacing) == 2:
        seg_spacing = np.asarray([float(v) for v in spacing])
        image_spacing = np.asarray([slices.row_spacing, slices.column_spacing])
        if np.any(np.abs(seg_spacing - image_spacing) > _GRID_TOLERANCE * image_spacing):
            raise MedDLError(
                f"{path} does not line up with {image.source}: pixel spacing {_numbers(seg_spacing)} vs "
                f"{_numbers(image_spacing)} mm (rows, columns)"
            )
    item = _frame_item(dataset, 0, "PlaneOrientationSequence")
    value = item.get("ImageOrientationPatient") if item is not None else dataset.get("ImageOrientationPatient")
    if value is None or slices.orientation is None or len(value) != 6:
        return
    orientation = np.asarray([float(v) for v in value])
    if not np.allclose(orientation, slices.orientation, atol=1e-3):
        raise MedDLError(
            f"{path} does not line up with {image.source}: image orientation {_numbers(orientation)} vs "
            f"{_numbers(slices.orientation)} (Image Orientation (Patient))"
        )


def _frame_slice(dataset: Any, frame: int, segment: int, path: Path, image: ImageVolume, slices: _Slices) -> int:
    """The image slice a SEG frame lies on: by referenced SOP instance UID, else by position."""
    references = _frame_references(dataset, frame)
    for uid, frame_numbers in references:
        if slices.multi_frame and uid == slices.uids[0]:
            if frame_numbers and 1 <= frame_numbers[0] <= len(slices.uids):
                return frame_numbers[0] - 1
        elif uid in slices.uids:
            return slices.uids.index(uid)
    item = _frame_item(dataset, frame, "PlanePositionSequence")
    value = item.get("ImagePositionPatient") if item is not None else None
    position = np.asarray([float(v) for v in value]) if value is not None and len(value) == 3 else None
    what = f"frame {frame + 1}" + (f" (segment {segment})" if segment else "")
    if image.spatial_dims == 2 and not references and position is None:
        return 0  # nothing says where the frame lies; one image, one place
    if position is None or slices.positions is None or slices.normal is None:
        named = ", ".join(uid for uid, _ in references) or "no instance"
        raise MedDLError(
            f"{path} does not line up with {image.source}: {what} references {named}, not an instance of the "
            f"image ({', '.join(sorted({u for u in slices.uids if u})) or 'no SOP Instance UID'}), and the position "
            "of the frame or of the image is not recorded"
        )
    along = (slices.positions - position) @ slices.normal  # (D,) mm along the slice normal
    index = int(np.argmin(np.abs(along)))
    if image.spatial_dims == 3:
        tolerance = slices.slice_spacing / 2
    else:
        measures = _frame_item(dataset, frame, "PixelMeasuresSequence")
        thickness = measures.get("SliceThickness") if measures is not None else None
        tolerance = float(thickness) / 2 if thickness not in (None, "") and float(thickness) > 0 else 0.5
    if abs(float(along[index])) > tolerance:
        raise MedDLError(
            f"{path} does not line up with {image.source}: {what} lies at {_numbers(position)} mm, "
            f"{abs(float(along[index])):.3g} mm along the slice normal from the nearest slice "
            f"(tolerance {tolerance:.3g} mm, half a slice), and references no instance of the image"
        )
    offset = position - slices.positions[index]
    assert slices.orientation is not None, "a normal comes from an orientation"
    shift_columns = abs(float(offset @ slices.orientation[:3]))  # along a row, in column steps
    shift_rows = abs(float(offset @ slices.orientation[3:]))
    if shift_columns > slices.column_spacing / 2 or shift_rows > slices.row_spacing / 2:
        raise MedDLError(
            f"{path} does not line up with {image.source}: {what} is shifted in the image plane by "
            f"{shift_rows:.3g} mm (rows) and {shift_columns:.3g} mm (columns) from slice {index + 1} "
            f"at {_numbers(slices.positions[index])} mm"
        )
    return index


def _segment_names(labels: Mapping[int, str] | None, mask: np.ndarray, out_path: Path) -> dict[int, str]:
    """Segment number → label name for segments 1 … the largest label (in the mask or named)."""
    given: dict[int, str] = {}
    for key, name in (labels or {}).items():
        if isinstance(key, bool) or not isinstance(key, int | np.integer) or int(key) < 1 or int(key) > _MAX_LABEL:
            raise MedDLError(
                f"{out_path}: labels has the key {key!r}; label values are integers from 1 to {_MAX_LABEL}"
            )
        if not isinstance(name, str) or not name.strip() or len(name) > _LONG_STRING_LENGTH or "\\" in name:
            raise MedDLError(
                f"{out_path}: label {int(key)} has the name {name!r}; a DICOM segment label is text of 1 to "
                f"{_LONG_STRING_LENGTH} characters without a backslash"
            )
        given[int(key)] = name.strip()
    largest = max([int(mask.max(initial=0)), *given, 1])
    return {number: given.get(number, f"label {number}") for number in range(1, largest + 1)}


def _source_datasets(reference: ImageVolume) -> list[Any]:
    """The reference's DICOM headers in the order of its array (a series' slices sorted as read_image sorted them)."""
    from meddl.io.dicom import _read_dataset

    source = Path(reference.source)
    if source.is_dir():
        files = [source / name for name in reference.meta.get("files", [])]
        if len(files) != reference.array.shape[1]:
            raise MedDLError(
                f"{source}: the image's meta lists {len(files)} slice file(s) for {reference.array.shape[1]} "
                "slices; read the series again with read_image"
            )
    else:
        files = [source]
    datasets = [_read_dataset(file, header_only=True) for file in files]
    # highdicom copies the pixel measures from the sources; a radiograph has no slice thickness and may keep its
    # spacing in Imager Pixel Spacing: the copies get what read_image used (a 2D image's thickness is nominal).
    thickness = float(reference.spacing[0]) if reference.spatial_dims == 3 else 1.0
    for dataset in datasets:
        for keyword in _TYPE_2_SOURCE_ATTRIBUTES:
            if keyword not in dataset:
                setattr(dataset, keyword, "")
        if "SharedFunctionalGroupsSequence" not in dataset:
            if dataset.get("SliceThickness") in (None, ""):
                dataset.SliceThickness = thickness
            if dataset.get("PixelSpacing") in (None, ""):
                dataset.PixelSpacing = [float(s) for s in reference.spacing[-2:]]
    return datasets


def _write_dicom_seg(mask: np.ndarray, reference: ImageVolume, out_path: Path, names: dict[int, str]) -> None:
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    from meddl._version import __version__

    sources = _source_datasets(reference)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="MedDL", family=codes.cid7162.ArtificialIntelligence, version=str(__version__)
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=name,
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for number, name in names.items()
    ]
    pixels = mask[None] if mask.ndim == 2 else mask  # (F, H, W): one frame per source slice
    logger = logging.getLogger("highdicom")  # it logs, not warns, that an empty mask keeps its empty frames
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # highdicom's remarks on the source's own attributes (names, codes)
            segmentation = hd.seg.Segmentation(
                source_images=sources,
                pixel_array=pixels,
                segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                segment_descriptions=descriptions,
                series_instance_uid=generate_uid(),
                series_number=int(sources[0].get("SeriesNumber", 0) or 0) + 1000,
                sop_instance_uid=generate_uid(),
                instance_number=1,
                manufacturer="MedDL",
                manufacturer_model_name="MedDL segmentation",
                software_versions=str(__version__),
                device_serial_number="0",
                series_description="MedDL segmentation",
            )
            segmentation.save_as(out_path)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise MedDLError(f"{out_path}: cannot write a DICOM-SEG for {reference.source}: {_first_line(exc)}") from None
    finally:
        logger.setLevel(level)

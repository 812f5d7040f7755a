"""Synthetic CT-like phantoms, with and without lesions, for the demo, tests and benchmarks.

A phantom is a cross-section (2D) or a block (3D) of a chest in Hounsfield-like units:

* air around the body (-1000 HU), a body ellipse of soft tissue (~40 HU) with smooth low-frequency texture
  under a layer of subcutaneous fat (~-100 HU) of varying thickness;
* two lungs (~-820 HU) with texture and small bright vessels (soft tissue inside the lung);
* bone (~+700 HU): a vertebra behind the mediastinum and a few ribs near the body wall;
* CT-like noise whose level varies from image to image.

A positive phantom has one or two lesions, each a smooth blob at a random position and of random size and
shape: a solid nodule in a lung (+700 to +850 HU over the lung, i.e. near soft-tissue density) or an enhancing
lesion in the soft tissue (+150 to +250 HU, as a hypervascular lesion on contrast CT). Its mask (uint8, 1 inside)
is where the blob reaches half its contrast. Anatomy, texture and noise are drawn before the lesions, so the
same random state gives the same anatomy with and without a lesion: the lesion is a local change, and global
intensity statistics (mean, spread, percentiles — dominated by body size, lung size and noise) do not tell
positives from negatives.

Everything is deterministic per seed. :func:`write_phantom_dataset` writes a data set as PNG, NIfTI or real
DICOM files (CT Image Storage) with a ``manifest.csv``; :func:`write_dicom_image` and
:func:`write_dicom_series` are the DICOM writers on their own, for tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from meddl.errors import MedDLError
from meddl.io.tables import write_table

__all__ = [
    "HU_OFFSET",
    "PHANTOM_SPACING",
    "PNG_WINDOW",
    "make_phantom",
    "write_dicom_image",
    "write_dicom_series",
    "write_phantom_dataset",
]

#: Stored value = HU + HU_OFFSET in the DICOM files (RescaleIntercept = -HU_OFFSET) and in 16-bit PNGs.
HU_OFFSET = 1024
#: Voxel size (mm) of written phantoms, on every axis.
PHANTOM_SPACING = 0.8
#: The fixed window (level, width in HU) of 8-bit PNGs: -1100 HU → 0, +800 HU → 255. Wider than a soft-tissue
#: window (40, 400) on purpose: that window would clip the lungs to black and erase the lung lesions.
PNG_WINDOW = (-150.0, 1900.0)

_AIR, _FAT, _SOFT_TISSUE, _LUNG, _BONE = -1000.0, -100.0, 40.0, -820.0, 700.0


@dataclass
class _Ellipse:
    """An axis-aligned ellipse (2D) or ellipsoid (3D) in normalised coordinates ([-1, 1] per axis)."""

    center: np.ndarray
    axes: np.ndarray

    def rho(self, grid: Sequence[np.ndarray]) -> np.ndarray:
        """Normalised radius: < 1 inside."""
        return np.sqrt(sum(((g - c) / a) ** 2 for g, c, a in zip(grid, self.center, self.axes, strict=True)))

    def rho_at(self, point: np.ndarray) -> float:
        return float(np.sqrt(np.sum(((point - self.center) / self.axes) ** 2)))


def make_phantom(
    rng: np.random.Generator,
    *,
    spatial_dims: int = 2,
    size: int = 64,
    lesion: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic chest cross-section (2D) or block (3D), in Hounsfield-like units.

    Args:
        rng: the random state; the same state gives the same phantom.
        spatial_dims: 2 for an ``(H, W)`` image, 3 for a ``(D, H, W)`` volume.
        size: length of every axis in pixels (at least 16).
        lesion: add one or two lesions (the positive class).

    Returns:
        ``(image, mask)``: the image as float32 HU and the lesion mask as uint8 (1 inside a lesion), of the same
        shape; the mask is all zeros when ``lesion`` is False and has at least one voxel when it is True.

    Raises:
        MedDLError: ``spatial_dims`` is not 2 or 3, or ``size`` is below 16.
    """
    if spatial_dims not in (2, 3):
        raise MedDLError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    if size < 16:
        raise MedDLError(f"size must be at least 16 pixels, got {size}")
    shape = (size,) * spatial_dims
    axis = np.linspace(-1.0, 1.0, size)
    grid = np.meshgrid(*([axis] * spatial_dims), indexing="ij")  # (z,) y, x
    pixel = 2.0 / (size - 1)  # one pixel in normalised units

    # -- anatomy (drawn first, so a lesion does not change it) --
    body = _Ellipse(
        center=_with_depth(np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05)]), spatial_dims, 0.0),
        axes=_with_depth(np.array([rng.uniform(0.55, 0.78), rng.uniform(0.72, 0.93)]), spatial_dims, 10.0),
    )
    lung_axes = np.array([body.axes[-2] * rng.uniform(0.5, 0.68), body.axes[-1] * rng.uniform(0.24, 0.33)])
    lungs = []
    for side in (-1.0, 1.0):
        offset = body.axes[-1] * rng.uniform(0.38, 0.46)
        center = np.array([body.center[-2] - body.axes[-2] * rng.uniform(0.0, 0.12), body.center[-1] + side * offset])
        axes = lung_axes * rng.uniform(0.9, 1.1, 2)
        lungs.append(
            _Ellipse(
                _with_depth(center, spatial_dims, rng.uniform(-0.1, 0.1)),
                _with_depth(axes, spatial_dims, rng.uniform(0.75, 1.0)),
            )
        )
    spine_radius = max(0.09 * body.axes[-1], 2.0 * pixel)
    spine_center = np.array([body.center[-2] + body.axes[-2] * 0.7, body.center[-1]])
    fat_inner = rng.uniform(0.85, 0.95)  # subcutaneous fat between this normalised radius and the skin

    body_rho = body.rho(grid)
    image = np.full(shape, _AIR)
    image[body_rho < 1.0] = _FAT
    soft = body_rho < fat_inner
    image[soft] = _SOFT_TISSUE + 12.0 * _smooth_noise(rng, shape, 0.12)[soft]
    lung_mask = np.zeros(shape, dtype=bool)
    for lung in lungs:
        lung_mask |= lung.rho(grid) < 1.0
    lung_mask &= soft
    image[lung_mask] = _LUNG + 30.0 * _smooth_noise(rng, shape, 0.06)[lung_mask]
    # Vessels: small bright blobs inside the lungs, in every phantom (they are not lesions).
    for _ in range(int(rng.integers(3, 8))):
        lung = lungs[int(rng.integers(0, 2))]
        point = lung.center + lung.axes * rng.uniform(-0.6, 0.6, spatial_dims)
        radius = rng.uniform(0.8, 1.4) * pixel
        blob = _blob(grid, point, np.full(spatial_dims, radius))
        image += (_SOFT_TISSUE - _LUNG) * blob * lung_mask
    # Bone: a vertebra (a column along z in 3D) and ribs near the body wall.
    spine = np.sqrt((grid[-2] - spine_center[0]) ** 2 + (grid[-1] - spine_center[1]) ** 2) < spine_radius
    image[spine & soft] = _BONE
    for _ in range(int(rng.integers(4, 9))):
        angle = rng.uniform(0.0, 2.0 * np.pi)
        radius_fraction = 0.5 * (fat_inner + 1.0) - 0.06
        point_2d = body.center[-2:] + radius_fraction * body.axes[-2:] * np.array([np.sin(angle), np.cos(angle)])
        rib_axes = np.full(spatial_dims, max(0.035, 1.5 * pixel))
        if spatial_dims == 3:
            rib_axes[0] = rng.uniform(0.06, 0.25)  # a rib runs through a few slices
        point = _with_depth(point_2d, spatial_dims, rng.uniform(-0.8, 0.8))
        image = np.where(_blob(grid, point, rib_axes) > 0.5, _BONE + rng.uniform(-100, 100), image)
    noise_level = rng.uniform(8.0, 20.0)
    noise = noise_level * rng.standard_normal(shape)

    # -- lesions (drawn last) --
    mask = np.zeros(shape, dtype=np.uint8)
    if lesion:
        for _ in range(1 if rng.random() < 0.7 else 2):
            center, axes, in_lung = _lesion_site(
                rng, body, lungs, spine_center, spine_radius, fat_inner, spatial_dims, pixel
            )
            profile = _blob(grid, center, axes)
            # A lung nodule is solid tissue in air-filled lung (about -50 HU against -820 HU); a soft-tissue
            # lesion enhances by +150 to +250 HU, as a hypervascular lesion on contrast CT.
            contrast = rng.uniform(700.0, 850.0) if in_lung else rng.uniform(150.0, 250.0)
            image += contrast * profile
            mask |= (profile >= 0.5).astype(np.uint8)
        if not mask.any():  # a lesion smaller than a pixel cannot happen with the minimum radius, but be sure
            index = tuple(int(np.clip(round((c + 1.0) / pixel), 0, size - 1)) for c in center)
            mask[index] = 1
    # A CT scanner reports nothing below -1024 HU; clipping there also keeps the DICOM/PNG round trip exact.
    return np.maximum(image + noise, -float(HU_OFFSET)).astype(np.float32), mask


def _with_depth(values: np.ndarray, spatial_dims: int, depth: float) -> np.ndarray:
    """Prepend the z value for 3D (normalised coordinates run (z, y, x))."""
    return np.concatenate([[depth], values]) if spatial_dims == 3 else values


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], correlation: float) -> np.ndarray:
    """Gaussian-filtered white noise (in Fourier space), unit standard deviation."""
    white = rng.standard_normal(shape)
    sigma = correlation * shape[0]  # correlation length in pixels
    frequencies = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    transfer = np.exp(-2.0 * np.pi**2 * sigma**2 * sum(f**2 for f in frequencies))
    smooth = np.real(np.fft.ifftn(np.fft.fftn(white) * transfer))
    return (smooth - smooth.mean()) / (smooth.std() + 1e-12)


def _blob(grid: Sequence[np.ndarray], center: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """A smooth ellipsoidal profile: 1 inside, 0.5 on the surface, falling off over ~10 % of the radius."""
    rho = np.sqrt(sum(((g - c) / a) ** 2 for g, c, a in zip(grid, center, axes, strict=True)))
    return 1.0 / (1.0 + np.exp(np.minimum((rho - 1.0) / 0.1, 50.0)))


def _lesion_site(
    rng: np.random.Generator,
    body: _Ellipse,
    lungs: list[_Ellipse],
    spine_center: np.ndarray,
    spine_radius: float,
    fat_inner: float,
    spatial_dims: int,
    pixel: float,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """A lesion center, semi-axes and whether it lies in a lung (else soft tissue), clear of bone and the wall."""
    for _ in range(500):
        radius = max(rng.uniform(0.06, 0.14), 1.6 * pixel)
        axes = radius * rng.uniform(0.75, 1.25, spatial_dims)
        in_lung = rng.random() < 0.5
        if in_lung:
            lung = lungs[int(rng.integers(0, 2))]
            center = lung.center + lung.axes * rng.uniform(-0.8, 0.8, spatial_dims)
            margin = float(axes.max() / lung.axes.min())
            ok = lung.rho_at(center) < 1.0 - margin
        else:
            center = body.center + body.axes * rng.uniform(-0.8, 0.8, spatial_dims)
            if spatial_dims == 3:
                center[0] = rng.uniform(-0.75, 0.75)
            margin = float(axes.max() / body.axes[-2:].min())
            clear_of_lungs = all(lung.rho_at(center) > 1.0 + axes.max() / lung.axes.min() for lung in lungs)
            clear_of_spine = np.hypot(*(center[-2:] - spine_center)) > spine_radius + axes.max()
            ok = body.rho_at(center) < fat_inner - 0.1 - margin and clear_of_lungs and bool(clear_of_spine)
        if ok:
            return center, axes, bool(in_lung)
    # Practically unreachable: the mediastinum, between the lungs, in front of the spine.
    radius = 1.6 * pixel
    center = body.center.copy()
    center[-2] -= 0.3 * body.axes[-2]
    return center, np.full(spatial_dims, radius), False


# -- writing data sets ----------------------------------------------------------------------------


def write_phantom_dataset(
    out_dir: str | Path,
    n: int,
    *,
    spatial_dims: int = 2,
    size: int = 64,
    fmt: Literal["png", "nifti", "dicom"] = "png",
    prevalence: float = 0.5,
    seed: int = 0,
    patients: int | None = None,
    png_bits: Literal[8, 16] = 8,
    mask_column: str = "mask_path",
) -> Path:
    """Write ``n`` phantoms with their lesion masks and a ``manifest.csv``.

    Layout under ``out_dir``: ``images/case_0000.<ext>`` and ``masks/case_0000.<ext>``, and
    ``manifest.csv`` with columns ``path,label,patient_id,mask_path`` (paths relative to ``out_dir``; labels
    ``lesion`` / ``normal``). Formats:

    * ``png`` (2D only): 8-bit after the fixed window :data:`PNG_WINDOW` (level -150 HU, width 1900 HU), or
      16-bit holding HU + 1024 exactly (``png_bits=16``); masks are 8-bit PNGs, 255 inside a lesion.
    * ``nifti``: ``.nii.gz`` int16 HU, affine ``diag(0.8, 0.8, 0.8)`` mm (array axes in order, so reading it
      back with :func:`meddl.io.read_image` gives the array that was written); a 2D image is saved with a
      third axis of length 1. Masks are uint8 NIfTI with the same affine.
    * ``dicom``: real CT Image Storage files (see :func:`write_dicom_image`); a 3D phantom is a series folder
      ``images/case_0000/`` with one file per slice. Masks are PNG (2D) or NIfTI (3D).

    Args:
        out_dir: the folder to write into (created if needed).
        n: number of images (at least 1).
        spatial_dims: 2 or 3.
        size: pixels per axis.
        fmt: ``png``, ``nifti`` or ``dicom``.
        prevalence: fraction of images with a lesion; exactly ``round(n * prevalence)`` are positive.
        seed: the seed; the same seed writes the same files.
        patients: number of patients (default ``n``: one image each); fewer patients than images gives several
            images per patient (for patient-level split tests).
        png_bits: 8 or 16, for ``fmt="png"``.
        mask_column: the manifest column of the mask files (``mask`` for a segmentation experiment's default).

    Returns:
        The path of ``manifest.csv``.

    Raises:
        MedDLError: an argument is out of range, or PNG is asked for 3D phantoms.
    """
    out_dir = Path(out_dir)
    if n < 1:
        raise MedDLError(f"n must be at least 1, got {n}")
    if not 0.0 <= prevalence <= 1.0:
        raise MedDLError(f"prevalence must be between 0 and 1, got {prevalence}")
    if fmt not in ("png", "nifti", "dicom"):
        raise MedDLError(f"fmt must be 'png', 'nifti' or 'dicom', got {fmt!r}")
    if fmt == "png" and spatial_dims == 3:
        raise MedDLError("fmt 'png' holds 2D images only; write 3D phantoms as 'nifti' or 'dicom'")
    if png_bits not in (8, 16):
        raise MedDLError(f"png_bits must be 8 or 16, got {png_bits!r}")
    n_patients = n if patients is None else patients
    if not 1 <= n_patients <= n:
        raise MedDLError(f"patients must be between 1 and n={n}, got {patients}")
    rng = np.random.default_rng(seed)
    labels = np.zeros(n, dtype=bool)
    labels[: round(n * prevalence)] = True
    labels = rng.permutation(labels)
    patient_index = rng.permutation(np.arange(n) % n_patients)
    image_rngs = [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(n)]
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    spacing = (PHANTOM_SPACING,) * spatial_dims
    rows = []
    for i in range(n):
        image, mask = make_phantom(image_rngs[i], spatial_dims=spatial_dims, size=size, lesion=bool(labels[i]))
        patient = f"PH{patient_index[i]:04d}"
        name = f"case_{i:04d}"
        if fmt == "png":
            image_path = _write_png(out_dir / "images" / f"{name}.png", image, png_bits)
        elif fmt == "nifti":
            image_path = _write_nifti(out_dir / "images" / f"{name}.nii.gz", np.round(image).astype(np.int16), spacing)
        elif spatial_dims == 2:
            image_path = write_dicom_image(
                out_dir / "images" / f"{name}.dcm", image, spacing, patient_id=patient, uid_seed=f"{seed}/{name}"
            )
        else:
            write_dicom_series(out_dir / "images" / name, image, spacing, patient_id=patient, uid_seed=f"{seed}/{name}")
            image_path = out_dir / "images" / name
        if fmt == "nifti" or (fmt == "dicom" and spatial_dims == 3):
            mask_path = _write_nifti(out_dir / "masks" / f"{name}.nii.gz", mask, spacing)
        else:
            mask_path = _write_mask_png(out_dir / "masks" / f"{name}.png", mask)
        rows.append(
            {
                "path": image_path.relative_to(out_dir).as_posix(),
                "label": "lesion" if labels[i] else "normal",
                "patient_id": patient,
                mask_column: mask_path.relative_to(out_dir).as_posix(),
            }
        )
    return write_table(pd.DataFrame(rows), out_dir / "manifest.csv")


def _write_png(path: Path, image_hu: np.ndarray, bits: int) -> Path:
    from PIL import Image

    if bits == 16:
        stored = np.clip(np.round(image_hu + HU_OFFSET), 0, 65535).astype(np.uint16)
    else:
        level, width = PNG_WINDOW
        scaled = (image_hu - (level - width / 2.0)) / width * 255.0
        stored = np.clip(np.round(scaled), 0, 255).astype(np.uint8)
    Image.fromarray(stored).save(path)
    return path


def _write_mask_png(path: Path, mask: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray((mask > 0).astype(np.uint8) * 255).save(path)
    return path


def _write_nifti(path: Path, array: np.ndarray, spacing: Sequence[float]) -> Path:
    import nibabel as nib

    data = array[..., None] if array.ndim == 2 else array  # NIfTI is at least 3D: (H, W) → (H, W, 1)
    zooms = [*spacing, spacing[-1]] if array.ndim == 2 else list(spacing)
    affine = np.diag([*zooms, 1.0])
    image = nib.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm")
    nib.save(image, path)
    return path


# -- DICOM writers --------------------------------------------------------------------------------


def write_dicom_image(
    path: str | Path,
    image_hu: np.ndarray,
    spacing: Sequence[float] = (PHANTOM_SPACING, PHANTOM_SPACING),
    *,
    patient_id: str = "PHANTOM",
    study_uid: str | None = None,
    series_uid: str | None = None,
    instance_number: int = 1,
    position: Sequence[float] = (0.0, 0.0, 0.0),
    orientation: Sequence[float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    slice_thickness: float | None = None,
    uid_seed: str = "",
) -> Path:
    """Write one CT slice as a real DICOM file (CT Image Storage, Explicit VR Little Endian).

    Stored values are ``round(HU) + 1024`` as signed 16-bit (BitsAllocated 16, PixelRepresentation 1) with
    RescaleSlope 1 and RescaleIntercept -1024, MONOCHROME2; so a reader applying the rescale gets the rounded
    HU back. UIDs not given are derived from ``patient_id`` and ``uid_seed``, so the same call writes the
    same file.

    Args:
        path: the file to write (its folder is created).
        image_hu: ``(H, W)`` values in HU.
        spacing: ``(row spacing, column spacing)`` in mm (PixelSpacing).
        patient_id: PatientID (and PatientName).
        study_uid: StudyInstanceUID.
        series_uid: SeriesInstanceUID.
        instance_number: InstanceNumber.
        position: ImagePositionPatient of the first pixel, mm.
        orientation: ImageOrientationPatient: row and column direction cosines.
        slice_thickness: SliceThickness, mm (left out when None).
        uid_seed: extra entropy for the derived UIDs.

    Returns:
        ``path``.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    path = Path(path)
    image_hu = np.asarray(image_hu)
    assert image_hu.ndim == 2, f"image_hu must be (H, W), got shape {image_hu.shape}"
    study_uid = study_uid or generate_uid(entropy_srcs=["meddl-study", patient_id, uid_seed])
    series_uid = series_uid or generate_uid(entropy_srcs=["meddl-series", patient_id, uid_seed, study_uid])
    sop_uid = generate_uid(entropy_srcs=["meddl-sop", series_uid, str(instance_number), uid_seed])

    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = CTImageStorage
    dataset.file_meta.MediaStorageSOPInstanceUID = sop_uid
    dataset.SOPClassUID = CTImageStorage
    dataset.SOPInstanceUID = sop_uid
    dataset.StudyInstanceUID = study_uid
    dataset.SeriesInstanceUID = series_uid
    dataset.FrameOfReferenceUID = generate_uid(entropy_srcs=["meddl-frame", study_uid])
    dataset.PatientID = patient_id
    dataset.PatientName = patient_id
    dataset.Modality = "CT"
    dataset.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    dataset.Manufacturer = "MedDL synthetic phantom"
    dataset.StudyDate = dataset.SeriesDate = "20240101"
    dataset.SeriesNumber = 1
    dataset.InstanceNumber = instance_number
    stored = np.clip(np.round(image_hu) + HU_OFFSET, -32768, 32767).astype(np.int16)
    dataset.set_pixel_data(stored, "MONOCHROME2", 16, generate_instance_uid=False)
    dataset.RescaleSlope = 1
    dataset.RescaleIntercept = -HU_OFFSET
    dataset.RescaleType = "HU"
    dataset.WindowCenter = 40
    dataset.WindowWidth = 400
    dataset.PixelSpacing = [float(spacing[0]), float(spacing[1])]
    dataset.ImagePositionPatient = [float(v) for v in position]
    dataset.ImageOrientationPatient = [float(v) for v in orientation]
    if slice_thickness is not None:
        dataset.SliceThickness = float(slice_thickness)
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)
    return path


def write_dicom_series(
    folder: str | Path,
    volume_hu: np.ndarray,
    spacing: Sequence[float] = (PHANTOM_SPACING, PHANTOM_SPACING, PHANTOM_SPACING),
    *,
    patient_id: str = "PHANTOM",
    study_uid: str | None = None,
    series_uid: str | None = None,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    orientation: Sequence[float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    file_names: Sequence[str] | None = None,
    uid_seed: str = "",
) -> list[Path]:
    """Write a volume as a DICOM series: one CT Image Storage file per slice, in one folder.

    Slice ``k`` of ``volume_hu`` (D, H, W) lies at ``origin + k * spacing[0] * normal``, where ``normal`` is
    the cross product of the row and column direction cosines in ``orientation``; all slices share one
    StudyInstanceUID and SeriesInstanceUID.

    Args:
        folder: the series folder (created).
        volume_hu: ``(D, H, W)`` values in HU.
        spacing: ``(slice spacing, row spacing, column spacing)`` in mm.
        patient_id: PatientID.
        study_uid: StudyInstanceUID (derived when None).
        series_uid: SeriesInstanceUID (derived when None).
        origin: ImagePositionPatient of slice 0, mm.
        orientation: ImageOrientationPatient.
        file_names: one name per slice (default ``slice_000.dcm``…), e.g. to write them out of order.
        uid_seed: extra entropy for the derived UIDs.

    Returns:
        The written files, in slice order.
    """
    from pydicom.uid import generate_uid

    folder = Path(folder)
    volume_hu = np.asarray(volume_hu)
    assert volume_hu.ndim == 3, f"volume_hu must be (D, H, W), got shape {volume_hu.shape}"
    names = list(file_names) if file_names is not None else [f"slice_{k:03d}.dcm" for k in range(len(volume_hu))]
    assert len(names) == len(volume_hu), f"{len(names)} file names for {len(volume_hu)} slices"
    study_uid = study_uid or generate_uid(entropy_srcs=["meddl-study", patient_id, uid_seed])
    series_uid = series_uid or generate_uid(entropy_srcs=["meddl-series", patient_id, uid_seed, study_uid])
    cosines = np.asarray([float(v) for v in orientation])
    normal = np.cross(cosines[:3], cosines[3:])
    written = []
    for k, (slice_hu, name) in enumerate(zip(volume_hu, names, strict=True)):
        position = np.asarray(origin, dtype=float) + k * float(spacing[0]) * normal
        written.append(
            write_dicom_image(
                folder / name,
                slice_hu,
                spacing[1:],
                patient_id=patient_id,
                study_uid=study_uid,
                series_uid=series_uid,
                instance_number=k + 1,
                position=position.tolist(),
                orientation=cosines.tolist(),
                slice_thickness=float(spacing[0]),
                uid_seed=uid_seed,
            )
        )
    return written

"""What every image reader shares: :class:`ImageVolume`, the format names and suffixes, the DICOM preamble test.

They live apart from the readers so that :mod:`meddl.io.images` (which dispatches to the DICOM reader) and
:mod:`meddl.io.dicom` (which builds :class:`ImageVolume` objects) both import them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "DICOM_SUFFIXES",
    "IMAGE_SUFFIXES",
    "NIFTI_SUFFIXES",
    "PNG_SUFFIXES",
    "ImageFormat",
    "ImageVolume",
    "is_dicom_file",
]

ImageFormat = Literal["auto", "dicom", "nifti", "png", "npz"]

PNG_SUFFIXES = (".png", ".jpg", ".jpeg")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom")
IMAGE_SUFFIXES = PNG_SUFFIXES + NIFTI_SUFFIXES + DICOM_SUFFIXES


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


def is_dicom_file(path: str | Path) -> bool:
    """True if the file starts with the DICOM preamble (128 bytes, then ``DICM``)."""
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

"""Image size and spacing from headers alone agree with what the full read gives."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from meddl.data.phantoms import write_dicom_image, write_dicom_series
from meddl.errors import MedDLError
from meddl.io.images import image_geometry, read_image


def _agree(path: Path) -> tuple[tuple[int, ...], tuple[float, ...]]:
    shape, spacing = image_geometry(path)
    volume = read_image(path)
    assert shape == tuple(volume.array.shape[1:])
    assert spacing == pytest.approx(tuple(volume.spacing))
    return shape, spacing


def test_png_dicom_nifti_and_series_headers_agree_with_the_read(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((20, 30), dtype=np.uint8)).save(tmp_path / "a.png")
    assert _agree(tmp_path / "a.png") == ((20, 30), (1.0, 1.0))
    write_dicom_image(tmp_path / "b.dcm", np.zeros((12, 16), dtype=np.int16))
    assert _agree(tmp_path / "b.dcm")[0] == (12, 16)
    nib.save(
        nib.Nifti1Image(np.zeros((10, 11, 5), dtype=np.float32), np.diag([0.5, 0.7, 2.0, 1.0])), tmp_path / "c.nii.gz"
    )
    shape, spacing = _agree(tmp_path / "c.nii.gz")
    assert shape == (10, 11, 5) and spacing == pytest.approx((0.5, 0.7, 2.0))
    write_dicom_series(tmp_path / "series", np.zeros((4, 8, 9)))
    shape, _ = image_geometry(tmp_path / "series")
    assert shape == tuple(read_image(tmp_path / "series").array.shape[1:]) == (4, 8, 9)


def test_an_unreadable_header_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(MedDLError, match=r"broken\.png"):
        image_geometry(tmp_path / "broken.png")

"""FastValues (meddl.io._dicom_tags) gives what pydicom gives, on every DICOM file pydicom ships and on ours."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.multival import MultiValue
from pydicom.uid import UID

from meddl.data.phantoms import write_phantom_dataset
from meddl.errors import MedDLError
from meddl.io import dicom
from meddl.io._dicom_tags import _FAST_VR, FastValues, _fast_value, values_unvalidated

SHIPPED = sorted(Path(get_testdata_file("CT_small.dcm")).parent.rglob("*.dcm"))


def same(fast: Any, slow: Any) -> bool:
    """Equal values of the kinds the readers compute with: numbers as numbers, text as text, UIDs as UIDs."""
    if isinstance(slow, list | tuple | MultiValue):
        return isinstance(fast, list | MultiValue) and len(fast) == len(slow) and all(map(same, fast, slow))
    if isinstance(slow, int | float) and not isinstance(slow, bool):
        return isinstance(fast, int | float) and float(fast) == float(slow)
    if isinstance(slow, UID):
        return isinstance(fast, UID) and fast == slow
    if isinstance(slow, str):
        return isinstance(fast, str) and fast == slow
    return fast is slow  # None: an empty number


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_each_fast_value_is_pydicoms(path: Path) -> None:
    with values_unvalidated():
        try:
            fast = FastValues(pydicom.dcmread(path, force=True))
            slow = pydicom.dcmread(path, force=True)
        except Exception:  # a file pydicom cannot parse at all is no test of the values
            pytest.skip("pydicom cannot read it")
        for keyword in _FAST_VR:
            assert (keyword in fast) == (keyword in slow), keyword
            try:
                expected = slow.get(keyword)
            except Exception as exc:  # a value pydicom cannot convert: the fast path must not invent one
                with pytest.raises(type(exc)):
                    fast.get(keyword)
                continue
            assert same(fast.get(keyword), expected), (keyword, fast.get(keyword), expected)


SERIES = sorted({p.parent for p in (SHIPPED[0].parent / "dicomdirtests").rglob("*") if p.is_file()})


def read(path: Path, *, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    real = dicom._read_dataset
    monkeypatch.setattr(dicom, "_read_dataset", lambda p, **kw: real(p, **{**kw, "fast": fast}))
    try:
        return dicom.read_dicom_series(path) if path.is_dir() else dicom.read_dicom_file(path)
    except MedDLError as exc:
        return str(exc)
    finally:
        monkeypatch.setattr(dicom, "_read_dataset", real)


@pytest.mark.parametrize("path", SHIPPED + SERIES, ids=lambda p: p.name)
def test_file_and_series_reads_are_the_same_with_and_without_fast_values(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow = read(path, fast=True, monkeypatch=monkeypatch), read(path, fast=False, monkeypatch=monkeypatch)
    if isinstance(slow, str):
        assert fast == slow
        return
    assert not isinstance(fast, str), fast
    np.testing.assert_array_equal(fast.array, slow.array)
    assert fast.spacing == slow.spacing and fast.array.dtype == slow.array.dtype
    assert fast.meta == slow.meta


def test_phantoms_read_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flat = write_phantom_dataset(tmp_path / "2d", 4, size=32, fmt="dicom", seed=0)
    volumes = write_phantom_dataset(tmp_path / "3d", 2, size=16, spatial_dims=3, fmt="dicom", seed=0)
    series = sorted({p.parent for p in volumes.parent.rglob("*.dcm")})
    assert series and all(len(list(folder.iterdir())) > 1 for folder in series)
    for path in [*sorted(flat.parent.rglob("*.dcm")), *series]:
        fast, slow = read(path, fast=True, monkeypatch=monkeypatch), read(path, fast=False, monkeypatch=monkeypatch)
        np.testing.assert_array_equal(fast.array, slow.array)
        assert (fast.spacing, fast.meta) == (slow.spacing, slow.meta)


def raw(vr: str | None, value: bytes, little: bool = True) -> RawDataElement:
    return RawDataElement(0x00280030, vr, len(value), value, 0, vr is None, little, True, False)


def test_fast_value_leaves_to_pydicom_what_it_cannot_plainly_read() -> None:
    assert _fast_value(raw("DS", b"0.5\\0.25"), "DS") == [0.5, 0.25]
    assert _fast_value(raw(None, b"1.5 "), "DS") == 1.5  # implicit VR: the dictionary's
    assert _fast_value(raw("IS", b"12"), "IS") == 12
    assert _fast_value(raw("US", b"\x00\x02"), "US") == 512
    assert _fast_value(raw("DS", b""), "DS") is None
    assert _fast_value(raw("CS", b"CT"), "CS") == "CT"
    not_fast = [
        _fast_value(raw("US", b"\x00\x02", little=False), "US"),  # big-endian
        _fast_value(raw("UN", b"1.0"), "DS"),  # a stated VR that is not the standard one
        _fast_value(raw("DS", b"abc"), "DS"),  # corrupt: pydicom and the check name it
        _fast_value(raw("DS", b"nan"), "DS"),
        _fast_value(raw("LO", "Müller".encode("latin-1")), "LO"),  # not ASCII: the character set decides
        _fast_value(raw("CS", b"ORIGINAL\\PRIMARY"), "CS"),  # several values: pydicom's MultiValue
        _fast_value(raw("LO", b"\x1b$B9)\x1b(B"), "LO"),  # ISO 2022 escapes: the character set decides
    ]
    assert all(value is not None and not isinstance(value, int | float | str | list) for value in not_fast)


def test_the_common_values_of_an_uncompressed_ct_take_the_fast_path() -> None:
    values = FastValues(pydicom.dcmread(get_testdata_file("CT_small.dcm")))
    for keyword in ("Rows", "RescaleSlope", "PixelSpacing", "ImagePositionPatient", "Modality", "SOPClassUID"):
        values.get(keyword)
    assert set(values._values) >= {"Rows", "RescaleSlope", "PixelSpacing", "ImagePositionPatient", "Modality"}
    assert values.get("SOPClassUID").name == "CT Image Storage" and values.Rows == 128
    with pytest.raises(AttributeError):
        _ = values.NumberOfFrames  # absent, as pydicom says
    assert values.get("NumberOfFrames", 1) == 1 and "NumberOfFrames" not in values

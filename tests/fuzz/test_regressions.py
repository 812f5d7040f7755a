"""Every crash the fuzz tests found, as the exact input that caused it: each used to escape as a traceback (or turn
a value silently infinite, or answer 500) and must now be a MedDLError naming the file, or a clear answer.

Plain tests: they run without hypothesis or schemathesis."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement

from meddl.config import load_config
from meddl.errors import MedDLError
from meddl.io.expression import read_expression
from meddl.io.images import check_readable, image_geometry, read_image
from meddl.io.signals import Signal, read_dicom_waveform, read_signal_array, read_wfdb, write_dicom_ecg

pytestmark = pytest.mark.filterwarnings("ignore")


# -- DICOM images: pydicom converts each value when first read, so a corrupt one used to fail wherever it was read --


def _ct_small() -> bytes:
    return Path(get_testdata_file("CT_small.dcm")).read_bytes()


def _dicom_edit(old: bytes, new: bytes) -> bytes:
    data = _ct_small()
    assert data.count(old) == 1, old
    return data.replace(old, new)


def _element_value(data: bytes, tag: bytes) -> tuple[int, int]:
    """Where an explicit-VR element's value starts in ``data`` and its length (2-byte length field)."""
    at = data.index(tag)
    return at + 8, struct.unpack("<H", data[at + 6 : at + 8])[0]


def _orientation_with_text() -> bytes:
    data = _ct_small()
    start, length = _element_value(data, b"\x20\x00\x37\x00DS")  # (0020,0037) Image Orientation (Patient)
    value = data[start : start + length].replace(b"\\0.000000", b"\\0.0X0000", 1)
    return data[:start] + value + data[start + length :]


def _length_field(tag: bytes, length: bytes) -> bytes:
    data = _ct_small()
    at = data.index(tag)
    return data[: at + 6] + length + data[at + 8 :]


DICOM_CASES = {
    # (0020,000E) Series Instance UID with VR 'U\x98': NotImplementedError (unknown VR) from read_image.
    "unknown_value_representation": (_dicom_edit(b"\x20\x00\x0e\x00UI", b"\x20\x00\x0e\x00U\x98"), "Unknown Value"),
    # One orientation value 0.0X0000: ValueError (float) from read_image.
    "orientation_not_a_number": (_orientation_with_text(), "ImageOrientationPatient"),
    # (0028,1053) Rescale Slope stored as LO text '1': UFuncTypeError (float64 * str) from read_image.
    "rescale_slope_as_text": (_dicom_edit(b"\x28\x00\x53\x10DS", b"\x28\x00\x53\x10LO"), "RescaleSlope"),
    # Transfer Syntax UID 1.2.840.1000!.1.2.1: ValueError ("UID is not a transfer syntax") from read and check.
    "not_a_transfer_syntax": (
        _dicom_edit(b"1.2.840.10008.1.2.1\x00", b"1.2.840.1000!.1.2.1\x00"),
        "not a standard DICOM transfer syntax",
    ),
    # (0028,0011) Columns with length 10: five numbers; TypeError (int of a list) from image_geometry.
    "columns_several_numbers": (_length_field(b"\x28\x00\x11\x00US", b"\x0a\x00"), "Columns"),
    # (0028,0010) Rows with odd length 2049: left unread by the header check, BytesLengthException in image_geometry.
    "rows_odd_length": (_length_field(b"\x28\x00\x10\x00US", b"\x01\x08"), "truncated or corrupt"),
}


@pytest.mark.parametrize("case", sorted(DICOM_CASES))
def test_corrupt_dicom_value_is_named_by_every_reader(tmp_path: Path, case: str) -> None:
    data, words = DICOM_CASES[case]
    path = tmp_path / f"{case}.dcm"
    path.write_bytes(data)
    with pytest.raises(MedDLError, match=words) as raised:
        read_image(path)
    assert str(path) in str(raised.value)
    reason = check_readable(path)
    assert reason is not None and words in reason
    if case != "not_a_transfer_syntax":  # the geometry needs no transfer syntax: it reads the header only
        with pytest.raises(MedDLError, match=words):
            image_geometry(path)


def test_dicom_geometry_without_rows(tmp_path: Path) -> None:
    """(0028,0010) Rows renamed to (0028,0012): image_geometry used to answer a (0, 128) image."""
    path = tmp_path / "no_rows.dcm"
    path.write_bytes(_dicom_edit(b"\x28\x00\x10\x00US", b"\x28\x00\x12\x00US"))
    with pytest.raises(MedDLError, match=r"no_rows\.dcm: the DICOM header does not describe an image: Rows=0"):
        image_geometry(path)


def test_valid_dicom_still_reads_the_same() -> None:
    volume = read_image(Path(get_testdata_file("CT_small.dcm")))
    assert volume.array.shape == (1, 128, 128) and volume.meta["orientation"] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert check_readable(Path(get_testdata_file("CT_small.dcm"))) is None


# -- DICOM waveforms ---------------------------------------------------------------------------------------------


def _ecg(tmp_path: Path, edit: Any) -> Path:
    time = np.arange(300) / 100.0
    signal = Signal(np.stack([np.sin(2 * np.pi * time), np.cos(2 * np.pi * time)]), 100.0, ["I", "II"], ["mV"] * 2, "")
    path = write_dicom_ecg(signal, tmp_path / "ecg.dcm")
    dataset = pydicom.dcmread(path)
    edit(dataset.WaveformSequence[0])
    dataset.save_as(path)
    return path


def test_ecg_with_zero_sampling_frequency(tmp_path: Path) -> None:
    """Was ValueError from Signal ("fs must be positive")."""
    path = _ecg(tmp_path, lambda group: setattr(group, "SamplingFrequency", 0))
    with pytest.raises(MedDLError, match=r"ecg\.dcm: the waveform's SamplingFrequency \(003A,001A\) must be positive"):
        read_dicom_waveform(path)


def test_ecg_with_text_sampling_frequency(tmp_path: Path) -> None:
    """SamplingFrequency stored as LO 'fast': was ValueError (float('fast'))."""
    path = _ecg(tmp_path, lambda group: group.__setitem__(0x003A001A, DataElement(0x003A001A, "LO", "fast")))
    with pytest.raises(MedDLError, match=r"ecg\.dcm: .*SamplingFrequency \(003A,001A\) holds 'fast'"):
        read_dicom_waveform(path)


# -- NIfTI -------------------------------------------------------------------------------------------------------


def _nifti(tmp_path: Path, offset: int, layout: str, *values: float) -> bytes:
    import nibabel as nib

    image = nib.Nifti1Image(np.arange(60, dtype=np.int16).reshape(4, 5, 3), np.diag([1.5, 1.5, 3.0, 1.0]))
    nib.save(image, tmp_path / "seed.nii")
    data = bytearray((tmp_path / "seed.nii").read_bytes())
    struct.pack_into(layout, data, offset, *values)
    return bytes(data)


NIFTI_CASES = {
    # dim = (3, 4, 5, -32765): OverflowError ("memory mapped length must be positive") from read_image.
    "negative_axis": ((40, "<8h", 3, 4, 5, -32765, 1, 1, 1, 1), "every axis needs at least 1 voxel"),
    # dim = (3, 30000, 30000, 30000) in a 472-byte file: MemoryError (54 TB) from read_image.
    "huge_declared_shape": ((40, "<8h", 3, 30000, 30000, 30000, 1, 1, 1, 1), "header describes"),
    # datatype 110: nibabel's HeaderDataError from read_image and check_readable.
    "unknown_datatype": ((70, "<h", 110), "data code 110 not recognized"),
    # srow_x = (0, 1.5, 0, 0): two rows of the affine on one axis; OrientationError from read_image.
    "degenerate_affine": ((280, "<4f", 0.0, 1.5, 0.0, 0.0), "gives no orientation"),
}


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("case", sorted(NIFTI_CASES))
def test_corrupt_nifti_header_is_named(tmp_path: Path, case: str, suffix: str) -> None:
    edit, words = NIFTI_CASES[case]
    data = _nifti(tmp_path, *edit)
    path = tmp_path / f"{case}{suffix}"
    path.write_bytes(gzip.compress(data, mtime=0) if suffix == ".nii.gz" else data)
    with pytest.raises(MedDLError, match=words) as raised:
        read_image(path)
    assert str(path) in str(raised.value)
    if case != "degenerate_affine":  # the header check reads no affine
        reason = check_readable(path)
        assert reason is not None and words in reason
    if case == "negative_axis":  # the geometry, from the header alone, was (4, 5, -32765)
        with pytest.raises(MedDLError, match="each axis needs a voxel or more"):
            image_geometry(path)


# -- WFDB, signal and expression tables --------------------------------------------------------------------------


def test_wfdb_header_with_zero_sampling_frequency(tmp_path: Path) -> None:
    """Header line 'rec 2 0 120': was ValueError from Signal ("fs must be positive")."""
    import wfdb

    samples = np.stack([np.sin(np.linspace(0, 6, 120)), np.cos(np.linspace(0, 6, 120))], axis=1)  # (L, C)
    wfdb.wrsamp("rec", fs=250, units=["mV", "mV"], sig_name=["I", "II"], p_signal=samples, fmt=["16", "16"],
                write_dir=str(tmp_path))  # fmt: skip
    header = tmp_path / "rec.hea"
    header.write_text(header.read_text().replace("rec 2 250 120", "rec 2 0 120"))
    with pytest.raises(MedDLError, match=r"rec\.hea: the sampling frequency must be a positive number of Hz, got 0"):
        read_wfdb(header)


def test_signal_csv_value_beyond_float32_is_named(tmp_path: Path) -> None:
    """1e39 used to become an infinite sample in the float32 Signal, silently."""
    path = tmp_path / "signal.csv"
    path.write_text("time,I,II\n0.00,0.1,-0.2\n0.01,1e39,-0.1\n0.02,0.2,0.0\n")
    with pytest.raises(MedDLError, match=r"signal\.csv: 1 sample\(s\) beyond .*channel 'I', sample 1: 1e\+39"):
        read_signal_array(path, fs=100.0)


def test_expression_value_beyond_float32_is_named(tmp_path: Path) -> None:
    """1e39 used to become an infinite value in the float32 matrix, silently."""
    path = tmp_path / "counts.csv"
    path.write_text("sample,TP53,BRCA1\nS1,1.5,2\nS2,1e39,4\n")
    with pytest.raises(MedDLError, match=r"counts\.csv: 1 value\(s\) beyond .*gene 'TP53', sample 'S2'.*: 1e\+39"):
        read_expression(path)


# -- experiment files --------------------------------------------------------------------------------------------


def test_experiment_file_with_a_byte_that_is_not_utf8(tmp_path: Path) -> None:
    """Byte 0x91 (a Windows-1252 quote) in `meddl init tabular`: was UnicodeDecodeError from load_config."""
    from meddl.modalities.kinds import template

    path = tmp_path / "experiment.yaml"
    path.write_bytes(template("tabular").encode("utf-8").replace(b"name: pima", b"name: \x91pima\x92", 1))
    with pytest.raises(MedDLError, match=r"experiment\.yaml: not UTF-8 text \(byte b'\\x91' on line \d+\)"):
        load_config(path)


# -- the server --------------------------------------------------------------------------------------------------


def test_record_so_far_out_of_range_that_the_model_overflows_is_not_scored(served_app: Any) -> None:
    """systolic_bp 1.59e21 made the probability NaN, which JSON cannot carry: the route raised ValueError (a 500).
    The case is now answered as not scored, with a note, never labelled from a NaN."""
    record = {"age": None, "bmi": None, "glucose": None, "noise": None, "sex": None, "smoker": None}
    record["systolic_bp"] = 1.590196253412953e21
    client = TestClient(served_app)
    for action in ("predict", "explain"):
        response = client.post(f"/models/clinic/{action}", json={"records": [record, {**record, "systolic_bp": 120}]})
        assert response.status_code == 200, response.text
        extreme, usual = response.json()["predictions"]
        assert extreme["label"] is None and extreme["probability"] is None
        assert extreme["note"].startswith("not scored: the model's output for this case is not a finite number")
        assert usual["label"] in ("no", "yes") and 0.0 <= usual["probability"] <= 1.0

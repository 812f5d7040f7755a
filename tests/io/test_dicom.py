"""DICOM files and series: HU values, orientation of grey levels, slice order, and every bad input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    BasicTextSRStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from meddl.data.phantoms import write_dicom_image, write_dicom_series
from meddl.errors import MedDLError
from meddl.io.dicom import check_dicom_file, check_dicom_series, read_dicom_file, read_dicom_series


def _dataset(sop_class: str, modality: str) -> Dataset:
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = sop_class
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.Modality = modality
    dataset.PatientID = "P1"
    dataset.SeriesInstanceUID = generate_uid()
    return dataset


def test_single_file_gives_the_written_hounsfield_units(tmp_path: Path) -> None:
    hu = np.random.default_rng(0).integers(-1000, 1500, size=(12, 10)).astype(np.float64)
    path = write_dicom_image(tmp_path / "ct.dcm", hu, (0.7, 0.6), patient_id="P7")

    volume = read_dicom_file(path)

    assert volume.array.shape == (1, 12, 10)
    assert volume.array.dtype == np.float32
    np.testing.assert_array_equal(volume.array[0], hu)
    assert volume.spacing == pytest.approx((0.7, 0.6))
    assert volume.spatial_dims == 2
    assert volume.meta["modality"] == "CT"
    assert volume.meta["patient_id"] == "P7"
    # the raw file stores HU + 1024 with the rescale that undoes it
    raw = pydicom.dcmread(path)
    assert raw.RescaleIntercept == -1024 and raw.PixelRepresentation == 1
    np.testing.assert_array_equal(raw.pixel_array, hu + 1024)


def test_series_shuffled_on_disk_comes_back_sorted_along_the_slice_normal(tmp_path: Path) -> None:
    volume_hu = np.random.default_rng(1).integers(-1000, 1000, size=(6, 8, 9)).astype(np.float64)
    # Tilted slices, file names in an order unrelated to the slice positions.
    orientation = (1.0, 0.0, 0.0, 0.0, np.cos(0.3), -np.sin(0.3))
    names = [f"img_{name}.dcm" for name in ("d", "a", "f", "c", "e", "b")]
    write_dicom_series(
        tmp_path / "series",
        volume_hu,
        (2.5, 0.7, 0.8),
        orientation=orientation,
        file_names=names,
        origin=(10.0, -20.0, -300.0),
    )

    volume = read_dicom_series(tmp_path / "series")

    assert volume.array.shape == (1, 6, 8, 9)
    np.testing.assert_array_equal(volume.array[0], volume_hu)
    assert volume.spacing == pytest.approx((2.5, 0.7, 0.8))
    assert volume.meta["files"] == names
    assert volume.meta["warnings"] == []


def test_series_is_sorted_along_the_normal_not_on_raw_z(tmp_path: Path) -> None:
    volume_hu = np.arange(4 * 3 * 3, dtype=np.float64).reshape(4, 3, 3)
    # Columns run towards -y, so the slice normal is (0, 0, -1): z falls as k rises. Sorting on z, or on the
    # file names (written in reverse), would give the volume upside down.
    write_dicom_series(
        tmp_path / "s",
        volume_hu,
        (1.5, 1.0, 1.0),
        orientation=(1.0, 0.0, 0.0, 0.0, -1.0, 0.0),
        file_names=["s_3.dcm", "s_2.dcm", "s_1.dcm", "s_0.dcm"],
    )

    volume = read_dicom_series(tmp_path / "s")

    np.testing.assert_array_equal(volume.array[0], volume_hu)
    assert volume.spacing[0] == pytest.approx(1.5)
    assert volume.meta["slice_normal"] == pytest.approx([0.0, 0.0, -1.0])


def test_monochrome1_is_inverted_so_higher_is_brighter(tmp_path: Path) -> None:
    dataset = _dataset(DigitalXRayImageStorageForPresentation, "DX")
    raw = np.array([[0, 100], [4000, 4095]], dtype=np.uint16)
    dataset.set_pixel_data(raw, "MONOCHROME1", 12)
    dataset.ImagerPixelSpacing = [0.15, 0.15]
    dataset.save_as(tmp_path / "dx.dcm", enforce_file_format=True)

    volume = read_dicom_file(tmp_path / "dx.dcm")

    np.testing.assert_array_equal(volume.array[0], 4095 - raw.astype(np.float32))
    assert volume.spacing == pytest.approx((0.15, 0.15))
    assert volume.meta["photometric"] == "MONOCHROME1"


def test_multi_frame_file_is_a_volume(tmp_path: Path) -> None:
    dataset = _dataset(SecondaryCaptureImageStorage, "CT")
    frames = np.random.default_rng(2).integers(0, 3000, size=(4, 5, 6)).astype(np.int16)
    dataset.set_pixel_data(frames, "MONOCHROME2", 16)
    dataset.RescaleSlope = 2
    dataset.RescaleIntercept = -1024
    dataset.PixelSpacing = [0.5, 0.4]
    dataset.SliceThickness = 3.0
    dataset.save_as(tmp_path / "mf.dcm", enforce_file_format=True)

    volume = read_dicom_file(tmp_path / "mf.dcm")

    assert volume.array.shape == (1, 4, 5, 6)
    np.testing.assert_array_equal(volume.array[0], frames * 2.0 - 1024)
    assert volume.spacing == pytest.approx((3.0, 0.5, 0.4))


def test_rgb_file_is_three_channels(tmp_path: Path) -> None:
    dataset = _dataset(SecondaryCaptureImageStorage, "XC")
    rgb = np.random.default_rng(3).integers(0, 256, size=(7, 5, 3)).astype(np.uint8)
    dataset.set_pixel_data(rgb, "RGB", 8)
    dataset.save_as(tmp_path / "photo.dcm", enforce_file_format=True)

    volume = read_dicom_file(tmp_path / "photo.dcm")

    assert volume.array.shape == (3, 7, 5)
    np.testing.assert_array_equal(volume.array, np.moveaxis(rgb, 2, 0))


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [-100, 600, 200])
def test_truncated_file(tmp_path: Path, keep: int) -> None:
    whole = write_dicom_image(tmp_path / "whole.dcm", np.zeros((32, 32))).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(whole[:keep])

    with pytest.raises(MedDLError, match="truncated or corrupt") as info:
        read_dicom_file(path)
    assert str(path) in str(info.value)


def test_not_a_dicom_file(tmp_path: Path) -> None:
    path = tmp_path / "noise.dcm"
    path.write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(MedDLError, match="not a DICOM file") as info:
        read_dicom_file(path)
    assert str(path) in str(info.value)


def test_structured_report_without_pixel_data_names_its_sop_class(tmp_path: Path) -> None:
    dataset = _dataset(BasicTextSRStorage, "SR")
    dataset.save_as(tmp_path / "report.dcm", enforce_file_format=True)

    with pytest.raises(MedDLError, match="has no pixel data") as info:
        read_dicom_file(tmp_path / "report.dcm")
    message = str(info.value)
    assert str(tmp_path / "report.dcm") in message
    assert "Basic Text SR Storage" in message and "modality SR" in message


@pytest.mark.parametrize(
    ("transfer_syntax", "name"),
    [(JPEG2000Lossless, "JPEG 2000 Image Compression"), (JPEGLSLossless, "JPEG-LS Lossless Image Compression")],
)
def test_undecodable_transfer_syntax_is_named(tmp_path: Path, transfer_syntax: str, name: str) -> None:
    from pydicom.encaps import encapsulate

    dataset = _dataset(SecondaryCaptureImageStorage, "OT")
    dataset.file_meta.TransferSyntaxUID = transfer_syntax
    dataset.Rows, dataset.Columns = 8, 8
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 16, 15, 0
    dataset.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(60)])  # a broken JPEG 2000 codestream
    dataset["PixelData"].VR = "OB"
    dataset.save_as(tmp_path / "j2k.dcm", enforce_file_format=True)

    with pytest.raises(MedDLError, match=f"unsupported transfer syntax '{name}") as info:
        read_dicom_file(tmp_path / "j2k.dcm")
    assert str(tmp_path / "j2k.dcm") in str(info.value)


def test_series_with_mixed_slice_sizes_names_a_file_of_each_size(tmp_path: Path) -> None:
    series = generate_uid()
    study = generate_uid()
    for k in range(3):
        write_dicom_image(
            tmp_path / f"big_{k}.dcm",
            np.zeros((16, 16)),
            series_uid=series,
            study_uid=study,
            instance_number=k + 1,
            position=(0, 0, k),
        )
    write_dicom_image(
        tmp_path / "small.dcm",
        np.zeros((8, 8)),
        series_uid=series,
        study_uid=study,
        instance_number=9,
        position=(0, 0, 9),
    )

    with pytest.raises(MedDLError, match="different sizes") as info:
        read_dicom_series(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "16x16 (3 files, e.g. 'big_0.dcm')" in message and "8x8 (1 file, e.g. 'small.dcm')" in message


def test_two_series_in_one_folder_are_named_with_their_file_counts(tmp_path: Path) -> None:
    first = write_dicom_series(tmp_path, np.zeros((3, 4, 4)), file_names=["a1.dcm", "a2.dcm", "a3.dcm"], uid_seed="a")
    second = write_dicom_series(tmp_path, np.zeros((2, 4, 4)), file_names=["b1.dcm", "b2.dcm"], uid_seed="b")
    uid_a = pydicom.dcmread(first[0]).SeriesInstanceUID
    uid_b = pydicom.dcmread(second[0]).SeriesInstanceUID

    with pytest.raises(MedDLError, match="holds 2 DICOM series") as info:
        read_dicom_series(tmp_path)
    message = str(info.value)
    assert f"{uid_a} (3 files" in message and f"{uid_b} (2 files" in message


def test_series_slice_without_position(tmp_path: Path) -> None:
    files = write_dicom_series(tmp_path, np.zeros((3, 4, 4)))
    dataset = pydicom.dcmread(files[1])
    del dataset.ImagePositionPatient
    dataset.save_as(files[1])

    with pytest.raises(MedDLError, match=r"no Image Position \(Patient\)") as info:
        read_dicom_series(tmp_path)
    assert str(files[1]) in str(info.value)


def test_folder_without_dicom_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(MedDLError, match="no DICOM files") as info:
        read_dicom_series(tmp_path)
    assert str(tmp_path) in str(info.value) and "notes.txt" in str(info.value)


def test_missing_slice_is_reported_not_hidden(tmp_path: Path) -> None:
    files = write_dicom_series(tmp_path, np.zeros((5, 4, 4)), (2.0, 1.0, 1.0))
    files[2].unlink()
    volume = read_dicom_series(tmp_path)
    assert volume.array.shape == (1, 4, 4, 4)
    assert any("a slice may be missing" in note for note in volume.meta["warnings"])


# -- header-only checks ---------------------------------------------------------------------------


def _never_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any pixel decoding fail the test: the header checks must not decode."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the header check decoded pixel data")

    monkeypatch.setattr("meddl.io.dicom._pixels", refuse)
    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(refuse))


def test_header_check_passes_whole_files_and_series_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dicom_image(tmp_path / "one.dcm", np.zeros((16, 16)))
    write_dicom_series(tmp_path / "series", np.zeros((3, 8, 8)))
    _never_decode(monkeypatch)
    check_dicom_file(tmp_path / "one.dcm")
    check_dicom_series(tmp_path / "series")


@pytest.mark.parametrize(
    ("keep", "reason"),
    [
        (-1, "it ends 2047 bytes into its 2048-byte pixel data"),
        (-600, "ends 1448 bytes into"),
        (600, "ends before its pixel data"),
        (200, "no data elements"),
    ],
)
def test_header_check_finds_a_file_cut_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: int, reason: str
) -> None:
    whole = write_dicom_image(tmp_path / "whole.dcm", np.zeros((32, 32))).read_bytes()  # 2048 bytes of pixels
    path = tmp_path / "cut.dcm"
    path.write_bytes(whole[:keep])
    _never_decode(monkeypatch)
    with pytest.raises(MedDLError, match="truncated or corrupt") as info:
        check_dicom_file(path)
    assert str(path) in str(info.value) and reason in str(info.value)


def test_header_check_compares_the_pixel_data_with_rows_and_columns(tmp_path: Path) -> None:
    path = write_dicom_image(tmp_path / "ct.dcm", np.zeros((8, 8)))
    dataset = pydicom.dcmread(path)
    dataset.Rows = 16  # the header now asks for 16 × 8 × 2 bytes, the element holds 8 × 8 × 2
    dataset.save_as(path)
    with pytest.raises(MedDLError, match=r"holds 128 bytes but .*\(16 × 8 × 1 × 1 × 16\) need 256 bytes") as info:
        check_dicom_file(path)
    assert str(path) in str(info.value)
    dataset.Rows = 0
    dataset.save_as(path)
    with pytest.raises(MedDLError, match="does not describe an image: Rows=0"):
        check_dicom_file(path)


def test_header_check_names_sop_class_of_a_file_without_pixels(tmp_path: Path) -> None:
    _dataset(BasicTextSRStorage, "SR").save_as(tmp_path / "report.dcm", enforce_file_format=True)
    with pytest.raises(MedDLError, match="has no pixel data") as info:
        check_dicom_file(tmp_path / "report.dcm")
    assert "Basic Text SR Storage" in str(info.value)


def _compressed(path: Path, transfer_syntax: str, fragments: list[bytes]) -> Path:
    from pydicom.encaps import encapsulate

    dataset = _dataset(SecondaryCaptureImageStorage, "OT")
    dataset.file_meta.TransferSyntaxUID = transfer_syntax
    dataset.Rows, dataset.Columns = 8, 8
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 8, 8, 7, 0
    dataset.PixelData = encapsulate(fragments)
    dataset["PixelData"].VR = "OB"
    dataset.save_as(path, enforce_file_format=True)
    return path


def test_header_check_names_a_transfer_syntax_without_a_decoder(tmp_path: Path) -> None:
    from pydicom.pixels import get_decoder

    # JPEG-LS has a decoder now (pyjpegls comes with highdicom); High-Throughput JPEG 2000 has none here
    assert not get_decoder(HTJ2KLossless).is_available, "this test needs HTJ2K to have no decoder installed"
    path = _compressed(tmp_path / "htj2k.dcm", HTJ2KLossless, [bytes(64)])
    with pytest.raises(MedDLError, match=re.escape(f"unsupported transfer syntax '{HTJ2KLossless.name}'")) as info:
        check_dicom_file(path)
    assert str(path) in str(info.value) and "no decoder for it is installed" in str(info.value)


def test_corrupt_compressed_data_passes_the_header_and_fails_in_the_reader(tmp_path: Path) -> None:
    # 64 zero bytes are not an RLE segment table: only decoding can tell.
    path = _compressed(tmp_path / "rle.dcm", RLELossless, [bytes(64)])
    check_dicom_file(path)
    with pytest.raises(MedDLError, match="decoding failed") as info:
        read_dicom_file(path)
    assert str(path) in str(info.value)


def test_series_header_check_names_the_bad_slice_and_the_series_problems(tmp_path: Path) -> None:
    files = write_dicom_series(tmp_path / "cut", np.zeros((3, 8, 8)))
    files[1].write_bytes(files[1].read_bytes()[:-10])
    with pytest.raises(MedDLError, match="truncated or corrupt") as info:
        check_dicom_series(tmp_path / "cut")
    assert str(files[1]) in str(info.value)

    files = write_dicom_series(tmp_path / "same", np.zeros((2, 4, 4)))
    dataset = pydicom.dcmread(files[1])
    dataset.ImagePositionPatient = pydicom.dcmread(files[0]).ImagePositionPatient
    dataset.save_as(files[1])
    with pytest.raises(MedDLError, match="lie at the same position"):
        check_dicom_series(tmp_path / "same")
    with pytest.raises(MedDLError, match="lie at the same position"):
        read_dicom_series(tmp_path / "same")


# -- the uncompressed greyscale fast path: the same values as pydicom's pixel_array --------------------------------


def _grey(path: Path, stored: np.ndarray, *, bits: int, bits_stored: int, signed: bool, frames: int = 1) -> Path:
    dataset = _dataset(SecondaryCaptureImageStorage, "OT")
    dataset.Rows, dataset.Columns = stored.shape[-2:]
    if frames > 1:
        dataset.NumberOfFrames = frames
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = bits, bits_stored, bits_stored - 1
    dataset.PixelRepresentation = int(signed)
    dataset.RescaleSlope, dataset.RescaleIntercept = 2, -7
    dataset.PixelData = stored.astype(f"<{'i' if signed else 'u'}{bits // 8}").tobytes()
    dataset.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize(
    ("bits", "bits_stored", "signed", "frames"),
    [(16, 16, True, 1), (16, 12, True, 1), (16, 12, False, 1), (8, 8, False, 1), (32, 20, True, 1), (16, 12, True, 3)],
)
def test_uncompressed_grey_matches_pydicom(
    tmp_path: Path, bits: int, bits_stored: int, signed: bool, frames: int
) -> None:
    rng = np.random.default_rng(bits + bits_stored + frames)
    # raw words with garbage in the unused high bits: pydicom ignores them (PS3.5 8.1.1), and so must MedDL
    words = rng.integers(0, 2**bits - 1, size=(frames, 6, 5) if frames > 1 else (6, 5), dtype=np.uint64)
    stored = words.astype(f"u{bits // 8}").view(f"{'i' if signed else 'u'}{bits // 8}")
    path = _grey(tmp_path / "grey.dcm", stored, bits=bits, bits_stored=bits_stored, signed=signed, frames=frames)

    volume = read_dicom_file(path)

    expected = pydicom.dcmread(path).pixel_array.astype(np.float64) * 2 - 7
    np.testing.assert_array_equal(volume.array[0], expected.astype(np.float32))


def test_reading_leaves_pydicoms_value_validation_as_it_was(tmp_path: Path) -> None:
    from pydicom import config

    path = write_dicom_image(tmp_path / "ct.dcm", np.zeros((4, 4)), (1.0, 1.0))
    before = config.settings.reading_validation_mode
    read_dicom_file(path)
    assert config.settings.reading_validation_mode == before


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "rtdose.dcm"])
def test_real_files_read_to_pydicoms_values(name: str) -> None:
    """Real scans shipped with pydicom (CT, MR, implicit VR, a 15-frame 32-bit dose grid) take the fast path and
    give pydicom's own stored values, after the rescale."""
    from pydicom.data import get_testdata_file
    from pydicom.pixels import apply_modality_lut

    path = Path(get_testdata_file(name))
    dataset = pydicom.dcmread(path)
    volume = read_dicom_file(path)

    expected = np.asarray(apply_modality_lut(dataset.pixel_array, dataset), dtype=np.float64).astype(np.float32)
    np.testing.assert_allclose(volume.array[0], expected, rtol=1e-6, atol=1e-6 * float(np.abs(expected).max()))

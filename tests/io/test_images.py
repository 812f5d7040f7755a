"""Images (PNG, NIfTI, DICOM dispatch), MedMNIST-style npz files and manifests."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from meddl.data.phantoms import write_dicom_image, write_dicom_series
from meddl.errors import MedDLError
from meddl.io.images import ImageVolume, check_readable, image_manifest, read_image, read_npz

# -- PNG / JPEG -----------------------------------------------------------------------------------


def test_grey_png_round_trip(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, size=(9, 7)).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "grey.png")

    volume = read_image(tmp_path / "grey.png")

    assert isinstance(volume, ImageVolume)
    assert volume.array.shape == (1, 9, 7) and volume.array.dtype == np.float32
    np.testing.assert_array_equal(volume.array[0], pixels)
    assert volume.spacing == (1.0, 1.0) and volume.spatial_dims == 2


def test_rgb_png_round_trip_and_alpha_dropped(tmp_path: Path) -> None:
    rgba = np.random.default_rng(1).integers(0, 256, size=(6, 5, 4)).astype(np.uint8)
    rgba[..., 3] = 255  # opaque, so the colour values are stored as given
    Image.fromarray(rgba[..., :3]).save(tmp_path / "rgb.png")
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")

    rgb = read_image(tmp_path / "rgb.png")
    no_alpha = read_image(tmp_path / "rgba.png")

    assert rgb.array.shape == (3, 6, 5)
    np.testing.assert_array_equal(rgb.array, np.moveaxis(rgba[..., :3], 2, 0))
    np.testing.assert_array_equal(no_alpha.array, rgb.array)


def test_16_bit_png_keeps_its_numbers(tmp_path: Path) -> None:
    pixels = np.array([[0, 255], [1024, 60000]], dtype=np.uint16)
    Image.fromarray(pixels).save(tmp_path / "deep.png")

    volume = read_image(tmp_path / "deep.png")

    np.testing.assert_array_equal(volume.array[0], pixels.astype(np.float32))
    assert volume.meta["bits"] == 16


def test_jpeg_is_read(tmp_path: Path) -> None:
    Image.fromarray(np.full((8, 8), 128, dtype=np.uint8)).save(tmp_path / "x.jpg")
    volume = read_image(tmp_path / "x.jpg")
    assert volume.array.shape == (1, 8, 8)
    assert abs(float(volume.array.mean()) - 128) < 2


# -- NIfTI ----------------------------------------------------------------------------------------


def test_nifti_keeps_spacing_and_values(tmp_path: Path) -> None:
    data = np.random.default_rng(2).normal(size=(5, 6, 7)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.9, 1.5, 1.0])), tmp_path / "ct.nii.gz")

    volume = read_image(tmp_path / "ct.nii.gz")

    assert volume.array.shape == (1, 5, 6, 7) and volume.spatial_dims == 3
    np.testing.assert_allclose(volume.array[0], data)
    assert volume.spacing == pytest.approx((0.8, 0.9, 1.5))
    assert volume.meta["original_orientation"] == "RAS"


def test_non_canonical_nifti_comes_back_canonical(tmp_path: Path) -> None:
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    canonical_affine = np.diag([0.8, 0.9, 1.5, 1.0])
    # The same anatomy stored left-to-right (x flipped) and posterior-to-anterior (y flipped).
    flipped_affine = np.array([[-0.8, 0, 0, 0.8 * 3], [0, -0.9, 0, 0.9 * 4], [0, 0, 1.5, 0], [0, 0, 0, 1]], dtype=float)
    nib.save(nib.Nifti1Image(data, canonical_affine), tmp_path / "ras.nii")
    nib.save(nib.Nifti1Image(data[::-1, ::-1].copy(), flipped_affine), tmp_path / "lps.nii")

    ras = read_image(tmp_path / "ras.nii")
    lps = read_image(tmp_path / "lps.nii")

    assert lps.meta["original_orientation"] == "LPS"
    assert lps.meta["orientation"] == "RAS"
    np.testing.assert_array_equal(lps.array, ras.array)
    np.testing.assert_allclose(np.asarray(lps.meta["affine"]), canonical_affine, atol=1e-5)
    assert lps.spacing == pytest.approx((0.8, 0.9, 1.5))


def test_single_slice_nifti_is_2d(tmp_path: Path) -> None:
    data = np.ones((6, 7, 1), dtype=np.int16)
    nib.save(nib.Nifti1Image(data, np.diag([0.5, 0.6, 2.0, 1.0])), tmp_path / "slice.nii.gz")
    volume = read_image(tmp_path / "slice.nii.gz")
    assert volume.array.shape == (1, 6, 7)
    assert volume.spacing == pytest.approx((0.5, 0.6))


@pytest.mark.parametrize("name", ["ct.nii", "ct.nii.gz"])
def test_truncated_nifti(tmp_path: Path, name: str) -> None:
    nib.save(nib.Nifti1Image(np.ones((20, 20, 20), dtype=np.float32), np.eye(4)), tmp_path / name)
    path = tmp_path / f"cut_{name}"
    whole = (tmp_path / name).read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(MedDLError, match="truncated or corrupt") as info:
        read_image(path)
    assert str(path) in str(info.value)


# -- DICOM dispatch -------------------------------------------------------------------------------


def test_dicom_file_series_folder_and_suffixless_file(tmp_path: Path) -> None:
    image = np.arange(12, dtype=np.float64).reshape(3, 4) * 10
    write_dicom_image(tmp_path / "one.dcm", image)
    (tmp_path / "IM0001").write_bytes((tmp_path / "one.dcm").read_bytes())
    write_dicom_series(tmp_path / "series", np.stack([image, image + 1]))

    np.testing.assert_array_equal(read_image(tmp_path / "one.dcm").array[0], image)
    np.testing.assert_array_equal(read_image(tmp_path / "IM0001").array[0], image)
    series = read_image(tmp_path / "series")
    assert series.array.shape == (1, 2, 3, 4)
    np.testing.assert_array_equal(series.array[0, 1], image + 1)


# -- bad files ------------------------------------------------------------------------------------


def test_random_bytes_with_png_suffix(tmp_path: Path) -> None:
    path = tmp_path / "scan.png"
    path.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(MedDLError, match="not a readable PNG/JPEG") as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_truncated_png(tmp_path: Path) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64)).astype(np.uint8)).save(tmp_path / "a.png")
    path = tmp_path / "cut.png"
    path.write_bytes((tmp_path / "a.png").read_bytes()[:200])
    with pytest.raises(MedDLError, match="truncated or corrupt") as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_empty_file_and_unknown_suffix(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "scan.xyz").write_bytes(b"hello")
    with pytest.raises(MedDLError, match=r"empty\.png: the file is empty"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(MedDLError, match=r"scan\.xyz: unknown image type '\.xyz'"):
        read_image(tmp_path / "scan.xyz")
    with pytest.raises(MedDLError, match="image not found"):
        read_image(tmp_path / "absent.png")


def test_check_readable_gives_the_reason_or_none(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"")
    assert check_readable(tmp_path / "good.png", "auto") is None
    assert check_readable(tmp_path / "bad.png", "auto") == "the file is empty"


def _refuse_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every full read fail the test: the header-level check must not decode pixels."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("check_readable decoded the image")

    for name in ("_read_nifti", "_read_pillow", "read_image"):
        monkeypatch.setattr(f"meddl.io.images.{name}", refuse)
    monkeypatch.setattr("meddl.io.dicom._pixels", refuse)


def _cut(path: Path, keep: int) -> Path:
    cut = path.with_name(f"cut_{path.name}")
    cut.write_bytes(path.read_bytes()[:keep])
    return cut


def test_check_readable_reads_headers_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "a.jpg")
    volume = nib.Nifti1Image(rng.random((12, 12, 12)).astype(np.float32), np.eye(4))
    nib.save(volume, tmp_path / "a.nii")
    nib.save(volume, tmp_path / "a.nii.gz")
    write_dicom_image(tmp_path / "a.dcm", np.zeros((16, 16)))
    write_dicom_series(tmp_path / "series", np.zeros((3, 8, 8)))
    _refuse_decoding(monkeypatch)
    for name in ("a.png", "a.jpg", "a.nii", "a.nii.gz", "a.dcm", "series"):
        assert check_readable(tmp_path / name) is None, name


def test_check_readable_finds_files_cut_short_from_their_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    volume = nib.Nifti1Image(rng.random((12, 12, 12)).astype(np.float32), np.eye(4))
    nib.save(volume, tmp_path / "a.nii")
    nib.save(volume, tmp_path / "a.nii.gz")
    write_dicom_image(tmp_path / "a.dcm", np.zeros((16, 16)))
    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(tmp_path / "a.png")
    # A PNG that fails Pillow's verify() is decoded to be sure (verify is stricter than the reader): cut short,
    # it fails both.
    png_reason = check_readable(_cut(tmp_path / "a.png", 300))
    assert png_reason is not None and "truncated or corrupt" in png_reason
    # 200 bytes off the end: inside the voxels / pixel data; for gzip, the trailer's size becomes arbitrary
    # bytes, so the stream is counted.
    cut = {
        name: _cut(tmp_path / name, (tmp_path / name).stat().st_size - 200) for name in ("a.nii", "a.nii.gz", "a.dcm")
    }
    _refuse_decoding(monkeypatch)
    expected = {
        "a.nii": "the header describes (12, 12, 12) float32 voxels ending at byte 7264, but the file holds 7064",
        "a.nii.gz": "voxels ending at byte 7264, but the uncompressed file holds",
        "a.dcm": "the DICOM file is truncated or corrupt: it ends 312 bytes into its 512-byte pixel data",
    }
    for name, path in cut.items():
        reason = check_readable(path)
        assert reason is not None and expected[name] in reason, (name, reason)
        assert str(path) not in reason, "the reason is listed beside the file, without its name"


def test_check_readable_does_not_reject_what_the_reader_reads(tmp_path: Path) -> None:
    import gzip

    # A PNG whose end marker is cut off after whole image data: Pillow's verify() fails, decoding works.
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(tmp_path / "a.png")
    png = _cut(tmp_path / "a.png", (tmp_path / "a.png").stat().st_size - 5)
    # A .nii.gz written as two gzip members: the trailer's size is the last member's only.
    nib.save(nib.Nifti1Image(np.ones((6, 6, 6), dtype=np.int16), np.eye(4)), tmp_path / "a.nii")
    raw = (tmp_path / "a.nii").read_bytes()
    (tmp_path / "two.nii.gz").write_bytes(gzip.compress(raw[:100]) + gzip.compress(raw[100:]))
    for path in (png, tmp_path / "two.nii.gz"):
        read_image(path)  # the reader reads it …
        assert check_readable(path) is None  # … so the check passes it


def test_check_readable_decode_finds_what_headers_cannot(tmp_path: Path) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless, SecondaryCaptureImageStorage, generate_uid

    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = RLELossless
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID = generate_uid()
    dataset.Rows, dataset.Columns, dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 8, 8, 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 8, 8, 7, 0
    dataset.PixelData = encapsulate([bytes(64)])  # not an RLE segment table
    dataset["PixelData"].VR = "OB"
    dataset.save_as(tmp_path / "rle.dcm", enforce_file_format=True)

    assert check_readable(tmp_path / "rle.dcm") is None
    reason = check_readable(tmp_path / "rle.dcm", decode=True)
    assert reason is not None and "decoding failed" in reason


# -- npz ------------------------------------------------------------------------------------------


def _npz(path: Path, images: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> Path:
    arrays = {f"{split}_images": images[split] for split in images}
    arrays.update({f"{split}_labels": labels[split] for split in labels})
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def test_npz_2d_grey_with_column_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    sizes = {"train": 5, "val": 2, "test": 3}
    images = {s: rng.integers(0, 256, (n, 8, 8)).astype(np.uint8) for s, n in sizes.items()}
    labels = {s: rng.integers(0, 3, (n, 1)).astype(np.uint8) for s, n in sizes.items()}

    splits = read_npz(_npz(tmp_path / "d.npz", images, labels), spatial_dims=2)

    assert set(splits) == {"train", "validation", "test"}
    x, y = splits["validation"]
    assert x.shape == (2, 1, 8, 8) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0], images["val"])
    assert y.shape == (2,)
    np.testing.assert_array_equal(y, labels["val"][:, 0])


def test_npz_rgb_and_3d(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgb = {s: rng.integers(0, 256, (3, 6, 6, 3)).astype(np.uint8) for s in ("train", "val", "test")}
    labels = {s: np.arange(3) for s in ("train", "val", "test")}
    x, _ = read_npz(_npz(tmp_path / "rgb.npz", rgb, labels), spatial_dims=2)["train"]
    assert x.shape == (3, 3, 6, 6)
    np.testing.assert_array_equal(x[1, 2], rgb["train"][1, :, :, 2])

    volumes = {s: rng.random((3, 4, 5, 6)).astype(np.float32) for s in ("train", "val", "test")}
    x3, _ = read_npz(_npz(tmp_path / "vol.npz", volumes, labels), spatial_dims=3)["test"]
    assert x3.shape == (3, 1, 4, 5, 6)
    with pytest.raises(MedDLError, match=r"set data\.spatial_dims: 3"):
        read_npz(tmp_path / "vol.npz", spatial_dims=2)


def test_npz_multilabel(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    images = {s: rng.random((4, 5, 5)) for s in ("train", "val", "test")}
    labels = {s: rng.integers(0, 2, (4, 14)) for s in ("train", "val", "test")}
    _, y = read_npz(_npz(tmp_path / "ml.npz", images, labels), spatial_dims=2)["train"]
    assert y.shape == (4, 14)
    np.testing.assert_array_equal(y, labels["train"])


def test_npz_missing_keys_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "partial.npz"
    np.savez(path, train_images=np.zeros((2, 4, 4)), train_labels=np.zeros(2), test_images=np.zeros((1, 4, 4)))
    with pytest.raises(MedDLError, match="missing key") as info:
        read_npz(path, 2)
    message = str(info.value)
    assert str(path) in message
    assert "val_images, val_labels, test_labels" in message


def test_npz_length_mismatch_and_pickle(tmp_path: Path) -> None:
    images = {s: np.zeros((3, 4, 4)) for s in ("train", "val", "test")}
    labels = {"train": np.zeros(3), "val": np.zeros(2), "test": np.zeros(3)}
    with pytest.raises(MedDLError, match="val_images has 3 images but val_labels has 2 labels"):
        read_npz(_npz(tmp_path / "bad.npz", images, labels), 2)
    pickled = {s: np.array([{"a": 1}], dtype=object) for s in ("train", "val", "test")}
    with pytest.raises(MedDLError, match="pickled"):
        read_npz(_npz(tmp_path / "obj.npz", images, pickled), 2)


# -- manifests ------------------------------------------------------------------------------------


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(path)
    return path


def test_manifest_from_csv(tmp_path: Path) -> None:
    _png(tmp_path / "img" / "a.png")
    _png(tmp_path / "img" / "b.png")
    write_dicom_series(tmp_path / "img" / "ct1", np.zeros((2, 4, 4)))
    (tmp_path / "m.csv").write_text("file,finding,pid\nimg/a.png,yes,P1\nimg/b.png,no,P1\nimg/ct1,yes,P2\n")

    frame = image_manifest(tmp_path / "m.csv", path_column="file", target="finding", patient_id="pid")

    assert list(frame.columns) == ["path", "label", "patient_id", "row"]
    assert frame["path"].tolist() == [str((tmp_path / p).resolve()) for p in ("img/a.png", "img/b.png", "img/ct1")]
    assert frame["label"].tolist() == ["yes", "no", "yes"]
    assert frame["patient_id"].tolist() == ["P1", "P1", "P2"]
    assert frame["row"].tolist() == [2, 3, 4]


def test_manifest_multilabel_columns(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text("path,effusion,nodule\na.png,1,0\n")
    frame = image_manifest(tmp_path / "m.csv", label_columns=["effusion", "nodule"])
    assert list(frame.columns) == ["path", "effusion", "nodule", "row"]


def test_manifest_naming_missing_files_lists_rows(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text("path,label\na.png,x\ngone1.png,y\na.png,x\ngone2.png,y\n")
    with pytest.raises(MedDLError, match="2 of 4 file") as info:
        image_manifest(tmp_path / "m.csv")
    message = str(info.value)
    assert str(tmp_path / "m.csv") in message
    assert "row 3: 'gone1.png'" in message and "row 5: 'gone2.png'" in message


def test_manifest_missing_columns(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text("path,diagnosis\na.png,x\n")
    with pytest.raises(MedDLError, match="missing column\\(s\\) 'label', 'patient'") as info:
        image_manifest(tmp_path / "m.csv", patient_id="patient")
    assert "'diagnosis'" in str(info.value)


def test_manifest_from_class_folders(tmp_path: Path) -> None:
    _png(tmp_path / "benign" / "b1.png")
    _png(tmp_path / "benign" / "b2.png")
    (tmp_path / "benign" / "notes.txt").write_text("not an image")
    _png(tmp_path / "malignant" / "m1.png")
    write_dicom_series(tmp_path / "malignant" / "ct_series", np.zeros((3, 4, 4)))  # one item, not three

    frame = image_manifest(tmp_path)

    assert frame["label"].tolist() == ["benign", "benign", "malignant", "malignant"]
    assert [Path(p).name for p in frame["path"]] == ["b1.png", "b2.png", "ct_series", "m1.png"]
    assert all(Path(p).is_absolute() for p in frame["path"])
    assert frame["row"].isna().all()


def test_manifest_empty_folder_and_folder_without_classes(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(MedDLError, match="empty: the folder is empty"):
        image_manifest(tmp_path / "empty")
    _png(tmp_path / "flat" / "a.png")
    with pytest.raises(MedDLError, match="no class sub-folders") as info:
        image_manifest(tmp_path / "flat")
    assert str(tmp_path / "flat") in str(info.value)
    (tmp_path / "classes" / "normal").mkdir(parents=True)
    with pytest.raises(MedDLError, match="class folder 'normal' has no images"):
        image_manifest(tmp_path / "classes")


def test_manifest_columns_and_images_from_pandas(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    pd.DataFrame({"path": ["a.png"], "label": [None]}).to_csv(tmp_path / "m.csv", index=False)
    frame = image_manifest(tmp_path / "m.csv")
    assert frame["label"].isna().all()  # kept, so the caller counts it when it drops it

"""Synthetic phantoms: determinism, anatomy, lesions, and the files written for them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from sklearn.metrics import roc_auc_score

from meddl.data.phantoms import PNG_WINDOW, make_phantom, write_phantom_dataset
from meddl.errors import MedDLError
from meddl.io.images import image_manifest, read_image


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_same_seed_same_phantom(spatial_dims: int) -> None:
    size = 32 if spatial_dims == 2 else 20
    first = make_phantom(np.random.default_rng(5), spatial_dims=spatial_dims, size=size)
    again = make_phantom(np.random.default_rng(5), spatial_dims=spatial_dims, size=size)
    other = make_phantom(np.random.default_rng(6), spatial_dims=spatial_dims, size=size)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])
    assert first[0].shape == (size,) * spatial_dims and first[0].dtype == np.float32
    assert first[1].shape == first[0].shape and first[1].dtype == np.uint8


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_masks_are_non_empty_exactly_for_positives(spatial_dims: int) -> None:
    size = 24 if spatial_dims == 2 else 16
    for seed in range(12):
        _, positive = make_phantom(np.random.default_rng(seed), spatial_dims=spatial_dims, size=size, lesion=True)
        _, negative = make_phantom(np.random.default_rng(seed), spatial_dims=spatial_dims, size=size, lesion=False)
        assert positive.sum() > 0, f"seed {seed}: a positive phantom without a lesion"
        assert negative.sum() == 0, f"seed {seed}: a negative phantom with a lesion"


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_lesion_is_a_local_contrast_inside_its_mask(spatial_dims: int) -> None:
    size = 48 if spatial_dims == 2 else 24
    for seed in range(8):
        image, mask = make_phantom(np.random.default_rng(seed), spatial_dims=spatial_dims, size=size, lesion=True)
        baseline, _ = make_phantom(np.random.default_rng(seed), spatial_dims=spatial_dims, size=size, lesion=False)
        change = image - baseline  # same anatomy and noise: only the lesion differs
        from scipy import ndimage

        components, count = ndimage.label(mask)
        for k in range(1, count + 1):
            inside = change[components == k]
            # soft tissue: +150 to +250 HU at the core; lung nodule: +700 to +850 HU (solid tissue in air-filled
            # lung); a little less towards the edge of the mask. Two touching lesions may mix the two.
            assert 110.0 <= inside.mean() <= 850.0, f"seed {seed}: lesion contrast {inside.mean():.1f} HU"
            assert inside.max() >= 140.0
        assert np.abs(change[mask == 0]).mean() < 5.0


def test_anatomy_in_hounsfield_units() -> None:
    image, _ = make_phantom(np.random.default_rng(0), size=64, lesion=False)
    assert image[0, 0] < -900  # air in the corner
    assert (image > 500).sum() > 10  # bone
    assert (image < -700).sum() > 0.1 * image.size  # air and lungs
    soft = image[(image > -50) & (image < 150)]
    assert abs(np.median(soft) - 40) < 15  # soft tissue


def test_global_intensity_statistics_do_not_separate_the_classes() -> None:
    labels = np.arange(80) % 2
    stats = []
    for seed, label in enumerate(labels):
        image, _ = make_phantom(np.random.default_rng(100 + seed), size=32, lesion=bool(label))
        stats.append([image.mean(), image.std(), *np.percentile(image, [5, 50, 95, 99])])
    for column in np.asarray(stats).T:
        auroc = roc_auc_score(labels, column)
        assert max(auroc, 1 - auroc) < 0.75


def test_png_dataset_manifest_labels_patients_and_window(tmp_path: Path) -> None:
    manifest = write_phantom_dataset(tmp_path, 10, size=24, fmt="png", prevalence=0.3, seed=1, patients=4)

    table = pd.read_csv(manifest)
    assert manifest == tmp_path / "manifest.csv"
    assert list(table.columns) == ["path", "label", "patient_id", "mask_path"]
    assert (table["label"] == "lesion").sum() == 3 and (table["label"] == "normal").sum() == 7
    assert table["patient_id"].nunique() == 4
    for _, row in table.iterrows():
        mask = read_image(tmp_path / row["mask_path"]).array
        assert (mask.max() == 255) == (row["label"] == "lesion")
    image = read_image(tmp_path / table["path"][0])
    assert image.array.shape == (1, 24, 24) and image.array.max() <= 255
    frame = image_manifest(manifest, patient_id="patient_id")
    assert len(frame) == 10 and frame["row"].tolist() == list(range(2, 12))
    assert PNG_WINDOW[0] - PNG_WINDOW[1] / 2 <= -1000  # air and lung are inside the window


def test_16_bit_png_keeps_hounsfield_units(tmp_path: Path) -> None:
    write_phantom_dataset(tmp_path, 2, size=20, fmt="png", png_bits=16, seed=3)
    expected, _ = make_phantom(np.random.default_rng(np.random.SeedSequence(3).spawn(2)[0]), size=20, lesion=False)
    table = pd.read_csv(tmp_path / "manifest.csv")
    stored = read_image(tmp_path / table["path"][0]).array[0]
    if table["label"][0] == "lesion":
        expected, _ = make_phantom(np.random.default_rng(np.random.SeedSequence(3).spawn(2)[0]), size=20)
    np.testing.assert_array_equal(stored - 1024, np.round(expected))


def test_nifti_3d_dataset(tmp_path: Path) -> None:
    write_phantom_dataset(tmp_path, 2, spatial_dims=3, size=16, fmt="nifti", prevalence=1.0, seed=2)
    table = pd.read_csv(tmp_path / "manifest.csv")
    image = read_image(tmp_path / table["path"][0])
    mask = read_image(tmp_path / table["mask_path"][0])
    assert image.array.shape == (1, 16, 16, 16) and image.spacing == pytest.approx((0.8, 0.8, 0.8))
    assert mask.array.sum() > 0
    expected, expected_mask = make_phantom(
        np.random.default_rng(np.random.SeedSequence(2).spawn(2)[0]), spatial_dims=3, size=16
    )
    np.testing.assert_array_equal(image.array[0], np.round(expected))
    np.testing.assert_array_equal(mask.array[0], expected_mask)


def test_dicom_3d_dataset_is_a_real_ct_series(tmp_path: Path) -> None:
    write_phantom_dataset(tmp_path, 2, spatial_dims=3, size=16, fmt="dicom", seed=4, patients=1)
    table = pd.read_csv(tmp_path / "manifest.csv")
    series = tmp_path / table["path"][0]
    assert series.is_dir() and len(list(series.glob("*.dcm"))) == 16

    dataset = pydicom.dcmread(next(series.glob("*.dcm")))
    assert dataset.SOPClassUID.name == "CT Image Storage"
    assert dataset.file_meta.TransferSyntaxUID.name == "Explicit VR Little Endian"
    assert dataset.Modality == "CT" and dataset.PatientID == table["patient_id"][0] == "PH0000"
    assert dataset.RescaleIntercept == -1024 and dataset.RescaleSlope == 1 and dataset.PixelRepresentation == 1
    assert dataset.PhotometricInterpretation == "MONOCHROME2" and dataset.BitsAllocated == 16
    assert {
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "ImagePositionPatient",
        "ImageOrientationPatient",
        "SliceThickness",
        "PixelSpacing",
    } <= set(dataset.dir())

    volume = read_image(series)
    lesion = table["label"][0] == "lesion"
    expected, _ = make_phantom(
        np.random.default_rng(np.random.SeedSequence(4).spawn(2)[0]), spatial_dims=3, size=16, lesion=lesion
    )
    np.testing.assert_array_equal(volume.array[0], np.round(expected))
    assert volume.spacing == pytest.approx((0.8, 0.8, 0.8))


def test_dicom_2d_files_are_the_same_for_the_same_seed(tmp_path: Path) -> None:
    write_phantom_dataset(tmp_path / "a", 2, size=16, fmt="dicom", seed=9)
    write_phantom_dataset(tmp_path / "b", 2, size=16, fmt="dicom", seed=9)
    for name in ("case_0000.dcm", "case_0001.dcm"):
        assert (tmp_path / "a" / "images" / name).read_bytes() == (tmp_path / "b" / "images" / name).read_bytes()
    assert read_image(tmp_path / "a" / "images" / "case_0000.dcm").array.shape == (1, 16, 16)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(MedDLError, match="2D images only"):
        write_phantom_dataset(tmp_path, 2, spatial_dims=3, fmt="png")
    with pytest.raises(MedDLError, match="prevalence"):
        write_phantom_dataset(tmp_path, 2, prevalence=1.5)
    with pytest.raises(MedDLError, match="patients must be between 1 and n=2"):
        write_phantom_dataset(tmp_path, 2, patients=3)
    with pytest.raises(MedDLError, match="spatial_dims"):
        make_phantom(np.random.default_rng(0), spatial_dims=4)

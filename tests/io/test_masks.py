"""Segmentation masks (meddl.io.masks): NIfTI, PNG, npy/npz and DICOM-SEG read aligned with the image, and written."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from meddl.data.phantoms import write_dicom_image, write_dicom_series
from meddl.errors import MedDLError
from meddl.io.images import read_image
from meddl.io.masks import check_mask_values, mask_labels, read_mask, write_mask

# A NIfTI affine far from canonical: voxel axes (i, j, k) run to Posterior, Inferior, Left (axis codes "PIL"),
# with different spacings and an origin off zero, so any axis swapped, flipped or shifted by the code shows.
_PIL_AFFINE = np.array(
    [
        [0.0, 0.0, -2.5, 40.0],
        [-0.8, 0.0, 0.0, 12.0],
        [0.0, -1.2, 0.0, -7.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


def _nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def _labels_3d(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A label map with labels 1 and 2 at random places: no symmetry an axis flip could hide behind."""
    return np.random.default_rng(seed).choice([0, 0, 0, 1, 2], size=shape).astype(np.uint8)


# -- NIfTI ----------------------------------------------------------------------------------------


def test_nifti_mask_in_another_orientation_lines_up_with_the_image(tmp_path: Path) -> None:
    intensity = np.random.default_rng(1).normal(size=(4, 5, 6)).astype(np.float32)
    labels = _labels_3d((4, 5, 6))
    image_path = _nifti(tmp_path / "img.nii.gz", intensity, _PIL_AFFINE)
    # The same mask stored in the canonical (RAS) voxel order with the matching affine: the same grid.
    canonical = nib.as_closest_canonical(nib.Nifti1Image(labels, _PIL_AFFINE))
    mask_path = _nifti(tmp_path / "mask.nii.gz", np.asarray(canonical.dataobj), canonical.affine)
    image = read_image(image_path)

    mask = read_mask(mask_path, image)

    assert mask.shape == image.array.shape[1:] and mask.dtype == np.uint8
    # Label voxels carry the same intensities as in the file's own voxel order: voxel-aligned.
    for label in (1, 2):
        np.testing.assert_array_equal(np.sort(image.array[0][mask == label]), np.sort(intensity[labels == label]))
    np.testing.assert_array_equal(mask, np.asarray(canonical.dataobj))


def test_nifti_round_trip_keeps_the_original_orientation_and_affine(tmp_path: Path) -> None:
    labels = _labels_3d((4, 5, 6), seed=2)
    image_path = _nifti(tmp_path / "img.nii.gz", np.zeros((4, 5, 6), np.float32), _PIL_AFFINE)
    mask_path = _nifti(tmp_path / "truth.nii.gz", labels, _PIL_AFFINE)
    image = read_image(image_path)
    predicted = read_mask(mask_path, image)  # canonical voxel order

    written = write_mask(predicted, image, tmp_path / "pred")

    assert written == tmp_path / "pred.nii.gz" and written.exists()
    stored = nib.load(written)
    np.testing.assert_allclose(stored.affine, nib.load(image_path).affine, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(stored.dataobj), labels)  # the file's voxel order, not RAS
    np.testing.assert_array_equal(read_mask(written, read_image(image_path)), predicted)


def test_nifti_2d_round_trip(tmp_path: Path) -> None:
    affine = np.diag([-0.5, -0.5, 1.0, 1.0])  # LPS: flipped against canonical
    image_path = _nifti(tmp_path / "slice.nii", np.zeros((7, 9, 1), np.float32), affine)
    image = read_image(image_path)
    labels = _labels_3d((7, 9), seed=3)

    written = write_mask(labels, image, tmp_path / "pred.nii")

    assert written.name == "pred.nii"
    np.testing.assert_array_equal(read_mask(written, image), labels)
    np.testing.assert_allclose(nib.load(written).affine, affine, atol=1e-6)


def test_nifti_shape_mismatch_names_both_files(tmp_path: Path) -> None:
    image = read_image(_nifti(tmp_path / "img.nii.gz", np.zeros((10, 20, 30), np.float32), np.eye(4)))
    mask_path = _nifti(tmp_path / "mask.nii.gz", np.zeros((10, 20, 31), np.uint8), np.eye(4))

    with pytest.raises(MedDLError) as error:
        read_mask(mask_path, image)

    message = str(error.value)
    assert "mask.nii.gz" in message and "img.nii.gz" in message
    assert "shape (10, 20, 31) vs (10, 20, 30)" in message


def test_nifti_flipped_affine_is_reported_as_an_orientation_mismatch(tmp_path: Path) -> None:
    # The mask's voxels were saved with an LPS affine over the image's RAS voxel order: not the same grid.
    image = read_image(_nifti(tmp_path / "img.nii.gz", np.zeros((6, 6, 4), np.float32), np.eye(4)))
    mask_path = _nifti(tmp_path / "mask.nii.gz", np.zeros((6, 6, 4), np.uint8), np.diag([-1.0, -1.0, 1.0, 1.0]))

    with pytest.raises(MedDLError, match=r"mask\.nii\.gz does not line up with .*img\.nii\.gz.*orientation LPS vs RAS"):
        read_mask(mask_path, image)


def test_nifti_spacing_mismatch_is_named(tmp_path: Path) -> None:
    image = read_image(_nifti(tmp_path / "img.nii.gz", np.zeros((6, 6, 4), np.float32), np.diag([1.0, 1.0, 2.0, 1])))
    mask_path = _nifti(tmp_path / "mask.nii.gz", np.zeros((6, 6, 4), np.uint8), np.diag([1.0, 1.0, 2.5, 1]))

    with pytest.raises(MedDLError, match=r"img\.nii\.gz: affines differ: spacing \(1, 1, 2\.5\) vs \(1, 1, 2\) mm"):
        read_mask(mask_path, image)


def test_nifti_mask_for_a_dicom_series_is_placed_by_patient_position(tmp_path: Path) -> None:
    volume = np.random.default_rng(4).integers(-100, 100, size=(3, 4, 5)).astype(np.float64)
    write_dicom_series(tmp_path / "ct", volume, (2.0, 0.5, 0.7), origin=(10.0, -20.0, 5.0))
    image = read_image(tmp_path / "ct")
    labels = _labels_3d((3, 4, 5), seed=5)  # (slice, row, column) = DICOM (k, r, c)
    # The same grid as a NIfTI in RAS: i = column (x flipped: L → R), j = row (y flipped), k = slice.
    data = np.transpose(labels, (2, 1, 0))[::-1, ::-1, :]  # (x, y, z)
    affine = np.array(
        [
            [0.7, 0.0, 0.0, -10.0 - 0.7 * 4],
            [0.0, 0.5, 0.0, 20.0 - 0.5 * 3],
            [0.0, 0.0, 2.0, 5.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )

    mask = read_mask(_nifti(tmp_path / "mask.nii.gz", np.ascontiguousarray(data), affine), image)

    np.testing.assert_array_equal(mask, labels)


# -- PNG ------------------------------------------------------------------------------------------


def _png_image(path: Path, shape: tuple[int, int] = (6, 8)) -> Path:
    Image.fromarray(np.full(shape, 100, dtype=np.uint8)).save(path)
    return path


def test_png_binary_0_255_reads_as_0_1_and_labels_as_they_are(tmp_path: Path) -> None:
    image = read_image(_png_image(tmp_path / "img.png"))
    binary = np.zeros((6, 8), np.uint8)
    binary[2:4, 3:6] = 255
    Image.fromarray(binary).save(tmp_path / "binary.png")
    labelled = _labels_3d((6, 8), seed=6) * 3  # values 0, 3, 6
    Image.fromarray(labelled).save(tmp_path / "labels.png")
    wide = np.zeros((6, 8), np.uint16)
    wide[0, 0], wide[1, 1] = 300, 1
    Image.fromarray(wide).save(tmp_path / "wide.png")

    np.testing.assert_array_equal(read_mask(tmp_path / "binary.png", image), binary // 255)
    np.testing.assert_array_equal(read_mask(tmp_path / "labels.png", image), labelled)
    read_wide = read_mask(tmp_path / "wide.png", image)
    assert read_wide.dtype == np.int16 and mask_labels(read_wide) == [1, 300]


def test_png_round_trip_writes_label_values(tmp_path: Path) -> None:
    image = read_image(_png_image(tmp_path / "img.png"))
    labels = _labels_3d((6, 8), seed=7)

    written = write_mask(labels, image, tmp_path / "out" / "pred")

    assert written == tmp_path / "out" / "pred.png"
    np.testing.assert_array_equal(np.asarray(Image.open(written)), labels)  # 0/1/2 as they are, not 0/255
    np.testing.assert_array_equal(read_mask(written, image), labels)


def test_rgb_mask_with_equal_channels_is_grey_and_colours_are_refused(tmp_path: Path) -> None:
    image = read_image(_png_image(tmp_path / "img.png"))
    labels = _labels_3d((6, 8), seed=8)
    Image.fromarray(np.repeat(labels[..., None], 3, axis=2)).save(tmp_path / "grey_rgb.png")
    colour = np.zeros((6, 8, 3), np.uint8)
    colour[1, 1] = (255, 0, 0)
    Image.fromarray(colour).save(tmp_path / "colour.png")

    np.testing.assert_array_equal(read_mask(tmp_path / "grey_rgb.png", image), labels)
    with pytest.raises(MedDLError, match=r"colour\.png: a colour mask .* channels differ in 1 pixel"):
        read_mask(tmp_path / "colour.png", image)


def test_png_shape_mismatch_names_both_files(tmp_path: Path) -> None:
    image = read_image(_png_image(tmp_path / "img.png", (6, 8)))
    Image.fromarray(np.zeros((8, 6), np.uint8)).save(tmp_path / "mask.png")

    with pytest.raises(MedDLError, match=r"mask\.png does not line up with .*img\.png: shape \(8, 6\) vs \(6, 8\)"):
        read_mask(tmp_path / "mask.png", image)


# -- npy / npz ------------------------------------------------------------------------------------


def test_npz_round_trip_and_npy_and_single_array_npz(tmp_path: Path) -> None:
    from meddl.io.images import ImageVolume

    image = ImageVolume(np.zeros((1, 3, 4, 5), np.float32), (1.0, 1.0, 1.0), "case.npz", {"format": "npz"})
    labels = _labels_3d((3, 4, 5), seed=9)
    np.save(tmp_path / "plain.npy", labels.astype(np.int64))
    np.savez(tmp_path / "single.npz", anything=labels.astype(bool))

    written = write_mask(labels, image, tmp_path / "pred")

    assert written == tmp_path / "pred.npz"
    with np.load(written) as archive:
        assert archive.files == ["mask"]
    np.testing.assert_array_equal(read_mask(written, image), labels)
    np.testing.assert_array_equal(read_mask(tmp_path / "plain.npy", image), labels)
    np.testing.assert_array_equal(read_mask(tmp_path / "single.npz", image), labels > 0)
    np.savez(tmp_path / "two.npz", a=labels, b=labels)
    with pytest.raises(MedDLError, match=r"two\.npz: holds 2 arrays \(a, b\)"):
        read_mask(tmp_path / "two.npz", image)


@pytest.mark.parametrize(
    ("values", "shown"),
    [([-1.0, 0.0], "-1"), ([0.5, 1.0], "0.5"), ([np.nan, 1.0], "nan")],
)
def test_negative_fractional_or_missing_values_are_named(tmp_path: Path, values: list[float], shown: str) -> None:
    from meddl.io.images import ImageVolume

    image = ImageVolume(np.zeros((1, 2, 2), np.float32), (1.0, 1.0), "img.npz", {"format": "npz"})
    np.save(tmp_path / "bad.npy", np.array([values, [0.0, 0.0]]))

    with pytest.raises(MedDLError) as error:
        read_mask(tmp_path / "bad.npy", image)

    message = str(error.value)
    assert "bad.npy" in message and shown in message and "not non-negative integer labels" in message


def test_check_mask_values_names_file_and_unexpected_labels() -> None:
    mask = np.array([[0, 1, 1], [2, 5, 5]], dtype=np.uint8)

    check_mask_values(mask, {1, 2, 5}, "case_1.nii.gz")
    with pytest.raises(MedDLError) as error:
        check_mask_values(mask, [1, 2], "case_1.nii.gz")

    assert str(error.value).startswith("case_1.nii.gz: the mask holds label value(s) 5 (2 voxels)")
    assert mask_labels(mask) == [1, 2, 5] and mask_labels(np.zeros((2, 2))) == []


def test_write_mask_refuses_wrong_shape_and_another_formats_suffix(tmp_path: Path) -> None:
    image = read_image(_png_image(tmp_path / "img.png"))

    with pytest.raises(MedDLError, match=r"mask of shape \(5, 8\) does not fit the image .*img\.png"):
        write_mask(np.zeros((5, 8), np.uint8), image, tmp_path / "pred")
    with pytest.raises(MedDLError, match=r"written as \.png, not \.nii\.gz"):
        write_mask(np.zeros((6, 8), np.uint8), image, tmp_path / "pred.nii.gz")


# -- DICOM-SEG ------------------------------------------------------------------------------------


def test_pydicom_liver_seg_reads_onto_its_slice(tmp_path: Path) -> None:
    seg_path = Path(get_testdata_file("liver_1frame.dcm"))
    seg = pydicom.dcmread(seg_path)
    first = seg.PerFrameFunctionalGroupsSequence[0]
    position = [float(v) for v in first.PlanePositionSequence[0].ImagePositionPatient]
    spacing = [float(v) for v in seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing]
    # A CT slice where the SEG's first frame lies (the SEG's own source instances are not shipped).
    write_dicom_image(tmp_path / "ct.dcm", np.zeros((512, 512)), spacing, position=position)
    image = read_image(tmp_path / "ct.dcm")

    mask = read_mask(seg_path, image)

    assert mask.shape == (512, 512) and mask.dtype == np.uint8
    assert mask_labels(mask) == [1]
    np.testing.assert_array_equal(mask, seg.pixel_array)


def test_liver_seg_on_a_slice_elsewhere_names_both_files(tmp_path: Path) -> None:
    seg_path = Path(get_testdata_file("liver_1frame.dcm"))
    write_dicom_image(tmp_path / "ct.dcm", np.zeros((512, 512)), (0.810547, 0.810547), position=(-235.2, -226.8, 0))
    image = read_image(tmp_path / "ct.dcm")

    coarse = tmp_path / "coarse"
    write_dicom_image(coarse / "ct.dcm", np.zeros((512, 512)), (0.9, 0.9), position=(-235.2, -226.8, -128.69))

    with pytest.raises(MedDLError, match=r"liver_1frame\.dcm does not line up with .*ct\.dcm: frame 1 \(segment 1\)"):
        read_mask(seg_path, image)
    with pytest.raises(MedDLError, match=r"coarse/ct\.dcm: pixel spacing \(0\.8105, 0\.8105\) vs \(0\.9, 0\.9\)"):
        read_mask(seg_path, read_image(coarse / "ct.dcm"))


def _series(folder: Path, uid_seed: str = "", origin: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Path:
    volume = np.random.default_rng(10).integers(-50, 50, size=(5, 6, 7)).astype(np.float64)
    names = [f"im{k}.dcm" for k in (3, 0, 4, 1, 2)]  # file names out of slice order
    write_dicom_series(folder, volume, (2.0, 0.6, 0.6), origin=origin, file_names=names, uid_seed=uid_seed)
    return folder


def test_dicom_series_seg_round_trip(tmp_path: Path) -> None:
    image = read_image(_series(tmp_path / "ct"))
    labels = np.zeros((5, 6, 7), np.uint8)
    labels[1, 2:4, 1:5] = 1
    labels[3, 0, 0] = 3  # label 2 absent: an empty segment keeps label 3 as segment 3

    written = write_mask(labels, image, tmp_path / "pred", labels={1: "liver", 3: "lesion"})

    assert written == tmp_path / "pred.dcm"
    seg = pydicom.dcmread(written)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and seg.SegmentationType == "BINARY"
    assert [item.SegmentLabel for item in seg.SegmentSequence] == ["liver", "label 2", "lesion"]
    sources = {pydicom.dcmread(path).SOPInstanceUID for path in (tmp_path / "ct").iterdir()}
    referenced = {
        item.ReferencedSOPInstanceUID
        for series in seg.ReferencedSeriesSequence
        for item in series.ReferencedInstanceSequence
    }
    assert referenced == sources
    np.testing.assert_array_equal(read_mask(written, image), labels)


def test_dicom_seg_is_placed_by_position_when_uids_differ(tmp_path: Path) -> None:
    image = read_image(_series(tmp_path / "ct"))
    labels = np.zeros((5, 6, 7), np.uint8)
    labels[4, 1:3, 2:6] = 1
    labels[0, 5, 6] = 2
    written = write_mask(labels, image, tmp_path / "pred.dcm")
    same_grid = read_image(_series(tmp_path / "ct_again", uid_seed="other"))  # same positions, other UIDs
    shifted = read_image(_series(tmp_path / "ct_shifted", uid_seed="other", origin=(0.0, 0.0, 30.0)))

    np.testing.assert_array_equal(read_mask(written, same_grid), labels)
    with pytest.raises(MedDLError, match=r"pred\.dcm does not line up with .*ct_shifted: frame \d+ \(segment \d\)"):
        read_mask(written, shifted)


def test_dicom_seg_frames_are_placed_by_referenced_uid_before_position(tmp_path: Path) -> None:
    image = read_image(_series(tmp_path / "ct"))
    labels = np.zeros((5, 6, 7), np.uint8)
    labels[1, 0, 0] = labels[3, 5, 6] = 1
    seg = pydicom.dcmread(write_mask(labels, image, tmp_path / "pred.dcm"))
    for group in seg.PerFrameFunctionalGroupsSequence:  # positions far off: only the UIDs can place the frames
        group.PlanePositionSequence[0].ImagePositionPatient = [500.0, 500.0, 500.0]
    seg.save_as(tmp_path / "moved.dcm")

    np.testing.assert_array_equal(read_mask(tmp_path / "moved.dcm", image), labels)


def test_dicom_2d_seg_round_trip(tmp_path: Path) -> None:
    write_dicom_image(tmp_path / "xr.dcm", np.zeros((6, 8)), (0.3, 0.3))
    image = read_image(tmp_path / "xr.dcm")
    labels = _labels_3d((6, 8), seed=11)

    written = write_mask(labels, image, tmp_path / "xr_seg")

    np.testing.assert_array_equal(read_mask(written, image), labels)


@pytest.mark.filterwarnings("ignore:The string:UserWarning")  # highdicom on the phantom's one-word PatientName
def test_fractional_seg_is_thresholded_at_half(tmp_path: Path) -> None:
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    write_dicom_image(tmp_path / "ct.dcm", np.zeros((4, 4)), (1.0, 1.0), slice_thickness=1.0)
    source = pydicom.dcmread(tmp_path / "ct.dcm")
    for keyword in ("PatientBirthDate", "PatientSex", "StudyTime", "ReferringPhysicianName", "StudyID"):
        setattr(source, keyword, "")
    source.AccessionNumber = ""
    probabilities = np.zeros((4, 4), np.float32)
    probabilities[0, 0], probabilities[1, 1], probabilities[2, 2] = 0.4, 0.6, 1.0
    description = hd.seg.SegmentDescription(
        1, "organ", codes.SCT.Tissue, codes.SCT.Tissue, hd.seg.SegmentAlgorithmTypeValues.MANUAL
    )
    seg = hd.seg.Segmentation(
        [source], probabilities[None], "FRACTIONAL", [description], generate_uid(), 1, generate_uid(), 1,
        "test", "test", "1", "0", max_fractional_value=200,
    )  # fmt: skip
    seg.save_as(tmp_path / "fractional.dcm")

    mask = read_mask(tmp_path / "fractional.dcm", read_image(tmp_path / "ct.dcm"))

    expected = np.zeros((4, 4), np.uint8)
    expected[1, 1] = expected[2, 2] = 1
    np.testing.assert_array_equal(mask, expected)


def test_seg_for_a_non_dicom_image_and_a_non_seg_dicom_are_refused(tmp_path: Path) -> None:
    png_image = read_image(_png_image(tmp_path / "img.png"))
    write_dicom_image(tmp_path / "ct.dcm", np.zeros((6, 8)), (1.0, 1.0))
    dicom_image = read_image(tmp_path / "ct.dcm")

    with pytest.raises(MedDLError, match=r"liver_1frame\.dcm: a DICOM-SEG mask needs a DICOM image"):
        read_mask(get_testdata_file("liver_1frame.dcm"), png_image)
    with pytest.raises(MedDLError, match=r"ct\.dcm: not a DICOM-SEG \(SOP class 'CT Image Storage'"):
        read_mask(tmp_path / "ct.dcm", dicom_image)

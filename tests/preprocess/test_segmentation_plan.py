"""The segmentation plan (settings from the images' geometry) and the patch datasets."""

from __future__ import annotations

import numpy as np
import pytest

from meddl.errors import MedDLError
from meddl.preprocess.segmentation import (
    PatchDataset,
    Plan,
    SegmentationCase,
    choose_min_object_size,
    drop_small_objects,
    fit_normalization,
    fit_patch_to_objects,
    normalise,
    plan_segmentation,
    zscore,
)


def test_plan_takes_the_median_spacing_and_size_and_rounds_the_patch_to_the_divisor() -> None:
    shapes = [(100, 200, 200), (120, 220, 180), (90, 210, 190)]
    spacings = [(2.0, 0.8, 0.8), (2.5, 0.7, 0.7), (3.0, 0.9, 0.9)]
    plan = plan_segmentation(shapes, spacings, spatial_dims=3, divisor=16)
    assert plan.spacing == [2.5, 0.8, 0.8]  # spacings differ: resample to the median
    # median size at that spacing: 100 × 2.5 / 2.5 = 100 → 96; 200 × 0.8 / 0.8 = 200 → capped at 128
    assert plan.patch_size == [96, 128, 128]
    assert plan.batch_size == 2  # 1,048,576 voxels / (96 × 128 × 128) < 2 → at least 2
    assert set(plan.why) == {"spacing", "patch_size", "batch_size"}


def test_plan_keeps_what_the_experiment_gives_and_a_uniform_spacing() -> None:
    plan = plan_segmentation([(64, 64)] * 3, [(0.5, 0.5)] * 3, spatial_dims=2, patch_size=[32, 48], batch_size=5)
    assert plan.spacing is None and plan.patch_size == [32, 48] and plan.batch_size == 5
    assert plan.why == {}


def _case(with_lesion: bool, size: int = 40) -> SegmentationCase:
    mask = np.zeros((size, size), np.uint8)
    if with_lesion:
        mask[30:34, 5:9] = 1
    image = np.random.default_rng(0).standard_normal((1, size, size)).astype(np.float32)
    return SegmentationCase(image, mask, (1.0, 1.0), (size, size), "x", "y")


def test_training_patches_are_centred_on_foreground_as_often_as_asked_and_replay_exactly() -> None:
    cases = [_case(True)]
    always = PatchDataset(cases, (16, 16), train=True, foreground_ratio=1.0, augment=False, seed=3, length=20)
    assert len(always) == 20
    assert all(always[i][1].sum() > 0 for i in range(20))  # the small lesion is in every patch
    never = PatchDataset(cases, (16, 16), train=True, foreground_ratio=0.0, augment=False, seed=3, length=40)
    assert sum(int(never[i][1].sum() > 0) for i in range(40)) < 20  # random crops mostly miss a 4 × 4 lesion
    augmented = PatchDataset(cases, (16, 16), train=True, seed=3, length=4)
    augmented.set_epoch(2)
    first = [augmented[i] for i in range(4)]
    again = [augmented[i] for i in range(4)]
    for (a, b), (c, d) in zip(first, again, strict=True):
        assert a.shape == (1, 16, 16) and b.shape == (16, 16)
        assert np.array_equal(a.numpy(), c.numpy()) and np.array_equal(b.numpy(), d.numpy())
    augmented.set_epoch(3)
    assert not all(np.array_equal(first[i][0].numpy(), augmented[i][0].numpy()) for i in range(4))


@pytest.mark.parametrize("with_lesion", [True, False])
def test_validation_tiles_every_case_whole_side_by_side(with_lesion: bool) -> None:
    cases = [_case(with_lesion), _case(True, size=20)]
    data = PatchDataset(cases, (16, 16), train=False)
    assert len(data) == 9 + 4  # 40 px in tiles of 16: 3 × 3 tiles (the last padded); 20 px: 2 × 2
    assert data.tile_cases.tolist() == [0] * 9 + [1] * 4
    image, mask = data[0]
    assert image.shape == (1, 16, 16) and mask.shape == (16, 16)
    # the tiles of a case hold its every voxel exactly once: the lesion's voxels are all there, none twice
    assert sum(int(data[i][1].sum()) for i in range(9)) == int(cases[0].mask.sum())
    assert sum(float(data[i][0].abs().sum()) for i in range(9)) == pytest.approx(float(np.abs(cases[0].image).sum()))
    assert np.array_equal(data[0][0].numpy(), image.numpy())  # fixed: the same tile every time


def test_validation_past_its_voxel_budget_keeps_the_foreground_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    import meddl.preprocess.segmentation as segmentation

    monkeypatch.setattr(segmentation, "_VALIDATION_VOXELS", 4 * 16 * 16)  # room for 4 of the 18 tiles
    cases = [_case(True), _case(False)]
    data = PatchDataset(cases, (16, 16), train=False, seed=1)
    assert len(data) == 4
    held = [int(data[i][1].sum() > 0) for i in range(4)]
    assert sum(held) == 2  # both tiles the lesion straddles (rows 30-33) are kept, then tiles without any
    assert sorted(data.tiles) == data.tiles  # in case order, as the per-case Dice pools them
    again = PatchDataset(cases, (16, 16), train=False, seed=1)
    assert again.tiles == data.tiles


def test_a_case_smaller_than_the_patch_is_padded() -> None:
    image, mask = PatchDataset([_case(True, size=10)], (16, 16), train=False)[0]
    assert image.shape == (1, 16, 16) and mask.shape == (16, 16)


# -- the patch fitted to the training masks' objects -------------------------------------------------------------


def _cube_mask(size: int, side: int, dims: int = 3) -> np.ndarray:
    mask = np.zeros((size,) * dims, np.uint8)
    mask[(slice(10, 10 + side),) * dims] = 1
    return mask


def test_small_objects_shrink_the_patch_to_three_times_their_extent_and_the_batch_follows() -> None:
    plan = plan_segmentation([(64, 64, 64)] * 4, [(1.0,) * 3] * 4, spatial_dims=3, divisor=4)
    assert plan.patch_size == [64, 64, 64] and plan.batch_size == 4
    box = np.zeros((64,) * 3, np.uint8)
    box[10:22, 10:22, 10:14] = 1  # 576 voxels: 0.22 % of 64³; 12 × 12 × 4 across
    masks = [box] * 3 + [np.zeros((64,) * 3, np.uint8)]
    fitted = fit_patch_to_objects(plan, masks, divisor=4, spatial_dims=3, patch_given=False, batch_given=False)
    assert fitted.patch_size == [36, 36, 32]  # 3 × 12, and 3 × 4 raised to the floor of 32
    assert fitted.batch_size == 25  # 1,048,576 // (36 × 36 × 32)
    assert "0.22 %" in fitted.why["patch_size"] and "41,472 per patch" in fitted.why["batch_size"]


def test_large_objects_given_patches_and_given_batches_are_kept() -> None:
    plan = plan_segmentation([(64, 64)] * 2, [(1.0, 1.0)] * 2, spatial_dims=2, divisor=4)
    large = [_cube_mask(64, 10, dims=2)]  # 100 pixels: 2.4 % of 64²
    assert fit_patch_to_objects(plan, large, divisor=4, spatial_dims=2, patch_given=False, batch_given=False) is plan
    plan3 = plan_segmentation([(64, 64, 64)], [(1.0,) * 3], spatial_dims=3, divisor=4, batch_size=3)
    small = [_cube_mask(64, 4)]  # 64 voxels: under 0.5 %
    assert fit_patch_to_objects(plan3, small, divisor=4, spatial_dims=3, patch_given=True, batch_given=True) is plan3
    kept = fit_patch_to_objects(plan3, small, divisor=4, spatial_dims=3, patch_given=False, batch_given=True)
    assert kept.patch_size == [32, 32, 32] and kept.batch_size == 3


# -- post-processing: small predicted objects ---------------------------------------------------------------------


def test_objects_under_the_size_are_dropped_label_by_label_in_mm() -> None:
    labels = np.zeros((12, 12, 12), np.uint8)
    labels[1, 1, 1] = 1  # one voxel of 8 mm³ (spacing 2 mm)
    labels[5:7, 5:7, 5:7] = 1  # 8 voxels, 64 mm³
    labels[10, 10, 10] = 2  # a one-voxel object of another label
    out = drop_small_objects(labels, {1: 10.0}, (2.0, 2.0, 2.0))
    assert out[1, 1, 1] == 0 and out[5:7, 5:7, 5:7].all() and out[10, 10, 10] == 2
    assert labels[1, 1, 1] == 1  # the input is left as it is
    assert drop_small_objects(labels, {1: 64.0}, (2.0, 2.0, 2.0))[5, 5, 5] == 1  # exactly the size: kept
    assert drop_small_objects(labels, {}, (2.0, 2.0, 2.0)) is labels


def test_the_smallest_size_kept_is_chosen_on_validation_and_zero_wins_a_tie() -> None:
    truth = np.zeros((20, 20), np.uint8)
    truth[5:10, 5:10] = 1  # 25 mm²
    noisy = truth.copy()
    noisy[15, 15] = 1  # a one-pixel false positive

    def dice(t: np.ndarray, p: np.ndarray, label: int) -> float:
        a, b = t == label, p == label
        return 2 * float((a & b).sum()) / max(1, int(a.sum() + b.sum()))

    chosen, why = choose_min_object_size([truth], [noisy], [(1.0, 1.0)], {1: [25.0, 40.0]}, dice)
    assert chosen == {1: 2.5}  # 10 % of the smallest training object (25 mm²) already drops the speck
    assert "mean validation Dice 1.0000" in why[1]
    chosen, _ = choose_min_object_size([truth], [truth], [(1.0, 1.0)], {1: [25.0]}, dice)
    assert chosen == {1: 0.0}  # nothing to gain: keep everything


def test_a_plan_saved_before_post_processing_existed_still_loads() -> None:
    old = {"spacing": None, "patch_size": [32, 32], "batch_size": 4, "why": {}}
    plan = Plan.from_json(old)
    assert plan.min_object_size == {} and plan.patch_size == [32, 32]
    again = Plan.from_json(Plan(None, [32, 32], 4, {}, {1: 2.5}).to_json())
    assert again.min_object_size == {1: 2.5}


def test_zscore_leaves_its_input_alone() -> None:
    image = np.random.default_rng(0).normal(5.0, 3.0, (2, 8, 8)).astype(np.float32)
    image[1] = 4.0  # a constant channel only loses its mean
    before = image.copy()
    out = zscore(image)
    assert np.array_equal(image, before)
    assert abs(float(out[0].mean())) < 1e-5 and abs(float(out[0].std()) - 1.0) < 1e-4 and not out[1].any()


# -- intensity normalisation ---------------------------------------------------------------------------------------


def _ct_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = np.full((1, 24, 24), -1000.0, np.float32)  # air around the body
    image[0, 4:20, 4:20] = 40.0 + 10.0 * rng.standard_normal((16, 16))  # soft tissue
    mask = np.zeros((24, 24), np.uint8)
    mask[8:12, 8:12] = 1
    image[0, 8:12, 8:12] = 200.0 + 10.0 * rng.standard_normal((4, 4))  # an enhancing lesion
    return image, mask


def test_ct_in_hounsfield_units_gets_the_ct_scheme_from_the_training_foreground() -> None:
    cases = [_ct_case(k) for k in range(3)]
    plan = plan_segmentation([(24, 24)] * 3, [(1.0, 1.0)] * 3, spatial_dims=2, divisor=4)
    fitted = fit_normalization(plan, [i for i, _ in cases], [m for _, m in cases], given=None)
    assert fitted.normalize == "ct" and "Hounsfield" in fitted.why["normalize"]
    foreground = np.concatenate([i[0][m > 0] for i, m in cases])
    assert fitted.intensity["mean"][0] == pytest.approx(float(foreground.mean()), rel=1e-6)
    assert fitted.intensity["low"][0] == pytest.approx(float(np.percentile(foreground, 0.5)), rel=1e-6)
    out = normalise(cases[0][0], fitted)
    # air is clipped to the foreground's 0.5th percentile: the same value everywhere outside the body
    assert out[0, 0, 0] == pytest.approx(
        (fitted.intensity["low"][0] - fitted.intensity["mean"][0]) / fitted.intensity["std"][0], rel=1e-5
    )
    assert fitted.patch_size == plan.patch_size and fitted.batch_size == plan.batch_size


def test_images_without_an_absolute_scale_are_zscored_each_on_its_own_and_a_given_scheme_is_kept() -> None:
    mr = [np.abs(i) for i, _ in (_ct_case(k) for k in range(3))]  # no negative intensities: not CT
    masks = [m for _, m in (_ct_case(k) for k in range(3))]
    plan = plan_segmentation([(24, 24)] * 3, [(1.0, 1.0)] * 3, spatial_dims=2, divisor=4)
    fitted = fit_normalization(plan, mr, masks, given=None)
    assert fitted.normalize == "zscore" and fitted.intensity == {} and "on its own" in fitted.why["normalize"]
    assert np.array_equal(normalise(mr[0], fitted), zscore(mr[0]))
    ct = [i for i, _ in (_ct_case(k) for k in range(3))]
    kept = fit_normalization(plan, ct, masks, given="zscore")
    assert kept.normalize == "zscore" and "normalize" not in kept.why
    with pytest.raises(MedDLError, match=r"2 channel\(s\); the model was trained on 1"):
        normalise(np.zeros((2, 24, 24), np.float32), fit_normalization(plan, ct, masks, given="ct"))
    again = Plan.from_json(fitted.to_json())
    assert again.normalize == "zscore" and again.intensity == {}


def test_the_dicom_modality_decides_before_the_intensities_on_real_scans() -> None:
    from pydicom.data import get_testdata_file

    from meddl.io.images import read_image

    ct = read_image(get_testdata_file("CT_small.dcm"))  # a real CT slice whose field of view reaches only -896 HU
    mr = read_image(get_testdata_file("MR_small.dcm"))
    assert ct.meta["modality"] == "CT" and float(ct.array.min()) > -900
    plan = plan_segmentation([(128, 128)], [(1.0, 1.0)], spatial_dims=2, divisor=4)
    mask = (ct.array[0] > np.percentile(ct.array[0], 95)).astype(np.uint8)
    by_tag = fit_normalization(plan, [ct.array], [mask], given=None, modalities=["CT"])
    assert by_tag.normalize == "ct" and "DICOM Modality: CT" in by_tag.why["normalize"]
    by_values = fit_normalization(plan, [ct.array], [mask], given=None)  # the same HU without the tag
    assert by_values.normalize == "ct" and "median minimum -896" in by_values.why["normalize"]
    mr_mask = (mr.array[0] > np.percentile(mr.array[0], 95)).astype(np.uint8)
    assert fit_normalization(plan, [mr.array], [mr_mask], given=None, modalities=["MR"]).normalize == "zscore"
    mixed = fit_normalization(plan, [ct.array, ct.array], [mask, mask], given=None, modalities=["CT", "PT"])
    assert mixed.normalize == "zscore" and "CT, PT" in mixed.why["normalize"]

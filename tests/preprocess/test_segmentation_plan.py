"""The segmentation plan (settings from the images' geometry) and the patch datasets."""

from __future__ import annotations

import numpy as np
import pytest

from meddl.preprocess.segmentation import PatchDataset, SegmentationCase, plan_segmentation


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
def test_validation_patch_is_fixed_and_centred_on_the_foreground(with_lesion: bool) -> None:
    data = PatchDataset([_case(with_lesion)], (16, 16), train=False)
    image, mask = data[0]
    assert image.shape == (1, 16, 16) and mask.shape == (16, 16)
    assert int(mask.sum()) == (16 if with_lesion else 0)  # the whole 4 × 4 lesion lies inside the patch
    assert np.array_equal(data[0][0].numpy(), image.numpy())


def test_a_case_smaller_than_the_patch_is_padded() -> None:
    image, mask = PatchDataset([_case(True, size=10)], (16, 16), train=False)[0]
    assert image.shape == (1, 16, 16) and mask.shape == (16, 16)

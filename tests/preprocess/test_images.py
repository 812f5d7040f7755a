"""Tests of meddl.preprocess.images: windowing, resampling, resizing, normalisation, augmentation, hashing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from meddl.errors import MedDLError
from meddl.modalities.sections.image import ImagePreprocessConfig
from meddl.preprocess.images import WINDOW_PRESETS, ImagePipeline, augment_seed, config_hash


@dataclass
class Volume:
    """Stands in for meddl.io.images.ImageVolume."""

    array: np.ndarray
    spacing: tuple[float, ...]
    source: str = "scan.nii.gz"
    meta: dict[str, Any] = field(default_factory=dict)


def pipeline(spatial_dims: int = 2, seed: int = 0, **settings: Any) -> ImagePipeline:
    settings.setdefault("size", [8] * spatial_dims)
    settings.setdefault("normalize", "none")
    return ImagePipeline(ImagePreprocessConfig(**settings), spatial_dims=spatial_dims, seed=seed)


def grey(shape: tuple[int, ...], seed: int = 0, low: float = 0.0, high: float = 1.0) -> Volume:
    rng = np.random.default_rng(seed)
    array = rng.uniform(low, high, size=(1, *shape)).astype(np.float32)
    return Volume(array, (1.0,) * len(shape))


@pytest.mark.parametrize("preset", sorted(WINDOW_PRESETS))
def test_window_presets_map_edges_to_0_and_1_and_clip_outside(preset: str) -> None:
    level, width = WINDOW_PRESETS[preset]
    low, high = level - width / 2, level + width / 2
    hu = np.array([low - 500, low, level, high, high + 500], dtype=np.float32)
    image = np.tile(hu, (5, 1))[None]  # (1, 5, 5): every row the same five HU values
    out = pipeline(window=preset, size=[5, 5]).deterministic(Volume(image, (1.0, 1.0)))
    np.testing.assert_allclose(out[0, 0], [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)


def test_custom_window_equals_preset_and_shares_its_hash() -> None:
    level, width = WINDOW_PRESETS["bone"]
    custom = pipeline(window_level=level, window_width=width)
    preset = pipeline(window="bone")
    volume = grey((8, 8), low=-1000, high=2000)
    np.testing.assert_array_equal(custom.deterministic(volume), preset.deterministic(volume))
    assert custom.config_hash == preset.config_hash


def test_resample_to_target_spacing_changes_shape() -> None:
    volume = Volume(np.zeros((1, 100, 80), dtype=np.float32), (1.0, 0.5))
    resampled = pipeline(spacing=[2.0, 1.0])._resample(volume.array, volume.spacing, volume.source)
    assert resampled.shape == (1, 50, 40)  # 100 mm x 40 mm field of view at 2 mm x 1 mm


def test_resample_3d_then_crop_or_pad_keeps_physical_scale() -> None:
    # a bright 10 mm cube in a 40 x 40 x 20 mm volume of 2 mm slices: resampled to 1 mm it spans ~10 voxels
    array = np.zeros((1, 10, 40, 40), dtype=np.float32)
    array[0, 3:8, 15:25, 15:25] = 1.0
    out = pipeline(3, spacing=[1.0, 1.0, 1.0], size=[24, 24, 24], resize_mode="crop_or_pad").deterministic(
        Volume(array, (2.0, 1.0, 1.0))
    )
    assert out.shape == (1, 24, 24, 24)
    assert 8 <= int((out[0, :, 12, 12] > 0.5).sum()) <= 12


def test_resample_without_spacing_names_the_field() -> None:
    with pytest.raises(MedDLError, match=r"preprocess.spacing"):
        pipeline(spacing=[1.0, 1.0]).deterministic(Volume(np.zeros((1, 4, 4), np.float32), ()))


@pytest.mark.parametrize("mode", ["resize", "crop_or_pad"])
@pytest.mark.parametrize("shape", [(30, 50), (5, 7), (8, 8)])
def test_resize_and_crop_or_pad_give_size(mode: str, shape: tuple[int, int]) -> None:
    out = pipeline(size=[12, 20], resize_mode=mode).deterministic(grey(shape))
    assert out.shape == (1, 12, 20)
    assert out.dtype == np.float32


@pytest.mark.parametrize("shape", [(30, 50), (5, 7), (6, 30)])
def test_resize_keeps_a_constant_image_constant(shape: tuple[int, int]) -> None:
    """Edges must not darken: a uniform field stays uniform whether the image shrinks, grows or both."""
    out = pipeline(size=[12, 20]).deterministic(Volume(np.full((1, *shape), 0.7, np.float32), (1.0, 1.0)))
    np.testing.assert_allclose(out, 0.7, atol=1e-6)


def test_resize_shrinking_averages_instead_of_aliasing() -> None:
    stripes = np.zeros((1, 32, 32), dtype=np.float32)
    stripes[0, :, ::2] = 1.0  # one-pixel stripes: sampling every other column would give all 0 or all 1
    out = pipeline(size=[16, 16]).deterministic(Volume(stripes, (1.0, 1.0)))
    np.testing.assert_allclose(out, 0.5, atol=1e-6)


def test_crop_or_pad_is_centred_and_pads_with_the_lowest_value() -> None:
    array = np.full((1, 4, 4), 5.0, dtype=np.float32)
    array[0, 0, 0] = -3.0
    out = pipeline(size=[8, 8], resize_mode="crop_or_pad").deterministic(Volume(array, (1.0, 1.0)))
    np.testing.assert_array_equal(out[0, 2:6, 2:6], array[0])
    assert out[0, 0, 0] == -3.0 and out[0, 7, 7] == -3.0


def test_resize_3d() -> None:
    out = pipeline(3, size=[6, 10, 12]).deterministic(grey((9, 20, 20)))
    assert out.shape == (1, 6, 10, 12)


def test_zscore_gives_mean_0_std_1() -> None:
    out = pipeline(size=[32, 32], normalize="zscore").deterministic(grey((40, 40), low=-200, high=900))
    assert abs(float(out.mean())) < 1e-4
    assert abs(float(out.std()) - 1.0) < 1e-3


def test_percentile_and_minmax_normalisation_range() -> None:
    volume = grey((32, 32), low=-50, high=300)
    volume.array[0, 0, 0] = 1e6  # one outlier: percentile scaling ignores it, min-max does not
    percentile = pipeline(size=[32, 32], normalize="percentile").deterministic(volume)
    minmax = pipeline(size=[32, 32], normalize="minmax").deterministic(volume)
    assert percentile.min() == 0.0 and percentile.max() == 1.0
    assert np.median(percentile) > 0.3  # the bulk still spans the range
    assert minmax.min() == 0.0 and minmax.max() == pytest.approx(1.0)
    assert np.median(minmax) < 1e-3  # squashed by the outlier


def test_channels_grey_to_rgb_and_back() -> None:
    rgb = pipeline(channels=3).deterministic(grey((8, 8)))
    assert rgb.shape == (3, 8, 8)
    np.testing.assert_array_equal(rgb[0], rgb[2])
    back = pipeline(channels=1).deterministic(Volume(rgb, (1.0, 1.0)))
    np.testing.assert_allclose(back[0], rgb[0], atol=1e-5)  # luminance weights sum to 1


def test_channels_that_cannot_be_converted_raise() -> None:
    with pytest.raises(MedDLError, match=r"preprocess.channels.*2 channels"):
        pipeline(channels=3).deterministic(Volume(np.zeros((2, 8, 8), np.float32), (1.0, 1.0)))


def test_wrong_number_of_axes_names_spatial_dims() -> None:
    with pytest.raises(MedDLError, match=r"scan.nii.gz.*spatial_dims"):
        pipeline(2).deterministic(Volume(np.zeros((1, 4, 8, 8), np.float32), (1.0, 1.0, 1.0)))


def test_non_finite_pixels_raise() -> None:
    volume = grey((8, 8))
    volume.array[0, 1, 1] = np.nan
    with pytest.raises(MedDLError, match="NaN"):
        pipeline().deterministic(volume)


@pytest.mark.parametrize(
    ("settings", "field_name"),
    [
        ({"size": [64, 64, 64]}, "preprocess.size"),
        ({"size": [64]}, "preprocess.size"),
        ({"size": [64, 0]}, "preprocess.size"),
        ({"size": [64, 64], "spacing": [1.0]}, "preprocess.spacing"),
        ({"size": [64, 64], "spacing": [1.0, -1.0]}, "preprocess.spacing"),
    ],
)
def test_size_and_spacing_validation_names_the_field(settings: dict[str, Any], field_name: str) -> None:
    with pytest.raises(MedDLError, match=field_name.replace(".", r"\.")):
        ImagePipeline(ImagePreprocessConfig(**settings), spatial_dims=2)


# -- augmentation -----------------------------------------------------------------------------------


def augmenting(**augment: Any) -> ImagePipeline:
    settings = {"flip": True, "rotate_degrees": 20.0, "affine": True, "intensity_shift": 0.2, "noise_std": 0.05}
    settings.update(augment)
    return pipeline(size=[16, 16], augment=settings)


def test_augmentation_is_deterministic_per_seed_and_differs_across_seeds() -> None:
    pipe = augmenting()
    image = pipe.deterministic(grey((16, 16)))
    first = pipe.augment(image, augment_seed(7, 0, 3))
    again = augmenting().augment(image.copy(), augment_seed(7, 0, 3))  # a fresh pipeline: a new process
    np.testing.assert_array_equal(first, again)
    assert first.shape == image.shape and first.dtype == np.float32
    draws = [pipe.augment(image, augment_seed(7, epoch, 3)) for epoch in range(1, 5)]
    assert all(not np.array_equal(first, d) for d in draws)
    assert not np.array_equal(first, pipe.augment(image, augment_seed(8, 0, 3)))


def test_augment_seed_depends_on_seed_epoch_and_index() -> None:
    seeds = {augment_seed(s, e, i) for s in range(3) for e in range(3) for i in range(3)}
    assert len(seeds) == 27
    assert augment_seed(1, 2, 3) == augment_seed(1, 2, 3)


def test_no_augmentation_configured_returns_input() -> None:
    pipe = augmenting(flip=False, rotate_degrees=0.0, affine=False, intensity_shift=0.0, noise_std=0.0)
    image = pipe.deterministic(grey((16, 16)))
    assert pipe.augment(image, 123) is image


def test_augmentation_3d_keeps_shape() -> None:
    pipe = pipeline(3, size=[8, 8, 8], augment={"affine": True, "noise_std": 0.1})
    image = pipe.deterministic(grey((8, 8, 8)))
    assert pipe.augment(image, 1).shape == (1, 8, 8, 8)


# -- hashing and state ------------------------------------------------------------------------------


BASE: dict[str, Any] = {"size": [32, 32], "window": "lung", "normalize": "zscore"}


@pytest.mark.parametrize(
    "change",
    [
        {"size": [48, 48]},
        {"window": "bone"},
        {"window": None},
        {"normalize": "minmax"},
        {"spacing": [1.0, 1.0]},
        {"resize_mode": "crop_or_pad"},
        {"channels": 3},
    ],
)
def test_config_hash_changes_with_the_deterministic_settings(change: dict[str, Any]) -> None:
    assert config_hash(ImagePreprocessConfig(**{**BASE, **change}), 2) != config_hash(ImagePreprocessConfig(**BASE), 2)


@pytest.mark.parametrize(
    "change",
    [
        {"augment": {"flip": False, "rotate_degrees": 45.0, "affine": True, "noise_std": 0.3}},
        {"cache": False},
        {"cache_dir": "/somewhere/else"},
        {"imbalance": "oversample"},
    ],
)
def test_config_hash_ignores_augmentation_cache_and_imbalance(change: dict[str, Any]) -> None:
    assert config_hash(ImagePreprocessConfig(**{**BASE, **change}), 2) == config_hash(ImagePreprocessConfig(**BASE), 2)


def test_config_hash_depends_on_spatial_dims_and_is_hex() -> None:
    config = ImagePreprocessConfig(size=[8, 8])
    digest = config_hash(config, 2)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest != config_hash(config, 3)


def test_state_round_trips_through_json() -> None:
    original = pipeline(seed=5, window="brain", spacing=[0.5, 0.5], channels=3, normalize="percentile")
    state = json.loads(json.dumps(original.to_state()))
    rebuilt = ImagePipeline.from_state(state, ImagePreprocessConfig)
    assert rebuilt.config == original.config
    assert (rebuilt.spatial_dims, rebuilt.seed, rebuilt.config_hash) == (2, 5, original.config_hash)
    volume = grey((12, 12), low=0, high=100)
    np.testing.assert_array_equal(rebuilt.deterministic(volume), original.deterministic(volume))


def test_from_state_rejects_foreign_or_invalid_state() -> None:
    with pytest.raises(MedDLError, match="format"):
        ImagePipeline.from_state({"format": "something-else"}, ImagePreprocessConfig)
    state = pipeline().to_state()
    state["config"]["normalize"] = "bogus"
    with pytest.raises(MedDLError, match="normalize"):
        ImagePipeline.from_state(state, ImagePreprocessConfig)


def test_seeded_transform_gives_each_random_transform_its_own_stream_and_repeats_per_seed() -> None:
    """Re-seeding in place (not MONAI's new generator per transform per item) keeps what set_random_state gave:
    every random transform, wrapped ones included, holds a generator of its own; one seed, one augmentation."""
    from monai.transforms import Compose, RandAffined, RandFlipd, RandGaussianNoised, Randomizable

    from meddl.preprocess.images import SeededTransform

    flip = RandFlipd(keys="image", prob=0.5, spatial_axis=0)
    flip.R = Randomizable.R  # the class-wide default generator: must not be shared or re-seeded in place
    compose = Compose(
        [flip, RandAffined(keys="image", prob=1.0, rotate_range=[0.3]), RandGaussianNoised(keys="image", prob=1.0)]
    )
    compose.transforms[2].R = compose.transforms[1].R  # two transforms holding one generator get two
    seeded = SeededTransform(compose)
    generators = seeded._generators
    assert len({id(g) for g in generators}) == len(generators) >= 6  # Compose, 3 wrappers, RandAffine, its grid
    assert all(g is not Randomizable.R for g in generators)
    image = np.random.default_rng(0).random((1, 24, 24)).astype(np.float32)
    first, again, other = (np.asarray(seeded({"image": image}, s)["image"]) for s in (7, 7, 8))
    assert np.array_equal(first, again) and not np.array_equal(first, other)

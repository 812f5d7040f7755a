"""Image preprocessing with MONAI transforms: window → resample → resize/crop/pad → channels → normalise.

The deterministic part of :class:`ImagePipeline` depends only on the configuration, so its output can be cached
on disk under :func:`config_hash`. The random part (augmentation) runs after the cache, on the training split only,
seeded by ``(seed, epoch, index)`` so a run can be replayed exactly.

MONAI is imported inside the methods that need it: importing this module stays cheap for the CLI and the server.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from meddl.errors import MedDLError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "PIPELINE_VERSION",
    "WINDOW_PRESETS",
    "ImagePipeline",
    "ImageSettings",
    "VolumeLike",
    "augment_seed",
    "config_hash",
    "hounsfield_window",
]

WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "soft_tissue": (40.0, 400.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}
"""CT display windows as (level, width) in Hounsfield units."""

PIPELINE_VERSION = "meddl-image-pipeline/1"
"""Bump when the deterministic output changes for the same configuration: old cache entries are then never reused."""

_STATE_FORMAT = "meddl.ImagePipeline/1"
_LUMINANCE = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights for RGB → grey
_AUGMENT_PROB = 0.5


class VolumeLike(Protocol):
    """What the pipeline reads from an image: :class:`meddl.io.images.ImageVolume` satisfies it."""

    @property
    def array(self) -> np.ndarray:
        """Channel-first pixel values, (C, H, W) or (C, D, H, W)."""
        ...

    @property
    def spacing(self) -> tuple[float, ...] | None:
        """Pixel/voxel spacing in mm, one per spatial axis."""
        ...

    @property
    def source(self) -> str:
        """Where the image came from (file, series folder, npz row), for error messages."""
        ...


class AugmentSettings(Protocol):
    @property
    def flip(self) -> bool: ...
    @property
    def rotate_degrees(self) -> float: ...
    @property
    def affine(self) -> bool: ...
    @property
    def intensity_shift(self) -> float: ...
    @property
    def noise_std(self) -> float: ...


class ImageSettings(Protocol):
    """The image modality's ``preprocess`` section (its fields used here): a pydantic model, so the pipeline
    can save it with ``model_dump`` and validate it back."""

    @property
    def window(self) -> str | None: ...
    @property
    def window_level(self) -> float | None: ...
    @property
    def window_width(self) -> float | None: ...
    @property
    def spacing(self) -> list[float] | None: ...
    @property
    def size(self) -> list[int]: ...
    @property
    def resize_mode(self) -> str: ...
    @property
    def normalize(self) -> str: ...
    @property
    def channels(self) -> int | None: ...
    @property
    def augment(self) -> AugmentSettings: ...

    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...

    @classmethod
    def model_validate(cls, obj: Any) -> Any: ...


def hounsfield_window(config: ImageSettings) -> tuple[float, float] | None:
    """The (level, width) window a config asks for: a preset, a custom window, or ``None`` for no windowing."""
    if config.window is not None:
        return WINDOW_PRESETS[config.window]
    if config.window_level is not None and config.window_width is not None:
        return float(config.window_level), float(config.window_width)
    return None


def _monai_version() -> str:
    from monai import __version__

    return str(__version__)


def _deterministic_settings(config: ImageSettings, spatial_dims: int) -> dict[str, Any]:
    """Every setting that changes :meth:`ImagePipeline.deterministic`'s output, and nothing else."""
    window = hounsfield_window(config)
    return {
        "version": PIPELINE_VERSION,
        "monai": _monai_version(),  # a MONAI upgrade may change interpolation; never reuse entries across it
        "spatial_dims": int(spatial_dims),
        "window": None if window is None else [float(window[0]), float(window[1])],
        "spacing": None if config.spacing is None else [float(s) for s in config.spacing],
        "size": [int(s) for s in config.size],
        "resize_mode": config.resize_mode,
        "channels": config.channels,
        "normalize": config.normalize,
    }


def config_hash(config: ImageSettings, spatial_dims: int) -> str:
    """The cache key of a preprocessing configuration.

    A SHA-256 over the canonical JSON of the settings that change the deterministic output (window, spacing, size,
    resize mode, channels, normalisation, spatial dims) plus :data:`PIPELINE_VERSION` and the MONAI version.
    Augmentation, cache and imbalance settings are left out: they do not change what is cached.

    Args:
        config: the ``preprocess`` section of an image experiment.
        spatial_dims: 2 or 3.

    Returns:
        64 hexadecimal characters.
    """
    canonical = json.dumps(_deterministic_settings(config, spatial_dims), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def augment_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed for one item's augmentation, the same for the same ``(seed, epoch, index)``."""
    return int(np.random.SeedSequence([abs(int(seed)), int(epoch), int(index)]).generate_state(1)[0])


class SeededTransform:
    """A MONAI transform (a ``Compose``, however nested) called with the seed of one item: ``t(data, seed)``.

    MONAI's ``set_random_state(seed)`` builds a new ``np.random.RandomState`` for every random transform and for
    each one it wraps: about 75 µs each, 0.7 ms per item for a segmentation patch's six transforms, about half of
    a 2-D patch's time in the demo's profile. This re-seeds the generators the transforms already hold
    (about 1 µs each), each from its own draw of one generator seeded with the item's seed: the same seed gives the
    same augmentation, and no two transforms share a stream."""

    def __init__(self, transform: Any) -> None:
        from monai.transforms import Randomizable

        self.transform = transform
        self._generators: list[np.random.RandomState] = []
        seen: set[int] = set()
        shared = {id(Randomizable.R)}

        def visit(node: Any) -> None:
            if isinstance(node, list | tuple):
                for item in node:
                    visit(item)
                return
            if not isinstance(node, Randomizable) or id(node) in seen:
                return
            seen.add(id(node))
            if id(node.R) in shared:  # the class-wide default, or a generator another transform holds
                node.R = np.random.RandomState()
            shared.add(id(node.R))
            self._generators.append(node.R)
            for name in sorted(vars(node)):
                visit(vars(node)[name])

        visit(transform)
        self._master = np.random.RandomState(0)

    def __call__(self, data: Any, seed: int) -> Any:
        self._master.seed(int(seed) % (2**32))
        draws = self._master.randint(2**32, size=len(self._generators), dtype=np.uint32)
        for generator, draw in zip(self._generators, draws.tolist(), strict=True):
            generator.seed(draw)
        return self.transform(data)


def _to_numpy(data: Any) -> np.ndarray:
    """MONAI returns MetaTensors; the pipeline hands out plain contiguous float32 arrays."""
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    return np.ascontiguousarray(data, dtype=np.float32)


def _zscore(array: np.ndarray) -> np.ndarray:
    """MONAI's ``NormalizeIntensity()`` (mean 0, standard deviation 1 over the whole image; a constant image → 0)
    in NumPy, into one new array: on a small image MONAI's MetaTensor costs ten times the arithmetic."""
    mean = array.mean(dtype=np.float64)
    std = array.std(dtype=np.float64)
    out = np.subtract(array, np.float32(mean), dtype=np.float32)
    if std > 0:
        out /= np.float32(std)
    return out


class ImagePipeline:
    """The image preprocessing of one experiment, built from its ``preprocess`` section.

    Args:
        config: the ``preprocess`` section (:class:`meddl.modalities.sections.image.ImagePreprocessConfig`).
        spatial_dims: 2 (images) or 3 (volumes).
        seed: the experiment seed; the default seed of :meth:`augment_seed`.

    Raises:
        MedDLError: ``preprocess.size`` or ``preprocess.spacing`` does not have one value per spatial axis,
            or holds a non-positive value.

    Example:
        >>> pipeline = ImagePipeline(ImagePreprocessConfig(window="lung", size=[64, 64]), spatial_dims=2)
        >>> array = pipeline.deterministic(volume)  # (C, 64, 64) float32
    """

    def __init__(self, config: ImageSettings, spatial_dims: int = 2, seed: int = 0) -> None:
        if spatial_dims not in (2, 3):
            raise MedDLError(f"data.spatial_dims: expected 2 or 3, got {spatial_dims!r}")
        axes = "(H, W)" if spatial_dims == 2 else "(D, H, W)"
        if len(config.size) != spatial_dims:
            raise MedDLError(
                f"preprocess.size: expected {spatial_dims} values {axes} for {spatial_dims}D images, "
                f"got {len(config.size)}: {list(config.size)}"
            )
        if any(s < 1 for s in config.size):
            raise MedDLError(f"preprocess.size: every value must be at least 1, got {list(config.size)}")
        if config.spacing is not None:
            if len(config.spacing) != spatial_dims:
                raise MedDLError(
                    f"preprocess.spacing: expected {spatial_dims} values {axes} in mm for {spatial_dims}D images, "
                    f"got {len(config.spacing)}: {list(config.spacing)}"
                )
            if any(not math.isfinite(s) or s <= 0 for s in config.spacing):
                raise MedDLError(f"preprocess.spacing: every value must be a positive number, got {config.spacing}")
        self.config = config
        self.spatial_dims = int(spatial_dims)
        self.seed = int(seed)
        self.window = hounsfield_window(config)
        self._augment: SeededTransform | None = None  # the MONAI Compose (seeded per item), built on first use

    # -- identity -----------------------------------------------------------------------------------
    @property
    def size(self) -> tuple[int, ...]:
        """The spatial shape of every output, e.g. ``(64, 64)``."""
        return tuple(int(s) for s in self.config.size)

    @property
    def config_hash(self) -> str:
        """The cache key of this pipeline's deterministic output (see :func:`config_hash`)."""
        return config_hash(self.config, self.spatial_dims)

    def describe(self) -> dict[str, Any]:
        """The settings that :attr:`config_hash` is computed over, as a JSON-able dict."""
        return _deterministic_settings(self.config, self.spatial_dims)

    def augment_seed(self, epoch: int, index: int, seed: int | None = None) -> int:
        """The augmentation seed of item ``index`` in ``epoch`` under ``seed`` (default: this pipeline's)."""
        return augment_seed(self.seed if seed is None else seed, epoch, index)

    # -- deterministic part -------------------------------------------------------------------------
    def deterministic(self, volume: VolumeLike) -> np.ndarray:
        """Window, resample, resize/crop/pad, convert channels and normalise one image.

        Args:
            volume: an image as read (:class:`meddl.io.images.ImageVolume`), channel-first.

        Returns:
            float32 array of shape ``(C, *preprocess.size)``; ``C`` is ``preprocess.channels`` when set.

        Raises:
            MedDLError: the image has the wrong number of axes, non-finite values, no spacing while
                ``preprocess.spacing`` is set, or a channel count that cannot be converted.
        """
        source = getattr(volume, "source", "image")
        array = self._checked_array(volume.array, source)
        try:
            return self._deterministic(array, getattr(volume, "spacing", None), source)
        except (RuntimeError, ValueError) as exc:  # MONAI's own errors: name the image, keep the cause chained
            raise MedDLError(f"{source}: preprocessing failed on an image of shape {array.shape}: {exc}") from exc

    def _deterministic(self, array: np.ndarray, spacing: Sequence[float] | None, source: str) -> np.ndarray:
        from monai.transforms import ResizeWithPadOrCrop

        if self.window is not None:
            array = self._apply_window(array)
        if self.config.spacing is not None:
            array = self._resample(array, spacing, source)
        if self.config.resize_mode == "resize":
            array = self._resize(array)
        else:  # crop_or_pad: centred; padding takes the image's lowest value (air on CT, black on X-ray)
            array = _to_numpy(
                ResizeWithPadOrCrop(self.size, mode="constant", value=float(array.min()))(torch.from_numpy(array))
            )
        array = self._convert_channels(array, source)
        array = self._normalise(array)
        assert array.shape[1:] == self.size, f"pipeline produced {array.shape}, expected (C, {self.size})"
        return array

    def _checked_array(self, data: Any, source: str) -> np.ndarray:
        array = _to_numpy(data)
        if array.ndim != self.spatial_dims + 1:
            expected = "(C, H, W)" if self.spatial_dims == 2 else "(C, D, H, W)"
            raise MedDLError(
                f"{source}: expected a {self.spatial_dims}D image of shape {expected} (data.spatial_dims: "
                f"{self.spatial_dims}), got shape {tuple(array.shape)}"
            )
        if array.size == 0:
            raise MedDLError(f"{source}: the image is empty (shape {tuple(array.shape)})")
        bad = 0 if np.isfinite(array).all() else int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise MedDLError(f"{source}: {bad} pixel values are NaN or infinite")
        return array

    def _apply_window(self, array: np.ndarray) -> np.ndarray:
        assert self.window is not None, "called without a window"
        level, width = self.window
        low, high = level - width / 2.0, level + width / 2.0
        # MONAI's ScaleIntensityRange(low, high, 0, 1, clip=True) in NumPy: on a small image, building its MetaTensor
        # costs ten times the arithmetic (benchmarks/imaging_throughput.py)
        out = np.subtract(array, np.float32(low), dtype=np.float32)
        out /= np.float32(high - low)
        return np.clip(out, 0.0, 1.0, out=out)

    def _resample(self, array: np.ndarray, spacing: Sequence[float] | None, source: str) -> np.ndarray:
        from monai.data import MetaTensor
        from monai.transforms import Spacing

        if spacing is None or len(spacing) == 0:
            raise MedDLError(f"{source}: preprocess.spacing is set but the image has no pixel spacing to resample from")
        current = [float(s) for s in spacing]
        if len(current) != self.spatial_dims or any(not math.isfinite(s) or s <= 0 for s in current):
            raise MedDLError(
                f"{source}: pixel spacing {tuple(spacing)} does not give one positive value per spatial axis "
                f"({self.spatial_dims}); cannot resample to preprocess.spacing {self.config.spacing}"
            )
        affine = torch.diag(torch.tensor([*current, *([1.0] * (4 - self.spatial_dims))], dtype=torch.float64))
        image = MetaTensor(torch.from_numpy(array), affine=affine)
        mode = "bilinear"  # MONAI picks trilinear for 3D from the same name
        return _to_numpy(Spacing(pixdim=list(self.config.spacing or []), mode=mode, padding_mode="border")(image))

    def _resize(self, array: np.ndarray) -> np.ndarray:
        if array.shape[1:] == self.size:
            return array
        if all(new <= old for new, old in zip(self.size, array.shape[1:], strict=True)):
            # shrinking: "area" averages each output pixel's footprint, which anti-aliases without the darkened
            # borders that MONAI's Gaussian anti-aliasing (zero padded) leaves on the image edges
            mode = "area"
        else:
            mode = "bilinear" if self.spatial_dims == 2 else "trilinear"
        # what MONAI's Resize(size, mode) computes (no anti-aliasing, align_corners unset), called directly: its
        # MetaTensor wrapping cost more than the interpolation itself on a small image
        resized = torch.nn.functional.interpolate(torch.from_numpy(array)[None], size=self.size, mode=mode)
        return resized[0].numpy()

    def _convert_channels(self, array: np.ndarray, source: str) -> np.ndarray:
        wanted = self.config.channels
        have = array.shape[0]
        if wanted is None or wanted == have:
            return array
        if wanted == 3 and have == 1:
            from monai.transforms import RepeatChannel

            return _to_numpy(RepeatChannel(repeats=3)(array))
        if wanted == 1 and have == 3:
            weights = np.asarray(_LUMINANCE, dtype=np.float32).reshape(3, *([1] * self.spatial_dims))
            return np.ascontiguousarray((array * weights).sum(axis=0, keepdims=True), dtype=np.float32)  # (1, ...)
        raise MedDLError(
            f"{source}: preprocess.channels: {wanted} cannot be made from an image with {have} channels "
            "(grey ↔ RGB conversion needs 1 or 3)"
        )

    def _normalise(self, array: np.ndarray) -> np.ndarray:
        from monai.transforms import ScaleIntensity, ScaleIntensityRangePercentiles

        method = self.config.normalize
        if method == "zscore":  # per image, over all channels; a constant image becomes all zeros
            return _zscore(array)
        if method == "percentile":
            return _to_numpy(ScaleIntensityRangePercentiles(lower=1, upper=99, b_min=0.0, b_max=1.0, clip=True)(array))
        if method == "minmax":
            return _to_numpy(ScaleIntensity(minv=0.0, maxv=1.0)(array))
        return array

    # -- random part --------------------------------------------------------------------------------
    @property
    def augments(self) -> bool:
        """Whether ``preprocess.augment`` asks for any random transform at all."""
        aug = self.config.augment
        return aug.flip or aug.rotate_degrees > 0 or aug.affine or aug.intensity_shift > 0 or aug.noise_std > 0

    def _build_augment(self) -> Any:
        from monai.transforms import Compose, RandAffine, RandFlip, RandGaussianNoise, RandRotate, RandShiftIntensity

        aug = self.config.augment
        steps: list[Callable[..., Any]] = []
        if aug.flip:
            # left-right mirror only (last axis): an upside-down chest film is not a plausible patient
            steps.append(RandFlip(prob=_AUGMENT_PROB, spatial_axis=self.spatial_dims - 1))
        if aug.rotate_degrees > 0:
            angle = math.radians(aug.rotate_degrees)
            if self.spatial_dims == 2:
                steps.append(RandRotate(range_x=angle, prob=_AUGMENT_PROB, keep_size=True, padding_mode="border"))
            else:
                steps.append(
                    RandRotate(
                        range_x=angle,
                        range_y=angle,
                        range_z=angle,
                        prob=_AUGMENT_PROB,
                        keep_size=True,
                        padding_mode="border",
                    )
                )
        if aug.affine:
            steps.append(
                RandAffine(
                    prob=_AUGMENT_PROB,
                    scale_range=[0.1] * self.spatial_dims,
                    shear_range=[0.05] * (2 if self.spatial_dims == 2 else 6),
                    translate_range=[0.05 * s for s in self.size],
                    padding_mode="border",
                )
            )
        if aug.intensity_shift > 0:
            steps.append(RandShiftIntensity(offsets=aug.intensity_shift, prob=_AUGMENT_PROB))
        if aug.noise_std > 0:
            steps.append(RandGaussianNoise(prob=_AUGMENT_PROB, mean=0.0, std=aug.noise_std))
        return Compose(steps)

    def augment(self, array: np.ndarray, rng_seed: int) -> np.ndarray:
        """Apply the random transforms of ``preprocess.augment`` (training split only).

        Args:
            array: a :meth:`deterministic` output, ``(C, *size)``.
            rng_seed: the seed of this draw, e.g. :meth:`augment_seed` of ``(epoch, index)``; the same seed gives
                the same augmentation.

        Returns:
            float32 array of the same shape.
        """
        if not self.augments:
            return array
        if self._augment is None:
            self._augment = SeededTransform(self._build_augment())
        out = _to_numpy(self._augment(array, rng_seed))
        assert out.shape == array.shape, f"augmentation changed the shape {array.shape} → {out.shape}"
        return out

    def __getstate__(self) -> dict[str, Any]:
        """DataLoader workers receive the pipeline without its built transforms; each builds its own."""
        state = dict(self.__dict__)
        state["_augment"] = None
        return state

    # -- persistence --------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """A JSON-able description from which :meth:`from_state` rebuilds the same pipeline (no pickle)."""
        return {
            "format": _STATE_FORMAT,
            "config": self.config.model_dump(mode="json"),
            "spatial_dims": self.spatial_dims,
            "seed": self.seed,
            "config_hash": self.config_hash,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], settings: type[ImageSettings]) -> ImagePipeline:
        """Rebuild a pipeline saved with :meth:`to_state` (e.g. from a bundle's ``preprocess.json``).

        Raises:
            MedDLError: the state is not an image pipeline state or its config is invalid.
        """
        if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
            found = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise MedDLError(f"preprocess state: expected format {_STATE_FORMAT!r}, got {found!r}")
        from pydantic import ValidationError

        from meddl.sections import format_validation_error

        try:
            config = settings.model_validate(state["config"])
        except ValidationError as exc:
            raise MedDLError(format_validation_error(exc, "preprocess state")) from None
        except KeyError:
            raise MedDLError("preprocess state: the 'config' entry is missing") from None
        return cls(config, spatial_dims=int(state.get("spatial_dims", 2)), seed=int(state.get("seed", 0)))

    def __repr__(self) -> str:
        return f"ImagePipeline(spatial_dims={self.spatial_dims}, size={self.size}, hash={self.config_hash[:12]})"

"""Segmentation data: image–mask pairs, the plan (nnU-Net's habit: settings from a fingerprint of the data) and
the patch datasets a segmentation network trains on.

* :func:`plan_segmentation` turns the training images' spacings and sizes into a target spacing, a patch size and
  a batch size, each with the reason, as nnU-Net's experiment planner does (median spacing; patch = median image
  size at that spacing, capped and rounded to the network's divisor; batch from a voxel budget).
* :class:`PatchDataset` draws one patch per case and epoch for training — centred on a foreground voxel with
  probability ``foreground_ratio`` (MONAI's ``RandCropByPosNegLabeld``), then MONAI's spatial and intensity
  augmentation applied to image and mask together — seeded by ``(seed, epoch, case)``, so a run replays exactly.
  For validation it tiles each case whole (patches side by side, the last ones padded), so the monitored Dice is
  each case's own (:func:`meddl.evaluate.segmentation.dice_score` with ``cases``), not one patch's.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from meddl.preprocess.images import SeededTransform, augment_seed

__all__ = [
    "PatchDataset",
    "Plan",
    "SegmentationCase",
    "choose_min_object_size",
    "drop_small_objects",
    "fit_normalization",
    "fit_patch_to_objects",
    "mask_objects",
    "normalise",
    "plan_segmentation",
    "zscore",
]

# the most voxels of one training batch: a 2-core CPU trains a 2-D batch of 16 × 128² or a 3-D one of 2 × 80³ in
# about a second with the default U-Net (nnU-Net budgets GPU memory the same way)
_BATCH_VOXELS = {2: 16 * 128 * 128, 3: 4 * 64 * 64 * 64}
_PATCH_CAP = {2: 256, 3: 128}
_BACKGROUND_SITES = 20_000  # background voxels kept per case as patch centres
# Validation tiles every case whole. One patch per case (centred on its foreground) judged a case by one region (a
# second lesion or a false positive elsewhere never counted); with the 8 validation volumes of the 3-D phantoms the
# monitored Dice moved by 0.042 an epoch on average after epoch 15 (32³ patches), 0.026 with the tiles.
# The tiles' outputs are held in memory by the trainer (every class's logits, float32), so beyond this many voxels
# the validation keeps every tile holding foreground and then as many others as fit, chosen once by the seed.
_VALIDATION_VOXELS = 2**25
# Patches around small objects. With the lesions of a 64³ phantom volume at 0.03 % of a whole-volume patch, the
# U-Net never learnt the low-contrast (soft-tissue) half of them, not even on its training cases: the per-patch Dice
# and cross-entropy pulled every voxel to background. With 32³ foreground-centred patches it found all of them (test
# Dice 0.77 → 0.92, measured); with 32 × 36 × 36 (four times the extent) it learnt more slowly and early stopping
# ended the run at epoch 18 (Dice 0.67). 2-D lesions of 0.7 % of an image trained well on whole images.
_MIN_FOREGROUND_SHARE = 0.005  # the median object's share of a patch below which the plan shrinks the patch
_CONTEXT = 3  # a shrunk patch still spans this many times the larger objects' extent per axis
_PATCH_FLOOR = 32  # and at least this many voxels per axis
# CT in Hounsfield units: air at about -1000 HU around the body; MR, PET or an already normalised image never goes there
# (pydicom's real CT_small.dcm, whose field of view holds little air, reaches only -896: so -500, not -900)
_CT_MIN_HU, _CT_MAX_HU = -500.0, 100.0  # the training images' median minimum at or below, median maximum at or above
_FOREGROUND_SAMPLES = 10_000  # foreground voxels sampled per training case for the intensity fingerprint


@dataclass
class SegmentationCase:
    """One image and its mask, resampled to the plan's spacing.

    Attributes:
        image: float32 (C, *spatial) at the target spacing, normalised (:func:`zscore`).
        mask: uint8 (*spatial) label indices (0 background, k the k-th of ``data.labels``) on the same grid.
        spacing: the original spacing (mm) per spatial axis.
        shape: the original spatial shape.
        source: the image file (or DICOM series folder).
        mask_source: the mask file.
        truth: the mask on the original grid (label indices), for metrics; None when it is ``mask`` itself.
        modality: the image's DICOM Modality, for the plan's choice of normalisation.
    """

    image: np.ndarray
    mask: np.ndarray
    spacing: tuple[float, ...]
    shape: tuple[int, ...]
    source: str
    mask_source: str
    truth: np.ndarray | None = None
    modality: str | None = None  # the DICOM Modality (CT, MR, ...), None for a file without one

    @property
    def original_mask(self) -> np.ndarray:
        return self.mask if self.truth is None else self.truth


@dataclass
class Plan:
    """The settings a segmentation run takes from its data, with why (written to the run record and bundle)."""

    spacing: list[float] | None
    patch_size: list[int]
    batch_size: int
    why: dict[str, str] = field(default_factory=dict)
    # post-processing: per label index (1..K), predicted objects smaller than this (mm³; mm² in 2-D) are dropped
    min_object_size: dict[int, float] = field(default_factory=dict)
    # intensity normalisation: "zscore" (each image on its own) or "ct" (clip to the training foreground's 0.5-99.5
    # percentiles, then its mean and SD: nnU-Net's CT scheme); ``intensity`` holds those figures per channel
    normalize: str = "zscore"
    intensity: dict[str, list[float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "spacing": self.spacing,
            "patch_size": self.patch_size,
            "batch_size": self.batch_size,
            "min_object_size": {str(k): v for k, v in self.min_object_size.items()},
            "normalize": self.normalize,
            "intensity": {k: list(v) for k, v in self.intensity.items()},
            "why": dict(self.why),
        }

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> Plan:
        sizes = saved.get("min_object_size") or {}  # absent in bundles written before post-processing existed
        return cls(
            saved["spacing"],
            [int(v) for v in saved["patch_size"]],
            int(saved["batch_size"]),
            dict(saved.get("why", {})),
            {int(k): float(v) for k, v in sizes.items()},
            str(saved.get("normalize", "zscore")),  # bundles before the CT scheme z-scored every image
            {k: [float(x) for x in v] for k, v in (saved.get("intensity") or {}).items()},
        )


def plan_segmentation(
    shapes: Sequence[Sequence[int]],
    spacings: Sequence[Sequence[float]],
    *,
    spatial_dims: int,
    divisor: int = 16,
    spacing: Sequence[float] | None = None,
    patch_size: Sequence[int] | None = None,
    batch_size: int | None = None,
) -> Plan:
    """The plan from the images' shapes and spacings; any setting given is kept as it is.

    Args:
        shapes: spatial shape of each training image.
        spacings: its spacing in mm.
        spatial_dims: 2 or 3.
        divisor: every patch axis is a multiple of this (the network halves the patch ``log2(divisor)`` times) and
            at least twice it (the deepest feature map keeps more than one voxel per axis, as instance norm needs).
        spacing, patch_size, batch_size: the experiment's own settings (None: derived).
    """
    shape_array = np.asarray(shapes, dtype=float).reshape(-1, spatial_dims)
    spacing_array = np.asarray(spacings, dtype=float).reshape(-1, spatial_dims)
    why: dict[str, str] = {}
    median_spacing = np.median(spacing_array, axis=0)
    if spacing is None:
        uniform = bool(np.allclose(spacing_array, median_spacing, rtol=0.01))
        target = None if uniform else [round(float(v), 3) for v in median_spacing]
        if target is not None:
            why["spacing"] = f"median voxel spacing (mm) of {len(spacing_array)} training images, whose spacings differ"
    else:
        target = [float(v) for v in spacing]
    grid = np.asarray(target) if target is not None else median_spacing
    if patch_size is None:
        at_target = np.median(shape_array * spacing_array / grid, axis=0)
        cap = _PATCH_CAP[spatial_dims]
        patch = [int(max(2 * divisor, min(cap, (round(v) // divisor) * divisor))) for v in at_target]
        why["patch_size"] = (
            f"median image size at the target spacing ({' × '.join(str(round(v)) for v in at_target)}), rounded "
            f"down to a multiple of {divisor} (the network's halvings), at least {2 * divisor}, at most {cap} per axis"
        )
    else:
        patch = [int(v) for v in patch_size]
    size, batch_why = _batch_for(patch, spatial_dims) if batch_size is None else (int(batch_size), "")
    if batch_why:
        why["batch_size"] = batch_why
    return Plan(target, patch, size, why)


def _batch_for(patch: Sequence[int], spatial_dims: int) -> tuple[int, str]:
    size = int(min(32, max(2, _BATCH_VOXELS[spatial_dims] // math.prod(patch))))
    why = (
        f"{_BATCH_VOXELS[spatial_dims]:,} voxels per batch (a CPU-sized budget) / {math.prod(patch):,} per patch, "
        "between 2 and 32"
    )
    return size, why


def mask_objects(mask: np.ndarray) -> list[tuple[int, int, tuple[int, ...]]]:
    """The connected objects of a label-index map (full connectivity, per label): (label, voxels, extent per axis)."""
    from scipy import ndimage

    found = []
    structure = np.ones((3,) * mask.ndim)
    for label in (int(v) for v in np.unique(mask) if v > 0):
        components, n = ndimage.label(mask == label, structure=structure)
        if n == 0:
            continue
        voxels = np.bincount(components.reshape(-1), minlength=n + 1)[1:]
        for k, box in enumerate(ndimage.find_objects(components)):
            if box is not None:
                found.append((label, int(voxels[k]), tuple(s.stop - s.start for s in box)))
    return found


def fit_patch_to_objects(plan: Plan, masks: Sequence[np.ndarray], *, divisor: int, spatial_dims: int,
                         patch_given: bool, batch_given: bool) -> Plan:  # fmt: skip
    """The plan's patch fitted to the training masks' objects (nnU-Net's fingerprint, from the training split only).

    When the median object fills under 0.5 % of the patch (small lesions in whole-volume patches), the patch shrinks
    to three times the larger objects' extent (95th percentile per axis), at least 32 voxels, a multiple of
    ``divisor`` and never larger than before, so that foreground-centred patches hold enough lesion for the loss to
    learn it; the batch size follows the patch unless the experiment gives it. A patch the experiment gives is kept.
    """
    objects = [found for mask in masks for found in mask_objects(mask)]
    if patch_given or not objects:
        return plan
    patch = list(plan.patch_size)
    share = float(np.median([voxels for _, voxels, _ in objects])) / math.prod(patch)
    if share >= _MIN_FOREGROUND_SHARE:
        return plan
    extent = np.percentile(np.array([e for _, _, e in objects], dtype=float), 95, axis=0)
    floor = max(_PATCH_FLOOR, 2 * divisor)
    fitted = [
        min(p, max(floor, math.ceil(_CONTEXT * e / divisor) * divisor)) for p, e in zip(patch, extent, strict=True)
    ]
    if fitted == patch:
        return plan
    why = dict(plan.why)
    why["patch_size"] = (
        f"{why.get('patch_size', 'the median image size')}; then fitted to the training masks' objects: the median "
        f"object fills {100 * share:.2f} % of that patch (under {100 * _MIN_FOREGROUND_SHARE:g} %, the loss learns "
        f"mostly background), so {_CONTEXT} × their 95th-percentile extent "
        f"({' × '.join(str(round(v)) for v in extent)} voxels), at least {floor}, a multiple of {divisor}"
    )
    batch = plan.batch_size
    if not batch_given:
        batch, why["batch_size"] = _batch_for(fitted, spatial_dims)
    return Plan(plan.spacing, fitted, batch, why, dict(plan.min_object_size), plan.normalize, dict(plan.intensity))


def fit_normalization(
    plan: Plan,
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    *,
    given: str | None,
    seed: int = 0,
    modalities: Sequence[str | None] = (),
) -> Plan:
    """The plan's intensity normalisation, from the training cases only (nnU-Net's fingerprint).

    ``ct`` (nnU-Net's CT scheme) when ``given`` says so, or, by default, when the images are CT in Hounsfield units:
    their DICOM Modality says CT (every image that names one), or, where no image names one (NIfTI, PNG), their
    median minimum is at or below -500 and their median maximum at least 100. Every image is then clipped to the 0.5th
    and 99.5th percentiles of the training foreground's intensities and scaled by that foreground's mean and SD, the
    same figures for every image, so a lesion's contrast means the same in every scan. Otherwise ``zscore``: each
    image by its own mean and SD (MR, microscopy, anything without an absolute scale).

    Args:
        plan: the plan so far.
        images: the training images (C, *spatial) at the plan's spacing, not yet normalised.
        masks: their label-index masks on the same grid.
        given: ``preprocess.normalize`` when the experiment sets it, else None.
        seed: seeds the sample of foreground voxels.
        modalities: each training image's DICOM Modality (None where the file has none).
    """
    why = dict(plan.why)
    named = sorted({m for m in modalities if m})
    if given is None and named:
        choice = "ct" if named == ["CT"] else "zscore"
        why["normalize"] = f"the training images' DICOM Modality: {', '.join(named)}; " + (
            "CT in Hounsfield units, so nnU-Net's CT scheme: clipped to the training foreground's 0.5-99.5th "
            "percentiles, scaled by its mean and SD"
            if choice == "ct"
            else "not CT alone, so each image is z-scored on its own"
        )
    elif given is None:
        low = float(np.median([float(image.min()) for image in images]))
        high = float(np.median([float(image.max()) for image in images]))
        choice = "ct" if low <= _CT_MIN_HU and high >= _CT_MAX_HU else "zscore"
        why["normalize"] = f"the training images' median minimum {low:g} and maximum {high:g}: " + (
            f"CT in Hounsfield units (minimum at or below {_CT_MIN_HU:g}), so nnU-Net's CT scheme: clipped to the "
            "training foreground's 0.5-99.5th percentiles, scaled by its mean and SD"
            if choice == "ct"
            else f"no absolute intensity scale (CT in HU reaches {_CT_MIN_HU:g} and below), so each image is "
            "z-scored on its own"
        )
    else:
        choice = given
        why.pop("normalize", None)
    intensity: dict[str, list[float]] = {}
    if choice == "ct":
        rng = np.random.default_rng(seed)
        channels = int(images[0].shape[0])
        samples: list[list[np.ndarray]] = [[] for _ in range(channels)]
        for image, mask in zip(images, masks, strict=True):
            inside = np.flatnonzero(mask.reshape(-1) > 0)
            if len(inside) > _FOREGROUND_SAMPLES:
                inside = rng.choice(inside, _FOREGROUND_SAMPLES, replace=False)
            for c in range(channels):
                samples[c].append(image[c].reshape(-1)[inside])
        pooled = [np.concatenate(s) if s else np.zeros(0) for s in samples]
        if any(len(p) == 0 for p in pooled):  # no foreground in any training mask: the whole images stand in
            pooled = [np.concatenate([image[c].reshape(-1) for image in images]) for c in range(channels)]
        intensity = {
            "low": [float(np.percentile(p, 0.5)) for p in pooled],
            "high": [float(np.percentile(p, 99.5)) for p in pooled],
            "mean": [float(p.mean()) for p in pooled],
            "std": [float(max(p.std(), 1e-8)) for p in pooled],
        }
    return Plan(plan.spacing, list(plan.patch_size), plan.batch_size, why, dict(plan.min_object_size), choice,
                intensity)  # fmt: skip


def normalise(image: np.ndarray, plan: Plan) -> np.ndarray:
    """``image`` (C, *spatial) normalised as the plan says (:func:`fit_normalization`), into a new float32 array."""
    if plan.normalize != "ct":
        return zscore(image)
    figures = plan.intensity
    if image.shape[0] != len(figures["mean"]):
        from meddl.errors import MedDLError

        raise MedDLError(f"an image with {image.shape[0]} channel(s); the model was trained on {len(figures['mean'])}")
    out = np.empty(image.shape, dtype=np.float32)
    for c in range(image.shape[0]):
        clipped = np.clip(image[c], figures["low"][c], figures["high"][c])
        out[c] = (clipped - figures["mean"][c]) / figures["std"][c]
    return out


def drop_small_objects(labels: np.ndarray, min_size: dict[int, float], spacing: Sequence[float]) -> np.ndarray:
    """``labels`` (label indices) with each label's connected objects smaller than ``min_size[label]`` (mm³; mm²
    for a 2-D image, from ``spacing``) set to background; a label without an entry is left as it is."""
    from scipy import ndimage

    if not any(v > 0 for v in min_size.values()):
        return labels
    out = labels.copy()
    voxel = float(np.prod(spacing))
    structure = np.ones((3,) * labels.ndim)
    for label, size in min_size.items():
        if size <= 0:
            continue
        components, n = ndimage.label(labels == label, structure=structure)
        if n == 0:
            continue
        volumes = np.bincount(components.reshape(-1), minlength=n + 1) * voxel
        small = np.flatnonzero(volumes < size)
        small = small[small > 0]
        if len(small):
            out[np.isin(components, small)] = 0
    return out


def choose_min_object_size(
    truths: Sequence[np.ndarray],
    predictions: Sequence[np.ndarray],
    spacings: Sequence[Sequence[float]],
    training_objects: dict[int, list[float]],
    score: Any,
) -> tuple[dict[int, float], dict[int, str]]:
    """Per label, the smallest object size (mm³ / mm²) that post-processing keeps, chosen on validation cases as
    nnU-Net chooses its post-processing: candidates are 0 (keep everything) and 10 %, 25 % and 50 % of the smallest
    object of that label in the training masks; the one with the highest mean validation Dice wins, 0 on a tie.

    Args:
        truths, predictions, spacings: the validation cases' true and predicted label indices (same grid) and their
            spacing.
        training_objects: per label index, the sizes (mm³ / mm²) of the training masks' objects.
        score: ``score(truth, prediction, label) -> float``: one case's Dice of one label.

    Returns:
        ``({label: size}, {label: why})``.
    """
    chosen: dict[int, float] = {}
    why: dict[int, str] = {}
    for label, sizes in sorted(training_objects.items()):
        if not sizes or not truths:
            continue
        smallest = float(min(sizes))
        candidates = [0.0, *(round(f * smallest, 3) for f in (0.1, 0.25, 0.5))]
        means = []
        for size in candidates:
            cleaned = [drop_small_objects(p, {label: size}, s) for p, s in zip(predictions, spacings, strict=True)]
            means.append(float(np.mean([score(t, c, label) for t, c in zip(truths, cleaned, strict=True)])))
        best = int(np.argmax(means))  # the first maximum: 0 (no post-processing) wins a tie
        chosen[label] = candidates[best]
        why[label] = (
            f"mean validation Dice {means[best]:.4f} dropping objects under {candidates[best]:g} (kept all: "
            f"{means[0]:.4f}); candidates 0 and 10/25/50 % of the smallest training object ({smallest:g})"
        )
    return chosen, why


def zscore(image: np.ndarray) -> np.ndarray:
    """Each channel to zero mean and unit SD over the image (MONAI's ``NormalizeIntensity(channel_wise=True)``: a
    constant channel only loses its mean), into a new float32 array; ``image`` is left as it is (MONAI's transform
    wrote into a NumPy input)."""
    array = np.asarray(image)
    axes = tuple(range(1, array.ndim))
    mean = array.mean(axis=axes, dtype=np.float64, keepdims=True)
    std = array.std(axis=axes, dtype=np.float64, keepdims=True)
    std[std == 0] = 1.0
    return ((array - mean) / std).astype(np.float32)


class PatchDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Patches of segmentation cases: ``(image (C, *patch) float32, mask (*patch) int64)``.

    Args:
        cases: the cases (already resampled).
        patch_size: the patch's spatial size.
        train: random patches and augmentation (training), or every case tiled whole by patches side by side
            (validation; see ``tile_cases``).
        foreground_ratio: training: share of patches centred on a foreground voxel.
        augment: training: MONAI's flips, small rotations/scaling, intensity shift and noise, on image and mask.
        seed: the run's seed; with the epoch and case it seeds each draw.
        length: training: patches per epoch (cases are drawn in turn, each patch from a fresh random crop), so a
            small data set still makes enough optimiser steps per epoch for validation to be worth its cost
            (nnU-Net fixes 250 steps an epoch); default: one patch per case. Validation: the number of tiles.
    """

    def __init__(
        self,
        cases: Sequence[SegmentationCase],
        patch_size: Sequence[int],
        *,
        train: bool,
        foreground_ratio: float = 0.5,
        augment: bool = True,
        seed: int = 0,
        length: int | None = None,
    ) -> None:
        self.cases = list(cases)
        self.length = max(len(self.cases), int(length or 0)) if train else len(self.cases)
        self.patch = tuple(int(p) for p in patch_size)
        self.train = train
        self.foreground_ratio = float(foreground_ratio)
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self._transforms: Any = None
        self._sites: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self.tiles: list[tuple[int, tuple[int, ...]]] = [] if train else _validation_tiles(self.cases, self.patch, seed)
        if not train:
            self.length = len(self.tiles)

    @property
    def tile_cases(self) -> np.ndarray:
        """Validation: the case (index into ``cases``) of each item, in item order."""
        return np.array([k for k, _ in self.tiles], dtype=np.int64)

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_transforms"] = None  # DataLoader workers build their own
        return state

    def _case_sites(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Case ``k`` padded to at least the patch, with where its patches may be centred: every foreground voxel,
        and up to ``_BACKGROUND_SITES`` background voxels drawn once (MONAI's ``map_binary_to_indices`` on every
        draw cost a third of a 3-D patch's time; bounded, the background list stays small for large volumes)."""
        if k not in self._sites:
            case = self.cases[k]
            image, label = case.image, case.mask[None]
            short = [max(0, p - n) for p, n in zip(self.patch, label.shape[1:], strict=True)]
            if any(short):
                pad = [(0, 0), *[(m // 2, m - m // 2) for m in short]]
                image, label = np.pad(image, pad), np.pad(label, pad)
            inside = label[0].reshape(-1) > 0
            foreground = np.flatnonzero(inside)
            background = np.flatnonzero(~inside)
            if len(background) > _BACKGROUND_SITES:
                background = np.random.default_rng([self.seed, k]).choice(background, _BACKGROUND_SITES, replace=False)
            self._sites[k] = (image, label.astype(np.float32), foreground, np.sort(background))
        return self._sites[k]

    def _build(self) -> Any:
        from monai.transforms import (
            Compose,
            RandAffined,
            RandCropByPosNegLabeld,
            RandFlipd,
            RandGaussianNoised,
            RandScaleIntensityd,
        )

        dims = len(self.patch)
        crop = RandCropByPosNegLabeld(
            keys=("image", "label"),
            label_key="label",
            spatial_size=self.patch,
            pos=self.foreground_ratio,
            neg=1.0 - self.foreground_ratio,
            num_samples=1,
            fg_indices_key="foreground",
            bg_indices_key="background",
            allow_smaller=True,
        )
        steps: list[Any] = [crop]
        if self.augment:
            steps += [
                *[RandFlipd(keys=("image", "label"), prob=0.5, spatial_axis=axis) for axis in range(dims)],
                RandAffined(  # nnU-Net's rate (0.2); the grid of the fixed patch size built once
                    keys=("image", "label"),
                    prob=0.2,
                    spatial_size=self.patch,
                    cache_grid=True,
                    rotate_range=[math.radians(15)] * (1 if dims == 2 else 3),
                    scale_range=[0.15] * dims,
                    mode=("bilinear", "nearest"),
                    padding_mode="zeros",
                ),
                RandScaleIntensityd(keys="image", factors=0.1, prob=0.3),
                RandGaussianNoised(keys="image", prob=0.15, std=0.1),
            ]
        return Compose(steps)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.train:
            k, start = self.tiles[index]
            image, label = _tile(self.cases[k].image, self.cases[k].mask[None], start, self.patch)
            return torch.from_numpy(image), torch.from_numpy(label[0].astype(np.int64))
        if self._transforms is None:
            self._transforms = SeededTransform(self._build())
        image, label, foreground, background = self._case_sites(index % len(self.cases))
        from monai.data import get_track_meta, set_track_meta

        tracking = get_track_meta()
        set_track_meta(False)  # plain tensors: MONAI's metadata bookkeeping was most of a patch's time
        try:
            with warnings.catch_warnings():  # an empty mask: MONAI crops at random instead, as it should
                warnings.filterwarnings("ignore", message="Num foregrounds 0")
                out = self._transforms(
                    {"image": image, "label": label, "foreground": foreground, "background": background},
                    augment_seed(self.seed, self.epoch, index),
                )
        finally:
            set_track_meta(tracking)
        out = out[0] if isinstance(out, list) else out
        image_t = torch.as_tensor(np.asarray(out["image"]), dtype=torch.float32)
        label_t = torch.as_tensor(np.asarray(out["label"])[0]).round().to(torch.int64)
        return image_t, label_t


def _validation_tiles(
    cases: Sequence[SegmentationCase], patch: tuple[int, ...], seed: int
) -> list[tuple[int, tuple[int, ...]]]:
    """``(case, start)`` of every tile of every case, side by side from the origin (a last tile past the edge is
    padded, so no voxel is counted twice); past ``_VALIDATION_VOXELS`` in all, the tiles holding foreground and then
    others at random (by ``seed``), in case order."""
    tiles, holds = [], []
    for k, case in enumerate(cases):
        axes = [range(0, max(n, 1), p) for n, p in zip(case.mask.shape, patch, strict=True)]
        for start in itertools.product(*axes):
            region = tuple(slice(s, s + p) for s, p in zip(start, patch, strict=True))
            tiles.append((k, tuple(int(s) for s in start)))
            holds.append(bool(case.mask[region].any()))
    room = max(1, _VALIDATION_VOXELS // int(np.prod(patch)))
    if len(tiles) <= room:
        return tiles
    order = np.random.default_rng(seed).permutation(len(tiles))
    ranked = sorted(order, key=lambda t: not holds[t])  # foreground first; stable, so random within each kind
    return [tiles[t] for t in sorted(ranked[:room])]


def _tile(
    image: np.ndarray, label: np.ndarray, start: tuple[int, ...], patch: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The patch at ``start``, zero-padded at the far edges to the full patch."""
    region = tuple(slice(int(s), int(s + n)) for s, n in zip(start, patch, strict=True))
    image, label = image[(slice(None), *region)], label[(slice(None), *region)]
    pad = [(0, 0), *[(0, int(n - have)) for n, have in zip(patch, image.shape[1:], strict=True)]]
    return np.pad(image, pad).astype(np.float32), np.pad(label, pad)

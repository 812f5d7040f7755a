"""Image segmentation (``data.kind: image`` with ``task: segmentation``): where a finding is and how big.

The image modality's variant for the segmentation task. A manifest names each image and its mask
(``path,mask[,patient_id]``); masks are NIfTI (same affine as the image, checked), PNG, npz or DICOM-SEG
(:mod:`meddl.io.masks`). A plan step (:func:`meddl.preprocess.segmentation.plan_segmentation`) takes the target
spacing, patch size and batch size from the images' headers (the patch then fitted to the training masks' objects
by :meth:`SegmentationModality.fit`); each image is resampled to that spacing (MONAI
``Resize``: bilinear for the image, nearest for the mask) and normalised as the plan says (nnU-Net's CT scheme for
CT in Hounsfield units, else a z-score per image and channel; fitted on the training split). Training draws
foreground-balanced patches with MONAI augmentation; prediction slides the patch over the whole image
(MONAI ``sliding_window_inference``, Gaussian-weighted overlap) and maps the result back to the original grid,
where objects under the plan's smallest size are dropped and every metric and volume is measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from meddl.errors import MedDLError
from meddl.io.images import image_geometry, image_manifest, read_image
from meddl.io.masks import check_mask_values, mask_labels, read_mask, write_mask
from meddl.modalities.base import Log, Modality, ModalityExample, PredictionInputs, Prepared
from meddl.modalities.image import ImageModality, image_sources
from meddl.modalities.registry import register
from meddl.modalities.schema import ExperimentConfig
from meddl.models.registry import model_class, takes_argument
from meddl.preprocess.segmentation import (
    PatchDataset,
    Plan,
    SegmentationCase,
    drop_small_objects,
    fit_normalization,
    fit_patch_to_objects,
    mask_objects,
    normalise,
    plan_segmentation,
)

__all__ = ["SegmentationModality"]

STEPS_PER_EPOCH = 25  # optimiser steps of a training epoch at least (patches drawn anew from the cases)


@register
class SegmentationModality(ImageModality):
    """Images and their masks in, a segmentation network's masks out, measured in Dice and millilitres."""

    task_variant = "segmentation"
    title = "medical image segmentation"
    request_style = "upload_image"
    explanation_files = "masks"
    explain_suffix = ".png"
    explanation_column = "overlay"
    usage: ClassVar[dict[str, str]] = {
        "data": "scans/",
        "input": "Give one image file, a folder of images or a manifest CSV with a path column, in the format the "
        "model was trained on; each gets its mask (NIfTI with the input's affine; DICOM-SEG for DICOM).",
        "python": '"scans/"',
    }

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        self.names: dict[int, str] = dict(self.data.labels or {})  # label value → name
        self.plan: Plan | None = None
        self.fitted = False  # the plan's normalisation is known (after fit(), or from a bundle): normalise on reading
        self._check_patch(self.prep.patch_size)

    def _check_patch(self, patch: list[int] | None) -> None:
        """A given ``preprocess.patch_size`` against the network, before any data is read: one size per axis, each
        a multiple of the network's divisor and at least twice it."""
        if patch is None:
            return
        divisor, dims = self.divisor, self.data.spatial_dims
        if len(patch) != dims or any(int(v) % divisor or int(v) < 2 * divisor for v in patch):
            raise MedDLError(
                f"preprocess.patch_size: {list(patch)} does not fit model.arch {self.config.model.arch!r}; give "
                f"{dims} sizes, each a multiple of {divisor} and at least {2 * divisor} (the network halves a patch "
                f"{divisor.bit_length() - 1} times and its deepest feature map needs more than one voxel per axis)"
            )

    @classmethod
    def example(cls, folder: Path) -> ModalityExample:
        from meddl.data.phantoms import write_phantom_dataset

        manifest = write_phantom_dataset(
            folder / "scans", 40, spatial_dims=2, size=48, fmt="nifti", prevalence=0.9, seed=0, mask_column="mask"
        )
        experiment = {
            "name": "example-segmentation",
            "task": "segmentation",
            "data": {"kind": "image", "path": str(manifest.relative_to(folder)), "labels": {1: "lesion"}},
            "model": {"arch": "unet", "channels": [8, 16, 32]},
            "train": {"epochs": 3, "seed": 0, "progress": False},
            "evaluate": {"bootstrap": 20},
        }
        first = sorted((manifest.parent / "images").glob("*"))[0]
        return ModalityExample(experiment, manifest.parent / "images", first, manifest)

    # -- the label values -------------------------------------------------------------------------
    @property
    def label_values(self) -> list[int]:
        """The mask values of the labels, in channel order (channel k + 1 is ``label_values[k]``)."""
        return sorted(self.names)

    def _index_map(self, mask: np.ndarray) -> np.ndarray:
        """Label values → channel indices (0 background, k for the k-th label value)."""
        lookup = np.zeros(max(256, int(mask.max()) + 1), dtype=np.uint8)
        for k, value in enumerate(self.label_values, start=1):
            lookup[value] = k
        return lookup[mask.astype(np.int64)]

    def _value_map(self, indices: np.ndarray) -> np.ndarray:
        """Channel indices → label values (for writing a mask file)."""
        lookup = np.array([0, *self.label_values], dtype=np.uint8)
        return lookup[indices]

    @property
    def divisor(self) -> int:
        """Every patch axis must be a multiple of this: the network's own (2 to its number of halvings)."""
        network = model_class(self.config.model.arch)
        return int(network.patch_divisor(self.config.model.params))  # type: ignore[attr-defined]

    # -- training -----------------------------------------------------------------------------------
    def load(self, log: Log) -> Prepared:
        manifest = image_manifest(
            self.data.path,
            path_column=self.data.path_column,
            target=self.data.mask_column,
            patient_id=self.data.patient_id,
            missing_files="keep" if self.data.on_bad_file == "skip" else "error",
        )
        folder = self.data.path.parent
        rows = manifest["row"].tolist()
        masks = list(manifest["label"])  # the mask cells, checked (blank, missing) with their row as each is read
        images = [Path(p) for p in manifest["path"]]
        log(f"reading the headers of {len(images)} image(s) for the plan (spacing, patch size, batch size)")
        shapes, spacings, skipped = [], [], []
        keep = []
        for i, path in enumerate(images):
            try:
                shape, spacing = image_geometry(path, format=self.data.format)
            except MedDLError as exc:
                if self.data.on_bad_file != "skip":
                    raise
                skipped.append((str(path), str(exc)))
                continue
            if len(shape) != self.data.spatial_dims:
                raise MedDLError(
                    f"{path} (manifest row {rows[i]}): a {len(shape)}D image; data.spatial_dims is "
                    f"{self.data.spatial_dims}"
                )
            shapes.append(shape)
            spacings.append(spacing)
            keep.append(i)
        if not keep:
            raise MedDLError(f"{self.data.path}: no readable image")
        if self.plan is None:  # a bundle's modality keeps the plan it was trained with (external evaluation)
            self.plan = self._plan(shapes, spacings)
        self._record_plan()
        cases, found_values = [], set()
        patients, kept_rows = [], []
        every = max(1, len(keep) // 10)
        for n, i in enumerate(keep, start=1):
            try:
                mask_path = _mask_path(folder, masks[i], rows[i], self.data)
                case, values = self._read_case(images[i], mask_path, rows[i])
            except MedDLError as exc:
                if self.data.on_bad_file != "skip":
                    raise
                skipped.append((str(images[i]), str(exc)))
                continue
            found_values |= values
            cases.append(case)
            kept_rows.append(rows[i])
            patients.append(manifest["patient_id"].iloc[i] if "patient_id" in manifest.columns else None)
            if n % every == 0 or n == len(keep):
                log(f"read and resampled {n}/{len(keep)} image(s) and masks")
        if not self.names:
            if not found_values:
                raise MedDLError(f"{self.data.path}: no mask holds a foreground voxel; nothing to learn to segment")
            self.names = {value: f"label_{value}" for value in sorted(found_values)}
            self.data.labels = dict(self.names)
            self.derived_["data.labels"] = {"value": dict(self.names), "why": "the values found in the masks"}
            for case in cases:  # the masks were read before the labels were known: map their values now
                case.mask = self._index_map(case.mask)
                if case.truth is not None:
                    case.truth = self._index_map(case.truth)
        has_foreground = np.array([int(case.mask.any()) for case in cases], dtype=np.int64)
        patient_ids = np.array(patients, dtype=object) if "patient_id" in manifest.columns else None
        return Prepared(
            inputs=cases,
            target=has_foreground,
            classes=[self.names[value] for value in self.label_values],  # the labels a mask can hold
            sample_ids=[case.source for case in cases],
            patient_ids=patient_ids,
            n_read=len(images),
            dropped={"unreadable image or mask (skipped)": len(skipped)} if skipped else {},
            notes=[
                f"{self.data.spatial_dims}D images with masks of {len(self.names)} label(s): "
                + ", ".join(f"{v} = {name}" for v, name in sorted(self.names.items())),
                f"{int((has_foreground == 0).sum())} case(s) with an empty mask (kept: they test false positives)",
                *[f"skipped {p}: {r}" for p, r in skipped[:20]],
            ],
            extra={"cases": cases, "rows": kept_rows, "skipped": skipped, "plan": self.plan},
        )

    def _record_plan(self) -> None:
        """The plan's derived settings and why, for the run record (``derived_defaults``)."""
        assert self.plan is not None, "the plan comes first"
        for setting, why in self.plan.why.items():
            key = {"batch_size": "train.batch_size"}.get(setting, f"preprocess.{setting}")
            value = getattr(self.plan, setting)
            if isinstance(value, dict):  # per label index → per label name
                value = {self.names[self.label_values[k - 1]]: v for k, v in value.items()}
            self.derived_[key] = {"value": value, "why": why}

    def fit(self, prepared: Prepared, train_index: np.ndarray) -> None:
        """From the training split only: the plan's patch fitted to the masks' objects (see
        :func:`meddl.preprocess.segmentation.fit_patch_to_objects`) and the intensity normalisation
        (:func:`meddl.preprocess.segmentation.fit_normalization`), which then normalises every case once."""
        assert self.plan is not None, "load() makes the plan"
        cases: list[SegmentationCase] = prepared.extra["cases"]
        if prepared.extra.get("normalised"):
            raise MedDLError("the segmentation cases are already normalised; read the data again to refit")
        plan = fit_patch_to_objects(
            self.plan,
            [cases[i].mask for i in train_index],
            divisor=self.divisor,
            spatial_dims=self.data.spatial_dims,
            patch_given=self.prep.patch_size is not None,
            batch_given="batch_size" in self.config.train.model_fields_set,
        )
        given = self.prep.normalize if "normalize" in self.prep.model_fields_set else None
        self.plan = fit_normalization(
            plan,
            [cases[i].image for i in train_index],
            [cases[i].mask for i in train_index],
            given=given,
            seed=self.config.train.seed,
            modalities=[cases[i].modality for i in train_index],
        )
        for case in cases:
            case.image = normalise(case.image, self.plan)
        prepared.extra["normalised"] = True
        prepared.extra["plan"] = self.plan
        self.fitted = True
        self._record_plan()

    def object_sizes(self, cases: list[SegmentationCase]) -> dict[int, list[float]]:
        """Per label index, the sizes (mm³; mm² for 2-D images) of the connected objects in the cases' masks, on
        their original grids."""
        sizes: dict[int, list[float]] = {k: [] for k in range(1, len(self.label_values) + 1)}
        for case in cases:
            voxel = float(np.prod(case.spacing))
            for label, voxels, _ in mask_objects(case.original_mask):
                sizes[label].append(voxels * voxel)
        return sizes

    def _plan(self, shapes: list[Any], spacings: list[Any]) -> Plan:
        prep, train = self.prep, self.config.train
        return plan_segmentation(
            shapes,
            spacings,
            spatial_dims=self.data.spatial_dims,
            divisor=self.divisor,
            spacing=prep.spacing if self._spacing_given else None,
            patch_size=prep.patch_size,
            batch_size=train.batch_size if "batch_size" in train.model_fields_set else None,
        )

    def _read_case(self, image_path: Path, mask_path: Path, row: Any) -> tuple[SegmentationCase, set[int]]:
        """One image and its mask, checked against each other, resampled to the plan's spacing."""
        volume = read_image(image_path, format=self.data.format)
        mask = read_mask(mask_path, volume)  # same grid as the image, or an error naming both files
        if self.names:
            check_mask_values(mask, self.label_values, mask_path)
        values = set(mask_labels(mask))
        if not self.names and int(mask.max(initial=0)) > 255:
            raise MedDLError(
                f"{mask_path}: label value {int(mask.max())} above 255; masks hold labels 1 to 255 (0: background)"
            )
        indices = self._index_map(mask) if self.names else mask.astype(np.uint8)
        image, resampled = self._resampled(volume.array, volume.spacing)
        if self.fitted:  # a bundle's plan (external evaluation); in training, fit() normalises after the split
            assert self.plan is not None, "a fitted modality has its plan"
            image = normalise(image, self.plan)
        grid_mask = self._resample_mask(indices, image.shape[1:]) if resampled else indices
        case = SegmentationCase(
            image=image,
            mask=grid_mask,
            spacing=tuple(float(s) for s in volume.spacing),
            shape=tuple(int(n) for n in volume.array.shape[1:]),
            source=str(image_path),
            mask_source=str(mask_path),
            truth=indices if resampled else None,
            modality=volume.meta.get("modality"),
        )
        return case, values

    def _target_shape(self, shape: tuple[int, ...], spacing: tuple[float, ...]) -> tuple[int, ...]:
        assert self.plan is not None, "the plan comes first"
        if self.plan.spacing is None:
            return tuple(shape)
        return tuple(max(1, round(n * s / t)) for n, s, t in zip(shape, spacing, self.plan.spacing, strict=True))

    def _resampled(self, array: np.ndarray, spacing: tuple[float, ...]) -> tuple[np.ndarray, bool]:
        """The image at the plan's spacing (bilinear/trilinear), float32, not yet normalised; and whether it was
        resized."""
        from monai.transforms import Resize

        target = self._target_shape(tuple(array.shape[1:]), tuple(spacing))
        resized = tuple(target) != tuple(array.shape[1:])
        if resized:
            mode = "bilinear" if self.data.spatial_dims == 2 else "trilinear"
            array = np.asarray(Resize(target, mode=mode)(torch.from_numpy(array)).numpy(), dtype=np.float32)
        return np.asarray(array, dtype=np.float32), resized

    @staticmethod
    def _resample_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        from monai.transforms import Resize

        out = Resize(shape, mode="nearest")(torch.from_numpy(mask[None].astype(np.float32)))
        return np.asarray(out.numpy()[0]).round().astype(np.uint8)

    def load_external(self, path: Path, log: Log) -> Prepared:
        """Another site's images and masks, read with the plan and labels the model was trained with."""
        return Modality.load_external(self, path, log)

    def profile(self, prepared: Prepared, index: np.ndarray) -> dict[str, np.ndarray]:
        """Per case: its size and spacing along each axis, as read (the images are z-scored per case, so their
        intensities are compared by the model's inputs, not here)."""
        cases: list[SegmentationCase] = [prepared.extra["cases"][i] for i in index]
        measures: dict[str, np.ndarray] = {}
        for axis in range(self.data.spatial_dims):
            measures[f"size axis {axis}"] = np.array([c.shape[axis] for c in cases], dtype=float)
            measures[f"spacing axis {axis} (mm)"] = np.array([c.spacing[axis] for c in cases], dtype=float)
        return measures

    def derived_defaults(self, prepared: Prepared) -> dict[str, dict[str, Any]]:
        return dict(self.derived_)

    def training_dataset(self, prepared: Prepared, index: np.ndarray, target: np.ndarray, *, train: bool) -> Dataset:
        assert self.plan is not None, "load() makes the plan"
        cases = prepared.extra["cases"]
        aug = self.prep.augment
        return PatchDataset(
            [cases[i] for i in index],
            self.plan.patch_size,
            train=train,
            foreground_ratio=self.prep.foreground_ratio,
            augment=aug.flip or aug.rotate_degrees > 0 or aug.affine or aug.intensity_shift > 0,
            seed=self.config.train.seed,
            length=self.plan.batch_size * STEPS_PER_EPOCH,
        )

    def model_arguments(self, inputs: Any) -> dict[str, Any]:
        """The data's dimensions, channels and labels; the plan's patch for a network built for one input size."""
        cases: list[SegmentationCase] = inputs
        arguments: dict[str, Any] = {
            "spatial_dims": self.data.spatial_dims,
            "in_channels": int(cases[0].image.shape[0]),
            "out_channels": len(self.names) + 1,
        }
        if takes_argument(self.config.model.arch, "input_size"):
            assert self.plan is not None, "load() makes the plan"
            arguments["input_size"] = list(self.plan.patch_size)
        return arguments

    def features(self, prepared: Prepared) -> Any:
        return prepared.extra["cases"]

    def input_spec(self, prepared: Prepared) -> dict[str, Any]:
        assert self.plan is not None, "load() makes the plan"
        channels = int(prepared.extra["cases"][0].image.shape[0])
        return {"shape": [channels, *self.plan.patch_size], "dtype": "float32", "any_size": True}

    # -- inference ----------------------------------------------------------------------------------
    @torch.no_grad()
    def probabilities(self, model: torch.nn.Module, image: np.ndarray | torch.Tensor) -> np.ndarray:
        """Softmax probabilities (K + 1, *spatial) of one preprocessed image, by a Gaussian-weighted sliding window
        of the plan's patch size with ``preprocess.overlap``."""
        from monai.inferers import sliding_window_inference

        assert self.plan is not None, "the plan is loaded with the bundle"
        model.eval()
        device = next(model.parameters()).device
        tensor = torch.as_tensor(image, dtype=torch.float32)[None].to(device)
        logits = sliding_window_inference(
            tensor,
            roi_size=tuple(self.plan.patch_size),
            sw_batch_size=max(1, self.plan.batch_size),
            predictor=model,
            overlap=self.prep.overlap,
            mode="gaussian",
            padding_mode="constant",
        )
        return torch.softmax(torch.as_tensor(logits).float(), dim=1)[0].cpu().numpy()

    def on_original_grid(self, probabilities: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Label indices (uint8) on the original image's grid: the probabilities resized there, then the argmax."""
        if tuple(probabilities.shape[1:]) != tuple(shape):
            from monai.transforms import Resize

            mode = "bilinear" if self.data.spatial_dims == 2 else "trilinear"
            probabilities = np.asarray(Resize(shape, mode=mode)(torch.from_numpy(probabilities)).numpy())
        return np.argmax(probabilities, axis=0).astype(np.uint8)

    def segment(self, model: torch.nn.Module, case: SegmentationCase, *, postprocess: bool = True) -> np.ndarray:
        """The predicted label indices of one case on its original grid; objects smaller than the plan's
        ``min_object_size`` of their label dropped (``postprocess``)."""
        labels = self.on_original_grid(self.probabilities(model, case.image), case.shape)
        if postprocess and self.plan is not None and self.plan.min_object_size:
            labels = drop_small_objects(labels, self.plan.min_object_size, case.spacing)
        return labels

    # -- bundle -------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        assert self.plan is not None, "load() makes the plan"
        return {**self.pipeline.to_state(), "segmentation": {"plan": self.plan.to_json(), "labels": self.names}}

    def bundle_info(self, prepared: Prepared) -> dict[str, Any]:
        return {**super().bundle_info(prepared), "labels": {str(k): v for k, v in self.names.items()}}

    @classmethod
    def from_state(cls, config: ExperimentConfig, state: dict[str, Any]) -> SegmentationModality:
        modality = super().from_state(config, state)
        assert isinstance(modality, SegmentationModality)
        saved = state.get("segmentation")
        if not isinstance(saved, dict) or "plan" not in saved:
            raise MedDLError("preprocess state: the segmentation plan is missing (a damaged bundle?)")
        modality.plan = Plan.from_json(saved["plan"])
        modality.fitted = True
        modality.names = {int(k): str(v) for k, v in saved["labels"].items()}
        return modality

    # -- prediction ---------------------------------------------------------------------------------
    def read_for_prediction(self, source: Any) -> PredictionInputs:
        """Every image of a file, folder or manifest, resampled as in training; an unreadable image gets a note."""
        if isinstance(source, list | tuple):
            sources = [Path(s) for s in source]
        else:
            sources = image_sources(Path(source), self.data.spatial_dims)
        cases, notes, usable, volumes = [], [], [], []
        for path in sources:
            try:
                volume = read_image(path, format=self.info.get("image_format", self.data.format))
                if volume.spatial_dims != self.data.spatial_dims:
                    raise MedDLError(
                        f"{path}: a {volume.spatial_dims}D image; the model segments {self.data.spatial_dims}D images"
                    )
                assert self.plan is not None, "the plan is loaded with the bundle"
                image = normalise(self._resampled(volume.array, volume.spacing)[0], self.plan)
            except MedDLError as exc:
                notes.append(f"not scored: {exc}")
                usable.append(False)
                continue
            case = SegmentationCase(
                image, np.zeros(0, np.uint8), tuple(volume.spacing), tuple(volume.array.shape[1:]), str(path), ""
            )
            cases.append(case)
            volumes.append(volume)
            notes.append("")
            usable.append(True)
        return PredictionInputs(
            inputs=cases,
            ids=[str(s) for s in sources],
            notes=notes,
            usable=np.array(usable, dtype=bool),
            columns={"path": [str(s) for s in sources]},
            extra={"volumes": volumes},
        )

    def measure(self, labels: np.ndarray, spacing: tuple[float, ...]) -> dict[str, float | int]:
        """Per label: its volume (mL; area in mm² for 2D images) and its number of connected components (lesions),
        as ``<label>_volume_ml`` / ``<label>_area_mm2`` and ``<label>_count``."""
        from scipy import ndimage

        unit = "ml" if self.data.spatial_dims == 3 else "mm2"
        voxel = float(np.prod(spacing)) / (1000.0 if unit == "ml" else 1.0)
        out: dict[str, float | int] = {}
        structure = np.ones((3,) * labels.ndim)
        for k, value in enumerate(self.label_values, start=1):
            inside = labels == k
            name = self.names[value]
            out[f"{name}_{'volume_ml' if unit == 'ml' else 'area_mm2'}"] = round(float(inside.sum()) * voxel, 4)
            out[f"{name}_count"] = int(ndimage.label(inside, structure=structure)[1])
        return out

    def segment_cases(
        self, model: torch.nn.Module, cases: PredictionInputs, mask_dir: Path | None, overlay_dir: Path | None = None
    ) -> tuple[pd.DataFrame, list[np.ndarray]]:
        """Each case's mask (written to ``mask_dir`` in the input's format: NIfTI with its affine, DICOM-SEG for
        DICOM), volume and lesion count per label, and its overlay PNG in ``overlay_dir`` (column ``overlay``);
        returns the table and the label maps (label values). Each case is segmented once."""
        frame = pd.DataFrame(cases.columns or {"id": cases.ids}, index=range(len(cases.ids)))
        rows = np.flatnonzero(cases.usable)
        measured: list[dict[str, Any]] = []
        maps: list[np.ndarray] = []
        written: list[str] = []
        overlays: list[str] = []
        for folder in (mask_dir, overlay_dir):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
        for position, (case, volume) in enumerate(zip(cases.inputs, cases.extra["volumes"], strict=True)):
            values = self._value_map(self.segment(model, case))
            maps.append(values)
            measured.append(self.measure(self._index_map(values), case.spacing))
            stem = f"{int(rows[position]):05d}_{_stem(case.source)}"
            if mask_dir is not None:
                written.append(str(write_mask(values, volume, mask_dir / f"{stem}_mask", labels=self.names)))
            if overlay_dir is not None:
                (overlay_dir / f"{stem}.png").write_bytes(self.overlay(case, values))
                overlays.append(str(overlay_dir / f"{stem}.png"))
        for column in measured[0] if measured else {}:
            counts = column.endswith("_count")  # whole numbers, blank for a case not segmented
            frame[column] = pd.array([pd.NA] * len(frame), dtype="Int64") if counts else np.nan
            frame.loc[rows, column] = [m[column] for m in measured]
        for column, paths in (("mask_path", written), ("overlay", overlays)):
            if paths:
                frame[column] = ""
                frame.loc[rows, column] = paths
        frame["note"] = cases.notes
        return frame, maps

    def overlay(self, case: SegmentationCase, values: np.ndarray, truth: np.ndarray | None = None) -> bytes:
        """An overlay PNG of one case's predicted mask (label values) on its image (the slice with most
        foreground for a volume)."""
        from meddl.explain.segmentation import mask_overlay_png, shown_slice

        indices = self._index_map(values)
        image = self.on_original_grid_image(case)
        names = {k: self.names[v] for k, v in enumerate(self.label_values, start=1)}
        if self.data.spatial_dims == 3:
            k = shown_slice(indices, truth)
            return mask_overlay_png(
                image[:, k], indices[k], truth[k] if truth is not None else None, title=_stem(case.source), names=names
            )
        return mask_overlay_png(image, indices, truth, title=_stem(case.source), names=names)

    def on_original_grid_image(self, case: SegmentationCase) -> np.ndarray:
        """The case's (normalised) image on its original grid, for pictures."""
        if tuple(case.image.shape[1:]) == tuple(case.shape):
            return case.image
        from monai.transforms import Resize

        mode = "bilinear" if self.data.spatial_dims == 2 else "trilinear"
        return np.asarray(Resize(case.shape, mode=mode)(torch.from_numpy(case.image)).numpy())

    def explain_cases(
        self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray, out: Path | None
    ) -> list[Any]:
        """An overlay PNG of the predicted mask per readable image, in ``out`` (as :meth:`segment_cases` draws)."""
        assert out is not None, "overlays are written to a folder"
        frame, _ = self.segment_cases(model, cases, None, out)
        return list(frame["overlay"].iloc[np.flatnonzero(cases.usable)]) if "overlay" in frame else []

    def explain_file(self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray, out: Path) -> str:
        """``meddl explain`` of one image: the overlay of its predicted mask, written to ``out`` (a ``.png``)."""
        self._one_image(cases, out, "the overlay", "a segmentation model")
        case = cases.inputs[0]
        values = self._value_map(self.segment(model, case))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(self.overlay(case, values))
        return f"wrote the overlay of {cases.ids[0]}'s predicted mask to {out}"

    def request_schema(self) -> dict[str, Any]:
        return {**super().request_schema(), "labels": {str(k): v for k, v in self.names.items()}}

    def warnings(self, prepared: Prepared, test_index: np.ndarray) -> list[str]:
        return [f"skipped {path}: {reason}" for path, reason in prepared.extra.get("skipped", [])]

    def splits_table(self, prepared: Prepared, splits: np.ndarray) -> pd.DataFrame:
        cases: list[SegmentationCase] = prepared.extra["cases"]
        return pd.DataFrame(
            {
                "row": prepared.extra["rows"],
                "path": [Path(c.source).name for c in cases],
                "patient_id": prepared.patient_ids if prepared.patient_ids is not None else None,
                "split": splits,
            }
        )

    def data_summary(self, prepared: Prepared, splits: np.ndarray) -> dict[str, Any]:
        return {
            "labels": {str(k): v for k, v in self.names.items()},
            "plan": self.plan.to_json() if self.plan else None,
        }


def _mask_path(folder: Path, value: Any, row: Any, data: Any) -> Path:
    if value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip():
        raise MedDLError(f"{data.path}, row {row}: column {data.mask_column!r} is blank; every image needs its mask")
    path = Path(str(value).strip()).expanduser()
    path = path if path.is_absolute() else folder / path
    if not path.exists():
        raise MedDLError(f"{data.path}, row {row}: the mask {str(value).strip()!r} does not exist ({path})")
    return path


def _stem(source: str) -> str:
    name = Path(source).name
    for suffix in (".nii.gz", ".nii", ".dcm", ".png", ".npz", ".npy", ".jpg", ".jpeg"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name

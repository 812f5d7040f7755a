"""Medical images (``data.kind: image``): DICOM files and series, NIfTI, PNG/JPEG, MedMNIST-style npz.

Images are read lazily, one item at a time, through an on-disk cache of preprocessed arrays keyed by a hash of the
preprocessing settings, so a data set larger than memory trains with bounded memory. Before the split every file is
checked (``data.on_bad_file``); with the cache, the check is the one read of each file: it decodes and preprocesses
the image into the cache, and training reads the cache. Explanations are heat maps (Grad-CAM or occlusion, as
``explain.heatmap`` says — in training, ``meddl predict/explain`` and the server alike) scored by the pointing game
on lesion masks; external evaluation compares intensity, size and spacing with the training images.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from meddl.data.image_dataset import ArraySource, ImageCache, ImageDataset, ImageItem
from meddl.data.image_items import ImageItems, load_image_items
from meddl.errors import MedDLError
from meddl.evaluate.robustness import (
    Corruption,
    gaussian_blur,
    gaussian_noise,
    lower_resolution,
    rotate,
    scale_contrast,
)
from meddl.explain.images import best_slice, grad_cam, occlusion_map, overlay_png, pointing_game
from meddl.io import images as image_io  # read_image through the module: one reader, replaceable in tests
from meddl.io.images import (
    IMAGE_SUFFIXES,
    check_readable,
    image_channels,
    image_geometry,
    image_manifest,
    is_dicom_file,
    read_image,
)
from meddl.modalities.base import Log, Modality, ModalityExample, PredictionInputs, Prepared
from meddl.modalities.registry import register
from meddl.modalities.schema import ExperimentConfig
from meddl.modalities.sections.image import ImageDataConfig, ImagePreprocessConfig
from meddl.models.registry import takes_argument
from meddl.preprocess.images import ImagePipeline
from meddl.train.runtime import laid_out

__all__ = ["ImageModality", "image_sources"]

N_EXAMPLES = 8
N_SHIFT_IMAGES = 200  # images read per side to describe intensity, size and spacing for the shift report


@register
class ImageModality(Modality):
    """Images in, a CNN's findings out, with a heat map of where they were seen."""

    kind = "image"
    usage: ClassVar[dict[str, str]] = {
        "data": "scans/",
        "input": (
            "Give a folder of images, one image file, or a manifest CSV with a path column, in the format the"
            " model was trained on (the same DICOM/NIfTI/PNG kind and dimensions)."
        ),
        "python": '"scans/"',
    }
    title = "medical image"
    request_style = "upload_image"
    explanation_files = "heatmaps"
    explain_suffix = ".png"
    explanation_column = "heatmap"
    upload_suffixes = tuple(IMAGE_SUFFIXES)

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        assert isinstance(config.data, ImageDataConfig) and isinstance(config.preprocess, ImagePreprocessConfig), (
            "the image modality needs data.kind: image"
        )
        self.data: ImageDataConfig = config.data
        self.prep: ImagePreprocessConfig = config.preprocess
        self.derived_: dict[str, dict[str, Any]] = {}
        # size and spacing the experiment leaves out are taken from the images in load()
        self._size_given = "size" in self.prep.model_fields_set
        self._spacing_given = "spacing" in self.prep.model_fields_set
        if not self._size_given and len(self.prep.size) != self.data.spatial_dims:
            self.prep.size = [64] * self.data.spatial_dims  # a placeholder until the images are read
        if len(self.prep.size) != self.data.spatial_dims:
            raise MedDLError(
                f"preprocess.size has {len(self.prep.size)} value(s) but data.spatial_dims is {self.data.spatial_dims}"
            )
        # The deterministic preprocessing has no fitted state, so the pipeline exists before the split.
        self.pipeline = ImagePipeline(self.prep, spatial_dims=self.data.spatial_dims, seed=config.train.seed)
        self.cache: ImageCache | None = None
        self._last_measures: dict[str, float] = {}  # raw measures of the last image read for prediction
        self._raw_measures: dict[str, dict[str, float]] = {}  # per file, taken while the check reads it

    @classmethod
    def example(cls, folder: Path) -> ModalityExample:
        from meddl.data.phantoms import write_phantom_dataset

        manifest = write_phantom_dataset(folder / "scans", 80, spatial_dims=2, size=32, fmt="dicom", seed=0)
        experiment = {
            "name": "example-image",
            "task": "binary",
            "data": {
                "kind": "image",
                "path": str(manifest.relative_to(folder)),
                "target": "label",
                "positive_label": "lesion",
                "spatial_dims": 2,
            },
            "preprocess": {"size": [32, 32]},
            "model": {"arch": "small_cnn"},
            "train": {"epochs": 3, "batch_size": 32, "seed": 0, "progress": False},
            "evaluate": {"bootstrap": 20},
        }
        first = sorted((manifest.parent / "images").glob("*"))[0]
        return ModalityExample(experiment, manifest.parent / "images", first, manifest)

    @property
    def spatial_dims(self) -> int:
        return self.data.spatial_dims

    # -- training -----------------------------------------------------------------------------------
    def load(self, log: Log) -> Prepared:
        npz = self.data.format == "npz" or self.data.path.suffix.lower() == ".npz"
        if not npz and not (self._size_given and self._spacing_given):
            self._derive_geometry(log)
        repairs = self._plan_channels(log) if not npz else {}
        self.cache = _cache(self.prep, self.data, self.pipeline)
        check, checking = self._file_check()
        items = load_image_items(self.data, self.config.task, log=log, check=check, checking=checking)
        if npz and not self._size_given and items.arrays:  # the arrays' own size (MedMNIST: 28 × 28 or 64 × 64)
            first = next(iter(items.arrays.values()))
            self._set_size([int(n) for n in first.shape[2:]], f"the size of the arrays in {self.data.path.name}")
            self.cache = _cache(self.prep, self.data, self.pipeline)
        prepared = self._prepared(items)
        prepared.repairs.update({k: v for k, v in repairs.items() if v})
        return prepared

    def _set_size(self, size: list[int], why: str) -> None:
        self.prep.size = size
        self.derived_["preprocess.size"] = {"value": size, "why": why}
        self.pipeline = ImagePipeline(self.prep, spatial_dims=self.data.spatial_dims, seed=self.config.train.seed)

    def _derive_geometry(self, log: Log) -> None:
        """Target spacing and size from the images (nnU-Net's habit: a data fingerprint, written down): the
        headers of up to ``N_SHIFT_IMAGES`` images spread over the data set (no pixels decoded); the spacing is the
        median per axis, or none when every image already has it; the size is the median image size at that
        spacing, at most 256 per axis in 2D and 128 in 3D. Only settings the experiment file leaves out are
        derived."""
        paths = self._manifest_paths()
        chosen = [paths[i] for i in np.linspace(0, len(paths) - 1, min(len(paths), N_SHIFT_IMAGES)).astype(int)]
        log(f"reading the headers of {len(chosen)} image(s) for their size and spacing")
        shapes, spacings = [], []
        for path in chosen:
            try:
                shape, spacing = image_geometry(path, format=self.data.format)  # headers only: no pixel read
            except MedDLError:
                continue  # a bad file is reported (or skipped) by the check that follows
            shapes.append(shape)
            spacings.append(spacing)
        if not shapes or any(len(s) != self.data.spatial_dims for s in shapes):
            return  # nothing readable, or images of another dimensionality: the reader's errors will say so
        spacing_array, shape_array = np.array(spacings, dtype=float), np.array(shapes, dtype=float)
        median_spacing = np.median(spacing_array, axis=0)
        uniform = bool(np.allclose(spacing_array, median_spacing, rtol=0.01))
        if not self._spacing_given and not uniform:
            self.prep.spacing = [round(float(v), 3) for v in median_spacing]
            self.derived_["preprocess.spacing"] = {
                "value": self.prep.spacing,
                "why": f"median voxel spacing (mm) of {len(spacings)} images, whose spacings differ",
            }
        if not self._size_given:
            target = np.array(self.prep.spacing) if self.prep.spacing else median_spacing
            at_target = shape_array * spacing_array / target  # each image's size at the target spacing
            cap = 256 if self.data.spatial_dims == 2 else 128
            size = [int(min(cap, max(8, round(v)))) for v in np.median(at_target, axis=0)]
            at = " at the target spacing" if self.prep.spacing else ""
            self._set_size(size, f"median size of {len(shapes)} images{at} (at most {cap} per axis)")
        self.pipeline = ImagePipeline(self.prep, spatial_dims=self.data.spatial_dims, seed=self.config.train.seed)

    def _manifest_paths(self) -> list[Path]:
        """The image files the manifest (or folder) names, before any is read."""
        if not self.data.path.exists():
            raise MedDLError(f"data.path not found: {self.data.path}")
        manifest = image_manifest(
            self.data.path,
            path_column=self.data.path_column,
            target=self.data.target,
            patient_id=self.data.patient_id,
            label_columns=self.data.label_columns,
            missing_files="keep" if self.data.on_bad_file == "skip" else "error",
        )
        return [Path(p) for p in manifest["path"] if Path(p).exists()]

    def _plan_channels(self, log: Log) -> dict[str, int]:
        """Every image's channel count from its header: a mix of grey and RGB is converted to the majority by a
        declared rule (RGB → grey: ITU-R BT.601 luma; grey → RGB: the grey channel repeated), written into the
        config (``preprocess.channels``, so prediction converts the same way) and counted, as are dropped alpha
        channels. Returns the counts (the run's repairs)."""
        paths = self._manifest_paths()
        log(f"reading the channel count of {len(paths)} image header(s)")
        counts: dict[int, int] = {}
        alpha = 0
        for path in paths:
            try:
                channels, has_alpha = image_channels(path, format=self.data.format)
            except MedDLError:
                continue  # a bad file is reported (or skipped) by the check that follows
            counts[channels] = counts.get(channels, 0) + 1
            alpha += int(has_alpha)
        wanted = self.prep.channels
        if wanted is None and len(counts) > 1 and set(counts) <= {1, 3}:
            wanted = 1 if counts.get(1, 0) >= counts.get(3, 0) else 3
            self.prep.channels = wanted
            self.derived_["preprocess.channels"] = {
                "value": wanted,
                "why": f"{counts.get(1, 0)} grey and {counts.get(3, 0)} RGB images: all converted to the majority, "
                f"{_CHANNEL_NAMES[wanted]}",
            }
            self.pipeline = ImagePipeline(self.prep, spatial_dims=self.data.spatial_dims, seed=self.config.train.seed)
        elif wanted is None and len(counts) > 1:
            raise MedDLError(
                f"{self.data.path}: the images have different channel counts ({dict(sorted(counts.items()))}); "
                "set preprocess.channels (1 grey or 3 RGB) to convert them"
            )
        repairs = {"alpha (transparency) channels dropped": alpha}
        if wanted == 1:
            repairs["RGB images converted to grey"] = counts.get(3, 0)
        elif wanted == 3:
            repairs["grey images converted to RGB"] = counts.get(1, 0)
        return repairs

    def _prepared(self, items: ImageItems) -> Prepared:
        return Prepared(
            inputs=items,
            target=items.target,
            classes=items.classes,
            sample_ids=[_source_name(s) for s in items.sources],
            patient_ids=items.patient_ids,
            n_read=items.n_read,
            dropped=dict(items.dropped),
            notes=[
                f"{self.data.spatial_dims}D images, preprocessed to {'×'.join(map(str, self.prep.size))}",
                *[f"skipped {p}: {r}" for p, r in items.skipped[:20]],
            ],
            given_splits=items.given_splits,
            extra={"items": items},
        )

    def _file_check(self) -> tuple[Callable[[str], str | None], str]:
        """How every image file is checked before the split, and the progress message for it.

        * With the preprocessing cache (the default), each file is read, decoded and preprocessed into the cache:
          every problem is found before training, and the first epoch reads the cache — one read per file.
        * Without it, under ``on_bad_file: skip``, each file is decoded in full (every bad file must be found and
          listed before the split), and read again in training: nothing keeps the decoded image.
        * Without it, under ``on_bad_file: error``, only headers are checked (:func:`check_readable`); a file
          that passes but cannot be decoded stops training with the reader's error, naming the file.
        """
        fmt = self.data.format
        if self.cache is not None:
            pipeline, cache, measures = self.pipeline, self.cache, self._raw_measures

            def reader(path: Path, format: str) -> Any:  # the one read of each file: describe it on the way
                volume = image_io.read_image(path, format=format)  # type: ignore[arg-type]
                measures[str(path)] = _volume_measures(volume.array, volume.spacing)
                return volume

            def read_into_cache(path: str) -> str | None:
                one = ImageDataset(
                    [ImageItem(Path(path), fmt)], np.zeros(1), pipeline, train=False, cache=cache, reader=reader
                )
                return one.check_item(0)

            return read_into_cache, "reading and preprocessing {n} image(s) into the cache (training reads the cache)"
        if self.data.on_bad_file == "skip":
            return (
                lambda path: check_readable(path, fmt, decode=True),
                "decoding {n} image(s) to find unreadable ones (preprocess.cache is off: they are read again in "
                "training)",
            )
        return lambda path: check_readable(path, fmt), "checking {n} image header(s)"

    def profile(self, prepared: Prepared, index: np.ndarray) -> dict[str, np.ndarray]:
        """Per-image intensity (mean, SD), size and spacing along each axis, read raw (before preprocessing), of up
        to ``N_SHIFT_IMAGES`` images of ``index``."""
        return _image_profile(prepared.extra["items"], index, self.data.format, self._raw_measures)

    def _dataset(self, items: ImageItems, index: np.ndarray, target: np.ndarray, *, train: bool) -> ImageDataset:
        sources: Any
        if items.arrays is not None:
            assert items.given_splits is not None, "an npz data set carries its splits"
            splits = items.given_splits
            split = str(splits[index[0]]) if len(index) else "test"
            whole_split = np.array_equal(index, np.flatnonzero(splits == split))
            if whole_split:  # the split's own rows, keyed in the cache by file and row
                sources = ArraySource(
                    items.arrays[split],
                    spatial_dims=self.data.spatial_dims,
                    source=str(self.data.path),
                    name=split,
                    channels_first=True,
                )
            else:  # rows of several splits (external evaluation) or a few rows: the arrays themselves
                first = {name: int(np.argmax(splits == name)) for name in np.unique(splits)}
                sources = [items.arrays[str(splits[i])][i - first[splits[i]]] for i in index]
        else:
            sources = [ImageItem(Path(items.sources[i]), self.data.format) for i in index]
        return ImageDataset(sources, target, self.pipeline, train=train, cache=self.cache, seed=self.config.train.seed)

    def training_dataset(self, prepared: Prepared, index: np.ndarray, target: np.ndarray, *, train: bool) -> Dataset:
        return self._dataset(prepared.extra["items"], index, target, train=train)

    def model_arguments(self, inputs: ImageItems) -> dict[str, Any]:
        first = np.flatnonzero(inputs.given_splits == "validation")[:1] if inputs.given_splits is not None else None
        index = first if first is not None and len(first) else np.array([0])
        image, _ = self._dataset(inputs, index, inputs.target[index], train=False)[0]
        arguments: dict[str, Any] = {"spatial_dims": self.data.spatial_dims, "in_channels": int(image.shape[0])}
        arch, params = self.config.model.arch, self.config.model.params
        if takes_argument(arch, "image_size"):
            arguments["image_size"] = list(params.get("image_size", self.prep.size))
        return arguments

    @torch.no_grad()
    def prepared_outputs(self, model: torch.nn.Module, prepared: Prepared, index: np.ndarray) -> np.ndarray:
        dataset = self._dataset(prepared.extra["items"], index, prepared.target[index], train=False)
        model.eval()
        device = next(model.parameters()).device
        out = []
        for start in range(0, len(dataset), 256):  # batch by batch: a split's volumes need not fit in memory at once
            batch = torch.stack([dataset[i][0] for i in range(start, min(start + 256, len(dataset)))])
            out.append(model(batch.to(device)).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 1), dtype=np.float32)

    @torch.no_grad()
    def outputs(self, model: torch.nn.Module, inputs: Any) -> np.ndarray:
        """Outputs of preprocessed images: a list of (C, *size) tensors or arrays, or one (N, C, *size) array."""
        return self._outputs_of(model, [torch.as_tensor(image) for image in inputs])

    def input_array(self, prepared: Prepared, index: np.ndarray) -> np.ndarray:
        """The preprocessed images of the rows ``index`` as one (N, C, *size) float32 array (held in memory)."""
        dataset = self._dataset(prepared.extra["items"], index, prepared.target[index], train=False)
        return np.stack([dataset[i][0].numpy() for i in range(len(dataset))])  # (N, C, *size)

    def corruptions(self) -> list[Corruption]:
        """On the preprocessed (normalised) images: acquisition noise, blur, lost contrast, a brightness offset,
        rotation and a coarser resolution. Noise and brightness are in SDs of each image's own intensity (noise of
        0.25 SD: a signal-to-noise ratio of 4)."""
        dims = self.data.spatial_dims
        plane = "in the axial plane (last two axes)" if dims == 3 else "in plane"

        def image_sd(x: np.ndarray) -> np.ndarray:  # (N, 1, ...): each image's intensity SD
            return x.std(axis=tuple(range(1, x.ndim)), keepdims=True)

        return [
            Corruption(
                "noise",
                "Gaussian acquisition noise",
                "noise SD in SDs of the image's intensity",
                (0.1, 0.25, 0.5),
                lambda x, k, rng: gaussian_noise(x, k * image_sd(x), rng),
            ),
            Corruption(
                "blur",
                "Blur (defocus, motion, a softer reconstruction kernel)",
                "Gaussian sigma in pixels of the model's grid",
                (0.5, 1.0, 2.0),
                lambda x, k, rng: gaussian_blur(x, k, spatial_dims=dims),
            ),
            Corruption(
                "contrast",
                "Lower contrast (exposure, window settings)",
                "share of the contrast lost around the image's mean",
                (0.25, 0.5, 0.75),
                lambda x, k, rng: scale_contrast(x, 1.0 - k),
            ),
            Corruption(
                "brightness",
                "Brighter image (an intensity offset)",
                "offset in SDs of the image's intensity",
                (0.25, 0.5, 1.0),
                lambda x, k, rng: (x + k * image_sd(x)).astype(x.dtype),
            ),
            Corruption(
                "rotation",
                f"Rotation {plane}, clockwise or anticlockwise at random (patient positioning)",
                "degrees",
                (5.0, 10.0, 20.0),
                lambda x, k, rng: rotate(x, k, rng),
            ),
            Corruption(
                "resolution",
                "Lower resolution (a coarser detector or thicker slices), brought back to the model's grid",
                "resolution divided by",
                (2.0, 3.0, 4.0),
                lambda x, k, rng: lower_resolution(x, k, spatial_dims=dims),
            ),
        ]

    def model_inputs(self, inputs: Any) -> list[torch.Tensor]:
        """Preprocessed images as they are; image files are read and preprocessed (errors name the file)."""
        return [image if isinstance(image, torch.Tensor) else self.tensor(image) for image in inputs]

    @staticmethod
    def _outputs_of(model: torch.nn.Module, images: list[torch.Tensor], batch_size: int = 256) -> np.ndarray:
        model.eval()
        device = next(model.parameters()).device
        out = [
            model(laid_out(model, torch.stack(images[i : i + batch_size]).to(device))).float().cpu()
            for i in range(0, len(images), batch_size)
        ]
        return torch.cat(out).numpy() if out else np.zeros((0, 1), dtype=np.float32)

    # -- explanations ----------------------------------------------------------------------------------
    def heat(self, model: torch.nn.Module, images: torch.Tensor, targets: Any, method: str | None = None) -> np.ndarray:
        """Heat maps of ``images`` (N, C, *size) by ``method`` (default ``explain.heatmap``)."""
        x = self.config.explain
        if (method or x.heatmap) == "occlusion":
            return occlusion_map(model, images, targets, window=x.occlusion_window, stride=x.occlusion_stride)
        return grad_cam(model, images, targets)

    def _heat_targets(self, scores: np.ndarray) -> Any:
        return 0 if self.config.task in {"binary", "multilabel"} else np.argmax(np.atleast_2d(scores), axis=1)

    def heatmap(self, model: torch.nn.Module, image: torch.Tensor, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The heat map of one preprocessed image; returns (the 2D slice shown, its heat map)."""
        target = 0 if self.config.task == "binary" else int(np.argmax(score))
        heat = self.heat(model, image.unsqueeze(0), target)[0]
        return self._shown(image.numpy(), heat)

    def _shown(self, array: np.ndarray, heat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.data.spatial_dims == 3:
            k = best_slice(heat)
            return array[:, k], heat[k]
        return array, heat

    def explain(
        self,
        model: torch.nn.Module,
        prepared: Prepared,
        inputs: Any,
        test_index: np.ndarray,
        scores: np.ndarray,
        out: Path,
    ) -> dict[str, Any]:
        """A heat map for every test case (PNG in ``heatmaps/``), examples for the report, and the pointing game
        on lesion masks — for both Grad-CAM and occlusion, so the two can be compared on the same cases."""
        cfg = self.config
        items: ImageItems = prepared.extra["items"]
        method = cfg.explain.heatmap
        heat_dir = out / "heatmaps"
        heat_dir.mkdir(exist_ok=True)
        test_data = self._dataset(items, test_index, items.target[test_index], train=False)
        examples: list[dict[str, Any]] = []
        order = np.argsort(-(scores if scores.ndim == 1 else scores.max(axis=1)))
        show = set(order[: N_EXAMPLES // 2].tolist()) | set(order[-(N_EXAMPLES // 2) :].tolist())
        images = torch.stack([test_data[position][0] for position in range(len(test_index))])  # (N, C, *size)
        heats = self.heat(model, images, self._heat_targets(scores), method)  # one batched pass over the test split
        lesion_rows: list[int] = []
        lesion_masks: list[np.ndarray] = []
        for position, item_index in enumerate(test_index):
            mask_path = items.mask_paths[item_index]
            mask = None
            if mask_path is not None and self.prep.resize_mode == "resize":
                mask = _mask_on_grid(read_image(mask_path).array, self.prep.size)
                if mask.any():
                    lesion_rows.append(position)
                    lesion_masks.append(mask)
            array, heat_2d = self._shown(images[position].numpy(), heats[position])
            source = _shown_name(items.sources[item_index])
            png = overlay_png(array, heat_2d, heat_dir / f"case_{position:04d}.png", title=source, mask=mask)
            if position in show:
                label = items.classes[int(items.target[item_index])] if cfg.task != "multilabel" else "—"
                described = f"P({items.classes[-1]}) = {float(scores[position]):.2f}" if cfg.task == "binary" else ""
                examples.append(
                    {
                        "title": f"Test case {position + 1}: {source}",
                        "caption": f"true label {label}; {described}; heat map: {method}",
                        "overlay_png": base64.b64encode(png).decode("ascii"),
                    }
                )
        if not lesion_rows or cfg.task != "binary":
            return {"examples": examples}
        masks = np.stack(lesion_masks)
        rows = np.array(lesion_rows)
        other = "gradcam" if method == "occlusion" else "occlusion"
        # A peak within one pixel of a small lesion counts (a heat map's grid is coarser than the image's).
        games = {
            method: pointing_game(heats[rows], masks, tolerance=1),
            other: pointing_game(self.heat(model, images[rows], 0, other), masks, tolerance=1),
        }
        method_note = f"{method}, peak within 1 pixel of the lesion mask"
        localization = {"method": method_note, **games[method], "by_method": games}
        return {"examples": examples, "localization": localization}

    def input_spec(self, prepared: Prepared) -> dict[str, Any]:
        channels = self.model_arguments(prepared.extra["items"])["in_channels"]
        return {"shape": [int(channels), *map(int, self.prep.size)], "dtype": "float32"}

    def export_description(self) -> dict[str, Any]:
        return {
            "note": "One preprocessed image per row (channels first): read, resampled, windowed and resized by "
            "MedDL's fitted pipeline (preprocess.json in the bundle); bundle.modality.tensor(path) gives it."
        }

    def warnings(self, prepared: Prepared, test_index: np.ndarray) -> list[str]:
        return [f"skipped {path}: {reason}" for path, reason in prepared.extra["items"].skipped]

    def splits_table(self, prepared: Prepared, splits: np.ndarray) -> pd.DataFrame:
        items: ImageItems = prepared.extra["items"]
        return pd.DataFrame(
            {
                "row": items.rows,
                "path": [_source_name(s) for s in items.sources],
                "patient_id": items.patient_ids if items.patient_ids is not None else None,
                "split": splits,
            }
        )

    # -- bundle -------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return self.pipeline.to_state()

    def save_state(self, folder: Path) -> list[str]:
        from meddl._json import clean_json

        (folder / "preprocess.json").write_text(json.dumps(clean_json(self.state()), indent=2) + "\n")
        return ["preprocess.json"]

    def bundle_info(self, prepared: Prepared) -> dict[str, Any]:
        return {
            **super().bundle_info(prepared),
            "spatial_dims": self.data.spatial_dims,
            "image_format": self.data.format,
        }

    @classmethod
    def from_state(cls, config: ExperimentConfig, state: dict[str, Any]) -> ImageModality:
        modality = cls(config)
        modality.pipeline = ImagePipeline.from_state(state, ImagePreprocessConfig)
        return modality

    # -- prediction ---------------------------------------------------------------------------------
    def tensor(self, source: str | Path) -> torch.Tensor:
        """One preprocessed image (C, *size) from a file or DICOM series folder."""
        return self._tensor_and_note(source)[0]

    def _tensor_and_note(self, source: str | Path) -> tuple[torch.Tensor, str]:
        """One preprocessed image and what was changed to fit the model (channels converted, alpha dropped)."""
        volume = read_image(source, format=self.info.get("image_format", self.data.format))
        self._last_measures = _volume_measures(volume.array, volume.spacing)
        trained = self.pipeline.config.channels or self.info.get("data_arguments", {}).get("in_channels")
        have = volume.channels
        changes = ["alpha channel dropped"] if volume.meta.get("alpha_dropped") else []
        if trained is not None and have != trained:
            if self.pipeline.config.channels is None or have not in (1, 3):
                raise MedDLError(
                    f"{source}: the image has {have} channel(s) but the model was trained on {trained} "
                    f"({_CHANNEL_NAMES.get(int(trained), 'channels')}); convert it first"
                )
            changes.append(f"converted {_CHANNEL_NAMES[have]} → {_CHANNEL_NAMES[int(trained)]}")
        return torch.from_numpy(self.pipeline.deterministic(volume)), "; ".join(changes)

    def read_for_prediction(self, source: Any) -> PredictionInputs:
        """Every image of a file, folder or manifest; an image that cannot be read gets a note, not a row."""
        if isinstance(source, list | tuple):
            sources = [Path(s) for s in source]
        else:
            sources = image_sources(Path(source), self.data.spatial_dims)
        images, notes = [], []
        usable_list, measures = [], []
        for path in sources:
            try:
                image, note = self._tensor_and_note(path)
                images.append(image)
                notes.append(note)
                usable_list.append(True)
                measures.append(self._last_measures)
            except MedDLError as exc:
                notes.append(f"not scored: {exc}")
                usable_list.append(False)
        usable = np.array(usable_list, dtype=bool)
        return PredictionInputs(
            inputs=images,
            ids=[str(s) for s in sources],
            notes=notes,
            usable=usable,
            columns={"path": sources},
            extra={"measures": measures},
        )

    def case_profile(self, cases: PredictionInputs) -> dict[str, np.ndarray]:
        """Raw intensity of each scorable image (size and spacing are the preprocessing's business)."""
        measures = cases.extra.get("measures") or []
        names = ("intensity mean", "intensity SD")
        return {name: np.array([m[name] for m in measures]) for name in names} if measures else {}

    def explain_cases(
        self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray, out: Path | None
    ) -> list[Any]:
        """A heat-map overlay PNG per image (``explain.heatmap``), in ``out``."""
        assert out is not None, "heat maps are written to a folder"
        written = []
        for j, (image, case_id) in enumerate(zip(cases.inputs, np.asarray(cases.ids)[cases.usable], strict=True)):
            shown, heat = self.heatmap(model, image, np.atleast_1d(scores[j]))
            target = out / f"{int(np.flatnonzero(cases.usable)[j]):05d}_{Path(str(case_id)).name.split('.')[0]}.png"
            overlay_png(shown, heat, target, title=Path(str(case_id)).name)
            written.append(str(target))
        return written

    def explain_file(self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray, out: Path) -> str:
        """``meddl explain`` of one image: its heat-map overlay written to ``out`` (a ``.png``)."""
        self._one_image(cases, out, "the heat map", "an image model")
        shown, heat = self.heatmap(model, cases.inputs[0], np.atleast_1d(scores[0]))
        overlay_png(shown, heat, out, title=Path(str(cases.ids[0])).name)
        return f"wrote the heat map of {cases.ids[0]} to {out}"

    @staticmethod
    def _one_image(cases: PredictionInputs, out: Path, picture: str, model: str) -> None:
        """What ``meddl explain`` of an image model needs: one readable image and a ``.png`` to draw it in."""
        if out.suffix.lower() != ".png":
            raise MedDLError(f"--out {out}: {picture} is a PNG image; give a file name ending in .png")
        if len(cases.ids) == 1 and not cases.usable[0]:
            raise MedDLError(cases.notes[0].removeprefix("not scored: "))
        if len(cases.ids) != 1:
            raise MedDLError(f"`meddl explain` of {model} takes one image; {len(cases.ids)} found")

    def request_schema(self) -> dict[str, Any]:
        return {**super().request_schema(), "spatial_dims": self.data.spatial_dims}

    # -- external evaluation ----------------------------------------------------------------------------
    def load_external(self, path: Path, log: Log) -> Prepared:
        data_config = self.data.model_copy(update={"path": Path(path), "on_bad_file": "error"})
        classes = list(self.info.get("classes") or []) or None
        items = load_image_items(data_config, self.config.task, known_classes=classes)
        self.cache = None  # new files: read and preprocess each (the training cache holds other images)
        return self._prepared(items)


_CHANNEL_NAMES = {1: "grey", 3: "RGB"}


def _volume_measures(array: np.ndarray, spacing: Any) -> dict[str, float]:
    """What the shift report compares of one raw image: intensity, size and spacing per axis."""
    values = {"intensity mean": float(array.mean()), "intensity SD": float(array.std())}
    for axis, size in enumerate(array.shape[1:]):
        values[f"size axis {axis}"] = float(size)
    for axis, step in enumerate(spacing or ()):
        values[f"spacing axis {axis} (mm)"] = float(step)
    return values


def _image_profile(
    items: ImageItems, index: np.ndarray, fmt: str, known: dict[str, dict[str, float]] | None = None
) -> dict[str, np.ndarray]:
    """Per-image intensity (mean, standard deviation), size and spacing along each axis of up to
    ``N_SHIFT_IMAGES`` images of ``index`` (raw, before preprocessing); ``known`` holds images already described
    while they were read (the check before the split), which are not read again."""
    measures: dict[str, list[float]] = {}
    chosen = index[np.linspace(0, len(index) - 1, min(len(index), N_SHIFT_IMAGES)).astype(int)] if len(index) else []
    for i in chosen:
        if items.arrays is not None:
            assert items.given_splits is not None, "an npz data set carries its splits"
            split = str(items.given_splits[i])
            position = int(np.sum(items.given_splits[:i] == split))
            values = _volume_measures(items.arrays[split][position], None)
        elif known is not None and str(items.sources[i]) in known:
            values = known[str(items.sources[i])]
        else:
            try:
                volume = image_io.read_image(items.sources[i], format=fmt)  # type: ignore[arg-type]
            except MedDLError:
                continue
            values = _volume_measures(volume.array, volume.spacing)
        for name, value in values.items():
            measures.setdefault(name, []).append(value)
    return {name: np.asarray(values) for name, values in measures.items()}


def _source_name(source: Any) -> str:
    return source if isinstance(source, str) else f"{source[0]}#{source[1]}[{source[2]}]"


def _cache(prep: ImagePreprocessConfig, data: ImageDataConfig, pipeline: ImagePipeline) -> ImageCache | None:
    """The on-disk cache of preprocessed images, in a folder named by the preprocessing settings' hash."""
    if not prep.cache:
        return None
    root = prep.cache_dir or (data.path.parent if data.path.is_file() else data.path) / ".meddl-cache"
    return ImageCache.for_pipeline(root, pipeline)


def _mask_on_grid(mask: np.ndarray, size: list[int]) -> np.ndarray:
    """A lesion mask (C, *spatial) mapped to the preprocessed grid (nearest neighbour, as ``resize`` maps the
    whole field of view onto ``size``)."""
    tensor = torch.from_numpy((mask.max(axis=0) > 0).astype(np.float32))[None, None]  # (1, 1, *spatial)
    resized = torch.nn.functional.interpolate(tensor, size=tuple(size), mode="nearest")
    return resized[0, 0].numpy().astype(np.uint8)


def image_sources(path: Path, spatial_dims: int) -> list[Path]:
    """What to predict on: one file, a manifest CSV's ``path`` column, or a folder's images.

    In a folder, each image file is one case; for 3D models a folder of DICOM slices is one series, and each
    sub-folder of DICOM slices is one series.
    """
    if not path.exists():
        raise MedDLError(f"not found: {path}")
    if path.is_file() and path.suffix.lower() in {".csv", ".tsv"}:
        from meddl.io.tables import read_table

        manifest = read_table(path)
        if "path" not in manifest.columns:
            raise MedDLError(f"{path}: a manifest needs a 'path' column")
        return [(path.parent / str(p)).resolve() for p in manifest["path"]]
    if path.is_file():
        return [path]
    entries = sorted(path.iterdir())
    dicom_files = [p for p in entries if p.is_file() and is_dicom_file(p)]
    if spatial_dims == 3 and dicom_files:
        return [path]
    sources: list[Path] = []
    for entry in entries:
        if entry.is_dir():
            if any(is_dicom_file(p) for p in entry.iterdir() if p.is_file()) and spatial_dims == 3:
                sources.append(entry)
            else:
                sources += image_sources(entry, spatial_dims)
        elif entry.suffix.lower() in IMAGE_SUFFIXES or entry.name.endswith(".nii.gz") or is_dicom_file(entry):
            sources.append(entry)
    if not sources:
        raise MedDLError(f"{path}: no image files found")
    return sources


def _shown_name(source: Any) -> str:
    """How a report names an image: its file (or DICOM series folder) name, or ``file.npz[split #i]``."""
    if isinstance(source, tuple):
        path, split, index = source
        return f"{Path(str(path)).name}[{split} #{index}]"
    return Path(str(source)).name

"""The medical-image pipeline: files → patient-level split → MONAI preprocessing (cached) → CNN → evaluate →
Grad-CAM heat maps → report → bundle.

Images are read lazily, one item at a time, through an on-disk cache of preprocessed arrays keyed by a hash of
the preprocessing settings, so a data set larger than memory trains with bounded memory. Before the split every
file is checked (``data.on_bad_file``); with the cache, the check is the one read of each file: it decodes and
preprocesses the image into the cache, and training reads the cache (see ``ImagePipelineRun._file_check``).
"""

from __future__ import annotations

import base64
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from meddl import __version__
from meddl.bundle import BUNDLE_FORMAT, save_weights
from meddl.config import ExperimentConfig, ImageDataConfig, ImagePreprocessConfig
from meddl.data import encode_target, split_assignments
from meddl.data.image_dataset import ArraySource, ImageCache, ImageDataset, ImageItem
from meddl.errors import MedDLError
from meddl.evaluate import choose_threshold, evaluate_predictions
from meddl.explain.images import best_slice, grad_cam, occlusion_map, overlay_png, pointing_game
from meddl.io.images import check_readable, image_manifest, read_image, read_npz
from meddl.models import build_model
from meddl.models.registry import _constructor
from meddl.pipelines.common import (
    RunResult,
    clean_json,
    external_evaluation,
    finish_bundle,
    now_utc,
    prepare_run_folder,
    trainer_settings,
    validation_metrics,
    write_run_metrics,
)
from meddl.preprocess import class_weights
from meddl.preprocess.images import ImagePipeline
from meddl.train import (
    Trainer,
    make_loss,
    output_size,
    scores_from_outputs,
    seed_everything,
)

__all__ = ["ImageItems", "ImagePipelineRun", "evaluate_external_image", "load_image_items"]

N_EXAMPLES = 8


@dataclass
class ImageItems:
    """Every usable image of a data set: what to read, its label, its patient and (npz) its given split."""

    sources: list[Any]  # paths (files or DICOM series folders) or (npz path, split, index) keys
    arrays: dict[str, np.ndarray] | None  # npz: split name → (N, C, *spatial) images; else None
    target: np.ndarray
    classes: list[str]
    patient_ids: np.ndarray | None
    given_splits: np.ndarray | None
    rows: np.ndarray
    mask_paths: list[str | None]
    n_read: int
    dropped: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _encode_multilabel(frame: pd.DataFrame, columns: list[str], source: str) -> np.ndarray:
    values = frame[columns].apply(pd.to_numeric, errors="coerce")
    bad = values.isna() | ~values.isin([0, 1])
    if bad.to_numpy().any():
        row, column = next((r, c) for r in bad.index for c in columns if bad.loc[r, c])
        raise MedDLError(
            f"{source}: multilabel column {column!r} must hold 0 or 1, got {frame.loc[row, column]!r} (row {row})"
        )
    return values.to_numpy(dtype=np.int64)


def _beside(manifest: Path, value: str) -> Path:
    """A path from a manifest, relative to the manifest's folder unless absolute."""
    candidate = Path(value)
    return candidate if candidate.is_absolute() else (manifest.parent / candidate).resolve()


def load_image_items(
    data: ImageDataConfig,
    task: str,
    *,
    log: Any = None,
    check: Callable[[str], str | None] | None = None,
    checking: str = "checking {n} image header(s)",
) -> ImageItems:
    """Read the manifest (or npz), encode labels, check every file can be read (skip or fail).

    Args:
        data: the experiment's ``data`` section.
        task: the experiment's task.
        log: optional ``callable(str)`` for progress messages.
        check: ``path -> reason or None``, run on every image of a manifest; default the header-level
            :func:`~meddl.io.images.check_readable` (nothing decoded: a file that only fails to decode is
            reported by the reader, naming it, when it is loaded).
        checking: the progress message before the check (``{n}``: the number of images).
    """
    say = log or (lambda message: None)
    check = check or (lambda item: check_readable(item, data.format))
    path = data.path
    source = path.name
    if data.format == "npz" or path.suffix.lower() == ".npz":
        splits = read_npz(path, data.spatial_dims)
        arrays, sources, labels, given = {}, [], [], []
        for split, (images, y) in splits.items():
            arrays[split] = images
            sources += [(str(path), split, i) for i in range(len(images))]
            labels.append(y)
            given += [split] * len(images)
        y_all = np.concatenate(labels)
        if task == "multilabel":
            target, classes = (
                y_all.astype(np.int64),
                list(data.label_columns or [f"label_{k}" for k in range(y_all.shape[1])]),
            )
        else:
            flat = pd.Series(y_all.reshape(len(y_all), -1)[:, 0])
            target, classes = encode_target(flat, task, data.positive_label, data.classes, "label", source)
        n = len(sources)
        return ImageItems(
            sources, arrays, target, classes, None, np.array(given, dtype=object), np.arange(1, n + 1), [None] * n, n
        )

    manifest = image_manifest(
        path,
        path_column=data.path_column,
        target=data.target,
        patient_id=data.patient_id,
        label_columns=data.label_columns,
    )
    if path.is_file() and "mask_path" not in manifest.columns:
        # Lesion masks (optional) score the heat maps; the manifest reader keeps only what it needs, so take
        # them from the CSV by row.
        from meddl.io.tables import read_table

        table = read_table(path)
        if "mask_path" in table.columns and "row" in manifest.columns:
            manifest = manifest.assign(mask_path=table["mask_path"].reindex(manifest["row"].to_numpy()).to_numpy())
    n_read = len(manifest)
    dropped: dict[str, int] = {}
    skipped: list[tuple[str, str]] = []
    say(checking.format(n=n_read))
    keep = np.ones(n_read, dtype=bool)
    for i, item in enumerate(manifest["path"]):
        reason = check(str(item))
        if reason is not None:
            if data.on_bad_file == "error":
                raise MedDLError(f"{item}: {reason} (set data.on_bad_file: skip to leave such files out)")
            keep[i] = False
            skipped.append((str(item), reason))
    if skipped:
        dropped["unreadable image files (data.on_bad_file: skip)"] = len(skipped)
    manifest = manifest.loc[keep]
    label_column = "label" if "label" in manifest.columns else data.target
    if task == "multilabel":
        columns = list(data.label_columns or [])
        target, classes = _encode_multilabel(manifest, columns, source), columns
    else:
        has_label = manifest[label_column].notna().to_numpy()
        dropped["missing label"] = int((~has_label).sum())
        manifest = manifest.loc[has_label]
        target, classes = encode_target(
            manifest[label_column], task, data.positive_label, data.classes, data.target, source
        )
    if manifest.empty:
        raise MedDLError(f"{source}: no readable, labelled image left")
    patients = manifest["patient_id"].astype(str).to_numpy() if "patient_id" in manifest.columns else None
    masks = manifest["mask_path"].tolist() if "mask_path" in manifest.columns else [None] * len(manifest)
    rows = manifest["row"].to_numpy() if "row" in manifest.columns else np.arange(1, len(manifest) + 1)
    return ImageItems(
        [str(p) for p in manifest["path"]],
        None,
        target,
        classes,
        patients,
        None,
        rows,
        [None if (m is None or (isinstance(m, float) and np.isnan(m))) else str(_beside(path, str(m))) for m in masks],
        n_read,
        dropped,
        skipped,
    )


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


class ImagePipelineRun:
    """Runs one image experiment (``meddl.Experiment`` dispatches here for ``data.kind: image``)."""

    def __init__(self, config: ExperimentConfig) -> None:
        assert isinstance(config.data, ImageDataConfig) and isinstance(config.preprocess, ImagePreprocessConfig), (
            "ImagePipelineRun needs data.kind: image"
        )
        self.config = config
        self.data: ImageDataConfig = config.data
        self.prep: ImagePreprocessConfig = config.preprocess
        if len(self.prep.size) != self.data.spatial_dims:
            raise MedDLError(
                f"preprocess.size has {len(self.prep.size)} value(s) but data.spatial_dims is {self.data.spatial_dims}"
            )

    # -- datasets -------------------------------------------------------------------------------
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
            pipeline, cache = self.pipeline, self.cache

            def read_into_cache(path: str) -> str | None:
                one = ImageDataset([ImageItem(Path(path), fmt)], np.zeros(1), pipeline, train=False, cache=cache)
                return one.check_item(0)

            return read_into_cache, "reading and preprocessing {n} image(s) into the cache (training reads the cache)"
        if self.data.on_bad_file == "skip":
            return (
                lambda path: check_readable(path, fmt, decode=True),
                "decoding {n} image(s) to find unreadable ones (preprocess.cache is off: they are read again in "
                "training)",
            )
        return lambda path: check_readable(path, fmt), "checking {n} image header(s)"

    def _dataset(self, items: ImageItems, split: str, index: np.ndarray, *, train: bool) -> ImageDataset:
        sources: Any
        if items.arrays is not None:  # npz: the split's own rows, keyed in the cache by file and row
            sources = ArraySource(
                items.arrays[split],
                spatial_dims=self.data.spatial_dims,
                source=str(self.data.path),
                name=split,
                channels_first=True,
            )
        else:
            sources = [ImageItem(Path(items.sources[i]), self.data.format) for i in index]
        return ImageDataset(
            sources, items.target[index], self.pipeline, train=train, cache=self.cache, seed=self.config.train.seed
        )

    def run(self, out: str | Path | None = None, *, resume: bool = False, log: Any = None) -> RunResult:
        say = log or (lambda message: None)
        cfg = self.config
        out = Path(out) if out else Path("runs") / cfg.name
        context = prepare_run_folder(out, resume=resume, device=cfg.train.device)
        source = self.data.path.name

        say(f"reading {self.data.path}")
        # The deterministic preprocessing has no fitted state, so the pipeline and its cache exist before the split.
        self.pipeline = ImagePipeline(self.prep, spatial_dims=self.data.spatial_dims, seed=cfg.train.seed)
        self.cache = _cache(self.prep, self.data, self.pipeline)
        check, checking = self._file_check()
        items = load_image_items(self.data, cfg.task, log=say, check=check, checking=checking)
        if items.given_splits is not None:
            splits = items.given_splits
        else:
            split = self.data.split
            stratify = items.target if cfg.task != "multilabel" else items.target[:, 0]
            splits = split_assignments(
                stratify,
                task="binary" if cfg.task == "multilabel" else cfg.task,
                fractions=(split.train, split.validation, split.test),
                patient_ids=items.patient_ids,
                seed=cfg.train.seed,
                source=source,
            )
        index = {name: np.flatnonzero(splits == name) for name in ("train", "validation", "test")}
        say(", ".join(f"{k} {len(v)}" for k, v in index.items()) + " images")

        train_data = self._dataset(items, "train", index["train"], train=True)
        val_data = self._dataset(items, "validation", index["validation"], train=False)
        test_data = self._dataset(items, "test", index["test"], train=False)
        first, _ = val_data[0]
        in_channels = int(first.shape[0])

        weights = None
        if self.prep.imbalance == "class_weight" and cfg.task in {"binary", "multiclass"}:
            weights = class_weights(items.target[index["train"]], len(items.classes))
        seed_everything(cfg.train.seed)
        params = dict(cfg.model.params)
        if "image_size" in inspect.signature(_constructor(cfg.model.arch, "model").__init__).parameters:
            params.setdefault("image_size", list(self.prep.size))
        model = build_model(
            cfg.model.arch,
            params,
            spatial_dims=self.data.spatial_dims,
            in_channels=in_channels,
            out_channels=output_size(cfg.task, len(items.classes)),
        )
        monitor = cfg.monitor
        trainer = Trainer(
            model,
            make_loss(cfg.task, weights),
            trainer_settings(cfg),
            metric_fn=validation_metrics(cfg.task),
            checkpoint_dir=out / "checkpoints",
        )
        say(f"training {cfg.model.arch} on {len(train_data)} images ({trainer.device})")
        result = trainer.fit(train_data, val_data, resume=resume)
        model = trainer.module.eval()
        if not context.is_main:
            return RunResult(out, {"name": cfg.name, "task": cfg.task}, {})

        say("evaluating on the test split")
        val_scores = scores_from_outputs(cfg.task, trainer.predict(val_data))
        test_scores = scores_from_outputs(cfg.task, trainer.predict(test_data))
        threshold = None
        e = cfg.evaluate
        if cfg.task == "binary":
            threshold = float(
                choose_threshold(
                    items.target[index["validation"]],
                    val_scores,
                    e.threshold,
                    fixed=e.fixed_threshold,
                    target_sensitivity=e.target_sensitivity,
                )
            )
        groups = items.patient_ids[index["test"]] if items.patient_ids is not None else None
        evaluation_model = evaluate_predictions(
            cfg.task,
            items.target[index["test"]],
            test_scores,
            threshold=threshold,
            groups=groups,
            n_bootstrap=e.bootstrap,
            level=e.confidence_level,
            seed=cfg.train.seed,
            class_names=items.classes,
        )
        say(f"explaining test cases ({'occlusion' if cfg.explain.heatmap == 'occlusion' else 'Grad-CAM'})")
        examples, localization = self._explain(items, index["test"], test_data, test_scores, model, out)

        record = {
            "kind": "train",
            "name": cfg.name,
            "task": cfg.task,
            "created": now_utc(),
            "meddl_version": __version__,
            "config_yaml": cfg.to_yaml(),
            "data": self._data_summary(items, splits),
            "model": {
                "arch": cfg.model.arch,
                "params": params,
                "n_parameters": int(sum(p.numel() for p in model.parameters())),
            },
            "training": result.as_dict(monitor),
            "evaluation": {
                "split": "test",
                "threshold": threshold,
                "threshold_rule": e.threshold if cfg.task == "binary" else None,
                "model": evaluation_model,
                "baselines": {},
            },
            "examples": examples,
            "warnings": [f"skipped {path}: {reason}" for path, reason in items.skipped],
        }
        if localization is not None:
            record["localization"] = localization
        metrics = self._write_bundle(out, record, items, splits, model, params, in_channels, threshold)
        say(f"wrote {out}")
        return RunResult(out, record, metrics)

    # -- explanations --------------------------------------------------------------------------------
    def _heat(self, model: torch.nn.Module, images: torch.Tensor, targets: Any, method: str) -> np.ndarray:
        x = self.config.explain
        if method == "occlusion":
            return occlusion_map(model, images, targets, window=x.occlusion_window, stride=x.occlusion_stride)
        return grad_cam(model, images, targets)

    def _explain(
        self,
        items: ImageItems,
        test_index: np.ndarray,
        test_data: ImageDataset,
        scores: np.ndarray,
        model: torch.nn.Module,
        out: Path,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """A heat map for every test case (PNG in ``heatmaps/``), examples for the report, and the pointing game
        on lesion masks — for both Grad-CAM and occlusion, so the two can be compared on the same cases."""
        cfg = self.config
        method = cfg.explain.heatmap
        heat_dir = out / "heatmaps"
        heat_dir.mkdir(exist_ok=True)
        examples: list[dict[str, Any]] = []
        order = np.argsort(-(scores if scores.ndim == 1 else scores.max(axis=1)))
        show = set(order[: N_EXAMPLES // 2].tolist()) | set(order[-(N_EXAMPLES // 2) :].tolist())
        images = torch.stack([test_data[position][0] for position in range(len(test_index))])  # (N, C, *size)
        targets: Any = 0 if cfg.task in {"binary", "multilabel"} else np.argmax(scores, axis=1)
        heats = self._heat(model, images, targets, method)  # one batched pass over the test split
        lesion_rows: list[int] = []
        lesion_masks: list[np.ndarray] = []
        for position, item_index in enumerate(test_index):
            heat = heats[position]
            mask_path = items.mask_paths[item_index]
            if mask_path is not None and self.prep.resize_mode == "resize":
                mask = _mask_on_grid(read_image(mask_path).array, self.prep.size)
                if mask.any():
                    lesion_rows.append(position)
                    lesion_masks.append(mask)
            array = images[position].numpy()
            if self.data.spatial_dims == 3:
                k = best_slice(heat)
                array, heat_2d = array[:, k], heat[k]
            else:
                heat_2d = heat
            png = overlay_png(array, heat_2d, heat_dir / f"case_{position:04d}.png")
            if position in show:
                label = items.classes[int(items.target[item_index])] if cfg.task != "multilabel" else "—"
                score = scores[position]
                described = f"P({items.classes[-1]}) = {float(score):.2f}" if cfg.task == "binary" else ""
                examples.append(
                    {
                        "title": f"Test case {position + 1}",
                        "caption": f"true label {label}; {described}; heat map: {method}",
                        "overlay_png": base64.b64encode(png).decode("ascii"),
                    }
                )
        if not lesion_rows or cfg.task != "binary":
            return examples, None
        masks = np.stack(lesion_masks)
        rows = np.array(lesion_rows)
        other = "gradcam" if method == "occlusion" else "occlusion"
        # A peak within one pixel of a small lesion counts (a heat map's grid is coarser than the image's).
        games = {
            method: pointing_game(heats[rows], masks, tolerance=1),
            other: pointing_game(self._heat(model, images[rows], 0, other), masks, tolerance=1),
        }
        localization = {
            "method": f"{method}, peak within 1 pixel of the lesion mask",
            **games[method],
            "by_method": games,
        }
        return examples, localization

    # -- records ------------------------------------------------------------------------------------
    def _data_summary(self, items: ImageItems, splits: np.ndarray) -> dict[str, Any]:
        cfg = self.config
        summary: dict[str, Any] = {
            "path": str(self.data.path),
            "n_rows_read": items.n_read,
            "n_rows_used": len(items.target),
            "n_patients": len(np.unique(items.patient_ids)) if items.patient_ids is not None else None,
            "target": self.data.target,
            "classes": items.classes,
            "positive_label": items.classes[1] if cfg.task == "binary" else None,
            "dropped": dict(items.dropped),
            "splits": {name: int((splits == name).sum()) for name in ("train", "validation", "test")},
            "notes": [
                *([self.data.description] if self.data.description else []),
                f"{self.data.spatial_dims}D images, preprocessed to {'×'.join(map(str, self.prep.size))}",
                *[f"skipped {p}: {r}" for p, r in items.skipped[:20]],
            ],
        }
        if cfg.task in {"binary", "multiclass"}:
            summary["class_balance"] = {
                name: {
                    label: int(((splits == name) & (items.target == k)).sum()) for k, label in enumerate(items.classes)
                }
                for name in ("train", "validation", "test")
            }
        return summary

    def _write_bundle(
        self,
        out: Path,
        record: dict[str, Any],
        items: ImageItems,
        splits: np.ndarray,
        model: torch.nn.Module,
        params: dict[str, Any],
        in_channels: int,
        threshold: float | None,
    ) -> dict[str, Any]:
        cfg = self.config
        (out / "config.yaml").write_text(cfg.to_yaml())
        save_weights(model.cpu(), out / "model.safetensors")
        (out / "preprocess.json").write_text(json.dumps(self.pipeline.to_state(), indent=2) + "\n")
        info = {
            "format": BUNDLE_FORMAT,
            "kind": "image",
            "name": cfg.name,
            "task": cfg.task,
            "arch": cfg.model.arch,
            "params": params,
            "spatial_dims": self.data.spatial_dims,
            "in_channels": in_channels,
            "out_channels": output_size(cfg.task, len(items.classes)),
            "classes": items.classes,
            "target": self.data.target,
            "threshold": threshold,
            "threshold_rule": record["evaluation"]["threshold_rule"],
            "image_format": self.data.format,
            "meddl_version": __version__,
            "created": record["created"],
        }
        (out / "model.json").write_text(json.dumps(clean_json(info), indent=2) + "\n")
        pd.DataFrame(
            {
                "row": items.rows,
                "path": [s if isinstance(s, str) else f"{s[0]}#{s[1]}[{s[2]}]" for s in items.sources],
                "patient_id": items.patient_ids if items.patient_ids is not None else None,
                "split": splits,
            }
        ).to_csv(out / "splits.csv", index=False)
        metrics = write_run_metrics(out, record, localization=record.get("localization"))
        files = ["config.yaml", "model.json", "model.safetensors", "preprocess.json", "metrics.json", "splits.csv"]
        finish_bundle(out, record, files)
        return metrics


def evaluate_external_image(
    bundle_path: str | Path, data: str | Path, out: str | Path, *, n_bootstrap: int | None = None
) -> RunResult:
    """Evaluate an image bundle on another site's labelled images (a manifest or class folders)."""
    from meddl.image_bundle import load_image_bundle

    bundle = load_image_bundle(bundle_path)
    assert isinstance(bundle.config.data, ImageDataConfig)
    data_config = bundle.config.data.model_copy(update={"path": Path(data), "on_bad_file": "error"})
    items = load_image_items(data_config, bundle.task)
    scores = bundle.scores([s for s in items.sources])
    return external_evaluation(
        bundle,
        data,
        out,
        target=items.target,
        scores=scores,
        groups=items.patient_ids,
        n_read=items.n_read,
        dropped=items.dropped,
        n_bootstrap=n_bootstrap,
    )

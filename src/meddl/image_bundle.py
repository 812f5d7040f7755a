"""An image bundle: the CNN, its preprocessing (MONAI pipeline state as JSON) and threshold, verified on load.

It predicts on image files (DICOM, NIfTI, PNG/JPEG) and draws a Grad-CAM heat map for each; a file that cannot
be read is reported in the ``note`` column, never dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from meddl.bundle import BundleInfo, load_weights, verify_manifest
from meddl.config import ExperimentConfig, parse_config
from meddl.errors import MedDLError
from meddl.explain.images import best_slice, grad_cam, overlay_png
from meddl.io.images import IMAGE_SUFFIXES, is_dicom_file, read_image
from meddl.models import build_model
from meddl.preprocess.images import ImagePipeline
from meddl.train.objectives import scores_from_outputs

__all__ = ["ImageBundle", "image_sources", "load_image_bundle"]


@dataclass
class ImageBundle(BundleInfo):
    """A trained image model loaded from its run folder."""

    path: Path
    config: ExperimentConfig
    info: dict[str, Any]
    pipeline: ImagePipeline
    model: torch.nn.Module
    metrics: dict[str, Any]
    bundle_hash: str

    @property
    def spatial_dims(self) -> int:
        return int(self.info["spatial_dims"])

    def tensor(self, source: str | Path) -> torch.Tensor:
        """One preprocessed image (C, *size) from a file or DICOM series folder."""
        volume = read_image(source, format=self.info.get("image_format", "auto"))
        return torch.from_numpy(self.pipeline.deterministic(volume))

    @torch.no_grad()
    def _scores(self, batch: torch.Tensor) -> np.ndarray:
        self.model.eval()
        return scores_from_outputs(self.task, self.model(batch).float().numpy())

    def scores(self, sources: list[str | Path], batch_size: int = 32) -> np.ndarray:
        """Probabilities for every source, in order (errors name the file)."""
        out = []
        for start in range(0, len(sources), batch_size):
            batch = torch.stack([self.tensor(s) for s in sources[start : start + batch_size]])
            out.append(self._scores(batch))
        return np.concatenate(out) if out else np.zeros((0,))

    def heatmap(self, image: torch.Tensor, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grad-CAM for one preprocessed image; returns (the 2D slice shown, its heat map)."""
        target = 0 if self.task == "binary" else int(np.argmax(score))
        heat = grad_cam(self.model, image.unsqueeze(0), target)[0]
        array = image.numpy()
        if self.spatial_dims == 3:
            k = best_slice(heat)
            return array[:, k], heat[k]
        return array, heat

    def predict(self, sources: list[str | Path], *, heatmap_dir: Path | None = None) -> pd.DataFrame:
        """One row per source: probabilities, the label at the threshold, a note, and the heat-map file if asked."""
        rows = []
        if heatmap_dir is not None:
            heatmap_dir.mkdir(parents=True, exist_ok=True)
        for i, source in enumerate(sources):
            row: dict[str, Any] = {"path": str(source), "note": ""}
            try:
                image = self.tensor(source)
            except MedDLError as exc:
                row["note"] = f"not scored: {exc}"
                rows.append(row)
                continue
            score = self._scores(image.unsqueeze(0))[0]
            if self.task == "binary":
                row[f"probability_{self.classes[1]}"] = float(score)
                row["prediction"] = self.classes[1] if score >= float(self.threshold or 0.5) else self.classes[0]
            elif self.task == "multiclass":
                row.update({f"probability_{c}": float(p) for c, p in zip(self.classes, score, strict=True)})
                row["prediction"] = self.classes[int(np.argmax(score))]
            else:  # multilabel
                row.update({f"probability_{c}": float(p) for c, p in zip(self.classes, score, strict=True)})
                row["prediction"] = ";".join(c for c, p in zip(self.classes, score, strict=True) if p >= 0.5)
            if heatmap_dir is not None:
                shown, heat = self.heatmap(image, np.atleast_1d(score))
                target = heatmap_dir / f"{i:05d}_{Path(str(source)).name.split('.')[0]}.png"
                overlay_png(shown, heat, target)
                row["heatmap"] = str(target)
            rows.append(row)
        return pd.DataFrame(rows)

    def explain_file(self, source: str | Path, out: Path) -> Path:
        """Write the heat-map overlay PNG of one image."""
        image = self.tensor(source)
        score = self._scores(image.unsqueeze(0))[0]
        shown, heat = self.heatmap(image, np.atleast_1d(score))
        overlay_png(shown, heat, out)
        return out


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


def load_image_bundle(path: str | Path) -> ImageBundle:
    """Load and verify an image bundle (hashes first; nothing is unpickled)."""
    folder = Path(path)
    bundle_hash = verify_manifest(folder)
    info = json.loads((folder / "model.json").read_text())
    config = parse_config(yaml.safe_load((folder / "config.yaml").read_text()), source=str(folder / "config.yaml"))
    pipeline = ImagePipeline.from_state(json.loads((folder / "preprocess.json").read_text()))
    model = build_model(
        info["arch"],
        info["params"],
        spatial_dims=info["spatial_dims"],
        in_channels=info["in_channels"],
        out_channels=info["out_channels"],
    )
    load_weights(model, folder / "model.safetensors", info["arch"])
    model.eval()
    metrics = json.loads((folder / "metrics.json").read_text())
    return ImageBundle(folder, config, info, pipeline, model, metrics, bundle_hash)

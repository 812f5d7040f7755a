"""A bundle of an array kind (sequence, expression, signal, EHR): the network, its kind's fitted preprocessing
(JSON) and threshold, verified on load. It reads new cases in the format it was trained on; a case that cannot
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
from meddl.kinds.base import KindAdapter, PredictionInputs, adapter_for
from meddl.models import build_model
from meddl.train.objectives import scores_from_outputs

__all__ = ["ArrayBundle", "load_array_bundle"]


@dataclass
class ArrayBundle(BundleInfo):
    """A trained model of an array kind, loaded from its run folder."""

    path: Path
    config: ExperimentConfig
    info: dict[str, Any]
    adapter: KindAdapter
    state: dict[str, Any]
    model: torch.nn.Module
    metrics: dict[str, Any]
    bundle_hash: str

    @property
    def kind(self) -> str:
        return str(self.info["kind"])

    @property
    def target_scale(self) -> tuple[float, float] | None:
        scale = self.info.get("target_scale")
        return (float(scale[0]), float(scale[1])) if scale else None

    def read(self, path: str | Path) -> PredictionInputs:
        """New cases from a file, folder or manifest, in the format the model was trained on."""
        return self.adapter.read_for_prediction(Path(path))

    def scores(self, inputs: np.ndarray) -> np.ndarray:
        """Probabilities (or predicted values) for preprocessed inputs."""
        outputs = self.adapter.outputs(self.model, self.adapter.transform(inputs))
        return scores_from_outputs(self.task, outputs, self.target_scale)

    def predict(self, path: str | Path, *, explain_dir: Path | None = None) -> pd.DataFrame:
        """One row per case: id, probabilities (or the predicted value), the label at the threshold, a note, and
        with ``explain_dir`` the explanation written for each case."""
        return self.predict_cases(self.read(path), explain_dir=explain_dir)

    def predict_cases(self, cases: PredictionInputs, *, explain_dir: Path | None = None) -> pd.DataFrame:
        """As :meth:`predict`, for cases already read with :meth:`read` (so a caller can check them first)."""
        frame = pd.DataFrame({"id": cases.ids, "note": cases.notes})
        if not cases.usable.any():
            return frame
        scores = self.scores(cases.inputs)
        rows = np.flatnonzero(cases.usable)
        if self.task == "binary":
            frame[f"probability_{self.classes[1]}"] = np.nan
            frame.loc[rows, f"probability_{self.classes[1]}"] = scores
            threshold = float(self.threshold if self.threshold is not None else 0.5)
            frame["prediction"] = ""
            frame.loc[rows, "prediction"] = np.where(scores >= threshold, self.classes[1], self.classes[0])
        elif self.task in {"multiclass", "multilabel"}:
            for k, name in enumerate(self.classes):
                frame[f"probability_{name}"] = np.nan
                frame.loc[rows, f"probability_{name}"] = scores[:, k]
            frame["prediction"] = ""
            if self.task == "multiclass":
                frame.loc[rows, "prediction"] = [self.classes[int(k)] for k in np.argmax(scores, axis=1)]
            else:
                frame.loc[rows, "prediction"] = [
                    ";".join(c for c, p in zip(self.classes, row, strict=True) if p >= 0.5) for row in scores
                ]
        else:
            frame["prediction"] = np.nan
            frame.loc[rows, "prediction"] = scores
        if explain_dir is not None:
            explain_dir.mkdir(parents=True, exist_ok=True)
            explained = self.adapter.explain_cases(self.model, cases, scores, explain_dir)
            frame["explanation"] = ""
            frame.loc[rows, "explanation"] = explained
        return frame


def load_array_bundle(path: str | Path) -> ArrayBundle:
    """Load and verify a bundle of an array kind (hashes first; nothing is unpickled)."""
    folder = Path(path)
    bundle_hash = verify_manifest(folder)
    info = json.loads((folder / "model.json").read_text())
    config = parse_config(yaml.safe_load((folder / "config.yaml").read_text()), source=str(folder / "config.yaml"))
    state = json.loads((folder / "preprocess.json").read_text())
    adapter = adapter_for(info["kind"]).from_state(config, state)
    model = build_model(info["arch"], info["params"], **info["data_arguments"])
    load_weights(model, folder / "model.safetensors", info["arch"])
    model.eval()
    metrics = json.loads((folder / "metrics.json").read_text())
    return ArrayBundle(folder, config, info, adapter, state, model, metrics, bundle_hash)

"""A run folder is a bundle: everything needed to rebuild the model and predict, checked by sha256 on load.

Layout::

    runs/pima/
      config.yaml        the experiment as run
      model.json         architecture, its arguments, task, classes, threshold, feature schema
      model.safetensors  weights (no pickle)
      preprocess.json    fitted preprocessing state (+ preprocess.npz when it holds arrays)
      metrics.json       test metrics with CIs, baselines, data summary
      model_card.md, report.html, splits.csv
      manifest.json      sha256 of every file above and the bundle hash

Nothing is unpickled: weights are safetensors, state is JSON/NumPy, so loading a bundle runs no code from it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from meddl.config import DataConfig, ExperimentConfig, PreprocessConfig, parse_config
from meddl.data.tabular import coerce_numeric
from meddl.errors import MedDLError
from meddl.explain.tabular import format_top_features, group_attributions, integrated_gradients
from meddl.models import build_model
from meddl.preprocess import TabularPreprocessor
from meddl.train.objectives import scores_from_outputs

__all__ = [
    "BUNDLE_FORMAT",
    "Bundle",
    "load_bundle",
    "load_weights",
    "save_weights",
    "verify_manifest",
    "write_manifest",
]

BUNDLE_FORMAT = "meddl-bundle-1"
MANIFEST = "manifest.json"
REQUIRED = ("config.yaml", "model.json", "model.safetensors", "preprocess.json", "metrics.json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, files: list[str]) -> str:
    """Hash ``files`` (relative to ``folder``) into ``manifest.json``; returns the bundle hash."""
    hashes = {name: _sha256(folder / name) for name in sorted(files)}
    bundle_hash = hashlib.sha256("\n".join(f"{k}:{v}" for k, v in hashes.items()).encode()).hexdigest()
    (folder / MANIFEST).write_text(
        json.dumps({"format": BUNDLE_FORMAT, "files": hashes, "bundle_hash": bundle_hash}, indent=2) + "\n"
    )
    return bundle_hash


def verify_manifest(folder: Path) -> str:
    """Check every file against ``manifest.json``; returns the bundle hash."""
    return _verify_manifest(folder)


def _verify_manifest(folder: Path) -> str:
    path = folder / MANIFEST
    if not path.exists():
        raise MedDLError(f"{folder}: not a MedDL bundle (no {MANIFEST}); train one with `meddl train`")
    try:
        manifest = json.loads(path.read_text())
        files: dict[str, str] = manifest["files"]
        bundle_hash = str(manifest["bundle_hash"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise MedDLError(f"{path}: unreadable manifest ({exc})") from None
    for name in REQUIRED:
        if name not in files:
            raise MedDLError(f"{path}: the manifest does not list {name}")
    for name, expected in files.items():
        file = folder / name
        if not file.exists():
            raise MedDLError(f"{folder}: bundle file {name} is missing")
        if _sha256(file) != expected:
            raise MedDLError(
                f"{file}: sha256 does not match the manifest; the bundle was modified after training and will not load"
            )
    return bundle_hash


class BundleInfo:
    """What every kind of bundle says about itself, read from its ``model.json`` (``self.info``)."""

    info: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.info["name"])

    @property
    def task(self) -> str:
        return str(self.info["task"])

    @property
    def classes(self) -> list[str]:
        return list(self.info.get("classes") or [])

    @property
    def threshold(self) -> float | None:
        return self.info.get("threshold")


@dataclass
class Bundle(BundleInfo):
    """A trained tabular model with its preprocessing, threshold and metrics, loaded from a run folder."""

    path: Path
    config: ExperimentConfig
    info: dict[str, Any]
    preprocessor: TabularPreprocessor
    model: torch.nn.Module
    metrics: dict[str, Any]
    bundle_hash: str

    # -- what the model is ----------------------------------------------------------------------
    @property
    def data_config(self) -> DataConfig:
        assert isinstance(self.config.data, DataConfig), "a tabular bundle has a tabular data section"
        return self.config.data

    @property
    def preprocess_config(self) -> PreprocessConfig:
        assert isinstance(self.config.preprocess, PreprocessConfig), "a tabular bundle has tabular preprocessing"
        return self.config.preprocess

    @property
    def feature_columns(self) -> list[str]:
        return list(self.info["feature_columns"])

    @property
    def target_scale(self) -> tuple[float, float] | None:
        scale = self.info.get("target_scale")
        return (float(scale[0]), float(scale[1])) if scale else None

    # -- prediction -----------------------------------------------------------------------------
    def features(self, frame: pd.DataFrame, source: str = "input") -> pd.DataFrame:
        """The predictor columns of ``frame``, typed as in training; absent columns are an error."""
        missing = [c for c in self.feature_columns if c not in frame.columns]
        if missing:
            raise MedDLError(f"{source}: missing column(s) the model needs: {', '.join(repr(c) for c in missing)}")
        features = frame[self.feature_columns].copy()
        for column, kind in self.info["column_types"].items():
            if kind == "numeric":
                features[column] = coerce_numeric(features[column], column, source)
        return features

    def encode(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Encoded matrix and a mask of rows that can be scored (no NaN left after preprocessing).

        ``features`` holds the predictor columns (see :meth:`features`); this is the fast path the API uses.
        """
        return self._encode(features)

    def encode_records(self, records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`encode` for records already validated against :meth:`input_schema` (numbers as numbers, levels
        as text, None for missing), without building a DataFrame: the API's path for a few records.

        Args:
            records: One mapping per case, keyed by input column.

        Returns:
            ``(matrix, usable)``: the (n, n_features) float32 matrix, equal to ``encode(features(frame))`` for the
            same rows, and the (n,) bool mask of rows that can be scored.
        """
        matrix = self.preprocessor.transform_records(records)
        return matrix, np.isfinite(matrix).all(axis=1)

    def scores_of(self, matrix: np.ndarray) -> np.ndarray:
        """Probabilities or predictions for already-encoded rows (all scorable)."""
        return scores_from_outputs(self.task, self._outputs(matrix), self.target_scale)

    def _encode(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Encoded matrix and a mask of rows that can be scored (no NaN left after preprocessing)."""
        matrix = self.preprocessor.transform(features)
        usable = np.isfinite(matrix).all(axis=1)
        return matrix, usable

    @torch.inference_mode()
    def _outputs(self, matrix: np.ndarray) -> np.ndarray:
        if self.model.training:
            self.model.eval()
        out = [self.model(torch.as_tensor(matrix[i : i + 4096])).float() for i in range(0, len(matrix), 4096)]
        return torch.cat(out).numpy() if out else np.zeros((0, 1))

    def scores(self, frame: pd.DataFrame, source: str = "input") -> np.ndarray:
        """P(positive) (binary), class probabilities (multiclass) or predictions (regression); NaN where a
        row cannot be scored (a missing value under ``preprocess.missing: drop``)."""
        matrix, usable = self._encode(self.features(frame, source))
        shape = (len(matrix), len(self.classes)) if self.task == "multiclass" else (len(matrix),)
        scores = np.full(shape, np.nan)
        if usable.any():
            scores[usable] = scores_from_outputs(self.task, self._outputs(matrix[usable]), self.target_scale)
        return scores

    def predict(
        self, frame: pd.DataFrame, *, explain: bool = False, top_k: int | None = None, source: str = "input"
    ) -> pd.DataFrame:
        """Predictions for each row of ``frame``, in order; rows are never dropped.

        Columns: ``row`` (as in the input file), the patient id if present, ``probability_<class>`` and
        ``prediction`` (label at the bundle's threshold) for classification, ``prediction`` for regression,
        ``note`` when a row could not be scored or held values unseen in training, and with ``explain``
        ``top_features``: the variables that contributed most, with sign, in logit units.
        """
        features = self.features(frame, source)
        matrix, usable = self._encode(features)
        out = pd.DataFrame({"row": frame.index.to_numpy()})
        patient_id = self.info.get("patient_id")
        if patient_id and patient_id in frame.columns:
            out["patient_id"] = frame[patient_id].to_numpy()
        outputs = self._outputs(matrix[usable]) if usable.any() else None
        if self.task == "binary":
            probability = np.full(len(frame), np.nan)
            if outputs is not None:
                probability[usable] = scores_from_outputs("binary", outputs)
            out[f"probability_{self.classes[1]}"] = probability
            label = np.where(probability >= float(self.threshold or 0.5), self.classes[1], self.classes[0])
            out["prediction"] = pd.Series(label, dtype=object).where(~np.isnan(probability), None).to_numpy()
        elif self.task == "multiclass":
            probabilities = np.full((len(frame), len(self.classes)), np.nan)
            if outputs is not None:
                probabilities[usable] = scores_from_outputs("multiclass", outputs)
            for k, name in enumerate(self.classes):
                out[f"probability_{name}"] = probabilities[:, k]
            best = np.nan_to_num(probabilities, nan=-1).argmax(axis=1)
            out["prediction"] = np.where(usable, np.array(self.classes, dtype=object)[best], None)
        else:
            values = np.full(len(frame), np.nan)
            if outputs is not None:
                values[usable] = scores_from_outputs("regression", outputs, self.target_scale)
            out["prediction"] = values
        out["note"] = self._notes(features, usable)
        if explain:
            lines = np.array([""] * len(frame), dtype=object)
            if usable.any():
                grouped, names = self.attributions(matrix[usable])
                lines[usable] = format_top_features(
                    grouped, names, features.loc[usable], top_k or self.config.explain.top_k
                )
            out["top_features"] = lines
        return out

    def input_schema(self) -> list[dict[str, Any]]:
        """One entry per input column: type, whether it may be missing, allowed values or training range, unit.

        ``nullable`` is True when the model imputes missing values (any ``preprocess.missing`` but ``drop``).
        """
        nullable = self.preprocess_config.missing != "drop"
        units = self.data_config.units
        fields = []
        for column, kind in self.info["column_types"].items():
            profile = self.info["column_profile"].get(column, {})
            entry: dict[str, Any] = {"name": column, "type": kind, "nullable": nullable, "unit": units.get(column)}
            if kind == "numeric":
                quantiles = profile.get("quantiles") or [None] * 5
                entry["typical_range"] = [quantiles[0], quantiles[4]]  # 5th–95th percentile in training
                entry["median"] = quantiles[2]
            else:
                entry["allowed"] = list(self.info["known_levels"].get(column, []))
            fields.append(entry)
        return fields

    def contributions(
        self, frame: pd.DataFrame, *, top_k: int | None = None, source: str = "input"
    ) -> list[list[dict]]:
        """Per row, the ``top_k`` variables by absolute integrated-gradient contribution (logit units).

        Rows that cannot be scored get an empty list.
        """
        features = self.features(frame, source)
        matrix, usable = self._encode(features)
        result: list[list[dict]] = [[] for _ in range(len(frame))]
        if not usable.any():
            return result
        grouped, names = self.attributions(matrix[usable])
        k = top_k or self.config.explain.top_k
        for row, i in zip(grouped, np.flatnonzero(usable), strict=True):
            order = np.argsort(-np.abs(row))[:k]
            result[i] = [
                {"feature": names[j], "value": _jsonable(features.iloc[i][names[j]]), "contribution": float(row[j])}
                for j in order
            ]
        return result

    def record_contributions(
        self,
        records: list[dict[str, Any]],
        matrix: np.ndarray,
        usable: np.ndarray,
        *,
        top_k: int | None = None,
    ) -> list[list[dict]]:
        """:meth:`contributions` of records already encoded by :meth:`encode_records` (no second encoding).

        Args:
            records: The validated records, one mapping per case.
            matrix: Their (n, n_features) encoded matrix.
            usable: (n,) bool: which rows can be scored.
            top_k: Variables per row (default ``explain.top_k`` of the experiment).

        Returns:
            Per record, the ``top_k`` ``{"feature", "value", "contribution"}`` by absolute contribution; an
            empty list for a record that cannot be scored.
        """
        result: list[list[dict]] = [[] for _ in range(len(records))]
        if not usable.any():
            return result
        grouped, names = self.attributions(matrix[usable])
        k = top_k or self.config.explain.top_k
        for row, i in zip(grouped, np.flatnonzero(usable), strict=True):
            order = np.argsort(-np.abs(row))[:k]
            result[i] = [
                {"feature": names[j], "value": _jsonable(records[i].get(names[j])), "contribution": float(row[j])}
                for j in order
            ]
        return result

    def attributions(self, matrix: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Integrated-gradient contributions per clinical variable for encoded rows."""
        baseline = np.asarray(self.info["explain_baseline"], dtype=np.float32)
        target: np.ndarray | int = 0
        if self.task == "multiclass":
            target = self._outputs(matrix).argmax(axis=1)
        raw = integrated_gradients(self.model, matrix.astype(np.float32), baseline, target_index=target)
        return group_attributions(raw, self.preprocessor.source_columns_)

    def _notes(self, features: pd.DataFrame, usable: np.ndarray) -> list[str]:
        notes = [""] * len(features)
        missing_columns = features.columns[features.isna().any()].tolist() if not usable.all() else []
        for i in np.flatnonzero(~usable):
            absent = [c for c in missing_columns if pd.isna(features.iloc[i][c])]
            notes[i] = f"not scored: missing {', '.join(absent)} (the model was trained with preprocess.missing: drop)"
        for column, kind in self.info["column_types"].items():
            if kind == "numeric":
                continue
            unseen = self._unseen_mask(features[column], column)
            for i in np.flatnonzero(unseen):
                extra = f"{column}={features.iloc[i][column]!r} not seen in training"
                notes[i] = f"{notes[i]}; {extra}" if notes[i] else extra
        return notes

    def _unseen_mask(self, values: pd.Series, column: str) -> np.ndarray:
        known = {str(v) for v in self.info["known_levels"].get(column, [])}
        text = values.map(lambda v: None if pd.isna(v) else _level(v))
        return (text.notna() & ~text.isin(known)).to_numpy()


def _jsonable(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _level(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def load_bundle(path: str | Path) -> Bundle:
    """Load and verify a bundle (a run folder written by ``meddl train``).

    Raises:
        MedDLError: the folder is not a bundle, a file is missing, or a hash does not match.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise MedDLError(f"bundle not found: {folder} (expected a run folder written by `meddl train`)")
    bundle_hash = _verify_manifest(folder)
    import yaml

    info = json.loads((folder / "model.json").read_text())
    if info.get("kind") == "image":
        from meddl.image_bundle import load_image_bundle

        return load_image_bundle(folder)  # type: ignore[return-value]
    if info.get("kind") in {"sequence", "expression", "signal", "ehr"}:
        from meddl.array_bundle import load_array_bundle

        return load_array_bundle(folder)  # type: ignore[return-value]
    if info.get("format") != BUNDLE_FORMAT:
        raise MedDLError(f"{folder / 'model.json'}: unsupported bundle format {info.get('format')!r}")
    config = parse_config(yaml.safe_load((folder / "config.yaml").read_text()), source=str(folder / "config.yaml"))
    preprocessor = TabularPreprocessor.load(folder)
    model = build_model(
        info["arch"], info["params"], in_features=info["in_features"], out_features=info["out_features"]
    )
    load_weights(model, folder / "model.safetensors", info["arch"])
    model.eval()
    metrics = json.loads((folder / "metrics.json").read_text())
    return Bundle(folder, config, info, preprocessor, model, metrics, bundle_hash)


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """Weights as safetensors. A tensor reachable under two names (a layer also exposed as ``target_layer``
    for Grad-CAM) is stored once, under its first name."""
    stored: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, tensor in model.state_dict().items():
        pointer = tensor.data_ptr()
        if tensor.numel() and pointer in seen:
            continue
        seen.add(pointer)
        stored[name] = tensor.detach().cpu().contiguous()
    save_file(stored, str(path))


def load_weights(model: torch.nn.Module, path: Path, arch: str) -> None:
    """Load safetensors weights into ``model``; a mismatch is an error naming the file.

    Names left out at saving because they alias a stored tensor are filled through that tensor.
    """
    try:
        state = load_file(str(path))
        missing, unexpected = model.load_state_dict(state, strict=False)
    except (RuntimeError, OSError) as exc:
        raise MedDLError(f"{path}: weights do not fit {arch}: {str(exc).splitlines()[0]}") from None
    current = model.state_dict()
    loaded_pointers = {current[name].data_ptr() for name in state if name in current}
    really_missing = [name for name in missing if current[name].data_ptr() not in loaded_pointers]
    if really_missing or unexpected:
        raise MedDLError(
            f"{path}: weights do not fit {arch} (missing {sorted(really_missing)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]})"
        )

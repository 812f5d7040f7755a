"""One :class:`Bundle` for every data kind: a verified run folder, its fitted modality and its network.

``model.json`` always names the data ``kind``; the modality registered for that kind rebuilds the fitted
preprocessing from the folder, and the network is rebuilt from its architecture and ``data_arguments``. Prediction
never drops a case: one that cannot be read or scored gets a ``note``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from meddl.bundle.files import BUNDLE_FORMAT, load_weights, verify_manifest
from meddl.config import ExperimentConfig, parse_config
from meddl.errors import MedDLError
from meddl.evaluate import predicted_labels
from meddl.evaluate.recalibration import Recalibrator
from meddl.io.outputs import check_output
from meddl.io.yamlfile import read_yaml
from meddl.modalities import Modality, PredictionInputs, get_modality
from meddl.models import build_model
from meddl.train.objectives import scores_from_outputs
from meddl.train.survival_outputs import SurvivalOutputs

__all__ = ["Bundle", "load_bundle"]


@dataclass
class Bundle:
    """A trained model of any data kind, loaded from its run folder (hashes verified first)."""

    path: Path
    config: ExperimentConfig
    info: dict[str, Any]
    modality: Modality
    model: torch.nn.Module
    metrics: dict[str, Any]
    bundle_hash: str

    # -- what the model is ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.info["name"])

    @property
    def kind(self) -> str:
        return str(self.info["kind"])

    @property
    def task(self) -> str:
        return str(self.info["task"])

    @property
    def classes(self) -> list[str]:
        return list(self.info.get("classes") or [])

    @property
    def threshold(self) -> float | None:
        value = self.info.get("threshold")
        return None if value is None else float(value)

    @property
    def target_scale(self) -> Any:
        """What raw outputs need to become scores: the training target's (mean, std) of a regression model, the
        fitted survival head state of a survival model, else None."""
        if self.task == "survival":
            return self.survival
        scale = self.info.get("target_scale")
        return (float(scale[0]), float(scale[1])) if scale else None

    @functools.cached_property
    def survival(self) -> SurvivalOutputs | None:
        """A survival model's head state (horizons, baseline hazard or time grid); None for other tasks."""
        state = self.info.get("survival")
        return SurvivalOutputs.from_json(state) if state else None

    # -- prediction -----------------------------------------------------------------------------
    def read(self, source: Any, name: str | None = None) -> PredictionInputs:
        """New cases (a file, folder, manifest — or a DataFrame for tables), in the format the model was trained
        on; a case that cannot be read gets a note."""
        if name is not None:
            return self.modality.read_for_prediction(source, name)  # type: ignore[call-arg]
        return self.modality.read_for_prediction(source)

    @torch.inference_mode()
    def _outputs(self, inputs: Any) -> np.ndarray:
        return self.modality.outputs(self.model, self.modality.model_inputs(inputs))

    def scores(self, inputs: Any) -> np.ndarray:
        """P(positive) (binary), class probabilities (multiclass, multilabel) or values (regression) for inputs as
        :meth:`read` returns them (``cases.inputs``); NaN where a row cannot be scored."""
        scores = scores_from_outputs(self.task, self._outputs(inputs), self.target_scale)
        return self.recalibrator.apply(scores) if self.task in {"binary", "multiclass"} else scores

    @functools.cached_property
    def recalibrator(self) -> Recalibrator:
        """The map to calibrated probabilities fitted at training (``evaluate.recalibrate``); identity if none."""
        return Recalibrator.from_json(self.info.get("recalibration"))

    def labels(self, scores: np.ndarray) -> list[str]:
        """The label of each case at the bundle's threshold (classification)."""
        return predicted_labels(self.task, scores, self.classes, self.threshold)

    def predict(
        self,
        data: Any,
        *,
        explain: bool = False,
        explain_dir: Path | None = None,
        top_k: int | None = None,
        source: str | None = None,
    ) -> pd.DataFrame:
        """One row per case, in order: the case's id columns, ``probability_<class>`` and ``prediction`` (the label
        at the threshold chosen on validation, or the predicted value), a ``note`` when the case needs a look, and
        with ``explain`` (or an ``explain_dir`` for explanation files) the case's explanation.

        Args:
            data: new cases: a file, folder or manifest path (every kind), a list of image files, or a DataFrame.
            explain: add each case's explanation (files go to ``explain_dir`` when the kind writes files).
            explain_dir: folder for explanation files (heat maps, logos, traces); implies ``explain``.
            top_k: variables per case in a table's explanation.
            source: the name errors give the input (default: the file name).
        """
        cases = self.read(data, source)
        if top_k is not None:
            cases.extra["top_k"] = top_k
        return self.predict_cases(cases, explain=explain, explain_dir=explain_dir)

    def predict_cases(
        self, cases: PredictionInputs, *, explain: bool = False, explain_dir: Path | None = None
    ) -> pd.DataFrame:
        """As :meth:`predict`, for cases already read with :meth:`read` (so a caller can check them first)."""
        n = len(cases.ids)
        frame = pd.DataFrame(cases.columns or {"id": cases.ids}, index=range(n))
        rows = np.flatnonzero(cases.usable)
        scores = self.scores(cases.inputs) if len(rows) else np.zeros((0, max(len(self.classes), 1)))
        # a survival model's median time may be infinite (never reached): only its risk must be a number
        finite: Any = np.zeros(0, dtype=bool)
        if len(rows):
            matrix = scores.reshape(len(rows), -1)
            finite = np.isfinite(matrix[:, :1] if self.survival is not None else matrix).all(axis=1)
        if not finite.all():  # extreme inputs can overflow the network: such a case is not scored, and says why
            cases = _unscored(
                cases, rows[~finite], "not scored: the model's output is not a finite number (check for extreme values)"
            )
            scores = scores[finite]
            rows = rows[finite]
        if self.survival is not None:  # risk, survival at each horizon, median survival time
            columns = self.survival.columns()
            matrix = scores.reshape(len(rows), -1) if len(rows) else np.zeros((0, len(columns)))
            for k, name in enumerate(columns):
                frame[name] = np.nan
                frame.loc[rows, name] = matrix[:, k]
        elif self.task == "regression":
            frame["prediction"] = np.nan
            frame.loc[rows, "prediction"] = scores
        else:
            names = self.classes[1:] if self.task == "binary" else self.classes
            matrix = scores.reshape(len(rows), -1) if len(rows) else np.zeros((0, len(names)))  # none scorable
            for k, name in enumerate(names):
                frame[f"probability_{name}"] = np.nan
                frame.loc[rows, f"probability_{name}"] = matrix[:, k]
            labels = np.array([None] * n, dtype=object)
            labels[rows] = self.labels(scores) if len(rows) else []
            frame["prediction"] = labels
        notes = list(cases.notes)
        for row, extra in zip(rows, self.modality.range_notes(cases) if len(rows) else [], strict=True):
            if extra:
                notes[row] = f"{notes[row]}; {extra}" if notes[row] else extra
        frame["note"] = notes
        if explain or explain_dir is not None:
            if explain_dir is None and self.modality.explanation_files:
                raise MedDLError(
                    f"{self.kind} explanations are files ({self.modality.explanation_files}): give explain_dir"
                )
            if explain_dir is not None:
                explain_dir.mkdir(parents=True, exist_ok=True)
            explained = np.array([""] * n, dtype=object)
            if len(rows):
                explained[rows] = self.modality.explain_cases(self.model, cases, scores, explain_dir)
            frame[self.modality.explanation_column] = explained
        return frame

    def explain(self, data: Any, out: Path) -> str:
        """``meddl explain``: write the explanation of ``data``'s cases to ``out``; returns what was written.

        Tables write a CSV of per-variable contributions, an image model the heat-map PNG of one image, the other
        kinds a folder of explanation files with ``explanations.csv``.
        """
        check_output(Path(out), inputs=[data], bundle=self.path, file=False)
        cases = self.read(data)
        scores = self.scores(cases.inputs) if cases.usable.any() else np.zeros(0)
        written = self.modality.explain_file(self.model, cases, scores, Path(out))
        if written is not None:
            return written
        out.mkdir(parents=True, exist_ok=True)
        predictions = self.predict_cases(cases, explain_dir=out)
        from meddl.io import write_table

        write_table(predictions, out / "explanations.csv")
        return f"wrote explanations of {len(predictions)} case(s) to {out}"

    def contributions(self, data: Any, *, top_k: int | None = None) -> list[list[dict[str, Any]]]:
        """Per case, its largest contributions (``feature``, ``value``, ``contribution``); empty for a case that
        cannot be scored (kinds whose explanations are per-variable)."""
        cases = self.read(data)
        return self.modality.case_contributions(self.model, cases, top_k=top_k)


def load_bundle(path: str | Path) -> Bundle:
    """Load and verify a bundle (a run folder written by ``meddl train``): hashes first, nothing unpickled.

    Raises:
        MedDLError: the folder is not a bundle, a file is missing or damaged, or a hash does not match.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise MedDLError(f"bundle not found: {folder} (expected a run folder written by `meddl train`)")
    bundle_hash = verify_manifest(folder)
    info = _read_json(folder / "model.json")
    raw_config = read_yaml(folder / "config.yaml", "bundle's config.yaml")
    if not isinstance(raw_config, dict):
        raise MedDLError(f"{folder / 'config.yaml'}: expected the experiment as a mapping of sections")
    metrics = _read_json(folder / "metrics.json")
    if info.get("format") != BUNDLE_FORMAT:
        raise MedDLError(f"{folder / 'model.json'}: unsupported bundle format {info.get('format')!r}")
    if "kind" not in info or "data_arguments" not in info:
        raise MedDLError(
            f"{folder / 'model.json'}: written by an older MedDL (no 'kind' / 'data_arguments'); retrain it with "
            "`meddl train`"
        )
    _check_model_json(info, folder / "model.json")
    config = parse_config(raw_config, source=str(folder / "config.yaml"))
    try:
        modality_class = get_modality(info["kind"])
    except MedDLError as exc:
        raise MedDLError(f"{folder / 'model.json'}: {exc}") from None
    modality = modality_class.load_state(config, folder, info)
    try:
        model = build_model(info["arch"], info["params"], **info["data_arguments"])
    except MedDLError as exc:
        raise MedDLError(f"{folder / 'model.json'}: {exc}") from None
    load_weights(model, folder / "model.safetensors", info["arch"])
    model.eval()
    bundle = Bundle(folder, config, info, modality, model, metrics, bundle_hash)
    modality.target_scale_ = bundle.target_scale  # what explanations of a survival model's risk need
    return bundle


def _unscored(cases: PredictionInputs, positions: np.ndarray, reason: str) -> PredictionInputs:
    """``cases`` with the cases at ``positions`` marked not usable (and their inputs, which hold usable cases
    only, left out), their notes set to ``reason``."""
    usable = cases.usable.copy()
    usable[positions] = False
    keep = usable[np.flatnonzero(cases.usable)]  # per input row
    inputs = cases.inputs
    if isinstance(inputs, pd.DataFrame):
        inputs = inputs.iloc[keep]
    elif isinstance(inputs, np.ndarray | torch.Tensor):
        inputs = inputs[keep]
    elif isinstance(inputs, list):
        inputs = [x for x, k in zip(inputs, keep, strict=True) if k]
    else:
        raise TypeError(f"cannot leave cases out of inputs of type {type(inputs).__name__}")
    n_inputs = len(keep)
    extra = {  # per-usable-case lists (an image's raw measures) follow the inputs
        key: [x for x, k in zip(value, keep, strict=True) if k]
        if isinstance(value, list) and len(value) == n_inputs
        else value
        for key, value in cases.extra.items()
    }
    notes = list(cases.notes)
    for i in positions:
        notes[i] = f"{reason}; {notes[i]}" if notes[i] else reason
    return PredictionInputs(inputs, cases.ids, notes, usable, extra, cases.columns)


_MODEL_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,),
    "task": (str,),
    "arch": (str,),
    "params": (dict,),
    "data_arguments": (dict,),
    "classes": (list, type(None)),
    "threshold": (int, float, type(None)),
    "target_scale": (list, type(None)),
}


def _check_model_json(info: dict[str, Any], path: Path) -> None:
    """Every field prediction relies on, present and of its type: a damaged model.json is named, not crashed on."""
    for key, types in _MODEL_JSON_TYPES.items():
        if key not in info and type(None) not in types:
            raise MedDLError(f"{path}: damaged bundle file, field {key!r} is missing")
        value = info.get(key)
        if not isinstance(value, types) or isinstance(value, bool):
            wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise MedDLError(f"{path}: damaged bundle file, field {key!r} should be {wanted}, got {value!r}")
    if info.get("target_scale") is not None and not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in info["target_scale"]
    ):
        raise MedDLError(f"{path}: damaged bundle file, field 'target_scale' should hold numbers")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MedDLError(f"{path}: damaged bundle file, not JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(content, dict):
        raise MedDLError(f"{path}: damaged bundle file, expected a JSON object")
    return content

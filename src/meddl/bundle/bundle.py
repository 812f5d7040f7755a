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
from meddl.evaluate.conformal import ConformalPredictor
from meddl.evaluate.recalibration import Recalibrator
from meddl.evaluate.selective import ReferralRule, confidence
from meddl.io.outputs import check_output
from meddl.io.yamlfile import read_yaml
from meddl.modalities import Modality, PredictionInputs, get_modality
from meddl.models import Ensemble, build_model
from meddl.train.objectives import scores_from_outputs
from meddl.train.runtime import configure_threads, tune_allocator
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
    def _outputs(self, inputs: Any, model: torch.nn.Module | None = None) -> np.ndarray:
        return self.modality.outputs(model or self.model, self.modality.model_inputs(inputs))

    def scores(self, inputs: Any, model: torch.nn.Module | None = None) -> np.ndarray:
        """P(positive) (binary), class probabilities (multiclass, multilabel) or values (regression) for inputs as
        :meth:`read` returns them (``cases.inputs``); NaN where a row cannot be scored. ``model``: another network
        of the same shape (an ensemble's member) instead of the bundle's."""
        scores = scores_from_outputs(self.task, self._outputs(inputs, model), self.target_scale)
        return self.recalibrator.apply(scores) if self.task in {"binary", "multiclass"} else scores

    def member_scores(self, inputs: Any) -> np.ndarray | None:
        """A deep ensemble's members' own scores, stacked on a first axis (None for a single network)."""
        if not isinstance(self.model, Ensemble):
            return None
        return np.stack([self.scores(inputs, member) for member in self.model.members])

    def mc_scores(self, inputs: Any, samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Monte Carlo dropout (Gal & Ghahramani 2016): ``samples`` passes with the network's dropout layers active,
        each turned into scores as :meth:`scores` does (recalibration included). Returns (the mean scores, the
        per-pass scores stacked on a first axis). Seeded, so the same call gives the same numbers.

        Raises:
            MedDLError: the task is survival, ``samples`` is below 2, or the network has no active dropout layer.
        """
        if self.task == "survival":
            raise MedDLError("--mc-samples: MC dropout is not available for survival models")
        if samples < 2:
            raise MedDLError(f"--mc-samples: give at least 2 passes, got {samples}")
        layers = [m for m in self.model.modules() if _drops(m)]
        if not layers:
            raise MedDLError(
                f"--mc-samples: the {self.info['arch']} network of this bundle has no dropout layer in use; MC dropout "
                "needs a model trained with dropout (e.g. model.dropout: 0.2)"
            )

        def stay_on(module: torch.nn.Module, _: Any) -> None:
            module.training = True  # the modality's scoring calls model.eval(); dropout stays on for this pass

        hooks = [layer.register_forward_pre_hook(stay_on) for layer in layers]
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                passes = np.stack([self.scores(inputs) for _ in range(samples)])
        finally:
            for hook in hooks:
                hook.remove()
            for layer in layers:
                layer.training = False
        return passes.mean(axis=0), passes

    @functools.cached_property
    def recalibrator(self) -> Recalibrator:
        """The map to calibrated probabilities fitted at training (``evaluate.recalibrate``); identity if none."""
        return Recalibrator.from_json(self.info.get("recalibration"))

    @functools.cached_property
    def conformal(self) -> ConformalPredictor | None:
        """The conformal predictor calibrated at training (``evaluate.conformal``); None if the run had none."""
        state = self.info.get("conformal")
        return ConformalPredictor.from_json(state) if state else None

    def case_groups(self, cases: PredictionInputs) -> np.ndarray | None:
        """Each scored case's group for a Mondrian conformal predictor calibrated per column (else None)."""
        conformal = self.conformal
        if conformal is None or conformal.mondrian in (None, "class"):
            return None
        return self.modality.case_group_values(cases, str(conformal.mondrian))

    def uncertainty(self, scores: np.ndarray, groups: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Each case's conformal set or interval (``evaluate.conformal``) and whether it is ``uncertain``: a set of
        other than one label (any label's yes/no set, multilabel), or an interval wider than
        ``serve.max_interval``. Empty dicts when the bundle has no conformal predictor."""
        items = self._conformal_items(scores, groups)
        rule = self.referral
        if rule is not None:  # evaluate.referral: below the cut-off chosen on validation, refer
            for item, sure in zip(items, confidence(self.task, scores, self.threshold), strict=True):
                refer = bool(sure < rule.cutoff)
                item.update(confidence=float(sure), refer=refer, uncertain=bool(item.get("uncertain")) or refer)
        return items

    def _conformal_items(self, scores: np.ndarray, groups: np.ndarray | None) -> list[dict[str, Any]]:
        conformal = self.conformal
        if conformal is None:
            return [{} for _ in range(len(scores))]
        if self.task == "survival" and self.survival is not None:  # a lower bound on the time to the event
            times = self.survival.time_to_survival(scores, 1.0 - conformal.alpha) if len(scores) else np.zeros(0)
            return [{"survival_lower_bound": float(lower)} for lower in conformal.intervals(times, groups)[:, 0]]
        if self.task == "regression":
            bounds = conformal.intervals(scores, groups)
            widest = self.config.serve.max_interval
            return [
                {
                    "interval": {"lower": float(lo), "upper": float(hi)},
                    "uncertain": bool(widest is not None and hi - lo > widest),
                }
                for lo, hi in bounds
            ]
        members = conformal.sets(scores, groups)
        if self.task == "multilabel":
            return [
                {
                    "label_sets": {
                        label: [v for v, m in zip(("no", "yes"), row[j], strict=True) if m]
                        for j, label in enumerate(self.classes)
                    },
                    "uncertain": bool((row.sum(axis=1) != 1).any()),
                }
                for row in members
            ]
        return [
            {"prediction_set": [self.classes[k] for k in np.flatnonzero(row)], "uncertain": bool(row.sum() != 1)}
            for row in members
        ]

    def group_notes(self, groups: np.ndarray) -> list[str]:
        """Per case, a note when its Mondrian group had no threshold of its own (too few or no calibration cases),
        so the pooled one was used; "" otherwise."""
        conformal = self.conformal
        if conformal is None:
            return ["" for _ in groups]
        pooled = set(conformal.fallbacks(groups))
        what = "interval" if self.task == "regression" else "prediction set"
        return [
            f"{what} from the pooled threshold: {conformal.mondrian} {str(g)!r} had too few (or no) calibration cases"
            if str(g) in pooled
            else ""
            for g in groups
        ]

    @functools.cached_property
    def referral(self) -> ReferralRule | None:
        """The referral rule chosen at training (``evaluate.referral``); None if the run had none."""
        state = self.info.get("referral")
        return ReferralRule.from_json(state) if state else None

    @property
    def judges_uncertainty(self) -> bool:
        """Whether predictions carry a conformal set or interval, or a referral flag."""
        return self.conformal is not None or self.referral is not None

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
        mc_samples: int = 0,
        mask_dir: Path | None = None,
    ) -> pd.DataFrame:
        """One row per case, in order: the case's id columns, ``probability_<class>`` and ``prediction`` (the label
        at the threshold chosen on validation, or the predicted value), a ``note`` when the case needs a look, and
        with ``explain`` (or an ``explain_dir`` for explanation files) the case's explanation.

        A segmentation model gives, per case, each label's volume (mL; area in mm² for 2-D images) and lesion count,
        and with ``mask_dir`` writes each predicted mask there (NIfTI with the input's affine, DICOM-SEG for DICOM
        input, PNG or npz otherwise; column ``mask_path``); ``explain_dir`` gets an overlay PNG per case.

        Args:
            data: new cases: a file, folder or manifest path (every kind), a list of image files, or a DataFrame.
            explain: add each case's explanation (files go to ``explain_dir`` when the kind writes files).
            explain_dir: folder for explanation files (heat maps, logos, traces); implies ``explain``.
            top_k: variables per case in a table's explanation.
            source: the name errors give the input (default: the file name).
            mc_samples: MC dropout: average this many passes with dropout on (:meth:`mc_scores`) and add each
                case's spread, ``mc_std``, and (classification) ``predictive_entropy`` of the averaged probabilities.
        """
        if self.task == "segmentation" and mc_samples:
            raise MedDLError("mc_samples: MC dropout is not available for segmentation models")
        cases = self.read(data, source)
        if top_k is not None:
            cases.extra["top_k"] = top_k
        return self.predict_cases(
            cases, explain=explain, explain_dir=explain_dir, mc_samples=mc_samples, mask_dir=mask_dir
        )

    @torch.inference_mode()
    def _segment_cases(self, cases: PredictionInputs, mask_dir: Path | None, overlay_dir: Path | None) -> pd.DataFrame:
        """A segmentation model's table (volumes, lesion counts), masks in ``mask_dir`` and overlays in
        ``overlay_dir`` (column ``overlay``)."""
        frame, _ = self.modality.segment_cases(self.model, cases, mask_dir, overlay_dir)  # type: ignore[attr-defined]
        return frame

    @torch.inference_mode()
    def segment(self, data: Any) -> list[np.ndarray | None]:
        """A segmentation model's label maps (the masks' label values, on each input's own grid), one per case in
        order; None for a case that could not be read (``predict`` says why in its ``note``)."""
        if self.task != "segmentation":
            raise MedDLError(f"{self.path}: segment() is for segmentation models; this one is a {self.task} model")
        cases = self.read(data)
        _, maps = self.modality.segment_cases(self.model, cases, None)  # type: ignore[attr-defined]
        out: list[np.ndarray | None] = [None] * len(cases.ids)
        for row, labels in zip(np.flatnonzero(cases.usable), maps, strict=True):
            out[int(row)] = labels
        return out

    def predict_cases(
        self,
        cases: PredictionInputs,
        *,
        explain: bool = False,
        explain_dir: Path | None = None,
        mc_samples: int = 0,
        mask_dir: Path | None = None,
    ) -> pd.DataFrame:
        """As :meth:`predict`, for cases already read with :meth:`read` (so a caller can check them first)."""
        if self.task == "segmentation":
            return self._segment_cases(cases, mask_dir, explain_dir)
        n = len(cases.ids)
        frame = pd.DataFrame(cases.columns or {"id": cases.ids}, index=range(n))
        rows = np.flatnonzero(cases.usable)
        spread: dict[str, np.ndarray] = {}
        if mc_samples and len(rows):
            scores, passes = self.mc_scores(cases.inputs, mc_samples)
            spread = _spread(self.task, scores, passes, "mc")
        else:
            scores = self.scores(cases.inputs) if len(rows) else np.zeros((0, max(len(self.classes), 1)))
            members = self.member_scores(cases.inputs) if len(rows) and self.task != "survival" else None
            if members is not None:  # a deep ensemble: how far its members disagree
                spread = _spread(self.task, scores, members, "ensemble")
        groups = self.case_groups(cases) if len(rows) else None
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
            spread = {name: values[finite] for name, values in spread.items()}
            groups = groups[finite] if groups is not None else None
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
        for name, values in spread.items():
            frame[name] = np.nan
            frame.loc[rows, name] = values
        notes = list(cases.notes)
        if self.judges_uncertainty:
            _add_uncertainty(frame, rows, self.uncertainty(scores, groups), n)
        if groups is not None:
            for row, extra in zip(rows, self.group_notes(groups), strict=True):
                if extra:
                    notes[row] = f"{notes[row]}; {extra}" if notes[row] else extra
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
        segmentation = self.task == "segmentation"  # its explanation is the mask itself, drawn on the image
        scores = self.scores(cases.inputs) if cases.usable.any() and not segmentation else np.zeros(0)
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
    size = int(info.get("ensemble") or 1)
    if not 1 <= size <= 20:
        raise MedDLError(
            f"{folder / 'model.json'}: damaged bundle file, field 'ensemble' should be 2 to 20, got {size}"
        )
    config = parse_config(raw_config, source=str(folder / "config.yaml"))
    try:
        modality_class = get_modality(info["kind"], info.get("task"))
    except MedDLError as exc:
        raise MedDLError(f"{folder / 'model.json'}: {exc}") from None
    modality = modality_class.load_state(config, folder, info)
    try:
        members = [build_model(info["arch"], info["params"], **info["data_arguments"]) for _ in range(size)]
    except MedDLError as exc:
        raise MedDLError(f"{folder / 'model.json'}: {exc}") from None
    model = Ensemble(members, info["task"]) if size > 1 else members[0]
    load_weights(model, folder / "model.safetensors", info["arch"])
    model.eval()
    tune_allocator()  # inference on large images reuses its buffers too (meddl.train.runtime)
    configure_threads()
    bundle = Bundle(folder, config, info, modality, model, metrics, bundle_hash)
    modality.target_scale_ = bundle.target_scale  # what explanations of a survival model's risk need
    return bundle


def _drops(module: torch.nn.Module) -> bool:
    """Whether a layer applies dropout when in training mode: dropout layers, and the attention-weight dropout of
    multi-head attention and the between-layer dropout of LSTM/GRU stacks, which follow their own module's flag."""
    if isinstance(module, torch.nn.modules.dropout._DropoutNd):
        return module.p > 0
    if isinstance(module, torch.nn.MultiheadAttention | torch.nn.RNNBase):
        return float(module.dropout) > 0
    return False


def _spread(task: str, mean: np.ndarray, passes: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    """Per case, from MC dropout passes or ensemble members: ``<prefix>_std``, the SD across them of P(positive)
    (binary), of the averaged top class's probability (multiclass), of the value (regression) or the largest over
    labels (multilabel); and for classification ``predictive_entropy`` of the averaged probabilities (nats)."""
    name = f"{prefix}_std"
    if task == "regression":
        return {name: passes.reshape(len(passes), -1).std(axis=0)}
    if task == "binary":
        p = np.clip(mean.reshape(-1), 1e-12, 1 - 1e-12)
        entropy = -(p * np.log(p) + (1 - p) * np.log(1 - p))
        return {name: passes.reshape(len(passes), -1).std(axis=0), "predictive_entropy": entropy}
    spread = passes.std(axis=0)  # (n, K)
    if task == "multilabel":
        p = np.clip(mean, 1e-12, 1 - 1e-12)
        entropy = -(p * np.log(p) + (1 - p) * np.log(1 - p)).sum(axis=1)
        return {name: spread.max(axis=1), "predictive_entropy": entropy}
    top = mean.argmax(axis=1)
    p = np.clip(mean, 1e-12, 1.0)
    return {name: spread[np.arange(len(top)), top], "predictive_entropy": -(p * np.log(p)).sum(axis=1)}


def _add_uncertainty(frame: pd.DataFrame, rows: np.ndarray, items: list[dict[str, Any]], n: int) -> None:
    """The conformal columns of a predictions table: ``prediction_set`` ("A | B") and ``set_size``, ``set_<label>``
    per label (multilabel), ``lower`` and ``upper`` (regression) or ``survival_lower_bound`` (survival), and
    ``uncertain`` (refer for review)."""
    if not items:
        return
    columns: dict[str, list[Any]] = {}
    for item in items:
        values: dict[str, Any] = {}
        if "prediction_set" in item:
            values = {"prediction_set": " | ".join(item["prediction_set"]), "set_size": len(item["prediction_set"])}
        elif "label_sets" in item:
            values = {f"set_{label}": " | ".join(kept) for label, kept in item["label_sets"].items()}
        elif "interval" in item:
            values = {"lower": item["interval"]["lower"], "upper": item["interval"]["upper"]}
        elif "survival_lower_bound" in item:
            values = {"survival_lower_bound": item["survival_lower_bound"]}
        if "confidence" in item:
            values.update(confidence=item["confidence"], refer=item["refer"])
        if "uncertain" in item:
            values["uncertain"] = item["uncertain"]
        for key, value in values.items():
            columns.setdefault(key, []).append(value)
    for key, kept in columns.items():
        column = np.array([None] * n, dtype=object)
        column[rows] = kept
        frame[key] = column


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
    "ensemble": (int, type(None)),
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

"""Multimodal fusion (``data.kind: multimodal``): several inputs of a patient, each read, preprocessed and encoded by
its own kind's modality, fused by one network (:class:`meddl.models.fusion.FusionNet`).

How a run sees it: one row per patient of the outcome table. Each input is read by its kind's modality from a copy
of its file with the outcome joined by patient id; its preprocessing is fitted on the training patients that have
it; its model inputs are flattened into one packed row per patient, zeros where the patient lacks that input, and
one presence flag per input closes the row. The network unpacks the row, encodes each input and fuses the
embeddings, masking the missing ones. So the one trainer, evaluation, ONNX export and attribution methods work
unchanged, and a patient without a scan still gets a prediction.

What fusion adds to the run record:
* a table of how many patients have each combination of inputs, and the test metrics per combination;
* each input's contribution, overall and per case: integrated gradients summed over the input's values (expected
  gradients: baselines drawn from training patients), and the change in the prediction when the input is left out
  (with the test metric without it, a paired bootstrap CI);
* each input's own explanation (top features, genes, heat maps), by its modality, on the fused model with the
  other inputs left out;
* through :meth:`comparison_models`, the run trains each input's model alone on the same split and compares it with
  the fused one on the same test patients (:mod:`meddl.run.comparison`).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from meddl._json import clean_json
from meddl.errors import MedDLError
from meddl.evaluate.robustness import Corruption
from meddl.io import read_table, write_table
from meddl.modalities.base import Log, Modality, ModalityExample, PredictionInputs, Prepared
from meddl.modalities.registry import get_modality, register
from meddl.modalities.schema import ExperimentConfig
from meddl.modalities.sections.multimodal import EVENT_COLUMN, OUTCOME_COLUMN, MultimodalDataConfig

__all__ = ["MultimodalModality", "combination_labels"]

_MANIFEST_KINDS = ("image", "signal")  # inputs whose table names one file per patient (a path column)
REFERENCES = 32  # training patients kept in the bundle as the baselines of integrated gradients
BASELINE_DRAWS = 8  # baselines per case (expected gradients)


def combination_labels(present: np.ndarray, names: list[str]) -> np.ndarray:
    """Each row's available inputs as text, e.g. ``clinical+tumour`` (``present``: (N, M) bool)."""
    return np.array(["+".join(n for n, p in zip(names, row, strict=True) if p) or "none" for row in present])


class _OneInput(nn.Module):
    """The fused network seen through one input: that input's model inputs in, the fused prediction out, with the
    other inputs left out (what the input's own explanation methods take)."""

    def __init__(self, fused: nn.Module, position: int, width: int, n_inputs: int, start: int, stop: int) -> None:
        super().__init__()
        self.fused = fused
        self.position, self.width, self.n_inputs, self.start, self.stop = position, width, n_inputs, start, stop
        encoders: Any = getattr(fused, "encoders", None)
        names: Any = getattr(fused, "names", [])
        encoder = encoders[names[position]] if encoders is not None else None
        if encoder is not None and hasattr(encoder, "target_layer"):
            self.target_layer = encoder.target_layer  # Grad-CAM of an image input explains its encoder's last block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = x.new_zeros(len(x), self.width + self.n_inputs)
        packed[:, self.start : self.stop] = x.reshape(len(x), -1).to(packed.dtype)
        packed[:, self.width + self.position] = 1.0
        return self.fused(packed)


@register
class MultimodalModality(Modality):
    """Several inputs of other kinds, one outcome, one fused model."""

    kind = "multimodal"
    title = "multimodal patient record"
    explain_title = "What each input contributed"
    request_style = "upload_inputs"  # the server: a JSON record and a file per input, one patient per request
    explanation_files = None  # the explanation is text: each input's contribution
    explanation_column = "contributions"
    explain_suffix = ".csv"
    usage: ClassVar[dict[str, str]] = {
        "data": "cases.yaml",
        "input": (
            "Give a YAML file naming each input's file, as in training (`inputs: {clinical: new_clinical.csv, "
            "scan: new_scans.csv, ...}`), every file keyed by the same patient id column; a patient may lack some "
            "inputs."
        ),
        "python": '"cases.yaml"',
    }

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        assert isinstance(config.data, MultimodalDataConfig), "the multimodal modality needs data.kind: multimodal"
        self.data: MultimodalDataConfig = config.data
        self.names = list(self.data.inputs)
        # the encoders fit their inputs: checked with the experiment file (MultimodalDataConfig.model_problems)
        encoders = dict(config.model.params.get("encoders") or {})
        self.archs = {name: self.data.encoder(name, config.task, encoders)[0] for name in self.names}
        self.subs: dict[str, Modality] = {name: self._sub(name) for name in self.names}
        self.layout_: list[dict[str, Any]] = []
        self.references_ = np.zeros((0, 0), dtype=np.float32)
        self.scratch_: Path | None = None  # external evaluation's copies of the inputs, removed by cleanup()
        self.notes_: list[str] = []  # what reading the inputs changed, for the report

    # -- the inputs' own modalities ------------------------------------------------------------------------------
    def _sub_config(self, name: str, outcome_file: Path | None = None) -> ExperimentConfig:
        data, preprocess = self.data.input_sections(name, self.config.task, outcome_file)
        return ExperimentConfig.model_validate(
            {
                "name": f"{self.config.name}-{name}",
                "task": self.data.reading_task(name, self.config.task),
                "data": data.model_dump(),
                "preprocess": preprocess.model_dump(),
                "model": {"arch": self.archs[name]},
                "train": self.config.train.model_dump(),
                "explain": self.config.explain.model_dump(),
            }
        )

    def _sub(self, name: str, outcome_file: Path | None = None) -> Modality:
        config = self._sub_config(name, outcome_file)
        sub = get_modality(config.data.kind, config.task)(config)
        sub.workdir = self.workdir / name if self.workdir is not None else None
        return sub

    @classmethod
    def example(cls, folder: Path) -> ModalityExample:
        from meddl.data.fusion import fusion_data_section, write_fusion_dataset

        files = write_fusion_dataset(folder / "patients", 160, seed=0, missing={"scan": 0.2})
        relative = {name: path.relative_to(folder) for name, path in files.items()}
        experiment = {
            "name": "example-multimodal",
            "task": "binary",
            "data": fusion_data_section(relative),
            "model": {"fusion": "attention", "encoder_params": {"scan": {"channels": [8, 16]}}},
            "train": {"epochs": 3, "batch_size": 32, "seed": 0, "progress": False},
            "evaluate": {"bootstrap": 20},
        }
        return ModalityExample(experiment, files["cases"], files["cases"], files["labelled"])

    # -- reading ------------------------------------------------------------------------------------------------
    def _outcomes(self, log: Log) -> tuple[pd.DataFrame, dict[str, int], int]:
        """The outcome table, one row per labelled patient, what was dropped (counted) and the rows read."""
        target = self.data.target
        table = read_table(target.path)
        pid = self.data.patient_id
        survival = self.config.task == "survival"
        outcome = [str(target.time), str(target.event)] if survival else [str(target.column)]  # checked by the config
        fields = ["data.target.time", "data.target.event"] if survival else ["data.target.column"]
        wanted = [(pid, "data.patient_id"), *zip(outcome, fields, strict=True)]
        for column, field in wanted:
            if column not in table.columns:
                raise MedDLError(f"{target.path}: no column {column!r} ({field}); columns: {list(table.columns)}")
        ids = table[pid].astype("string").str.strip()
        blank = np.flatnonzero(ids.isna().to_numpy() | (ids == "").fillna(True).to_numpy())
        if len(blank):
            raise MedDLError(f"{target.path}: row(s) {[int(i) + 2 for i in blank[:5]]} have no {pid!r} (line numbers)")
        repeated = ids[ids.duplicated()].unique().tolist()
        if repeated:
            raise MedDLError(
                f"{target.path}: patient(s) {repeated[:5]} have more than one outcome row; give one row per patient"
            )
        has_label = np.ones(len(table), dtype=bool)
        for column in outcome:
            values = table[column]
            has_label &= values.notna().to_numpy() & (values.astype(str).str.strip() != "").to_numpy()
        frame = pd.DataFrame({pid: ids.to_numpy()[has_label], OUTCOME_COLUMN: table[outcome[0]].to_numpy()[has_label]})
        if survival:
            frame[EVENT_COLUMN] = table[target.event].to_numpy()[has_label]
        dropped = {"patients without an outcome": int((~has_label).sum())}
        log(f"{len(frame)} patients with an outcome in {target.path.name}")
        return frame, dropped, len(table)

    def _input_outcome(self, name: str, outcomes: pd.DataFrame) -> pd.DataFrame:
        """The outcome as input ``name`` is read with it (:meth:`MultimodalDataConfig.reading_task`): the label, or
        for survival the follow-up time, or whether the event happened (images)."""
        pid = self.data.patient_id
        if self.config.task != "survival":
            return outcomes[[pid, OUTCOME_COLUMN]]
        if self.data.reading_task(name, "survival") == "regression":
            return outcomes[[pid, OUTCOME_COLUMN]]
        from meddl.data.tabular import encode_survival

        coded, _ = encode_survival(
            outcomes[OUTCOME_COLUMN], outcomes[EVENT_COLUMN], self.data.target.event_value, str(self.data.target.path)
        )
        return pd.DataFrame({pid: outcomes[pid].to_numpy(), OUTCOME_COLUMN: (coded[:, 1] > 0).astype(int)})

    def _joined_copy(self, name: str, outcomes: pd.DataFrame) -> tuple[Path, dict[str, int]]:
        """Input ``name``'s file with the outcome joined by patient id, in the run's scratch folder (for an
        expression matrix: its label table), and what was left out."""
        spec, pid = self.data.inputs[name], self.data.patient_id
        folder = (self.workdir or Path.cwd() / ".meddl-work") / "inputs"
        folder.mkdir(parents=True, exist_ok=True)
        outcomes = self._input_outcome(name, outcomes)
        if spec.kind == "expression":  # the matrix is read as it is; its label table is the outcome table
            path = folder / f"{name}-labels.csv"
            write_table(outcomes, path)
            return path, {}
        table = read_table(spec.path)
        if pid not in table.columns:
            raise MedDLError(f"inputs.{name}: {spec.path} has no column {pid!r} (data.patient_id)")
        ids = table[pid].astype("string").str.strip()
        repeated = ids[ids.duplicated() & ids.notna()].unique().tolist()
        if repeated:
            raise MedDLError(
                f"inputs.{name}: {spec.path} has more than one row for patient(s) {repeated[:5]}; a fused model "
                "takes one per patient"
            )
        table = table.assign(**{pid: ids}).drop(columns=[OUTCOME_COLUMN], errors="ignore")
        # the outcome's own columns in an input (a clinical table that is also the outcome table) never predict it
        target = self.data.target
        leaking = [c for c in (target.column, target.time, target.event) if c and c != pid and c in table.columns]
        table = table.drop(columns=leaking)
        if spec.kind in _MANIFEST_KINDS:  # the copy lives elsewhere: its file paths must not be relative
            column = str(spec.fields.get("path_column", "path"))
            if column not in table.columns:
                raise MedDLError(f"inputs.{name}: {spec.path} has no column {column!r} (its path column)")
            table[column] = [
                str(p if Path(str(p)).is_absolute() else (spec.path.parent / str(p)).resolve()) if pd.notna(p) else p
                for p in table[column]
            ]
        joined = table.merge(outcomes, on=pid, how="inner")
        classes = joined[OUTCOME_COLUMN].dropna().unique()
        if self.config.task in {"binary", "multiclass"} and len(joined) and len(classes) < 2:
            raise MedDLError(
                f"inputs.{name}: every patient in {spec.path.name} has the outcome {classes[0]!r}: whether a patient "
                "has this input would give the outcome away (a fused model learns from what is missing too); "
                "give this input for patients of every outcome, or leave it out"
            )
        path = folder / f"{name}.csv"
        write_table(joined, path)
        if leaking:
            self.notes_.append(f"{name}: the outcome column(s) {leaking} of {spec.path.name} are not predictors")
        return path, {f"{name}: rows of patients without an outcome": len(table) - len(joined)}

    def load(self, log: Log) -> Prepared:
        return self._load(log, external=False)

    def _load(self, log: Log, *, external: bool) -> Prepared:
        """Read the outcome table and every input (``external``: with the inputs' fitted states, as another site's
        data is read for ``meddl evaluate``)."""
        self.notes_ = []
        outcomes, dropped, n_read = self._outcomes(log)
        patients = outcomes[self.data.patient_id].to_numpy(dtype=object)
        position = {p: i for i, p in enumerate(patients)}
        parts: dict[str, Prepared] = {}
        rows: dict[str, np.ndarray] = {}
        notes: list[str] = []
        for name in self.names:
            path, left_out = self._joined_copy(name, outcomes)
            dropped.update(left_out)
            say = lambda message, name=name: log(f"  {name}: {message}")  # noqa: E731
            log(f"input {name} ({self.data.inputs[name].kind}): reading {self.data.inputs[name].path}")
            if external:
                part = self._read_external(name, path, say)
            else:
                self.subs[name] = self._sub(name, path)
                try:
                    part = self.subs[name].load(say)
                except MedDLError as exc:  # the input's reader names its file; say which input it is
                    raise MedDLError(f"inputs.{name}: {exc}".replace(OUTCOME_COLUMN, "the outcome")) from None
            ids = part.patient_ids if part.patient_ids is not None else np.asarray(part.sample_ids)
            ids = np.asarray([str(i).strip() for i in ids], dtype=object)
            seen = pd.Series(ids)
            repeated = seen[seen.duplicated()].unique().tolist()
            if repeated:
                raise MedDLError(
                    f"inputs.{name}: {self.data.inputs[name].path} has more than one record for patient(s) "
                    f"{repeated[:5]}; a fused model takes one per patient"
                )
            index = np.full(len(patients), -1, dtype=np.int64)
            for row, patient in enumerate(ids):
                if patient in position:
                    index[position[patient]] = row
            rows[name] = index
            parts[name] = part
            dropped.update({f"{name}: {reason}": n for reason, n in part.dropped.items() if n})
            notes.extend(f"{name}: {note}" for note in part.notes[:3])
        present = np.stack([rows[n] >= 0 for n in self.names], axis=1)
        keep = present.any(axis=1)
        dropped["patients with none of the inputs"] = int((~keep).sum())
        for name in self.names:
            rows[name] = rows[name][keep]
        patients, present = patients[keep], present[keep]
        kept = outcomes.iloc[np.flatnonzero(keep)].reset_index(drop=True)
        target, classes = self._encode_outcome(kept)
        log(
            f"{len(patients)} patients: "
            + ", ".join(f"{name} for {int(present[:, k].sum())}" for k, name in enumerate(self.names))
        )
        return Prepared(
            inputs={"parts": parts, "rows": rows},
            target=target,
            classes=classes,
            sample_ids=[str(p) for p in patients],
            patient_ids=patients.astype(str),
            n_read=n_read,
            dropped={k: v for k, v in dropped.items() if v},
            notes=[f"{len(self.names)} inputs joined by {self.data.patient_id!r}", *self.notes_, *notes],
            sections=[self._availability_section(present)],
            extra={"present": present},
        )

    def _read_external(self, name: str, path: Path, log: Log) -> Prepared:
        """Input ``name`` of another site (``path``: its copy with the outcome joined), read by its fitted modality."""
        sub = self.subs[name]
        if sub.kind != "expression":
            return sub.load_external(path, log)
        # an expression input's label table is the joined outcome copy, beside the new matrix
        config = self._sub_config(name, path)
        reader = type(sub).from_state(config, sub.state())
        reader.info = sub.info
        part = reader.load(log)
        part.extra["_modality"] = reader
        return part

    def load_external(self, path: Path, log: Log) -> Prepared:
        """Another site's patients for ``meddl evaluate``: a YAML file as the experiment's ``data`` section gives
        them (``target: {path: ...}`` and ``inputs: {name: file}``; the outcome column, patient id column and the
        inputs' other settings are the trained model's unless given), every input read with its fitted state."""
        from meddl.io.yamlfile import read_yaml

        path = Path(path)
        if path.suffix.lower() not in {".yaml", ".yml"} or not path.is_file():
            raise MedDLError(
                f"{path}: a fused model is evaluated on a YAML file naming the outcome table and each input's file "
                "(target: {path: outcomes.csv}, inputs: {clinical: clinical.csv, ...})"
            )
        raw = read_yaml(path, "external data file")
        if not isinstance(raw, dict) or not isinstance(raw.get("inputs"), dict):
            raise MedDLError(f"{path}: expected 'inputs: {{name: file}}' and 'target: {{path: ...}}'")
        target = raw.get("target")
        target = {"path": target} if isinstance(target, str) else dict(target or {})
        if "path" not in target:
            raise MedDLError(f"{path}: target.path: name the outcome table of these patients")
        unknown = sorted(set(raw["inputs"]) - set(self.names))
        if unknown:
            raise MedDLError(f"{path}: inputs {unknown} are not inputs of this model; it takes {self.names}")
        inputs = {}
        for name, spec in self.data.inputs.items():
            given = raw["inputs"].get(name)
            if given is None:
                raise MedDLError(f"{path}: inputs.{name}: name this input's file (a patient may still lack it)")
            inputs[name] = {**spec.model_dump(), "path": given.get("path") if isinstance(given, dict) else given}
        data = self.data.model_dump()
        data.update(target={**self.data.target.model_dump(), **target}, inputs=inputs, path=target["path"])
        data.pop("split", None)
        config = MultimodalDataConfig.model_validate(data)
        config.resolve_paths(path.resolve().parent)
        external = type(self)(self.config.model_copy(update={"data": config}))
        external.subs, external.layout_, external.info = dict(self.subs), self.layout_, self.info
        external.references_ = self.references_
        external.workdir = Path(tempfile.mkdtemp(prefix="meddl-external-"))  # never the user's data folder
        external.scratch_ = external.workdir
        prepared = external._load(log, external=True)
        prepared.extra["_modality"] = external
        return prepared

    def shift(self, prepared: Prepared) -> list[dict[str, Any]]:
        """Each input's own shift measures from its training data, named by the input."""
        rows: list[dict[str, Any]] = []
        for name, part in prepared.inputs["parts"].items():
            reader = part.extra.get("_modality", self.subs[name])
            rows.extend({**row, "column": f"{name}: {row['column']}"} for row in reader.shift(part))
        return sorted(rows, key=lambda row: -float(row.get("score") or 0))

    def cleanup(self) -> None:
        for sub in self.subs.values():
            sub.cleanup()
        if self.scratch_ is not None:
            import shutil

            shutil.rmtree(self.scratch_, ignore_errors=True)

    def _encode_outcome(self, outcomes: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """The outcome of each patient: class indices or values, or survival's ``[time, event code]`` rows."""
        from meddl.data.tabular import encode_known_labels, encode_survival, encode_target

        target, source = self.data.target, str(self.data.target.path)
        if self.config.task == "survival":
            known = list(self.info.get("classes") or []) or None  # external data: the trained model's causes
            return encode_survival(
                outcomes[OUTCOME_COLUMN], outcomes[EVENT_COLUMN], target.event_value, source, causes=known
            )
        known = list(self.info.get("classes") or [])
        if known and self.config.task in {"binary", "multiclass"}:  # external data: the trained model's classes
            labels = encode_known_labels(outcomes[OUTCOME_COLUMN], self.config.task, known, str(target.column), source)
            return labels, known
        return encode_target(
            outcomes[OUTCOME_COLUMN],
            self.config.task,
            target.positive_label,
            target.classes,
            str(target.column),
            source,
        )

    def _availability_section(self, present: np.ndarray) -> dict[str, Any]:
        labels = combination_labels(present, self.names)
        counts = pd.Series(labels).value_counts()
        return {
            "id": "inputs-available",
            "title": "Inputs available per patient",
            "text": [
                "Each patient's prediction uses the inputs that patient has; a missing input is masked in the "
                "fusion (and hidden at random in training, so the model learns to do without it)."
            ],
            "table": {
                "columns": ["inputs", "patients", "share"],
                "rows": [[label, int(n), f"{100 * n / len(labels):.1f}%"] for label, n in counts.items()],
            },
        }

    # -- preprocessing ------------------------------------------------------------------------------------------
    def fit(self, prepared: Prepared, train_index: np.ndarray) -> None:
        parts, rows = prepared.inputs["parts"], prepared.inputs["rows"]
        layout = []
        for name in self.names:
            sub, part = self.subs[name], parts[name]
            own = rows[name][train_index]
            own = np.sort(own[own >= 0])
            if len(own) == 0:
                raise MedDLError(f"inputs.{name}: no training patient has this input; the fused model cannot learn it")
            sub.fit(part, own)
            sub.forget_features()
            sub.describe_training(part, own)
            first = sub.input_array(part, own[:1])
            layout.append(
                {
                    "name": name,
                    "kind": sub.kind,
                    "arch": self.archs[name],
                    "shape": [int(n) for n in first.shape[1:]],
                    "dtype": str(first.dtype),
                    "arguments": sub.model_arguments(sub.features(part)),
                }
            )
        self.layout_ = layout
        self.references_ = self._references(prepared, train_index)

    def _references(self, prepared: Prepared, train_index: np.ndarray) -> np.ndarray:
        """:data:`REFERENCES` training patients' packed rows: the baselines integrated gradients start from (each
        input's attribution is then its difference from typical patients', not from an all-zero input)."""
        parts, rows = prepared.inputs["parts"], prepared.inputs["rows"]
        rng = np.random.default_rng(self.config.train.seed)
        chosen = np.sort(rng.choice(train_index, size=min(REFERENCES, len(train_index)), replace=False))
        arrays, where = {}, {}
        for name in self.names:
            own = rows[name][chosen]
            have = own >= 0
            reader = self.subs[name]
            arrays[name] = reader.input_array(parts[name], own[have]) if have.any() else np.zeros((0, 1))
            where[name] = np.where(have, np.cumsum(have) - 1, -1)
        return self._pack(arrays, where, len(chosen))

    @property
    def width(self) -> int:
        """Values in a packed row, before the presence flags."""
        return sum(int(np.prod(m["shape"])) for m in self.layout_)

    def _segments(self) -> list[tuple[int, int]]:
        spans, start = [], 0
        for m in self.layout_:
            stop = start + int(np.prod(m["shape"]))
            spans.append((start, stop))
            start = stop
        return spans

    def _pack(self, arrays: dict[str, np.ndarray], rows: dict[str, np.ndarray], n: int) -> np.ndarray:
        """Packed rows: each input's (n_own, ...) array placed at its patients' rows, then the presence flags."""
        packed = np.zeros((n, self.width + len(self.names)), dtype=np.float32)
        for k, ((start, stop), name) in enumerate(zip(self._segments(), self.names, strict=True)):
            where = rows[name]
            have = where >= 0
            if have.any():
                packed[have, start:stop] = np.asarray(arrays[name], dtype=np.float32).reshape(len(arrays[name]), -1)[
                    where[have]
                ]
            packed[:, self.width + k] = have
        return packed

    def transform(self, inputs: Any) -> np.ndarray:
        if isinstance(inputs, np.ndarray):  # already packed (prediction)
            return inputs
        parts, rows = inputs["parts"], inputs["rows"]
        n = len(next(iter(rows.values())))
        arrays = {
            name: parts[name]
            .extra.get("_modality", self.subs[name])
            .input_array(parts[name], np.arange(len(parts[name].target)))
            for name in self.names
        }
        return self._pack(arrays, rows, n)

    def model_arguments(self, inputs: Any) -> dict[str, Any]:
        return {"in_features": self.width + len(self.names), "modalities": self.layout_}

    def model_inputs(self, inputs: Any) -> Any:
        return self.transform(inputs)

    def present(self, packed: np.ndarray) -> np.ndarray:
        """(N, M) bool: which inputs each packed row has."""
        return np.asarray(packed[:, self.width :] > 0.5)

    def without(self, packed: np.ndarray, name: str) -> np.ndarray:
        """``packed`` with input ``name`` left out (its values zeroed, its flag off)."""
        k = self.names.index(name)
        start, stop = self._segments()[k]
        out = packed.copy()
        out[:, start:stop] = 0.0
        out[:, self.width + k] = 0.0
        return out

    def corruptions(self) -> list[Corruption]:
        """Per input: the input lost for a share of the patients who have it (as if never acquired), and each of
        its own kind's corruptions applied to its values."""
        found: list[Corruption] = []
        for k, name in enumerate(self.names):
            start, stop = self._segments()[k]
            shape = tuple(self.layout_[k]["shape"])

            def lose(x: np.ndarray, share: float, rng: np.random.Generator, k: int = k, name: str = name) -> np.ndarray:
                has = np.flatnonzero(x[:, self.width + k] > 0.5)
                gone = has[rng.random(len(has)) < share]
                out = x.copy()
                out[gone] = self.without(x[gone], name)
                return out

            found.append(
                Corruption(
                    f"{name}_missing",
                    f"{name} not available",
                    "share of the patients who have it",
                    (0.25, 0.5, 1.0),
                    lose,
                )
            )
            for own in self.subs[name].corruptions():

                def corrupt(
                    x: np.ndarray,
                    severity: float,
                    rng: np.random.Generator,
                    own: Corruption = own,
                    k: int = k,
                    start: int = start,
                    stop: int = stop,
                    shape: tuple[int, ...] = shape,
                ) -> np.ndarray:
                    has = np.flatnonzero(x[:, self.width + k] > 0.5)
                    out = x.copy()
                    values = x[has, start:stop].reshape(len(has), *shape)
                    out[has, start:stop] = np.asarray(own.apply(values, severity, rng)).reshape(len(has), -1)
                    return out

                found.append(
                    Corruption(f"{name}_{own.name}", f"{name}: {own.label}", own.unit, own.severities, corrupt)
                )
        return found

    # -- the run's comparison with each input alone ------------------------------------------------------------
    def comparison_models(self, prepared: Prepared) -> dict[str, tuple[dict[str, Any], np.ndarray]]:
        present = prepared.extra["present"]
        return {name: ({"use": [name], "modality_dropout": 0.0}, present[:, k]) for k, name in enumerate(self.names)}

    # -- evaluation and explanations ----------------------------------------------------------------------------
    def _scores(self, model: nn.Module, packed: np.ndarray) -> np.ndarray:
        from meddl.train import scores_from_outputs

        scores = scores_from_outputs(self.config.task, self.outputs(model, packed), self.target_scale_)
        return np.asarray(scores, dtype=np.float64)

    def _case_value(self, scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """One number per case to attribute: P(positive), the probability of the class ``reference`` predicts,
        or the predicted value (survival: the risk)."""
        if self.config.task == "survival":
            from meddl.evaluate.paired import risk_of

            return risk_of(scores)
        if scores.ndim == 2:
            return scores[np.arange(len(scores)), np.argmax(reference, axis=1)]
        return scores

    def contributions(self, model: nn.Module, packed: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
        """Per case and input: ``left_out`` (the prediction minus the prediction without the input; 0 where the
        case lacks it) and ``gradients`` (integrated gradients summed over the input's values); and ``without``,
        each input's name → the scores with that input left out."""
        from meddl.explain.attribution import compute_integrated_gradients

        present = self.present(packed)
        value = self._case_value(scores, scores)
        left_out = np.zeros((len(packed), len(self.names)))
        without = {name: self._scores(model, self.without(packed, name)) for name in self.names}
        for k, name in enumerate(self.names):
            left_out[:, k] = np.where(present[:, k], value - self._case_value(without[name], scores), 0.0)
        target = None
        if self.config.task == "multiclass":
            target = np.argmax(scores, axis=1)
        # expected gradients: integrated gradients averaged over baselines drawn per input from training patients
        # who have it (presence flags stay the case's own), so an input's attribution is how far it moves this
        # patient's prediction from typical patients' values of that input
        rng = np.random.default_rng(self.config.train.seed)
        references = self.references_
        gradients = np.zeros((len(packed), len(self.names)))
        for _ in range(BASELINE_DRAWS):
            baseline = packed.copy()
            for k, (a, b) in enumerate(self._segments()):
                having = np.flatnonzero(references[:, self.width + k] > 0.5)
                baseline[:, a:b] = references[rng.choice(having, size=len(packed)), a:b] if len(having) else 0.0
            attributions = compute_integrated_gradients(
                model, packed, baseline, target=target, n_steps=16, batch_size=32
            )
            gradients += np.stack([attributions[:, a:b].sum(axis=1) for a, b in self._segments()], axis=1)
        gradients /= BASELINE_DRAWS
        return {"left_out": left_out, "gradients": np.where(present, gradients, 0.0), "without": without}

    def explain(
        self,
        model: nn.Module,
        prepared: Prepared,
        inputs: Any,
        test_index: np.ndarray,
        scores: np.ndarray,
        out: Path,
    ) -> dict[str, Any]:
        from meddl.evaluate import main_metric
        from meddl.evaluate.paired import paired_comparison

        cfg = self.config
        packed = np.asarray(inputs)[test_index]
        present = self.present(packed)
        y = prepared.target[test_index]
        groups = prepared.patient_ids[test_index] if prepared.patient_ids is not None else None
        parts = self.contributions(model, packed, scores)
        metric = main_metric(cfg.task)
        overall, rows = {}, []
        gradient_total = np.abs(parts["gradients"]).mean(axis=0).sum() or 1.0
        for k, name in enumerate(self.names):
            has = present[:, k]
            drop = paired_comparison(
                cfg.task,
                y,
                scores,
                parts["without"][name],
                groups=groups,
                n_bootstrap=min(cfg.evaluate.bootstrap, 500),
                level=cfg.evaluate.confidence_level,
                seed=cfg.train.seed,
            )
            entry = {
                "kind": self.subs[name].kind,
                "test_patients_with_it": int(has.sum()),
                "mean_abs_integrated_gradients": float(np.abs(parts["gradients"][has, k]).mean()) if has.any() else 0.0,
                "share_of_integrated_gradients": float(np.abs(parts["gradients"][:, k]).mean() / gradient_total),
                "mean_abs_change_when_left_out": float(np.abs(parts["left_out"][has, k]).mean()) if has.any() else 0.0,
                f"{metric}_without_it": drop["baseline"],
                f"{metric}_drop_when_left_out": drop,
            }
            overall[name] = entry
            rows.append(
                [
                    name,
                    entry["kind"],
                    entry["test_patients_with_it"],
                    f"{100 * entry['share_of_integrated_gradients']:.0f}%",
                    f"{entry['mean_abs_change_when_left_out']:.3f}",
                    _fmt(drop["baseline"]),
                    f"{_fmt(drop['value'])} ({_fmt(drop['ci'][0])} to {_fmt(drop['ci'][1])})",
                ]
            )
        ranking = sorted(self.names, key=lambda n: -overall[n]["mean_abs_change_when_left_out"])
        sections = [
            {
                "id": "input-contributions",
                "title": "What each input contributed",
                "text": [
                    "Integrated gradients summed over each input's values (expected gradients: averaged over baselines "
                    "drawn from training patients), "
                    "and the change in each test patient's prediction when the input is left out (masked as if "
                    f"missing). Ranked by the change when left out: {' > '.join(ranking)}. The last column is the "
                    f"drop in test {_shown(metric)} when every patient's input is left out, with its paired "
                    "bootstrap CI."
                ],
                "table": {
                    "columns": [
                        "input",
                        "kind",
                        "test patients with it",
                        "share of |IG|",
                        "mean |change| left out",
                        f"{_shown(metric)} without it",
                        f"{_shown(metric)} drop (CI)",
                    ],
                    "rows": rows,
                },
            },
            self._combination_section(present, y, scores, groups, metric),
        ]
        own = self._own_explanations(model, prepared, test_index, scores, out)
        return {
            "sections": [*sections, *own.get("sections", [])],
            "explanations": {"inputs": overall, "ranking": ranking, **own.get("explanations", {})},
            "examples": own.get("examples", []),
            "warnings": own.get("warnings", []),
        }

    def _combination_section(
        self, present: np.ndarray, y: np.ndarray, scores: np.ndarray, groups: Any, metric: str
    ) -> dict[str, Any]:
        """Test metrics per combination of available inputs (a combination with fewer patients than
        ``evaluate.min_subgroup_size`` is counted, not scored)."""
        from meddl.evaluate.paired import metric_with_ci

        cfg = self.config
        labels = combination_labels(present, self.names)
        rows = []
        for label in pd.Series(labels).value_counts().index:
            member = labels == label
            cell = "too few to score"
            if cfg.task == "survival":
                scorable = bool((y[member][:, 1] > 0).any())
            else:
                scorable = cfg.task == "regression" or len(np.unique(y[member])) > 1
            if member.sum() >= cfg.evaluate.min_subgroup_size and scorable:
                result = metric_with_ci(
                    cfg.task,
                    y[member],
                    scores[member],
                    groups=groups[member] if groups is not None else None,
                    n_bootstrap=min(cfg.evaluate.bootstrap, 500),
                    level=cfg.evaluate.confidence_level,
                    seed=cfg.train.seed,
                )
                low, high = (result.get("ci") or [None, None])[:2]
                cell = f"{_fmt(result['value'])} ({_fmt(low)} to {_fmt(high)})"
            rows.append([label, int(member.sum()), cell])
        return {
            "id": "metrics-by-inputs",
            "title": "Test metrics by the inputs a patient has",
            "text": [f"Test {_shown(metric)} of the fused model for the patients with each combination of inputs."],
            "table": {"columns": ["inputs", "test patients", _shown(metric)], "rows": rows},
        }

    def _own_explanations(
        self, model: nn.Module, prepared: Prepared, test_index: np.ndarray, scores: np.ndarray, out: Path
    ) -> dict[str, Any]:
        """Each input's own explanation by its modality, on the fused model seen through that input alone."""
        from meddl.train import scores_from_outputs

        parts, rows = prepared.inputs["parts"], prepared.inputs["rows"]
        merged: dict[str, Any] = {"sections": [], "explanations": {}, "examples": [], "warnings": []}
        if self.config.task == "survival":  # its inputs were read with another task; their methods would score that
            merged["warnings"].append(
                "each input's own explanation (features, genes, heat maps) is not drawn for survival yet; the "
                "contributions per input are"
            )
            return merged
        for k, name in enumerate(self.names):
            sub, part = self.subs[name], parts[name]
            own = rows[name][test_index]
            has = own >= 0
            if not has.any():
                merged["warnings"].append(f"no test patient has input {name}: it is not explained on its own")
                continue
            start, stop = self._segments()[k]
            view = _OneInput(model, k, self.width, len(self.names), start, stop).eval()
            sub.target_scale_ = self.target_scale_
            own_scores = np.asarray(
                scores_from_outputs(
                    self.config.task, sub.outputs(view, sub.input_array(part, own[has])), self.target_scale_
                )
            )
            folder = out / "inputs" / name
            folder.mkdir(parents=True, exist_ok=True)
            found = sub.explain(view, part, sub.features(part), own[has], own_scores, folder)
            for section in found.get("sections", []):
                merged["sections"].append(
                    {
                        **section,
                        "id": f"{name}-{section.get('id', 'own')}",
                        "title": f"{name}: {section.get('title', '')}",
                    }
                )
            if found.get("explanations"):
                merged["explanations"][name] = found["explanations"]
            merged["examples"].extend(
                {**example, "title": f"{name}: {example.get('title', '')}"} for example in found.get("examples", [])
            )
            merged["warnings"].extend(f"{name}: {w}" for w in found.get("warnings", []))
        return merged

    def data_summary(self, prepared: Prepared, splits: np.ndarray) -> dict[str, Any]:
        present = prepared.extra["present"]
        labels = combination_labels(present, self.names)
        return {
            "target": self.data.target.column,
            "inputs": {
                name: {
                    "kind": self.subs[name].kind,
                    "path": str(self.data.inputs[name].path),
                    "patients": int(present[:, k].sum()),
                    "by_split": {s: int((present[:, k] & (splits == s)).sum()) for s in np.unique(splits)},
                }
                for k, name in enumerate(self.names)
            },
            "input_combinations": {str(k): int(v) for k, v in pd.Series(labels).value_counts().items()},
        }

    def warnings(self, prepared: Prepared, test_index: np.ndarray) -> list[str]:
        present = prepared.extra["present"][test_index]
        return [
            f"input {name} is missing for {int((~present[:, k]).sum())} of {len(test_index)} test patients"
            for k, name in enumerate(self.names)
            if (~present[:, k]).any()
        ]

    # -- bundle -------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"inputs": {name: self.subs[name].kind for name in self.names}, "layout": self.layout_}

    def save_state(self, folder: Path) -> list[str]:
        (folder / "preprocess.json").write_text(json.dumps(clean_json(self.state()), indent=1) + "\n")
        np.save(folder / "references.npy", self.references_.astype(np.float32), allow_pickle=False)
        files = ["preprocess.json", "references.npy"]
        for name in self.names:
            own = folder / "inputs" / name
            own.mkdir(parents=True, exist_ok=True)
            files.extend(f"inputs/{name}/{file}" for file in self.subs[name].save_state(own))
        return files

    def bundle_info(self, prepared: Prepared) -> dict[str, Any]:
        parts = prepared.inputs["parts"]
        return {
            "inputs": {
                name: clean_json(
                    {
                        **self.subs[name].bundle_info(parts[name]),
                        "target": OUTCOME_COLUMN,
                        "classes": parts[name].classes,
                        "task": self.data.reading_task(name, self.config.task),
                    }
                )
                for name in self.names
            }
        }

    @classmethod
    def load_state(cls, config: ExperimentConfig, folder: Path, info: dict[str, Any]) -> MultimodalModality:
        modality = cls(config)
        state = json.loads((folder / "preprocess.json").read_text())
        modality.layout_ = list(state["layout"])
        modality.references_ = np.load(folder / "references.npy", allow_pickle=False)
        for name in modality.names:
            sub_config = modality._sub_config(name)
            sub_class = get_modality(sub_config.data.kind, sub_config.task)
            modality.subs[name] = sub_class.load_state(sub_config, folder / "inputs" / name, info["inputs"][name])
        modality.info = info
        return modality

    @classmethod
    def from_state(cls, config: ExperimentConfig, state: dict[str, Any]) -> MultimodalModality:
        raise MedDLError("a multimodal bundle is loaded from its folder (preprocess.json and inputs/)")

    def input_spec(self, prepared: Prepared) -> dict[str, Any]:
        return {"shape": [self.width + len(self.names)], "dtype": "float32", "inputs": self.layout_}

    def export_description(self) -> dict[str, Any]:
        return {
            "note": "One packed row per patient: each input's model inputs (its own kind's fitted preprocessing), "
            "flattened in the order of 'inputs', then one presence flag per input (1 present, 0 missing: its "
            "values are then 0). Build rows with meddl.load_bundle(path).read('cases.yaml').inputs.",
            "inputs": [{k: m[k] for k in ("name", "kind", "shape")} for m in self.layout_],
        }

    # -- prediction ---------------------------------------------------------------------------------------------
    def _case_files(self, source: Any) -> dict[str, Path]:
        """``{input: file}`` from a YAML/JSON file (``inputs: {...}``, paths relative to it) or a dict."""
        base = Path.cwd()
        if isinstance(source, str | Path):
            from meddl.io.yamlfile import read_yaml

            path = Path(source)
            if not path.is_file():
                raise MedDLError(f"{path}: give a YAML file naming each input's file (inputs: {{name: file}})")
            raw = read_yaml(path, "cases file")
            base = path.resolve().parent
        else:
            raw = source
        if not isinstance(raw, dict):
            raise MedDLError(f"{source}: expected a mapping with 'inputs: {{name: file}}'")
        given = raw.get("inputs", raw)
        if not isinstance(given, dict):
            raise MedDLError(f"{source}: 'inputs' must map each input's name to its file")
        unknown = sorted(set(given) - set(self.names))
        if unknown:
            raise MedDLError(f"{source}: inputs {unknown} are not inputs of this model; it takes {self.names}")
        if not given:
            raise MedDLError(f"{source}: name at least one input's file; this model takes {self.names}")
        files = {}
        for name, file in given.items():
            path = Path(str(file)).expanduser()
            files[name] = path if path.is_absolute() else (base / path).resolve()
        return files

    def _read_input(self, name: str, path: Path) -> tuple[np.ndarray, PredictionInputs]:
        """One input's cases for prediction: the patient id of each case and what its modality read."""
        sub, pid, kind = self.subs[name], self.data.patient_id, self.subs[name].kind
        if kind == "expression":
            cases = sub.read_for_prediction(path)
            return np.asarray([str(i).strip() for i in cases.ids], dtype=object), cases
        table = read_table(path)
        if pid not in table.columns:
            raise MedDLError(f"inputs.{name}: {path} has no column {pid!r} (the patient id)")
        ids = table[pid].astype("string").str.strip().fillna("").to_numpy(dtype=object)
        if kind in _MANIFEST_KINDS:
            column = str(self.data.inputs[name].fields.get("path_column", "path"))
            if column not in table.columns:
                raise MedDLError(f"inputs.{name}: {path} has no column {column!r} (its path column)")
            files = [p if Path(str(p)).is_absolute() else (path.parent / str(p)).resolve() for p in table[column]]
            return ids, sub.read_for_prediction([Path(str(f)) for f in files])
        tables: Any = sub  # a table's reader takes the file's name for its notes
        return ids, tables.read_for_prediction(table, path.name)

    def read_for_prediction(self, source: Any) -> PredictionInputs:
        files = self._case_files(source)
        patients: dict[str, None] = {}  # every patient named by any input, in the order first met
        arrays: dict[str, np.ndarray] = {}
        found: dict[str, dict[str, int]] = {}
        case_notes: dict[str, list[str]] = {}
        for name in self.names:
            if name not in files:
                continue
            ids, cases = self._read_input(name, files[name])
            usable = np.flatnonzero(cases.usable)
            model_inputs = self.subs[name].model_inputs(cases.inputs)
            if isinstance(model_inputs, list):
                model_inputs = torch.stack([torch.as_tensor(x) for x in model_inputs]).numpy() if model_inputs else None
            arrays[name] = np.asarray(model_inputs, dtype=np.float32) if model_inputs is not None else np.zeros((0,))
            rows: dict[str, int] = {}
            seen: set[str] = set()
            for k, patient in enumerate(ids):
                if patient == "":
                    raise MedDLError(f"inputs.{name}: {files[name]} record {k + 1} has no patient id")
                if patient in seen:
                    raise MedDLError(f"inputs.{name}: {files[name]} has more than one row for patient {patient!r}")
                seen.add(patient)
                patients.setdefault(patient, None)
                note = cases.notes[k]
                if cases.usable[k]:
                    rows[patient] = int(np.searchsorted(usable, k))
                if note:
                    case_notes.setdefault(patient, []).append(f"{name}: {note}")
            found[name] = rows
        order = list(patients)
        n = len(order)
        row_index = {
            name: np.array([found.get(name, {}).get(p, -1) for p in order], dtype=np.int64) for name in self.names
        }
        packed = self._pack({name: arrays.get(name, np.zeros((0, 1))) for name in self.names}, row_index, n)
        present = self.present(packed)
        notes = []
        for i, patient in enumerate(order):
            missing = [name for k, name in enumerate(self.names) if not present[i, k]]
            parts = [*case_notes.get(patient, [])]
            if missing and present[i].any():
                parts.append(f"without {', '.join(missing)}")
            notes.append("; ".join(parts))
        usable_rows = np.asarray(present.any(axis=1), dtype=bool)
        for row in np.flatnonzero(~usable_rows):
            notes[row] = "not scored: no input could be read" + (f" ({notes[row]})" if notes[row] else "")
        return PredictionInputs(
            inputs=packed[usable_rows],
            ids=order,
            notes=notes,
            usable=usable_rows,
            columns={"patient_id": order, "inputs": list(combination_labels(present, self.names))},
        )

    def request_schema(self) -> dict[str, Any]:
        """What the server takes: per input, whether it comes as values in ``record`` or as an uploaded file."""
        inputs = {}
        for name in self.names:
            sub = self.subs[name]
            if sub.kind == "tabular":
                columns = list(sub.info.get("feature_columns") or [])
                inputs[name] = {"kind": sub.kind, "give": f"record.{name}: {{column: value}}", "columns": columns}
            elif sub.kind == "expression":
                inputs[name] = {
                    "kind": sub.kind,
                    "give": f"record.{name}: {{gene: value}}, or a file field {name!r} (a one-sample matrix)",
                }
            else:
                inputs[name] = {
                    "kind": sub.kind,
                    "give": f"a file field {name!r}",
                    "formats": list(sub.upload_suffixes),
                }
        return {
            "upload": "multipart/form-data: 'record' (JSON) and one file field per input given as a file",
            "record": {self.data.patient_id: "the patient's id (echoed back)"},
            "inputs": inputs,
        }

    def read_upload(self, record: dict[str, Any], files: dict[str, Path]) -> PredictionInputs:
        """One patient from the server's form: ``record`` (the patient id, and inputs given as values: a table's
        ``{column: value}``, an expression profile's ``{gene: value}``) and ``files`` (input name → an uploaded
        file: an image, a signal record, a one-sample expression matrix). An input in neither is missing."""
        pid = self.data.patient_id
        patient = str(record.get(pid, record.get("patient_id", "case")))
        unknown = sorted((set(record) - {pid, "patient_id"} | set(files)) - set(self.names))
        if unknown:
            raise MedDLError(f"{unknown} are not inputs of this model; it takes {self.names} (and {pid!r})")
        inputs: dict[str, Path] = {}
        with tempfile.TemporaryDirectory() as scratch:
            here = Path(scratch)
            for name in self.names:
                kind = self.subs[name].kind
                given, file = record.get(name), files.get(name)
                if given is not None and file is not None:
                    raise MedDLError(f"{name}: give it as values in 'record' or as a file, not both")
                if file is not None and kind in _MANIFEST_KINDS:
                    inputs[name] = here / f"{name}-manifest.csv"
                    pd.DataFrame({pid: [patient], "path": [str(file)]}).to_csv(inputs[name], index=False)
                elif file is not None:
                    table = read_table(file)
                    if pid not in table.columns:
                        table.insert(0, pid, patient)
                    inputs[name] = here / f"{name}-table.csv"
                    table.to_csv(inputs[name], index=False)
                elif given is not None:
                    if kind in _MANIFEST_KINDS or not isinstance(given, dict):
                        raise MedDLError(f"record.{name}: a {kind} input is uploaded as a file field {name!r}")
                    inputs[name] = here / f"{name}-record.csv"
                    pd.DataFrame([{pid: patient, **given}]).to_csv(inputs[name], index=False)
            if not inputs:
                raise MedDLError(f"give at least one input of {self.names}")
            return self.read_for_prediction({"inputs": inputs})

    def explain_file(self, model: nn.Module, cases: PredictionInputs, scores: np.ndarray, out: Path) -> str:
        """``meddl explain``: a CSV of each case's contribution per input (the change in the prediction when the
        input is left out, and its integrated gradients)."""
        packed = np.asarray(cases.inputs)
        parts = self.contributions(model, packed, np.asarray(scores))
        present = self.present(packed)
        ids = [i for i, usable in zip(cases.ids, cases.usable, strict=True) if usable]
        rows = [
            {
                "patient_id": ids[i],
                "input": name,
                "present": bool(present[i, k]),
                "change_when_left_out": float(parts["left_out"][i, k]),
                "integrated_gradients": float(parts["gradients"][i, k]),
            }
            for i in range(len(packed))
            for k, name in enumerate(self.names)
        ]
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_table(pd.DataFrame(rows), out)
        return f"wrote each input's contribution for {len(ids)} patient(s) to {out}"

    def explain_cases(
        self, model: nn.Module, cases: PredictionInputs, scores: np.ndarray, out: Path | None
    ) -> list[str]:
        """Each input's contribution to each case: the change in the prediction when it is left out."""
        packed = np.asarray(cases.inputs)
        parts = self.contributions(model, packed, np.asarray(scores))
        present = self.present(packed)
        texts = []
        for i in range(len(packed)):
            items = [f"{name} {parts['left_out'][i, k]:+.3f}" for k, name in enumerate(self.names) if present[i, k]]
            texts.append("; ".join(items))
        return texts


def _shown(metric: str) -> str:
    """A metric's name as the report writes it."""
    return metric.upper() if metric in {"auroc", "rmse", "mae"} else metric.replace("_", " ")


def _fmt(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{float(value):.3f}"

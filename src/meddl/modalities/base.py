"""The one interface every data kind implements: :class:`Modality`.

A modality owns everything that differs by data kind — reading files for training and for prediction, fitting its
preprocessing on the training split and saving that state (JSON + NumPy, never pickle), the model's input
arguments, the torch datasets the trainer iterates, explanations, its report sections, the shift measures of
external evaluation, and what the server accepts (upload suffixes, request style). The training run
(:mod:`meddl.run`), the bundle (:mod:`meddl.bundle`), the CLI and the server call only this interface and the
registry (:mod:`meddl.modalities.registry`); nothing above this layer names a data kind.

The hooks come in two groups. *Array* hooks (``transform``, ``dataset``, ``outputs``, ``baseline_features``) suit a
kind whose samples become one array each; *prepared* hooks (``training_dataset``, ``prepared_outputs``,
``baseline_data``) work on the whole :class:`Prepared` set and default to the array hooks, so a kind that reads
lazily (images) or resamples its training rows (tables) overrides those instead.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, TensorDataset

from meddl.errors import MedDLError
from meddl.evaluate.robustness import Corruption
from meddl.evaluate.shift import describe, far_outside, mean_shift
from meddl.modalities.schema import ExperimentConfig
from meddl.train.runtime import laid_out

__all__ = [
    "BaselineData",
    "Log",
    "Modality",
    "ModalityExample",
    "PredictionInputs",
    "Prepared",
    "batched_outputs",
    "encode_labels",
]

Log = Callable[[str], None]
BaselineData = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]


@dataclass
class Prepared:
    """A data set once read: its inputs, labels and what the report needs to say about it.

    ``inputs`` is whatever the modality's ``transform`` takes: an (N, ...) float32 (or int64 token) array, possibly a
    NumPy memmap, for most kinds; a DataFrame of predictor columns for tables; the image list for images. ``target``
    is (N,) class indices or values, or (N, K) 0/1 for multilabel.
    """

    inputs: Any
    target: np.ndarray
    classes: list[str]
    sample_ids: list[str]
    patient_ids: np.ndarray | None
    n_read: int
    dropped: dict[str, int] = field(default_factory=dict)
    # every change MedDL made to the data, counted: {"NaN samples interpolated": 12, "alpha channel dropped": 3}
    repairs: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    given_splits: np.ndarray | None = None
    dates: np.ndarray | None = None  # for a temporal split
    sections: list[dict[str, Any]] = field(default_factory=list)  # e.g. the cohort flow table
    extra: dict[str, Any] = field(default_factory=dict)  # kind-specific (planted motif sites, raw sequences …)


@dataclass
class PredictionInputs:
    """New cases read for a bundle: their inputs (rows that could be read) and a note for every case.

    ``columns`` are leading output columns, one value per case (e.g. ``row`` and ``patient_id`` for tables, ``path``
    for images); when empty, the cases' ``ids`` become the ``id`` column.
    """

    inputs: Any
    ids: list[str]
    notes: list[str]  # "" for scored cases; the reason for cases that could not be read
    usable: np.ndarray  # (n_cases,) bool: which cases have a row in ``inputs``
    extra: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class ModalityExample:
    """A small data set of a kind, written to a folder, with an experiment that trains on it in seconds: what the
    contract test runs every registered modality through (train → bundle → predict → explain → evaluate → export).

    ``experiment`` is the experiment dict (paths relative to the folder); ``predict`` and ``explain`` are inputs for
    ``meddl predict`` and ``meddl explain``; ``external`` is labelled data for ``meddl evaluate``.
    """

    experiment: dict[str, Any]
    predict: Any
    explain: Any
    external: Path


@torch.no_grad()
def batched_outputs(model: torch.nn.Module, inputs: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Raw outputs (logits) of ``model`` for every row of ``inputs``, in order, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    for start in range(0, len(inputs), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch_size])).to(device)
        outputs.append(model(laid_out(model, batch)).float().cpu())
    if not outputs:
        return np.zeros((0, 1), dtype=np.float32)
    return torch.cat(outputs).numpy()


class Modality(ABC):
    """One data kind's part of the pipeline; subclasses register with :func:`meddl.modalities.register`.

    Class attributes describe the kind to the CLI and the server:

    * ``kind``: the ``data.kind`` value; ``title``: how a person names it.
    * ``upload_suffixes``: file suffixes the server accepts as an upload (empty: none).
    * ``request_style``: ``records`` (JSON rows typed by the modality's ``input_schema``), ``upload_image`` (one
      image per request), ``upload_cases`` (one file of cases per request), ``upload_inputs`` (one patient per
      request: a JSON ``record`` and a file per input, read by :meth:`read_upload`), ``events`` (JSON rows of an event
      store), ``text`` (one case typed as text — a SMILES — into the box ``request_schema()["text_field"]``
      describes, sent to ``json_route``).
    * ``json_route``: the server action that takes a JSON body typed by ``request_model`` (``predict``; its explain
      twin is the same name with ``explain``), or None when the kind takes uploads only. A kind that takes both
      names its JSON route apart (sequences: ``predict_sequences``); ``request_items`` names the body's list of
      cases, counted against the server's batch limit.
    * ``explanation_column``: the prediction table's column for ``--explain``; ``explanation_files``: the suffix
      of the folder ``meddl predict --explain`` writes explanation files to (None: the explanation is text).
    """

    kind: ClassVar[str]
    task_variant: ClassVar[str | None] = None  # the task this class serves for its kind (segmentation), or any
    title: ClassVar[str] = ""
    explain_title: ClassVar[str] = "Explanations"
    upload_suffixes: ClassVar[tuple[str, ...]] = ()
    request_style: ClassVar[str] = "upload_cases"
    json_route: ClassVar[str | None] = None
    request_items: ClassVar[str] = ""
    quick_requests: ClassVar[bool] = False  # reading a JSON body and predicting take well under a millisecond
    explanation_column: ClassVar[str] = "explanation"
    explanation_files: ClassVar[str | None] = "explanations"  # `predict --explain` folder suffix; None: text only
    explain_suffix: ClassVar[str] = ""  # what `meddl explain --out` writes: a file with this suffix, or a folder
    state_files: ClassVar[tuple[str, ...]] = ("preprocess.json",)
    # How the model card says to use a model of this kind: the ``--data`` argument of ``meddl predict``, what the
    # input must hold, and the argument of ``Bundle.predict`` in Python.
    usage: ClassVar[dict[str, str]] = {
        "data": "cases.csv",
        "input": "The input table needs the same predictor columns as the development data.",
        "python": '"cases.csv"',
    }

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config
        self.workdir: Path | None = None  # scratch space in the run folder (e.g. memory-mapped features)
        self._features: Any = None
        self._features_of: int | None = None
        self.info: dict[str, Any] = {}  # model.json of the bundle this modality was loaded from
        # regression: the training target's (mean, std); survival: the fitted SurvivalOutputs
        self.target_scale_: Any = None
        self.training_profile_: dict[str, dict[str, float]] | None = None  # described profile() of training rows

    @classmethod
    @abstractmethod
    def example(cls, folder: Path) -> ModalityExample:
        """Write a small synthetic data set of this kind under ``folder`` and an experiment that trains on it in
        seconds (the contract test runs every registered modality through it)."""

    # -- training: reading and fitting --------------------------------------------------------------
    @abstractmethod
    def load(self, log: Log) -> Prepared:
        """Read the data set named by ``config.data`` (errors name the file and record)."""

    def fit(self, prepared: Prepared, train_index: np.ndarray) -> None:  # noqa: B027  (optional step)
        """Fit preprocessing on the training rows only (default: nothing to fit)."""

    def transform(self, inputs: Any) -> Any:
        """Apply the fitted preprocessing to input rows (default: unchanged)."""
        return inputs

    def features(self, prepared: Prepared) -> Any:
        """``transform(prepared.inputs)``, computed once per fitted state."""
        if self._features_of != id(prepared):
            self._features = self.transform(prepared.inputs)
            self._features_of = id(prepared)
        return self._features

    def forget_features(self) -> None:
        """Drop the cached transformed inputs (after refitting, e.g. per cross-validation fold)."""
        self._features, self._features_of = None, None

    @abstractmethod
    def model_arguments(self, inputs: Any) -> dict[str, Any]:
        """Constructor arguments that come from the data (``in_channels``, ``vocab_size``, ``in_features``)."""

    def input_spec(self, prepared: Prepared) -> dict[str, Any]:
        """The network's input per sample: ``{"shape": [...], "dtype": "float32" | "int64"}`` (``model.json``;
        ONNX export traces and checks the graph with inputs of this shape)."""
        features = self.features(prepared)
        return {"shape": [int(n) for n in features.shape[1:]], "dtype": str(np.dtype(features.dtype))}

    def export_description(self) -> dict[str, Any]:
        """What the ONNX sidecar says about the graph's input (names of features, how raw data is encoded)."""
        return {
            "note": f"The inputs are {self.kind} data encoded by MedDL's fitted preprocessing state (preprocess.json "
            "in the bundle): read them with meddl.load_bundle(path).read(file).inputs and "
            "bundle.modality.model_inputs(...)."
        }

    def derived_defaults(self, prepared: Prepared) -> dict[str, dict[str, Any]]:
        """Settings this modality took from the data because the experiment file left them out (e.g. a sequence
        length from the sequences' lengths): ``{"preprocess.length": {"value": 60, "why": "..."}}``, written to
        the run record and the report."""
        return dict(getattr(self, "derived_", {}))

    # -- training: batches and outputs ------------------------------------------------------------------
    def dataset(self, inputs: np.ndarray, target: np.ndarray, *, train: bool) -> Dataset:
        """The torch dataset of array rows (default: tensors; training augmentation overrides this)."""
        y = torch.from_numpy(np.asarray(target, dtype=np.float32 if self._float_target else np.int64))
        return TensorDataset(torch.from_numpy(np.ascontiguousarray(inputs)), y)

    def training_dataset(self, prepared: Prepared, index: np.ndarray, target: np.ndarray, *, train: bool) -> Dataset:
        """The dataset the trainer iterates for the rows ``index`` (``target``: their, possibly scaled, labels)."""
        return self.dataset(self.features(prepared)[index], target, train=train)

    @property
    def _float_target(self) -> bool:
        return self.config.task in {"binary", "multilabel", "regression", "survival"}

    def outputs(self, model: torch.nn.Module, inputs: Any) -> np.ndarray:
        """Raw model outputs for evaluation and prediction (sequences average over both strands)."""
        return batched_outputs(model, inputs)

    def prepared_outputs(self, model: torch.nn.Module, prepared: Prepared, index: np.ndarray) -> np.ndarray:
        """Raw model outputs for the rows ``index`` of a prepared set."""
        return self.outputs(model, self.features(prepared)[index])

    # -- evaluation ----------------------------------------------------------------------------------
    def baseline_features(self, prepared: Prepared, inputs: Any) -> np.ndarray | None:
        """Flat features for the classical baselines (logistic regression, gradient boosting); None: no baseline."""
        return None

    def baseline_data(self, prepared: Prepared, index: dict[str, np.ndarray]) -> BaselineData | None:
        """(X_train, y_train, X_validation, X_test, sample weight) for the classical baselines; None: none."""
        flat = self.baseline_features(prepared, self.features(prepared))
        if flat is None:
            return None
        train = index["train"]
        return flat[train], prepared.target[train], flat[index["validation"]], flat[index["test"]], None

    def comparison_models(self, prepared: Prepared) -> dict[str, tuple[dict[str, Any], np.ndarray]]:
        """Models the run trains beside the main one, on the same split, and compares with it on the same test
        rows: ``{name: (model.* arguments that make it, which rows of prepared it can score)}`` (a fused model:
        each input alone, on the patients who have that input). Default: none."""
        return {}

    def corruptions(self) -> list[Corruption]:
        """How this kind's data can get worse, in the space of its model inputs (the robustness suite of a
        training run; see :mod:`meddl.evaluate.robustness`): each :class:`Corruption` says in its ``label`` and
        ``unit`` what a severity means clinically. Called after :meth:`fit` (default: none)."""
        return []

    def input_array(self, prepared: Prepared, index: np.ndarray) -> np.ndarray:
        """The model inputs of the rows ``index`` as one (len(index), ...) array, in the order :meth:`outputs`
        scores them (default: ``features(prepared)[index]``; images: the preprocessed images, held in memory). A
        fused model packs each input's rows from this."""
        return np.asarray(self.features(prepared)[index])

    def robustness_inputs(self, prepared: Prepared, index: np.ndarray) -> Any:
        """The model inputs of the rows ``index`` that each :meth:`corruptions` entry takes and :meth:`outputs`
        scores (default: :meth:`input_array`)."""
        return self.input_array(prepared, index)

    def subgroup_labels(self, prepared: Prepared, column: str, index: np.ndarray) -> pd.Series:
        """The group of each row of ``index`` by ``column`` (``evaluate.subgroups``)."""
        raise MedDLError(f"evaluate.subgroups: {self.kind} data has no columns to group by ({column!r})")

    def group_values(self, prepared: Prepared, column: str, index: np.ndarray) -> np.ndarray:
        """The raw value of ``column`` for each row of ``index``, as text ("missing" when absent): the groups of
        Mondrian conformal calibration (``evaluate.conformal.mondrian``)."""
        raise MedDLError(f"evaluate.conformal.mondrian: {self.kind} data has no columns to group by ({column!r})")

    def case_group_values(self, cases: PredictionInputs, column: str) -> np.ndarray:
        """As :meth:`group_values`, for the scored cases of new data (``cases.usable``), read at prediction."""
        raise MedDLError(f"evaluate.conformal.mondrian: {self.kind} data has no columns to group by ({column!r})")

    def explain(
        self,
        model: torch.nn.Module,
        prepared: Prepared,
        inputs: Any,
        test_index: np.ndarray,
        scores: np.ndarray,
        out: Path,
    ) -> dict[str, Any]:
        """Record entries for the report (``sections``, ``explanations``, ``examples``, ``localization``,
        ``metrics`` of explanation quality, ``warnings``)."""
        return {}

    def data_summary(self, prepared: Prepared, splits: np.ndarray) -> dict[str, Any]:
        """Entries the kind adds to the run record's data summary (e.g. a table's columns)."""
        return {}

    def warnings(self, prepared: Prepared, test_index: np.ndarray) -> list[str]:
        """Warnings about the data the report shows (default: none)."""
        return []

    def splits_table(self, prepared: Prepared, splits: np.ndarray) -> pd.DataFrame:
        """``splits.csv``: which split each sample went to."""
        return pd.DataFrame(
            {
                "id": prepared.sample_ids,
                "patient_id": prepared.patient_ids if prepared.patient_ids is not None else None,
                "split": splits,
            }
        )

    # -- bundle --------------------------------------------------------------------------------------
    @abstractmethod
    def state(self) -> dict[str, Any]:
        """The fitted preprocessing as JSON (``preprocess.json`` in the bundle)."""

    def save_state(self, folder: Path) -> list[str]:
        """Write the fitted preprocessing into a bundle folder; returns the file names written."""
        import json

        from meddl._json import clean_json

        (folder / "preprocess.json").write_text(json.dumps(clean_json(self.state()), indent=1) + "\n")
        return ["preprocess.json"]

    def bundle_info(self, prepared: Prepared) -> dict[str, Any]:
        """Entries the kind adds to ``model.json`` (what prediction needs beyond the fitted state; by default the
        training split's profile, for the shift report of external evaluation)."""
        return {"training_profile": self.training_profile_} if self.training_profile_ else {}

    @classmethod
    def load_state(cls, config: ExperimentConfig, folder: Path, info: dict[str, Any]) -> Modality:
        """Rebuild the fitted modality from a bundle folder (default: ``preprocess.json`` → :meth:`from_state`)."""
        import json

        modality = cls.from_state(config, json.loads((folder / "preprocess.json").read_text()))
        modality.info = info
        return modality

    @classmethod
    @abstractmethod
    def from_state(cls, config: ExperimentConfig, state: dict[str, Any]) -> Modality:
        """Rebuild the fitted modality from its saved state."""

    def prepare_external(self, prepared: Prepared) -> None:  # noqa: B027  (optional step)
        """Finish inputs read for external validation with the fitted state (kinds whose ``fit`` builds inputs)."""

    def load_external(self, path: Path, log: Log) -> Prepared:
        """Another site's labelled data, read with the fitted state as in training (``meddl evaluate``)."""
        update: dict[str, Any] = {"path": Path(path).resolve()}
        # A reference genome stays the one the model was trained with; a labels table is looked for beside the data.
        reference = getattr(self.config.data, "reference", None)
        if reference is not None and not reference.is_absolute():
            update["reference"] = (self.config.data.path.parent / reference).resolve()
        data_config = self.config.data.model_copy(update=update)
        external = type(self).from_state(self.config.model_copy(update={"data": data_config}), self.state())
        external.info = getattr(self, "info", {})
        prepared = external.load(log)
        external.prepare_external(prepared)
        prepared.extra["_modality"] = external
        return prepared

    def profile(self, prepared: Prepared, index: np.ndarray) -> dict[str, np.ndarray]:
        """Per-sample measures of the rows ``index`` that describe the data, not the label (image intensity,
        sequence GC content, signal amplitude, EHR event rates): the training split's are kept in the bundle, and
        external evaluation reports how far new data moved from them (default: none)."""
        return {}

    def describe_training(self, prepared: Prepared, train_index: np.ndarray) -> None:
        """Keep the summary of :meth:`profile` on the training split (the run calls this after :meth:`fit`)."""
        self.training_profile_ = describe(self.profile(prepared, train_index)) or None

    def shift(self, prepared: Prepared) -> list[dict[str, Any]]:
        """How far new data moved from the training data, one row per measure (``meddl evaluate``):
        ``{"column", "kind", "train", "new", "score", "measure"}``, largest first (default: the standardised mean
        difference of each :meth:`profile` measure)."""
        train = self.info.get("training_profile") or self.training_profile_
        if not train:
            return []
        return mean_shift(train, describe(self.profile(prepared, np.arange(len(prepared.target)))))

    def case_profile(self, cases: PredictionInputs) -> dict[str, np.ndarray]:
        """:meth:`profile`'s measures of each scorable new case (``cases.usable``), where the kind can take them
        from what prediction read (default: none)."""
        return {}

    def range_notes(self, cases: PredictionInputs) -> list[str]:
        """A note for each scorable case whose :meth:`case_profile` lies far outside the training profile (see
        :func:`meddl.evaluate.shift.far_outside`), e.g. an image ten times brighter than any in training."""
        train = self.info.get("training_profile") or self.training_profile_ or {}
        notes = [""] * int(np.sum(cases.usable))
        for name, values in self.case_profile(cases).items():
            stats = train.get(name)
            if not stats or "q05" not in stats:  # a bundle from before percentiles were kept
                continue
            low, high = float(stats["q05"]), float(stats["q95"])
            for i in np.flatnonzero(far_outside(values, low, high, float(stats["mean"]))):
                note = f"{name} {float(values[i]):.4g} is far outside the training range ({low:.4g}–{high:.4g})"
                notes[i] = f"{notes[i]}; {note}" if notes[i] else note
        return notes

    def cleanup(self) -> None:  # noqa: B027  (optional step)
        """Remove scratch files once the bundle is written (default: none)."""

    # -- prediction -------------------------------------------------------------------------------
    @abstractmethod
    def read_for_prediction(self, source: Any) -> PredictionInputs:
        """Read new cases from ``source`` (a file, folder or manifest) into model inputs, a note per case."""

    def model_inputs(self, inputs: Any) -> Any:
        """What the network takes, from ``PredictionInputs.inputs`` (default: :meth:`transform` of them)."""
        return self.transform(inputs)

    def explain_cases(
        self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray, out: Path | None
    ) -> list[Any]:
        """Per-case explanation files or text for ``meddl predict --explain`` (one entry per usable case)."""
        return [""] * int(cases.usable.sum())

    def explain_file(
        self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray, out: Path
    ) -> str | None:
        """``meddl explain`` when the kind writes one file (a table's CSV, an image's heat map); returns what was
        written, or None for the default: a folder of per-case explanation files and ``explanations.csv``."""
        return None

    def case_contributions(
        self, model: torch.nn.Module, cases: PredictionInputs, *, top_k: int | None = None
    ) -> list[list[dict[str, Any]]]:
        """Per case, its largest per-variable contributions (kinds whose explanations are per variable)."""
        raise MedDLError(f"per-variable contributions are not available for {self.kind} models")

    def score_variants(self, bundle: Any, vcf: Path, reference: Path | None = None) -> pd.DataFrame:
        """REF and ALT predictions of every variant of a VCF (``meddl predict --variants``; sequence models)."""
        raise MedDLError(f"--variants needs a sequence model; {bundle.path} is a {self.kind} model")

    def request_schema(self) -> Any:
        """What the server's model detail says this model takes (``input_schema``)."""
        if not self.upload_suffixes:
            return {"upload": None, "use": "`meddl predict <bundle> --data <file>`"}
        return {"upload": "multipart/form-data, field 'file'", "formats": list(self.upload_suffixes)}

    # -- JSON requests (the server's ``json_route``) -------------------------------------------------------------
    @property
    def actions(self) -> tuple[str, ...]:
        """The server actions of a model of this kind: ``predict`` and ``explain``, plus the JSON route's pair
        when it has its own name."""
        extra: tuple[str, ...] = ()
        if self.json_route and self.json_route != "predict":
            extra = (self.json_route, self.json_route.replace("predict", "explain", 1))
        return ("predict", "explain", *extra)

    def request_model(self) -> Any:
        """The pydantic model of the JSON body of ``json_route`` (see :mod:`meddl.modalities.requests`)."""
        raise MedDLError(f"{self.kind} models take uploaded files, not JSON requests")

    def request_errors(self, body: Any) -> list[dict[str, Any]]:
        """Errors a validated body still has across its fields (pydantic's error shape: ``loc``, ``msg``,
        ``type``); empty when consistent."""
        return []

    def read_request(self, body: Any) -> PredictionInputs:
        """The cases of a validated JSON body, read as :meth:`read_for_prediction` reads a file, in the body's
        order."""
        raise MedDLError(f"{self.kind} models take uploaded files, not JSON requests")

    def read_upload(self, record: dict[str, Any], files: dict[str, Path]) -> PredictionInputs:
        """One case of the server's ``upload_inputs`` form: a JSON ``record`` and uploaded files by field name."""
        raise MedDLError(f"{self.kind} models do not take a record with files per input")

    def explain_request(self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray) -> list[dict]:
        """Per case of :meth:`read_request` (``scores`` of its usable cases), the fields explain adds to its
        prediction item: ``contributions``, or attributions and a picture."""
        raise MedDLError(f"{self.kind} models take uploaded files, not JSON requests")


def encode_labels(values: pd.Series, config: ExperimentConfig, source: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Class indices (or values) of ``values`` and the rows that have a label; a missing label is left out and
    counted by the caller, never guessed."""
    from meddl.data import encode_target

    has_label = values.notna().to_numpy() & (values.astype(str).str.strip() != "").to_numpy()
    data = config.data
    target, classes = encode_target(
        values[has_label],
        config.task,
        getattr(data, "positive_label", None),
        getattr(data, "classes", None),
        getattr(data, "target", "label"),
        source,
    )
    return target, classes, has_label

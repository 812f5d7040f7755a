"""The ``data`` and ``preprocess`` sections of multimodal fusion (``data.kind: multimodal``).

One outcome table, and several inputs of other kinds joined to it by patient id::

    data:
      kind: multimodal
      patient_id: patient_id
      target: {path: outcomes.csv, column: relapse, positive_label: "yes"}
      inputs:
        clinical: {kind: tabular, path: clinical.csv}
        scan:     {kind: image, path: scans.csv}           # manifest: patient_id,path
        tumour:   {kind: expression, path: expression.csv} # samples × genes, the sample id is the patient id

Each input is validated here, with its own kind's ``data`` and ``preprocess`` sections (an input's other fields
are that kind's data fields, e.g. ``spatial_dims`` of an image; its ``preprocess`` is that kind's section), so a
mistake inside one input is reported with the input's name before any file is read.

Plain pydantic (see :mod:`meddl.sections`): validating an experiment imports nothing heavy.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from meddl.sections import DataSection, ModelConfig, PreprocessSection, Section

__all__ = [
    "EVENT_COLUMN",
    "FUSABLE_KINDS",
    "OUTCOME_COLUMN",
    "Data",
    "InputConfig",
    "MultimodalDataConfig",
    "OutcomeConfig",
]

# the kinds one input may be: each reads one row (or file) per patient into one array per patient
FUSABLE_KINDS: tuple[str, ...] = ("tabular", "image", "expression", "signal")
# the column MedDL adds to each input's copy, holding the outcome joined by patient id
OUTCOME_COLUMN = "__meddl_outcome__"
EVENT_COLUMN = "__meddl_event__"  # survival: the event column beside the time in OUTCOME_COLUMN


class OutcomeConfig(Section):
    """The outcome table: one row per patient, the patient id column and the outcome column (or, for a survival
    task, the follow-up time and event columns)."""

    path: Path = Field(..., description="CSV or Parquet with the patient id column and the outcome column")
    column: str | None = Field(None, description="the outcome column (every task but survival)")
    positive_label: str | int | float | bool | None = None
    classes: list[str | int | float | bool] | None = None
    time: str | None = Field(None, description="survival: the follow-up time column (any unit; every value > 0)")
    event: str | None = Field(None, description="survival: 1 = event, 0 = censored (or text, with event_value)")
    event_value: str | int | float | bool | None = None


class InputConfig(Section):
    """One input: its kind, its file, the kind's own data fields and its ``preprocess`` section."""

    model_config = Section.model_config | {"extra": "allow"}

    kind: str
    path: Path
    preprocess: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _fusable(cls, kind: str) -> str:
        if kind not in FUSABLE_KINDS:
            raise ValueError(f"{kind!r} cannot be an input of a fused model yet; use one of {', '.join(FUSABLE_KINDS)}")
        return kind

    @property
    def fields(self) -> dict[str, Any]:
        """The kind's own data fields given for this input (``spatial_dims``, ``format``, ``genes_in_rows``)."""
        return dict(self.model_extra or {})


class MultimodalDataConfig(DataSection):
    """Several inputs of other kinds, one outcome, joined by patient id (see the module's docstring)."""

    tasks: ClassVar[tuple[str, ...]] = ("binary", "multiclass", "regression", "survival")
    default_arch: ClassVar[str] = "fusion"
    archs: ClassVar[tuple[str, ...]] = ("fusion",)
    classical_baselines: ClassVar[bool] = False  # the comparison is with each input's own model

    kind: Literal["multimodal"]
    path: Path = Field(..., description="set from target.path (the outcome table)")
    patient_id: str = Field("patient_id", description="the patient id column of the outcome table and every input")
    target: OutcomeConfig
    inputs: dict[str, InputConfig] = Field(..., description="name → {kind, path, ...}: at least two inputs")

    @model_validator(mode="before")
    @classmethod
    def _path_from_target(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "path" not in raw and isinstance(raw.get("target"), dict):
            raw = {**raw, "path": raw["target"].get("path")}
        return raw

    @model_validator(mode="after")
    def _inputs_valid(self) -> MultimodalDataConfig:
        if len(self.inputs) < 2:
            raise ValueError(f"inputs: a fused model needs at least two inputs, got {list(self.inputs) or 'none'}")
        problems = []
        for name in self.inputs:
            if not name.isidentifier():
                problems.append(f"inputs.{name}: an input's name is letters, digits and '_' (it names report rows)")
                continue
            try:
                self.input_sections(name, "binary")
            except ValidationError as exc:
                for error in exc.errors():
                    where = ".".join(str(part) for part in error["loc"] if part != self.inputs[name].kind)
                    problems.append(f"inputs.{name}.{where}: {error['msg']}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def resolve_paths(self, base: Path) -> None:
        super().resolve_paths(base)
        if not self.target.path.is_absolute():
            self.target.path = (base / self.target.path).resolve()
        self.path = self.target.path
        for spec in self.inputs.values():
            if not spec.path.is_absolute():
                spec.path = (base / spec.path).resolve()

    def reading_task(self, name: str, task: str) -> str:
        """The task input ``name`` is read with: the run's, except for survival, whose inputs are read with the
        follow-up time as a regression target (the event as a binary one for images, which have no regression);
        the input's own label never trains anything — the fused model learns the outcome."""
        if task != "survival":
            return task
        return "binary" if self.inputs[name].kind == "image" else "regression"

    def input_data(self, name: str, outcome_file: Path | None = None, task: str = "binary") -> dict[str, Any]:
        """The ``data`` section of input ``name`` as its own kind reads it: the input's file (or its copy with the
        outcome joined, ``outcome_file``), labelled by :data:`OUTCOME_COLUMN`, keyed by the patient id."""
        spec = self.inputs[name]
        binary_event = task == "survival" and self.reading_task(name, task) == "binary"
        data: dict[str, Any] = {
            **spec.fields,
            "kind": spec.kind,
            "path": outcome_file or spec.path,
            "target": OUTCOME_COLUMN,
            "positive_label": 1 if binary_event else self.target.positive_label,
            "classes": None if task == "survival" else self.target.classes,
        }
        if spec.kind == "expression":  # the matrix's sample id is the patient id; the outcome is its label table
            data.update(sample_column=self.patient_id, labels=outcome_file or spec.path, path=spec.path)
        else:
            data["patient_id"] = self.patient_id
        return data

    def input_sections(self, name: str, task: str, outcome_file: Path | None = None) -> tuple[Any, Any]:
        """(data, preprocess) sections of input ``name``, validated by its kind's own section classes."""
        spec = self.inputs[name]
        module = import_module(f"meddl.modalities.sections.{spec.kind}")
        data = module.Data.model_validate(self.input_data(name, outcome_file, task))
        data.check_task(self.reading_task(name, task))
        return data, module.Preprocess.model_validate({**spec.preprocess, "kind": spec.kind})

    def encoder(self, name: str, task: str, encoders: dict[str, Any]) -> tuple[str, list[str]]:
        """Input ``name``'s encoder network (``model.encoders`` or its kind's default) and the networks that fit
        it (a kind's task-only networks, such as a U-Net drawing masks, do not)."""
        data_class = type(self.input_sections(name, task)[0])
        task_only = {arch for names in data_class.task_archs.values() for arch in names}
        fitting = [arch for arch in data_class.archs if arch not in task_only]
        return str(encoders.get(name, data_class.default_arch)), fitting

    def model_problems(self, task: str, model: ModelConfig) -> list[str]:
        encoders = dict(model.params.get("encoders") or {})
        problems = []
        unknown = sorted(set(encoders) - set(self.inputs))
        if unknown:
            problems.append(f"model.encoders: {unknown} are not inputs; the inputs are {list(self.inputs)}")
        for name in self.inputs:
            try:
                arch, fitting = self.encoder(name, task, encoders)
            except ValueError:  # the input itself is wrong: check_task names it
                continue
            if arch not in fitting:
                kind = self.inputs[name].kind
                problems.append(
                    f"model.encoders.{name}: {arch!r} does not encode {kind} data; choose one of {', '.join(fitting)}"
                )
        if task == "survival" and model.survival_head == "discrete":
            problems.append("model.survival_head: a fused model takes the cox head (discrete is not available yet)")
        return problems

    def check_task(self, task: str) -> None:
        super().check_task(task)
        outcome = self.target
        if task == "survival":
            if outcome.time is None or outcome.event is None:
                raise ValueError("data.target: a survival task needs time and event (the outcome table's columns)")
            if outcome.column is not None or outcome.positive_label is not None:
                raise ValueError("data.target: a survival task takes time and event, not column or positive_label")
        elif outcome.column is None:
            raise ValueError(f"data.target.column: required for task {task} (the outcome column)")
        elif outcome.time is not None or outcome.event is not None:
            raise ValueError("data.target.time/event: are for task survival; this is a " + task + " task")
        for name in self.inputs:
            try:
                self.input_sections(name, task)
            except ValueError as exc:
                raise ValueError(f"inputs.{name}: {exc}") from None


class MultimodalPreprocessConfig(PreprocessSection):
    """Each input is preprocessed by its own kind's ``preprocess`` section (``inputs.<name>.preprocess``)."""

    kind: Literal["multimodal"] = "multimodal"
    imbalance: Literal["none", "class_weight"] = "none"


Data = MultimodalDataConfig
Preprocess = MultimodalPreprocessConfig

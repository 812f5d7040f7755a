"""The experiment file: one YAML document, validated by pydantic, defaults for everything.

Every section forbids unknown fields, so a typo such as ``preprocess.scael`` is an error that names the
field instead of a setting that is silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from meddl.errors import MedDLError

__all__ = [
    "KINDS",
    "AugmentConfig",
    "CohortConfig",
    "DataConfig",
    "EHRDataConfig",
    "EHRPreprocessConfig",
    "EarlyStoppingConfig",
    "EvaluateConfig",
    "ExperimentConfig",
    "ExplainConfig",
    "ExpressionDataConfig",
    "ExpressionPreprocessConfig",
    "ImageDataConfig",
    "ImagePreprocessConfig",
    "ModelConfig",
    "PreprocessConfig",
    "SequenceDataConfig",
    "SequencePreprocessConfig",
    "SignalDataConfig",
    "SignalPreprocessConfig",
    "SplitConfig",
    "TrainConfig",
    "format_validation_error",
    "load_config",
]

KINDS = ("tabular", "image", "sequence", "expression", "signal", "ehr")
Task = Literal["binary", "multiclass", "multilabel", "regression"]
ColumnType = Literal["numeric", "categorical", "binary"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(_Section):
    """How rows are divided into train / validation / test."""

    method: Literal["stratified", "temporal"] = "stratified"
    train: float = Field(0.70, gt=0, lt=1)
    validation: float = Field(0.15, gt=0, lt=1)
    test: float = Field(0.15, gt=0, lt=1)
    date_column: str | None = None
    folds: int | None = Field(None, ge=2, le=20, description="k-fold cross-validation estimate in addition")

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> SplitConfig:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"train + validation + test must be 1.0, got {self.train} + {self.validation} + {self.test} = {total:g}"
            )
        if self.method == "temporal" and not self.date_column:
            raise ValueError("method 'temporal' needs date_column (the column holding each row's date)")
        return self


class DataConfig(_Section):
    """Where the table is and what the columns mean."""

    kind: Literal["tabular"] = "tabular"
    description: str | None = Field(None, description="shown in the report and model card (source, outcome definition)")
    path: Path = Field(..., description="CSV or Parquet file, relative to the experiment file")
    target: str
    positive_label: str | int | float | bool | None = None
    classes: list[str | int | float | bool] | None = None
    patient_id: str | None = None
    features: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    column_types: dict[str, ColumnType] = Field(default_factory=dict)
    units: dict[str, str] = Field(default_factory=dict, description="unit per column, shown in reports and forms")
    na_values: list[str] = Field(default_factory=lambda: ["?", "NA", "N/A", "n/a", "NaN", "nan", "null", ""])
    split: SplitConfig = Field(default_factory=SplitConfig)


class ImageDataConfig(_Section):
    """Medical images: a folder, a manifest CSV or a MedMNIST-style ``.npz``.

    ``path`` may be
    * a folder with one sub-folder per class (``benign/``, ``malignant/``) of PNG/JPEG/DICOM/NIfTI files;
    * a manifest CSV with a path column (relative to the CSV), a label column and optionally a patient id column;
      a path may name a single file or a DICOM series folder;
    * a ``.npz`` with ``train_images``/``train_labels``, ``val_…``, ``test_…`` (its own splits are used).
    """

    kind: Literal["image"]
    description: str | None = None
    path: Path
    format: Literal["auto", "dicom", "nifti", "png", "npz"] = "auto"
    path_column: str = "path"
    target: str = Field("label", description="label column of the manifest")
    label_columns: list[str] | None = Field(None, description="multilabel: one 0/1 column per finding")
    positive_label: str | int | float | bool | None = None
    classes: list[str | int | float | bool] | None = None
    patient_id: str | None = None
    spatial_dims: Literal[2, 3] = 2
    on_bad_file: Literal["error", "skip"] = "error"
    split: SplitConfig = Field(default_factory=SplitConfig)


class AugmentConfig(_Section):
    """Random augmentation, applied to the training split only, seeded by ``train.seed``."""

    flip: bool = True
    rotate_degrees: float = Field(10.0, ge=0, le=180)
    affine: bool = False
    intensity_shift: float = Field(0.1, ge=0)
    noise_std: float = Field(0.0, ge=0)


class ImagePreprocessConfig(_Section):
    """MONAI transforms: window → resample → resize/crop/pad → normalise; augmentation on training only."""

    kind: Literal["image"] = "image"
    window: Literal["lung", "soft_tissue", "bone", "brain"] | None = None
    window_level: float | None = None
    window_width: float | None = Field(None, gt=0)
    spacing: list[float] | None = Field(None, description="resample to this voxel spacing (mm), per spatial axis")
    size: list[int] = Field(default_factory=lambda: [64, 64], description="target size per spatial axis")
    resize_mode: Literal["resize", "crop_or_pad"] = "resize"
    normalize: Literal["zscore", "percentile", "minmax", "none"] = "zscore"
    channels: Literal[1, 3] | None = Field(None, description="force grey (1) or RGB (3); default: as read")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    cache: bool = True
    cache_dir: Path | None = Field(None, description="default: .meddl-cache next to the data")
    imbalance: Literal["none", "class_weight", "oversample"] = "none"

    @model_validator(mode="after")
    def _window_complete(self) -> ImagePreprocessConfig:
        if (self.window_level is None) != (self.window_width is None):
            raise ValueError("set both window_level and window_width (a custom window), or neither")
        if self.window is not None and self.window_level is not None:
            raise ValueError("choose a window preset or window_level/window_width, not both")
        return self


class SequenceDataConfig(_Section):
    """DNA sequences: a FASTA (labels in a CSV by record id, or ``label=`` in each header), a CSV of sequences, or
    BED intervals cut from a reference FASTA (strand-aware)."""

    kind: Literal["sequence"]
    description: str | None = None
    path: Path = Field(..., description="FASTA (.fa/.fasta/.fa.gz), CSV/TSV/Parquet of sequences, or BED")
    format: Literal["auto", "fasta", "table", "bed"] = "auto"
    labels: Path | None = Field(None, description="FASTA/BED: a CSV with the record id and label columns")
    id_column: str = Field("id", description="record id column (labels file, or the sequence table)")
    sequence_column: str = "sequence"
    target: str = Field("label", description="label column (or the key of `label=` in FASTA headers)")
    reference: Path | None = Field(None, description="BED: the reference genome FASTA")
    positive_label: str | int | float | bool | None = None
    classes: list[str | int | float | bool] | None = None
    patient_id: str | None = Field(None, description="column of the labels/sequence table grouping records")
    split: SplitConfig = Field(default_factory=SplitConfig)


class SequencePreprocessConfig(_Section):
    """Encoding of bases; augmentation on the training split only."""

    kind: Literal["sequence"] = "sequence"
    length: int | None = Field(
        None,
        ge=8,
        description="every sequence is centre-cropped or N-padded to this length; default: from the training "
        "sequences' lengths (the longest, or the 95th percentile when a few are much longer), written to the run",
    )
    encoding: Literal["onehot", "kmer"] = Field("onehot", description="kmer: tokens for embedding models")
    k: int = Field(3, ge=1, le=8, description="k-mer size (encoding: kmer)")
    ambiguous: Literal["uniform", "zeros"] = Field("uniform", description="N and IUPAC codes: base fractions or 0")
    reverse_complement: bool = Field(True, description="RC augmentation in training and RC-averaged prediction")
    max_shift: int = Field(0, ge=0, description="random shift jitter (bases) in training")
    imbalance: Literal["none", "class_weight"] = "none"


class ExpressionDataConfig(_Section):
    """A samples × genes expression matrix and a label table joined by sample id."""

    kind: Literal["expression"]
    description: str | None = None
    path: Path = Field(..., description="expression matrix: CSV/TSV/Parquet (.h5ad with anndata installed)")
    labels: Path = Field(..., description="label table with the sample id column")
    sample_column: str = "sample_id"
    genes_in_rows: bool = Field(False, description="the matrix has genes as rows and samples as columns")
    target: str = "label"
    positive_label: str | int | float | bool | None = None
    classes: list[str | int | float | bool] | None = None
    patient_id: str | None = None
    survival_time: str | None = Field(None, description="censored outcome: time column, with survival_event")
    survival_event: str | None = None
    horizon: float | None = Field(None, gt=0, description="event by this time (label table's time unit)")
    split: SplitConfig = Field(default_factory=SplitConfig)

    @model_validator(mode="after")
    def _survival_complete(self) -> ExpressionDataConfig:
        given = [self.survival_time is not None, self.survival_event is not None, self.horizon is not None]
        if any(given) and not all(given):
            raise ValueError("a censored outcome needs survival_time, survival_event and horizon together")
        return self


class ExpressionPreprocessConfig(_Section):
    """Fitted on the training split only: log transform, gene selection by variance, standardisation."""

    kind: Literal["expression"] = "expression"
    log: Literal["auto", "log2", "log1p", "none"] = "auto"
    select: Literal["variance", "none"] = "variance"
    n_genes: int = Field(500, ge=1)
    scale: Literal["standard", "none"] = "standard"
    imbalance: Literal["none", "class_weight"] = "none"


class SignalDataConfig(_Section):
    """Physiological signals (ECG): a manifest CSV ``path,label[,patient_id]`` naming WFDB records, DICOM
    waveforms, ``.npy`` or CSV arrays."""

    kind: Literal["signal"]
    description: str | None = None
    path: Path
    path_column: str = "path"
    target: str = "label"
    positive_label: str | int | float | bool | None = None
    classes: list[str | int | float | bool] | None = None
    patient_id: str | None = None
    sampling_rate: float | None = Field(None, gt=0, description="Hz, for .npy / CSV arrays without a time column")
    on_bad_file: Literal["error", "skip"] = "error"
    split: SplitConfig = Field(default_factory=SplitConfig)


class SignalPreprocessConfig(_Section):
    """scipy resampling and band-pass filtering, a fixed length, per-channel normalisation."""

    kind: Literal["signal"] = "signal"
    sampling_rate: float = Field(100.0, gt=0, description="resample every record to this rate (Hz)")
    bandpass: list[float] | None = Field(default_factory=lambda: [0.5, 40.0], description="[low, high] Hz or null")
    length_seconds: float = Field(10.0, gt=0)
    channels: list[str] | int | None = Field(None, description="channel names, or the first N channels")
    normalize: Literal["zscore", "none"] = "zscore"
    imbalance: Literal["none", "class_weight"] = "none"


class CohortConfig(_Section):
    """Who is in the cohort, when the prediction is made and what it predicts."""

    outcome: Literal["mortality", "readmission", "long_stay", "next_visit_diagnoses"] = "mortality"
    observation_hours: float = Field(48.0, gt=0, description="features from the first N hours of the stay")
    horizon_days: float | None = Field(None, gt=0, description="readmission: days after discharge; long_stay: LOS")
    min_age: float = Field(18.0, ge=0)
    min_stay_hours: float | None = Field(None, ge=0, description="default: observation_hours")
    first_stay_only: bool = True
    stay_selection: Literal["first", "random"] = Field(
        "first", description="which eligible stay per patient is the index stay (random: seeded by train.seed)"
    )
    label_codes_top: int = Field(20, ge=1, description="next-visit diagnoses: the most frequent code categories")


class EHRDataConfig(_Section):
    """An EHR event store (DuckDB file written by ``meddl ehr import``) and the cohort to draw from it."""

    kind: Literal["ehr"]
    description: str | None = None
    path: Path = Field(..., description="the DuckDB event store")
    cohort: CohortConfig = Field(default_factory=CohortConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)


class EHRPreprocessConfig(_Section):
    """Features computed inside DuckDB; vocabularies and scaling fitted on training patients only."""

    kind: Literal["ehr"] = "ehr"
    mode: Literal["grid", "visits"] = "grid"
    bin_hours: float = Field(4.0, gt=0)
    max_visits: int = Field(20, ge=1)
    labs: list[str] | None = Field(None, description="lab/vital items (default: the most frequent)")
    top_labs: int = Field(20, ge=1)
    codes_top: int = Field(200, ge=1)
    include_static: bool = True
    include_discharge_codes: bool = Field(
        False, description="predictions at discharge (readmission, next visit): use the stay's own discharge codes"
    )
    scale: Literal["standard", "none"] = "standard"
    imbalance: Literal["none", "class_weight"] = "none"


class PreprocessConfig(_Section):
    kind: Literal["tabular"] = "tabular"
    missing: Literal["drop", "mean", "median", "most_frequent", "knn", "iterative"] = "median"
    missing_indicators: bool = True
    scale: Literal["standard", "minmax", "robust", "none"] = "standard"
    imbalance: Literal["none", "class_weight", "oversample", "undersample", "smote"] = "none"
    knn_neighbors: int = Field(5, ge=1)


class ModelConfig(BaseModel):
    """``arch`` picks a network from the registry; its other fields are that network's arguments.

    They are checked against the constructor's signature when the experiment is loaded.
    """

    model_config = ConfigDict(extra="allow")

    arch: str = "mlp"

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class EarlyStoppingConfig(_Section):
    monitor: str | None = Field(None, description="validation metric; default auroc / auroc_macro / rmse")
    patience: int = Field(10, ge=1)
    min_delta: float = Field(0.0, ge=0)


class TrainConfig(_Section):
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    scheduler: Literal["cosine", "plateau", "none"] = "cosine"
    warmup_epochs: int = Field(0, ge=0)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    seed: int = 0
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    precision: Literal["32", "bf16-mixed", "16-mixed"] = "32"
    grad_clip: float | None = Field(1.0, gt=0)
    progress: bool = True
    num_workers: int = Field(0, ge=0, description="data-loading worker processes (images); 0 = in the main process")

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value in {"auto", "cpu", "cuda", "mps"} or value.startswith("cuda:"):
            return value
        raise ValueError(f"expected auto, cpu, cuda or cuda:N, got {value!r}")


class EvaluateConfig(_Section):
    bootstrap: int = Field(1000, ge=0)
    confidence_level: float = Field(0.95, gt=0, lt=1)
    threshold: Literal["youden", "fixed", "sensitivity"] = "youden"
    fixed_threshold: float = Field(0.5, gt=0, lt=1)
    target_sensitivity: float = Field(0.9, gt=0, le=1)
    baselines: list[Literal["logistic_regression", "linear_regression", "gradient_boosting"]] | None = None
    subgroups: list[str] = Field(
        default_factory=list, description="columns to break test metrics down by (numeric columns by quartile)"
    )
    min_subgroup_size: int = Field(20, ge=1)


class ExplainConfig(_Section):
    permutation_repeats: int = Field(5, ge=0)
    integrated_gradients: bool = True
    top_k: int = Field(5, ge=1)
    heatmap: Literal["gradcam", "occlusion"] = Field("gradcam", description="images: how heat maps are drawn")
    occlusion_window: int = Field(6, ge=1)
    occlusion_stride: int = Field(2, ge=1)


class ExperimentConfig(_Section):
    """A whole experiment: what to read, how to prepare it, what to train and how to judge it."""

    name: str = Field("experiment", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    task: Task = "binary"
    data: Annotated[
        DataConfig | ImageDataConfig | SequenceDataConfig | ExpressionDataConfig | SignalDataConfig | EHRDataConfig,
        Field(discriminator="kind"),
    ]
    preprocess: Annotated[
        PreprocessConfig
        | ImagePreprocessConfig
        | SequencePreprocessConfig
        | ExpressionPreprocessConfig
        | SignalPreprocessConfig
        | EHRPreprocessConfig,
        Field(discriminator="kind"),
    ] = Field(default_factory=PreprocessConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    explain: ExplainConfig = Field(default_factory=ExplainConfig)

    @model_validator(mode="before")
    @classmethod
    def _kind_from_data(cls, raw: Any) -> Any:
        """``data.kind`` (default tabular) decides which ``preprocess`` section applies; users never write its kind."""
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
            return raw
        raw = dict(raw)
        data = dict(raw["data"])
        kind = data.setdefault("kind", "tabular")
        raw["data"] = data
        preprocess = raw.get("preprocess")
        if preprocess is None:
            raw["preprocess"] = {"kind": kind}
        elif isinstance(preprocess, dict):
            raw["preprocess"] = {"kind": kind, **preprocess}
        return raw

    @model_validator(mode="after")
    def _task_consistency(self) -> ExperimentConfig:
        if self.data.kind not in {"image", "ehr"} and self.task == "multilabel":
            raise ValueError(
                "task multilabel is available for images and EHR next-visit diagnoses, "
                f"not data.kind {self.data.kind!r}"
            )
        if self.data.kind == "ehr":
            outcome = self.data.cohort.outcome  # type: ignore[union-attr]
            wanted = "multilabel" if outcome == "next_visit_diagnoses" else "binary"
            if self.task != wanted:
                raise ValueError(f"data.cohort.outcome {outcome!r} is a {wanted} task; set task: {wanted}")
        if self.data.kind == "image" and self.task == "regression":
            raise ValueError("task regression is not available for images yet; use binary, multiclass or multilabel")
        if self.task == "multilabel" and self.data.kind == "image" and not getattr(self.data, "label_columns", None):
            raise ValueError("task multilabel needs data.label_columns (one 0/1 column per finding)")
        if self.task == "regression":
            if self.preprocess.imbalance != "none":
                raise ValueError(
                    f"preprocess.imbalance: {self.preprocess.imbalance!r} needs a class label; "
                    "a regression task takes 'none'"
                )
            if getattr(self.data, "positive_label", None) is not None:
                raise ValueError("data.positive_label is for binary tasks; remove it for regression")
        if self.task == "multiclass" and getattr(self.data, "positive_label", None) is not None:
            raise ValueError("data.positive_label is for binary tasks; use data.classes for multiclass")
        return self

    # -- derived settings ---------------------------------------------------------------------
    @property
    def monitor(self) -> str:
        """The validation metric early stopping watches."""
        if self.train.early_stopping.monitor:
            return self.train.early_stopping.monitor
        return {"binary": "auroc", "multiclass": "auroc_macro", "multilabel": "auroc_macro", "regression": "rmse"}[
            self.task
        ]

    @property
    def baselines(self) -> list[str]:
        if self.evaluate.baselines is not None:
            return list(self.evaluate.baselines)
        if self.data.kind in {"image", "signal"}:
            return []  # no classical baseline on raw pixels or traces by default
        if self.task == "regression":
            return ["linear_regression", "gradient_boosting"]
        return ["logistic_regression", "gradient_boosting"]

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=False)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def format_validation_error(error: ValidationError, source: str) -> str:
    """Turn pydantic's error list into lines that name each field, e.g. ``data.target: field required``."""
    lines = []
    for item in error.errors():
        parts = [str(p) for p in item["loc"]]
        if len(parts) > 1 and parts[0] in {"data", "preprocess"} and parts[1] in KINDS:
            parts.pop(1)  # the discriminated union's tag is not a field the user wrote
        field = ".".join(parts) or "(top level)"
        kind = item["type"]
        if kind == "extra_forbidden":
            message = "unknown field (check the spelling; `meddl init tabular` prints every field)"
        elif kind == "missing":
            message = "required field is missing"
        else:
            message = item["msg"].removeprefix("Value error, ")
            if (
                "input" in item
                and kind not in {"model_type"}
                and not isinstance(item["input"], dict)
                and repr(item["input"]) not in message
            ):
                message += f" (got {item['input']!r})"
        lines.append(f"{field}: {message}")
    return f"{source}: " + "; ".join(lines)


def load_config(path: str | Path) -> tuple[ExperimentConfig, Path]:
    """Read and validate an experiment file.

    Args:
        path: the YAML file.

    Returns:
        The validated config, with ``data.path`` resolved relative to the file, and the file's folder.

    Raises:
        MedDLError: the file is missing, is not YAML, or a field is wrong (the message names the field).
    """
    path = Path(path)
    if not path.exists():
        raise MedDLError(f"experiment file not found: {path}")
    if path.suffix.lower() not in {".yaml", ".yml"}:
        raise MedDLError(f"{path}: an experiment file must be .yaml or .yml, got {path.suffix or 'no extension'!r}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise MedDLError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if raw is None:
        raise MedDLError(f"{path}: the experiment file is empty")
    if not isinstance(raw, dict):
        raise MedDLError(f"{path}: expected a mapping of sections (name, task, data, ...), got {type(raw).__name__}")
    config = parse_config(raw, source=str(path))
    base = path.resolve().parent
    if not config.data.path.is_absolute():
        config.data.path = (base / config.data.path).resolve()
    return config, base


def parse_config(raw: dict[str, Any], source: str = "experiment") -> ExperimentConfig:
    """Validate a config given as a dict (the Python API path).

    The schema is checked here; ``model.arch`` and its arguments are checked against the model registry by
    :class:`meddl.Experiment`, so this module stays free of imports from the layers below it.
    """
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise MedDLError(format_validation_error(exc, source)) from None

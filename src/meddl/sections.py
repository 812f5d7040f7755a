"""The experiment file's sections that every data kind shares, and the bases of the kind-specific ones.

Each data kind declares its own ``data`` and ``preprocess`` sections in ``meddl/modalities/sections/<kind>.py``
(subclasses of :class:`DataSection` and :class:`PreprocessSection`); :mod:`meddl.config` assembles them into the
experiment file's schema. This module is plain pydantic: validating an experiment imports neither torch nor a
data kind's code, so a config mistake is reported in well under a second.

Every section forbids unknown fields, so a typo such as ``preprocess.scael`` is an error that names the
field instead of a setting that is silently ignored.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "MONITORS",
    "TASKS",
    "ColumnType",
    "DataSection",
    "EarlyStoppingConfig",
    "EvaluateConfig",
    "ExplainConfig",
    "ModelConfig",
    "PreprocessSection",
    "PretrainedConfig",
    "Section",
    "SplitConfig",
    "SurvivalOutcome",
    "Task",
    "TrainConfig",
    "format_validation_error",
]

Task = Literal["binary", "multiclass", "multilabel", "regression", "survival", "segmentation"]
MONITORS: dict[str, tuple[str, ...]] = {  # the validation metrics early stopping can watch, per task
    "binary": (
        "loss",
        "auroc",
        "auprc",
        "accuracy",
        "balanced_accuracy",
        "f1",
        "precision",
        "recall",
        "sensitivity",
        "specificity",
        "npv",
        "brier",
        "ece",
    ),
    "multiclass": (
        "loss",
        "auroc_macro",
        "accuracy",
        "balanced_accuracy",
        "f1_macro",
        "precision_macro",
        "recall_macro",
        "brier",
        "log_loss",
        "ece",
    ),
    "multilabel": ("loss", "auroc_macro", "auprc_macro", "f1_macro", "subset_accuracy", "hamming_loss", "brier"),
    "regression": ("loss", "rmse", "mae", "r2"),
    "survival": ("loss", "c_index"),
    "segmentation": ("loss", "dice"),
}
TASKS: tuple[str, ...] = ("binary", "multiclass", "multilabel", "regression", "survival", "segmentation")
ColumnType = Literal["numeric", "categorical", "binary"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(Section):
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


class DataSection(Section):
    """What every kind's ``data`` section has: its ``kind`` (the tag that picks the section), a ``description``,
    the ``path`` read (relative to the experiment file) and the ``split``.

    Class attributes say what the kind supports: ``tasks`` it can learn and whether classical baselines on its
    features are run by default (``classical_baselines``), the network used when ``model.arch`` is left out
    (``default_arch``). :meth:`check_task` may refine the rule from the
    section's own fields (an EHR cohort's outcome decides its task)."""

    tasks: ClassVar[tuple[str, ...]] = ("binary", "multiclass", "regression")
    classical_baselines: ClassVar[bool] = True
    # the baselines a kind runs by default, by task, where they differ from the tables' (fingerprints: a forest)
    default_baselines: ClassVar[dict[str, tuple[str, ...]]] = {}
    default_arch: ClassVar[str] = "mlp"  # model.arch when the experiment file leaves it out
    # networks that fit one task only (a segmentation network gives a mask, not a label): task → its networks, the
    # first one the default for that task
    task_archs: ClassVar[dict[str, tuple[str, ...]]] = {}
    archs: ClassVar[tuple[str, ...]] = ("mlp", "ft_transformer", "deepsurv", "deephit")  # MedDL's networks that fit it
    group_columns: ClassVar[bool] = False  # rows carry columns to group by (evaluate.subgroups, Mondrian conformal)

    kind: str
    description: str | None = Field(None, description="shown in the report and model card (source, outcome definition)")
    path: Path
    split: SplitConfig = Field(default_factory=SplitConfig)

    def resolve_paths(self, base: Path) -> None:
        """Make the files this section names absolute, relative to ``base`` (the experiment file's folder)."""
        if not self.path.is_absolute():
            self.path = (Path(base) / self.path).resolve()

    def model_problems(self, task: str, model: ModelConfig) -> list[str]:
        """What in the ``model`` section does not fit this data (``field: message`` lines; default: nothing)."""
        return []

    def check_task(self, task: str) -> None:
        """Raise ``ValueError`` when this kind cannot learn ``task`` with these settings."""
        if task not in self.tasks:
            options = ", ".join(self.tasks[:-1]) + f" or {self.tasks[-1]}" if len(self.tasks) > 1 else self.tasks[0]
            raise ValueError(f"task {task} is not available for data.kind {self.kind!r}; use {options}")


class SurvivalOutcome(Section):
    """The columns of a time-to-event outcome (``task: survival``), for kinds whose labels sit in a table."""

    time: str | None = Field(None, description="survival: follow-up time column (any unit; every value > 0)")
    event: str | None = Field(
        None,
        description="survival: event column: 1 = event, 0 = censored (0..K: competing causes); or text, with "
        "event_value naming the event",
    )
    event_value: str | int | float | bool | None = Field(
        None, description="survival: the value of `event` meaning the event happened (every other value: censored)"
    )

    def check_survival(self, task: str, target: str | None) -> None:
        """``time`` and ``event`` are required by (and only by) a survival task; the other tasks need ``target``."""
        if task == "survival":
            missing = [name for name in ("time", "event") if getattr(self, name) is None]
            if missing:
                raise ValueError(
                    f"data.{missing[0]}: required for task survival (the follow-up time and event columns)"
                )
        else:
            given = [name for name in ("time", "event", "event_value") if getattr(self, name) is not None]
            if given:
                raise ValueError(f"data.{', data.'.join(given)} are for task survival; this is a {task} task")
            if target is None:
                raise ValueError("data.target: required field is missing (the outcome column)")


class PreprocessSection(Section):
    """What every kind's ``preprocess`` section has: its ``kind`` (set from ``data.kind``; users never write it)
    and ``imbalance``, the class-imbalance handling."""

    kind: str
    imbalance: str = "none"


class PretrainedConfig(Section):
    """``model.pretrained``: start from a local weights file (transfer learning; nothing is downloaded).

    Tensors whose name and shape match are loaded; a head of another output size keeps its fresh initialisation.
    """

    path: Path = Field(
        description="a .safetensors file or a PyTorch state dict (read with weights_only=True), relative to the "
        "experiment file; e.g. another run's model.safetensors"
    )
    freeze: list[str] = Field(
        default_factory=list,
        description="parts whose parameters are not trained: encoder (all but the head), head, or a module name "
        "such as features.0",
    )
    strict: bool = Field(
        False, description="true: every tensor must be in the file with the network's shape (no head swap)"
    )

    @field_validator("freeze")
    @classmethod
    def _named_parts(cls, value: list[str]) -> list[str]:
        blank = [entry for entry in value if not entry.strip()]
        if blank:
            raise ValueError(f"each entry names a part (encoder, head or a module name), got {value}")
        return [entry.strip() for entry in value]


class ModelConfig(BaseModel):
    """``arch`` picks a network from the registry; its other fields are that network's arguments.

    They are checked against the constructor's signature when the experiment is loaded. The declared fields below
    are not arguments of the network: the survival head's settings and ``pretrained``, the weights it starts from.
    """

    model_config = ConfigDict(extra="allow")

    arch: str = "mlp"
    survival_head: Literal["cox", "discrete"] | None = Field(
        None,
        description="survival: cox (DeepSurv: Cox partial likelihood, Breslow baseline) or discrete (DeepHit: "
        "a time grid, likelihood + ranking loss, competing risks); default: discrete for deephit, else cox",
    )
    time_bins: int = Field(20, ge=2, le=200, description="survival, discrete head: intervals of the time grid")
    pretrained: PretrainedConfig | None = Field(
        None,
        description="start from local weights, e.g. {path: weights.safetensors, freeze: [encoder], strict: false}",
    )

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def resolve_pretrained(self, base: Path, source: str = "experiment") -> None:
        """Make ``pretrained.path`` absolute (relative to ``base``, the experiment file's folder, as ``data.path``)
        and check that the file is there, so a wrong path is reported before any data is read.

        Not a validator: a bundle's config.yaml keeps the path it was trained from, and loading the bundle on
        another machine must not need that file.

        Raises:
            MedDLError: the file does not exist (the message names ``model.pretrained.path``).
        """
        if self.pretrained is None:
            return
        path = self.pretrained.path.expanduser()
        if not path.is_absolute():
            path = (Path(base) / path).resolve()
        self.pretrained.path = path
        if not path.is_file():
            from meddl.errors import MedDLError

            raise MedDLError(f"{source}: model.pretrained.path: file not found: {path}")

    @property
    def head(self) -> str:
        """The survival head: ``survival_head`` if set, else ``discrete`` for ``deephit`` and ``cox`` otherwise."""
        return self.survival_head or ("discrete" if self.arch == "deephit" else "cox")


class EarlyStoppingConfig(Section):
    monitor: str | None = Field(None, description="validation metric; default auroc / auroc_macro / rmse")
    patience: int = Field(10, ge=1)
    min_delta: float = Field(0.0, ge=0)
    smoothing: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="an exponential moving average of the monitored score, s = smoothing * s + (1 - smoothing) * "
        "score, is what picks the best epoch and stops early (nnU-Net smooths its validation Dice with 0.9); 0: "
        "the raw score",
    )


class TrainConfig(Section):
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    scheduler: Literal["cosine", "plateau", "none"] = "cosine"
    warmup_epochs: int = Field(0, ge=0)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    seed: int = 0
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    precision: Literal["auto", "32", "bf16-mixed", "16-mixed"] = Field(
        "auto",
        description="auto: bf16 autocast for convolutional networks where the hardware computes in bf16 (AVX-512 "
        "BF16 or AMX CPUs, CUDA GPUs with bf16), fp32 elsewhere; the run record says which was used and why",
    )
    grad_clip: float | None = Field(1.0, gt=0)
    progress: bool = True
    num_workers: int | Literal["auto"] = Field(
        "auto",
        description="data-loading worker processes for images read from disk; auto: while a GPU computes, up to 4 "
        "(one core left to the main process); on the CPU none, as its threads already compute on every core; "
        "0 = in the main process. The run record says how much of training waited for data (loading_share)",
    )
    ensemble: int = Field(
        1,
        ge=1,
        le=20,
        description="deep ensemble: train this many networks from seeds seed, seed+1, ... one after another and "
        "average their probabilities (one bundle); predict adds each case's spread across members",
    )

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value in {"auto", "cpu", "cuda", "mps"} or value.startswith("cuda:"):
            return value
        raise ValueError(f"expected auto, cpu, cuda or cuda:N, got {value!r}")

    @field_validator("num_workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> Any:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return value
        raise ValueError(f"expected auto or a whole number of processes, 0 or more, got {value!r}")


class ConformalConfig(Section):
    """Split conformal prediction sets (classification) or intervals (regression), calibrated on a held-out part of
    the validation split."""

    alpha: float = Field(
        0.1, gt=0, lt=1, description="the share of cases whose set (interval) may miss the truth: 0.1 → 90 % coverage"
    )
    method: Literal["lac", "aps", "raps"] = Field(
        "lac",
        description="classification score: lac (smallest sets), aps (adaptive: larger sets for harder cases), "
        "raps (aps regularised towards few labels); regression always uses the absolute residual",
    )
    mondrian: str | None = Field(
        None,
        description="calibrate per group so coverage holds within each: 'class' (per true class; classification) "
        "or a categorical column of the table (e.g. sex, site)",
    )
    calibration: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="share of the validation split's patients held out (stratified, by patient) to calibrate; "
        "the rest of validation chooses the epoch, threshold and recalibration",
    )
    raps_lambda: float = Field(0.01, ge=0, description="raps: the cost of each label ranked beyond raps_k_reg")
    raps_k_reg: int = Field(1, ge=0, description="raps: labels ranked this high or higher cost nothing extra")


class ReferralConfig(Section):
    """Refer the cases the model is least sure of, so that the ones it keeps meet a target."""

    metric: Literal["sensitivity", "specificity", "accuracy", "precision", "npv"] = Field(
        "sensitivity", description="binary: any of these on the kept cases; multiclass: accuracy"
    )
    at_least: float = Field(0.9, gt=0, le=1, description="the target the kept cases must reach (on validation)")


class ServeConfig(Section):
    """How predictions are shown to clinicians (``meddl predict`` and ``meddl serve`` read it from the bundle)."""

    max_interval: float | None = Field(
        None,
        gt=0,
        description="regression with evaluate.conformal: an interval wider than this (the target's unit) is shown "
        "as 'uncertain — refer for review' instead of a single value",
    )


class EvaluateConfig(Section):
    bootstrap: int = Field(1000, ge=0)
    confidence_level: float = Field(0.95, gt=0, lt=1)
    threshold: Literal["youden", "fixed", "sensitivity"] = "youden"
    fixed_threshold: float = Field(0.5, gt=0, lt=1)
    target_sensitivity: float = Field(0.9, gt=0, le=1)
    baselines: (
        list[
            Literal[
                "logistic_regression",
                "linear_regression",
                "gradient_boosting",
                "random_forest",
                "cox",
                "random_survival_forest",
            ]
        ]
        | None
    ) = None
    horizons: list[float] | None = Field(
        None,
        description="survival: times (the data's time unit) at which survival, AUC, Brier and calibration are "
        "reported; default: the 25th, 50th and 75th percentiles of the training split's event times",
    )
    subgroups: list[str] = Field(
        default_factory=list, description="columns to break test metrics down by (numeric columns by quartile)"
    )
    min_subgroup_size: int = Field(20, ge=1)
    recalibrate: Literal["none", "temperature", "platt", "isotonic", "auto"] = Field(
        "none",
        description="binary/multiclass: a map to calibrated probabilities fitted on the validation split and kept in "
        "the bundle (auto: chosen by cross-validated log loss); multiclass takes temperature only",
    )
    conformal: ConformalConfig | None = Field(
        None,
        description="prediction sets / intervals with guaranteed coverage, e.g. {alpha: 0.1, method: lac}; "
        "kept in the bundle and returned with every prediction",
    )
    referral: ReferralConfig | None = Field(
        None,
        description="binary/multiclass: the least confident cases are referred until the kept ones reach a target, "
        "e.g. {metric: sensitivity, at_least: 0.9}; the cut-off is chosen on validation, judged on test, kept in "
        "the bundle (predict marks referred cases uncertain)",
    )
    robustness: bool = Field(
        True,
        description="after training, score the test split again under the data kind's corruptions (noise, "
        "missing values, blur, dropped leads, mutations...) at several severities; the report shows the metric "
        "against severity with CIs and the worst-case drop",
    )

    @field_validator("horizons")
    @classmethod
    def _increasing_positive(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one horizon, or leave horizons out to take them from the data")
        if any(not h > 0 for h in value):
            raise ValueError(f"every horizon must be a positive time, got {value}")
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError(f"horizons must be strictly increasing, got {value}")
        return value


class ExplainConfig(Section):
    permutation_repeats: int = Field(5, ge=0)
    integrated_gradients: bool = True
    top_k: int = Field(5, ge=1)
    heatmap: Literal["gradcam", "occlusion"] = Field("gradcam", description="images: how heat maps are drawn")
    occlusion_window: int = Field(6, ge=1)
    occlusion_stride: int = Field(2, ge=1)


def format_validation_error(error: ValidationError, source: str, kinds: tuple[str, ...] | list[str] = ()) -> str:
    """Turn pydantic's error list into lines that name each field, e.g. ``data.target: field required``.

    ``kinds`` are the tags of the ``data``/``preprocess`` unions: pydantic puts the tag in the error's location,
    but it is not a field the user wrote, so it is left out."""
    lines = []
    for item in error.errors():
        parts = [str(p) for p in item["loc"]]
        kind_of_section = "tabular"  # whose `meddl init` template to point at
        if len(parts) > 1 and parts[0] in {"data", "preprocess"} and parts[1] in kinds:
            kind_of_section = parts.pop(1)  # the discriminated union's tag is not a field the user wrote
        field = ".".join(parts) or "(top level)"
        if not parts:  # rules across sections: one problem per line, each naming its field itself
            for problem in item["msg"].removeprefix("Value error, ").split("\n"):
                named = re.match(r"((?:data|preprocess|model|train|evaluate|explain)(?:\.\w+)+): (.*)", problem)
                lines.append(f"{named.group(1)}: {named.group(2)}" if named else f"(top level): {problem}")
            continue
        kind = item["type"]
        if kind == "extra_forbidden":
            message = f"unknown field (check the spelling; `meddl init {kind_of_section}` prints every field)"
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

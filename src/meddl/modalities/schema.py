"""The experiment file's schema: one YAML document, validated by pydantic, defaults for everything.

The sections every kind shares (``split``, ``model``, ``train``, ``evaluate``, ``explain``) are in
:mod:`meddl.sections`; each data kind's ``data`` and ``preprocess`` sections are its own, in
``meddl/modalities/sections/<kind>.py``. This module joins them, for every kind :mod:`meddl.modalities.kinds`
lists, into one schema whose ``data.kind`` picks the sections; adding a kind changes nothing here. It lives with
the modalities because it depends on them; :mod:`meddl.config` is its public name.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

import yaml
from pydantic import Field, ValidationError, model_validator

from meddl.errors import MedDLError
from meddl.io.yamlfile import read_yaml
from meddl.modalities.kinds import canonical, kinds, section_module
from meddl.sections import (
    MONITORS,
    DataSection,
    EarlyStoppingConfig,
    EvaluateConfig,
    ExplainConfig,
    ModelConfig,
    PreprocessSection,
    Section,
    ServeConfig,
    SplitConfig,
    Task,
    TrainConfig,
    format_validation_error,
)

__all__ = [
    "KINDS",
    "DataSection",
    "EarlyStoppingConfig",
    "EvaluateConfig",
    "ExperimentConfig",
    "ExplainConfig",
    "ModelConfig",
    "PreprocessSection",
    "SplitConfig",
    "TrainConfig",
    "format_validation_error",
    "load_config",
    "parse_config",
]

KINDS = tuple(kinds())
_SECTIONS = {kind: import_module(section_module(kind)) for kind in KINDS}
_DATA: Any = Annotated[Union[tuple(m.Data for m in _SECTIONS.values())], Field(discriminator="kind")]  # noqa: UP007
_PREPROCESS: Any = Annotated[Union[tuple(m.Preprocess for m in _SECTIONS.values())], Field(discriminator="kind")]  # noqa: UP007


# every network MedDL ships, by the kinds it fits (a model registered by the user is not checked here)
_BUILT_IN_ARCHS = frozenset(arch for module in _SECTIONS.values() for arch in module.Data.archs)


class ExperimentConfig(Section):
    """A whole experiment: what to read, how to prepare it, what to train and how to judge it."""

    name: str = Field("experiment", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    task: Task = "binary"
    if TYPE_CHECKING:
        data: DataSection
        preprocess: PreprocessSection
    else:
        data: _DATA
        preprocess: _PREPROCESS
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    explain: ExplainConfig = Field(default_factory=ExplainConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)

    @model_validator(mode="before")
    @classmethod
    def _kind_from_data(cls, raw: Any) -> Any:
        """``data.kind`` (default tabular) decides which ``preprocess`` section applies; users never write its kind."""
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
            return raw
        raw = dict(raw)
        data = dict(raw["data"])
        kind = data["kind"] = canonical(str(data.get("kind", KINDS[0])))  # `tables` is `tabular`
        raw["data"] = data
        preprocess = raw.get("preprocess")
        if preprocess is None:
            raw["preprocess"] = {"kind": kind}
        elif isinstance(preprocess, dict):
            raw["preprocess"] = {"kind": kind, **preprocess}
        return raw

    @model_validator(mode="after")
    def _task_consistency(self) -> ExperimentConfig:
        """Rules across sections, all checked: every problem of the file is reported at once, each naming its
        field (``field: message`` lines)."""
        problems: list[str] = []
        data_class = type(self.data)
        task_archs = data_class.task_archs.get(self.task)
        only_for = {arch: task for task, names in data_class.task_archs.items() for arch in names}
        if "arch" not in self.model.model_fields_set:  # the kind's own network (a signal is not a table)
            self.model.arch = task_archs[0] if task_archs else data_class.default_arch
        elif self.model.arch not in data_class.archs and self.model.arch in _BUILT_IN_ARCHS:
            problems.append(
                f"model.arch: {self.model.arch!r} is a network for another kind of data; for "
                f"data.kind: {self.data.kind} choose one of {', '.join(data_class.archs)}"
            )
        elif task_archs and self.model.arch not in task_archs and self.model.arch in _BUILT_IN_ARCHS:
            problems.append(
                f"model.arch: {self.model.arch!r} does not fit task {self.task}; use {', '.join(task_archs)}"
            )
        elif self.model.arch in only_for and only_for[self.model.arch] != self.task:
            problems.append(
                f"model.arch: {self.model.arch!r} is a {only_for[self.model.arch]} network; for task {self.task} "
                f"choose one of {', '.join(a for a in data_class.archs if a not in only_for)}"
            )
        try:
            self.data.check_task(self.task)  # what the kind can learn (an EHR cohort's outcome fixes its task)
        except ValueError as exc:
            problems.append(str(exc))
        task, baselines = self.task, list(self.evaluate.baselines or [])
        monitor = self.train.early_stopping.monitor
        if monitor is not None and monitor not in MONITORS[task]:
            problems.append(
                f"train.early_stopping.monitor: {monitor!r} is not a {task} validation metric; choose one of "
                f"{', '.join(MONITORS[task])}"
            )
        misfit = {"regression": "logistic_regression", "binary": "linear_regression", "multiclass": "linear_regression"}
        if misfit.get(task) in baselines:
            right = "linear_regression" if task == "regression" else "logistic_regression"
            problems.append(
                f"evaluate.baselines: {misfit[task]!r} does not fit a {task} task; use {right!r} (or leave "
                "evaluate.baselines out for the task's defaults)"
            )
        positive_label = getattr(self.data, "positive_label", None)
        if task in {"regression", "survival"} and self.preprocess.imbalance != "none":
            problems.append(
                f"preprocess.imbalance: {self.preprocess.imbalance!r} needs a class label; a {task} task takes 'none'"
            )
        if task in {"regression", "survival", "multiclass"} and positive_label is not None:
            instead = "use data.classes for multiclass" if task == "multiclass" else f"remove it for {task}"
            problems.append(f"data.positive_label: is for binary tasks; {instead}")
        recalibrate = self.evaluate.recalibrate
        if recalibrate != "none" and task not in {"binary", "multiclass"}:
            problems.append(f"evaluate.recalibrate: {recalibrate!r} is for binary and multiclass tasks, not {task}")
        elif task == "multiclass" and recalibrate in {"platt", "isotonic"}:
            problems.append(
                f"evaluate.recalibrate: {recalibrate!r} would break a multiclass model's probabilities; use "
                "temperature or auto"
            )
        problems.extend(self._conformal_problems())
        problems.extend(self.data.model_problems(task, self.model))
        if self.train.ensemble > 1 and task == "survival":
            problems.append("train.ensemble: not available for survival tasks yet (a Cox baseline per member); use 1")
        survival_models = {"cox", "random_survival_forest"}
        if task == "survival":
            if self.data.split.folds:
                problems.append("data.split.folds: the k-fold estimate is not available for survival tasks yet")
            wrong = [b for b in baselines if b not in survival_models]
            if wrong:
                problems.append(f"evaluate.baselines: {wrong} are not survival models; use cox, random_survival_forest")
        else:
            if self.evaluate.horizons is not None:
                problems.append("evaluate.horizons: is for survival tasks; remove it or set task: survival")
            if self.model.survival_head is not None:
                problems.append("model.survival_head: is for survival tasks; remove it or set task: survival")
            survival_only = [b for b in baselines if b in survival_models]
            if survival_only:
                problems.append(f"evaluate.baselines: {survival_only} are survival models; this is a {task} task")
        if task == "segmentation":
            problems.extend(self._segmentation_problems())
        elif getattr(self.preprocess, "normalize", None) == "ct":
            problems.append("preprocess.normalize: ct is for segmentation; use zscore, percentile, minmax or none")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _segmentation_problems(self) -> list[str]:
        """What a segmentation run does not do (yet): each named, rather than silently ignored."""
        problems = []
        unsupported = {
            "train.ensemble": self.train.ensemble > 1,
            "data.split.folds": bool(self.data.split.folds),
            "evaluate.conformal": self.evaluate.conformal is not None,
            "evaluate.subgroups": bool(self.evaluate.subgroups),
            "evaluate.baselines": bool(self.evaluate.baselines),
        }
        prep = self.preprocess
        # image-classification settings a segmentation run would otherwise ignore without a word; judged by value,
        # not by whether they were written (a bundle's config.yaml writes every field with its default; an unset
        # size is [64, 64], or the placeholder [64] per spatial axis that the image modality writes there)
        defaults = {"window": None, "window_level": None, "resize_mode": "resize", "imbalance": "none"}
        ignored = {f"preprocess.{k}": getattr(prep, k, v) != v for k, v in defaults.items()}
        dims = getattr(self.data, "spatial_dims", 2)
        ignored["preprocess.size"] = getattr(prep, "size", [64, 64]) not in ([64, 64], [64] * dims)
        ignored["preprocess.normalize"] = getattr(prep, "normalize", "zscore") not in ("zscore", "ct")
        unsupported.update(ignored)
        for name, flag in unsupported.items():
            if flag:
                why = {
                    "preprocess.normalize": " (zscore or ct)",
                    "preprocess.size": " (the plan's spacing and patch size set the grid; see preprocess.spacing and "
                    "preprocess.patch_size)",
                    "preprocess.resize_mode": " (images are resampled to the plan's spacing and never cropped)",
                    "preprocess.imbalance": " (preprocess.foreground_ratio balances the patches)",
                }.get(name, "")
                problems.append(f"{name}: not available for segmentation yet{why}; remove it")
        return problems

    def _conformal_problems(self) -> list[str]:
        """``evaluate.conformal`` and ``serve.max_interval`` against the task and the data kind."""
        conformal, task, problems = self.evaluate.conformal, self.task, []
        if conformal is not None:
            if conformal.mondrian == "class" and task in {"regression", "survival"}:
                problems.append(
                    f"evaluate.conformal.mondrian: 'class' needs classes; for {task} give a categorical column"
                )
            elif conformal.mondrian == "class" and task == "multilabel":
                problems.append(
                    "evaluate.conformal.mondrian: a multilabel model's sets are already calibrated label by label; "
                    "remove 'class' (or give a categorical column)"
                )
            elif conformal.mondrian not in (None, "class") and not type(self.data).group_columns:
                problems.append(
                    f"evaluate.conformal.mondrian: {self.data.kind} data has no columns to group by "
                    f"({conformal.mondrian!r}); use 'class' or leave it out"
                )
            if conformal.method != "lac" and task in {"regression", "multilabel", "survival"}:
                problems.append(
                    f"evaluate.conformal.method: {conformal.method!r} ranks classes; a {task} task takes 'lac' "
                    "(regression: the absolute residual; multilabel: each label's yes/no; survival: a lower bound "
                    "on the time to the event)"
                )
        referral = self.evaluate.referral
        if referral is not None and task not in {"binary", "multiclass"}:
            problems.append(f"evaluate.referral: is for binary and multiclass tasks (class probabilities), not {task}")
        elif referral is not None and task == "multiclass" and referral.metric != "accuracy":
            problems.append(
                f"evaluate.referral.metric: {referral.metric!r} needs a positive class; a multiclass task takes "
                "'accuracy'"
            )
        if self.serve.max_interval is not None and (task != "regression" or conformal is None):
            problems.append(
                "serve.max_interval: is for regression with evaluate.conformal (the width of its intervals); "
                "remove it or set both"
            )
        return problems

    # -- derived settings ---------------------------------------------------------------------
    @property
    def monitor(self) -> str:
        """The validation metric early stopping watches."""
        if self.train.early_stopping.monitor:
            return self.train.early_stopping.monitor
        return {
            "binary": "auroc",
            "multiclass": "auroc_macro",
            "multilabel": "auroc_macro",
            "regression": "rmse",
            "survival": "c_index",
            "segmentation": "dice",
        }[self.task]

    @property
    def baselines(self) -> list[str]:
        if self.evaluate.baselines is not None:
            return list(self.evaluate.baselines)
        if not self.data.classical_baselines:
            return []
        if self.task in self.data.default_baselines:
            return list(self.data.default_baselines[self.task])
        if self.task == "segmentation":
            return []  # no classical model draws a mask; the report compares with the ground truth itself
        if self.task == "survival":
            return ["cox", "random_survival_forest"]
        if self.task == "regression":
            return ["linear_regression", "gradient_boosting"]
        return ["logistic_regression", "gradient_boosting"]

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=False)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


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
    raw = read_yaml(path, "experiment file")
    if raw is None:
        raise MedDLError(f"{path}: the experiment file is empty")
    if not isinstance(raw, dict):
        raise MedDLError(f"{path}: expected a mapping of sections (name, task, data, ...), got {type(raw).__name__}")
    config = parse_config(raw, source=str(path))
    base = path.resolve().parent
    config.data.resolve_paths(base)
    return config, base


def parse_config(raw: dict[str, Any], source: str = "experiment") -> ExperimentConfig:
    """Validate a config given as a dict (the Python API path).

    The schema is checked here; ``model.arch`` and its arguments are checked against the model registry by
    :class:`meddl.Experiment`, so this module stays free of imports from the layers below it.
    """
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise MedDLError(format_validation_error(exc, source, KINDS)) from None

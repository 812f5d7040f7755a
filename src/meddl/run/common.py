"""What a training run and an external evaluation share: the run result, validation metrics for the trainer, the
trainer's settings, the run folder, test evaluation with baselines, and the files every run writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from meddl._json import clean_json
from meddl.bundle import load_bundle, write_manifest
from meddl.config import ExperimentConfig
from meddl.errors import MedDLError
from meddl.evaluate import (
    choose_threshold,
    compare_to_baseline,
    decision_threshold,
    evaluate_predictions,
    fit_baseline,
    higher_is_better,
    main_metric,
    predict_baseline,
)
from meddl.evaluate.evaluation import undefined_warning
from meddl.evaluate.metrics import binary_metrics, multiclass_metrics, multilabel_metrics, regression_metrics
from meddl.evaluate.recalibration import Recalibrator, fit_recalibrator
from meddl.report import write_model_card, write_report
from meddl.run.folders import RunFolder, staging_path
from meddl.train import DistributedContext, TrainerSettings, init_distributed, scores_from_outputs

OPTIONAL_METRICS = (
    "comparison_models",
    "cross_validation",
    "subgroups",
    "localization",
    "explanation_quality",
    "derived_defaults",
    "conformal",
    "selective",
    "robustness",
)

__all__ = [
    "Fitted",
    "RunResult",
    "clean_json",
    "evaluate_on_test",
    "finish_bundle",
    "now_utc",
    "prepare_run_folder",
    "recalibrate",
    "threshold_on_validation",
    "trainer_settings",
    "training_record_header",
    "validation_metrics",
    "write_run_metrics",
]


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validation_metrics(
    task: str, threshold: float = 0.5, scale: tuple[float, float] | None = None
) -> Callable[[np.ndarray, np.ndarray], dict[str, float]]:
    """Validation metrics from raw outputs, as the trainer's early stopping needs them. ``scale``: a regression
    target's training (mean, std) — the network learns the standardised target, the log shows the target's units."""

    def compute(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        if task == "regression" and scale is not None:
            targets = np.asarray(targets, dtype=np.float64) * scale[1] + scale[0]
            return regression_metrics(targets, scores_from_outputs(task, outputs, scale))
        scores = scores_from_outputs(task, outputs)
        if task == "binary":
            return binary_metrics(targets.astype(np.int64), scores, threshold)
        if task == "multiclass":
            return multiclass_metrics(targets.astype(np.int64), scores)
        if task == "multilabel":
            return multilabel_metrics(targets, scores, threshold)  # NaN: a label not observed
        return regression_metrics(targets, scores)

    return compute


@dataclass
class RunResult:
    """What a run produced: the bundle folder, the metrics and the full run record."""

    path: Path
    record: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)

    def bundle(self) -> Any:
        return load_bundle(self.path)

    def summary(self) -> dict[str, Any]:
        metric = main_metric(self.record["task"])
        row = {"name": self.record["name"], "metric": metric, "model": self.metrics["test"].get(metric)}
        for name, values in self.metrics.get("baselines", {}).items():
            row[name] = values.get(metric)
        return row


def trainer_settings(config: ExperimentConfig) -> TrainerSettings:
    """The trainer's settings from the experiment's ``train`` section and its monitored metric."""
    t = config.train
    monitor = config.monitor
    return TrainerSettings(
        epochs=t.epochs,
        batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        scheduler=t.scheduler,
        warmup_epochs=t.warmup_epochs,
        patience=t.early_stopping.patience,
        min_delta=t.early_stopping.min_delta,
        monitor_smoothing=t.early_stopping.smoothing,
        monitor=monitor,
        monitor_mode="max" if monitor != "loss" and higher_is_better(monitor) else "min",
        seed=t.seed,
        device=t.device,
        precision=t.precision,
        grad_clip=t.grad_clip,
        progress=t.progress,
        num_workers=None if t.num_workers == "auto" else t.num_workers,
    )


def prepare_run_folder(
    out: Path, *, resume: bool, device: str, overwrite: bool = False
) -> tuple[DistributedContext, RunFolder]:
    """Join the process group (under torchrun) and open the run's staging folder beside ``out``
    (:class:`~meddl.run.folders.RunFolder`): ``out`` itself is not touched until the run is complete.

    Only rank 0 checks and creates the folder; every process waits for it before going on.
    """
    context = init_distributed(device)
    folder, problem = None, None
    if context.is_main:
        try:
            folder = RunFolder.open(out, kind="train", resume=resume, overwrite=overwrite)
        except MedDLError as exc:
            problem = str(exc)
    problem = context.broadcast(problem)  # every rank stops on a refused --out (none waits at a barrier for it)
    if problem is not None:
        raise MedDLError(problem)
    if folder is None:
        final = Path(out).resolve()
        folder = RunFolder(final, staging_path(final), "train", resumed=bool(context.broadcast(None)))
    else:
        context.broadcast(folder.resumed)
    context.barrier()
    return context, folder


def training_record_header(config: ExperimentConfig) -> dict[str, Any]:
    """What every training run's record starts with: its kind, name, task, time, MedDL version and config."""
    from meddl._version import __version__

    return {
        "kind": "train",
        "name": config.name,
        "task": config.task,
        "created": now_utc(),
        "meddl_version": __version__,
        "config_yaml": config.to_yaml(),
    }


def write_run_metrics(out: Path, record: dict[str, Any]) -> dict[str, Any]:
    """``metrics.json`` of a training run: test metrics with CIs, threshold, baselines and the paired comparisons,
    the confusion matrix, what the run measured beyond that (cross-validation, subgroups, localization of heat
    maps, explanation quality), the data and training summary; returns what it wrote."""
    evaluation = record["evaluation"]
    metrics = clean_json(
        {
            "test": evaluation["model"]["metrics"],
            "threshold": evaluation["threshold"],
            "threshold_rule": evaluation["threshold_rule"],
            "baselines": {k: v["metrics"] for k, v in evaluation.get("baselines", {}).items()},
            "comparisons": evaluation.get("comparisons", {}),
            "confusion_matrix": evaluation["model"].get("confusion_matrix"),
            "per_label": evaluation["model"].get("per_label"),
            **{key: record[key] for key in OPTIONAL_METRICS if record.get(key) is not None},
            "data": {k: v for k, v in record["data"].items() if k != "columns"},
            "training": {k: v for k, v in record["training"].items() if k != "history"},
        }
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    return metrics


def finish_bundle(out: Path, record: dict[str, Any], files: list[str], final: Path | None = None) -> None:
    """Hash the bundle files, write the model card and report (which show that hash), then the final manifest
    (covering card and report too) and the full run record ``run.json``. ``final``: the folder the bundle is moved
    to once complete (the card's commands name it)."""
    record["bundle_hash"] = write_manifest(out, files)
    write_model_card(record, out / "model_card.md", final)
    write_report(record, out / "report.html")
    write_manifest(out, [*files, "model_card.md", "report.html"])
    (out / "run.json").write_text(json.dumps(clean_json(record), indent=1, allow_nan=False) + "\n")


def threshold_on_validation(config: ExperimentConfig, y: np.ndarray, scores: np.ndarray) -> float | None:
    """The binary decision threshold chosen on the validation split by ``evaluate.threshold``; None otherwise."""
    if config.task != "binary":
        return None
    e = config.evaluate
    return float(
        choose_threshold(y, scores, e.threshold, fixed=e.fixed_threshold, target_sensitivity=e.target_sensitivity)
    )


def evaluate_on_test(
    config: ExperimentConfig,
    *,
    y_val: np.ndarray,
    y_test: np.ndarray,
    model_val: np.ndarray,
    model_test: np.ndarray,
    groups: np.ndarray | None,
    class_names: list[str] | None,
    baselines: list[str],
    baseline_data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
    sample_weight: np.ndarray | None = None,
) -> dict[str, Any]:
    """The model's test metrics with bootstrap CIs at the threshold chosen on validation, and each classical
    baseline fitted on ``baseline_data`` = (X_train, y_train, X_val, X_test), judged the same way and compared with
    the model by a paired bootstrap."""
    e = config.evaluate

    def judge(score_val: np.ndarray, score_test: np.ndarray) -> tuple[dict[str, Any], float | None]:
        threshold = threshold_on_validation(config, y_val, score_val)
        result = evaluate_predictions(
            config.task,
            y_test,
            score_test,
            threshold=threshold,
            groups=groups,
            n_bootstrap=e.bootstrap,
            level=e.confidence_level,
            seed=config.train.seed,
            class_names=class_names,
        )
        return result, threshold

    model_eval, threshold = judge(model_val, model_test)
    fitted: dict[str, Any] = {}
    comparisons: dict[str, Any] = {}
    if baseline_data is not None:
        X_train, y_train, X_val, X_test = baseline_data
        for name in baselines:
            estimator = fit_baseline(
                name, config.task, X_train, y_train, sample_weight=sample_weight, seed=config.train.seed
            )
            base_val = predict_baseline(estimator, config.task, X_val)
            base_test = predict_baseline(estimator, config.task, X_test)
            fitted[name], base_threshold = judge(base_val, base_test)
            comparisons[name] = compare_to_baseline(
                config.task,
                y_test,
                model_test,
                base_test,
                metric=main_metric(config.task),
                threshold_model=decision_threshold(threshold),
                threshold_baseline=decision_threshold(base_threshold),
                groups=groups,
                n_bootstrap=e.bootstrap,
                seed=config.train.seed,
            )
    return {
        "warnings": undefined_warning(model_eval.get("undefined") or {}),
        "split": "test",
        "threshold": threshold,
        "threshold_rule": e.threshold if config.task == "binary" else None,
        "model": model_eval,
        "baselines": fitted,
        "comparisons": comparisons,
    }


def recalibrate(
    config: ExperimentConfig,
    y_val: np.ndarray,
    y_test: np.ndarray,
    val_scores: np.ndarray,
    test_scores: np.ndarray,
) -> tuple[Recalibrator, np.ndarray, np.ndarray, dict[str, Any] | None]:
    """``evaluate.recalibrate``: the map fitted on the validation split, both splits' scores through it, and the
    report's section comparing the test split's calibration before and after (None when nothing is fitted)."""
    method = config.evaluate.recalibrate
    if method == "none" or config.task not in {"binary", "multiclass"}:
        return Recalibrator(), val_scores, test_scores, None
    fitted = fit_recalibrator(config.task, y_val, val_scores, method, seed=config.train.seed)
    after_val, after_test = fitted.apply(val_scores), fitted.apply(test_scores)
    judge = binary_metrics if config.task == "binary" else multiclass_metrics
    names = ["ece", "brier", "calibration_slope", "calibration_intercept", "auroc"]
    if config.task == "multiclass":
        names = ["ece", "brier", "log_loss", "auroc_macro"]
    before, after = judge(y_test, test_scores), judge(y_test, after_test)
    how = {
        "none": "no map: the model's own probabilities were the best calibrated",
        "temperature": f"temperature scaling (T = {fitted.params.get('t', 1.0):.3g})",
        "platt": f"Platt scaling (slope {fitted.params.get('a', 1.0):.3g}, intercept {fitted.params.get('b', 0.0):.3g} "
        "on the logit)",
        "isotonic": f"isotonic regression ({len(fitted.params.get('x', []))} steps)",
    }[fitted.method]
    text = [
        f"Probabilities recalibrated on the validation split by {how}; the map is kept in the bundle and applied to "
        "every prediction. Test-split figures below; the metrics above (with CIs) are after recalibration."
    ]
    if fitted.chosen_by:
        shown = ", ".join(f"{name} {loss:.4f}" for name, loss in fitted.chosen_by.items())
        text.append(
            f"evaluate.recalibrate: auto chose by the log loss of 5-fold cross-validation within validation: {shown}."
        )
    rows = [[name, f"{before[name]:.4f}", f"{after[name]:.4f}"] for name in names if name in before]
    section = {
        "id": "recalibration",
        "title": "Recalibration",
        "text": text,
        "table": {"columns": ["Test metric", "Before", "After"], "rows": rows},
        "figures": _reliability_before_after(config.task, y_test, test_scores, after_test),
    }
    return fitted, after_val, after_test, section


def _reliability_before_after(
    task: str, y_test: np.ndarray, before: np.ndarray, after: np.ndarray
) -> list[dict[str, Any]]:
    """The test split's reliability diagram after recalibration, with the one before drawn beside it."""
    from meddl.evaluate.curves import calibration_points
    from meddl.report.plots import calibration_plot

    def points(scores: np.ndarray) -> dict[str, list]:
        if task == "binary":
            return calibration_points(y_test, scores)
        correct = (np.argmax(scores, axis=1) == y_test).astype(np.int64)  # top-label confidence
        return calibration_points(correct, scores.max(axis=1))

    image = calibration_plot(
        points(after),
        {"Before recalibration": points(before)},
        model_label="After recalibration",
        title="Calibration on the test split",
    )
    if image is None:
        return []
    caption = "Observed event rate per bin of predicted probability; the diagonal is perfect calibration."
    return [{"title": "Reliability before and after recalibration", "png": image, "caption": caption}]


@dataclass
class Fitted:
    """A model trained on one split, with what scoring more rows needs (every task's run)."""

    model: Any  # torch.nn.Module (torch is not imported here)
    result: Any
    params: dict[str, Any]
    data_arguments: dict[str, Any]
    target_scale: Any  # regression: (mean, std); survival: the fitted SurvivalOutputs
    pretrained: dict[str, Any] | None = None  # model.pretrained: what was loaded and frozen (apply_pretrained)

    def model_record(self, arch: str) -> dict[str, Any]:
        """The run record's ``model`` entry: the network, its arguments and size, and what was loaded into it."""
        return {
            "arch": arch,
            "params": self.params,
            "n_parameters": int(sum(p.numel() for p in self.model.parameters())),
            **({"pretrained": self.pretrained} if self.pretrained is not None else {}),
        }

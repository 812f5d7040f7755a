"""The models a modality asks the run to train beside the main one (:meth:`Modality.comparison_models`), on the
same split, and their paired comparison with the main model on the same test rows.

For a fused model these are the inputs alone: "fusion helps" is then a claim with a confidence interval — the
paired bootstrap difference of the test metric, fused minus single, on the test patients who have that input —
or it is not made.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from meddl.config import ExperimentConfig
from meddl.evaluate import main_metric
from meddl.evaluate.paired import paired_comparison
from meddl.modalities import Modality, Prepared
from meddl.models import build_model
from meddl.preprocess import class_weights
from meddl.report._format import metric_label
from meddl.run.common import Fitted, trainer_settings, validation_metrics
from meddl.run.survival import survival_validation_metrics
from meddl.train import Trainer, make_loss, scores_from_outputs, seed_everything

__all__ = ["ComparisonModel", "compare_models", "fit_comparison_models"]


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"


@dataclass
class ComparisonModel:
    """One of the modality's comparison models, trained: the rows it can score per split and its scores."""

    own: dict[str, np.ndarray]
    model: Any = None
    best_epoch: int | None = None
    survival: Any = None  # survival: its own fitted SurvivalOutputs (Breslow baseline from its training rows)


def fit_comparison_models(
    config: ExperimentConfig,
    modality: Modality,
    fitted: Fitted,
    prepared: Prepared,
    index: dict[str, np.ndarray],
    say: Any,
) -> dict[str, ComparisonModel]:
    """Train each of the modality's comparison models on the main model's split (every process of a torchrun
    job takes part, as in the main fit; a model a split cannot train is kept without a network)."""
    cfg, task = config, config.task
    target = prepared.target
    if task == "regression":
        mean, std = fitted.target_scale
        target = (target - mean) / std
    weights = None
    if getattr(cfg.preprocess, "imbalance", "none") == "class_weight" and task in {"binary", "multiclass"}:
        weights = class_weights(prepared.target[index["train"]], len(prepared.classes))
    scale = fitted.target_scale if task == "regression" else None
    trained: dict[str, ComparisonModel] = {}
    for name, (update, usable) in modality.comparison_models(prepared).items():
        own = {split: rows[usable[rows]] for split, rows in index.items()}
        if min(len(own["train"]), len(own["validation"]), len(own["test"])) == 0:
            trained[name] = ComparisonModel(own)
            continue
        seed_everything(cfg.train.seed)
        network = build_model(cfg.model.arch, {**cfg.model.params, **update}, **fitted.data_arguments)
        if say:
            say(f"comparison: training {name} alone on {len(own['train'])} samples")
        survival = copy.deepcopy(fitted.target_scale) if task == "survival" else None
        trainer = Trainer(
            network,
            survival.loss() if survival is not None else make_loss(task, weights),
            trainer_settings(cfg),
            metric_fn=survival_validation_metrics(survival)
            if survival is not None
            else validation_metrics(task, scale=scale),
        )
        datasets = {
            split: modality.training_dataset(prepared, own[split], target[own[split]], train=split == "train")
            for split in ("train", "validation")
        }
        result = trainer.fit(datasets["train"], datasets["validation"])
        model = trainer.module.eval()
        if survival is not None:  # its own Breslow baseline, from its training rows
            train_outputs = modality.prepared_outputs(model, prepared, own["train"])
            survival.fit_baseline(train_outputs, target[own["train"], 0], target[own["train"], 1])
        trained[name] = ComparisonModel(own, model, result.best_epoch, survival)
    return trained


def compare_models(
    config: ExperimentConfig,
    modality: Modality,
    fitted: Fitted,
    prepared: Prepared,
    index: dict[str, np.ndarray],
    trained: dict[str, ComparisonModel],
    test_scores: np.ndarray,
    threshold: float | None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The main model against each comparison model of :func:`fit_comparison_models` on the test rows both score.

    Returns:
        (the figures for the run record and ``metrics.json``, the report's section), or (None, None) when the
        modality names no comparison model.
    """
    if not trained:
        return None, None
    cfg, task = config, config.task
    metric = main_metric(task)
    figures: dict[str, Any] = {}
    rows = []
    for name, single_model in trained.items():
        own = single_model.own
        if single_model.model is None:
            figures[name] = {"skipped": "no patient of one split has it"}
            rows.append([name, 0, "n/a", "n/a", "not trained: a split has no patient with it"])
            continue
        outputs = modality.prepared_outputs(single_model.model, prepared, own["test"])
        scale = single_model.survival if task == "survival" else fitted.target_scale
        single = scores_from_outputs(task, outputs, scale)
        test_rows = np.flatnonzero(np.isin(index["test"], own["test"]))
        groups = prepared.patient_ids[own["test"]] if prepared.patient_ids is not None else None
        difference = paired_comparison(
            task,
            prepared.target[own["test"]],
            test_scores[test_rows],
            single,
            threshold=threshold,
            groups=groups,
            n_bootstrap=cfg.evaluate.bootstrap,
            level=cfg.evaluate.confidence_level,
            seed=cfg.train.seed,
        )
        low, high = difference["ci"]
        verdict = (
            "better"
            if low is not None and low > 0
            else "worse"
            if high is not None and high < 0
            else "no clear difference"
        )
        if not difference["higher_is_better"]:
            verdict = {"better": "worse", "worse": "better"}.get(verdict, verdict)
        figures[name] = {
            **difference,
            "test_rows": len(own["test"]),
            "best_epoch": single_model.best_epoch,
            "main_model_is": verdict,
        }
        rows.append(
            [
                name,
                len(own["test"]),
                _fmt(difference["baseline"]),
                _fmt(difference["model"]),
                f"{_fmt(difference['value'])} ({_fmt(low)} to {_fmt(high)}): {verdict}",
            ]
        )
    level = round(100 * cfg.evaluate.confidence_level)
    shown = metric_label(metric).split(" (")[0]
    section = {
        "id": "comparison-models",
        "title": "The fused model against each input alone",
        "text": [
            f"Each input's model was trained alone on the same split (the same network with only that input) and "
            f"scored on the test patients who have that input. The difference is the fused model's test {shown} "
            f"minus the single input's, with its paired bootstrap {level}% CI: fusion helps over an input only "
            "when the whole interval is above 0."
        ],
        "table": {
            "columns": ["alone", "test patients", f"{shown} alone", f"{shown} fused", f"difference ({level}% CI)"],
            "rows": rows,
        },
    }
    return {"metric": metric, "models": figures}, section

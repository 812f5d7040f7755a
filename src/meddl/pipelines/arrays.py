"""One pipeline for every data kind that becomes one array per sample: DNA sequences, expression profiles,
physiological signals and EHR event sequences.

read (the kind) → patient-level split → preprocessing fitted on the training split (the kind) → the one trainer →
evaluation with bootstrap CIs and classical baselines → explanations (the kind) → report, model card, bundle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from meddl import __version__
from meddl.bundle import BUNDLE_FORMAT, save_weights
from meddl.config import EHRDataConfig, ExperimentConfig
from meddl.data import split_assignments
from meddl.errors import MedDLError
from meddl.kinds.base import KindAdapter, Prepared, adapter_for
from meddl.models import build_model
from meddl.models.registry import output_argument
from meddl.pipelines.common import (
    RunResult,
    clean_json,
    evaluate_on_test,
    external_evaluation,
    finish_bundle,
    now_utc,
    prepare_run_folder,
    trainer_settings,
    validation_metrics,
    write_run_metrics,
)
from meddl.preprocess import class_weights
from meddl.train import Trainer, make_loss, output_size, scores_from_outputs, seed_everything

__all__ = ["ArrayPipelineRun", "evaluate_external_arrays"]

SPLITS = ("train", "validation", "test")


class ArrayPipelineRun:
    """Runs one experiment of an array kind (``meddl.Experiment`` dispatches here)."""

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config
        self.adapter: KindAdapter = adapter_for(config.data.kind)(config)

    # -- splits ---------------------------------------------------------------------------------
    def _splits(self, prepared: Prepared) -> np.ndarray:
        if prepared.given_splits is not None:
            return prepared.given_splits
        cfg = self.config
        split = cfg.data.split
        stratify = prepared.target if cfg.task != "multilabel" else prepared.target[:, 0]
        task = "binary" if cfg.task == "multilabel" else cfg.task
        return split_assignments(
            stratify,
            task=task,
            fractions=(split.train, split.validation, split.test),
            patient_ids=prepared.patient_ids,
            seed=cfg.train.seed,
            source=cfg.data.path.name,
        )

    def run(self, out: str | Path | None = None, *, resume: bool = False, log: Any = None) -> RunResult:
        say = log or (lambda message: None)
        cfg = self.config
        out = Path(out) if out else Path("runs") / cfg.name
        context = prepare_run_folder(out, resume=resume, device=cfg.train.device)

        say(f"reading {cfg.data.path}")
        # scratch space per process: under torchrun every rank extracts its own copy (no two writers on one file)
        self.adapter.workdir = out / ("work" if context.world_size == 1 else f"work-rank{context.rank}")
        prepared = self.adapter.load(say)
        if len(prepared.target) == 0:
            raise MedDLError(f"{cfg.data.path}: no labelled sample left to train on")
        splits = self._splits(prepared)
        index = {name: np.flatnonzero(splits == name) for name in SPLITS}
        for name in SPLITS:
            if len(index[name]) == 0:
                raise MedDLError(f"{cfg.data.path}: the {name} split is empty ({len(splits)} samples in all)")
        say(", ".join(f"{k} {len(v)}" for k, v in index.items()) + " samples")

        self.adapter.fit(prepared, index["train"])
        inputs = self.adapter.transform(prepared.inputs)
        target = prepared.target
        target_scale = None
        train_target = target[index["train"]]
        if cfg.task == "regression":
            mean, std = float(np.mean(train_target)), float(np.std(train_target))
            target_scale = (mean, std if std > 0 else 1.0)
            target = (target - target_scale[0]) / target_scale[1]

        weights = None
        if getattr(cfg.preprocess, "imbalance", "none") == "class_weight" and cfg.task in {"binary", "multiclass"}:
            weights = class_weights(prepared.target[index["train"]], len(prepared.classes))
        seed_everything(cfg.train.seed)
        data_arguments = self.adapter.model_arguments(inputs)
        params = dict(cfg.model.params)
        data_arguments[output_argument(cfg.model.arch)] = output_size(cfg.task, len(prepared.classes))
        model = build_model(cfg.model.arch, params, **data_arguments)
        datasets = {
            name: self.adapter.dataset(inputs[index[name]], target[index[name]], train=name == "train")
            for name in ("train", "validation")
        }
        trainer = Trainer(
            model,
            make_loss(cfg.task, weights),
            trainer_settings(cfg),
            metric_fn=validation_metrics(cfg.task),
            checkpoint_dir=out / "checkpoints",
        )
        say(f"training {cfg.model.arch} on {len(index['train'])} samples ({trainer.device})")
        result = trainer.fit(datasets["train"], datasets["validation"], resume=resume)
        model = trainer.module.eval()
        if not context.is_main:
            self.adapter.cleanup()
            return RunResult(out, {"name": cfg.name, "task": cfg.task}, {})

        say("evaluating on the test split")

        def scores_of(rows: np.ndarray) -> np.ndarray:
            return scores_from_outputs(cfg.task, self.adapter.outputs(model, inputs[rows]), target_scale)

        val_scores, test_scores = scores_of(index["validation"]), scores_of(index["test"])
        evaluation = self._evaluate(prepared, inputs, index, val_scores, test_scores)
        say("explaining test predictions")
        explained = self.adapter.explain(model, prepared, inputs, index["test"], test_scores, out)

        record: dict[str, Any] = {
            "kind": "train",
            "name": cfg.name,
            "task": cfg.task,
            "created": now_utc(),
            "meddl_version": __version__,
            "config_yaml": cfg.to_yaml(),
            "data": self._data_summary(prepared, splits),
            "model": {
                "arch": cfg.model.arch,
                "params": params,
                "n_parameters": int(sum(p.numel() for p in model.parameters())),
            },
            "training": result.as_dict(cfg.monitor),
            "evaluation": evaluation,
            "sections": [*prepared.sections, *explained.get("sections", [])],
            "explanations": explained.get("explanations", {}),
            "examples": explained.get("examples", []),
            "warnings": list(explained.get("warnings", [])),
        }
        metrics = self._write_bundle(
            out, record, prepared, splits, model, params, data_arguments, target_scale, explained
        )
        self.adapter.cleanup()
        say(f"wrote {out}")
        return RunResult(out, record, metrics)

    # -- evaluation ---------------------------------------------------------------------------------
    def _evaluate(
        self,
        prepared: Prepared,
        inputs: np.ndarray,
        index: dict[str, np.ndarray],
        val_scores: np.ndarray,
        test_scores: np.ndarray,
    ) -> dict[str, Any]:
        cfg = self.config
        regression = cfg.task == "regression"
        names = (
            [n for n in cfg.baselines if (n == "linear_regression") == regression] if cfg.task != "multilabel" else []
        )
        flat = self.adapter.baseline_features(prepared, inputs) if names else None
        baseline_data = None
        if flat is not None:
            baseline_data = (
                flat[index["train"]],
                prepared.target[index["train"]],
                flat[index["validation"]],
                flat[index["test"]],
            )
        return evaluate_on_test(
            cfg,
            y_val=prepared.target[index["validation"]],
            y_test=prepared.target[index["test"]],
            model_val=val_scores,
            model_test=test_scores,
            groups=prepared.patient_ids[index["test"]] if prepared.patient_ids is not None else None,
            class_names=prepared.classes or None,
            baselines=names,
            baseline_data=baseline_data,
        )

    # -- records ----------------------------------------------------------------------------------
    def _data_summary(self, prepared: Prepared, splits: np.ndarray) -> dict[str, Any]:
        cfg = self.config
        summary: dict[str, Any] = {
            "path": str(cfg.data.path),
            "n_rows_read": prepared.n_read,
            "n_rows_used": len(prepared.target),
            "n_patients": len(np.unique(prepared.patient_ids)) if prepared.patient_ids is not None else None,
            "target": cfg.data.cohort.outcome if isinstance(cfg.data, EHRDataConfig) else cfg.data.target,
            "classes": prepared.classes,
            "positive_label": prepared.classes[1] if cfg.task == "binary" else None,
            "dropped": dict(prepared.dropped),
            "splits": {name: int((splits == name).sum()) for name in SPLITS},
            "notes": [*([cfg.data.description] if cfg.data.description else []), *prepared.notes],
        }
        if cfg.task in {"binary", "multiclass"}:
            summary["class_balance"] = {
                name: {
                    label: int(((splits == name) & (prepared.target == k)).sum())
                    for k, label in enumerate(prepared.classes)
                }
                for name in SPLITS
            }
        return summary

    def _write_bundle(
        self,
        out: Path,
        record: dict[str, Any],
        prepared: Prepared,
        splits: np.ndarray,
        model: torch.nn.Module,
        params: dict[str, Any],
        data_arguments: dict[str, int],
        target_scale: tuple[float, float] | None,
        explained: dict[str, Any],
    ) -> dict[str, Any]:
        cfg = self.config
        (out / "config.yaml").write_text(cfg.to_yaml())
        save_weights(model.cpu(), out / "model.safetensors")
        (out / "preprocess.json").write_text(json.dumps(clean_json(self.adapter.state()), indent=1) + "\n")
        evaluation = record["evaluation"]
        info = {
            "format": BUNDLE_FORMAT,
            "kind": cfg.data.kind,
            "name": cfg.name,
            "task": cfg.task,
            "arch": cfg.model.arch,
            "params": params,
            "data_arguments": data_arguments,
            "classes": prepared.classes,
            "target": record["data"]["target"],
            "target_scale": list(target_scale) if target_scale else None,
            "threshold": evaluation["threshold"],
            "threshold_rule": evaluation["threshold_rule"],
            "meddl_version": __version__,
            "created": record["created"],
        }
        (out / "model.json").write_text(json.dumps(clean_json(info), indent=2) + "\n")
        pd.DataFrame(
            {
                "id": prepared.sample_ids,
                "patient_id": prepared.patient_ids if prepared.patient_ids is not None else None,
                "split": splits,
            }
        ).to_csv(out / "splits.csv", index=False)
        metrics = write_run_metrics(out, record, explanation_quality=explained.get("metrics"))
        files = ["config.yaml", "model.json", "model.safetensors", "preprocess.json", "metrics.json", "splits.csv"]
        finish_bundle(out, record, files)
        return metrics


def evaluate_external_arrays(
    bundle_path: str | Path, data: str | Path, out: str | Path, *, n_bootstrap: int | None = None
) -> RunResult:
    """Evaluate a bundle of an array kind on another site's labelled data (same format as in training)."""
    from meddl.array_bundle import load_array_bundle

    bundle = load_array_bundle(bundle_path)
    cfg = bundle.config
    # A reference genome stays the one the model was trained with; a labels table is looked for beside the new data.
    update: dict[str, Any] = {"path": Path(data).resolve()}
    reference = getattr(cfg.data, "reference", None)
    if reference is not None and not reference.is_absolute():
        update["reference"] = (cfg.data.path.parent / reference).resolve()
    data_config = cfg.data.model_copy(update=update)
    adapter = type(bundle.adapter).from_state(cfg.model_copy(update={"data": data_config}), bundle.state)
    prepared = adapter.load(lambda message: None)
    adapter.prepare_external(prepared)
    inputs = adapter.transform(prepared.inputs)
    scores = scores_from_outputs(bundle.task, adapter.outputs(bundle.model, inputs), bundle.target_scale)
    return external_evaluation(
        bundle,
        data,
        out,
        target=prepared.target,
        scores=scores,
        groups=prepared.patient_ids,
        n_read=prepared.n_read,
        dropped=prepared.dropped,
        n_bootstrap=n_bootstrap,
        sections=prepared.sections,
    )

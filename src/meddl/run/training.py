"""One training run for every data kind and task.

read (the modality) → patient-level split → preprocessing fitted on the training split (the modality) → the one
trainer → test evaluation (threshold chosen on validation, bootstrap CIs, classical baselines, paired comparisons,
subgroups, k-fold estimate) → explanations (the modality) → run record → report, model card, bundle.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from meddl._json import clean_json
from meddl._version import __version__
from meddl.bundle import BUNDLE_FORMAT, save_weights
from meddl.config import ExperimentConfig
from meddl.data import kfold_assignments, split_assignments
from meddl.errors import MedDLError
from meddl.evaluate import evaluate_predictions, main_metric
from meddl.evaluate.conformal import ConformalPredictor
from meddl.evaluate.recalibration import Recalibrator
from meddl.evaluate.selective import ReferralRule
from meddl.io import write_table
from meddl.modalities import Modality, Prepared, get_modality
from meddl.models import Ensemble, build_model
from meddl.models.pretrained import apply_pretrained, describe_pretrained
from meddl.models.registry import output_argument
from meddl.preprocess import class_weights
from meddl.run.common import (
    Fitted,
    RunResult,
    evaluate_on_test,
    finish_bundle,
    prepare_run_folder,
    recalibrate,
    threshold_on_validation,
    trainer_settings,
    training_record_header,
    validation_metrics,
    write_run_metrics,
)
from meddl.run.comparison import compare_models, fit_comparison_models
from meddl.run.conformal import calibrate_conformal, check_calibration
from meddl.run.conformal import carve as carve_calibration
from meddl.run.folders import RunFolder
from meddl.run.privacy import local_ids_path, pseudonymise_splits
from meddl.run.robustness import robustness_report
from meddl.run.selective import selective_report
from meddl.run.survival import (
    derive_horizons,
    evaluate_survival,
    survival_data_summary,
    survival_subgroup_metrics,
    survival_validation_metrics,
)
from meddl.train import Trainer, batch_size_for, make_loss, output_size, scores_from_outputs, seed_everything
from meddl.train.runtime import runtime_record
from meddl.train.survival_outputs import SurvivalOutputs

__all__ = ["TrainingRun"]

SPLITS = ("train", "validation", "test")


class _EnsembleResult:
    """The training record of a deep ensemble: the first member's history, and each member's stopping point."""

    def __init__(self, results: list[Any]) -> None:
        self.results = results

    def as_dict(self, monitor: str) -> dict[str, Any]:
        record = self.results[0].as_dict(monitor)
        record["members"] = [
            {k: v for k, v in result.as_dict(monitor).items() if k != "history"} for result in self.results
        ]
        record["seconds"] = round(sum(m["seconds"] for m in record["members"]), 3)
        return record


class TrainingRun:
    """Runs one experiment of any data kind (``meddl.Experiment.run`` and ``meddl train`` call this)."""

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config
        self.modality: Modality = get_modality(config.data.kind, config.task)(config)
        self.local_ids: Any = None  # raw ids → keys of the last run, written beside its folder
        self.recalibrator = Recalibrator()  # evaluate.recalibrate's map, fitted on validation, kept in the bundle
        self.conformal: ConformalPredictor | None = None  # evaluate.conformal, calibrated after training
        self.referral: ReferralRule | None = None  # evaluate.referral, chosen on validation

    @property
    def _split_names(self) -> tuple[str, ...]:
        return (*SPLITS, "calibration") if self.config.evaluate.conformal is not None else SPLITS

    # -- splits ---------------------------------------------------------------------------------
    def _splits(self, prepared: Prepared) -> np.ndarray:
        """Train / validation / test by patient (or as the data gives them); with ``evaluate.conformal``, part of
        validation becomes the ``calibration`` split (:mod:`meddl.run.conformal`)."""
        cfg = self.config
        split = cfg.data.split
        if cfg.task == "survival":  # stratified by event or censoring
            strata, task = (prepared.target[:, 1] > 0).astype(np.int64), "binary"
        elif cfg.task == "multilabel":  # by the first label (a missing one counts as absent)
            strata, task = np.nan_to_num(prepared.target[:, 0]).astype(np.int64), "binary"
        else:
            strata, task = prepared.target, cfg.task
        splits = prepared.given_splits
        if splits is None:
            splits = split_assignments(
                strata,
                task=task,
                fractions=(split.train, split.validation, split.test),
                patient_ids=prepared.patient_ids,
                dates=prepared.dates,
                seed=cfg.train.seed,
                source=cfg.data.path.name,
            )
        return carve_calibration(cfg, splits, strata, task, prepared)

    # -- the run ---------------------------------------------------------------------------------
    def run(
        self, out: str | Path | None = None, *, resume: bool = False, overwrite: bool = False, log: Any = None
    ) -> RunResult:
        """Train, evaluate, explain and write the bundle folder.

        The run is written into ``<out>.partial`` and moved to ``out`` only when complete (see
        :mod:`meddl.run.folders`): a failure leaves ``out`` as it was.

        Args:
            out: the run folder (default ``runs/<name>``); an earlier MedDL run there is replaced, other files kept.
            resume: continue training from the checkpoint of an interrupted run (``<out>.partial/checkpoints``)
                or, failing that, of the finished run in ``out``.
            overwrite: allow ``out`` to be a non-empty folder MedDL did not make (its files are kept).
            log: optional ``callable(str)`` for progress messages.

        Returns:
            The run folder, metrics and run record.
        """
        say = log or (lambda message: None)
        cfg = self.config
        final = Path(out) if out else Path("runs") / cfg.name
        context, folder = prepare_run_folder(final, resume=resume, overwrite=overwrite, device=cfg.train.device)
        try:
            result = self._run(folder, context, say)
        except BaseException:
            if context.is_main:
                self.modality.cleanup()
                if (folder.staging / "checkpoints" / "checkpoint.pt").exists():
                    folder.release()
                    say(f"the run stopped; {folder.staging} keeps its checkpoints: rerun with --resume to continue")
                else:
                    folder.discard()
            raise
        if not context.is_main:
            return result
        final = folder.commit()
        ids = local_ids_path(final)
        if self.local_ids is not None:
            write_table(self.local_ids, ids)
            ids.chmod(0o600)  # raw identifiers: readable by their owner only
            say(f"wrote {final}; raw patient and sample ids stay in {ids} (not in the bundle)")
        else:
            ids.unlink(missing_ok=True)  # an earlier run's ids, no longer true for this folder
            say(f"wrote {final}")
        return RunResult(final, result.record, result.metrics)

    def _run(self, folder: RunFolder, context: Any, say: Any) -> RunResult:
        cfg = self.config
        if cfg.task == "segmentation":  # the same run with a mask for a target (meddl.run.segmentation)
            from meddl.run.segmentation import run_segmentation

            return run_segmentation(self, folder, context, say)
        out, resume = folder.staging, folder.resumed

        say(f"reading {cfg.data.path}")
        # scratch space per process: under torchrun every rank extracts its own copy (no two writers on one file)
        self.modality.workdir = out / ("work" if context.world_size == 1 else f"work-rank{context.rank}")
        prepared = self.modality.load(say)
        if len(prepared.target) == 0:
            raise MedDLError(f"{cfg.data.path}: no labelled sample left to train on")
        splits = self._splits(prepared)
        index = {name: np.flatnonzero(splits == name) for name in self._split_names}
        for name in SPLITS:  # an empty calibration part is check_calibration's to name
            if len(index[name]) == 0:
                raise MedDLError(f"{cfg.data.path}: the {name} split is empty ({len(splits)} samples in all)")
        check_calibration(cfg, self.modality, prepared, index)
        say(", ".join(f"{k} {len(v)}" for k, v in index.items()) + " samples")
        derived = self._derive_defaults(prepared, index)
        for setting, entry in derived.items():
            say(f"{setting}: {entry['value']} (from the data: {entry['why']})")

        # The k-fold estimate refits the modality on each fold, so it runs before the model the bundle keeps: the
        # preprocessing state saved with it must be the one fitted on this run's training split. Under torchrun
        # every process takes part, as in the main fit.
        folds = getattr(cfg.data.split, "folds", None)
        cross_validation = self._cross_validate(prepared, say) if folds else None
        fitted = self._fit(prepared, index, out / "checkpoints", resume=resume, say=say)
        model = fitted.model
        # the modality's comparison models (a fused model's inputs alone): trained on every process, like the main one
        compared_models = fit_comparison_models(cfg, self.modality, fitted, prepared, index, say)
        self.survival_state = fitted.target_scale
        if not context.is_main:
            self.modality.cleanup()
            return RunResult(out, {"name": cfg.name, "task": cfg.task}, {})

        say("evaluating on the test split")
        val_scores = self._scores(fitted, prepared, index["validation"])
        test_scores = self._scores(fitted, prepared, index["test"])
        self.recalibrator, val_scores, test_scores, recalibrated = recalibrate(
            cfg, prepared.target[index["validation"]], prepared.target[index["test"]], val_scores, test_scores
        )
        conformal_record, conformal_section = None, None
        if "calibration" in index:
            calibration_scores = self.recalibrator.apply(self._scores(fitted, prepared, index["calibration"]))
            self.conformal, conformal_record, conformal_section = calibrate_conformal(
                cfg, self.modality, prepared, index, calibration_scores, test_scores, fitted.target_scale
            )
        evaluation = self._evaluate(prepared, index, val_scores, test_scores)
        subgroups = self._subgroups(prepared, index["test"], test_scores, evaluation["threshold"])
        test_groups = prepared.patient_ids[index["test"]] if prepared.patient_ids is not None else None
        self.referral, selective, selective_section = selective_report(
            cfg,
            y_val=prepared.target[index["validation"]],
            val_scores=val_scores,
            y_test=prepared.target[index["test"]],
            test_scores=test_scores,
            threshold=evaluation["threshold"],
            groups=test_groups,
        )
        if cfg.evaluate.robustness:
            say("scoring the test split under corrupted inputs")
        robustness, robustness_section = robustness_report(
            cfg,
            self.modality,
            model,
            prepared,
            index["test"],
            lambda outputs: self.recalibrator.apply(scores_from_outputs(cfg.task, outputs, fitted.target_scale)),
            evaluation["threshold"],
        )
        compared, compared_section = compare_models(
            cfg, self.modality, fitted, prepared, index, compared_models, test_scores, evaluation["threshold"]
        )
        say("explaining test predictions")
        self.modality.target_scale_ = fitted.target_scale
        explained = self.modality.explain(
            model, prepared, self.modality.features(prepared), index["test"], test_scores, out
        )

        record: dict[str, Any] = {
            **training_record_header(cfg),
            "data": self._data_summary(prepared, splits, derived),
            "model": fitted.model_record(cfg.model.arch),
            "training": {**fitted.result.as_dict(cfg.monitor), "runtime": runtime_record()},
            "evaluation": evaluation,
            "sections": [
                *prepared.sections,
                *([recalibrated] if recalibrated else []),
                *([conformal_section] if conformal_section else []),
                *([selective_section] if selective_section else []),
                *([compared_section] if compared_section else []),
                *([robustness_section] if robustness_section else []),
                *explained.get("sections", []),
            ],
            "comparison_models": compared,
            "conformal": conformal_record,
            "selective": selective,
            "robustness": robustness,
            "explanations": explained.get("explanations", {}),
            "examples": explained.get("examples", []),
            "warnings": [
                *self.modality.warnings(prepared, index["test"]),
                *evaluation.pop("warnings", []),
                *explained.get("warnings", []),
            ],
            "localization": explained.get("localization"),
            "explanation_quality": explained.get("metrics"),
            "cross_validation": cross_validation,
            "subgroups": subgroups,
            "derived_defaults": derived or None,
            "usage": dict(self.modality.usage),
        }
        record = {k: v for k, v in record.items() if v is not None}
        metrics = self._write_bundle(out, record, prepared, splits, fitted, folder.final)
        self.modality.cleanup()
        return RunResult(out, record, metrics)

    def _derive_defaults(self, prepared: Prepared, index: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
        """Settings the experiment file left out, taken from the data and written into the config (so the bundle's
        config.yaml reproduces the run) and into the run record: ``{setting: {"value", "why"}}``."""
        derived = dict(self.modality.derived_defaults(prepared))
        evaluate = self.config.evaluate
        if self.config.task == "survival" and evaluate.horizons is None:
            train_target = prepared.target[index["train"]]
            horizons, why = derive_horizons(train_target[:, 0], train_target[:, 1])
            evaluate.horizons = horizons
            derived["evaluate.horizons"] = {"value": horizons, "why": why}
        train = self.config.train
        if "batch_size" not in train.model_fields_set:
            size, why = batch_size_for(len(index["train"]), self.config.task)
            train.batch_size = size
            derived["train.batch_size"] = {"value": size, "why": why}
        return derived

    # -- training -------------------------------------------------------------------------------------
    def _fit(
        self,
        prepared: Prepared,
        index: dict[str, np.ndarray],
        checkpoint_dir: Path | None,
        *,
        resume: bool = False,
        say: Any = None,
    ) -> Fitted:
        """Fit the modality's preprocessing on ``index['train']`` and train a model (validation: early stopping)."""
        cfg = self.config
        self.modality.fit(prepared, index["train"])
        self.modality.forget_features()
        self.modality.describe_training(prepared, index["train"])
        target = prepared.target
        target_scale: Any = None
        metric_fn = validation_metrics(cfg.task)
        output_width = output_size(cfg.task, len(prepared.classes))
        if cfg.task == "survival":
            train_target = target[index["train"]]
            target_scale = SurvivalOutputs.plan(
                cfg.model.head,
                train_target[:, 0],
                train_target[:, 1].astype(np.int64),
                list(cfg.evaluate.horizons or []),
                prepared.classes,
                cfg.model.time_bins,
            )
            metric_fn, output_width = survival_validation_metrics(target_scale), target_scale.output_size()
        elif cfg.task == "regression":
            train_target = target[index["train"]]
            mean, std = float(np.mean(train_target)), float(np.std(train_target))
            target_scale = (mean, std if std > 0 else 1.0)
            target = (target - target_scale[0]) / target_scale[1]
            metric_fn = validation_metrics(cfg.task, scale=target_scale)  # logged in the target's units
        weights = None
        if getattr(cfg.preprocess, "imbalance", "none") == "class_weight" and cfg.task in {"binary", "multiclass"}:
            weights = class_weights(prepared.target[index["train"]], len(prepared.classes))
        seed_everything(cfg.train.seed)
        data_arguments = self.modality.model_arguments(self.modality.features(prepared))
        params = dict(cfg.model.params)
        data_arguments[output_argument(cfg.model.arch)] = output_width
        datasets = {
            name: self.modality.training_dataset(prepared, index[name], target[index[name]], train=name == "train")
            for name in ("train", "validation")
        }
        size = cfg.train.ensemble
        members, results, pretrained = [], [], None
        for k in range(size):  # a deep ensemble's members one after another, each from its own seed
            if k:
                seed_everything(cfg.train.seed + k)
            network = build_model(cfg.model.arch, params, **data_arguments)
            pretrained = apply_pretrained(network, cfg.model.pretrained)  # every member starts from the same weights
            if say and pretrained is not None and k == 0:
                say(describe_pretrained(pretrained))
            trainer = Trainer(
                network,
                target_scale.loss() if cfg.task == "survival" else make_loss(cfg.task, weights),
                replace(trainer_settings(cfg), seed=cfg.train.seed + k),
                metric_fn=metric_fn,
                checkpoint_dir=checkpoint_dir / f"member-{k + 1}" if checkpoint_dir and size > 1 else checkpoint_dir,
            )
            if say:
                which = f" (ensemble member {k + 1}/{size}, seed {cfg.train.seed + k})" if size > 1 else ""
                say(f"training {cfg.model.arch} on {len(index['train'])} samples ({trainer.device}){which}")
            results.append(trainer.fit(datasets["train"], datasets["validation"], resume=resume))
            members.append(trainer.module.eval())
        model = Ensemble(members, cfg.task).eval() if size > 1 else members[0]
        result = _EnsembleResult(results) if size > 1 else results[0]
        if cfg.task == "survival":  # the Cox head's Breslow baseline hazard, from the training split
            outputs = self.modality.prepared_outputs(model, prepared, index["train"])
            train_target = target[index["train"]]
            target_scale.fit_baseline(outputs, train_target[:, 0], train_target[:, 1])
        return Fitted(model, result, params, data_arguments, target_scale, pretrained)

    def _scores(self, fitted: Fitted, prepared: Prepared, rows: np.ndarray) -> np.ndarray:
        outputs = self.modality.prepared_outputs(fitted.model, prepared, rows)
        return scores_from_outputs(self.config.task, outputs, fitted.target_scale)

    # -- evaluation ---------------------------------------------------------------------------------
    def _evaluate(
        self,
        prepared: Prepared,
        index: dict[str, np.ndarray],
        val_scores: np.ndarray,
        test_scores: np.ndarray,
    ) -> dict[str, Any]:
        cfg = self.config
        wrong_kind = "logistic_regression" if cfg.task == "regression" else "linear_regression"
        names = [n for n in cfg.baselines if n != wrong_kind] if cfg.task != "multilabel" else []
        baseline = self.modality.baseline_data(prepared, index) if names else None
        if cfg.task == "survival":
            return evaluate_survival(
                cfg,
                self.survival_state,
                y_train=prepared.target[index["train"]],
                y_test=prepared.target[index["test"]],
                test_scores=test_scores,
                groups=prepared.patient_ids[index["test"]] if prepared.patient_ids is not None else None,
                baselines=names if baseline is not None else [],
                baseline_data=baseline[:4] if baseline is not None else None,
            )
        return evaluate_on_test(
            cfg,
            y_val=prepared.target[index["validation"]],
            y_test=prepared.target[index["test"]],
            model_val=val_scores,
            model_test=test_scores,
            groups=prepared.patient_ids[index["test"]] if prepared.patient_ids is not None else None,
            class_names=prepared.classes or None,
            baselines=names if baseline is not None else [],
            baseline_data=baseline[:4] if baseline is not None else None,
            sample_weight=baseline[4] if baseline is not None else None,
        )

    def _subgroups(
        self, prepared: Prepared, test: np.ndarray, scores: np.ndarray, threshold: float | None
    ) -> list[dict[str, Any]] | None:
        """Test metrics with CIs per level of each ``evaluate.subgroups`` column (numeric: quartiles).

        The threshold is the one chosen for everyone: the question is how the deployed rule behaves per group.
        Groups smaller than ``evaluate.min_subgroup_size`` are listed with their size but not scored.
        """
        cfg = self.config
        if not cfg.evaluate.subgroups:
            return None
        y = prepared.target[test]
        patients = prepared.patient_ids[test] if prepared.patient_ids is not None else None
        out: list[dict[str, Any]] = []
        for column in cfg.evaluate.subgroups:
            labels = self.modality.subgroup_labels(prepared, column, test)
            for level in sorted(labels.unique()):
                member = (labels == level).to_numpy()
                entry: dict[str, Any] = {"column": column, "group": str(level), "n": int(member.sum()), "metrics": {}}
                if member.sum() >= cfg.evaluate.min_subgroup_size and cfg.task == "survival":
                    group_ids = patients[member] if patients is not None else None
                    entry["metrics"] = survival_subgroup_metrics(cfg, y[member], scores[member], group_ids)
                elif member.sum() >= cfg.evaluate.min_subgroup_size:
                    entry["metrics"] = evaluate_predictions(
                        cfg.task,
                        y[member],
                        scores[member],
                        threshold=threshold,
                        groups=patients[member] if patients is not None else None,
                        n_bootstrap=cfg.evaluate.bootstrap,
                        level=cfg.evaluate.confidence_level,
                        seed=cfg.train.seed,
                        class_names=prepared.classes or None,
                    )["metrics"]
                out.append(entry)
        return out

    def _cross_validate(self, prepared: Prepared, say: Any) -> dict[str, Any]:
        """k-fold estimate: fold k is the test set, fold k+1 the validation set, the rest trains."""
        cfg = self.config
        folds = int(cfg.data.split.folds or 0)
        assignment = kfold_assignments(
            prepared.target, task=cfg.task, folds=folds, patient_ids=prepared.patient_ids, seed=cfg.train.seed
        )
        metric = main_metric(cfg.task)
        per_fold = []
        for k in range(folds):
            say(f"cross-validation fold {k + 1}/{folds}")
            test, val = assignment == k, assignment == (k + 1) % folds
            index = {"train": np.flatnonzero(~(test | val)), "validation": np.flatnonzero(val)}
            fitted = self._fit(prepared, index, None)
            threshold = threshold_on_validation(
                cfg, prepared.target[val], self._scores(fitted, prepared, index["validation"])
            )
            result = evaluate_predictions(
                cfg.task,
                prepared.target[test],
                self._scores(fitted, prepared, np.flatnonzero(test)),
                threshold=threshold,
                n_bootstrap=0,
                class_names=prepared.classes or None,
            )
            per_fold.append(result["metrics"][metric]["value"])
        values = np.array([v for v in per_fold if v is not None], dtype=float)
        return {
            "folds": folds,
            "metric": metric,
            "per_fold": per_fold,
            "mean": float(values.mean()) if len(values) else None,
            "std": float(values.std(ddof=1)) if len(values) > 1 else None,
        }

    # -- records ----------------------------------------------------------------------------------
    def _data_summary(
        self, prepared: Prepared, splits: np.ndarray, derived: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        cfg = self.config
        cohort = getattr(cfg.data, "cohort", None)
        summary: dict[str, Any] = {
            "path": str(cfg.data.path),
            "n_rows_read": prepared.n_read,
            "n_rows_used": len(prepared.target),
            "n_patients": len(np.unique(prepared.patient_ids)) if prepared.patient_ids is not None else None,
            "target": cohort.outcome if cohort is not None else getattr(cfg.data, "target", None),
            "classes": prepared.classes,
            "positive_label": prepared.classes[1] if cfg.task == "binary" else None,
            "dropped": dict(prepared.dropped),
            "repairs": {reason: int(n) for reason, n in prepared.repairs.items() if n},
            "splits": {name: int((splits == name).sum()) for name in self._split_names},
            "notes": [
                *([cfg.data.description] if cfg.data.description else []),
                *prepared.notes,
                *[f"{k}: {v['value']} taken from the data ({v['why']})" for k, v in (derived or {}).items()],
            ],
            **self.modality.data_summary(prepared, splits),
        }
        if cfg.task == "survival":
            summary.update(survival_data_summary(prepared.target, splits, prepared.classes))
            outcome = [getattr(cfg.data, name, None) for name in ("time", "event")]
            summary["target"] = " / ".join(str(c) for c in outcome if c) or summary["target"]
        if cfg.task in {"binary", "multiclass"}:
            summary["class_balance"] = {
                name: {
                    label: int(((splits == name) & (prepared.target == k)).sum())
                    for k, label in enumerate(prepared.classes)
                }
                for name in self._split_names
            }
        return summary

    def _write_bundle(
        self,
        out: Path,
        record: dict[str, Any],
        prepared: Prepared,
        splits: np.ndarray,
        fitted: Fitted,
        final: Path | None = None,
    ) -> dict[str, Any]:
        cfg = self.config
        (out / "config.yaml").write_text(cfg.to_yaml())
        save_weights(fitted.model.cpu(), out / "model.safetensors")
        state_files = self.modality.save_state(out)
        evaluation = record["evaluation"]
        info = {
            "format": BUNDLE_FORMAT,
            "kind": cfg.data.kind,
            "name": cfg.name,
            "task": cfg.task,
            "arch": cfg.model.arch,
            "params": fitted.params,
            "ensemble": cfg.train.ensemble if cfg.train.ensemble > 1 else None,
            "data_arguments": fitted.data_arguments,
            "classes": prepared.classes,
            "target": record["data"]["target"],
            "target_scale": list(fitted.target_scale) if cfg.task == "regression" else None,
            "survival": fitted.target_scale.to_json() if cfg.task == "survival" else None,
            "threshold": evaluation["threshold"],
            "threshold_rule": evaluation["threshold_rule"],
            "recalibration": self.recalibrator.to_json() if self.recalibrator.method != "none" else None,
            "conformal": self.conformal.to_json() if self.conformal is not None else None,
            "referral": self.referral.to_json() if self.referral is not None else None,
            "input_spec": self.modality.input_spec(prepared),
            **self.modality.bundle_info(prepared),
            "meddl_version": __version__,
            "created": record["created"],
        }
        (out / "model.json").write_text(json.dumps(clean_json(info), indent=2) + "\n")
        shared, self.local_ids = pseudonymise_splits(self.modality.splits_table(prepared, splits))
        shared.to_csv(out / "splits.csv", index=False)  # keys, never raw identifiers: a bundle is handed on
        metrics = write_run_metrics(out, record)
        files = ["config.yaml", "model.json", "model.safetensors", *state_files, "metrics.json", "splits.csv"]
        finish_bundle(out, record, files, final)
        return metrics

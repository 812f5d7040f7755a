"""The clinical-table pipeline: read → split → preprocess → train → evaluate → explain → report → bundle.

:class:`TabularPipeline` runs one experiment whose ``data.kind`` is ``tabular``; :func:`evaluate_external_tabular`
re-evaluates a tabular bundle on another site's data, with the shift of each variable against training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from torch.utils.data import TensorDataset

from meddl import __version__
from meddl.bundle import BUNDLE_FORMAT, Bundle, load_bundle, save_weights
from meddl.config import DataConfig, ExperimentConfig, PreprocessConfig
from meddl.data import PreparedTable, kfold_assignments, prepare_table, split_assignments, splits_frame
from meddl.errors import MedDLError
from meddl.evaluate import (
    evaluate_predictions,
    higher_is_better,
    main_metric,
)
from meddl.evaluate.metrics import binary_metrics, multiclass_metrics, regression_metrics
from meddl.explain import group_attributions, integrated_gradients, permutation_importance_table
from meddl.io import read_table
from meddl.models import build_model
from meddl.pipelines.common import (
    RunResult,
    clean_json,
    evaluate_on_test,
    finish_bundle,
    now_utc,
    prepare_run_folder,
    threshold_on_validation,
    trainer_settings,
    validation_metrics,
)
from meddl.preprocess import TabularPreprocessor, class_weights, resample
from meddl.report import write_report
from meddl.train import (
    Trainer,
    make_loss,
    output_size,
    scores_from_outputs,
    seed_everything,
    target_tensor,
)

__all__ = ["TabularPipeline", "evaluate_external_tabular"]


@dataclass
class _Fitted:
    """A model fitted on one train/validation split, with everything needed to score more data."""

    preprocessor: TabularPreprocessor
    model: torch.nn.Module
    trainer: Trainer
    result: Any
    target_scale: tuple[float, float] | None
    sample_weight_classes: np.ndarray | None
    X_train: np.ndarray
    y_train: np.ndarray


class TabularPipeline:
    """Runs one tabular experiment (``meddl.Experiment`` dispatches here for ``data.kind: tabular``)."""

    def __init__(self, config: ExperimentConfig) -> None:
        assert isinstance(config.data, DataConfig) and isinstance(config.preprocess, PreprocessConfig), (
            "TabularPipeline needs data.kind: tabular"
        )
        self.config = config
        self.data: DataConfig = config.data
        self.prep: PreprocessConfig = config.preprocess

    # -- the run --------------------------------------------------------------------------------
    def run(self, out: str | Path | None = None, *, resume: bool = False, log: Any = None) -> RunResult:
        """Train, evaluate, explain and write the bundle folder.

        Args:
            out: the run folder (default ``runs/<name>``); its previous contents are replaced unless resuming.
            resume: continue training from ``out/checkpoints/checkpoint.pt``.
            log: optional ``callable(str)`` for progress messages.

        Returns:
            The run folder, metrics and run record.
        """
        say = log or (lambda message: None)
        cfg = self.config
        out = Path(out) if out else Path("runs") / cfg.name
        context = prepare_run_folder(out, resume=resume, device=cfg.train.device)
        source = self.data.path.name

        say(f"reading {self.data.path}")
        raw = read_table(self.data.path, na_values=self.data.na_values)
        for column in cfg.evaluate.subgroups:  # checked before training, not after
            if column not in raw.columns:
                raise MedDLError(f"{source}: evaluate.subgroups names {column!r}, which is not a column of the file")
        table = self._prepare(raw, source)
        split = self.data.split
        splits = split_assignments(
            table.target,
            task=cfg.task,
            fractions=(split.train, split.validation, split.test),
            patient_ids=table.patient_ids,
            dates=table.dates if split.method == "temporal" else None,
            seed=cfg.train.seed,
            source=source,
        )
        masks = {name: splits == name for name in ("train", "validation", "test")}
        say(
            "split: "
            + ", ".join(f"{name} {int(mask.sum())}" for name, mask in masks.items())
            + (f" rows ({table.n_patients} patients)" if table.patient_ids is not None else " rows")
        )
        fitted = self._fit(table, masks["train"], masks["validation"], out / "checkpoints", resume=resume, say=say)
        if not context.is_main:
            return RunResult(out, {"name": cfg.name, "task": cfg.task}, {})

        say("evaluating on the test split")
        evaluation = self._evaluate(table, masks, fitted)
        subgroups = self._subgroups(raw, table, masks, fitted, evaluation["threshold"])
        explanations = self._explain(table, masks["test"], fitted)
        cross_validation = self._cross_validate(table, say) if split.folds else None

        record = {
            "kind": "train",
            "name": cfg.name,
            "task": cfg.task,
            "created": now_utc(),
            "meddl_version": __version__,
            "config_yaml": cfg.to_yaml(),
            "data": self._data_summary(raw, table, splits),
            "model": {
                "arch": cfg.model.arch,
                "params": cfg.model.params,
                "n_parameters": int(sum(p.numel() for p in fitted.model.parameters())),
            },
            "training": fitted.result.as_dict(cfg.monitor),
            "evaluation": evaluation,
            "explanations": explanations,
            "warnings": self._warnings(table, masks, evaluation),
        }
        if cross_validation:
            record["cross_validation"] = cross_validation
        if subgroups is not None:
            record["subgroups"] = subgroups
        metrics = self._write_bundle(out, record, table, splits, fitted, evaluation)
        say(f"wrote {out}")
        return RunResult(out, record, metrics)

    # -- steps --------------------------------------------------------------------------------
    def _prepare(self, raw: pd.DataFrame, source: str) -> PreparedTable:
        d = self.data
        return prepare_table(
            raw,
            task=self.config.task,
            target=d.target,
            source=source,
            positive_label=d.positive_label,
            classes=d.classes,
            patient_id=d.patient_id,
            date_column=d.split.date_column,
            features=d.features,
            exclude=d.exclude,
            column_types=d.column_types,
            drop_incomplete=self.prep.missing == "drop",
        )

    def _fit(
        self,
        table: PreparedTable,
        train: np.ndarray,
        validation: np.ndarray,
        checkpoint_dir: Path | None,
        *,
        resume: bool = False,
        say: Any = None,
    ) -> _Fitted:
        cfg = self.config
        p = self.prep
        types = table.column_types
        preprocessor = TabularPreprocessor(
            numeric=[c for c, t in types.items() if t == "numeric"],
            binary=[c for c, t in types.items() if t == "binary"],
            categorical=[c for c, t in types.items() if t == "categorical"],
            missing=p.missing,
            missing_indicators=p.missing_indicators,
            scale=p.scale,
            knn_neighbors=p.knn_neighbors,
            random_state=cfg.train.seed,
        ).fit(table.features.loc[train])  # fitted on the training split only
        X_train = preprocessor.transform(table.features.loc[train])
        X_val = preprocessor.transform(table.features.loc[validation])
        y_train, y_val = table.target[train], table.target[validation]
        n_classes = len(table.classes)
        weights = None
        if cfg.task != "regression":
            if p.imbalance == "class_weight":
                weights = class_weights(y_train, n_classes)
            X_train, y_train = resample(X_train, y_train, p.imbalance, seed=cfg.train.seed)
        scale = None
        if cfg.task == "regression":
            std = float(np.std(y_train)) or 1.0
            scale = (float(np.mean(y_train)), std)

        seed_everything(cfg.train.seed)
        model = build_model(
            cfg.model.arch,
            cfg.model.params,
            in_features=X_train.shape[1],
            out_features=output_size(cfg.task, n_classes),
        )
        settings = trainer_settings(cfg)
        trainer = Trainer(
            model,
            make_loss(cfg.task, weights),
            settings,
            metric_fn=validation_metrics(cfg.task),
            checkpoint_dir=checkpoint_dir,
        )
        train_data = TensorDataset(torch.as_tensor(X_train), target_tensor(cfg.task, y_train, scale))
        val_data = TensorDataset(torch.as_tensor(X_val), target_tensor(cfg.task, y_val, scale))
        if say:
            say(f"training {cfg.model.arch} on {len(train_data)} rows, {X_train.shape[1]} features ({trainer.device})")
        result = trainer.fit(train_data, val_data, resume=resume)
        model = trainer.module.cpu().eval()
        return _Fitted(preprocessor, model, trainer, result, scale, weights, X_train, y_train)

    def _score(self, fitted: _Fitted, features: pd.DataFrame) -> np.ndarray:
        matrix = fitted.preprocessor.transform(features)
        with torch.no_grad():
            outputs = fitted.model(torch.as_tensor(matrix)).float().numpy()
        return scores_from_outputs(self.config.task, outputs, fitted.target_scale)

    def _threshold(self, y: np.ndarray, scores: np.ndarray) -> float | None:
        return threshold_on_validation(self.config, y, scores)

    def _evaluate(self, table: PreparedTable, masks: dict[str, np.ndarray], fitted: _Fitted) -> dict[str, Any]:
        cfg = self.config
        val, test = masks["validation"], masks["test"]
        baseline_data = None
        if cfg.baselines:
            X_val = fitted.preprocessor.transform(table.features.loc[val])
            X_test = fitted.preprocessor.transform(table.features.loc[test])
            baseline_data = (fitted.X_train, fitted.y_train, X_val, X_test)
        sample_weight = None
        if fitted.sample_weight_classes is not None:
            sample_weight = fitted.sample_weight_classes[fitted.y_train.astype(int)]
        return evaluate_on_test(
            cfg,
            y_val=table.target[val],
            y_test=table.target[test],
            model_val=self._score(fitted, table.features.loc[val]),
            model_test=self._score(fitted, table.features.loc[test]),
            groups=table.patient_ids[test] if table.patient_ids is not None else None,
            class_names=table.classes or None,
            baselines=cfg.baselines,
            baseline_data=baseline_data,
            sample_weight=sample_weight,
        )

    def _subgroups(
        self,
        raw: pd.DataFrame,
        table: PreparedTable,
        masks: dict[str, np.ndarray],
        fitted: _Fitted,
        threshold: float | None,
    ) -> list[dict[str, Any]] | None:
        """Test metrics with CIs per level of each ``evaluate.subgroups`` column (numeric: quartiles).

        The threshold is the one chosen for everyone: the question is how the deployed rule behaves per group.
        Groups smaller than ``evaluate.min_subgroup_size`` are listed with their size but not scored.
        """
        cfg = self.config
        if not cfg.evaluate.subgroups:
            return None
        test = masks["test"]
        rows = table.rows[test]
        scores = self._score(fitted, table.features.loc[test])
        y = table.target[test]
        groups_of_patients = table.patient_ids[test] if table.patient_ids is not None else None
        out: list[dict[str, Any]] = []
        for column in cfg.evaluate.subgroups:
            values = raw.loc[rows, column]
            if table.column_types.get(column) == "numeric" or (
                column not in table.column_types and pd.api.types.is_numeric_dtype(values) and values.nunique() > 8
            ):
                numbers = pd.to_numeric(values, errors="coerce")
                labels = pd.qcut(numbers, q=4, duplicates="drop").astype(str).where(numbers.notna(), "missing")
            else:
                labels = values.astype(str).where(values.notna(), "missing")
            for level in sorted(labels.unique()):
                member = (labels == level).to_numpy()
                entry: dict[str, Any] = {"column": column, "group": str(level), "n": int(member.sum()), "metrics": {}}
                if member.sum() >= cfg.evaluate.min_subgroup_size:
                    result = evaluate_predictions(
                        cfg.task,
                        y[member],
                        scores[member],
                        threshold=threshold,
                        groups=groups_of_patients[member] if groups_of_patients is not None else None,
                        n_bootstrap=cfg.evaluate.bootstrap,
                        level=cfg.evaluate.confidence_level,
                        seed=cfg.train.seed,
                        class_names=table.classes or None,
                    )
                    entry["metrics"] = result["metrics"]
                out.append(entry)
        return out

    def _explain(self, table: PreparedTable, test: np.ndarray, fitted: _Fitted) -> dict[str, Any]:
        cfg = self.config
        x = cfg.explain
        frame = table.features.loc[test]
        y = table.target[test]
        metric = main_metric(cfg.task)
        sign = 1.0 if higher_is_better(metric) else -1.0

        def score_fn(target: np.ndarray, scores: np.ndarray) -> float:
            if cfg.task == "binary":
                value = binary_metrics(target, scores)[metric]
            elif cfg.task == "multiclass":
                value = multiclass_metrics(target, scores)[metric]
            else:
                value = regression_metrics(target, scores)[metric]
            return sign * float(value) if np.isfinite(value) else 0.0

        explanations: dict[str, Any] = {
            "permutation_importance": permutation_importance_table(
                lambda f: self._score(fitted, f),
                frame,
                y,
                score_fn,
                n_repeats=x.permutation_repeats,
                seed=cfg.train.seed,
            )
        }
        if x.integrated_gradients:
            matrix = fitted.preprocessor.transform(frame)
            target: np.ndarray | int = 0
            if cfg.task == "multiclass":
                with torch.no_grad():
                    target = fitted.model(torch.as_tensor(matrix)).argmax(dim=1).numpy()
            raw = integrated_gradients(fitted.model, matrix, fitted.X_train.mean(axis=0), target_index=target)
            grouped, names = group_attributions(raw, fitted.preprocessor.source_columns_)
            mean_abs = np.abs(grouped).mean(axis=0)
            explanations["integrated_gradients"] = sorted(
                ({"feature": n, "mean_abs_attribution": float(v)} for n, v in zip(names, mean_abs, strict=True)),
                key=lambda r: -r["mean_abs_attribution"],
            )
        return explanations

    def _cross_validate(self, table: PreparedTable, say: Any) -> dict[str, Any]:
        """k-fold estimate: fold k is the test set, fold k+1 the validation set, the rest trains."""
        cfg = self.config
        folds = int(self.data.split.folds or 0)
        assignment = kfold_assignments(
            table.target, task=cfg.task, folds=folds, patient_ids=table.patient_ids, seed=cfg.train.seed
        )
        metric = main_metric(cfg.task)
        per_fold = []
        for k in range(folds):
            say(f"cross-validation fold {k + 1}/{folds}")
            test, val = assignment == k, assignment == (k + 1) % folds
            fitted = self._fit(table, ~(test | val), val, None)
            scores = self._score(fitted, table.features.loc[test])
            threshold = self._threshold(table.target[val], self._score(fitted, table.features.loc[val]))
            result = evaluate_predictions(
                cfg.task,
                table.target[test],
                scores,
                threshold=threshold,
                n_bootstrap=0,
                class_names=table.classes or None,
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

    def _data_summary(self, raw: pd.DataFrame, table: PreparedTable, splits: np.ndarray) -> dict[str, Any]:
        cfg = self.config
        columns = []
        for name, kind in table.column_types.items():
            values = table.features[name]
            n_missing = int(values.isna().sum())
            if kind == "numeric":
                described = (
                    f"median {values.median():.4g} (IQR {values.quantile(0.25):.4g}–{values.quantile(0.75):.4g})"
                )
            else:
                counts = values.astype(str).where(values.notna()).value_counts()
                described = ", ".join(f"{k}: {v}" for k, v in counts.head(4).items()) + (
                    " …" if len(counts) > 4 else ""
                )
            columns.append(
                {
                    "name": name,
                    "type": kind,
                    "n_missing": n_missing,
                    "pct_missing": round(100 * n_missing / max(len(values), 1), 2),
                    "summary": described,
                }
            )
        summary: dict[str, Any] = {
            "path": str(self.data.path),
            "n_rows_read": table.n_rows_read,
            "n_rows_used": len(table.features),
            "n_patients": table.n_patients if table.patient_ids is not None else None,
            "target": self.data.target,
            "classes": table.classes,
            "positive_label": table.classes[1] if cfg.task == "binary" else None,
            "dropped": dict(table.dropped),
            "columns": columns,
            "splits": {name: int((splits == name).sum()) for name in ("train", "validation", "test")},
            "notes": [
                *([self.data.description] if self.data.description else []),
                *table.notes,
                self._split_note(table),
            ],
        }
        if cfg.task != "regression":
            summary["class_balance"] = {
                name: {
                    label: int(((splits == name) & (table.target == k)).sum()) for k, label in enumerate(table.classes)
                }
                for name in ("train", "validation", "test")
            }
        return summary

    def _split_note(self, table: PreparedTable) -> str:
        split = self.data.split
        how = (
            f"temporal split on {split.date_column!r} (earliest patients train, latest test)"
            if split.method == "temporal"
            else f"stratified split (seed {self.config.train.seed})"
        )
        if table.patient_ids is not None:
            return (
                f"{how}, by patient ({self.data.patient_id!r}): all rows of a patient are in one split, "
                "checked after splitting; bootstrap CIs resample patients; see splits.csv"
            )
        return f"{how}, one row per patient assumed (no data.patient_id set); see splits.csv"

    def _warnings(self, table: PreparedTable, masks: dict[str, np.ndarray], evaluation: dict[str, Any]) -> list[str]:
        warnings = []
        imbalance = self.prep.imbalance
        if imbalance not in {"none"} and self.config.task != "regression":
            warnings.append(
                f"preprocess.imbalance: {imbalance} trains as if the classes were balanced, so predicted "
                "probabilities are pushed away from the true prevalence (see the calibration plot); use the "
                "threshold, not the raw probability, or set imbalance: none when calibrated risks matter."
            )
        if self.prep.missing == "knn":
            warnings.append(
                "preprocess.missing: knn stores the training rows' numeric values in preprocess.npz (KNN imputation "
                "needs them at prediction time): treat the bundle as patient data."
            )
        n_test = int(masks["test"].sum())
        if n_test < 100:
            warnings.append(f"The test split has only {n_test} rows; confidence intervals are wide.")
        if self.config.task != "regression":
            for k, label in enumerate(table.classes):
                count = int((table.target[masks["test"]] == k).sum())
                if count < 10:
                    warnings.append(f"Class {label!r} has only {count} rows in the test split.")
        return warnings

    def _write_bundle(
        self,
        out: Path,
        record: dict[str, Any],
        table: PreparedTable,
        splits: np.ndarray,
        fitted: _Fitted,
        evaluation: dict[str, Any],
    ) -> dict[str, Any]:
        cfg = self.config
        (out / "config.yaml").write_text(cfg.to_yaml())
        state_files = [p.name for p in fitted.preprocessor.save(out)]
        save_weights(fitted.model, out / "model.safetensors")
        known_levels = {
            column: sorted({_level(v) for v in table.features[column].dropna()})
            for column, kind in table.column_types.items()
            if kind != "numeric"
        }
        info = {
            "format": BUNDLE_FORMAT,
            "name": cfg.name,
            "task": cfg.task,
            "arch": cfg.model.arch,
            "params": cfg.model.params,
            "in_features": int(fitted.X_train.shape[1]),
            "out_features": output_size(cfg.task, len(table.classes)),
            "classes": table.classes,
            "target": self.data.target,
            "patient_id": self.data.patient_id,
            "threshold": evaluation["threshold"],
            "threshold_rule": evaluation["threshold_rule"],
            "target_scale": list(fitted.target_scale) if fitted.target_scale else None,
            "feature_columns": list(table.column_types),
            "column_types": table.column_types,
            "known_levels": known_levels,
            "column_profile": fitted.preprocessor.column_profile_,
            "explain_baseline": fitted.X_train.mean(axis=0).tolist(),
            "meddl_version": __version__,
            "created": record["created"],
        }
        (out / "model.json").write_text(json.dumps(clean_json(info), indent=2) + "\n")
        splits_frame(table.rows, splits, table.patient_ids).to_csv(out / "splits.csv", index=False)
        metrics = clean_json(
            {
                "test": evaluation["model"]["metrics"],
                "threshold": evaluation["threshold"],
                "threshold_rule": evaluation["threshold_rule"],
                "baselines": {k: v["metrics"] for k, v in evaluation["baselines"].items()},
                "comparisons": evaluation["comparisons"],
                "confusion_matrix": evaluation["model"].get("confusion_matrix"),
                "data": {k: v for k, v in record["data"].items() if k != "columns"},
                "training": {k: v for k, v in record["training"].items() if k != "history"},
                "cross_validation": record.get("cross_validation"),
                "subgroups": record.get("subgroups"),
            }
        )
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
        bundle_files = [
            "config.yaml",
            "model.json",
            "model.safetensors",
            "metrics.json",
            "splits.csv",
            *state_files,
        ]
        # The card and report show the bundle hash, so it is computed over the files they describe.
        finish_bundle(out, record, bundle_files)
        return metrics


def _level(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _shift(bundle: Bundle, features: pd.DataFrame) -> list[dict[str, Any]]:
    """How far each variable moved from the training data: standardised mean difference (numeric) or
    total variation distance between level frequencies (categorical), plus the change in missingness."""
    rows = []
    for column, profile in bundle.info["column_profile"].items():
        if column not in features.columns:
            continue
        values = features[column]
        missing_new = float(values.isna().mean())
        if profile["kind"] == "numeric":
            new = pd.to_numeric(values, errors="coerce").dropna()
            std = float(profile["std"]) or 1.0
            mean_new = float(new.mean()) if len(new) else float("nan")
            score = abs(mean_new - float(profile["mean"])) / std
            rows.append(
                {
                    "column": column,
                    "kind": "numeric",
                    "train": f"mean {float(profile['mean']):.4g}",
                    "new": f"mean {mean_new:.4g}",
                    "score": score,
                    "measure": "standardised mean difference",
                    "missing_train": profile.get("missing_rate"),
                    "missing_new": missing_new,
                }
            )
        else:
            train_freq = {str(k): float(v) for k, v in profile["frequencies"].items()}
            new_freq = values.dropna().map(_level).value_counts(normalize=True).to_dict()
            levels = set(train_freq) | set(new_freq)
            score = 0.5 * sum(abs(train_freq.get(k, 0.0) - float(new_freq.get(k, 0.0))) for k in levels)
            top_train = max(train_freq, key=lambda k: train_freq[k]) if train_freq else "—"
            rows.append(
                {
                    "column": column,
                    "kind": "categorical",
                    "train": f"{top_train}: {train_freq.get(top_train, 0):.0%}",
                    "new": f"{top_train}: {float(new_freq.get(top_train, 0)):.0%}",
                    "score": score,
                    "measure": "total variation distance",
                    "missing_train": profile.get("missing_rate"),
                    "missing_new": missing_new,
                }
            )
    return sorted(rows, key=lambda r: -(r["score"] if np.isfinite(r["score"]) else -1))


def evaluate_external_tabular(
    bundle_path: str | Path, data: str | Path, out: str | Path, *, n_bootstrap: int | None = None
) -> RunResult:
    """Evaluate a trained bundle on another site's table: the same metrics with CIs, plus feature shift.

    The threshold chosen at training is kept (that is what would be deployed); rows with a missing target
    are dropped and counted, as in training.
    """
    bundle = load_bundle(bundle_path)
    cfg = bundle.config
    data = Path(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    raw = read_table(data, na_values=bundle.data_config.na_values)
    source = data.name
    target = bundle.info["target"]
    if target not in raw.columns:
        raise MedDLError(f"{source}: target column {target!r} not found; external evaluation needs the outcome")
    labelled = raw[raw[target].notna()]
    dropped = {"missing target": int(len(raw) - len(labelled))}
    if labelled.empty:
        raise MedDLError(f"{source}: every row lacks the target {target!r}")
    y = _encode_external_target(bundle, labelled[target], source)
    scores = bundle.scores(labelled, source)
    scorable = np.isfinite(scores).all(axis=1) if scores.ndim == 2 else np.isfinite(scores)
    dropped["missing predictor values (model trained with preprocess.missing: drop)"] = int((~scorable).sum())
    patient_column = bundle.info.get("patient_id")
    groups = labelled[patient_column].astype(str).to_numpy()[scorable] if patient_column in labelled.columns else None
    evaluation_model = evaluate_predictions(
        bundle.task,
        y[scorable],
        scores[scorable],
        threshold=bundle.threshold,
        groups=groups,
        n_bootstrap=cfg.evaluate.bootstrap if n_bootstrap is None else n_bootstrap,
        level=cfg.evaluate.confidence_level,
        seed=cfg.train.seed,
        class_names=bundle.classes or None,
    )
    features = bundle.features(labelled, source)
    shift = _shift(bundle, features)
    unseen = bundle.preprocessor.count_unseen(features)
    warnings = [f"column {c!r}: {n} value(s) not seen in training" for c, n in unseen.items() if n]
    record = {
        "kind": "external_evaluation",
        "name": bundle.name,
        "task": bundle.task,
        "created": now_utc(),
        "meddl_version": __version__,
        "bundle_hash": bundle.bundle_hash,
        "config_yaml": yaml.safe_dump({"bundle": str(bundle.path), "data": str(data)}, sort_keys=False),
        "data": {
            "path": str(data),
            "n_rows_read": len(raw),
            "n_rows_used": int(scorable.sum()),
            "n_patients": len(np.unique(groups)) if groups is not None else None,
            "target": target,
            "classes": bundle.classes,
            "dropped": dropped,
            "notes": [f"threshold {bundle.threshold:.4g} kept from training"] if bundle.threshold is not None else [],
        },
        "evaluation": {
            "split": data.name,
            "threshold": bundle.threshold,
            "threshold_rule": bundle.info.get("threshold_rule"),
            "model": evaluation_model,
            "baselines": {},
        },
        "shift": shift,
        "training_metrics": bundle.metrics.get("test"),
        "warnings": warnings,
    }
    metrics = clean_json(
        {
            "test": evaluation_model["metrics"],
            "threshold": bundle.threshold,
            "development": bundle.metrics.get("test"),
            "data": record["data"],
            "shift": shift,
            "bundle_hash": bundle.bundle_hash,
        }
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    pd.DataFrame(shift).to_csv(out / "shift.csv", index=False)
    write_report(record, out / "report.html")
    return RunResult(out, record, metrics)


def _encode_external_target(bundle: Bundle, values: pd.Series, source: str) -> np.ndarray:
    from meddl.data.tabular import coerce_numeric, same_label

    if bundle.task == "regression":
        return coerce_numeric(values, bundle.info["target"], source).to_numpy()
    codes = np.full(len(values), -1, dtype=np.int64)
    for k, label in enumerate(bundle.classes):
        codes[[same_label(v, label) for v in values]] = k
    if (codes < 0).any():
        first = int(np.argmax(codes < 0))
        raise MedDLError(
            f"{source}: target value {values.iloc[first]!r} (row {values.index[first]}) is not one of the "
            f"model's classes {bundle.classes}"
        )
    return codes

"""External validation for every data kind: a bundle's model judged on another site's labelled data.

The deployed threshold is kept (it is what would be used there), CIs resample patients, and the modality says how
far the new data moved from the training data (tables: SMD/TVD per variable; images: intensity, size, spacing;
sequences: length, GC content, k-mer spectrum; signals: amplitude and spectrum; EHR: event rates and labs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from meddl._json import clean_json
from meddl._version import __version__
from meddl.bundle import load_bundle
from meddl.evaluate import evaluate_predictions
from meddl.evaluate.evaluation import undefined_warning
from meddl.report import write_report
from meddl.run.common import RunResult, now_utc
from meddl.run.folders import RunFolder
from meddl.run.survival import evaluate_survival
from meddl.train import scores_from_outputs

__all__ = ["evaluate_external"]


def evaluate_external(
    bundle_path: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    n_bootstrap: int | None = None,
    overwrite: bool = False,
    log: Any = None,
) -> RunResult:
    """Evaluate a trained bundle on another site's data: the same metrics with CIs, and the shift from training.

    Args:
        bundle_path: the run folder of the trained model.
        data: the new labelled data, in the format the model was trained on.
        out: the folder for ``metrics.json``, ``shift.csv`` and ``report.html`` (written beside it first and moved
            there when complete; never a trained bundle's folder).
        n_bootstrap: bootstrap resamples (default: as trained).
        overwrite: allow ``out`` to be a non-empty folder MedDL did not make (its files are kept).
        log: optional ``callable(str)`` for progress messages.

    Returns:
        The folder, the record and the metrics.
    """
    say = log or (lambda message: None)
    bundle = load_bundle(bundle_path)
    folder = RunFolder.open(out, kind="evaluate", overwrite=overwrite)  # checked before the data is read
    try:
        result = _evaluate(bundle, Path(data), folder, n_bootstrap, say)
    except BaseException:
        folder.discard()
        raise
    return RunResult(folder.commit(), result.record, result.metrics)  # outside the try: never discard a done run


def _evaluate(bundle: Any, data: Path, folder: RunFolder, n_bootstrap: int | None, say: Any) -> RunResult:
    cfg = bundle.config
    say(f"reading {data}")
    prepared = bundle.modality.load_external(data, say)
    modality = prepared.extra.get("_modality", bundle.modality)  # a kind may read with a copy bound to the new data
    warnings = list(prepared.extra.get("warnings", []))
    if n_bootstrap is not None:
        cfg.evaluate.bootstrap = n_bootstrap
    if bundle.task == "segmentation":  # every case segmented whole and measured on its own grid
        from meddl.run.segmentation import measure_cases

        evaluation_model = measure_cases(modality, bundle.model, prepared, np.arange(len(prepared.target)), cfg, say)[0]
    else:
        evaluation_model = _judge_scores(bundle, modality, prepared, cfg, warnings, say)
    warnings += undefined_warning(evaluation_model.get("undefined") or {})
    shift = modality.shift(prepared)
    modality.cleanup()
    out = folder.staging
    record: dict[str, Any] = {
        "kind": "external_evaluation",
        "name": bundle.name,
        "task": bundle.task,
        "created": now_utc(),
        "meddl_version": __version__,
        "bundle_hash": bundle.bundle_hash,
        "config_yaml": yaml.safe_dump({"bundle": str(bundle.path), "data": str(data)}, sort_keys=False),
        "data": {
            "path": str(data),
            "n_rows_read": prepared.n_read,
            "n_rows_used": len(prepared.target),
            "n_patients": len(np.unique(prepared.patient_ids)) if prepared.patient_ids is not None else None,
            "target": bundle.info.get("target"),
            "classes": bundle.classes,
            "dropped": dict(prepared.dropped),
            "repairs": {reason: int(n) for reason, n in prepared.repairs.items() if n},
            "notes": [f"threshold {bundle.threshold:.4g} kept from training"] if bundle.threshold is not None else [],
        },
        "evaluation": {
            "split": data.name,
            "threshold": bundle.threshold,
            "threshold_rule": bundle.info.get("threshold_rule"),
            "model": evaluation_model,
            "baselines": {},
        },
        **({"per_label": evaluation_model.get("per_label")} if bundle.task == "segmentation" else {}),
        "shift": shift,
        "training_metrics": bundle.metrics.get("test"),
        "sections": prepared.sections,
        "warnings": warnings,
    }
    metrics = clean_json(
        {
            "test": evaluation_model["metrics"],
            **({"per_label": evaluation_model.get("per_label")} if bundle.task == "segmentation" else {}),
            "threshold": bundle.threshold,
            "development": bundle.metrics.get("test"),
            "data": record["data"],
            "shift": shift,
            "bundle_hash": bundle.bundle_hash,
        }
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    if shift:
        pd.DataFrame(shift).to_csv(out / "shift.csv", index=False)
    write_report(record, out / "report.html")
    return RunResult(out, record, metrics)


def _judge_scores(bundle: Any, modality: Any, prepared: Any, cfg: Any, warnings: list[str], say: Any) -> dict[str, Any]:
    """The model's scores of every case, judged with CIs (survival: IPCW metrics at the new site's censoring)."""
    outputs = modality.prepared_outputs(bundle.model, prepared, np.arange(len(prepared.target)))
    scores = scores_from_outputs(bundle.task, outputs, bundle.target_scale)
    if bundle.task in {"binary", "multiclass"}:
        scores = bundle.recalibrator.apply(scores)  # as the bundle predicts: through its recalibration map
    say("evaluating")
    if bundle.survival is not None:
        # IPCW metrics weight by the censoring of the new site's own follow-up (the bundle keeps no patient times)
        judged = evaluate_survival(
            cfg,
            bundle.survival,
            y_train=prepared.target,
            y_test=prepared.target,
            test_scores=scores,
            groups=prepared.patient_ids,
            baselines=[],
            baseline_data=None,
        )
        warnings += judged["warnings"]
        return judged["model"]
    return evaluate_predictions(
        bundle.task,
        prepared.target,
        scores,
        threshold=bundle.threshold,
        groups=prepared.patient_ids,
        n_bootstrap=cfg.evaluate.bootstrap,
        level=cfg.evaluate.confidence_level,
        seed=cfg.train.seed,
        class_names=bundle.classes or None,
    )

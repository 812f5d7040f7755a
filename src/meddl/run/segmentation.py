"""A segmentation run: the training run's steps with a mask for a target, Dice for a monitor and per-case
metrics for an evaluation.

read (image + mask pairs, the plan) → patient-level split (stratified by whether a case has foreground) → the plan's
patch fitted to the training masks' objects → patches of the training split (foreground-balanced, augmented) → the
one trainer with MONAI's Dice + cross-entropy loss, early stopping on the validation cases' Dice (each case tiled
whole by patches) → the smallest object kept per label, chosen on the validation cases → every test case segmented
whole (sliding window) and measured on its original grid (Dice, IoU, HD95, mean surface distance, volume error,
lesion-wise sensitivity and false positives), aggregated with patient-level bootstrap CIs → best, median and worst
cases as overlays → run record, report, bundle (the plan travels in ``preprocess.json``).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import numpy as np

from meddl.data import split_assignments
from meddl.errors import MedDLError
from meddl.evaluate.segmentation import aggregate, case_metrics, dice_score, per_case_table
from meddl.models import build_model
from meddl.models.pretrained import apply_pretrained, describe_pretrained
from meddl.run.common import Fitted, RunResult, trainer_settings, training_record_header
from meddl.train import Trainer, seed_everything
from meddl.train.objectives import DiceCELoss
from meddl.train.runtime import runtime_record

if TYPE_CHECKING:
    from meddl.modalities import Prepared
    from meddl.modalities.segmentation import SegmentationModality
    from meddl.run.folders import RunFolder

__all__ = ["run_segmentation"]

_SPLITS = ("train", "validation", "test")
_HEADLINE = ("dice", "iou", "hd95", "msd", "volume_error_pct", "lesion_sensitivity", "false_positive_lesions")


SEGMENTATION_SMOOTHING = 0.8  # the monitor's moving average when the experiment sets no early stopping


def _early_stopping_defaults(cfg: Any) -> dict[str, dict[str, Any]]:
    """Early stopping for a segmentation run whose experiment leaves ``train.early_stopping`` out: a patience of a
    quarter of the epochs (at least 10) and the validation Dice smoothed (0.8), as nnU-Net smooths it (0.9).

    An epoch here is ``STEPS_PER_EPOCH`` batches of patches, not a pass over the data, and the mean Dice of a few
    validation cases moves more from noise than from one epoch's learning: with the trainer's general defaults
    (patience 10, the raw score) 3-D phantom runs stopped on a plateau before the cosine schedule annealed, where
    most of their gain came. An experiment that sets either field keeps both as it says."""
    stopping = cfg.train.early_stopping
    if {"patience", "smoothing"} & stopping.model_fields_set:
        return {}
    epochs = cfg.train.epochs
    stopping.patience = max(10, -(-epochs // 4))
    stopping.smoothing = SEGMENTATION_SMOOTHING
    why = (
        "segmentation: an epoch is a fixed number of patch batches and a few validation cases' Dice is noisy, so "
        "early stopping waits for a quarter of the epochs (at least 10)"
    )
    return {
        "train.early_stopping.patience": {"value": stopping.patience, "why": f"{why}, of {epochs}"},
        "train.early_stopping.smoothing": {
            "value": SEGMENTATION_SMOOTHING,
            "why": "segmentation: the validation Dice's moving average picks the best epoch and stops early (nnU-Net "
            "smooths it with 0.9)",
        },
    }


def _validation_dice(n_classes: int, cases: np.ndarray) -> Any:
    """The monitored metric: the mean Dice of the validation cases, each pooled from its tiles (``cases``: the case of
    each validation item)."""

    def metric(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        return {"dice": dice_score(np.argmax(outputs, axis=1), targets, n_classes, cases)}

    return metric


def run_segmentation(run: Any, folder: RunFolder, context: Any, say: Any) -> RunResult:
    """The body of :meth:`meddl.run.training.TrainingRun._run` for ``task: segmentation``: ``run`` is that
    TrainingRun (it keeps the folder handling, the data summary and the bundle writing; typed loosely, so that this
    module does not import the one that dispatches to it)."""
    cfg = run.config
    modality: SegmentationModality = run.modality  # type: ignore[assignment]
    out = folder.staging
    say(f"reading {cfg.data.path}")
    modality.workdir = out / "work"
    prepared = modality.load(say)
    splits = _split(cfg, prepared, say)
    index = {name: np.flatnonzero(splits == name) for name in _SPLITS}
    for name in _SPLITS:
        if len(index[name]) == 0:
            raise MedDLError(f"{cfg.data.path}: the {name} split is empty ({len(splits)} cases in all)")
    say(", ".join(f"{k} {len(v)}" for k, v in index.items()) + " cases")
    assert modality.plan is not None, "load() makes the plan"
    modality.fit(prepared, index["train"])  # the patch fitted to the training masks' objects
    derived = modality.derived_defaults(prepared)
    cfg.train.batch_size = modality.plan.batch_size
    if modality.plan.spacing is not None:
        cfg.preprocess.spacing = modality.plan.spacing  # type: ignore[attr-defined]
    cfg.preprocess.patch_size = modality.plan.patch_size  # type: ignore[attr-defined]
    cfg.preprocess.normalize = modality.plan.normalize  # type: ignore[attr-defined]
    derived.update(_early_stopping_defaults(cfg))
    for setting, entry in derived.items():
        say(f"{setting}: {entry['value']} (from the data: {entry['why']})")

    fitted = _fit(run, modality, prepared, index, folder, say)
    model = fitted.model
    if not context.is_main:
        return RunResult(out, {"name": cfg.name, "task": cfg.task}, {})
    derived.update(_choose_postprocessing(modality, model, prepared, index, say))

    summary, per_case, predictions = measure_cases(modality, model, prepared, index["test"], cfg, say)
    table = per_case_table(per_case)
    # the manifest row, not the file name: a bundle is handed on, and file names can carry identifiers
    rows = [prepared.extra["rows"][i] for i in index["test"]]
    table.insert(0, "manifest_row", [rows[int(k)] for k in table["case"]])
    table.to_csv(out / "test_cases.csv", index=False)
    evaluation = {
        "split": "test",
        "threshold": None,
        "threshold_rule": None,
        "model": summary,
        "baselines": {},
        "comparisons": {},
    }
    robustness, robustness_section = _robustness(modality, model, prepared, index["test"], predictions, cfg, say)
    say("drawing the best, median and worst test cases")
    examples = _examples(modality, prepared, index["test"], predictions, per_case)
    record: dict[str, Any] = {
        **training_record_header(cfg),
        "data": {
            **run._data_summary(prepared, splits, derived),
            "target": "mask: " + ", ".join(f"{v} = {name}" for v, name in sorted(modality.names.items())),
        },
        "model": fitted.model_record(cfg.model.arch),
        "training": {**fitted.result.as_dict(cfg.monitor), "runtime": runtime_record()},
        "evaluation": evaluation,
        "sections": [
            *prepared.sections,
            _plan_section(modality),
            _per_label_section(summary),
            *([robustness_section] if robustness_section else []),
        ],
        "robustness": robustness,
        "examples": examples,
        "examples_heading": {
            "nav": "Overlays",
            "title": "Best, median and worst test cases",
            "text": "The test cases with the highest, median and lowest Dice among those with something to find: the "
            "predicted mask filled in colour, the true mask outlined in white (for a volume, the slice with the most "
            "predicted foreground).",
        },
        "warnings": modality.warnings(prepared, index["test"]),
        "derived_defaults": derived or None,
        "usage": dict(modality.usage),
    }
    record = {k: v for k, v in record.items() if v is not None}
    metrics = run._write_bundle(out, record, prepared, splits, fitted, folder.final)
    modality.cleanup()
    return RunResult(out, record, metrics)


def _choose_postprocessing(
    modality: SegmentationModality, model: Any, prepared: Prepared, index: dict[str, np.ndarray], say: Any
) -> dict[str, dict[str, Any]]:
    """The smallest predicted object kept per label: ``preprocess.min_object_size`` when the experiment gives it,
    else chosen on the validation cases segmented whole (nnU-Net's post-processing step; the test split is not
    looked at). Stored in the plan, so prediction, serving and evaluation apply it."""
    from meddl.preprocess.segmentation import choose_min_object_size

    plan = modality.plan
    assert plan is not None, "load() makes the plan"
    labels = range(1, len(modality.label_values) + 1)
    given = modality.prep.min_object_size
    if given is not None:
        plan.min_object_size = {k: float(given) for k in labels}
        plan.why.pop("min_object_size", None)
        return {}
    cases = prepared.extra["cases"]
    validation = [cases[i] for i in index["validation"]]
    say(f"choosing the post-processing on {len(validation)} validation case(s) segmented whole")
    predictions = [modality.segment(model, case, postprocess=False) for case in validation]

    def score(truth: np.ndarray, prediction: np.ndarray, label: int) -> float:
        return dice_score((prediction == label)[None].astype(np.int64), (truth == label)[None].astype(np.int64), 2)

    chosen, why = choose_min_object_size(
        [case.original_mask for case in validation],
        predictions,
        [case.spacing for case in validation],
        modality.object_sizes([cases[i] for i in index["train"]]),
        score,
    )
    plan.min_object_size = chosen
    unit = "mm³" if modality.data.spatial_dims == 3 else "mm²"
    names = {k: modality.names[v] for k, v in enumerate(modality.label_values, start=1)}
    plan.why["min_object_size"] = f"{unit}, per label: " + "; ".join(f"{names[k]}: {w}" for k, w in why.items())
    value = {names[k]: v for k, v in chosen.items()}
    say(f"preprocess.min_object_size: {value} (from the validation cases: {plan.why['min_object_size']})")
    return {"preprocess.min_object_size": {"value": value, "why": plan.why["min_object_size"]}}


def measure_cases(
    modality: SegmentationModality, model: Any, prepared: Prepared, rows: np.ndarray, cfg: Any, say: Any
) -> tuple[dict[str, Any], list[dict[str, Any]], list[np.ndarray]]:
    """Segment the cases ``rows`` whole (sliding window) and measure each on its own grid; returns the aggregate
    with patient-level CIs, the per-case metrics and the predicted label indices (test split and ``meddl
    evaluate`` alike)."""
    cases = prepared.extra["cases"]
    names = {k: modality.names[v] for k, v in enumerate(modality.label_values, start=1)}
    say(f"segmenting {len(rows)} case(s) whole (sliding window, overlap {modality.prep.overlap})")
    per_case, predictions = [], []
    for n, i in enumerate(rows, start=1):
        predicted = modality.segment(model, cases[i])
        predictions.append(predicted)
        per_case.append(case_metrics(predicted, cases[i].original_mask, cases[i].spacing, names))
        if n % max(1, len(rows) // 5) == 0:
            say(f"segmented {n}/{len(rows)} case(s)")
    summary = aggregate(
        per_case,
        groups=prepared.patient_ids[rows] if prepared.patient_ids is not None else None,
        n_bootstrap=cfg.evaluate.bootstrap,
        level=cfg.evaluate.confidence_level,
        seed=cfg.train.seed,
        spatial_dims=modality.data.spatial_dims,
    )
    return {**summary, "n": len(rows)}, per_case, predictions


def _robustness(
    modality: SegmentationModality,
    model: Any,
    prepared: Prepared,
    test: np.ndarray,
    predictions: list[np.ndarray],
    cfg: Any,
    say: Any,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``evaluate.robustness`` for masks: the test cases segmented again after each of the image modality's
    corruptions (noise, blur, contrast, brightness, rotation, resolution) at rising severity; the mean Dice with
    patient-level bootstrap CIs at each, and the worst drop with its paired CI — the figures and the report section
    in the form every other run's robustness suite has."""
    if not cfg.evaluate.robustness:
        return None, None
    from meddl.evaluate.bootstrap import bootstrap_metrics
    from meddl.evaluate.robustness import corruption_rng
    from meddl.report.robustness_plots import robustness_section
    from meddl.run.robustness import ROBUSTNESS_RESAMPLES

    cases = prepared.extra["cases"]
    n_classes = len(modality.names) + 1
    groups = prepared.patient_ids[test] if prepared.patient_ids is not None else None
    e = cfg.evaluate
    resamples = min(e.bootstrap, ROBUSTNESS_RESAMPLES)

    def dice_of(predicted: np.ndarray, i: int) -> float:
        return dice_score(predicted[None], cases[i].original_mask[None], n_classes)

    def judged(compute: Any, n: int) -> dict[str, Any]:
        return bootstrap_metrics(compute, n, n_resamples=resamples, groups=groups, level=e.confidence_level, seed=0)

    clean = np.array([dice_of(p, i) for p, i in zip(predictions, test, strict=True)])
    clean_summary = judged(lambda rows: {"dice": float(clean[rows].mean())}, len(clean))["dice"]
    corruptions, worst = [], None
    say("segmenting the test cases again under corrupted inputs")
    for corruption in modality.corruptions():
        severities = []
        for position, severity in enumerate(corruption.severities):
            rng = corruption_rng(cfg.train.seed, corruption.name, position)
            dice = np.array(
                [
                    dice_of(
                        modality.on_original_grid(
                            modality.probabilities(model, corruption.apply(cases[i].image[None], severity, rng)[0]),
                            cases[i].shape,
                        ),
                        i,
                    )
                    for i in test
                ]
            )
            value = judged(lambda rows, dice=dice: {"dice": float(dice[rows].mean())}, len(dice))["dice"]
            drop = float(clean.mean() - dice.mean())
            severities.append({"severity": float(severity), "value": value["value"], "ci": value["ci"], "drop": drop})
            if worst is None or drop > worst["drop"]:
                paired = judged(
                    lambda rows, dice=dice: {"drop": float(clean[rows].mean() - dice[rows].mean())}, len(dice)
                )
                worst = {
                    "corruption": corruption.name,
                    "label": corruption.label,
                    "severity": float(severity),
                    "value": value["value"],
                    "drop": drop,
                    "ci": paired["drop"]["ci"],
                }
        worst_here = max(severities, key=lambda row: row["drop"])
        corruptions.append(
            {
                "name": corruption.name,
                "label": corruption.label,
                "unit": corruption.unit,
                "severities": severities,
                "worst_drop": worst_here["drop"],
                "worst_severity": worst_here["severity"],
            }
        )
    figures = {
        "metric": "dice",
        "higher_is_better": True,
        "n": len(test),
        "clean": clean_summary,
        "corruptions": corruptions,
        "worst": worst,
        "bootstrap_resamples": resamples,
    }
    return figures, robustness_section(figures, e.confidence_level, modality.title)


def _split(cfg: Any, prepared: Prepared, say: Any) -> np.ndarray:
    """Train / validation / test by patient, stratified by whether a case has foreground when both kinds have
    enough patients to reach every split (else unstratified, and said)."""

    def by(strata: np.ndarray) -> np.ndarray:
        return split_assignments(
            strata,
            task="binary",
            fractions=(cfg.data.split.train, cfg.data.split.validation, cfg.data.split.test),
            patient_ids=prepared.patient_ids,
            seed=cfg.train.seed,
            source=cfg.data.path.name,
        )

    if len(np.unique(prepared.target)) > 1:
        try:
            return by(prepared.target)
        except MedDLError as exc:
            if "too few" in str(exc):
                raise
            say(f"split not stratified by empty/non-empty masks: {exc}")
            prepared.notes.append(f"the split is not stratified by empty/non-empty masks ({exc})")
    return by(np.zeros(len(prepared.target), dtype=np.int64))


def _fit(
    run: Any,
    modality: SegmentationModality,
    prepared: Prepared,
    index: dict[str, np.ndarray],
    folder: RunFolder,
    say: Any,
) -> Any:
    cfg = run.config
    seed_everything(cfg.train.seed)
    data_arguments = modality.model_arguments(modality.features(prepared))
    params = dict(cfg.model.params)
    datasets = {
        name: modality.training_dataset(prepared, index[name], prepared.target[index[name]], train=name == "train")
        for name in ("train", "validation")
    }
    modality.describe_training(prepared, index["train"])  # sizes and spacings, for the shift report of new data
    network = build_model(cfg.model.arch, params, **data_arguments)
    pretrained = apply_pretrained(network, cfg.model.pretrained)
    if pretrained is not None:
        say(describe_pretrained(pretrained))
    tiles = datasets["validation"].tile_cases  # type: ignore[attr-defined]  # the case of each validation tile
    trainer = Trainer(
        network,
        DiceCELoss(),
        trainer_settings(cfg),
        metric_fn=_validation_dice(data_arguments["out_channels"], tiles),
        checkpoint_dir=folder.staging / "checkpoints",
    )
    patch = "×".join(map(str, modality.plan.patch_size)) if modality.plan else "?"
    say(
        f"training {cfg.model.arch} on {len(index['train'])} cases, patches of {patch}, batches of "
        f"{cfg.train.batch_size} ({trainer.device})"
    )
    result = trainer.fit(datasets["train"], datasets["validation"], resume=folder.resumed)
    return Fitted(trainer.module.eval(), result, params, data_arguments, None, pretrained)


def _examples(
    modality: SegmentationModality,
    prepared: Prepared,
    test: np.ndarray,
    predictions: list[np.ndarray],
    per_case: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Overlays of the best, median and worst test cases by (macro) Dice, among those with something to find (an
    empty mask left empty scores a trivial Dice of 1)."""
    cases = prepared.extra["cases"]
    dice = np.array([np.mean([m["dice"] for m in case.values()]) for case in per_case])
    with_truth = [k for k, i in enumerate(test) if cases[i].original_mask.any()] or list(range(len(test)))
    order = np.array(with_truth)[np.argsort(dice[with_truth], kind="stable")]
    unit = "mL" if modality.data.spatial_dims == 3 else "mm²"
    size = "volume" if modality.data.spatial_dims == 3 else "area"
    chosen = {"worst": int(order[0]), "median": int(order[len(order) // 2]), "best": int(order[-1])}
    examples = []
    for what, position in sorted(chosen.items(), key=lambda item: ("best", "median", "worst").index(item[0])):
        case = cases[test[position]]
        values = modality._value_map(predictions[position])
        png = modality.overlay(case, values, case.original_mask)
        volumes = "; ".join(
            f"{name}: Dice {metrics['dice']:.3f}, {size} {metrics['volume_pred']:.2f} {unit} predicted vs "
            f"{metrics['volume_true']:.2f} {unit} true"
            for name, metrics in per_case[position].items()
        )
        examples.append(
            {
                "title": f"{what.capitalize()} test case: {case.source.rsplit('/', 1)[-1]}",
                "caption": f"{volumes}. Filled: the prediction; white outline: the true mask.",
                "overlay_png": base64.b64encode(png).decode("ascii"),
            }
        )
    return examples


def _plan_section(modality: SegmentationModality) -> dict[str, Any]:
    plan = modality.plan
    assert plan is not None, "load() makes the plan"
    rows = [
        [
            "target spacing (mm)",
            "as read" if plan.spacing is None else " × ".join(map(str, plan.spacing)),
            plan.why.get("spacing", "given, or every image has the same spacing"),
        ],
        ["patch size", " × ".join(map(str, plan.patch_size)), plan.why.get("patch_size", "given in the experiment")],
        ["batch size", str(plan.batch_size), plan.why.get("batch_size", "given in the experiment")],
        [
            "normalisation",
            "CT: clip to "
            + ", ".join(
                f"[{lo:g}, {hi:g}]" for lo, hi in zip(plan.intensity["low"], plan.intensity["high"], strict=True)
            )
            + ", then (x − "
            + ", ".join(f"{m:.4g}" for m in plan.intensity["mean"])
            + ") / "
            + ", ".join(f"{sd:.4g}" for sd in plan.intensity["std"])
            if plan.normalize == "ct"
            else "z-score per image and channel",
            plan.why.get("normalize", "preprocess.normalize, given in the experiment"),
        ],
        [
            f"smallest object kept ({'mm³' if modality.data.spatial_dims == 3 else 'mm²'})",
            ", ".join(f"{modality.names[modality.label_values[k - 1]]}: {v:g}" for k, v in plan.min_object_size.items())
            or "all kept",
            plan.why.get("min_object_size", "preprocess.min_object_size, given in the experiment"),
        ],
        ["sliding-window overlap", str(modality.prep.overlap), "preprocess.overlap (Gaussian-weighted)"],
    ]
    return {
        "id": "segmentation-plan",
        "title": "Plan",
        "text": [
            "Settings taken from a fingerprint of the images (nnU-Net's planning step); any can be set in the "
            "experiment file's preprocess section."
        ],
        "table": {"columns": ["Setting", "Value", "Why"], "rows": rows},
    }


def _per_label_section(summary: dict[str, Any]) -> dict[str, Any]:
    unit = summary.get("volume_unit", "mL")
    rows = []
    for name, metrics in summary.get("per_label", {}).items():
        for metric in _HEADLINE:
            entry = metrics.get(metric)
            if not isinstance(entry, dict) or entry.get("value") is None:
                continue
            low, high = entry.get("ci_low"), entry.get("ci_high")
            ci = f"{low:.3f} – {high:.3f}" if low is not None and high is not None else "—"
            rows.append([name, metric, f"{entry['value']:.3f}", ci, str(entry.get("n", ""))])
    return {
        "id": "segmentation-per-label",
        "title": "Per label (test cases)",
        "text": [
            "Means over test cases with patient-level bootstrap CIs, measured on each image's original grid. Surface "
            "distances in mm; a case where the model finds nothing (or finds something in an empty mask) scores "
            f"Dice 0 and the image diagonal as its distance — it is never skipped. Volumes in {unit}."
        ],
        "table": {"columns": ["Label", "Metric", "Mean", "CI", "Cases"], "rows": rows},
    }

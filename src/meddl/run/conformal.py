"""``evaluate.conformal`` in a training run: the calibration part carved out of validation, its size checked before
training, the predictor calibrated after training, and coverage on the test split for the report and metrics.json.

How the calibration part is carved: after the patient-level split, ``evaluate.conformal.calibration`` (default
half) of the validation split's patients — stratified by outcome, by patient, seeded by ``train.seed`` — become the
``calibration`` split (named so in ``splits.csv``). The model never sees them: early stopping, the decision
threshold and recalibration use the rest of validation, so the calibration cases are exchangeable with the test
cases and the coverage guarantee holds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from meddl.config import ExperimentConfig
from meddl.data import carve_calibration
from meddl.errors import MedDLError
from meddl.evaluate.conformal import ConformalPredictor, conformal_coverage, fit_conformal, min_calibration_size
from meddl.modalities import Modality, Prepared

__all__ = ["MAX_GROUP_LEVELS", "calibrate_conformal", "carve", "check_calibration"]

MAX_GROUP_LEVELS = 20  # a Mondrian column with more levels than this is not a grouping (an id, a measurement)


def carve(
    config: ExperimentConfig, splits: np.ndarray, strata: np.ndarray, task: str, prepared: Prepared
) -> np.ndarray:
    """The splits with part of validation relabelled ``calibration`` (unchanged without ``evaluate.conformal``)."""
    conformal = config.evaluate.conformal
    if conformal is None:
        return splits
    return carve_calibration(
        splits,
        strata,
        task=task,
        fraction=conformal.calibration,
        patient_ids=prepared.patient_ids,
        seed=config.train.seed,
    )


def check_calibration(
    config: ExperimentConfig, modality: Modality, prepared: Prepared, index: dict[str, np.ndarray]
) -> None:
    """Before training: a calibration part large enough for ``alpha`` (overall, and per class with Mondrian
    ``class``), and a Mondrian column that exists and is categorical."""
    conformal = config.evaluate.conformal
    if conformal is None:
        return
    source, alpha = config.data.path.name, conformal.alpha
    need = min_calibration_size(alpha)
    rows = index["calibration"]
    fix = (
        f"raise evaluate.conformal.calibration ({conformal.calibration}), data.split.validation "
        f"({config.data.split.validation}) or evaluate.conformal.alpha"
    )
    if len(rows) < need:
        raise MedDLError(
            f"{source}: evaluate.conformal: the calibration part of validation holds {len(rows)} case(s); alpha "
            f"{alpha:g} needs at least {need} (with fewer, every set would hold every label); {fix}"
        )
    if config.task in {"binary", "multiclass"}:  # validation still chooses the threshold: it needs every class
        for name in ("validation", "calibration"):
            present = set(np.unique(prepared.target[index[name]].astype(np.int64)).tolist())
            absent = [label for k, label in enumerate(prepared.classes) if k not in present]
            if absent:
                raise MedDLError(
                    f"{source}: evaluate.conformal.calibration: after carving, the {name} part has no case of class "
                    f"{absent[0]!r}; {fix}"
                )
    if conformal.mondrian == "class":
        codes = prepared.target[rows].astype(np.int64)
        for k, name in enumerate(prepared.classes):
            count = int((codes == k).sum())
            if count < need:
                raise MedDLError(
                    f"{source}: evaluate.conformal.mondrian: class {name!r} has {count} calibration case(s); alpha "
                    f"{alpha:g} needs at least {need} per class; {fix}"
                )
    elif conformal.mondrian is not None:
        everyone = np.arange(len(prepared.target))
        levels = np.unique(modality.group_values(prepared, conformal.mondrian, everyone))
        if len(levels) > MAX_GROUP_LEVELS:
            raise MedDLError(
                f"{source}: evaluate.conformal.mondrian: column {conformal.mondrian!r} has {len(levels)} distinct "
                f"values; Mondrian calibration needs a categorical column (at most {MAX_GROUP_LEVELS} groups, e.g. "
                "sex or site)"
            )


def calibrate_conformal(
    config: ExperimentConfig,
    modality: Modality,
    prepared: Prepared,
    index: dict[str, np.ndarray],
    calibration_scores: np.ndarray,
    test_scores: np.ndarray,
    survival_state: Any = None,
) -> tuple[ConformalPredictor | None, dict[str, Any] | None, dict[str, Any] | None]:
    """Fit the conformal predictor on the calibration part and judge it on the test split (survival: the fitted
    head state turns each case's scores into its time to survival ``1 - alpha``).

    Returns the predictor (kept in the bundle), the figures for ``metrics.json`` and the report's section; three
    Nones without ``evaluate.conformal``."""
    conformal = config.evaluate.conformal
    if conformal is None:
        return None, None, None
    e, task = config.evaluate, config.task
    column = conformal.mondrian if conformal.mondrian not in (None, "class") else None
    cal, test = index["calibration"], index["test"]
    cal_groups = modality.group_values(prepared, column, cal) if column else None
    test_groups = modality.group_values(prepared, column, test) if column else None
    names = list(prepared.classes or [])
    if task == "survival":  # the model's own (1 - alpha) survival time, which the bound rescales
        calibration_scores = survival_state.time_to_survival(calibration_scores, 1.0 - conformal.alpha)
        test_scores = survival_state.time_to_survival(test_scores, 1.0 - conformal.alpha)
        names = []  # no class sets: the causes of a competing-risks model are not what is bounded
    predictor = fit_conformal(
        task,
        prepared.target[cal],
        calibration_scores,
        alpha=conformal.alpha,
        method=conformal.method,
        mondrian=conformal.mondrian,
        groups=cal_groups,
        k_reg=conformal.raps_k_reg,
        lam=conformal.raps_lambda,
        seed=config.train.seed,
        labels=names,
    )
    y_test = prepared.target[test]
    if task in {"regression", "survival"}:
        sets = predictor.intervals(test_scores, test_groups)
    else:
        sets = predictor.sets(test_scores, test_groups)
    breakdowns = {column: test_groups} if column and test_groups is not None else {}
    for extra in e.subgroups:
        if extra != column:
            breakdowns[extra] = modality.subgroup_labels(prepared, extra, test).to_numpy()
    coverage = conformal_coverage(
        task,
        y_test,
        sets,
        class_names=names or None,
        breakdowns=breakdowns,
        patient_ids=prepared.patient_ids[test] if prepared.patient_ids is not None else None,
        n_bootstrap=e.bootstrap,
        level=e.confidence_level,
        seed=config.train.seed,
        min_size=e.min_subgroup_size,
    )
    fallbacks = sorted(level for level in predictor.sizes if level != "*" and level not in predictor.thresholds)
    figures = {
        "alpha": conformal.alpha,
        "target_coverage": 1.0 - conformal.alpha,
        "method": predictor.method,
        "mondrian": conformal.mondrian,
        "n_calibration": len(cal),
        "calibration_sizes": predictor.sizes,
        "pooled_groups": fallbacks,
        "test": coverage,
    }
    return predictor, figures, _section(config, predictor, figures)


def _cell(entry: dict[str, Any], name: str, digits: int = 3) -> str:
    figure = entry.get(name)
    if not isinstance(figure, dict) or figure.get("value") is None:
        return "—"
    low, high = figure.get("ci") or [None, None]
    value = f"{figure['value']:.{digits}f}"
    if low is None or high is None or not np.isfinite(low) or not np.isfinite(high):
        return value
    return f"{value} ({low:.{digits}f}–{high:.{digits}f})"


def _section(config: ExperimentConfig, predictor: ConformalPredictor, figures: dict[str, Any]) -> dict[str, Any]:
    """The report's section: how the sets were made and their coverage on the test split, with CIs."""
    conformal = config.evaluate.conformal
    assert conformal is not None
    task, alpha = config.task, conformal.alpha
    level = round(100 * (1 - alpha), 1)
    what = {
        "lac": "LAC (a label joins the set when 1 − its probability is at most the threshold)",
        "aps": "APS (labels join in order of probability until their mass reaches the threshold)",
        "raps": f"RAPS (APS with λ = {conformal.raps_lambda:g} per label ranked beyond {conformal.raps_k_reg})",
        "residual": "the absolute residual (interval = prediction ± the threshold)",
        "lower_bound": "a lower bound on the time to the event: the time at which the case's predicted survival "
        f"falls to {1 - alpha:g}, scaled down by the calibrated factor (calibrated on follow-up, so censored cases "
        "make it conservative, never optimistic)",
    }[predictor.method]
    thing = {"regression": "interval", "survival": "lower bound"}.get(task, "set")
    text = [
        f"Each prediction comes with a {thing} that should hold the truth for {level:g} % of cases "
        f"(alpha = {alpha:g}). Split conformal prediction with {what}, calibrated on {figures['n_calibration']} "
        f"cases: the calibration part of the validation split ({conformal.calibration:.0%} of its patients, "
        "stratified and by patient), which the model never trained or tuned on.",
    ]
    if config.data.split.method == "temporal":
        text.append(
            "With a temporal split the calibration cases come from the validation period, before the test period: "
            "the coverage guarantee needs those periods to be alike, so read the test coverage below as the check."
        )
    if conformal.mondrian == "class":
        text.append("Mondrian by class: one threshold per true class, so coverage holds within each class.")
    elif conformal.mondrian:
        text.append(f"Mondrian by {conformal.mondrian}: one threshold per group, so coverage holds within each group.")
        if figures["pooled_groups"]:
            shown = ", ".join(figures["pooled_groups"])
            text.append(f"Groups with too few calibration cases use the pooled threshold: {shown}.")
    if task in {"binary", "multiclass"}:
        text.append(
            "A set of one label is a confident answer; two or more labels ('could be A or B') or none is shown as "
            "'uncertain — refer for review' by meddl predict and the clinicians' page."
        )
    size = {"regression": "Mean width", "survival": "Mean lower bound"}.get(task, "Mean set size")
    size_key = {"regression": "mean_width", "survival": "mean_lower_bound"}.get(task, "mean_set_size")
    if task == "survival":
        text.append(
            "Coverage below counts a case as covered when its follow-up reached its bound: for events that is "
            "exact, for censored cases it can only understate, so the true coverage is at least the figure shown. "
            "meddl predict and the server give each case its bound (survival_lower_bound)."
        )
    columns = ["Test cases", "n", "Coverage (CI)", f"{size} (CI)"]
    if task in {"binary", "multiclass"}:
        columns.append("Uncertain (CI)")
    test = figures["test"]

    def row(label: str, entry: dict[str, Any]) -> list[Any]:
        cells = [label, entry.get("n", 0), _cell(entry, "coverage"), _cell(entry, size_key)]
        if task in {"binary", "multiclass"}:
            cells.append(_cell(entry, "share_uncertain"))
        return cells

    rows = [row("all", test["overall"])]
    if "events" in test:
        rows.append(row("observed events", test["events"]))
    for heading, key in (("class", "per_class"), ("label", "per_label")):
        rows += [row(f"{heading} {name}", entry) for name, entry in test.get(key, {}).items()]
    for column, groups in test.get("per_group", {}).items():
        rows += [row(f"{column} = {name}", entry) for name, entry in groups.items()]
    overall = test["overall"]["coverage"]
    low, high = overall["ci"]
    verdict = (
        f"On the test split the {thing}s held the truth for {overall['value']:.1%} of cases (target {level:g} %; "
        f"{config.evaluate.confidence_level:.0%} CI {low:.1%}–{high:.1%})."
        if low is not None and np.isfinite(low)
        else f"On the test split the {thing}s held the truth for {overall['value']:.1%} of cases (target {level:g} %)."
    )
    text.append(verdict)
    return {
        "id": "conformal",
        "title": "Conformal prediction",
        "text": text,
        "table": {"columns": columns, "rows": rows},
    }

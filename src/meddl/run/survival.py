"""The survival parts of a training run: horizons from the data, the early-stopping metric, and the test
evaluation (concordance, time-dependent AUC, Brier, calibration at each horizon, Kaplan–Meier curves by risk group,
Cox and random-survival-forest baselines with paired differences in C)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from meddl.config import ExperimentConfig
from meddl.evaluate.bootstrap import bootstrap_metrics
from meddl.evaluate.competing import competing_risk_metrics
from meddl.evaluate.survival import (
    calibration_at,
    harrell_c,
    km_by_group,
    logrank_p,
    paired_c_difference,
    risk_groups,
    survival_metrics,
)
from meddl.evaluate.survival_baselines import fit_survival_baseline, predict_survival_baseline
from meddl.train.survival_outputs import SurvivalOutputs

__all__ = [
    "derive_horizons",
    "evaluate_survival",
    "survival_data_summary",
    "survival_subgroup_metrics",
    "survival_validation_metrics",
]


def derive_horizons(time: np.ndarray, event: np.ndarray) -> tuple[list[float], str]:
    """The 25th, 50th and 75th percentiles of the training split's event times (3 significant digits)."""
    events = np.asarray(time, dtype=np.float64)[np.asarray(event) > 0]
    values = sorted({float(f"{q:.3g}") for q in np.quantile(events, [0.25, 0.5, 0.75])})
    return values, f"quartiles of the {len(events)} event times in the training split"


def survival_validation_metrics(state: SurvivalOutputs) -> Callable[[np.ndarray, np.ndarray], dict[str, float]]:
    """Harrell's C of the head's risk on the validation split, from raw outputs (early stopping)."""

    def compute(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        return {"c_index": harrell_c(targets[:, 0], (targets[:, 1] > 0).astype(np.int64), state.risk(outputs))}

    return compute


def _metrics(
    config: ExperimentConfig,
    y_train: np.ndarray,
    y_test: np.ndarray,
    risk: np.ndarray,
    survival: np.ndarray,
    horizons: list[float],
    groups: np.ndarray | None,
) -> dict[str, Any]:
    e = config.evaluate
    return survival_metrics(
        y_train[:, 0],
        (y_train[:, 1] > 0).astype(np.int64),
        y_test[:, 0],
        (y_test[:, 1] > 0).astype(np.int64),
        risk,
        survival,
        horizons,
        groups=groups,
        n_bootstrap=e.bootstrap,
        level=e.confidence_level,
        seed=config.train.seed,
    )


def evaluate_survival(
    config: ExperimentConfig,
    state: SurvivalOutputs,
    *,
    y_train: np.ndarray,
    y_test: np.ndarray,
    test_scores: np.ndarray,
    groups: np.ndarray | None,
    baselines: list[str],
    baseline_data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None,
) -> dict[str, Any]:
    """The model's test metrics with patient-level bootstrap CIs, the figures' data, and each baseline fitted on
    the same training rows, judged the same way and compared with the model in C by a paired bootstrap."""
    parts = state.split(test_scores)
    horizons = state.horizons
    time, event = y_test[:, 0], (y_test[:, 1] > 0).astype(np.int64)
    result = _metrics(config, y_train, y_test, parts["risk"], parts["survival"], horizons, groups)
    used = result["horizons_used"]
    calibration = [
        calibration_at(h, time, event, parts["survival"][:, horizons.index(h)]) for h in horizons if h in used
    ]
    tertile = risk_groups(parts["risk"], 3)
    by_group = km_by_group(time, event, tertile)
    model: dict[str, Any] = {
        "n": len(y_test),
        "events": int(event.sum()),
        "metrics": result["metrics"],
        "survival": {
            "horizons": horizons,
            "horizons_used": used,
            "calibration": calibration,
            "risk_groups": {
                "names": ["lower risk", "middle risk", "higher risk"],
                "curves": by_group,
                "logrank_p": logrank_p(time, event, tertile),
            },
            "causes": state.causes,
            "head": state.head,
        },
    }
    fitted: dict[str, Any] = {}
    comparisons: dict[str, Any] = {}
    warnings = list(result["warnings"])
    if state.competing:  # each cause's concordance and calibration-in-the-large against Aalen–Johansen
        competing = competing_risk_metrics(
            time,
            y_test[:, 1].astype(np.int64),
            parts["cif"],
            horizons,
            state.causes,
            groups=groups,
            n_bootstrap=config.evaluate.bootstrap,
            level=config.evaluate.confidence_level,
            seed=config.train.seed,
        )
        model["metrics"].update(competing["metrics"])
        model["survival"]["competing"] = {"observed": competing["observed"], "predicted": competing["predicted"]}
        warnings += competing["warnings"]
    if baseline_data is not None:
        X_train, y_base, _, X_test = baseline_data
        for name in baselines:
            estimator = fit_survival_baseline(
                name, X_train, y_base[:, 0], (y_base[:, 1] > 0).astype(np.int64), seed=config.train.seed
            )
            risk, survival = predict_survival_baseline(estimator, X_test, horizons)
            base = _metrics(config, y_train, y_test, risk, survival, horizons, groups)
            alpha = getattr(estimator, "meddl_alpha_", None)
            fitted[name] = {"metrics": base["metrics"], **({"penalty": alpha} if alpha else {})}
            difference = paired_c_difference(
                time,
                event,
                parts["risk"],
                risk,
                groups=groups,
                n_bootstrap=config.evaluate.bootstrap,
                level=config.evaluate.confidence_level,
                seed=config.train.seed,
            )
            comparisons[name] = {
                "metric": "c_index",
                "higher_is_better": True,
                "model": result["metrics"]["c_index"]["value"],
                "baseline": base["metrics"]["c_index"]["value"],
                **difference,
            }
    return {
        "split": "test",
        "threshold": None,
        "threshold_rule": None,
        "model": model,
        "baselines": fitted,
        "comparisons": comparisons,
        "warnings": warnings,
    }


def survival_subgroup_metrics(
    config: ExperimentConfig, y: np.ndarray, scores: np.ndarray, groups: np.ndarray | None
) -> dict[str, Any]:
    """Harrell's C with its CI for one subgroup (the report's per-group table)."""
    time, event, risk = y[:, 0], (y[:, 1] > 0).astype(np.int64), np.atleast_2d(scores)[:, 0]

    def compute(rows: np.ndarray) -> dict[str, float]:
        if not event[rows].any():
            return {"c_index": float("nan")}
        return {"c_index": harrell_c(time[rows], event[rows], risk[rows])}

    e = config.evaluate
    return bootstrap_metrics(
        compute, len(y), n_resamples=e.bootstrap, groups=groups, level=e.confidence_level, seed=config.train.seed
    )


def survival_data_summary(target: np.ndarray, splits: np.ndarray, causes: list[str]) -> dict[str, Any]:
    """Events, censored patients and follow-up per split (the report's data section)."""
    out: dict[str, Any] = {}
    for name in ("train", "validation", "test"):
        rows = target[splits == name]
        codes = rows[:, 1].astype(np.int64)
        entry: dict[str, Any] = {
            "n": len(rows),
            "events": int((codes > 0).sum()),
            "censored": int((codes == 0).sum()),
            "median_follow_up": float(np.median(rows[:, 0])) if len(rows) else None,
        }
        if len(causes) > 1:
            entry["events_by_cause"] = {cause: int((codes == k + 1).sum()) for k, cause in enumerate(causes)}
        out[name] = entry
    return {"follow_up": out}

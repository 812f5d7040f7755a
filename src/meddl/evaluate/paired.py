"""Two sets of scores on the same rows, for any task: the headline metric of each and their paired bootstrap
difference (survival: Harrell's C of the risk; the others: :func:`main_metric`), and one set's metric with its CI.

A fused model against each of its inputs alone, and against itself with an input left out, are compared this way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from meddl.evaluate.bootstrap import bootstrap_metrics
from meddl.evaluate.evaluation import compare_to_baseline, evaluate_predictions, main_metric
from meddl.evaluate.survival import harrell_c, paired_c_difference

__all__ = ["metric_with_ci", "paired_comparison", "risk_of"]


def risk_of(scores: np.ndarray) -> np.ndarray:
    """A survival model's risk (the first column of its scores)."""
    scores = np.asarray(scores, dtype=np.float64)
    return scores[:, 0] if scores.ndim == 2 else scores


def paired_comparison(
    task: str,
    y: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    *,
    threshold: float | None = None,
    groups: Any = None,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """``{"metric", "higher_is_better", "model" (A), "baseline" (B), "value" (A − B), "ci", "p_value"}``."""
    if task != "survival":
        return compare_to_baseline(
            task,
            y,
            scores_a,
            scores_b,
            threshold_model=threshold,
            threshold_baseline=threshold,
            groups=groups,
            n_bootstrap=n_bootstrap,
            level=level,
            seed=seed,
        )
    time, event = np.asarray(y)[:, 0], np.asarray(y)[:, 1]
    a, b = risk_of(scores_a), risk_of(scores_b)
    difference = paired_c_difference(time, event, a, b, groups=groups, n_bootstrap=n_bootstrap, level=level, seed=seed)
    return {
        "metric": "c_index",
        "higher_is_better": True,
        "model": harrell_c(time, event, a),
        "baseline": harrell_c(time, event, b),
        **difference,
    }


def metric_with_ci(
    task: str,
    y: np.ndarray,
    scores: np.ndarray,
    *,
    groups: Any = None,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """The task's headline metric (survival: Harrell's C) of ``scores``, ``{"value", "ci"}``."""
    if task != "survival":
        result = evaluate_predictions(task, y, scores, groups=groups, n_bootstrap=n_bootstrap, level=level, seed=seed)
        return dict(result["metrics"][main_metric(task)])
    time, event, risk = np.asarray(y)[:, 0], np.asarray(y)[:, 1], risk_of(scores)
    found = bootstrap_metrics(
        lambda rows: {"c_index": harrell_c(time[rows], event[rows], risk[rows])},
        len(time),
        n_resamples=n_bootstrap,
        groups=groups,
        level=level,
        seed=seed,
    )
    return dict(found["c_index"])

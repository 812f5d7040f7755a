"""Which clinical variables drive a tabular model — for the model as a whole and for each patient.

* Permutation importance (scikit-learn's ``permutation_importance``) on the raw columns of the test split:
  how much the test metric drops when one variable is shuffled. It speaks in the clinic's variables
  (``smoker``, not ``smoker=current``) and covers the whole pipeline, preprocessing included.
* Integrated gradients (``compute_integrated_gradients``) on the encoded features, summed back to the variable
  each came from, with the training-set mean patient as the baseline: a signed contribution per variable per
  case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from meddl.explain.attribution import compute_integrated_gradients

__all__ = [
    "format_top_features",
    "group_attributions",
    "highest_risk_section",
    "integrated_gradients",
    "permutation_importance_table",
    "tabular_integrated_gradients",
]


class _PipelineEstimator:
    """Adapts "raw frame → score" to the estimator interface scikit-learn's permutation importance calls."""

    def __init__(self, predict_fn: Callable[[pd.DataFrame], np.ndarray]) -> None:
        self.predict_fn = predict_fn

    def fit(self, *args: Any) -> _PipelineEstimator:
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_fn(frame)


def permutation_importance_table(
    predict_fn: Callable[[pd.DataFrame], np.ndarray],
    frame: pd.DataFrame,
    target: np.ndarray,
    score_fn: Callable[[np.ndarray, np.ndarray], float],
    *,
    n_repeats: int = 5,
    seed: int = 0,
) -> list[dict[str, float | str]]:
    """Permutation importance of every column of ``frame``.

    Args:
        predict_fn: raw frame → model scores (probabilities or predictions).
        frame: predictors of the evaluation split (raw, before preprocessing).
        target: encoded outcome for those rows.
        score_fn: ``score_fn(target, scores)`` where higher is better (e.g. AUROC, or −RMSE).
        n_repeats: shuffles per column.
        seed: shuffling seed.

    Returns:
        Rows ``{"feature", "importance", "std"}`` sorted by importance, largest first.
    """
    from sklearn.inspection import permutation_importance

    if n_repeats == 0:
        return []
    result = permutation_importance(
        _PipelineEstimator(predict_fn),
        frame,
        target,
        scoring=lambda estimator, X, y: score_fn(y, estimator.predict(X)),
        n_repeats=n_repeats,
        random_state=seed,
    )
    rows: list[dict[str, float | str]] = [
        {"feature": str(column), "importance": float(mean), "std": float(std)}
        for column, mean, std in zip(frame.columns, result.importances_mean, result.importances_std, strict=True)
    ]
    return sorted(rows, key=lambda r: -float(r["importance"]))


def tabular_integrated_gradients(
    model: nn.Module,
    features: np.ndarray,
    baseline: np.ndarray,
    *,
    target_index: np.ndarray | int = 0,
    steps: int = 32,
    batch_size: int = 512,
) -> np.ndarray:
    """Integrated-gradient attributions of each encoded feature, per case (``compute_integrated_gradients``).

    Args:
        model: network mapping (B, F) → (B, outputs); evaluated in eval mode, its mode restored afterwards.
        features: (N, F) encoded features.
        baseline: (F,) reference input (the mean training patient).
        target_index: output index per case (multiclass: the predicted class) or one index for all.
        steps: integration steps.
        batch_size: cases per captum call.

    Returns:
        (N, F) float32 attributions in logit units; each row sums (up to integration error) to
        ``model(x) - model(baseline)`` for its target output. With no cases, (0, F) zeros.
    """
    if len(features) == 0:
        return np.zeros((0, features.shape[1]))
    targets = np.broadcast_to(np.asarray(target_index), (len(features),)).astype(np.int64)
    return compute_integrated_gradients(model, features, baseline, target=targets, n_steps=steps, batch_size=batch_size)


integrated_gradients = tabular_integrated_gradients
"""The former name of `tabular_integrated_gradients` (``meddl.explain.integrated_gradients``), kept for callers."""


def group_attributions(attributions: np.ndarray, source_columns: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Sum encoded-feature attributions into the clinical variable each came from.

    ``smoker=current``, ``smoker=never`` and ``smoker__missing`` all add up to ``smoker``.

    Returns:
        (N, V) attributions per variable and the V variable names in first-seen order.
    """
    names = list(dict.fromkeys(source_columns))
    position = {name: i for i, name in enumerate(names)}
    grouped = np.zeros((attributions.shape[0], len(names)), dtype=np.float64)
    for j, source in enumerate(source_columns):
        grouped[:, position[source]] += attributions[:, j]
    return grouped, names


def format_top_features(
    grouped: np.ndarray, names: Sequence[str], frame: pd.DataFrame | None = None, top_k: int = 5
) -> list[str]:
    """One line per case: the ``top_k`` variables by absolute contribution, with their values and sign.

    Example: ``glucose=182 (+1.21); age=67 (+0.40); bmi=22.1 (-0.31)``.
    """
    lines = []
    for i, row in enumerate(grouped):
        order = np.argsort(-np.abs(row))[:top_k]
        parts = []
        for j in order:
            name = names[j]
            value = ""
            if frame is not None and name in frame.columns:
                cell = frame.iloc[i][name]
                value = "=missing" if pd.isna(cell) else f"={cell:g}" if isinstance(cell, float) else f"={cell}"
            parts.append(f"{name}{value} ({row[j]:+.3f})")
        lines.append("; ".join(parts))
    return lines


def highest_risk_section(
    ids: Sequence[str], risk: np.ndarray, grouped: np.ndarray, names: Sequence[str], frame: pd.DataFrame, n: int = 10
) -> dict:
    """The report section "what drove each patient's risk": the ``n`` highest-risk cases with their five largest
    contributions (``grouped``: per-variable attributions to the risk, rows aligned with ``ids``/``frame``)."""
    order = np.argsort(-np.asarray(risk))[:n]
    lines = format_top_features(grouped[order], names, frame.iloc[order])
    return {
        "id": "risk-cases",
        "title": "What drove each patient's risk",
        "text": f"The {len(order)} highest-risk test patients and the five variables that moved their risk most "
        "(integrated gradients of the risk; positive: raises it).",
        "table": {
            "columns": ["Patient (row)", "Risk score", "Largest contributions"],
            "rows": [[str(ids[i]), f"{float(risk[i]):.3f}", line] for i, line in zip(order, lines, strict=True)],
        },
    }

"""Shift between training data and new data (external evaluation): how far each measure moved.

Every row is ``{"column", "kind", "train", "new", "score", "measure"}``; rows are sorted largest shift first. A
modality chooses what to measure (a table's variables, an image's intensity and size, a sequence's GC content); the
scores are the standardised mean difference for numbers and the total variation distance for categories.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["describe", "far_outside", "mean_shift", "table_shift"]


def describe(values: Mapping[str, np.ndarray | list[float]]) -> dict[str, dict[str, float]]:
    """Mean, standard deviation, count and 5th/95th percentiles of each per-sample measure (what a bundle keeps of
    its training data: summaries, never one sample's value)."""
    out = {}
    for name, array in values.items():
        numbers = np.asarray(array, dtype=np.float64)
        numbers = numbers[np.isfinite(numbers)]
        if len(numbers):
            low, high = np.percentile(numbers, [5.0, 95.0])
            out[name] = {
                "mean": float(numbers.mean()),
                "std": float(numbers.std()),
                "n": len(numbers),
                "q05": float(low),
                "q95": float(high),
            }
    return out


FAR_OUTSIDE_WIDTHS = 3.0
"""How far beyond the training 5th–95th percentile range a value must lie, in widths of that range, to be noted."""


def far_outside(values: np.ndarray, low: float, high: float, centre: float = 0.0) -> np.ndarray:
    """Which values lie far outside the training range — a typo, another unit, a device fault — not merely rare:
    beyond its 5th–95th percentile range ``[low, high]`` by more than three widths of that range. (Clinical values
    have long tails: a lactate of 7 or a potassium of 2.6 against a training 0.8–3.2 or 3.7–4.9 is severe, not
    wrong, and is not noted; an age of 400 or a creatinine in µmol/L against mg/dL training is.)"""
    width = FAR_OUTSIDE_WIDTHS * (high - low if high > low else max(abs(centre), 1.0))
    numbers = np.asarray(values, dtype=np.float64)
    return (numbers < low - width) | (numbers > high + width)


def mean_shift(
    train: Mapping[str, Mapping[str, float]], new: Mapping[str, Mapping[str, float]]
) -> list[dict[str, Any]]:
    """Standardised mean difference of each measure described in both ``train`` and ``new`` (see :func:`describe`)."""
    rows = []
    for name, stats in train.items():
        if name not in new or not stats.get("n") or not new[name].get("n"):
            continue
        std = float(stats["std"]) or 1.0
        rows.append(
            {
                "column": name,
                "kind": "numeric",
                "train": f"mean {stats['mean']:.4g}",
                "new": f"mean {new[name]['mean']:.4g}",
                "score": abs(float(new[name]["mean"]) - float(stats["mean"])) / std,
                "measure": "standardised mean difference",
            }
        )
    return sorted(rows, key=lambda r: -r["score"])


def table_shift(column_profile: dict[str, Any], features: pd.DataFrame) -> list[dict[str, Any]]:
    """How far each variable moved from the training data: standardised mean difference (numeric) or
    total variation distance between level frequencies (categorical), plus the change in missingness."""
    rows = []
    for column, profile in column_profile.items():
        if column not in features.columns:
            continue
        values = features[column]
        missing_new = float(values.isna().mean())
        if profile["kind"] == "numeric":
            new = pd.to_numeric(values, errors="coerce").dropna()
            std = float(profile["std"]) or 1.0
            mean_new = float(new.mean()) if len(new) else float("nan")
            rows.append(
                {
                    "column": column,
                    "kind": "numeric",
                    "train": f"mean {float(profile['mean']):.4g}",
                    "new": f"mean {mean_new:.4g}",
                    "score": abs(mean_new - float(profile["mean"])) / std,
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


def _level(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)

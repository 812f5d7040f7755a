"""Training distribution of each input column (``column_profile_``), kept for shift detection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["PROFILE_PERCENTILES", "level_profile", "numeric_profile"]

PROFILE_PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)
"""Percentiles kept for a numeric column."""


def numeric_profile(values: np.ndarray) -> dict[str, Any]:
    """Mean, standard deviation, percentiles and missing rate of a numeric column.

    Args:
        values: (n,) float64 training values, NaN for missing, at least one observed.

    Returns:
        ``{"kind": "numeric", "mean", "std", "quantiles", "missing_rate"}`` (plain floats).
    """
    missing = np.isnan(values)
    observed = values[~missing]
    return {
        "kind": "numeric",
        "mean": float(observed.mean()),
        "std": float(observed.std()),
        "quantiles": [float(q) for q in np.percentile(observed, PROFILE_PERCENTILES)],
        "missing_rate": float(missing.mean()),
    }


def level_profile(codes: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Level frequencies and missing rate of a coded binary or categorical column.

    Args:
        codes: (n,) training codes: the index of the level in `labels`, NaN for missing.
        labels: The text form of each level.

    Returns:
        ``{"kind": "categorical", "frequencies": {label: share of the non-missing rows}, "missing_rate"}``.
    """
    counts = [int(np.sum(codes == k)) for k in range(len(labels))]
    n_present = sum(counts)
    return {
        "kind": "categorical",
        "frequencies": {label: count / n_present for label, count in zip(labels, counts, strict=True)},
        "missing_rate": float(np.isnan(codes).mean()),
    }

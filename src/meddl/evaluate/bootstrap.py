"""Percentile bootstrap confidence intervals, by row or by patient (cluster bootstrap)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from meddl.errors import MedDLError
from meddl.evaluate.metrics import _real_number

__all__ = ["bootstrap_metrics", "paired_bootstrap_difference"]

MetricFunction = Callable[[np.ndarray], dict[str, float]]


def check_bootstrap_arguments(n_bootstrap: object, level: object) -> None:
    """A caller's resample count (a non-negative integer) and CI level (strictly between 0 and 1), checked before
    any work, with errors naming the argument."""
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int | np.integer) or n_bootstrap < 0:
        raise MedDLError(f"n_bootstrap must be a non-negative integer, got {n_bootstrap!r}")
    coverage = _real_number(level)
    if coverage is None or not 0.0 < coverage < 1.0:
        raise MedDLError(f"level must be strictly between 0 and 1, got {level!r}")


def _validate(n_samples: int, n_resamples: int, level: float, groups: object | None) -> np.ndarray | None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer) or n_samples < 1:
        raise MedDLError(f"n_samples must be a positive integer, got {n_samples!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer) or n_resamples < 0:
        raise MedDLError(f"n_resamples must be a non-negative integer, got {n_resamples!r}")
    coverage = _real_number(level)
    if coverage is None or not 0.0 < coverage < 1.0:
        raise MedDLError(f"level must be a number strictly between 0 and 1, got {level!r}")
    if groups is None:
        return None
    group_array = np.asarray(groups)
    if group_array.ndim != 1 or group_array.shape[0] != n_samples:
        raise MedDLError(
            f"groups must be one patient id per sample, shape ({n_samples},), got shape {group_array.shape}"
        )
    if group_array.dtype.kind == "f" and np.isnan(group_array).any():
        raise MedDLError(f"groups has {int(np.isnan(group_array).sum())} missing patient ids")
    return group_array


def _resample_indices(n_samples: int, n_resamples: int, groups: np.ndarray | None, seed: int) -> Iterator[np.ndarray]:
    """Yield the row indices of each bootstrap resample, deterministically for ``seed``.

    With ``groups``, patients are drawn with replacement and every row of a drawn patient is
    taken, so rows of one patient never end up split between "in" and "out" of a resample.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        for _ in range(n_resamples):
            yield rng.integers(0, n_samples, size=n_samples)
        return
    _, patient_of_row = np.unique(groups, return_inverse=True)
    rows_by_patient = np.argsort(patient_of_row, kind="stable")
    rows_per_patient = np.bincount(patient_of_row)
    first_row = np.r_[0, np.cumsum(rows_per_patient)[:-1]]
    n_patients = rows_per_patient.size
    for _ in range(n_resamples):
        drawn = rng.integers(0, n_patients, size=n_patients)
        sizes = rows_per_patient[drawn]
        # offset of every output row inside its patient's block: 0, 1, ..., size-1 per drawn patient
        block_start = np.repeat(np.cumsum(sizes) - sizes, sizes)
        within = np.arange(block_start.size) - block_start
        yield rows_by_patient[np.repeat(first_row[drawn], sizes) + within]


def _percentile_interval(values: np.ndarray, level: float) -> list[float]:
    """Percentile interval over finite values; [nan, nan] if fewer than half are finite."""
    finite = values[np.isfinite(values)]
    if values.size == 0 or finite.size < values.size / 2:
        return [math.nan, math.nan]
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return [float(low), float(high)]


def _as_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def bootstrap_metrics(
    compute: MetricFunction,
    n_samples: int,
    *,
    n_resamples: int = 1000,
    groups: object | None = None,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, dict]:
    """Point values and percentile bootstrap confidence intervals of a set of metrics.

    Args:
        compute: Function of an index array (rows of the evaluation set, possibly repeated)
            returning ``{metric name: value}``.
        n_samples: Number of rows in the evaluation set.
        n_resamples: Number of bootstrap resamples; 0 gives ``[nan, nan]`` intervals.
        groups: Optional patient id per row; when given, patients are resampled (cluster
            bootstrap) and all rows of each drawn patient are used.
        level: Coverage of the interval, e.g. 0.95.
        seed: Seed of the resampling; the same seed gives the same intervals.

    Returns:
        ``{name: {"value": float, "ci": [low, high]}}`` with plain Python floats. Resamples where
        a metric is nan (e.g. AUROC on a one-class resample) are ignored; if fewer than half of
        the resamples are finite the interval is ``[nan, nan]``.

    Raises:
        MedDLError: If ``n_samples``, ``n_resamples``, ``level`` or ``groups`` are invalid.
    """
    group_array = _validate(n_samples, n_resamples, level, groups)
    point = {name: _as_float(value) for name, value in compute(np.arange(n_samples)).items()}
    names = list(point)
    draws = np.full((n_resamples, len(names)), np.nan)
    for row, indices in enumerate(_resample_indices(n_samples, n_resamples, group_array, seed)):
        result = compute(indices)
        draws[row] = [_as_float(result.get(name, math.nan)) for name in names]
    return {
        name: {"value": point[name], "ci": _percentile_interval(draws[:, column], level)}
        for column, name in enumerate(names)
    }


def paired_bootstrap_difference(
    compute_a: MetricFunction,
    compute_b: MetricFunction,
    n_samples: int,
    metric: str,
    *,
    n_resamples: int = 1000,
    groups: object | None = None,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Bootstrap the difference ``metric(a) - metric(b)`` of two models on the same rows.

    Both models are scored on the very same resamples, so the interval reflects the paired
    design (the variation due to the sample is shared and largely cancels).

    Args:
        compute_a: Metric function of model A (see :func:`bootstrap_metrics`).
        compute_b: Metric function of model B.
        n_samples: Number of rows in the evaluation set.
        metric: Name of the metric to compare; must be a key of both functions' results.
        n_resamples: Number of bootstrap resamples.
        groups: Optional patient id per row for a cluster bootstrap.
        level: Coverage of the interval.
        seed: Seed of the resampling.

    Returns:
        ``{"value": a - b, "ci": [low, high], "p_value": p}`` where ``p`` is the two-sided
        bootstrap p-value: twice the fraction of resample differences on the other side of 0
        from the observed difference (at or beyond 0), capped at 1. ``p`` is 1.0 for an observed
        difference of exactly 0 and nan when too few resamples are finite.

    Raises:
        MedDLError: If ``metric`` is missing from either result or arguments are invalid.
    """
    group_array = _validate(n_samples, n_resamples, level, groups)
    everything = np.arange(n_samples)
    point_a, point_b = compute_a(everything), compute_b(everything)
    for label, point in (("compute_a", point_a), ("compute_b", point_b)):
        if metric not in point:
            raise MedDLError(f"metric {metric!r} is not returned by {label}; it returns {sorted(point)}")
    observed = _as_float(point_a[metric]) - _as_float(point_b[metric])
    differences = np.full(n_resamples, np.nan)
    for row, indices in enumerate(_resample_indices(n_samples, n_resamples, group_array, seed)):
        differences[row] = _as_float(compute_a(indices).get(metric, math.nan)) - _as_float(
            compute_b(indices).get(metric, math.nan)
        )
    interval = _percentile_interval(differences, level)
    finite = differences[np.isfinite(differences)]
    if math.isnan(interval[0]) or math.isnan(observed):
        p_value = math.nan
    elif observed > 0:
        p_value = min(1.0, 2.0 * float(np.mean(finite <= 0)))
    elif observed < 0:
        p_value = min(1.0, 2.0 * float(np.mean(finite >= 0)))
    else:
        p_value = 1.0
    return {"value": observed, "ci": interval, "p_value": p_value}

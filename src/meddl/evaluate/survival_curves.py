"""Kaplan–Meier curves, the censoring distribution, the log-rank test and risk groups (scikit-survival's
definitions; see :mod:`meddl.evaluate.survival` for the conventions)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from meddl.errors import MedDLError
from meddl.evaluate._survival_inputs import (
    _EPS,
    _NAN,
    _Z95,
    _outcome,
    _positive_int,
    _require_events,
    _scores,
    _step_index,
    _step_value,
)

__all__ = ["kaplan_meier", "km_at", "km_by_group", "logrank_p", "risk_groups"]


def _km_table(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unique times, events and number at risk at each, and the Kaplan–Meier survival just after each."""
    unique_time, position = np.unique(time, return_inverse=True)
    position = position.ravel()
    total = np.bincount(position, minlength=unique_time.size)
    deaths = np.bincount(position, weights=event.astype(np.float64), minlength=unique_time.size)
    at_risk = (time.size - np.cumsum(total) + total).astype(np.float64)
    hazard = np.divide(deaths, at_risk, out=np.zeros(unique_time.size), where=deaths != 0)
    return unique_time, deaths, at_risk, np.cumprod(1.0 - hazard)


def _censoring_survival(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan–Meier of the censoring distribution G (sksurv's ``reverse=True``): step times and values."""
    unique_time, position = np.unique(time, return_inverse=True)
    position = position.ravel()
    total = np.bincount(position, minlength=unique_time.size).astype(np.float64)
    deaths = np.bincount(position, weights=event.astype(np.float64), minlength=unique_time.size)
    censored = total - deaths
    remaining = time.size - np.cumsum(total) + total - deaths  # at risk of censoring once the tied events are out
    hazard = np.divide(censored, remaining, out=np.zeros(unique_time.size), where=censored != 0)
    return unique_time, np.cumprod(1.0 - hazard)


def _km_at(time: np.ndarray, event: np.ndarray, at: np.ndarray) -> np.ndarray:
    unique_time, _, _, surv = _km_table(time, event)
    value = _step_value(unique_time, surv, at)
    beyond = at > unique_time[-1]
    value[beyond] = 0.0 if surv[-1] == 0 else _NAN
    return value


def kaplan_meier(time: object, event: object) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan–Meier estimate of the survival function, as ``sksurv.nonparametric.kaplan_meier_estimator``.

    Args:
        time: Follow-up times, ``(n,)``, > 0.
        event: Event codes, ``(n,)``: 0 censored, positive = event.

    Returns:
        ``(event_times, survival)``: the unique event times, increasing, and the survival just after each (the
        curve is 1 before the first). Both are empty when no row has an event.

    Raises:
        MedDLError: On mismatched lengths or invalid times or event codes.
    """
    follow_up, status = _outcome(time, event, "time", "event")
    unique_time, deaths, _, surv = _km_table(follow_up, status)
    steps = deaths > 0
    return unique_time[steps], surv[steps]


def km_at(time: object, event: object, at: object) -> np.ndarray:
    """Kaplan–Meier survival at given times.

    Args:
        time: Follow-up times, ``(n,)``, > 0.
        event: Event codes, ``(n,)``: 0 censored, positive = event.
        at: Times to evaluate at, ``(m,)``, finite.

    Returns:
        ``(m,)`` survival: the right-continuous step (a drop at t counts at t), 1 before the first event. Past the
        last follow-up the curve is unknown: nan there, or 0 if it already reached 0. Never extrapolated.

    Raises:
        MedDLError: On mismatched lengths or invalid times, event codes or ``at``.
    """
    follow_up, status = _outcome(time, event, "time", "event")
    points = _scores(at, "at")
    return _km_at(follow_up, status, points)


def _km_with_ci(time: np.ndarray, event: np.ndarray, horizon: float) -> tuple[float, float, float]:
    """Kaplan–Meier survival at ``horizon`` with its 95% CI (Greenwood variance, log-log transform as sksurv)."""
    unique_time, deaths, at_risk, surv = _km_table(time, event)
    if horizon > unique_time[-1]:
        return (0.0, 0.0, 0.0) if surv[-1] == 0 else (_NAN, _NAN, _NAN)
    k = int(_step_index(unique_time, np.array([horizon]))[0])
    if k < 0:
        return 1.0, 1.0, 1.0
    value = float(surv[k])
    if value <= _EPS:
        return value, 0.0, 0.0
    terms = np.divide(
        deaths, at_risk * (at_risk - deaths), out=np.zeros(deaths.size), where=(deaths != 0) & (at_risk != deaths)
    )
    sigma = math.sqrt(float(terms[: k + 1].sum()))
    log_s = math.log(value)
    theta = sigma / log_s if log_s < -_EPS else 0.0
    low = math.exp(math.exp(-_Z95 * theta) * log_s)
    high = math.exp(math.exp(_Z95 * theta) * log_s)
    return value, low, high


# --------------------------------------------------------------------------- log-rank and risk groups


def _group_labels(groups: object, n: int, name: str = "groups") -> tuple[np.ndarray, np.ndarray]:
    raw = np.asarray(groups)
    if raw.ndim != 1 or raw.shape[0] != n:
        raise MedDLError(f"{name} must hold one group label per row, shape ({n},), got shape {raw.shape}")
    if raw.dtype.kind == "f" and np.isnan(raw).any():
        raise MedDLError(f"{name} has {int(np.isnan(raw).sum())} missing labels")
    try:
        labels, index = np.unique(raw, return_inverse=True)
    except TypeError as exc:
        raise MedDLError(f"{name} must hold comparable labels (all numbers or all strings): {exc}") from exc
    return labels, index.ravel()


def logrank_p(time: object, event: object, groups: object) -> float:
    """p-value of the k-group log-rank test, as ``sksurv.compare.compare_survival``.

    Args:
        time: Follow-up times, ``(n,)``, > 0.
        event: Event codes, ``(n,)``: 0 censored, positive = event.
        groups: Group label per row, ``(n,)``, at least two distinct labels.

    Returns:
        The chi-squared (k - 1 degrees of freedom) p-value of "all groups share one survival curve"; nan if the
        test's covariance is degenerate (e.g. a group has nobody at risk at any event time).

    Raises:
        MedDLError: On mismatched lengths, invalid times or event codes, fewer than two groups or no event.
    """
    follow_up, status = _outcome(time, event, "time", "event")
    labels, group = _group_labels(groups, follow_up.size)
    if labels.size < 2:
        raise MedDLError(f"groups must contain at least two groups, got only {labels.tolist()}")
    _require_events(status, "event")
    k = labels.size
    unique_time, position = np.unique(follow_up, return_inverse=True)
    cell = position.ravel() * k + group
    m = unique_time.size
    counts = np.bincount(cell, minlength=m * k).reshape(m, k).astype(np.float64)
    deaths = np.bincount(cell, weights=status.astype(np.float64), minlength=m * k).reshape(m, k)
    at_risk = counts[::-1].cumsum(axis=0)[::-1]
    total_deaths = deaths.sum(axis=1)
    total_at_risk = at_risk.sum(axis=1)
    keep = total_deaths > 0
    at_risk, total_deaths, total_at_risk = at_risk[keep], total_deaths[keep], total_at_risk[keep]
    observed = deaths.sum(axis=0)
    expected = (at_risk * (total_deaths / total_at_risk)[:, None]).sum(axis=0)
    multiplier = np.divide(
        total_deaths * (total_at_risk - total_deaths),
        total_at_risk * (total_at_risk - 1.0),
        out=np.zeros(total_deaths.size),
        where=total_at_risk > 1,
    )
    covariance = np.diag((at_risk * multiplier[:, None]).sum(axis=0)) - np.einsum(
        "t,ti,tj->ij", multiplier / total_at_risk, at_risk, at_risk
    )
    df = k - 1
    difference = observed[:df] - expected[:df]
    try:
        chi_square = float(np.linalg.solve(covariance[:df, :df], difference) @ difference)
    except np.linalg.LinAlgError:
        return _NAN
    return float(stats.chi2.sf(chi_square, df))


def risk_groups(risk: object, n_groups: int = 3) -> np.ndarray:
    """Split rows into risk groups at the quantiles of the risk score (tertiles by default).

    Args:
        risk: Risk scores, ``(n,)``, higher = earlier event.
        n_groups: Number of quantile groups, >= 2.

    Returns:
        ``(n,)`` integer labels, 0 = lowest risk. Rows with equal risk share a group, so heavy ties can leave
        fewer than ``n_groups`` groups (labels stay consecutive from 0).

    Raises:
        MedDLError: If ``risk`` is not a finite 1-D array or ``n_groups`` is not an integer >= 2.
    """
    score = _scores(risk, "risk")
    count = _positive_int(n_groups, "n_groups", 2)
    edges = np.quantile(score, np.linspace(0.0, 1.0, count + 1)[1:-1])
    label = np.searchsorted(edges, score, side="left")
    _, consecutive = np.unique(label, return_inverse=True)
    return consecutive.ravel().astype(np.int64)


def _plain(label: object) -> object:
    return label.item() if isinstance(label, np.generic) else label


def km_by_group(time: object, event: object, groups: object) -> dict:
    """Kaplan–Meier curve of each group, ready for a plot.

    Args:
        time: Follow-up times, ``(n,)``, > 0.
        event: Event codes, ``(n,)``: 0 censored, positive = event.
        groups: Group label per row, ``(n,)`` (e.g. from :func:`risk_groups`).

    Returns:
        ``{label: {"time": [...], "survival": [...], "n": int, "events": int}}`` in label order. The curve starts at
        ``(0, 1)``, has one point per event time (the survival just after it) and, when the group's follow-up goes
        on past its last event, ends at its last follow-up time with the last value.

    Raises:
        MedDLError: On mismatched lengths or invalid times, event codes or groups.
    """
    follow_up, status = _outcome(time, event, "time", "event")
    labels, group = _group_labels(groups, follow_up.size)
    curves: dict = {}
    for k, label in enumerate(labels):
        rows = group == k
        unique_time, deaths, _, surv = _km_table(follow_up[rows], status[rows])
        steps = deaths > 0
        times = [0.0, *unique_time[steps].tolist()]
        values = [1.0, *surv[steps].tolist()]
        if unique_time[-1] > times[-1]:
            times.append(float(unique_time[-1]))
            values.append(values[-1])
        curves[_plain(label)] = {
            "time": times,
            "survival": values,
            "n": int(rows.sum()),
            "events": int(status[rows].sum()),
        }
    return curves


# --------------------------------------------------------------------------- calibration

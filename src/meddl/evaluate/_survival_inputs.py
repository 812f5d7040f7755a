"""Input checks and small shared helpers of the survival and competing-risks metrics (``time``, ``event``,
scores, horizons, probabilities as :mod:`meddl.evaluate.survival` describes them)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from meddl.errors import MedDLError
from meddl.evaluate.metrics import _as_1d, _check_finite, _check_same_length

_TIED_TOL = 1e-8  # risks this close count as tied, as in sksurv
_PAIR_BLOCK = 1 << 21  # (event, row) pairs compared per broadcast block of the concordance count
_MIN_BIN_SIZE = 5
_EPS = float(np.finfo(np.float64).eps)
_Z95 = float(stats.norm.isf(0.025))  # two-sided 95% normal quantile of the Kaplan–Meier CIs
_NAN = math.nan


def _h(horizon: float) -> str:
    """Compact text of a horizon for metric names: ``1826`` for 1826.0, ``2.5`` for 2.5."""
    value = float(horizon)
    return str(int(value)) if value.is_integer() else repr(value)


# --------------------------------------------------------------------------- validation


def _times(values: object, name: str) -> np.ndarray:
    raw = _as_1d(values, name)
    try:
        time = raw.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise MedDLError(f"{name} must hold numeric follow-up times, got dtype {raw.dtype}") from exc
    bad = ~(np.isfinite(time) & (time > 0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise MedDLError(
            f"{name} must be finite and > 0; {int(bad.sum())} values are not, "
            f"the first at index {first}: {float(time[first])!r}"
        )
    return time


def _events(values: object, name: str) -> np.ndarray:
    raw = _as_1d(values, name)
    try:
        codes = raw.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise MedDLError(f"{name} must hold event codes (0 = censored, 1 = event), got dtype {raw.dtype}") from exc
    bad = ~np.isfinite(codes) | (codes < 0) | (codes != np.round(codes))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise MedDLError(
            f"{name} must hold event codes 0 (censored) or a positive integer (event); {int(bad.sum())} values are "
            f"not, the first at index {first}: {float(codes[first])!r}"
        )
    return codes > 0


def _scores(values: object, name: str) -> np.ndarray:
    raw = _as_1d(values, name)
    try:
        score = raw.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise MedDLError(f"{name} must be numeric, got dtype {raw.dtype}") from exc
    _check_finite(score, name)
    return score


def _outcome(time: object, event: object, time_name: str, event_name: str) -> tuple[np.ndarray, np.ndarray]:
    follow_up = _times(time, time_name)
    status = _events(event, event_name)
    _check_same_length(follow_up, status, time_name, event_name)
    return follow_up, status


def _require_events(event: np.ndarray, where: str) -> None:
    if not event.any():
        raise MedDLError(f"too few events: 0 events in {where}; survival metrics need at least one event")


def _horizons(values: object) -> np.ndarray:
    horizons = _times(values, "horizons")
    if horizons.size > 1 and not np.all(np.diff(horizons) > 0):
        raise MedDLError(f"horizons must be strictly increasing, got {horizons.tolist()}")
    return horizons


def _probabilities(values: object, name: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        prob = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MedDLError(f"{name} must hold survival probabilities: {exc}") from exc
    if prob.shape != shape:
        raise MedDLError(f"{name} must have shape {shape}, got shape {prob.shape}")
    bad = ~(np.isfinite(prob) & (prob >= 0.0) & (prob <= 1.0))
    if bad.any():
        first = np.unravel_index(int(np.flatnonzero(bad.ravel())[0]), shape)
        where = ", ".join(str(int(k)) for k in first)
        raise MedDLError(
            f"{name} must hold probabilities in [0, 1]; {int(bad.sum())} values are not, "
            f"the first at index ({where}): {float(prob[first])!r}"
        )
    return prob


def _positive_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise MedDLError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- concordance


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else _NAN


def _step_index(knots: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Index of the step holding at ``at`` (-1 before the first knot); a knot within eps counts as reached."""
    index = np.searchsorted(knots, at, side="left")
    reached = np.abs(knots[np.minimum(index, knots.size - 1)] - at) < _EPS
    return np.where((index < knots.size) & reached, index, index - 1)


def _step_value(knots: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Right-continuous step function: ``values[k]`` on ``[knots[k], knots[k+1])``, 1 before the first knot."""
    index = _step_index(knots, at)
    return np.where(index >= 0, values[np.maximum(index, 0)], 1.0)

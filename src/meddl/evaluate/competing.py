"""Competing-risks evaluation: Aalen–Johansen cumulative incidence, cause-specific concordance, calibration.

Conventions shared by every function:

* ``time``: follow-up time per row, ``(n,)``, finite and > 0.
* ``event``: integer code per row, ``(n,)``: ``0`` = censored, ``k`` in ``1..K`` = an event of cause k.
* ``cif``: predicted cumulative incidence ``F_k(h | x)``, ``(n, K, H)``: row, cause (cause k at index k - 1),
  horizon (one per entry of the strictly increasing ``horizons``). A patient's incidences sum to at most 1 at
  every horizon.

The Aalen–Johansen estimator is checked against ``sksurv.nonparametric.cumulative_incidence_competing_risks`` in
``tests/evaluate/test_competing.py`` (on scikit-survival's BMT and CGVHD data and on a synthetic set with tied
times). As in :mod:`meddl.evaluate.survival`, nothing is extrapolated past the last follow-up: such values are nan
or the horizon is left out with a warning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from meddl.errors import MedDLError
from meddl.evaluate._survival_inputs import (
    _PAIR_BLOCK,
    _TIED_TOL,
    _h,
    _horizons,
    _positive_int,
    _probabilities,
    _ratio,
    _scores,
    _step_index,
    _times,
)
from meddl.evaluate.bootstrap import bootstrap_metrics, check_bootstrap_arguments
from meddl.evaluate.metrics import _as_1d, _check_same_length

__all__ = ["aalen_johansen", "aj_at", "cause_c_index", "competing_risk_metrics"]

_SUM_TOL = 1e-6  # a patient's cumulative incidences may sum to at most 1 + this at a horizon
_NAN = math.nan

MetricFunction = Callable[[np.ndarray], dict[str, float]]


# --------------------------------------------------------------------------- validation


def _codes(values: object, name: str, n_causes: int | None) -> np.ndarray:
    """Integer event codes, 0 (censored) to ``n_causes`` (any positive integer when ``n_causes`` is None)."""
    raw = _as_1d(values, name)
    top = "K" if n_causes is None else str(n_causes)
    wanted = f"codes 0 (censored) to {top} (an event of that cause)"
    try:
        codes = raw.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise MedDLError(f"{name} must hold integer {wanted}, got dtype {raw.dtype}") from exc
    bad = ~np.isfinite(codes) | (codes < 0) | (codes != np.round(codes))
    if n_causes is not None:
        bad |= codes > n_causes
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise MedDLError(
            f"{name} must hold integer {wanted}; {int(bad.sum())} values are not, "
            f"the first at index {first}: {float(codes[first])!r}"
        )
    return codes.astype(np.int64)


def _outcome(time: object, event: object, n_causes: int | None) -> tuple[np.ndarray, np.ndarray]:
    follow_up = _times(time, "time")
    codes = _codes(event, "event", n_causes)
    _check_same_length(follow_up, codes, "time", "event")
    return follow_up, codes


def _cause_names(causes: object) -> list[str]:
    if isinstance(causes, str) or not isinstance(causes, Sequence) or not causes:
        raise MedDLError(f"causes must be a non-empty list of cause names, one per event code 1..K, got {causes!r}")
    names = list(causes)
    for position, name in enumerate(names, start=1):
        if not isinstance(name, str) or not name.strip():
            raise MedDLError(f"causes must hold non-empty strings; cause {position} is {name!r}")
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise MedDLError(f"causes must be distinct; repeated: {repeated}")
    return names


def _incidences(values: object, shape: tuple[int, int, int], horizons: np.ndarray) -> np.ndarray:
    cif = _probabilities(values, "cif", shape)
    total = cif.sum(axis=1)  # (n, H)
    over = total > 1.0 + _SUM_TOL
    if over.any():
        row, column = (int(k) for k in np.argwhere(over)[0])
        raise MedDLError(
            f"cif of a patient must sum to at most 1 over the causes; {int(over.sum())} (row, horizon) cells do not, "
            f"the first row {row} at horizon {_h(horizons[column])}: sum {float(total[row, column])!r}"
        )
    return cif


# --------------------------------------------------------------------------- Aalen–Johansen


def _aj_table(
    time: np.ndarray, event: np.ndarray, n_causes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unique times, events of any cause at each, all-cause survival and cumulative incidence ``(K, m)`` after each.

    ``F_k(t) = sum_{s <= t} S(s-) d_k(s) / n(s)`` with ``S`` the all-cause Kaplan–Meier survival, ``d_k(s)`` the
    cause-k events at s and ``n(s)`` the rows still at risk (at a tied time, events happen before censorings).
    """
    unique_time, position = np.unique(time, return_inverse=True)
    position = position.ravel()
    m = unique_time.size
    width = n_causes + 1
    counts = np.bincount(position * width + event, minlength=m * width).reshape(m, width).astype(np.float64)
    total = counts.sum(axis=1)
    deaths = counts[:, 1:]
    any_deaths = deaths.sum(axis=1)
    at_risk = time.size - np.cumsum(total) + total
    survival = np.cumprod(1.0 - any_deaths / at_risk)
    before = np.r_[1.0, survival[:-1]]
    cif = np.cumsum(deaths / at_risk[:, None] * before[:, None], axis=0).T
    return unique_time, any_deaths, survival, np.ascontiguousarray(cif)


def _aj_at(time: np.ndarray, event: np.ndarray, n_causes: int, at: np.ndarray) -> np.ndarray:
    """``(K, len(at))`` right-continuous step of the Aalen–Johansen curves; nan past the last follow-up."""
    unique_time, _, survival, cif = _aj_table(time, event, n_causes)
    index = _step_index(unique_time, at)
    value = np.where(index >= 0, cif[:, np.maximum(index, 0)], 0.0)
    if survival[-1] > 0:  # someone is still event-free at the last follow-up: the curves go on unobserved
        value[:, at > unique_time[-1]] = _NAN
    return value


def aalen_johansen(time: object, event: object, n_causes: int) -> tuple[np.ndarray, np.ndarray]:
    """Aalen–Johansen estimate of the cumulative incidence of each cause.

    Matches ``sksurv.nonparametric.cumulative_incidence_competing_risks(event, time)``, whose return layout differs:
    sksurv returns ``(times, cum_incidence)`` with ``times`` every unique follow-up time (censoring-only times too,
    where no curve moves) and ``cum_incidence`` of shape ``(n_risks + 1, len(times))``, whose row 0 is the total
    incidence of any cause (``1 -`` the all-cause Kaplan–Meier) and rows ``1..n_risks`` the causes, with
    ``n_risks = event.max()`` (a cause above the largest observed code has no row). Here only the event times are
    kept, there is no total row (it is ``cif.sum(axis=0)``), and every one of the ``n_causes`` causes has a row.

    Args:
        time: Follow-up times, ``(n,)``, > 0.
        event: Event codes, ``(n,)``: 0 censored, k in ``1..n_causes`` an event of cause k.
        n_causes: Number of causes K, >= 1.

    Returns:
        ``(event_times, cif)``: the unique times at which an event of any cause happened, increasing, ``(T,)``, and
        the cumulative incidence just after each, ``(K, T)``, cause k in row k - 1 (each curve is 0 before the
        first event). Empty (``(0,)`` and ``(K, 0)``) when no row has an event.

    Raises:
        MedDLError: On mismatched lengths, invalid times, event codes outside ``0..n_causes`` or an invalid
            ``n_causes``.
    """
    count = _positive_int(n_causes, "n_causes", 1)
    follow_up, codes = _outcome(time, event, count)
    unique_time, any_deaths, _, cif = _aj_table(follow_up, codes, count)
    steps = any_deaths > 0
    return unique_time[steps], cif[:, steps]


def aj_at(time: object, event: object, n_causes: int, at: object) -> np.ndarray:
    """Aalen–Johansen cumulative incidence of each cause at given times.

    Args:
        time: Follow-up times, ``(n,)``, > 0.
        event: Event codes, ``(n,)``: 0 censored, k in ``1..n_causes`` an event of cause k.
        n_causes: Number of causes K, >= 1.
        at: Times to evaluate at, ``(m,)``, finite.

    Returns:
        ``(K, m)`` cumulative incidence: the right-continuous step (an event at t counts at t), 0 before the first
        event. Past the last follow-up the curves are unknown: nan there, unless every row has had an event by
        then (the incidences already sum to 1 and cannot move). Never extrapolated.

    Raises:
        MedDLError: On mismatched lengths, invalid times, event codes, ``n_causes`` or ``at``.
    """
    count = _positive_int(n_causes, "n_causes", 1)
    follow_up, codes = _outcome(time, event, count)
    points = _scores(at, "at")
    return _aj_at(follow_up, codes, count, points)


def _observed_curves(time: np.ndarray, event: np.ndarray, names: list[str]) -> dict:
    """Aalen–Johansen curve of each cause for a plot: from (0, 0), a point per event time, to the last follow-up."""
    unique_time, any_deaths, _, cif = _aj_table(time, event, len(names))
    steps = any_deaths > 0
    times = [0.0, *unique_time[steps].tolist()]
    ends = bool(unique_time[-1] > times[-1])
    if ends:
        times.append(float(unique_time[-1]))
    curves = {}
    for k, name in enumerate(names):
        values = [0.0, *cif[k, steps].tolist()]
        if ends:
            values.append(values[-1])
        curves[name] = {"time": list(times), "cif": values}
    return curves


# --------------------------------------------------------------------------- concordance


def _cause_concordance(time: np.ndarray, event: np.ndarray, score: np.ndarray, cause: int) -> float:
    """Cause-specific concordance on validated arrays; nan without comparable pairs.

    With ``key = 2 * rank(time) + (row is not a cause-k event)``, the rows comparable to a cause-k event i are those
    with ``key_j > key_i`` (a later time, or the same time without a cause-k event) plus every event of another
    cause. Cases are processed in blocks so that at most ``_PAIR_BLOCK`` pairs are held at once.
    """
    n = time.size
    is_case = event == cause
    cases = np.flatnonzero(is_case)
    if cases.size == 0:
        return _NAN
    other = (event > 0) & ~is_case
    _, time_rank = np.unique(time, return_inverse=True)
    key = 2 * time_rank.ravel() + (~is_case)
    concordant = 0.0
    comparable = 0
    step = max(1, _PAIR_BLOCK // n)
    for low in range(0, cases.size, step):
        rows = cases[low : low + step]
        inside = (key[None, :] > key[rows, None]) | other[None, :]
        diff = score[None, :] - score[rows, None]
        below = int(np.count_nonzero((diff < -_TIED_TOL) & inside))
        within = int(np.count_nonzero((diff <= _TIED_TOL) & inside))
        concordant += below + 0.5 * (within - below)
        comparable += int(np.count_nonzero(inside))
    return _ratio(concordant, float(comparable))


def cause_c_index(time: object, event: object, cif_k: object, cause: int) -> float:
    """Concordance of a predicted cumulative incidence for one cause (Wolbers et al., Epidemiology 2009).

    A pair (i, j) is comparable when i had an event of ``cause`` at ``t_i`` and j is known to be free of that
    cause at ``t_i`` with a chance of it later, or can never have it: ``t_j > t_i``, or j had an event of another
    cause (at any time), or ``t_j == t_i`` with j censored (events before censorings at a tied time, as in
    :func:`~meddl.evaluate.survival.harrell_c` and the Aalen–Johansen estimator). It is concordant when
    ``cif_k[i] > cif_k[j]``; a tie (within 1e-8) counts 0.5. With a single cause this is Harrell's C of
    ``risk = cif_k``.

    Args:
        time: Follow-up times, ``(n,)``, > 0.
        event: Event codes, ``(n,)``: 0 censored, a positive integer k an event of cause k.
        cif_k: Predicted cumulative incidence of ``cause`` at one horizon (any score where higher means an earlier
            event of that cause), ``(n,)``.
        cause: The cause evaluated, an event code >= 1.

    Returns:
        The concordance in [0, 1]; nan when there is no comparable pair.

    Raises:
        MedDLError: On mismatched lengths, invalid times, event codes, scores or ``cause``, or no event of
            ``cause``.
    """
    code = _positive_int(cause, "cause", 1)
    follow_up, codes = _outcome(time, event, None)
    score = _scores(cif_k, "cif_k")
    _check_same_length(follow_up, score, "time", "cif_k")
    if not (codes == code).any():
        raise MedDLError(f"cause {code} has no event in event; its concordance is undefined")
    return _cause_concordance(follow_up, codes, score, code)


# --------------------------------------------------------------------------- metrics


def _usable_horizons(horizons: np.ndarray, time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, list[str]]:
    last = float(time.max())
    first_event = float(time[event > 0].min())
    usable = np.zeros(horizons.size, dtype=bool)
    notes = []
    for k, horizon in enumerate(horizons.tolist()):
        if horizon >= last:
            where = "past" if horizon > last else "at"
            notes.append(
                f"horizon {_h(horizon)} is {where} the last follow-up ({last:g}); "
                "metrics at it are omitted, never extrapolated"
            )
        elif horizon < first_event:
            notes.append(
                f"horizon {_h(horizon)} comes before the first event of any cause ({first_event:g}); "
                "metrics at it are omitted"
            )
        else:
            usable[k] = True
    return usable, notes


def competing_risk_metrics(
    time: object,
    event: object,
    cif: object,
    horizons: object,
    causes: list[str],
    *,
    groups: object | None = None,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Discrimination and calibration-in-the-large of predicted cumulative incidences, with bootstrap CIs.

    Metrics, per cause k (numbered by its position in ``causes``, 1..K) that has at least one event:

    * ``c_index_cause<k>``: :func:`cause_c_index` of the predicted CIF of cause k at the last usable horizon.
    * ``cif_error_cause<k>@<h>``: for each usable horizon h, the mean predicted CIF of cause k minus its
      Aalen–Johansen estimate at h (positive = the model over-predicts the incidence).

    A horizon is usable when it is before the last follow-up and at least one event of any cause happens at or
    before it; the others are left out with a warning, and with no usable horizon no metric is reported. A cause
    without an event is left out with a warning. A resample where a metric is undefined (e.g. the horizon is past
    the resample's follow-up) gives nan for it, which the percentile interval ignores.

    Args:
        time: Follow-up times, ``(n,)``, > 0.
        event: Event codes, ``(n,)``: 0 censored, k in ``1..K`` an event of cause k.
        cif: Predicted cumulative incidences, ``(n, K, H)``, in [0, 1], summing to at most 1 over the causes.
        horizons: Strictly increasing horizons, ``(H,)``, > 0.
        causes: Name of each cause, K distinct strings; cause k is ``causes[k - 1]``.
        groups: Optional patient id per row; the bootstrap then resamples patients.
        n_bootstrap: Number of bootstrap resamples; 0 gives ``[nan, nan]`` intervals.
        level: Coverage of the intervals.
        seed: Seed of the bootstrap.

    Returns:
        ``{"metrics": {name: {"value": float, "ci": [low, high]}}, "warnings": [str], "observed": {cause name:
        {"time": [...], "cif": [...]}}, "predicted": {cause name: {"horizons": [...], "mean_cif": [...]}},
        "horizons_used": [float]}``. ``observed`` holds the Aalen–Johansen curve of every cause (from (0, 0), a
        point per event time of any cause, on to the last follow-up); ``predicted`` the mean predicted CIF of every
        cause at every horizon.

    Raises:
        MedDLError: On mismatched lengths, invalid times, event codes outside ``0..K``, a ``cif`` of the wrong
            shape, outside [0, 1] or summing above 1, invalid horizons, causes or bootstrap arguments, or no event
            at all.
    """
    names = _cause_names(causes)
    n_causes = len(names)
    follow_up, codes = _outcome(time, event, n_causes)
    times = _horizons(horizons)
    predicted = _incidences(cif, (follow_up.size, n_causes, times.size), times)
    check_bootstrap_arguments(n_bootstrap, level)
    if not (codes > 0).any():
        raise MedDLError("too few events: 0 events of any cause in event; competing-risk metrics need at least one")

    notes = []
    evaluated = []
    for k, name in enumerate(names, start=1):
        if (codes == k).any():
            evaluated.append(k)
        else:
            notes.append(f"cause {k} ({name!r}) has no event in the evaluated data; its metrics are omitted")
    usable, horizon_notes = _usable_horizons(times, follow_up, codes)
    notes.extend(horizon_notes)
    used = times[usable]
    columns = np.flatnonzero(usable)
    if used.size == 0:
        notes.append("no horizon is usable, so no metric is reported")
    labels = [_h(h) for h in used.tolist()]
    causes_used = np.array(evaluated, dtype=np.int64) - 1
    ranking = predicted[:, :, columns[-1]] if used.size else predicted[:, :, 0]

    def compute(rows: np.ndarray) -> dict[str, float]:
        if not used.size:
            return {}
        t, e = follow_up[rows], codes[rows]
        observed = _aj_at(t, e, n_causes, used)
        error = predicted[rows][:, :, columns].mean(axis=0) - observed
        result = {}
        for k in causes_used.tolist():
            result[f"c_index_cause{k + 1}"] = _cause_concordance(t, e, ranking[rows, k], k + 1)
            for j, label in enumerate(labels):
                result[f"cif_error_cause{k + 1}@{label}"] = float(error[k, j])
        return result

    metrics = bootstrap_metrics(
        compute, follow_up.size, n_resamples=int(n_bootstrap), groups=groups, level=level, seed=seed
    )
    mean_cif = predicted.mean(axis=0)
    return {
        "metrics": metrics,
        "warnings": notes,
        "observed": _observed_curves(follow_up, codes, names),
        "predicted": {
            name: {"horizons": times.tolist(), "mean_cif": mean_cif[k].tolist()} for k, name in enumerate(names)
        },
        "horizons_used": used.tolist(),
    }

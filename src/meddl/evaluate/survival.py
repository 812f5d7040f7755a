"""Time-to-event (survival) evaluation: concordance, Kaplan–Meier, log-rank, IPCW AUC and Brier, calibration.

Conventions shared by every function:

* ``time``: follow-up time per row, ``(n,)``, finite and > 0.
* ``event``: ``0`` = censored, any positive integer = event (competing-risk codes count as events here).
* ``risk``: a score where higher means an earlier event (e.g. a Cox linear predictor).
* ``survival``: predicted survival probabilities ``S(h | x)``, ``(n, H)``, one column per horizon of the
  strictly increasing ``horizons``.

Every metric follows scikit-survival's definition (``sksurv.metrics``, ``sksurv.nonparametric``,
``sksurv.compare``) and ``tests/evaluate/test_survival.py`` compares them on GBSG2, WHAS500 and a synthetic set with
tied times. They are written in NumPy because the bootstrap evaluates them on a thousand resamples and sksurv's
concordance loops over the events in Python.

Inverse probability of censoring weights (IPCW) use ``G``, the Kaplan–Meier estimate of the *censoring* distribution
on the training split (at a tied time, events are taken to happen before censorings), evaluated like sksurv's
``CensoringDistributionEstimator.predict_proba``: the right-continuous step at the time. Only the weights a metric
actually uses are evaluated, so a test follow-up longer than the training follow-up does not make the Brier score
fail as it does in sksurv (whose value is unchanged wherever sksurv computes one).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from meddl.errors import MedDLError
from meddl.evaluate._survival_inputs import (
    _MIN_BIN_SIZE,
    _NAN,
    _PAIR_BLOCK,
    _TIED_TOL,
    _h,
    _horizons,
    _outcome,
    _positive_int,
    _probabilities,
    _ratio,
    _require_events,
    _scores,
    _step_value,
)
from meddl.evaluate.bootstrap import bootstrap_metrics, check_bootstrap_arguments, paired_bootstrap_difference
from meddl.evaluate.metrics import _check_same_length, _real_number
from meddl.evaluate.survival_curves import (
    _censoring_survival,
    _km_with_ci,
    kaplan_meier,
    km_at,
    km_by_group,
    logrank_p,
    risk_groups,
)

MetricFunction = Callable[[np.ndarray], dict[str, float]]

__all__ = [
    "calibration_at",
    "harrell_c",
    "kaplan_meier",
    "km_at",
    "km_by_group",
    "logrank_p",
    "paired_c_difference",
    "risk_groups",
    "survival_metrics",
]


def _concordance_terms(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: its concordant pairs (a risk tie counts 0.5) and its comparable pairs, as the earlier event.

    A pair (i, j) is comparable when i has an event and j is known to outlive it: ``t_j > t_i``, or ``t_j == t_i``
    with j censored (sksurv's definition). With ``key = 2 * rank(time) + censored`` that is exactly
    ``key_j > key_i``, so after sorting by key the rows comparable to event i form a suffix. Concordant means
    ``risk_j < risk_i`` and a tie ``|risk_j - risk_i| <= 1e-8``. Censored rows get zeros.
    """
    n = time.size
    _, time_rank = np.unique(time, return_inverse=True)
    key = 2 * time_rank.ravel() + (~event)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    sorted_risk = risk[order]
    cases = np.flatnonzero(event[order])
    start = np.searchsorted(sorted_key, sorted_key[cases], side="right")  # first comparable position per event
    scores = np.empty(cases.size)
    step = max(1, _PAIR_BLOCK // max(n, 1))
    for low in range(0, cases.size, step):
        high = min(low + step, cases.size)
        first = int(start[low])  # starts grow with the position, so the block's columns begin here
        diff = sorted_risk[None, first:] - sorted_risk[cases[low:high], None]
        inside = np.arange(first, n)[None, :] >= start[low:high, None]
        below = np.count_nonzero((diff < -_TIED_TOL) & inside, axis=1)
        within = np.count_nonzero((diff <= _TIED_TOL) & inside, axis=1)
        scores[low:high] = below + 0.5 * (within - below)
    concordant = np.zeros(n)
    comparable = np.zeros(n)
    concordant[order[cases]] = scores
    comparable[order[cases]] = n - start
    return concordant, comparable


def _harrell(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's C on validated arrays; nan without comparable pairs."""
    concordant, comparable = _concordance_terms(time, event, risk)
    return _ratio(concordant.sum(), comparable.sum())


def harrell_c(time: object, event: object, risk: object) -> float:
    """Harrell's concordance index, as ``sksurv.metrics.concordance_index_censored``.

    The fraction of comparable pairs (the shorter time is an event; at a tied time an event and a censored row are
    comparable, two events are not) in which the earlier event has the higher risk; ties in risk (within 1e-8)
    count 0.5.

    Args:
        time: Follow-up times, ``(n,)``, > 0.
        event: Event codes, ``(n,)``: 0 censored, positive = event.
        risk: Risk scores, ``(n,)``, higher = earlier event.

    Returns:
        The concordance in [0, 1]; nan when there is no comparable pair (every event at or after the last
        follow-up), as in a small bootstrap resample, where sksurv would raise.

    Raises:
        MedDLError: On mismatched lengths, invalid times, event codes or risks, or no event at all.
    """
    follow_up, status = _outcome(time, event, "time", "event")
    score = _scores(risk, "risk")
    _check_same_length(follow_up, score, "time", "risk")
    _require_events(status, "event")
    return _harrell(follow_up, status, score)


# --------------------------------------------------------------------------- Kaplan–Meier


def _quantile_bins(predicted: np.ndarray, n_bins: int) -> list[np.ndarray]:
    """Row indices of up to ``n_bins`` quantile bins of ``predicted``, lowest first; bins under 5 rows merged."""
    edges = np.quantile(predicted, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    label = np.searchsorted(edges, predicted, side="right")
    bins = [rows for rows in (np.flatnonzero(label == k) for k in range(n_bins)) if rows.size]
    while len(bins) > 1:
        sizes = [rows.size for rows in bins]
        smallest = int(np.argmin(sizes))
        if sizes[smallest] >= _MIN_BIN_SIZE:
            break
        if smallest == 0:
            neighbour = 1
        elif smallest == len(bins) - 1:
            neighbour = smallest - 1
        else:
            neighbour = smallest - 1 if sizes[smallest - 1] <= sizes[smallest + 1] else smallest + 1
        low, high = sorted((smallest, neighbour))
        bins[low : high + 1] = [np.concatenate((bins[low], bins[high]))]
    return bins


def _calibration(horizon: float, time: np.ndarray, event: np.ndarray, predicted: np.ndarray, n_bins: int) -> dict:
    """Calibration of validated arrays: per-bin predicted vs Kaplan–Meier observed survival, slope and ECE."""
    bins = []
    for rows in _quantile_bins(predicted, n_bins):
        observed, low, high = _km_with_ci(time[rows], event[rows], horizon)
        bins.append(
            {
                "n": int(rows.size),
                "predicted": float(predicted[rows].mean()),
                "observed": observed,
                "observed_ci": [low, high],
            }
        )
    size = np.array([b["n"] for b in bins], dtype=np.float64)
    pred = np.array([b["predicted"] for b in bins])
    obs = np.array([b["observed"] for b in bins])
    known = np.isfinite(obs)
    slope = ece = _NAN
    if known.any():
        weight = size[known] / size[known].sum()
        ece = float(weight @ np.abs(obs[known] - pred[known]))
        centred = pred[known] - weight @ pred[known]
        spread = float(weight @ centred**2)
        if known.sum() >= 2 and spread > 1e-12:
            slope = float(weight @ (centred * (obs[known] - weight @ obs[known])) / spread)
    return {"horizon": float(horizon), "bins": bins, "slope": slope, "ece": ece}


def calibration_at(horizon: float, time: object, event: object, predicted: object, n_bins: int = 10) -> dict:
    """Calibration of predicted survival at one horizon against Kaplan–Meier observed survival.

    Rows are grouped into up to ``n_bins`` quantile bins of the predicted survival (rows with equal predictions share
    a bin; bins with fewer than 5 rows are merged into their smaller neighbour). Per bin the mean predicted survival
    is set against the Kaplan–Meier survival of its rows at ``horizon``.

    Args:
        horizon: Time at which survival is predicted, > 0 and not past the last follow-up.
        time: Follow-up times, ``(n,)``, > 0.
        event: Event codes, ``(n,)``: 0 censored, positive = event.
        predicted: Predicted survival ``S(horizon | x)``, ``(n,)``, in [0, 1].
        n_bins: Maximum number of bins, >= 1.

    Returns:
        ``{"horizon", "bins": [{"n", "predicted", "observed", "observed_ci": [low, high]}], "slope", "ece"}``. The
        observed CI is the 95% Greenwood interval on the log-log scale (sksurv's ``conf_type="log-log"``). ``slope``
        is the slope of the least-squares line of observed on predicted across bins weighted by bin size (1 when
        calibrated; nan with fewer than two bins of distinct predictions); ``ece`` is the size-weighted mean
        ``|observed - predicted|``. A bin whose follow-up ends before ``horizon`` has an unknown (nan) observed value
        and is left out of both.

    Raises:
        MedDLError: On mismatched lengths, invalid times, event codes, predictions, ``n_bins`` or a horizon past
            the last follow-up.
    """
    follow_up, status = _outcome(time, event, "time", "event")
    at = _real_number(horizon)
    if at is None or not math.isfinite(at) or at <= 0:
        raise MedDLError(f"horizon must be a finite number > 0, got {horizon!r}")
    if at > follow_up.max():
        raise MedDLError(
            f"horizon {_h(at)} is past the last follow-up ({_h(follow_up.max())}); observed survival is unknown there"
        )
    pred = _probabilities(predicted, "predicted", follow_up.shape)
    count = _positive_int(n_bins, "n_bins", 1)
    return _calibration(at, follow_up, status, pred, count)


# --------------------------------------------------------------------------- IPCW metrics


def _cumulative_dynamic_auc(estimate: np.ndarray, cases: np.ndarray, controls: np.ndarray, weight: np.ndarray) -> float:
    """Cumulative/dynamic AUC at one horizon (sksurv's ``cumulative_dynamic_auc``); ``weight`` = 1/G(t) of cases."""
    n_controls = int(controls.sum())
    if n_controls == 0 or not cases.any():
        return _NAN
    order = np.argsort(-estimate)
    ranked = estimate[order]
    true_pos = np.cumsum(np.where(cases[order], weight[order], 0.0))
    false_pos = np.cumsum(controls[order]) / n_controls
    true_pos = true_pos / true_pos[-1]
    tied_with_previous = np.abs(np.diff(np.r_[np.inf, ranked])) <= _TIED_TOL
    last_of_tie = ~np.r_[tied_with_previous[1:], False]
    return float(np.trapezoid(np.r_[0.0, true_pos[last_of_tie]], np.r_[0.0, false_pos[last_of_tie]]))


def _usable_horizons(
    horizons: np.ndarray, time_train: np.ndarray, time_test: np.ndarray, event_test: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    last_test, last_train = float(time_test.max()), float(time_train.max())
    first_event = float(time_test[event_test].min())
    usable = np.zeros(horizons.size, dtype=bool)
    notes = []
    for k, horizon in enumerate(horizons.tolist()):
        if horizon >= last_test:
            where = "past" if horizon > last_test else "at"
            notes.append(
                f"horizon {_h(horizon)} is {where} the last follow-up in the test split ({last_test:g}); "
                "metrics at it are omitted, never extrapolated"
            )
        elif horizon >= last_train:
            where = "past" if horizon > last_train else "at"
            notes.append(
                f"horizon {_h(horizon)} is {where} the last follow-up in the training split ({last_train:g}), "
                "where the censoring weights end; metrics at it are omitted, never extrapolated"
            )
        elif horizon < first_event:
            notes.append(
                f"horizon {_h(horizon)} comes before the first event in the test split ({first_event:g}); "
                "metrics at it are omitted"
            )
        else:
            usable[k] = True
    return usable, notes


def survival_metrics(
    time_train: object,
    event_train: object,
    time_test: object,
    event_test: object,
    risk: object,
    survival: object,
    horizons: object,
    *,
    groups: object | None = None,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Discrimination and calibration of a survival model on a test split, with bootstrap CIs.

    Metrics (point values as scikit-survival computes them, the censoring distribution from the training split):

    * ``c_index``: Harrell's C of ``risk`` (``concordance_index_censored``).
    * ``c_index_uno``: Uno's IPCW C of ``risk`` truncated at the last usable horizon (``concordance_index_ipcw``).
    * ``auc@<h>``: cumulative/dynamic AUC at h of ``1 - survival[:, h]`` (``cumulative_dynamic_auc``).
    * ``brier@<h>``: IPCW Brier score at h (``brier_score``).
    * ``ibs``: integrated Brier score over the usable horizons (``integrated_brier_score``), with >= 2 of them.
    * ``calibration_slope@<h>``: see :func:`calibration_at` (10 quantile bins).

    A horizon is usable when it is before the last test follow-up and the last training follow-up and at least one
    test event happens at or before it; the others are left out with a warning (``c_index_uno`` too when none is
    usable). A resample where a metric is undefined (e.g. the horizon is past the resample's follow-up) gives nan
    for it, which the percentile interval ignores.

    Args:
        time_train: Training follow-up times, ``(n_train,)``, > 0 (for the censoring weights).
        event_train: Training event codes, ``(n_train,)``.
        time_test: Test follow-up times, ``(n,)``, > 0.
        event_test: Test event codes, ``(n,)``.
        risk: Test risk scores, ``(n,)``, higher = earlier event.
        survival: Predicted test survival, ``(n, H)``, column j at ``horizons[j]``.
        horizons: Strictly increasing horizons, ``(H,)``, > 0.
        groups: Optional patient id per test row; the bootstrap then resamples patients.
        n_bootstrap: Number of bootstrap resamples; 0 gives ``[nan, nan]`` intervals.
        level: Coverage of the intervals.
        seed: Seed of the bootstrap.

    Returns:
        ``{"metrics": {name: {"value": float, "ci": [low, high]}}, "warnings": [str], "horizons_used": [float]}``.

    Raises:
        MedDLError: On mismatched lengths, invalid times, event codes, risks, probabilities, horizons or bootstrap
            arguments, or no event in the training or the test split.
    """
    t_train, e_train = _outcome(time_train, event_train, "time_train", "event_train")
    t_test, e_test = _outcome(time_test, event_test, "time_test", "event_test")
    score = _scores(risk, "risk")
    _check_same_length(t_test, score, "time_test", "risk")
    times = _horizons(horizons)
    surv = _probabilities(survival, "survival", (t_test.size, times.size))
    check_bootstrap_arguments(n_bootstrap, level)
    _require_events(e_train, "the training split")
    _require_events(e_test, "the test split")

    usable, notes = _usable_horizons(times, t_train, t_test, e_test)
    used = times[usable]
    columns = np.flatnonzero(usable)
    if used.size == 0:
        notes.append("no horizon is usable, so only c_index is reported (c_index_uno needs a horizon to truncate at)")
    elif used.size == 1:
        notes.append(f"ibs is omitted: it needs at least 2 usable horizons, got 1 ({_h(used[0])})")

    knots, g_values = _censoring_survival(t_train, e_train)
    inverse_g = np.zeros(t_test.size)
    uno_weight = np.zeros(t_test.size)
    inverse_g_at = np.zeros(used.size)
    if used.size:
        tau = float(used[-1])
        weighted = e_test & (t_test <= tau)  # the only rows whose weight any metric uses; all before last_train
        inverse_g[weighted] = 1.0 / _step_value(knots, g_values, t_test[weighted])
        uno_weight = np.where(e_test & (t_test < tau), inverse_g**2, 0.0)
        inverse_g_at = 1.0 / _step_value(knots, g_values, used)
    names = [_h(h) for h in used.tolist()]

    def compute(rows: np.ndarray) -> dict[str, float]:
        t, e, pred = t_test[rows], e_test[rows], surv[rows]
        concordant, comparable = _concordance_terms(t, e, score[rows])
        result = {"c_index": _ratio(concordant.sum(), comparable.sum())}
        if not used.size:
            return result
        weight = uno_weight[rows]
        result["c_index_uno"] = _ratio(weight @ concordant, weight @ comparable)
        w_case = inverse_g[rows]
        lowest, highest = t.min(), t.max()
        briers = []
        slopes = {}
        for j, (column, horizon, name) in enumerate(zip(columns, used.tolist(), names, strict=True)):
            p = pred[:, column]
            if lowest <= horizon < highest:
                cases = e & (t <= horizon)
                controls = t > horizon
                result[f"auc@{name}"] = _cumulative_dynamic_auc(1.0 - p, cases, controls, w_case)
                brier = float(
                    np.mean(np.where(cases, p**2 * w_case, 0.0) + (1.0 - p) ** 2 * controls * inverse_g_at[j])
                )
            else:
                result[f"auc@{name}"] = brier = _NAN
            briers.append(brier)
            result[f"brier@{name}"] = brier
            slopes[f"calibration_slope@{name}"] = _calibration(horizon, t, e, p, 10)["slope"]
        if used.size >= 2:
            result["ibs"] = float(np.trapezoid(briers, used) / (used[-1] - used[0]))
        result.update(slopes)
        return result

    metrics = bootstrap_metrics(
        compute, t_test.size, n_resamples=int(n_bootstrap), groups=groups, level=level, seed=seed
    )
    return {"metrics": metrics, "warnings": notes, "horizons_used": [float(h) for h in used]}


def paired_c_difference(
    time: object,
    event: object,
    risk_a: object,
    risk_b: object,
    *,
    groups: object | None = None,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Harrell's C of model A minus that of model B on the same rows, with a paired bootstrap CI and p-value.

    Args:
        time: Follow-up times, ``(n,)``, > 0.
        event: Event codes, ``(n,)``.
        risk_a: Risk scores of model A, ``(n,)``.
        risk_b: Risk scores of model B, ``(n,)``.
        groups: Optional patient id per row for a cluster (patient-level) bootstrap.
        n_bootstrap: Number of bootstrap resamples.
        level: Coverage of the interval.
        seed: Seed of the bootstrap.

    Returns:
        ``{"value": C_a - C_b, "ci": [low, high], "p_value": p}`` (see
        :func:`~meddl.evaluate.bootstrap.paired_bootstrap_difference`).

    Raises:
        MedDLError: On mismatched lengths, invalid inputs or bootstrap arguments, or no event.
    """
    follow_up, status = _outcome(time, event, "time", "event")
    score_a, score_b = _scores(risk_a, "risk_a"), _scores(risk_b, "risk_b")
    _check_same_length(follow_up, score_a, "time", "risk_a")
    _check_same_length(follow_up, score_b, "time", "risk_b")
    check_bootstrap_arguments(n_bootstrap, level)
    _require_events(status, "event")

    def c_of(score: np.ndarray) -> MetricFunction:
        return lambda rows: {"c_index": _harrell(follow_up[rows], status[rows], score[rows])}

    return paired_bootstrap_difference(
        c_of(score_a),
        c_of(score_b),
        follow_up.size,
        "c_index",
        n_resamples=int(n_bootstrap),
        groups=groups,
        level=level,
        seed=seed,
    )

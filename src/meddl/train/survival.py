"""Time-to-event objectives: a Cox (DeepSurv) head and a discrete-time DeepHit head, with their predictions.

Targets follow one convention for both heads: a float tensor (B, 2) whose column 0 is the follow-up time (> 0)
and column 1 the event code (0 = censored, 1..K = event of cause k; K = 1 for ordinary survival).

* Cox: the network emits one log-risk f(x) per case. :func:`cox_loss` is the negative Cox partial
  log-likelihood with Efron's handling of tied event times; after training, :func:`breslow_baseline`
  estimates the cumulative baseline hazard H0 and :func:`cox_survival` turns f(x) into S(t | x).
* DeepHit (Lee et al., 2018): the time axis is cut into intervals (:func:`time_grid`) and the network emits
  one logit per (cause, interval); :func:`deephit_loss` combines the discrete likelihood with a ranking loss,
  :func:`deephit_curves` and :func:`deephit_risk` turn the logits into survival, cumulative incidence and a
  scalar risk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from meddl.errors import MedDLError
from meddl.train.trainer import LossFn

__all__ = [
    "bin_index",
    "breslow_baseline",
    "cox_loss",
    "cox_survival",
    "deephit_curves",
    "deephit_loss",
    "deephit_risk",
    "median_survival",
    "survival_output_size",
    "time_grid",
]

SURVIVAL_HEADS = ("cox", "discrete")


def survival_output_size(head: str, n_causes: int, n_bins: int) -> int:
    """Width of the network's last layer for a survival head.

    Args:
        head: ``"cox"`` (one log-risk per case) or ``"discrete"`` (DeepHit: one logit per cause and interval).
        n_causes: Number of competing event causes K (1 for ordinary survival).
        n_bins: Number of time intervals T; pass ``len(time_grid(...))``, which can be fewer than requested.
            Ignored by the Cox head.

    Returns:
        1 for ``"cox"``; ``n_causes * n_bins`` for ``"discrete"``.

    Raises:
        MedDLError: If ``head`` is unknown, ``n_causes`` or ``n_bins`` is below 1, or the Cox head is asked
            for competing risks.
    """
    if head not in SURVIVAL_HEADS:
        raise MedDLError(f"head must be one of {', '.join(SURVIVAL_HEADS)}; got {head!r}")
    if isinstance(n_causes, bool) or not isinstance(n_causes, int | np.integer) or n_causes < 1:
        raise MedDLError(f"n_causes must be an integer >= 1; got {n_causes!r}")
    if head == "cox":
        if n_causes > 1:
            raise MedDLError(
                f"n_causes={n_causes}: the cox head models a single event; use the discrete head (deephit) "
                "for competing risks"
            )
        return 1
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise MedDLError(f"n_bins must be an integer >= 1; got {n_bins!r}")
    return int(n_causes) * int(n_bins)


# --------------------------------------------------------------------------------------------------------- helpers


def _numpy(name: str, values: Any, ndim: int | None = 1) -> np.ndarray:
    """Array-like or tensor → float64 numpy array, checked for finiteness and (optionally) dimensionality."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MedDLError(f"{name} must be numeric; got {type(values).__name__}") from exc
    if ndim == 1 and array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]  # (N, 1) network outputs → (N,)
    if ndim is not None and array.ndim != ndim:
        raise MedDLError(f"{name} must be {ndim}-dimensional; got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise MedDLError(f"{name} contains NaN or infinite values")
    return array


def _points(name: str, values: Any) -> np.ndarray:
    """A scalar or 1-d array of times → finite float64 array of shape (n,)."""
    return _numpy(name, np.atleast_1d(_numpy(name, values, ndim=None)))


def _time_event(time: Any, event: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated (time > 0, event code >= 0) arrays of the same length."""
    t = _numpy("time", time)
    e = _numpy("event", event)
    if len(t) != len(e):
        raise MedDLError(f"time and event must have the same length; got {len(t)} and {len(e)}")
    if len(t) and t.min() <= 0:
        raise MedDLError(f"time must be > 0; got a minimum of {t.min():g}")
    if len(e) and e.min() < 0:
        raise MedDLError(f"event codes must be >= 0 (0 = censored); got {e.min():g}")
    return t, e


def _grid(grid: Any) -> np.ndarray:
    """A validated time grid: non-empty, strictly increasing, positive cut points."""
    cuts = _numpy("grid", grid)
    if len(cuts) == 0:
        raise MedDLError("grid must hold at least one cut point; got an empty grid")
    if cuts[0] <= 0 or np.any(np.diff(cuts) <= 0):
        raise MedDLError(f"grid must be positive and strictly increasing; got {cuts.tolist()}")
    return cuts


def _split_targets(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(time, event code) columns of ``targets``, checked against the batch size of ``outputs``."""
    if targets.ndim != 2 or targets.shape[1] != 2:
        raise MedDLError(f"targets must have shape (batch, 2) = (time, event code); got {tuple(targets.shape)}")
    if outputs.shape[0] != targets.shape[0]:
        raise MedDLError(
            f"outputs and targets must have the same batch size; got {outputs.shape[0]} and {targets.shape[0]}"
        )
    return targets[:, 0], targets[:, 1]


# ------------------------------------------------------------------------------------------------------------- Cox


def cox_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Negative Cox partial log-likelihood with Efron's tie handling, per event (the DeepSurv loss).

    With f the log-risk, R_j the risk set {i : t_i >= t_j} of the j-th distinct event time, D_j its d_j events
    and l = 0..d_j-1, Efron's partial log-likelihood is

        sum_j [ sum_{i in D_j} f_i - sum_l log( sum_{i in R_j} e^{f_i} - (l / d_j) sum_{i in D_j} e^{f_i} ) ],

    which equals Breslow's when no event times are tied. The loss is its negative divided by the number of
    events in the batch. Risk sets come from a cumulative logsumexp over cases sorted by time (descending);
    the Efron term is computed stably as ``log R + log1p(-(l / d) * D / R)``.

    Args:
        outputs: Log-risk f(x), shape (B, 1) or (B,).
        targets: (B, 2) follow-up time and event code; any code > 0 counts as an event.

    Returns:
        A scalar tensor. A batch with no event gives ``outputs.sum() * 0.0`` (zero, still attached to the graph).

    Raises:
        MedDLError: If ``outputs`` is not (B,) or (B, 1), or ``targets`` is not (B, 2).
    """
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        log_risk = outputs[:, 0]
    elif outputs.ndim == 1:
        log_risk = outputs
    else:
        raise MedDLError(f"outputs of the cox head must have shape (batch, 1) or (batch,); got {tuple(outputs.shape)}")
    time, code = _split_targets(outputs, targets)
    event = code > 0
    if not bool(event.any()):
        return outputs.sum() * 0.0

    order = torch.argsort(time, descending=True, stable=True)
    f = log_risk[order]
    is_event = event[order]
    _, group, counts = torch.unique_consecutive(time[order], return_inverse=True, return_counts=True)
    n_groups = counts.shape[0]
    # log sum_{t_i >= t_j} exp(f_i): the cumulative logsumexp at the last case of each tied-time group
    log_risk_set = torch.logcumsumexp(f, dim=0)[torch.cumsum(counts, dim=0) - 1]

    event_pos = torch.nonzero(is_event).squeeze(1)
    f_event = f[event_pos]
    event_group = group[event_pos]
    d = torch.zeros(n_groups, dtype=torch.long, device=f.device).index_add_(0, event_group, torch.ones_like(event_pos))
    # log sum_{i in D_j} exp(f_i), shifted by the group's largest event log-risk so nothing underflows
    shift = torch.full((n_groups,), -torch.inf, dtype=f.dtype, device=f.device).scatter_reduce(
        0, event_group, f_event.detach(), reduce="amax"
    )
    tied = torch.zeros(n_groups, dtype=f.dtype, device=f.device).index_add(
        0, event_group, torch.exp(f_event - shift[event_group])
    )
    log_tied = torch.log(tied[event_group]) + shift[event_group]
    # l = rank of each event within its group (0..d_j-1), in sorted order
    events_before_group = torch.cumsum(d, dim=0) - d
    rank = torch.arange(event_pos.shape[0], device=f.device) - events_before_group[event_group]
    fraction = rank.to(f.dtype) / d[event_group].to(f.dtype)
    log_r = log_risk_set[event_group]
    log_denominator = log_r + torch.log1p(-fraction * torch.exp(log_tied - log_r))
    return -(f_event.sum() - log_denominator.sum()) / event_pos.shape[0]


def breslow_baseline(log_risk: Any, time: Any, event: Any) -> tuple[np.ndarray, np.ndarray]:
    """Breslow's estimator of the cumulative baseline hazard H0 of a fitted Cox model.

    Plain Breslow increments (the estimator scikit-survival and lifelines use for prediction):
    H0(t) = sum_{t_j <= t} d_j / sum_{i : t_i >= t_j} exp(f_i) over the distinct event times t_j with d_j events.

    Args:
        log_risk: Log-risk f(x) of the training cases, shape (N,) or (N, 1).
        time: Follow-up times (> 0), shape (N,).
        event: Event codes or indicators, shape (N,); any value > 0 counts as an event.

    Returns:
        ``(times, cumulative_hazard)``: the distinct event times (increasing) and H0 at each of them.

    Raises:
        MedDLError: If the lengths differ, values are not finite, times are not positive, or there is no event.
    """
    f = _numpy("log_risk", log_risk)
    t, e = _time_event(time, event)
    if len(f) != len(t):
        raise MedDLError(f"log_risk and time must have the same length; got {len(f)} and {len(t)}")
    is_event = e > 0
    if not is_event.any():
        raise MedDLError("event: the Breslow baseline needs at least one event; every case is censored")
    shift = f.max()
    order = np.argsort(-t, kind="stable")
    t_desc = t[order]
    risk_cum = np.cumsum(np.exp(f[order] - shift))  # sum over t_i >= t_desc[k], up to ties
    times = np.unique(t[is_event])
    # risk set of t_j: every case with t_i >= t_j, i.e. up to the last case (in descending order) at t_j
    last = np.searchsorted(-t_desc, -times, side="right") - 1
    deaths = np.bincount(np.searchsorted(times, t[is_event]), minlength=len(times))
    hazard = np.cumsum(deaths / risk_cum[last]) * np.exp(-shift)
    return times, hazard


def _step(times: np.ndarray, values: np.ndarray, at: np.ndarray, before: float) -> np.ndarray:
    """Right-continuous step function through (times, values), ``before`` left of the first time."""
    index = np.searchsorted(times, at, side="right") - 1
    out = values[..., np.clip(index, 0, None)]
    return np.where(index >= 0, out, before)


def cox_survival(log_risk: Any, baseline_times: Any, baseline_hazard: Any, at: Any) -> np.ndarray:
    """Survival curves of a Cox model: S(t | x) = exp(-H0(t) exp(f(x))).

    H0 is the right-continuous step function through ``(baseline_times, baseline_hazard)``: 0 before the first
    event time and constant after the last.

    Args:
        log_risk: Log-risk f(x), shape (N,) or (N, 1).
        baseline_times: Distinct event times from :func:`breslow_baseline`, increasing.
        baseline_hazard: H0 at those times.
        at: Times at which to evaluate the curves.

    Returns:
        Survival probabilities, shape (N, len(at)).

    Raises:
        MedDLError: If the baseline arrays disagree in length or are not increasing, or any value is not finite.
    """
    f = _numpy("log_risk", log_risk)
    times = _numpy("baseline_times", baseline_times)
    hazard = _numpy("baseline_hazard", baseline_hazard)
    points = _points("at", at)
    if len(times) != len(hazard):
        raise MedDLError(
            f"baseline_times and baseline_hazard must have the same length; got {len(times)} and {len(hazard)}"
        )
    if np.any(np.diff(times) <= 0):
        raise MedDLError("baseline_times must be strictly increasing")
    h0 = _step(times, hazard, points, 0.0) if len(times) else np.zeros(len(points))
    return np.exp(-np.exp(f)[:, None] * h0[None, :])


def median_survival(baseline_times: Any, survival_curves: Any) -> np.ndarray:
    """Median survival time of each case: the first time at which its curve drops to 0.5 or below.

    Args:
        baseline_times: The times at which the curves are evaluated, increasing, shape (T,).
        survival_curves: Survival probabilities, shape (N, T) (or (T,) for one case).

    Returns:
        Median times, shape (N,); NaN for a case whose curve never reaches 0.5.

    Raises:
        MedDLError: If the shapes disagree or a value is not finite.
    """
    times = _numpy("baseline_times", baseline_times)
    curves = _numpy("survival_curves", survival_curves, ndim=None)
    curves = np.atleast_2d(curves)
    if curves.ndim != 2 or curves.shape[1] != len(times):
        raise MedDLError(
            f"survival_curves must have shape (cases, {len(times)}) to match baseline_times; got {curves.shape}"
        )
    if len(times) == 0:
        return np.full(len(curves), np.nan)
    reached = curves <= 0.5
    return np.where(reached.any(axis=1), times[np.argmax(reached, axis=1)], np.nan)


# --------------------------------------------------------------------------------------------------------- DeepHit


def time_grid(time: Any, event: Any, n_bins: int = 20) -> np.ndarray:
    """Cut points of the discrete time axis, at quantiles of the training event times.

    The cuts are the event-time quantiles at levels 1/n_bins, ..., (n_bins-1)/n_bins (observed event times,
    ``inverted_cdf``) followed by the largest training time, de-duplicated — so tied or few event times give
    fewer intervals. Interval j is (cut_{j-1}, cut_j], with cut_{-1} = 0.

    Args:
        time: Training follow-up times (> 0).
        event: Training event codes; any value > 0 is an event.
        n_bins: Largest number of intervals.

    Returns:
        Strictly increasing cut points, at most ``n_bins`` of them; the first is > 0 and the last is the
        largest training time.

    Raises:
        MedDLError: If ``n_bins`` < 1, the inputs are invalid, or there is no event.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise MedDLError(f"n_bins must be an integer >= 1; got {n_bins!r}")
    t, e = _time_event(time, event)
    event_times = t[e > 0]
    if len(event_times) == 0:
        raise MedDLError("event: a time grid needs at least one event in the training data; every case is censored")
    levels = np.arange(1, n_bins) / n_bins
    cuts = np.quantile(event_times, levels, method="inverted_cdf") if len(levels) else np.empty(0)
    return np.unique(np.append(cuts, t.max()))


def bin_index(time: Any, grid: Any) -> np.ndarray:
    """Index of the grid interval (cut_{j-1}, cut_j] each time falls in; times past the last cut go to the last.

    Args:
        time: Times, shape (N,).
        grid: Cut points from :func:`time_grid`.

    Returns:
        Integer interval indices in 0..len(grid)-1, shape (N,).
    """
    cuts = _grid(grid)
    t = _points("time", time)
    return np.minimum(np.searchsorted(cuts, t, side="left"), len(cuts) - 1)


def _n_causes(width: int, n_bins: int) -> int:
    if width % n_bins or width == 0:
        raise MedDLError(f"outputs must have n_causes * {n_bins} columns (one per cause and interval); got {width}")
    return width // n_bins


def deephit_loss(n_causes: int, grid: Any, alpha: float = 0.2, sigma: float = 0.1) -> LossFn:
    """The DeepHit loss (Lee et al., 2018) for single or competing risks on a discrete time grid.

    The outputs (B, n_causes * T) are logits laid out cause-major (columns k*T .. k*T+T-1 belong to cause k+1).
    As in pycox, a fixed logit 0 is appended for "no event within the grid", and a softmax over all
    n_causes * T + 1 entries gives the joint PMF p(k, j | x) over (cause, interval). With F_k(j | x) =
    sum_{j' <= j} p(k, j' | x) the cumulative incidence, the loss is ``alpha * NLL + (1 - alpha) * ranking``:

    * NLL (mean over the batch): an event of cause k in interval j contributes -log p(k, j | x); a censored
      case in interval j contributes -log(1 - sum_k F_k(j | x)), its probability of surviving past interval j.
    * ranking (mean over comparable pairs, 0 when there are none): for each pair with t_i < t_j where case i
      had an event of cause k in interval b_i, exp(-(F_k(b_i | x_i) - F_k(b_i | x_j)) / sigma).

    Args:
        n_causes: Number of competing causes K (1 for ordinary survival).
        grid: Cut points from :func:`time_grid`; T = len(grid).
        alpha: Weight of the likelihood term, in [0, 1].
        sigma: Temperature of the ranking term, > 0.

    Returns:
        A loss ``fn(outputs, targets) -> Tensor`` taking targets (B, 2) = (time, event code 0..K).

    Raises:
        MedDLError: If an argument is invalid; the loss raises it for outputs of the wrong width or event codes
            outside 0..n_causes.
    """
    if isinstance(n_causes, bool) or not isinstance(n_causes, int | np.integer) or n_causes < 1:
        raise MedDLError(f"n_causes must be an integer >= 1; got {n_causes!r}")
    cuts = _grid(grid)
    if not 0.0 <= float(alpha) <= 1.0:
        raise MedDLError(f"alpha must be in [0, 1]; got {alpha!r}")
    if not float(sigma) > 0.0:
        raise MedDLError(f"sigma must be > 0; got {sigma!r}")
    n_bins = len(cuts)
    k_causes = int(n_causes)
    alpha, sigma = float(alpha), float(sigma)
    grid_tensor = torch.as_tensor(cuts, dtype=torch.float64)

    def deephit(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if outputs.ndim != 2 or outputs.shape[1] != k_causes * n_bins:
            raise MedDLError(
                f"outputs must have shape (batch, {k_causes * n_bins}) = (batch, n_causes * n_bins); "
                f"got {tuple(outputs.shape)}"
            )
        time, code = _split_targets(outputs, targets)
        cause = torch.round(code).long()
        if int(cause.min()) < 0 or int(cause.max()) > k_causes:
            raise MedDLError(f"targets: event codes must be in 0..{k_causes} (0 = censored)")
        batch = outputs.shape[0]
        bins = torch.searchsorted(grid_tensor.to(device=time.device, dtype=time.dtype), time.contiguous())
        bins = bins.clamp_max(n_bins - 1)
        padded = torch.cat([outputs, outputs.new_zeros(batch, 1)], dim=1)
        log_pmf = F.log_softmax(padded, dim=1)  # (B, K*T + 1)
        is_event = cause > 0
        column = (cause - 1).clamp_min(0) * n_bins + bins  # the (cause, interval) entry of each event

        # likelihood: events take log p(k, j); censored cases the log-mass beyond their interval (any cause)
        log_event = log_pmf.gather(1, column[:, None])[:, 0]
        interval = torch.arange(n_bins, device=outputs.device).repeat(k_causes)  # interval of each column
        later = torch.cat(
            [interval[None, :] > bins[:, None], torch.ones(batch, 1, dtype=torch.bool, device=outputs.device)], dim=1
        )
        log_survive = torch.logsumexp(log_pmf.masked_fill(~later, -torch.inf), dim=1)
        nll = -torch.where(is_event, log_event, log_survive).mean()
        if alpha == 1.0:
            return nll

        # ranking: F_k(b_i | x) for every case x, at each case i's own (cause, interval)
        cif = torch.cumsum(log_pmf[:, :-1].exp().view(batch, k_causes, n_bins), dim=2).view(batch, -1)
        at_i = cif[:, column]  # [j, i] = F_{k_i}(b_i | x_j)
        own = torch.diagonal(at_i)  # F_{k_i}(b_i | x_i)
        comparable = is_event[:, None] & (time[:, None] < time[None, :])  # [i, j]
        penalty = torch.exp(-(own[:, None] - at_i.T) / sigma)
        rank = (penalty * comparable).sum() / comparable.sum().clamp_min(1)
        return alpha * nll + (1.0 - alpha) * rank

    return deephit


def _deephit_cif(outputs: Any, grid: Any) -> tuple[np.ndarray, np.ndarray]:
    """(grid, cumulative incidence at each cut, shape (N, K, T)) from DeepHit logits."""
    cuts = _grid(grid)
    logits = _numpy("outputs", outputs, ndim=2)
    n_causes = _n_causes(logits.shape[1], len(cuts))
    padded = np.concatenate([logits, np.zeros((len(logits), 1))], axis=1)
    padded -= padded.max(axis=1, keepdims=True)
    pmf = np.exp(padded)
    pmf /= pmf.sum(axis=1, keepdims=True)
    cif = np.cumsum(pmf[:, :-1].reshape(len(logits), n_causes, len(cuts)), axis=2)
    return cuts, cif


def deephit_curves(outputs: Any, grid: Any, at: Any) -> tuple[np.ndarray, np.ndarray]:
    """Survival and cumulative incidence curves from DeepHit logits, evaluated at arbitrary times.

    Both are step functions on the grid: the probability mass of interval j is placed at its right end cut_j,
    so S = 1 and every CIF = 0 before the first cut, and the values hold after the last cut.

    Args:
        outputs: Logits (N, n_causes * T), as in :func:`deephit_loss`.
        grid: Cut points from :func:`time_grid`; T = len(grid).
        at: Times at which to evaluate the curves.

    Returns:
        ``(survival, incidence)``: survival (N, len(at)) and cumulative incidence per cause (N, n_causes, len(at));
        at every time, survival + the incidences sum to 1.

    Raises:
        MedDLError: If the logits' width is not a multiple of T or a value is invalid.
    """
    cuts, cif = _deephit_cif(outputs, grid)
    points = _points("at", at)
    incidence = _step(cuts, cif, points, 0.0)
    survival = np.clip(1.0 - incidence.sum(axis=1), 0.0, 1.0)
    return survival, incidence


def deephit_risk(outputs: Any, grid: Any, horizon: float, cause: int | None = None) -> np.ndarray:
    """A scalar risk per case for concordance: 1 - S(horizon), or the incidence of one cause by ``horizon``.

    Args:
        outputs: Logits (N, n_causes * T), as in :func:`deephit_loss`.
        grid: Cut points from :func:`time_grid`.
        horizon: The time at which the risk is read.
        cause: If given (1..n_causes), the cumulative incidence F_cause(horizon) instead of 1 - S(horizon).

    Returns:
        Risks in [0, 1], shape (N,); higher means earlier or likelier events.

    Raises:
        MedDLError: If ``horizon`` is not finite or ``cause`` is out of range.
    """
    if not np.isfinite(float(horizon)):
        raise MedDLError(f"horizon must be a finite time; got {horizon!r}")
    survival, incidence = deephit_curves(outputs, grid, [float(horizon)])
    if cause is None:
        return 1.0 - survival[:, 0]
    if isinstance(cause, bool) or not isinstance(cause, int | np.integer) or not 1 <= cause <= incidence.shape[1]:
        raise MedDLError(f"cause must be in 1..{incidence.shape[1]}; got {cause!r}")
    return incidence[:, int(cause) - 1, 0]

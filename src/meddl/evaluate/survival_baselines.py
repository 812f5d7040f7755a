"""Classical survival baselines fitted on the same preprocessed features as the deep model.

* ``cox``: standardised columns → ``sksurv.linear_model.CoxPHSurvivalAnalysis`` (Efron ties). The unpenalised fit
  comes first; when it fails (a singular Hessian from collinear or constant columns, an error, a convergence or
  ill-conditioning warning, or a coefficient above 8 per standard deviation, the mark of separated data) the ridge
  penalty ``alpha`` is raised step by step through :data:`COX_ALPHAS` until a fit succeeds. The alpha used is stored
  as ``meddl_alpha_`` on the returned pipeline.
* ``random_survival_forest``: ``sksurv.ensemble.RandomSurvivalForest`` with 200 trees, ``min_samples_leaf=15``,
  ``max_features="sqrt"``, one job.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.linalg import LinAlgWarning
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.ensemble import RandomSurvivalForest
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.util import Surv
from threadpoolctl import threadpool_limits

from meddl.errors import MedDLError
from meddl.evaluate.survival import _horizons, _outcome, _require_events

__all__ = ["COX_ALPHAS", "SURVIVAL_BASELINES", "fit_survival_baseline", "predict_survival_baseline"]

SURVIVAL_BASELINES = ("cox", "random_survival_forest")
COX_ALPHAS = (0.0, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)  # ridge strengths tried in turn on standardised columns
# A log hazard ratio above 8 per standard deviation (a hazard ratio over 3,000) does not come from real data: it is
# a coefficient running off to infinity on separated data, stopped only by the solver's loss tolerance.
_MAX_ABS_COEF = 8.0


def _features(X: object, name: str) -> np.ndarray:
    try:
        features = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MedDLError(f"{name} must be a numeric (n, p) array: {exc}") from exc
    if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] == 0:
        raise MedDLError(f"{name} must be a non-empty (n, p) array, got shape {features.shape}")
    missing = np.isnan(features)
    if missing.any():
        row, column = (int(k) for k in np.argwhere(missing)[0])
        raise MedDLError(
            f"{name} has {int(missing.sum())} missing (NaN) values, the first at row {row}, column {column}; "
            "impute first"
        )
    infinite = ~np.isfinite(features)
    if infinite.any():
        row, column = (int(k) for k in np.argwhere(infinite)[0])
        raise MedDLError(f"{name} has {int(infinite.sum())} infinite values, the first at row {row}, column {column}")
    return features


def _cox(alpha: float) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("cox", CoxPHSurvivalAnalysis(alpha=alpha, ties="efron"))])


def _fit_cox(X: np.ndarray, y: np.ndarray) -> Pipeline:
    """The Cox pipeline with the smallest alpha of :data:`COX_ALPHAS` whose fit succeeds cleanly.

    If no alpha gives a clean fit, the strongest penalty that fitted at all (with a warning or a large coefficient)
    is kept; only when every alpha raises is the baseline refused.
    """
    failures: list[str] = []
    for alpha in COX_ALPHAS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                pipeline = _cox(alpha).fit(X, y)
            except (ValueError, np.linalg.LinAlgError) as exc:
                failures.append(f"alpha={alpha:g}: {exc}")
                continue
        trouble = [w for w in caught if issubclass(w.category, ConvergenceWarning | LinAlgWarning | RuntimeWarning)]
        largest = float(np.abs(pipeline[-1].coef_).max())
        if trouble or not largest <= _MAX_ABS_COEF:  # "not <=" also catches a nan coefficient
            reason = (
                str(trouble[0].message) if trouble else f"diverging coefficients (largest |coef| {largest:.3g} per SD)"
            )
            last = alpha == COX_ALPHAS[-1]
            failures.append(f"alpha={alpha:g}: {reason}" + ("; kept as the strongest penalty" if last else ""))
            if not last:
                continue
            if not np.isfinite(largest):
                break
        pipeline.meddl_alpha_ = alpha
        pipeline.meddl_fit_failures_ = failures
        return pipeline
    raise MedDLError(
        f"the cox baseline could not be fitted with any ridge penalty in {list(COX_ALPHAS)}; "
        f"last failures: {'; '.join(failures[-2:])}"
    )


def fit_survival_baseline(
    name: str, X_train: object, time_train: object, event_train: object, *, seed: int = 0
) -> BaseEstimator:
    """Fit one classical survival baseline.

    Args:
        name: One of :data:`SURVIVAL_BASELINES`.
        X_train: Preprocessed features, ``(n, p)``, no NaN.
        time_train: Follow-up times, ``(n,)``, > 0.
        event_train: Event codes, ``(n,)``: 0 censored, positive = event.
        seed: Random state of the random survival forest.

    Returns:
        The fitted estimator. For ``cox`` a ``Pipeline`` (``StandardScaler`` → ``CoxPHSurvivalAnalysis``) with
        ``meddl_alpha_`` (the ridge penalty used, 0 when the plain fit worked) and ``meddl_fit_failures_`` (why each
        smaller alpha was rejected: an error, a convergence or ill-conditioning warning, or a coefficient above 8 per
        standard deviation); for ``random_survival_forest`` the ``RandomSurvivalForest``.

    Raises:
        MedDLError: If ``name`` is unknown (field ``evaluate.baselines``), the features hold NaN or are not an
            (n, p) array, the lengths differ, the times or event codes are invalid, there is no event, or no
            penalty makes the Cox fit work.
    """
    if name not in SURVIVAL_BASELINES:
        raise MedDLError(
            f"evaluate.baselines: unknown survival baseline {name!r}; choose from {list(SURVIVAL_BASELINES)}"
        )
    features = _features(X_train, "X_train")
    follow_up, status = _outcome(time_train, event_train, "time_train", "event_train")
    if follow_up.size != features.shape[0]:
        raise MedDLError(f"time_train has {follow_up.size} rows but X_train has {features.shape[0]}")
    _require_events(status, "the training split")
    target = Surv.from_arrays(event=status, time=follow_up)
    # One BLAS thread: Newton steps on a (p, p) Hessian are too small to share, and the machine is shared.
    with threadpool_limits(1, user_api="blas"):
        if name == "cox":
            return _fit_cox(features, target)
        forest = RandomSurvivalForest(
            n_estimators=200, min_samples_leaf=15, max_features="sqrt", n_jobs=1, random_state=seed
        )
        return forest.fit(features, target)


def predict_survival_baseline(estimator: BaseEstimator, X: object, horizons: object) -> tuple[np.ndarray, np.ndarray]:
    """Risk scores and survival probabilities of a fitted survival baseline.

    Args:
        estimator: A model returned by :func:`fit_survival_baseline`.
        X: Preprocessed features, ``(n, p)``, no NaN.
        horizons: Strictly increasing horizons, ``(H,)``, > 0.

    Returns:
        ``(risk, survival)``: ``risk`` ``(n,)`` from ``predict`` (higher = earlier event) and ``survival`` ``(n, H)``,
        the predicted survival step function evaluated at each horizon: 1 before the first training event time, the
        last value past the model's last time (metrics at such horizons are omitted by the caller).

    Raises:
        MedDLError: If ``X`` or ``horizons`` are invalid.
    """
    features = _features(X, "X")
    times = _horizons(horizons)
    risk = np.asarray(estimator.predict(features), dtype=np.float64)
    curves = np.asarray(estimator.predict_survival_function(features, return_array=True), dtype=np.float64)
    final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    knots = np.asarray(final.unique_times_, dtype=np.float64)
    index = np.searchsorted(knots, times, side="right") - 1
    survival = np.where(index >= 0, curves[:, np.maximum(index, 0)], 1.0)
    return risk, survival

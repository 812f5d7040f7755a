"""Classical baselines fitted on the same preprocessed arrays as the deep model.

A deep model earns its place only if it beats these; the report shows the paired difference.

Logistic regression standardises every column on the training rows and picks its L2 strength by cross-validated
log-loss. With raw features and a fixed ``C = 1`` the penalty depended on the features' units: k-mer frequencies
of about 1/200 each needed coefficients in the hundreds, the penalty forbade them, and the model fell back on the
class prior — one class predicted for every sequence.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from meddl.errors import MedDLError
from meddl.evaluate.metrics import _check_finite

__all__ = ["BASELINES", "LOGISTIC_CS", "default_baselines", "fit_baseline", "logistic_regression", "predict_baseline"]

BASELINES = ("logistic_regression", "linear_regression", "gradient_boosting", "random_forest")
_TASKS = ("binary", "multiclass", "regression")
_CLASSIFICATION_ONLY = {"logistic_regression"}
_REGRESSION_ONLY = {"linear_regression"}
LOGISTIC_CS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # inverse L2 strengths tried on standardised columns
_CV_FOLDS = 3
_CV_MAX_ROWS = 5000  # C is chosen on at most this many training rows; the final fit uses them all
_MAX_ITER = 5000


def default_baselines(task: str) -> list[str]:
    """The baselines that suit a task.

    Args:
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.

    Returns:
        ``["logistic_regression", "gradient_boosting"]`` for classification,
        ``["linear_regression", "gradient_boosting"]`` for regression.

    Raises:
        MedDLError: If ``task`` is unknown.
    """
    _check_task(task)
    if task == "regression":
        return ["linear_regression", "gradient_boosting"]
    return ["logistic_regression", "gradient_boosting"]


def _check_task(task: object) -> None:
    if task not in _TASKS:
        raise MedDLError(f"task must be one of {list(_TASKS)}, got {task!r}")


def _features(X: object, name: str) -> np.ndarray:
    try:
        features = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MedDLError(f"{name} must be a numeric (n, p) array: {exc}") from exc
    if features.ndim != 2 or features.shape[0] == 0:
        raise MedDLError(f"{name} must be a non-empty (n, p) array, got shape {features.shape}")
    _check_finite(features, name)
    return features


def fit_baseline(
    name: str,
    task: str,
    X_train: object,
    y_train: object,
    *,
    sample_weight: object | None = None,
    seed: int = 0,
) -> BaseEstimator:
    """Fit one classical baseline.

    * ``logistic_regression``: standardised columns → ``LogisticRegression`` with its inverse L2 strength ``C``
      chosen from :data:`LOGISTIC_CS` by cross-validated log-loss (:func:`logistic_regression`),
      classification only.
    * ``linear_regression``: ``Ridge()``, regression only.
    * ``gradient_boosting``: ``HistGradientBoostingClassifier`` / ``Regressor`` with
      ``random_state=seed``.
    * ``random_forest``: ``RandomForestClassifier`` / ``Regressor`` of 500 trees (``random_state=seed``), the
      usual baseline on fingerprint bits (MoleculeNet's RF).

    Args:
        name: One of :data:`BASELINES`.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        X_train: Preprocessed features, shape ``(n, p)``, finite.
        y_train: Labels (class indices) or targets, shape ``(n,)``.
        sample_weight: Optional weight per training row.
        seed: Random state of the estimators that use one.

    Returns:
        The fitted scikit-learn estimator.

    Raises:
        MedDLError: If ``name`` is unknown or does not fit ``task`` (field ``evaluate.baselines``),
            the shapes disagree, the features are not finite, or a classification target has
            fewer than two classes.
    """
    if name not in BASELINES:
        raise MedDLError(f"evaluate.baselines: unknown baseline {name!r}; choose from {list(BASELINES)}")
    _check_task(task)
    if task == "regression" and name in _CLASSIFICATION_ONLY:
        raise MedDLError(
            f"evaluate.baselines: {name!r} is for classification, not a regression task; "
            f"use one of {default_baselines(task)}"
        )
    if task != "regression" and name in _REGRESSION_ONLY:
        raise MedDLError(
            f"evaluate.baselines: {name!r} is for regression, not a {task} task; use one of {default_baselines(task)}"
        )
    features = _features(X_train, "X_train")
    target = np.asarray(y_train)
    if target.ndim != 1 or target.shape[0] != features.shape[0]:
        raise MedDLError(
            f"y_train must have one value per row of X_train ({features.shape[0]}), got shape {target.shape}"
        )
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.shape != (features.shape[0],):
            raise MedDLError(
                f"sample_weight must have one weight per row of X_train ({features.shape[0]}), "
                f"got shape {weights.shape}"
            )
    if task == "regression":
        target = target.astype(np.float64)
        _check_finite(target, "y_train")
        estimator: BaseEstimator = (
            Ridge()
            if name == "linear_regression"
            else _forest(RandomForestRegressor, seed)
            if name == "random_forest"
            else HistGradientBoostingRegressor(random_state=seed)
        )
    else:
        classes = np.unique(target)
        if classes.size < 2:
            raise MedDLError(f"y_train has a single class {classes.tolist()}; a classifier needs two or more")
        if name == "logistic_regression":
            return logistic_regression(features, target, sample_weight=weights, seed=seed)
        estimator = (
            _forest(RandomForestClassifier, seed)
            if name == "random_forest"
            else HistGradientBoostingClassifier(random_state=seed)
        )
    estimator.fit(features, target, sample_weight=weights)
    return estimator


def _forest(cls: type[BaseEstimator], seed: int) -> BaseEstimator:
    """500 trees on every core the process may use (the forest's fit is the slow part of a fingerprint run)."""
    return cls(n_estimators=500, n_jobs=max(1, len(os.sched_getaffinity(0))), random_state=seed)


def _pipeline(c: float) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("logistic", LogisticRegression(C=c, max_iter=_MAX_ITER))])


def _fit(pipeline: Pipeline, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None) -> Pipeline:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return pipeline.fit(X, y, logistic__sample_weight=weights)


def _log_loss(pipeline: Pipeline, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None) -> float:
    proba = np.clip(pipeline.predict_proba(X), 1e-15, 1.0)
    columns = np.searchsorted(pipeline.classes_, y)
    losses = -np.log(proba[np.arange(len(y)), columns])
    return float(np.average(losses, weights=weights))


def _choose_c(X: np.ndarray, y: np.ndarray, weights: np.ndarray | None, seed: int) -> float:
    """The C of :data:`LOGISTIC_CS` with the lowest mean held-out log-loss over stratified folds (1.0 when a class
    has too few rows to fold)."""
    _, counts = np.unique(y, return_counts=True)
    if counts.min() < _CV_FOLDS:
        return 1.0
    rng = np.random.default_rng(seed)
    rows = np.arange(len(y))
    if len(rows) > _CV_MAX_ROWS:  # a stratified subsample keeps the choice cheap on large sets
        rows = np.sort(
            np.concatenate(
                [
                    rng.choice(np.flatnonzero(y == label), max(_CV_FOLDS, round(_CV_MAX_ROWS * n / len(y))), False)
                    for label, n in zip(np.unique(y), counts, strict=True)
                ]
            )
        )
    folds = list(StratifiedKFold(_CV_FOLDS, shuffle=True, random_state=seed).split(rows, y[rows]))
    losses = []
    for c in LOGISTIC_CS:
        total = 0.0
        for train, held in folds:
            fit_rows, held_rows = rows[train], rows[held]
            model = _fit(_pipeline(c), X[fit_rows], y[fit_rows], None if weights is None else weights[fit_rows])
            total += _log_loss(model, X[held_rows], y[held_rows], None if weights is None else weights[held_rows])
        losses.append(total / len(folds))
    return float(LOGISTIC_CS[int(np.argmin(losses))])


def logistic_regression(
    X_train: np.ndarray, y_train: np.ndarray, *, sample_weight: np.ndarray | None = None, seed: int = 0
) -> Pipeline:
    """The logistic-regression baseline: ``StandardScaler`` → ``LogisticRegression(C)``, fitted on all rows.

    Columns are standardised on the training rows, so the L2 penalty weighs every feature alike whatever its unit
    (k-mer frequencies, signal band powers, one-hot columns); ``C`` is the one of :data:`LOGISTIC_CS` with the lowest
    (weighted) log-loss over 3 stratified folds of at most 5,000 training rows. A weak penalty (large C) on many
    correlated columns over-fits, a strong one on small-valued columns shrinks the model to the class prior;
    the folds decide between them for each data set.

    Args:
        X_train: (n, p) finite features.
        y_train: (n,) class labels, two or more classes.
        sample_weight: optional (n,) weights, used in the folds and in the final fit.
        seed: seed of the folds (and of the subsample on large sets).

    Returns:
        The fitted ``Pipeline`` (``predict_proba`` and ``classes_`` as a classifier's); its ``chosen_c_`` is C.
    """
    # One BLAS thread: lbfgs multiplies an (n, p) matrix by a few columns per step, too little work to share; on
    # two busy cores OpenBLAS threads made a 2,300 × 656 fit with its C search 20 times slower (56 s against 2.5 s).
    with threadpool_limits(1, user_api="blas"):
        c = _choose_c(X_train, y_train, sample_weight, seed)
        pipeline = _fit(_pipeline(c), X_train, y_train, sample_weight)
    pipeline.chosen_c_ = c
    return pipeline


def predict_baseline(estimator: BaseEstimator, task: str, X: object, *, n_classes: int | None = None) -> np.ndarray:
    """Scores of a fitted baseline in the format :func:`~meddl.evaluate.evaluate_predictions` expects.

    Args:
        estimator: A model returned by :func:`fit_baseline`.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        X: Preprocessed features, shape ``(n, p)``.
        n_classes: Multiclass only: the number of classes K of the task. Classes missing from the
            training labels then get a probability column of zeros, so the output is always
            ``(n, K)`` with column k for class k. Default: the classes seen in training.

    Returns:
        Binary: probability of class 1, ``(n,)``. Multiclass: probabilities ``(n, K)``.
        Regression: predictions ``(n,)``.

    Raises:
        MedDLError: If ``task`` is unknown or ``X`` is not a finite 2-D array.
    """
    _check_task(task)
    features = _features(X, "X")
    if task == "regression":
        return np.asarray(estimator.predict(features), dtype=np.float64)
    proba = np.asarray(estimator.predict_proba(features), dtype=np.float64)
    classes = list(estimator.classes_)
    if task == "binary":
        if 1 not in classes:
            raise MedDLError(f"the binary baseline was trained without class 1; its classes are {classes}")
        return proba[:, classes.index(1)]
    if n_classes is None:
        return proba
    full = np.zeros((features.shape[0], n_classes))
    for column, label in enumerate(classes):
        if not 0 <= int(label) < n_classes:
            raise MedDLError(f"the baseline knows class {label!r}, outside 0..{n_classes - 1} (n_classes)")
        full[:, int(label)] = proba[:, column]
    return full

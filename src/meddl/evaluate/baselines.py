"""Classical baselines fitted on the same preprocessed arrays as the deep model.

A deep model earns its place only if it beats these; the report shows the paired difference.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge

from meddl.errors import MedDLError
from meddl.evaluate.metrics import _check_finite

__all__ = ["BASELINES", "default_baselines", "fit_baseline", "predict_baseline"]

BASELINES = ("logistic_regression", "linear_regression", "gradient_boosting")
_TASKS = ("binary", "multiclass", "regression")
_CLASSIFICATION_ONLY = {"logistic_regression"}
_REGRESSION_ONLY = {"linear_regression"}


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

    * ``logistic_regression``: ``LogisticRegression(max_iter=2000)``, classification only.
    * ``linear_regression``: ``Ridge()``, regression only.
    * ``gradient_boosting``: ``HistGradientBoostingClassifier`` / ``Regressor`` with
      ``random_state=seed``.

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
            Ridge() if name == "linear_regression" else HistGradientBoostingRegressor(random_state=seed)
        )
    else:
        classes = np.unique(target)
        if classes.size < 2:
            raise MedDLError(f"y_train has a single class {classes.tolist()}; a classifier needs two or more")
        estimator = (
            LogisticRegression(max_iter=2000)
            if name == "logistic_regression"
            else HistGradientBoostingClassifier(random_state=seed)
        )
    estimator.fit(features, target, sample_weight=weights)
    return estimator


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

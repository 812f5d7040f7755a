"""Class imbalance: resampling of the training split and balanced class weights.

Resampling is applied to the training split only, after `TabularPreprocessor` (so SMOTE interpolates
between preprocessed feature vectors); validation and test splits keep their true class balance.
"""

from __future__ import annotations

import numpy as np
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.under_sampling import RandomUnderSampler

from meddl.errors import MedDLError

__all__ = ["IMBALANCE_METHODS", "class_weights", "resample"]

IMBALANCE_METHODS: tuple[str, ...] = ("none", "class_weight", "oversample", "undersample", "smote")
"""Values accepted by ``preprocess.imbalance``."""


def _check_labels(y: np.ndarray, field: str) -> np.ndarray:
    """Return `y` as a 1-D integer array of class indices."""
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise MedDLError(f"{field} needs one class label per row (1-D); got an array of shape {labels.shape}")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            bad = labels[~(np.isfinite(labels) & (labels == np.round(labels)))][0]
            raise MedDLError(f"{field} needs integer class labels; got {bad!r}")
        labels = labels.astype(np.int64)
    elif labels.dtype.kind not in "iub":
        raise MedDLError(f"{field} needs integer class labels; got dtype {labels.dtype}")
    return labels.astype(np.int64)


def resample(X: np.ndarray, y: np.ndarray, method: str, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rebalance the classes of a training split.

    Args:
        X: (n, d) preprocessed training features.
        y: (n,) integer class labels.
        method: One of `IMBALANCE_METHODS`. ``"none"`` and ``"class_weight"`` (handled by the loss through
            `class_weights`) return the inputs unchanged; ``"oversample"`` repeats minority rows
            (RandomOverSampler); ``"undersample"`` drops majority rows (RandomUnderSampler); ``"smote"``
            synthesises minority rows (SMOTE with ``k_neighbors = min(5, minority count - 1)``).
        seed: Seed of the sampler; the same seed gives the same rows.

    Returns:
        ``(X_resampled, y_resampled)``, every class with as many rows as the majority (over-sampling,
        SMOTE) or the minority (under-sampling) class.

    Raises:
        MedDLError: for an unknown method, mismatched shapes, a single class, SMOTE with missing values,
            or SMOTE with fewer than 2 rows of a class.
    """
    if not isinstance(method, str) or method not in IMBALANCE_METHODS:
        allowed = ", ".join(repr(m) for m in IMBALANCE_METHODS)
        raise MedDLError(f"preprocess.imbalance must be one of {allowed}; got {method!r}")
    if method in ("none", "class_weight"):
        return X, y
    features = np.asarray(X)
    if features.ndim != 2:
        raise MedDLError(f"resampling needs a 2-D feature matrix; got shape {features.shape}")
    labels = _check_labels(y, "preprocess.imbalance")
    if features.shape[0] != labels.shape[0]:
        raise MedDLError(f"resampling got {features.shape[0]} feature rows but {labels.shape[0]} labels")
    classes, counts = np.unique(labels, return_counts=True)
    if classes.size < 2:
        raise MedDLError(
            f"preprocess.imbalance={method!r} needs at least 2 classes in the training split; "
            f"got only class {classes.tolist()}"
        )
    if method == "oversample":
        sampler: RandomOverSampler | RandomUnderSampler | SMOTE = RandomOverSampler(random_state=seed)
    elif method == "undersample":
        sampler = RandomUnderSampler(random_state=seed)
    else:
        minority = int(counts.argmin())
        if counts[minority] < 2:
            raise MedDLError(
                f"SMOTE needs at least 2 minority rows in the training split; class {classes[minority]} has "
                f"{counts[minority]} - use preprocess.imbalance='oversample' or 'class_weight'"
            )
        n_missing = int(np.isnan(features).sum()) if features.dtype.kind == "f" else 0
        if n_missing:
            raise MedDLError(
                f"SMOTE needs complete features; the training matrix has {n_missing} missing values "
                "(choose an imputing preprocess.missing strategy)"
            )
        sampler = SMOTE(k_neighbors=min(5, int(counts[minority]) - 1), random_state=seed)
    X_out, y_out = sampler.fit_resample(features, labels)
    return np.asarray(X_out, dtype=features.dtype), np.asarray(y_out, dtype=np.asarray(y).dtype)


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced class weights ``n / (n_classes * count_k)``, like ``compute_class_weight('balanced')``.

    Args:
        y: (n,) integer class labels in ``[0, n_classes)``.
        n_classes: Number of classes of the task.

    Returns:
        (n_classes,) float64 weights, for a weighted loss.

    Raises:
        MedDLError: when a label is out of range or a class has no row in `y`.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) or n_classes < 1:
        raise MedDLError(f"class_weights needs n_classes >= 1; got {n_classes!r}")
    labels = _check_labels(y, "class_weights")
    if labels.size == 0:
        raise MedDLError("class_weights received no labels (the training split is empty)")
    out_of_range = (labels < 0) | (labels >= n_classes)
    if out_of_range.any():
        raise MedDLError(
            f"class label {labels[out_of_range][0]} is outside 0..{n_classes - 1} "
            f"({int(out_of_range.sum())} labels out of range)"
        )
    counts = np.bincount(labels, minlength=n_classes)
    absent = np.flatnonzero(counts == 0)
    if absent.size:
        raise MedDLError(
            f"class {int(absent[0])} has no rows in the training split, so it cannot be weighted "
            f"(absent classes: {absent.tolist()})"
        )
    return labels.size / (n_classes * counts.astype(np.float64))

"""Recalibration: a map from the model's probabilities to calibrated ones, fitted on the validation split.

``evaluate.recalibrate`` picks it: ``temperature`` (one scale on the logits; ranks unchanged), ``platt`` (a
logistic regression on the logit: slope and intercept), ``isotonic`` (a monotone step function, scikit-learn's
``IsotonicRegression``) or ``auto``, which picks among none and these by the log loss of 5-fold cross-validation
*within* the validation split (fitting and judging on the same cases would always pick isotonic). The map is kept
in the bundle as plain numbers and applied by ``predict``, ``evaluate`` and the server. Multiclass models take
temperature scaling only (the others would break the probabilities' sum).

Calibration slope and intercept (calibration-in-the-large) are metrics of every binary run: the slope of a
logistic regression of the outcome on the logit of the probability (1 is ideal; below 1, predictions are too
extreme), and the intercept of that regression with the slope fixed at 1 (0 is ideal; above 0, risks are
underestimated on average).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meddl.errors import MedDLError

__all__ = [
    "METHODS",
    "Recalibrator",
    "calibration_intercept",
    "calibration_slope",
    "fit_recalibrator",
]

METHODS = ("none", "temperature", "platt", "isotonic", "auto")
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    if p.ndim == 2:
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], _EPS, 1.0))))
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def _newton_logistic(x: np.ndarray, y: np.ndarray, offset: np.ndarray, slope: bool) -> tuple[float, float]:
    """(intercept, slope) of ``logit P(y) = intercept + slope·x + offset`` by Newton's method (slope fixed at 0
    when ``slope`` is False); NaN when it does not converge (separated data).

    The bootstrap calls this twice per replicate, so the 2×2 (or 1×1) Newton system is solved in closed form
    from a few sums rather than through design matrices and ``np.linalg.solve``."""
    a = b = 0.0
    xx = x * x if slope else x
    for _ in range(50):
        p = _sigmoid(a + b * x + offset if slope else a + offset)
        residual, weight = y - p, p * (1 - p)
        g0, h00 = float(residual.sum()), float(weight.sum()) + 1e-12
        if slope:
            g1, h01, h11 = float(residual @ x), float(weight @ x), float(weight @ xx) + 1e-12
            det = h00 * h11 - h01 * h01
            if not det > 0:  # singular (or not finite): no unique fit
                return math.nan, math.nan
            step_a, step_b = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
        else:
            step_a, step_b = g0 / h00, 0.0
        a, b = a + step_a, b + step_b
        if not (math.isfinite(a) and math.isfinite(b)) or max(abs(a), abs(b)) > 1e3:
            return math.nan, math.nan
        if max(abs(step_a), abs(step_b)) < 1e-8:
            return a, b if slope else 1.0
    return math.nan, math.nan


def calibration_slope(y_true: np.ndarray, y_prob: np.ndarray) -> float:
    """Slope of the logistic regression of the outcome on logit(probability): 1 is ideal; NaN with one class."""
    y = np.asarray(y_true, dtype=np.float64)
    logits = _logit(y_prob)
    if y.min() == y.max() or np.ptp(logits) < 1e-9:  # one class, or one prediction for everyone: no slope
        return math.nan
    return _newton_logistic(logits, y, np.zeros(len(y)), slope=True)[1]


def calibration_intercept(y_true: np.ndarray, y_prob: np.ndarray) -> float:
    """Calibration-in-the-large: the intercept with logit(probability) as offset (slope 1); 0 is ideal."""
    y = np.asarray(y_true, dtype=np.float64)
    if y.min() == y.max():
        return math.nan
    return _newton_logistic(np.zeros(len(y)), y, _logit(y_prob), slope=False)[0]


@dataclass
class Recalibrator:
    """A fitted recalibration map (``method`` none, temperature, platt or isotonic) and how it was chosen."""

    method: str = "none"
    params: dict[str, Any] = field(default_factory=dict)
    chosen_by: dict[str, float] = field(default_factory=dict)  # auto: cross-validated log loss per method

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for ``scores`` (P(positive) of a binary model, (n, K) of a multiclass one);
        NaN rows stay NaN."""
        scores = np.asarray(scores, dtype=np.float64)
        if self.method == "none" or scores.size == 0:
            return scores
        if self.method == "temperature":
            if scores.ndim == 2:
                return _softmax(np.log(np.clip(scores, _EPS, 1.0)) / self.params["t"])
            return _sigmoid(_logit(scores) / self.params["t"])
        if self.method == "platt":
            return _sigmoid(self.params["a"] * _logit(scores) + self.params["b"])
        calibrated = np.interp(scores, self.params["x"], self.params["y"])  # isotonic: the fitted steps
        return np.where(np.isnan(scores), np.nan, np.clip(calibrated, _EPS, 1 - _EPS))

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "params": self.params, "chosen_by": self.chosen_by}

    @classmethod
    def from_json(cls, state: dict[str, Any] | None) -> Recalibrator:
        if not state:
            return cls()
        if state.get("method") not in METHODS[:-1] or not isinstance(state.get("params"), dict):
            raise MedDLError(f"model.json: damaged recalibration state {state!r}")
        return cls(str(state["method"]), dict(state["params"]), dict(state.get("chosen_by") or {}))


def _fit(method: str, y: np.ndarray, scores: np.ndarray) -> Recalibrator:
    if method == "none":
        return Recalibrator()
    if method == "temperature":
        from scipy.optimize import minimize_scalar

        logits = np.log(np.clip(scores, _EPS, 1.0)) if scores.ndim == 2 else _logit(scores)

        def loss(log_t: float) -> float:
            t = math.exp(log_t)
            p = _softmax(logits / t) if scores.ndim == 2 else _sigmoid(logits / t)
            return _log_loss(y, p)

        best = minimize_scalar(loss, bounds=(-4.0, 4.0), method="bounded")
        return Recalibrator("temperature", {"t": float(math.exp(best.x))})
    if method == "platt":
        b, a = _newton_logistic(_logit(scores), y.astype(np.float64), np.zeros(len(y)), slope=True)
        if not (math.isfinite(a) and math.isfinite(b)):  # separated validation data: the identity is safer
            return Recalibrator("platt", {"a": 1.0, "b": 0.0})
        return Recalibrator("platt", {"a": a, "b": b})
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, y)
    return Recalibrator(
        "isotonic", {"x": [float(v) for v in iso.X_thresholds_], "y": [float(v) for v in iso.y_thresholds_]}
    )


def fit_recalibrator(task: str, y_val: np.ndarray, scores_val: np.ndarray, method: str, seed: int = 0) -> Recalibrator:
    """Fit ``method`` on the validation split's labels and scores (``auto``: choose by cross-validated log loss).

    Raises:
        MedDLError: a method the task cannot take, or a validation split without both classes.
    """
    if method == "none":
        return Recalibrator()
    if task not in {"binary", "multiclass"}:
        raise MedDLError(f"evaluate.recalibrate: {method!r} is for binary and multiclass models, not {task}")
    y = np.asarray(y_val).astype(np.int64)
    scores = np.asarray(scores_val, dtype=np.float64)
    keep = np.isfinite(scores).all(axis=1) if scores.ndim == 2 else np.isfinite(scores)
    y, scores = y[keep], scores[keep]
    if len(np.unique(y)) < 2:
        raise MedDLError("evaluate.recalibrate: the validation split holds one class only; nothing to fit on")
    candidates = ["none", "temperature"] if task == "multiclass" else ["none", "temperature", "platt", "isotonic"]
    if method != "auto":
        if method not in candidates:
            raise MedDLError(f"evaluate.recalibrate: {method!r} is not available for {task} models; use temperature")
        return _fit(method, y, scores)
    from sklearn.model_selection import StratifiedKFold

    folds = min(5, int(np.unique(y, return_counts=True)[1].min()))
    if folds < 2:  # a class with a single validation case: nothing can be cross-validated
        raise MedDLError(
            "evaluate.recalibrate: auto needs at least 2 validation cases of every class present to compare maps by "
            "cross-validation; choose a method (temperature, platt) or enlarge data.split.validation"
        )
    losses: dict[str, float] = {}
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for candidate in candidates:
        predicted = np.zeros_like(scores)
        for fit_rows, held_out in splitter.split(scores, y):
            predicted[held_out] = _fit(candidate, y[fit_rows], scores[fit_rows]).apply(scores[held_out])
        losses[candidate] = round(_log_loss(y, predicted), 6)
    best = min(candidates, key=lambda name: losses[name])
    chosen = _fit(best, y, scores)
    chosen.chosen_by = losses
    return chosen

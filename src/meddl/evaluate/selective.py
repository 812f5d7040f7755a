"""Selective prediction: how well the model does on the cases it is surest of, as more of the rest are referred to a
clinician (the risk–coverage curve), and a referral rule that meets a target on the cases it keeps.

A case's *confidence* is how far its score is from the decision: for a binary model, the distance of P(positive)
from the threshold as a share of the room on that side (0 at the threshold, 1 at 0 or 1); for a multiclass model,
the probability of the top class. Referring the least confident share ``r`` of cases and scoring the rest gives one
point of the curve; bootstrap resamples (by patient when ids are given) give each point a CI.

The referral rule for a target (e.g. sensitivity ≥ 0.9 on the cases kept) is chosen on the validation split — the
least referral that meets it there — and judged on the test split, where its referred share and the kept cases'
metric are reported with CIs: choosing it on the test split would flatter it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from meddl.errors import MedDLError
from meddl.evaluate.bootstrap import _percentile_interval, _resample_indices

__all__ = ["REFERRAL_METRICS", "ReferralRule", "choose_referral", "confidence", "judge_referral", "risk_coverage"]

REFERRAL_METRICS = {
    "binary": ("sensitivity", "specificity", "accuracy", "precision", "npv"),
    "multiclass": ("accuracy",),
}
CURVE_SHARES = np.round(np.arange(0.0, 0.51, 0.05), 2)  # referred shares drawn in the report


def confidence(task: str, scores: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Each case's confidence in [0, 1]: distance from the binary threshold (as a share of the room on its side),
    or the top class's probability (multiclass)."""
    scores = np.asarray(scores, dtype=np.float64)
    if task == "binary":
        t = 0.5 if threshold is None else float(threshold)
        p = scores.reshape(-1)
        return np.where(p >= t, (p - t) / max(1.0 - t, 1e-12), (t - p) / max(t, 1e-12))
    if task == "multiclass":
        return scores.max(axis=1)
    raise MedDLError(f"selective prediction needs class probabilities; not available for {task} tasks")


def _metric(task: str, name: str, y: np.ndarray, decided: np.ndarray) -> float:
    """A decision metric of kept cases (``decided``: predicted class codes); NaN when undefined."""
    if len(y) == 0:
        return float("nan")
    if name == "accuracy":
        return float((decided == y).mean())
    positive, called = y == 1, decided == 1
    pairs = {
        "sensitivity": (positive & called, positive),
        "specificity": (~positive & ~called, ~positive),
        "precision": (positive & called, called),
        "npv": (~positive & ~called, ~called),
    }[name]
    hits, base = pairs
    return float(hits.sum() / base.sum()) if base.sum() else float("nan")


def _decisions(task: str, scores: np.ndarray, threshold: float | None) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if task == "binary":
        return (scores.reshape(-1) >= (0.5 if threshold is None else threshold)).astype(np.int64)
    return scores.argmax(axis=1)


def _kept_by_share(conf: np.ndarray, share: float) -> np.ndarray:
    """The cases kept when the least confident ``share`` are referred (ties broken by position, stably)."""
    n = len(conf)
    referred = round(share * n)
    keep = np.ones(n, dtype=bool)
    keep[np.argsort(conf, kind="stable")[:referred]] = False
    return keep


def risk_coverage(
    task: str,
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float | None = None,
    *,
    shares: np.ndarray = CURVE_SHARES,
    groups: np.ndarray | None = None,
    n_bootstrap: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """The kept cases' metrics (binary: sensitivity, specificity, accuracy; multiclass: accuracy) as the least
    confident ``shares`` of cases are referred, each with a bootstrap CI."""
    y = np.asarray(y, dtype=np.int64)
    conf = confidence(task, scores, threshold)
    decided = _decisions(task, scores, threshold)
    names = ["sensitivity", "specificity", "accuracy"] if task == "binary" else ["accuracy"]

    def curve(rows: np.ndarray) -> np.ndarray:  # (shares, metrics)
        c, d, t = conf[rows], decided[rows], y[rows]
        out = np.empty((len(shares), len(names)))
        for i, share in enumerate(shares):
            keep = _kept_by_share(c, float(share))
            out[i] = [_metric(task, name, t[keep], d[keep]) for name in names]
        return out

    point = curve(np.arange(len(y)))
    draws = np.array([curve(rows) for rows in _resample_indices(len(y), n_bootstrap, groups, seed)])
    result: dict[str, Any] = {"referred": [float(s) for s in shares], "n": len(y), "metrics": {}}
    for j, name in enumerate(names):
        cis = [_percentile_interval(draws[:, i, j], level) if n_bootstrap else [None, None] for i in range(len(shares))]
        result["metrics"][name] = {"value": [float(v) for v in point[:, j]], "ci": cis}
    return result


@dataclass
class ReferralRule:
    """Refer a case whose confidence is below ``cutoff``: chosen on validation so that the kept cases reach
    ``metric`` ≥ ``target`` there, referring ``validation_share`` of them."""

    metric: str
    target: float
    cutoff: float
    validation_share: float

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "target": self.target,
            "cutoff": self.cutoff,
            "validation_share": self.validation_share,
        }

    @classmethod
    def from_json(cls, info: dict[str, Any]) -> ReferralRule:
        try:
            return cls(
                str(info["metric"]), float(info["target"]), float(info["cutoff"]), float(info["validation_share"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MedDLError(f"model.json: referral: malformed entry ({exc})") from exc


def choose_referral(
    task: str,
    y_val: np.ndarray,
    scores_val: np.ndarray,
    threshold: float | None,
    metric: str,
    target: float,
    *,
    max_share: float = 0.9,
) -> ReferralRule | None:
    """The least referral whose kept validation cases reach ``metric`` ≥ ``target``, searched over the cut-offs
    the prediction rule can express (keep a case when its confidence is at least the cut-off: each distinct
    confidence, so tied cases are kept or referred together), up to ``max_share`` referred; None if none does."""
    y = np.asarray(y_val, dtype=np.int64)
    conf = confidence(task, scores_val, threshold)
    decided = _decisions(task, scores_val, threshold)
    for position, cutoff in enumerate(np.unique(conf)):
        keep = conf >= cutoff
        share = float(1.0 - keep.mean())
        if share > max_share:
            break
        value = _metric(task, metric, y[keep], decided[keep])
        if np.isfinite(value) and value >= target:
            return ReferralRule(metric, target, 0.0 if position == 0 else float(cutoff), share)
    return None


def judge_referral(
    rule: ReferralRule,
    task: str,
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float | None,
    *,
    groups: np.ndarray | None = None,
    n_bootstrap: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """The rule on held-out cases: the share referred and the kept cases' metric, with bootstrap CIs."""
    y = np.asarray(y, dtype=np.int64)
    conf = confidence(task, scores, threshold)
    decided = _decisions(task, scores, threshold)
    kept = conf >= rule.cutoff

    def figures(rows: np.ndarray) -> tuple[float, float]:
        k = kept[rows]
        return float(1.0 - k.mean()), _metric(task, rule.metric, y[rows][k], decided[rows][k])

    share, value = figures(np.arange(len(y)))
    draws = np.array([figures(rows) for rows in _resample_indices(len(y), n_bootstrap, groups, seed)])
    ci = (lambda j: _percentile_interval(draws[:, j], level)) if n_bootstrap else (lambda j: [None, None])
    return {
        **rule.to_json(),
        "referred": {"value": share, "ci": ci(0)},
        "kept_metric": {"value": value, "ci": ci(1)},
        "n": len(y),
    }

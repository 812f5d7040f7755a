"""Split conformal prediction: sets of labels and intervals that hold the truth for a chosen share of cases.

Calibrated on a held-out *calibration* part of the validation split (cases the model never trained on and that
chose nothing else: not the epoch, the threshold or the recalibration map). With ``n`` calibration cases and level
``alpha``, the threshold is the ``ceil((n + 1)(1 - alpha))``-th smallest nonconformity score: under
exchangeability a new case's set (interval) holds its true label (value) with probability at least ``1 - alpha``.

Nonconformity scores (the conventions of MAPIE, which the tests check against):

- ``lac`` (least ambiguous set-valued classifier, Sadinle et al. 2019): ``1 - p(true label)``; a label joins the
  set when ``1 - p`` is at most the threshold. Smallest sets on average; may be empty when nothing is likely.
- ``aps`` (adaptive prediction sets, Romano et al. 2020): the probability mass of the labels ranked above the true
  one plus a uniform share of its own; labels join in order of probability until that mass reaches the threshold
  (the last one included). Never empty; larger for hard cases, coverage per difficulty closer to 1 - alpha.
- ``raps`` (regularised APS, Angelopoulos et al. 2021): APS plus ``lambda`` for every rank beyond ``k_reg``;
  smaller sets when many classes share little probability. Sets follow the paper's non-randomised rule (a label
  joins while the mass and penalties of the labels above it are within the threshold).
- regression: the absolute residual; the interval is the prediction ± the threshold.
- survival: a lower bound on the time to the event. The score is ``log q(x) - log t``, where ``q(x)`` is the time
  at which the case's predicted survival falls to ``1 - alpha`` and ``t`` the observed follow-up (event or
  censoring time); the bound is ``q(x) · exp(-threshold)``. Calibrating on follow-up rather than the unknown event
  time of censored cases is conservative and needs no censoring model: the event time is never before the
  follow-up, so P(T ≥ bound) ≥ P(follow-up ≥ bound) ≥ 1 - alpha (Candès, Lei & Ren 2023, the "naive" bound).

Mondrian (class- or group-conditional) conformal prediction calibrates one threshold per class (``class``: the
candidate label's own calibration cases) or per level of a subgroup column, so coverage holds within each. A level
of a column without enough calibration cases of its own falls back to the pooled threshold, and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meddl.errors import MedDLError
from meddl.evaluate.bootstrap import bootstrap_metrics

__all__ = [
    "CONFORMAL_METHODS",
    "ConformalPredictor",
    "conformal_coverage",
    "conformal_quantile",
    "fit_conformal",
    "min_calibration_size",
    "set_labels",
]

CONFORMAL_METHODS = ("lac", "aps", "raps")
POOLED = "*"


def min_calibration_size(alpha: float) -> int:
    """The fewest calibration cases for which the ``1 - alpha`` threshold is a finite score:
    ``(n + 1)(1 - alpha) <= n``, i.e. ``n >= 1/alpha - 1``."""
    return max(1, math.ceil((1.0 - alpha) / alpha - 1e-9))


def conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    """The ``ceil((n + 1)(1 - alpha))``-th smallest score (``inf`` when there are too few scores)."""
    values = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    n = len(values)
    k = math.ceil((n + 1) * (1.0 - alpha) - 1e-9)
    if n == 0 or k > n:
        return math.inf
    return float(values[max(k, 1) - 1])


def _probabilities(task: str, scores: np.ndarray) -> np.ndarray:
    """Per-class probabilities (n, K): a binary score is P(positive), so the two columns are (1 - p, p)."""
    scores = np.asarray(scores, dtype=np.float64)
    if task == "binary":
        p = scores.reshape(-1)
        return np.column_stack([1.0 - p, p])
    return scores


def _ranked(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order of labels by decreasing probability, the sorted probabilities and the mass ranked above each."""
    order = np.argsort(-probs, axis=1, kind="stable")
    ranked = np.take_along_axis(probs, order, axis=1)
    above = np.cumsum(ranked, axis=1) - ranked
    return order, ranked, above


def _penalty(n_labels: int, k_reg: int, lam: float) -> np.ndarray:
    """RAPS: ``lambda`` for every rank (1-based) beyond ``k_reg``."""
    return lam * np.maximum(0, np.arange(1, n_labels + 1) - k_reg)


def calibration_scores(
    probs: np.ndarray,
    y: np.ndarray,
    method: str,
    *,
    rng: np.random.Generator | np.random.RandomState,
    k_reg: int = 1,
    lam: float = 0.0,
) -> np.ndarray:
    """The nonconformity score of each calibration case's true label (APS/RAPS randomised, as MAPIE does:
    the mass up to and including the true label minus a uniform share of the true label's own probability)."""
    y = np.asarray(y, dtype=np.int64)
    true_p = probs[np.arange(len(y)), y]
    if method == "lac":
        return 1.0 - true_p
    order, _, above = _ranked(probs)
    rank = np.argmax(order == y[:, None], axis=1)  # 0-based rank of the true label
    u = rng.uniform(size=len(y))
    score = above[np.arange(len(y)), rank] + true_p - u * true_p
    if method == "raps":
        score = score + _penalty(probs.shape[1], k_reg, lam)[rank]
    return score


def label_scores(probs: np.ndarray, method: str, *, k_reg: int = 1, lam: float = 0.0) -> np.ndarray:
    """The score each candidate label is judged by at prediction time (n, K); a label joins the set when its score
    is at most the threshold. APS/RAPS: the mass ranked above the label plus (RAPS) the penalty of the rank above
    it, so the label whose inclusion reaches the threshold is kept (MAPIE's ``include_last_label=True`` and the
    non-randomised sets of Angelopoulos et al.: never an empty set)."""
    if method == "lac":
        return 1.0 - probs
    order, _, above = _ranked(probs)
    if method == "raps":  # rank r pays the penalty accrued by rank r - 1
        above = above + np.concatenate([[0.0], _penalty(probs.shape[1], k_reg, lam)[:-1]])[None, :]
    out = np.empty_like(probs)
    np.put_along_axis(out, order, above, axis=1)
    return out


@dataclass
class ConformalPredictor:
    """A fitted split-conformal predictor: thresholds per bin (``*``: pooled), applied to new cases' scores."""

    task: str
    method: str  # lac | aps | raps for classification; residual for regression
    alpha: float
    mondrian: str | None = None  # None | "class" | a subgroup column
    thresholds: dict[str, float] = field(default_factory=dict)  # bin → threshold; "*" pooled
    sizes: dict[str, int] = field(default_factory=dict)  # calibration cases per bin
    k_reg: int = 1
    lam: float = 0.0
    labels: list[str] = field(default_factory=list)  # class names (multilabel: one predictor per label)
    per_label: list[ConformalPredictor] = field(default_factory=list)  # multilabel

    # -- prediction ---------------------------------------------------------------------------------
    def _bin_thresholds(self, groups: np.ndarray | None, n: int) -> tuple[np.ndarray, list[str]]:
        """The threshold per case (group Mondrian) and the levels that fell back to the pooled one."""
        pooled = self.thresholds[POOLED]
        if self.mondrian in (None, "class") or groups is None:
            return np.full(n, pooled), []
        keys = np.asarray([str(g) for g in groups], dtype=object)
        values = np.array([self.thresholds.get(k, pooled) for k in keys], dtype=np.float64)
        return values, sorted({k for k in keys if k not in self.thresholds})

    def sets(self, scores: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """Boolean membership (n, K) of each label in each case's set (multilabel: (n, L, 2) for no / yes)."""
        if self.task == "multilabel":
            columns = np.asarray(scores, dtype=np.float64)
            return np.stack([p.sets(columns[:, j], groups) for j, p in enumerate(self.per_label)], axis=1)
        probs = _probabilities(self.task, scores)
        judged = label_scores(probs, self.method, k_reg=self.k_reg, lam=self.lam)
        if self.mondrian == "class":
            limits = np.array([self.thresholds[str(k)] for k in range(probs.shape[1])])[None, :]
        else:
            limits = self._bin_thresholds(groups, len(probs))[0][:, None]
        return judged <= limits + 1e-12

    def intervals(self, predictions: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """Regression: (n, 2) lower and upper bounds around the point predictions. Survival: ``predictions`` are
        each case's time to survival ``1 - alpha``; the lower bound on its event time, and ``inf`` above."""
        predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
        half = self._bin_thresholds(groups, len(predictions))[0]
        if self.task == "survival":
            return np.column_stack([predictions * np.exp(-half), np.full(len(predictions), np.inf)])
        return np.column_stack([predictions - half, predictions + half])

    def fallbacks(self, groups: np.ndarray | None) -> list[str]:
        """Levels of the Mondrian column among ``groups`` that had no threshold of their own (pooled used)."""
        if groups is None:
            return []
        return self._bin_thresholds(groups, len(groups))[1]

    # -- persistence -------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task": self.task,
            "method": self.method,
            "alpha": self.alpha,
            "mondrian": self.mondrian,
            "thresholds": {k: (None if math.isinf(v) else v) for k, v in self.thresholds.items()},
            "sizes": self.sizes,
            "k_reg": self.k_reg,
            "lambda": self.lam,
            "labels": self.labels,
        }
        if self.per_label:
            out["per_label"] = [p.to_json() for p in self.per_label]
        return out

    @classmethod
    def from_json(cls, info: dict[str, Any]) -> ConformalPredictor:
        try:
            return cls(
                task=str(info["task"]),
                method=str(info["method"]),
                alpha=float(info["alpha"]),
                mondrian=info.get("mondrian"),
                thresholds={str(k): (math.inf if v is None else float(v)) for k, v in info["thresholds"].items()},
                sizes={str(k): int(v) for k, v in info.get("sizes", {}).items()},
                k_reg=int(info.get("k_reg", 1)),
                lam=float(info.get("lambda", 0.0)),
                labels=[str(x) for x in info.get("labels", [])],
                per_label=[cls.from_json(p) for p in info.get("per_label", [])],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MedDLError(f"model.json: conformal: malformed entry ({exc})") from exc


def fit_conformal(
    task: str,
    y: np.ndarray,
    scores: np.ndarray,
    *,
    alpha: float,
    method: str = "lac",
    mondrian: str | None = None,
    groups: np.ndarray | None = None,
    min_group_size: int | None = None,
    k_reg: int = 1,
    lam: float = 0.01,
    seed: int = 0,
    labels: list[str] | None = None,
) -> ConformalPredictor:
    """Calibrate a conformal predictor on the calibration cases' labels ``y`` and the model's ``scores``.

    Args:
        task: binary, multiclass, multilabel or regression.
        y: true labels (class codes; multilabel (n, L) of 0/1; regression values).
        scores: the model's probabilities (binary: P(positive); multiclass (n, K); multilabel (n, L)) or, for
            regression, its point predictions.
        alpha: the share of cases whose set may miss the truth.
        method: lac | aps | raps (classification); regression always uses the absolute residual.
        mondrian: None, ``class`` (a threshold per class) or the name of the column ``groups`` holds.
        groups: the Mondrian column's level per calibration case.
        min_group_size: levels with fewer calibration cases use the pooled threshold (default: the least that
            gives a finite threshold at ``alpha``).
        k_reg, lam: RAPS's regularisation (ranks beyond ``k_reg`` cost ``lam`` each).
        seed: the randomisation of APS/RAPS calibration scores (``numpy.random.RandomState(seed)``, as MAPIE's
            ``random_state``).
        labels: class (or, multilabel, label) names.
    """
    if not 0.0 < alpha < 1.0:
        raise MedDLError(f"evaluate.conformal.alpha must be strictly between 0 and 1, got {alpha}")
    names = list(labels or [])
    if task == "multilabel":
        y2, s2 = np.asarray(y, dtype=np.float64), np.asarray(scores, dtype=np.float64)
        seen = ~np.isnan(y2)  # each label is calibrated on the cases where it was observed
        per_label = [
            fit_conformal(
                "binary",
                y2[seen[:, j], j].astype(np.int64),
                s2[seen[:, j], j],
                alpha=alpha,
                method=method,
                mondrian=mondrian,
                groups=None if groups is None else np.asarray(groups)[seen[:, j]],
                min_group_size=min_group_size,
                k_reg=k_reg,
                lam=lam,
                seed=seed + j,
                labels=["no", "yes"],
            )
            for j in range(s2.shape[1])
        ]
        return ConformalPredictor(
            task, method, alpha, mondrian, {POOLED: math.nan}, {POOLED: len(y2)}, k_reg, lam, names, per_label
        )
    if task == "regression":
        residual = np.abs(np.asarray(y, dtype=np.float64) - np.asarray(scores, dtype=np.float64).reshape(-1))
        values, codes = residual, None
        method = "residual"
    elif task == "survival":  # y: (time, event); scores: each case's time to survival 1 - alpha
        follow_up = np.asarray(y, dtype=np.float64)[:, 0]
        values = np.log(_positive(np.asarray(scores, dtype=np.float64).reshape(-1))) - np.log(_positive(follow_up))
        codes, method = None, "lower_bound"
    else:
        probs = _probabilities(task, scores)
        codes = np.asarray(y, dtype=np.int64)
        values = calibration_scores(probs, codes, method, rng=np.random.RandomState(seed), k_reg=k_reg, lam=lam)
    thresholds = {POOLED: conformal_quantile(values, alpha)}
    sizes = {POOLED: len(values)}
    least = min_group_size or min_calibration_size(alpha)
    if mondrian == "class" and codes is not None:
        n_classes = len(names) if names else int(codes.max()) + 1
        for k in range(n_classes):
            member = codes == k
            thresholds[str(k)] = conformal_quantile(values[member], alpha)
            sizes[str(k)] = int(member.sum())
    elif mondrian is not None and groups is not None:
        keys = np.asarray([str(g) for g in groups], dtype=object)
        for level in sorted(set(keys)):
            member = keys == level
            sizes[level] = int(member.sum())
            if member.sum() >= least:
                thresholds[level] = conformal_quantile(values[member], alpha)
    return ConformalPredictor(task, method, alpha, mondrian, thresholds, sizes, k_reg, lam, names)


def _positive(times: np.ndarray) -> np.ndarray:
    """Times for a log: a follow-up of 0 (an event on day 0) counts as the smallest positive time seen."""
    positive = times[times > 0]
    floor = float(positive.min()) / 2 if positive.size else 1e-6
    return np.maximum(times, floor)


def set_labels(members: np.ndarray, names: list[str]) -> list[list[str]]:
    """Each case's set as its label names, in the classes' order."""
    return [[names[k] for k in np.flatnonzero(row)] for row in members]


def _coverage_figures(task: str, y: np.ndarray, sets: np.ndarray) -> dict[str, Any]:
    """Per case: whether the set (interval) holds the truth, and its size (width)."""
    if task == "regression":
        y = np.asarray(y, dtype=np.float64)
        return {"covered": (sets[:, 0] <= y) & (y <= sets[:, 1]), "size": sets[:, 1] - sets[:, 0]}
    if task == "survival":  # covered when the follow-up reaches the bound: a lower bound on the event-time coverage
        follow_up = np.asarray(y, dtype=np.float64)[:, 0]
        return {"covered": follow_up >= sets[:, 0], "size": sets[:, 0]}
    if task == "multilabel":  # a label not observed on a case (NaN) is neither covered nor missed
        truth = np.asarray(y, dtype=np.float64)
        rows, labels = np.indices(truth.shape)
        covered = sets[rows, labels, np.nan_to_num(truth).astype(np.int64)].astype(np.float64)
        size = sets.sum(axis=2).astype(np.float64)
        unseen = np.isnan(truth)
        return {"covered": np.where(unseen, np.nan, covered), "size": np.where(unseen, np.nan, size)}
    y = np.asarray(y, dtype=np.int64)
    return {"covered": sets[np.arange(len(y)), y], "size": sets.sum(axis=1)}


def conformal_coverage(
    task: str,
    y: np.ndarray,
    sets: np.ndarray,
    *,
    class_names: list[str] | None = None,
    breakdowns: dict[str, np.ndarray] | None = None,
    patient_ids: np.ndarray | None = None,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    min_size: int = 1,
) -> dict[str, Any]:
    """Empirical coverage and mean set size (interval width) on held-out cases, with bootstrap CIs (by patient
    when ``patient_ids`` are given): overall, per true class (classification) or label (multilabel), and per
    level of each ``breakdowns`` column. Levels with fewer than ``min_size`` cases are listed but not scored."""
    figures = _coverage_figures(task, y, sets)
    covered, size = figures["covered"].astype(np.float64), figures["size"].astype(np.float64)
    size_name = {"regression": "mean_width", "survival": "mean_lower_bound"}.get(task, "mean_set_size")
    per_label = None
    everyone = np.ones(len(covered), dtype=bool)
    if task == "multilabel":  # a case's figures: the mean over its observed labels; each label is judged alone
        per_label = (covered, size)
        everyone = ~np.isnan(covered).all(axis=1)  # a case with no observed label is not judged
        covered = np.nanmean(np.where(everyone[:, None], covered, 0.0), axis=1)
        size = np.nanmean(np.where(everyone[:, None], size, 0.0), axis=1)

    def judge(member: np.ndarray, c: np.ndarray, s: np.ndarray) -> dict[str, Any]:
        c, s = c[member], s[member]
        extra = {}
        if task in {"binary", "multiclass"}:
            extra = {"share_uncertain": (s > 1).astype(np.float64), "share_empty": (s == 0).astype(np.float64)}

        def compute(rows: np.ndarray) -> dict[str, float]:
            out = {"coverage": float(c[rows].mean()), size_name: float(s[rows].mean())}
            out.update({name: float(v[rows].mean()) for name, v in extra.items()})
            return out

        ids = patient_ids[member] if patient_ids is not None else None
        result: dict[str, Any] = bootstrap_metrics(
            compute, int(member.sum()), n_resamples=n_bootstrap, groups=ids, level=level, seed=seed
        )
        result["n"] = int(member.sum())
        return result

    def judged(member: np.ndarray) -> dict[str, Any]:
        return judge(member, covered, size) if member.sum() >= min_size else {"n": int(member.sum())}

    report: dict[str, Any] = {"overall": judge(everyone, covered, size)}
    if per_label is not None:
        names = class_names or [str(j) for j in range(per_label[0].shape[1])]
        report["per_label"] = {
            name: judge(~np.isnan(per_label[0][:, j]), per_label[0][:, j], per_label[1][:, j])
            for j, name in enumerate(names)
        }
    elif task in {"binary", "multiclass"}:
        codes = np.asarray(y, dtype=np.int64)
        names = class_names or [str(k) for k in range(int(codes.max()) + 1)]
        report["per_class"] = {name: judged(codes == k) for k, name in enumerate(names)}
    elif task == "survival":  # among observed events the coverage is exact; censored cases only bound it from below
        report["events"] = judged(np.asarray(y, dtype=np.float64)[:, 1] > 0)
    for column, levels in (breakdowns or {}).items():
        keys = np.asarray([str(v) for v in levels], dtype=object)
        report.setdefault("per_group", {})[column] = {
            level: judged((keys == level) & everyone) for level in sorted(set(keys))
        }
    return report

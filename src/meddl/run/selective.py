"""Selective prediction in a training run: the test split's risk–coverage curve (every binary and multiclass run)
and, with ``evaluate.referral``, the referral rule chosen on validation and judged on test (kept in the bundle)."""

from __future__ import annotations

from typing import Any

import numpy as np

from meddl.config import ExperimentConfig
from meddl.evaluate.selective import ReferralRule, choose_referral, judge_referral, risk_coverage

__all__ = ["selective_report"]


def _fmt(entry: dict[str, Any], percent: bool = False) -> str:
    value, (low, high) = entry["value"], entry["ci"]
    if value is None or not np.isfinite(value):
        return "undefined"
    shown = (lambda v: f"{v:.1%}") if percent else (lambda v: f"{v:.3f}")
    if low is None or not np.isfinite(low):
        return shown(value)
    return f"{shown(value)} ({shown(low)}–{shown(high)})"


def selective_report(
    config: ExperimentConfig,
    *,
    y_val: np.ndarray,
    val_scores: np.ndarray,
    y_test: np.ndarray,
    test_scores: np.ndarray,
    threshold: float | None,
    groups: np.ndarray | None,
) -> tuple[ReferralRule | None, dict[str, Any] | None, dict[str, Any] | None]:
    """(the referral rule for the bundle, the figures for ``metrics.json``, the report's section); Nones for tasks
    without class probabilities."""
    task, e = config.task, config.evaluate
    if task not in {"binary", "multiclass"}:
        return None, None, None
    # eleven points per resample: 200 resamples keep the section under a second
    resampling: dict[str, Any] = {
        "groups": groups,
        "n_bootstrap": min(e.bootstrap, 200),
        "level": e.confidence_level,
        "seed": config.train.seed,
    }
    curve = risk_coverage(task, y_test, test_scores, threshold, **resampling)
    figures: dict[str, Any] = {"risk_coverage": curve}
    rule, judged = None, None
    target = e.referral
    if target is not None:
        rule = choose_referral(task, y_val, val_scores, threshold, target.metric, target.at_least)
        if rule is not None:
            judged = judge_referral(rule, task, y_test, test_scores, threshold, **resampling)
        figures["referral"] = judged or {"metric": target.metric, "target": target.at_least, "reachable": False}
    return rule, figures, _section(config, curve, judged)


def _section(config: ExperimentConfig, curve: dict[str, Any], judged: dict[str, Any] | None) -> dict[str, Any]:
    from meddl.report.selective_plots import risk_coverage_plot

    task = config.task
    how = (
        "distance of the probability from the decision threshold"
        if task == "binary"
        else "the probability of the top class"
    )
    text = [
        f"Cases ranked by the model's confidence ({how}); the least confident share is referred to a clinician and "
        f"the rest scored. Test split, n = {curve['n']}; bootstrap CIs.",
    ]
    target = config.evaluate.referral
    if target is not None and judged is None:
        text.append(
            f"evaluate.referral: no referral of up to 90 % of the validation cases reached {target.metric} ≥ "
            f"{target.at_least:g}; no rule is kept in the bundle."
        )
    elif judged is not None:
        text.append(
            f"Referral rule for {judged['metric']} ≥ {judged['target']:g}: refer a case whose confidence is below "
            f"{judged['cutoff']:.3f} (chosen on validation, where it referred {judged['validation_share']:.0%}). On "
            f"the test split it referred {_fmt(judged['referred'], percent=True)} of cases, and the kept cases' "
            f"{judged['metric']} was {_fmt(judged['kept_metric'])}. meddl predict and the server mark referred "
            "cases uncertain."
        )
    names = list(curve["metrics"])
    rows = []
    for i, share in enumerate(curve["referred"]):
        if round(100 * share) % 10:
            continue  # the table shows every 10 %; the figure every 5 %
        cells = [f"{share:.0%}"]
        for name in names:
            entry = curve["metrics"][name]
            cells.append(_fmt({"value": entry["value"][i], "ci": entry["ci"][i]}))
        rows.append(cells)
    section: dict[str, Any] = {
        "id": "selective",
        "title": "Referring the least confident cases",
        "text": text,
        "table": {"columns": ["Referred", *[f"{n} of kept (CI)" for n in names]], "rows": rows},
    }
    image = risk_coverage_plot(curve, judged)
    if image is not None:
        caption = "Each metric on the cases kept, as the least confident share is referred; bands: bootstrap CIs."
        section["figures"] = [{"title": "Risk–coverage", "png": image, "caption": caption}]
    return section

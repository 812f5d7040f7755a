"""The risk–coverage figure of a run report: the kept cases' metrics as the least confident share is referred."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from meddl.report.plots import _MODEL_COLOUR, _REFERENCE_COLOUR, _legend, _new_figure, _style, _to_base64

__all__ = ["risk_coverage_plot"]

_COLOURS = {"sensitivity": _MODEL_COLOUR, "specificity": "#c2410c", "accuracy": "#047857"}


def risk_coverage_plot(curve: Mapping[str, Any] | None, referral: Mapping[str, Any] | None = None) -> str | None:
    """Each metric of the kept cases (line, with its CI band) against the share referred; the referral rule's
    target and share as dotted lines when there is one.

    Args:
        curve: What :func:`meddl.evaluate.selective.risk_coverage` returns.
        referral: What :func:`meddl.evaluate.selective.judge_referral` returns, or None.

    Returns:
        Base64 PNG, or None without a curve.
    """
    if not curve or not curve.get("metrics"):
        return None
    shares = 100 * np.asarray(curve["referred"], dtype=float)
    figure = _new_figure(5.6, 4.0)
    axes = figure.add_subplot(1, 1, 1)
    for name, entry in curve["metrics"].items():
        values = np.asarray(entry["value"], dtype=float)
        bounds = np.array([[np.nan, np.nan] if b[0] is None else b for b in entry["ci"]], dtype=float)
        colour = _COLOURS.get(name, _MODEL_COLOUR)
        axes.fill_between(shares, bounds[:, 0], bounds[:, 1], color=colour, alpha=0.15, linewidth=0)
        axes.plot(shares, values, marker="o", markersize=3, color=colour, linewidth=1.8, label=name)
    if referral:
        axes.axhline(float(referral["target"]), color=_REFERENCE_COLOUR, linestyle=":", linewidth=1.2)
        axes.axvline(100 * float(referral["referred"]["value"]), color=_REFERENCE_COLOUR, linestyle=":", linewidth=1.2)
        axes.plot([], [], color=_REFERENCE_COLOUR, linestyle=":", label=f"target {referral['metric']}, test referral")
    _style(axes, "Kept cases as the least sure are referred", "Cases referred (%)", "Metric on kept cases")
    _legend(axes, "lower right")
    return _to_base64(figure)

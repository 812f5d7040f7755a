"""The survival figures of a run report: Kaplan–Meier curves of the test patients by predicted risk group, and
calibration at each horizon (predicted survival against Kaplan–Meier by risk bin)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from meddl.report._format import as_float
from meddl.report.plots import _BASELINE_COLOURS, _MODEL_COLOUR, _REFERENCE_COLOUR, _legend, _new_figure, _style
from meddl.report.plots import _to_base64 as to_base64

__all__ = ["cumulative_incidence_plot", "km_groups_plot", "survival_calibration_plot", "time_dependent_plot"]

_GROUP_COLOURS = ("#009e73", "#e69f00", "#d55e00")


def km_groups_plot(
    curves: Mapping[str, Any] | None, names: Sequence[str], logrank_p: float | None, time_unit: str = "time"
) -> str | None:
    """Kaplan–Meier step curves, one per risk group (``{group: {"time", "survival", "n", "events"}}``)."""
    if not curves:
        return None
    figure = _new_figure(5.6, 4.2)
    axes = figure.add_subplot(1, 1, 1)
    for k, (group, curve) in enumerate(sorted(curves.items(), key=lambda item: str(item[0]))):
        times = [0.0, *[float(t) for t in curve.get("time", [])]]
        survival = [1.0, *[float(s) for s in curve.get("survival", [])]]
        name = names[k] if k < len(names) else str(group)
        label = f"{name} (n = {curve.get('n', '?')}, {curve.get('events', '?')} events)"
        axes.step(times, survival, where="post", color=_GROUP_COLOURS[k % len(_GROUP_COLOURS)], label=label)
    p = as_float(logrank_p)
    title = "Kaplan–Meier by predicted risk group" + (f" (log-rank p = {p:.2g})" if p is not None else "")
    _style(axes, title, time_unit, "Proportion without the event")
    axes.set_ylim(-0.02, 1.02)
    _legend(axes, "lower left")
    return to_base64(figure)


def survival_calibration_plot(calibration: Sequence[Mapping[str, Any]] | None) -> str | None:
    """Per horizon: mean predicted survival against the Kaplan–Meier observed survival of each risk bin (with its
    95% CI), and the diagonal of perfect calibration."""
    usable = [entry for entry in calibration or [] if entry.get("bins")]
    if not usable:
        return None
    figure = _new_figure(5.0, 5.0)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot([0, 1], [0, 1], linestyle="--", color=_REFERENCE_COLOUR, linewidth=1, label="Perfect calibration")
    for k, entry in enumerate(usable):
        # a bin whose follow-up ends before the horizon has no observed value: left out, never imputed
        bins = [
            b
            for b in entry["bins"]
            if as_float(b.get("observed")) is not None and as_float(b.get("predicted")) is not None
        ]
        if not bins:
            continue
        predicted = [float(b["predicted"]) for b in bins]
        observed = [float(b["observed"]) for b in bins]
        low, high = [], []
        for b, value in zip(bins, observed, strict=True):
            ci = b.get("observed_ci") or [None, None]
            lower, upper = as_float(ci[0]), as_float(ci[1])
            low.append(value - lower if lower is not None else 0.0)
            high.append(upper - value if upper is not None else 0.0)
        colour = _MODEL_COLOUR if k == 0 else _BASELINE_COLOURS[(k - 1) % len(_BASELINE_COLOURS)]
        slope = as_float(entry.get("slope"))
        label = f"at {float(entry['horizon']):g}" + (f" (slope {slope:.2f})" if slope is not None else "")
        axes.errorbar(predicted, observed, yerr=[low, high], marker="o", markersize=4, color=colour, label=label)
    _style(axes, "Calibration at each horizon", "Predicted survival", "Observed survival (Kaplan–Meier)")
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(-0.01, 1.01)
    _legend(axes, "upper left")
    return to_base64(figure)


def cumulative_incidence_plot(
    observed: Mapping[str, Any] | None, predicted: Mapping[str, Any] | None, time_unit: str = "time"
) -> str | None:
    """Competing risks: each cause's observed cumulative incidence (Aalen–Johansen step curve) and the model's
    mean predicted cumulative incidence at each horizon (points)."""
    if not observed:
        return None
    figure = _new_figure(5.6, 4.2)
    axes = figure.add_subplot(1, 1, 1)
    for k, (cause, curve) in enumerate(observed.items()):
        colour = _GROUP_COLOURS[k % len(_GROUP_COLOURS)]
        times = [0.0, *[float(t) for t in curve.get("time", [])]]
        cif = [0.0, *[float(v) for v in curve.get("cif", [])]]
        axes.step(times, cif, where="post", color=colour, label=f"{cause}: observed (Aalen–Johansen)")
        mean = (predicted or {}).get(cause) or {}
        if mean.get("horizons"):
            axes.plot(
                [float(h) for h in mean["horizons"]],
                [float(v) for v in mean["mean_cif"]],
                linestyle="none",
                marker="o",
                color=colour,
                label=f"{cause}: mean predicted",
            )
    _style(axes, "Cumulative incidence by cause", time_unit, "Probability the event has occurred")
    axes.set_ylim(-0.02, 1.02)
    _legend(axes, "upper left")
    return to_base64(figure)


def time_dependent_plot(metrics: Mapping[str, Any] | None, time_unit: str = "time") -> str | None:
    """Time-dependent AUC and Brier score at each horizon, with their CIs (two panels)."""
    metrics = metrics or {}
    panels = []
    for prefix, title in (("auc@", "Time-dependent AUC"), ("brier@", "Brier score (lower is better)")):
        points = sorted(
            (float(name.removeprefix(prefix)), entry)
            for name, entry in metrics.items()
            if name.startswith(prefix) and as_float((entry or {}).get("value")) is not None
        )
        if points:
            panels.append((title, points))
    if not panels:
        return None
    figure = _new_figure(4.0 * len(panels) + 0.8, 3.6)
    for k, (title, points) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), k + 1)
        times = [t for t, _ in points]
        values = [float(e["value"]) for _, e in points]
        low, high = [], []
        for (_, entry), value in zip(points, values, strict=True):
            ci = entry.get("ci") or [None, None]
            lower, upper = as_float(ci[0]), as_float(ci[1])
            low.append(value - lower if lower is not None else 0.0)
            high.append(upper - value if upper is not None else 0.0)
        axes.errorbar(times, values, yerr=[low, high], marker="o", color=_MODEL_COLOUR, capsize=3)
        if title.startswith("Time-dependent AUC"):
            axes.axhline(0.5, linestyle="--", color=_REFERENCE_COLOUR, linewidth=1)
        _style(axes, title, f"horizon ({time_unit})", None)
    return to_base64(figure)

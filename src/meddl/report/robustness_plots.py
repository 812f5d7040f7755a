"""The robustness section of a run report: the main metric against the severity of each corruption, with its CI, as
a table and a figure."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from typing import Any

import numpy as np

from meddl.report._format import (
    DASH,
    as_float,
    ci_bounds,
    fmt_estimate,
    fmt_interval,
    fmt_metric,
    mapping,
    metric_label,
    sequence,
)
from meddl.report.plots import _MODEL_COLOUR, _REFERENCE_COLOUR, _legend, _new_figure, _style, _to_base64

__all__ = ["robustness_plot", "robustness_section"]

_COLUMNS = 3


def _points(
    corruption: Mapping[str, Any], clean: float, clean_ci: tuple[float, float] | None
) -> tuple[np.ndarray, ...]:
    """Severity (0 = clean), value and CI bounds of one corruption; nan where a value or bound is missing."""
    rows = [mapping(row) for row in sequence(corruption.get("severities"))]
    severity = [0.0, *[as_float(row.get("severity")) or math.nan for row in rows]]
    value = [clean, *[as_float(row.get("value")) or math.nan for row in rows]]
    bounds = [clean_ci or (math.nan, math.nan), *[ci_bounds(row.get("ci")) or (math.nan, math.nan) for row in rows]]
    low, high = zip(*bounds, strict=True)
    return tuple(np.asarray(v, dtype=float) for v in (severity, value, low, high))


def robustness_plot(robustness: Mapping[str, Any] | None) -> str | None:
    """One panel per corruption (each has its own severity unit): the metric at each severity with its CI band,
    starting from the clean value at severity 0, and the clean value as a dashed line across.

    Args:
        robustness: What :func:`meddl.evaluate.robustness.evaluate_robustness` returns.

    Returns:
        A base64 PNG, or None when no corruption has a value to draw.
    """
    record = mapping(robustness)
    clean_record = mapping(record.get("clean"))
    clean = as_float(clean_record.get("value"))
    corruptions = [
        mapping(c)
        for c in sequence(record.get("corruptions"))
        if any(as_float(mapping(row).get("value")) is not None for row in sequence(mapping(c).get("severities")))
    ]
    if clean is None or not corruptions:
        return None
    clean_ci = ci_bounds(clean_record.get("ci"))
    name = metric_label(str(record.get("metric", "")))
    columns = min(_COLUMNS, len(corruptions))
    rows = math.ceil(len(corruptions) / columns)
    figure = _new_figure(3.1 * columns + 0.3, 2.7 * rows + 0.2)
    grid = figure.subplots(rows, columns, squeeze=False)
    for k, corruption in enumerate(corruptions):
        axes = grid[k // columns][k % columns]
        severity, value, low, high = _points(corruption, clean, clean_ci)
        axes.axhline(clean, color=_REFERENCE_COLOUR, linestyle="--", linewidth=1, label="Clean")
        axes.fill_between(severity, low, high, color=_MODEL_COLOUR, alpha=0.15, linewidth=0)
        axes.plot(severity, value, marker="o", markersize=3.5, color=_MODEL_COLOUR, label="Corrupted")
        title = textwrap.shorten(str(corruption.get("label") or corruption.get("name")), width=64, placeholder=" …")
        unit = textwrap.fill(str(corruption.get("unit") or "severity"), 40)
        _style(axes, textwrap.fill(title, 34), unit, name if k % columns == 0 else None)
        axes.title.set_fontsize(8.5)
        axes.xaxis.label.set_fontsize(8)
        if k == 0:
            _legend(axes)
    for k in range(len(corruptions), rows * columns):
        grid[k // columns][k % columns].set_visible(False)
    return _to_base64(figure)


def robustness_section(figures: Mapping[str, Any], level: float, title: str) -> dict[str, Any]:
    """The report's section of the robustness suite (a run record's ``sections`` entry): what was done, the worst
    case, a table of the metric per corruption and severity with its CI and change from clean, and the figure.

    Args:
        figures: What :func:`meddl.evaluate.robustness.evaluate_robustness` returns.
        level: Coverage of its intervals (``evaluate.confidence_level``).
        title: How a person names the data kind (``Modality.title``).
    """
    name = figures["metric"]
    label = metric_label(name)
    clean = figures["clean"]
    percent = f"{100 * level:g}%"
    text = [
        f"The test split (n = {figures['n']}) scored again after corrupting the model's inputs ({title}) in the "
        f"ways such data get worse, each at rising severity: {label} with its {percent} bootstrap CI at each "
        f"(the same resamples as the clean value). Clean: {fmt_estimate(name, clean)}. The corruptions act on the "
        "inputs after preprocessing: what reaches the model."
    ]
    if figures.get("undefined"):
        text.append(f"{label} is not defined on the test split ({figures['undefined']}): no figure to compare.")
    worst = figures.get("worst")
    if worst and worst["drop"] <= 0:
        text.append(f"No corruption made {label} worse than on the clean inputs.")
    elif worst:
        unit = next((c["unit"] for c in figures["corruptions"] if c["name"] == worst["corruption"]), "")
        drop = fmt_metric(name, worst["drop"], reference=worst["value"])
        interval = fmt_interval(name, worst["ci"], reference=worst["value"])
        direction = "higher" if not figures["higher_is_better"] else "lower"
        text.append(
            f"Worst case: {worst['label']} at {worst['severity']:g} ({unit}): {label} "
            f"{fmt_metric(name, worst['value'])}, "
            f"{drop} {direction} than clean" + (f" (paired {percent} CI of the drop {interval})." if interval else ".")
        )
    rows = []
    for corruption in figures["corruptions"]:
        for k, entry in enumerate(corruption["severities"]):
            change = None
            if entry["value"] is not None and clean["value"] is not None:
                change = entry["value"] - clean["value"]
            rows.append(
                [
                    corruption["label"] if k == 0 else "",
                    f"{entry['severity']:g} ({corruption['unit']})",
                    fmt_estimate(name, entry),
                    DASH
                    if change is None
                    else f"{'+' if change >= 0 else '−'}{fmt_metric(name, abs(change), entry['value'])}",
                ]
            )
    section: dict[str, Any] = {
        "id": "robustness",
        "title": "Robustness to corrupted data",
        "text": text,
        "table": {"columns": ["Corruption", "Severity", f"{label} ({percent} CI)", "Change from clean"], "rows": rows},
        "figures": [],
    }
    image = robustness_plot(figures)
    if image is not None:
        caption = (
            f"{label} against the severity of each corruption (severity 0: clean), with its {percent} bootstrap CI; "
            "the dashed line is the clean value."
        )
        section["figures"] = [{"title": f"{label} under corruption", "png": image, "caption": caption}]
    return section

"""Figures for the report, each returned as a base64-encoded PNG ready for a ``data:`` URL.

Every function returns None when the data it needs is absent, so a report simply leaves the figure out.

Figures are made with :class:`matplotlib.figure.Figure` and the Agg renderer directly, never through
``pyplot``: nothing is registered in pyplot's global figure list (so nothing needs closing and memory does
not grow over many reports), the process-wide backend is left as the user set it (importing MedDL in a
notebook does not break its inline plots), and figures can be drawn from several threads of a server.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from meddl.report._format import as_float

__all__ = [
    "calibration_plot",
    "confusion_plot",
    "decision_curve_plot",
    "history_plot",
    "importance_plot",
    "pr_plot",
    "regression_scatter_plot",
    "roc_plot",
    "shift_plot",
]

Curve = Mapping[str, Any]

_DPI = 110
_MODEL_COLOUR = "#0b5394"
# Okabe–Ito colours: distinguishable with the common forms of colour blindness.
_BASELINE_COLOURS = ("#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442")
_REFERENCE_COLOUR = "#7f7f7f"
_TEXT_COLOUR = "#222222"
_MAX_SCATTER_POINTS = 5000


# -- helpers ---------------------------------------------------------------------------------------


def _new_figure(width: float = 5.2, height: float = 4.2) -> Figure:
    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _style(axes: Axes, title: str | None = None, xlabel: str | None = None, ylabel: str | None = None) -> None:
    axes.spines["top"].set_visible(False)
    axes.spines["right"].set_visible(False)
    axes.grid(True, color="#e6e6e6", linewidth=0.6)
    axes.set_axisbelow(True)
    axes.tick_params(labelsize=8, colors=_TEXT_COLOUR)
    if title:
        axes.set_title(title, fontsize=10, color=_TEXT_COLOUR, loc="left")
    if xlabel:
        axes.set_xlabel(xlabel, fontsize=9, color=_TEXT_COLOUR)
    if ylabel:
        axes.set_ylabel(ylabel, fontsize=9, color=_TEXT_COLOUR)


Location = Literal["best", "upper left", "upper right", "lower left", "lower right"]


def _legend(axes: Axes, location: Location = "best") -> None:
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8, frameon=False, loc=location)


def _to_base64(figure: Figure) -> str:
    buffer = io.BytesIO()
    # No "Software" entry: the same data gives the same bytes whatever the matplotlib version.
    figure.savefig(buffer, format="png", dpi=_DPI, facecolor="white", metadata={"Software": None})
    figure.clear()
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _numbers(values: object, name: str) -> np.ndarray:
    if not isinstance(values, Sequence | np.ndarray) or isinstance(values, str | bytes):
        raise ValueError(f"{name}: expected a list of numbers, got {type(values).__name__}")
    try:
        return np.array([np.nan if value is None else value for value in values], dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a list of numbers, got {list(values)[:3]!r}...") from None


def _xy(curve: object, x_key: str, y_key: str, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The finite (x, y) pairs of a curve, or None when the curve or all its points are missing.

    Raises:
        ValueError: If the two lists have different lengths or hold something other than numbers.
    """
    if not isinstance(curve, Mapping) or curve.get(x_key) is None or curve.get(y_key) is None:
        return None
    x = _numbers(curve[x_key], f"{name}.{x_key}")
    y = _numbers(curve[y_key], f"{name}.{y_key}")
    if x.shape != y.shape:
        raise ValueError(f"{name}: {x_key} has {x.size} values but {y_key} has {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        return None
    return x[keep], y[keep]


def _series(curve: object, x_key: str, y_key: str, name: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """One curve, or one curve per class when ``curve`` maps class names to curves (one-vs-rest)."""
    if not isinstance(curve, Mapping):
        return []
    if x_key in curve:
        points = _xy(curve, x_key, y_key, name)
        return [("", *points)] if points is not None else []
    series = []
    for label, per_class in curve.items():
        if isinstance(per_class, Mapping):
            points = _xy(per_class, x_key, y_key, f"{name}[{label}]")
            if points is not None:
                series.append((str(label), *points))
    return series


def _baseline_items(baseline_curves: Mapping[str, Curve] | None) -> list[tuple[str, Curve, str]]:
    items = []
    for index, (label, curve) in enumerate((baseline_curves or {}).items()):
        items.append((str(label), curve, _BASELINE_COLOURS[index % len(_BASELINE_COLOURS)]))
    return items


def _curve_plot(
    model_curve: Curve | None,
    baseline_curves: Mapping[str, Curve] | None,
    *,
    keys: tuple[str, str],
    name: str,
    model_label: str,
    title: str,
    labels: tuple[str, str],
) -> tuple[Figure, Axes] | None:
    """Shared body of the ROC and precision–recall plots: the model's curve(s) over the baselines'."""
    model_series = _series(model_curve, *keys, name=f"{name} (model)")
    if not model_series:
        return None
    figure = _new_figure(5.0, 4.4)
    axes = figure.add_subplot()
    for label, curve, colour in _baseline_items(baseline_curves):
        for suffix, x, y in _series(curve, *keys, name=f"{name} ({label})"):
            text = f"{label}: {suffix}" if suffix else label
            axes.step(x, y, where="post", color=colour, linewidth=1.2, alpha=0.9, label=text)
    per_class = len(model_series) > 1 or model_series[0][0] != ""
    for index, (suffix, x, y) in enumerate(model_series):
        colour = _MODEL_COLOUR if not per_class else _BASELINE_COLOURS[index % len(_BASELINE_COLOURS)]
        text = f"{model_label}: {suffix}" if suffix else model_label
        axes.step(x, y, where="post", color=colour, linewidth=2.0, label=text, zorder=3)
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(-0.01, 1.01)
    axes.set_aspect("equal")
    _style(axes, title, *labels)
    return figure, axes


# -- public figures -------------------------------------------------------------------------------


def roc_plot(
    model_curve: Curve | None,
    baseline_curves: Mapping[str, Curve] | None = None,
    *,
    model_label: str = "Model",
) -> str | None:
    """ROC curve of the model with the baselines' curves overlaid and the chance diagonal.

    Args:
        model_curve: ``{"fpr": [...], "tpr": [...]}``, or ``{class: {"fpr", "tpr"}}`` for one-vs-rest curves.
        baseline_curves: ``{legend label: {"fpr", "tpr"}}``.
        model_label: Legend label of the model, e.g. ``"Model (AUROC 0.84)"``.

    Returns:
        Base64 PNG, or None when the model's curve is missing.

    Raises:
        ValueError: If a curve's lists differ in length or hold something other than numbers.
    """
    drawn = _curve_plot(
        model_curve,
        baseline_curves,
        keys=("fpr", "tpr"),
        name="roc",
        model_label=model_label,
        title="ROC curve",
        labels=("1 − specificity (false positive rate)", "Sensitivity (true positive rate)"),
    )
    if drawn is None:
        return None
    figure, axes = drawn
    axes.plot([0, 1], [0, 1], linestyle="--", color=_REFERENCE_COLOUR, linewidth=1, label="Chance")
    _legend(axes, "lower right")
    return _to_base64(figure)


def pr_plot(
    model_curve: Curve | None,
    baseline_curves: Mapping[str, Curve] | None = None,
    *,
    model_label: str = "Model",
    prevalence: float | None = None,
) -> str | None:
    """Precision–recall curve of the model with the baselines' curves and the no-skill line.

    Args:
        model_curve: ``{"recall": [...], "precision": [...]}`` (or one such curve per class).
        baseline_curves: ``{legend label: {"recall", "precision"}}``.
        model_label: Legend label of the model.
        prevalence: Share of positive cases; drawn as the precision of a model with no skill.

    Returns:
        Base64 PNG, or None when the model's curve is missing.

    Raises:
        ValueError: If a curve's lists differ in length or hold something other than numbers.
    """
    drawn = _curve_plot(
        model_curve,
        baseline_curves,
        keys=("recall", "precision"),
        name="pr",
        model_label=model_label,
        title="Precision–recall curve",
        labels=("Sensitivity (recall)", "Positive predictive value (precision)"),
    )
    if drawn is None:
        return None
    figure, axes = drawn
    if prevalence is not None and np.isfinite(prevalence):
        axes.axhline(
            prevalence,
            linestyle="--",
            color=_REFERENCE_COLOUR,
            linewidth=1,
            label=f"No skill (prevalence {prevalence:.2f})",
        )
    _legend(axes, "lower left")
    return _to_base64(figure)


def calibration_plot(
    model_curve: Curve | None,
    baseline_curves: Mapping[str, Curve] | None = None,
    *,
    model_label: str = "Model",
    title: str = "Calibration",
    xlabel: str = "Predicted probability",
    ylabel: str = "Observed proportion",
) -> str | None:
    """Reliability diagram: observed event rate per bin of predicted probability, with the diagonal.

    A lower panel shows how many cases fall in each bin of the model's predictions.

    Args:
        model_curve: ``{"mean_predicted": [...], "observed": [...], "count": [...]}`` (``count`` optional).
        baseline_curves: ``{legend label: {"mean_predicted", "observed"}}``.
        model_label: Legend label of the model.
        title: Title (multiclass reports calibrate the top-label confidence).
        xlabel: Label of the x axis.
        ylabel: Label of the y axis.

    Returns:
        Base64 PNG, or None when the model's curve is missing.

    Raises:
        ValueError: If a curve's lists differ in length or hold something other than numbers.
    """
    points = _xy(model_curve, "mean_predicted", "observed", "calibration (model)")
    if points is None:
        return None
    counts = _xy(model_curve, "mean_predicted", "count", "calibration (model)")
    figure = _new_figure(5.0, 5.0)
    grid = figure.add_gridspec(2, 1, height_ratios=(3.2, 1))
    axes = figure.add_subplot(grid[0])
    axes.plot([0, 1], [0, 1], linestyle="--", color=_REFERENCE_COLOUR, linewidth=1, label="Perfect calibration")
    for label, curve, colour in _baseline_items(baseline_curves):
        baseline = _xy(curve, "mean_predicted", "observed", f"calibration ({label})")
        if baseline is not None:
            axes.plot(*baseline, marker="s", markersize=3, color=colour, linewidth=1.2, label=label)
    axes.plot(*points, marker="o", markersize=4, color=_MODEL_COLOUR, linewidth=2, label=model_label, zorder=3)
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(-0.01, 1.01)
    _style(axes, title, None, ylabel)
    _legend(axes, "upper left")
    histogram = figure.add_subplot(grid[1], sharex=axes)
    if counts is not None:
        centres, number = counts
        width = 0.8 * float(np.min(np.diff(np.sort(centres)))) if centres.size > 1 else 0.05
        histogram.bar(centres, number, width=min(max(width, 0.01), 0.1), color=_MODEL_COLOUR, alpha=0.6)
    _style(histogram, None, xlabel, "Cases")
    return _to_base64(figure)


def decision_curve_plot(
    decision: Curve | None,
    baseline_decisions: Mapping[str, Curve] | None = None,
    *,
    model_label: str = "Model",
) -> str | None:
    """Decision curve: net benefit of acting on the model across threshold probabilities.

    Args:
        decision: ``{"threshold", "model", "treat_all", "treat_none"}`` lists.
        baseline_decisions: ``{legend label: {"threshold", "model"}}``.
        model_label: Legend label of the model.

    Returns:
        Base64 PNG, or None when the model's curve is missing.

    Raises:
        ValueError: If a curve's lists differ in length or hold something other than numbers.
    """
    model = _xy(decision, "threshold", "model", "decision (model)")
    if model is None:
        return None
    figure = _new_figure(5.4, 4.2)
    axes = figure.add_subplot()
    shown = [model[1]]
    treat_all = _xy(decision, "threshold", "treat_all", "decision (treat all)")
    if treat_all is not None:
        axes.plot(*treat_all, color=_REFERENCE_COLOUR, linewidth=1.2, label="Treat all")
    treat_none = _xy(decision, "threshold", "treat_none", "decision (treat none)")
    if treat_none is not None:
        axes.plot(*treat_none, color="#000000", linestyle="--", linewidth=1, label="Treat none")
        shown.append(treat_none[1])
    for label, curve, colour in _baseline_items(baseline_decisions):
        baseline = _xy(curve, "threshold", "model", f"decision ({label})")
        if baseline is not None:
            axes.plot(*baseline, color=colour, linewidth=1.2, label=label)
            shown.append(baseline[1])
    axes.plot(*model, color=_MODEL_COLOUR, linewidth=2, label=model_label, zorder=3)
    if treat_all is not None:
        shown.append(treat_all[1])
    # "Treat all" falls steeply at high thresholds; keep the axis on the range where the curves differ.
    top = max(max(float(np.max(values)) for values in shown), 0.01)
    axes.set_ylim(-0.25 * top, 1.1 * top)
    axes.set_xlim(0, 1)
    _style(axes, "Decision curve", "Threshold probability", "Net benefit")
    _legend(axes, "upper right")
    return _to_base64(figure)


def confusion_plot(confusion: Mapping[str, Any] | None) -> str | None:
    """Confusion matrix with counts and the percentage of each observed class.

    Args:
        confusion: ``{"labels": [class names], "matrix": [[count]]}``, rows = observed, columns = predicted.

    Returns:
        Base64 PNG, or None when the matrix is missing.

    Raises:
        ValueError: If the matrix is not square or does not match the number of labels.
    """
    if not isinstance(confusion, Mapping) or not confusion.get("matrix"):
        return None
    matrix = np.array(confusion["matrix"], dtype=float)
    labels = [str(label) for label in confusion.get("labels") or range(matrix.shape[0])]
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] != len(labels):
        raise ValueError(
            f"confusion_matrix: expected a square matrix with one row per label ({len(labels)} labels), "
            f"got shape {matrix.shape}"
        )
    size = len(labels)
    side = min(3.2 + 0.55 * size, 10.0)
    figure = _new_figure(side + 0.8, side)
    axes = figure.add_subplot()
    row_totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, row_totals, out=np.zeros_like(matrix), where=row_totals > 0)
    image = axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
    font = 9 if size <= 6 else 7
    for row in range(size):
        for column in range(size):
            colour = "white" if share[row, column] > 0.55 else _TEXT_COLOUR
            text = f"{int(matrix[row, column]):,}\n({100 * share[row, column]:.0f}%)"
            axes.text(column, row, text, ha="center", va="center", fontsize=font, color=colour)
    axes.set_xticks(range(size), labels, rotation=30 if size > 3 else 0, ha="right" if size > 3 else "center")
    axes.set_yticks(range(size), labels)
    axes.tick_params(labelsize=8, colors=_TEXT_COLOUR)
    axes.set_xlabel("Predicted", fontsize=9)
    axes.set_ylabel("Observed", fontsize=9)
    axes.set_title("Confusion matrix (row %)", fontsize=10, loc="left")
    colourbar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    colourbar.ax.tick_params(labelsize=7)
    return _to_base64(figure)


def importance_plot(
    rows: Sequence[Mapping[str, Any]] | None,
    value_key: str,
    title: str,
    *,
    error_key: str | None = None,
    feature_key: str = "feature",
    top_k: int = 15,
    xlabel: str | None = None,
) -> str | None:
    """Horizontal bar chart of feature importances, largest at the top.

    Args:
        rows: ``[{"feature": name, value_key: number, error_key: number}, ...]``.
        value_key: Key of the importance, e.g. ``"importance"`` or ``"mean_abs_attribution"``.
        title: Title of the figure.
        error_key: Key of a spread drawn as an error bar (e.g. ``"std"`` of permutation importance).
        feature_key: Key of the feature name.
        top_k: Number of features shown.
        xlabel: Label of the value axis; default ``value_key`` in words.

    Returns:
        Base64 PNG, or None when there are no rows with a value.
    """
    usable = []
    for row in rows or []:
        value = as_float(row.get(value_key)) if isinstance(row, Mapping) else None
        if value is None:
            continue
        spread = as_float(row.get(error_key)) if error_key else None
        usable.append((str(row.get(feature_key, "?")), value, spread or 0.0))
    if not usable:
        return None
    usable.sort(key=lambda item: item[1], reverse=True)
    shown = usable[:top_k][::-1]
    names = [item[0] if len(item[0]) <= 40 else item[0][:39] + "…" for item in shown]
    values = np.array([item[1] for item in shown])
    errors = np.array([item[2] for item in shown])
    figure = _new_figure(5.8, 1.2 + 0.32 * len(shown))
    axes = figure.add_subplot()
    colours = [_MODEL_COLOUR if value >= 0 else _REFERENCE_COLOUR for value in values]
    axes.barh(
        range(len(shown)),
        values,
        xerr=errors if error_key and errors.any() else None,
        color=colours,
        error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": _TEXT_COLOUR},
    )
    axes.set_yticks(range(len(shown)), names)
    axes.axvline(0, color=_TEXT_COLOUR, linewidth=0.6)
    suffix = f" (top {top_k} of {len(usable)})" if len(usable) > top_k else ""
    _style(axes, title + suffix, xlabel or value_key.replace("_", " ").capitalize(), None)
    axes.grid(False, axis="y")
    return _to_base64(figure)


def history_plot(
    history: Sequence[Mapping[str, Any]] | None,
    monitor: str | None,
    *,
    best_epoch: int | None = None,
    monitor_label: str | None = None,
) -> str | None:
    """Training curves: losses per epoch and, beside them, the monitored validation metric.

    Args:
        history: ``[{"epoch": 1, "train_loss": ..., "val_loss": ..., "val_<monitor>": ...}, ...]``.
        monitor: Name of the metric early stopping watched (read from ``"val_<monitor>"``).
        best_epoch: Epoch whose weights were kept; marked with a vertical line.
        monitor_label: Human label of the monitored metric.

    Returns:
        Base64 PNG, or None when there is no history.
    """
    epochs_rows = [row for row in history or [] if isinstance(row, Mapping)]
    if not epochs_rows:
        return None

    def column(key: str) -> tuple[np.ndarray, np.ndarray] | None:
        table = {
            "epoch": [row.get("epoch", index + 1) for index, row in enumerate(epochs_rows)],
            key: [row.get(key) for row in epochs_rows],
        }
        return _xy(table, "epoch", key, f"history.{key}")

    losses = []
    for key, label in (("train_loss", "Training"), ("val_loss", "Validation")):
        points = column(key)
        if points is not None:
            losses.append((label, points))
    metric = column(f"val_{monitor}") if monitor else None
    if not losses and metric is None:
        return None
    panels = int(bool(losses)) + int(metric is not None)
    figure = _new_figure(4.2 * panels + 0.6, 3.6)
    grid = figure.add_gridspec(1, panels)
    panel = 0
    if losses:
        axes = figure.add_subplot(grid[0, panel])
        for (label, points), colour in zip(losses, (_MODEL_COLOUR, _BASELINE_COLOURS[0]), strict=False):
            axes.plot(*points, color=colour, linewidth=1.6, label=label)
        if best_epoch is not None:
            axes.axvline(best_epoch, color=_REFERENCE_COLOUR, linestyle="--", linewidth=1, label="Best epoch")
        _style(axes, "Loss", "Epoch", "Loss")
        _legend(axes, "upper right")
        panel += 1
    if metric is not None:
        axes = figure.add_subplot(grid[0, panel])
        name = monitor_label or str(monitor)
        axes.plot(*metric, color=_MODEL_COLOUR, linewidth=1.6, marker="o", markersize=2.5, label=name)
        if best_epoch is not None:
            axes.axvline(best_epoch, color=_REFERENCE_COLOUR, linestyle="--", linewidth=1, label="Best epoch")
        _style(axes, f"Validation {name}", "Epoch", name)
        _legend(axes, "best")
    return _to_base64(figure)


def regression_scatter_plot(scatter: Mapping[str, Any] | None, *, target: str | None = None) -> str | None:
    """Predicted against observed values with the line of perfect agreement.

    Args:
        scatter: ``{"y_true": [...], "y_pred": [...]}``.
        target: Name of the outcome, used in the axis labels.

    Returns:
        Base64 PNG, or None when the points are missing.

    Raises:
        ValueError: If the two lists differ in length or hold something other than numbers.
    """
    points = _xy(scatter, "y_true", "y_pred", "scatter")
    if points is None:
        return None
    observed, predicted = points
    total = observed.size
    title = "Predicted vs observed"
    if total > _MAX_SCATTER_POINTS:
        shown = np.random.default_rng(0).choice(total, size=_MAX_SCATTER_POINTS, replace=False)
        observed, predicted = observed[shown], predicted[shown]
        title += f" ({_MAX_SCATTER_POINTS:,} of {total:,} shown)"
    figure = _new_figure(4.8, 4.6)
    axes = figure.add_subplot()
    alpha = 0.7 if observed.size < 300 else 0.35
    axes.scatter(observed, predicted, s=12, alpha=alpha, color=_MODEL_COLOUR, edgecolors="none")
    low = float(min(observed.min(), predicted.min()))
    high = float(max(observed.max(), predicted.max()))
    margin = 0.03 * (high - low or 1.0)
    axes.plot(
        [low - margin, high + margin],
        [low - margin, high + margin],
        linestyle="--",
        color=_REFERENCE_COLOUR,
        linewidth=1,
        label="Perfect agreement",
    )
    axes.set_xlim(low - margin, high + margin)
    axes.set_ylim(low - margin, high + margin)
    axes.set_aspect("equal")
    what = f" {target}" if target else ""
    _style(axes, title, f"Observed{what}", f"Predicted{what}")
    _legend(axes, "upper left")
    return _to_base64(figure)


def shift_plot(rows: Sequence[Mapping[str, Any]] | None, *, top_k: int = 10) -> str | None:
    """Bar chart of the columns whose distribution moved most between training and new data.

    Args:
        rows: ``[{"column": name, "score": number, "measure": text, ...}, ...]``.
        top_k: Number of columns shown.

    Returns:
        Base64 PNG, or None when there are no rows with a score.
    """
    usable = []
    for row in rows or []:
        score = as_float(row.get("score")) if isinstance(row, Mapping) else None
        if score is not None:
            usable.append((str(row.get("column", "?")), score, str(row.get("measure") or "")))
    if not usable:
        return None
    usable.sort(key=lambda item: abs(item[1]), reverse=True)
    shown = usable[:top_k]
    measures = {measure for _, _, measure in shown if measure}
    xlabel = measures.pop().capitalize() if len(measures) == 1 else "Shift score (measure per column in the table)"
    if any(score < 0 for _, score, _ in shown):
        xlabel += " (absolute value)"
    title = "Columns that shifted most" + (f" (top {top_k} of {len(usable)})" if len(usable) > top_k else "")
    return importance_plot(
        [{"feature": name, "score": abs(score)} for name, score, _ in shown],
        "score",
        title,
        top_k=top_k,
        xlabel=xlabel,
    )

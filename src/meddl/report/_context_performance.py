"""The performance section of the run context: the metrics table, comparisons with baselines and the figures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meddl.report import plots, survival_plots
from meddl.report._context_helpers import _evaluations, _fine, _main_metric, _positive_label, _text
from meddl.report._context_types import PerformanceSection, Plot, Table
from meddl.report._format import (
    DASH,
    LOWER_IS_BETTER,
    THRESHOLD_METRICS,
    as_float,
    ci_bounds,
    fmt_count,
    fmt_estimate,
    fmt_metric,
    fmt_number,
    fmt_p_value,
    mapping,
    metric_label,
    model_name_label,
    ordered_metrics,
)

__all__: list[str] = []

_THRESHOLD_RULES = {
    "youden": "Youden's J statistic (the threshold that maximises sensitivity + specificity − 1)",
    "fixed": "fixed value set in the experiment file (evaluate.fixed_threshold)",
    "sensitivity": "lowest-risk threshold that reaches the target sensitivity (evaluate.target_sensitivity)",
}


def _metrics_table(run: Mapping[str, Any]) -> tuple[Table, bool]:
    task = run.get("task")
    evaluations = _evaluations(run)
    names = ordered_metrics(task, [name for _, _, record in evaluations for name in mapping(record.get("metrics"))])
    headers = ["Metric"]
    for _, label, record in evaluations:
        n = as_float(record.get("n"))
        headers.append(f"{label} (n = {fmt_count(n)})" if n is not None else label)
    rows = []
    marked = False
    for name in names:
        dependent = task == "binary" and name in THRESHOLD_METRICS
        marked = marked or dependent
        label = metric_label(name) + (" †" if dependent else "")
        cells = [fmt_estimate(name, mapping(record.get("metrics")).get(name)) for _, _, record in evaluations]
        rows.append([label, *cells])
    if task == "binary":
        thresholds = [fmt_number(record.get("threshold"), 3) for _, _, record in evaluations]
        if any(cell != DASH for cell in thresholds):
            rows.append(["Decision threshold", *thresholds])
    return Table(headers, rows, [False] + [True] * len(evaluations)), marked


def _threshold_text(run: Mapping[str, Any]) -> str | None:
    evaluation = mapping(run.get("evaluation"))
    threshold = evaluation.get("threshold")
    if threshold is None:
        threshold = mapping(evaluation.get("model")).get("threshold")
    rule = evaluation.get("threshold_rule")
    if as_float(threshold) is None and rule is None:
        return None
    described = _THRESHOLD_RULES.get(str(rule), str(rule)) if rule is not None else "rule not recorded"
    return f"{fmt_number(threshold, 3)}, chosen by {described}."


def _comparisons(run: Mapping[str, Any]) -> Table | None:
    comparisons = mapping(mapping(run.get("evaluation")).get("comparisons"))
    rows = []
    for baseline, comparison in comparisons.items():
        record = mapping(comparison)
        if not record:
            continue
        metric = str(record.get("metric") or _main_metric(run.get("task")) or "")
        value = as_float(record.get("value"))
        # Differences are small numbers: one more decimal than the metric, so a CI bound of 0.004 is not
        # printed as "0.00" next to a reading that says the CI excludes zero.
        bounds = ci_bounds(record.get("ci"))
        higher_is_better = record.get("higher_is_better")
        if not isinstance(higher_is_better, bool):
            higher_is_better = metric not in LOWER_IS_BETTER
        if bounds is None:
            difference = f"{_fine(metric, value, value)} (no CI)"
            reading = DASH
        else:
            low, high = bounds
            separator = " to " if low < 0 or high < 0 else "–"
            interval = f"{_fine(metric, low, value)}{separator}{_fine(metric, high, value)}"
            difference = f"{_fine(metric, value, value)} ({interval})"
            if low > 0 or high < 0:
                reading = "Model better" if (low > 0) == higher_is_better else "Baseline better"
            else:
                reading = "No clear difference (CI includes 0)"
        rows.append(
            [
                model_name_label(str(baseline)),
                metric_label(metric),
                difference,
                fmt_p_value(record.get("p_value")),
                reading,
            ]
        )
    if not rows:
        return None
    headers = ["Baseline", "Metric", "Difference, model − baseline (95% CI)", "p-value", "Reading"]
    return Table(headers, rows, [False, False, True, True, False])


def _calibration_note(run: Mapping[str, Any]) -> str | None:
    metrics = mapping(mapping(mapping(run.get("evaluation")).get("model")).get("metrics"))
    names = ["ece", "brier", *sorted(n for n in metrics if n.startswith(("calibration_slope@", "brier@")))]
    parts = [
        f"{metric_label(name).split(' (')[0]} {fmt_estimate(name, metrics[name])}"
        for name in names
        if as_float(mapping(metrics.get(name)).get("value")) is not None
    ]
    return "; ".join(parts) if parts else None


_SHORT_NAMES = {"auroc": "AUROC", "auroc_macro": "macro AUROC", "auprc": "AUPRC", "ece": "ECE"}


def _legend(name: str, label: str, record: Mapping[str, Any]) -> str:
    """Legend text with the curve's summary metric, e.g. ``"Model (AUROC 0.86)"``."""
    value = mapping(mapping(record.get("metrics")).get(name)).get("value")
    short = _SHORT_NAMES.get(name, name)
    return f"{label} ({short} {fmt_metric(name, value)})" if as_float(value) is not None else label


def _performance_plots(run: Mapping[str, Any]) -> list[Plot]:
    task = run.get("task")
    evaluations = _evaluations(run)
    model = evaluations[0][2]
    curves = mapping(model.get("curves"))
    others = [(label, record) for _, label, record in evaluations[1:]]
    result: list[Plot] = []

    def baseline_curves(kind: str, metric: str | None) -> dict[str, Any]:
        found = {}
        for label, record in others:
            curve = mapping(record.get("curves")).get(kind)
            if isinstance(curve, Mapping):
                found[_legend(metric, label, record) if metric else label] = curve
        return found

    if task == "survival":
        return _survival_plots(run, model)
    roc_metric = "auroc_macro" if task == "multiclass" else "auroc"
    image = plots.roc_plot(
        curves.get("roc"), baseline_curves("roc", roc_metric), model_label=_legend(roc_metric, "Model", model)
    )
    if image:
        result.append(
            Plot(
                "ROC curve",
                image,
                "How well the scores separate cases with and without the outcome at every threshold; the "
                "diagonal is a model with no discrimination.",
            )
        )
    prevalence = None
    positive = _positive_label(run)
    counts = {str(key): as_float(value) for key, value in mapping(model.get("class_counts")).items()}
    total = sum(value for value in counts.values() if value is not None)
    if positive is not None and counts.get(positive) is not None and total:
        prevalence = counts[positive] / total  # type: ignore[operator]
    image = plots.pr_plot(
        curves.get("pr"),
        baseline_curves("pr", "auprc"),
        model_label=_legend("auprc", "Model", model),
        prevalence=prevalence,
    )
    if image:
        result.append(
            Plot(
                "Precision–recall curve",
                image,
                "Positive predictive value against sensitivity; the dashed line is the prevalence, what a model "
                "with no skill achieves.",
            )
        )
    multiclass = task == "multiclass"
    image = plots.calibration_plot(
        curves.get("calibration"),
        baseline_curves("calibration", "ece"),
        model_label=_legend("ece", "Model", model),
        title="Calibration (top-label confidence)" if multiclass else "Calibration",
        xlabel="Confidence in the predicted class" if multiclass else "Predicted probability",
        ylabel="Proportion correct" if multiclass else "Observed proportion",
    )
    if image:
        result.append(
            Plot(
                "Calibration",
                image,
                "Predicted probabilities against how often the outcome occurred; points on the diagonal mean the "
                "probabilities can be read at face value. The lower panel shows the number of cases per bin.",
            )
        )
    image = plots.decision_curve_plot(curves.get("decision"), baseline_curves("decision", None), model_label="Model")
    if image:
        result.append(
            Plot(
                "Decision curve",
                image,
                "Net benefit of acting on the model at each threshold probability, compared with treating every "
                "patient or no patient; the model is useful where its curve lies above both.",
            )
        )
    image = plots.confusion_plot(model.get("confusion_matrix"))
    if image:
        threshold = as_float(model.get("threshold"))
        at = f" at threshold {fmt_number(threshold, 3)}" if task == "binary" and threshold is not None else ""
        result.append(
            Plot(
                "Confusion matrix",
                image,
                f"Observed against predicted class{at}; each cell shows the count and the share of its row.",
            )
        )
    image = plots.regression_scatter_plot(curves.get("scatter"), target=_text(mapping(run.get("data")).get("target")))
    if image:
        result.append(
            Plot(
                "Predicted vs observed",
                image,
                "Each point is one case; points on the dashed line are predicted exactly.",
            )
        )
    return result


def _survival_plots(run: Mapping[str, Any], model: Mapping[str, Any]) -> list[Plot]:
    survival = mapping(model.get("survival"))
    groups = mapping(survival.get("risk_groups"))
    result: list[Plot] = []
    image = survival_plots.km_groups_plot(
        mapping(groups.get("curves")), list(groups.get("names") or []), groups.get("logrank_p")
    )
    if image:
        result.append(
            Plot(
                "Kaplan–Meier curves by predicted risk",
                image,
                "Test patients split into thirds by the model's risk score; each curve is the share still free of "
                "the event over time (Kaplan–Meier). Well-separated curves mean the risk ranks patients usefully; "
                "the log-rank test asks whether the groups' survival differs.",
            )
        )
    image = survival_plots.time_dependent_plot(mapping(model.get("metrics")))
    if image:
        result.append(
            Plot(
                "Discrimination and error over time",
                image,
                "Time-dependent AUC (cumulative cases by each horizon against those still event-free; dashed line: "
                "chance) and the Brier score (mean squared error of the predicted survival, weighted for "
                "censoring) at each horizon, with 95% CIs.",
            )
        )
    competing = mapping(survival.get("competing"))
    image = survival_plots.cumulative_incidence_plot(mapping(competing.get("observed")), competing.get("predicted"))
    if image:
        result.append(
            Plot(
                "Cumulative incidence by cause",
                image,
                "Competing causes: the share of test patients who had each event by each time, estimated with "
                "Aalen–Johansen (which, unlike one minus Kaplan–Meier, does not count a patient who had another "
                "cause as still at risk), and the model's mean predicted cumulative incidence at each horizon.",
            )
        )
    horizons = ", ".join(f"{float(h):g}" for h in survival.get("horizons_used") or [])
    image = survival_plots.survival_calibration_plot(survival.get("calibration"))
    if image:
        result.append(
            Plot(
                f"Calibration at {horizons}",
                image,
                "Test patients binned by predicted survival at each horizon: mean predicted survival against the "
                "Kaplan–Meier estimate of the bin (bars: 95% CI). Points on the diagonal mean the predicted "
                "probabilities can be read at face value; the slope is 1 for a perfectly calibrated model.",
            )
        )
    return result


def _performance_section(run: Mapping[str, Any], with_plots: bool) -> PerformanceSection:
    evaluation = mapping(run.get("evaluation"))
    metrics, marked = _metrics_table(run)
    return PerformanceSection(
        split=_text(evaluation.get("split")),
        n=fmt_count(mapping(evaluation.get("model")).get("n")),
        metrics=metrics,
        has_threshold_metrics=marked,
        threshold=_threshold_text(run) if run.get("task") == "binary" else None,
        comparisons=_comparisons(run),
        calibration_note=_calibration_note(run),
        plots=_performance_plots(run) if with_plots else [],
    )

"""Turn a run record into the text the report and the model card show.

The run record is the plain dict the pipeline builds (see :func:`meddl.report.render_report`). This module
reads it defensively (any optional section may be absent or None), formats every number once, and returns
small dataclasses that the HTML and Markdown templates only lay out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import yaml

from meddl.report import plots
from meddl.report._format import (
    DASH,
    LOWER_IS_BETTER,
    THRESHOLD_METRICS,
    as_float,
    ci_bounds,
    fmt_count,
    fmt_date,
    fmt_estimate,
    fmt_interval,
    fmt_metric,
    fmt_number,
    fmt_p_value,
    fmt_percent,
    fmt_seconds,
    fmt_sig,
    mapping,
    metric_label,
    model_name_label,
    ordered_metrics,
    sequence,
    task_label,
)

KINDS = ("train", "external_evaluation")
SMALL_TEST_SET = 100
WIDE_AUROC_CI = 0.2
SHIFT_TOP_K = 10

_THRESHOLD_RULES = {
    "youden": "Youden's J statistic (the threshold that maximises sensitivity + specificity − 1)",
    "fixed": "fixed value set in the experiment file (evaluate.fixed_threshold)",
    "sensitivity": "lowest-risk threshold that reaches the target sensitivity (evaluate.target_sensitivity)",
}


@dataclass(frozen=True)
class Table:
    """A table of already formatted text. ``numeric[i]`` right-aligns column ``i``."""

    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]


@dataclass(frozen=True)
class Plot:
    """One embedded figure."""

    title: str
    image: str
    caption: str


@dataclass(frozen=True)
class DataSection:
    heading: str
    facts: list[tuple[str, str]]
    dropped: Table | None
    dropped_text: str
    dropped_note: str | None
    splits: Table | None
    class_balance: Table | None
    columns: Table | None
    notes: list[str]


@dataclass(frozen=True)
class ModelSection:
    facts: list[tuple[str, str]]
    parameters: Table | None
    training: list[tuple[str, str]]
    history: Plot | None


@dataclass(frozen=True)
class PerformanceSection:
    split: str
    n: str
    metrics: Table
    has_threshold_metrics: bool
    threshold: str | None
    comparisons: Table | None
    calibration_note: str | None
    plots: list[Plot]


@dataclass(frozen=True)
class ImportanceBlock:
    title: str
    explanation: str
    table: Table
    plot: Plot | None
    top: list[str]


@dataclass(frozen=True)
class CrossValidationSection:
    facts: list[tuple[str, str]]
    table: Table | None


@dataclass(frozen=True)
class ShiftSection:
    intro: str
    table: Table
    plot: Plot | None
    top: list[str]


@dataclass(frozen=True)
class ExampleCase:
    """One test image with its heat-map overlay (images only)."""

    title: str
    caption: str
    image: str  # base64 PNG


def _examples(run: Mapping[str, Any]) -> list[ExampleCase]:
    """Optional ``run["examples"]``: ``[{"title", "caption", "overlay_png"}]`` (base64 PNG)."""
    cases = []
    for item in sequence(run.get("examples")):
        if isinstance(item, Mapping) and isinstance(item.get("overlay_png"), str):
            cases.append(ExampleCase(_text(item.get("title")), _text(item.get("caption")), item["overlay_png"]))
    return cases


@dataclass(frozen=True)
class ExtraSection:
    """A data kind's own findings (motifs, cohort flow, attention, top genes): text, a table, figures."""

    anchor: str
    title: str
    text: list[str]
    table: Table | None
    figures: list[ExampleCase]


def _sections(run: Mapping[str, Any]) -> list[ExtraSection]:
    """Optional ``run["sections"]``: ``[{"id", "title", "text": [str], "table": {"columns", "rows"},
    "figures": [{"title", "caption", "png"}]}]`` — what only one data kind has to show."""
    sections = []
    for number, item in enumerate(sequence(run.get("sections"))):
        if not isinstance(item, Mapping):
            continue
        table = None
        raw = mapping(item.get("table"))
        columns = [str(c) for c in sequence(raw.get("columns"))]
        if columns:
            rows = [[_text(cell) for cell in sequence(row)] for row in sequence(raw.get("rows"))]
            numeric = [bool(rows) and all(_is_number(r[i]) for r in rows if i < len(r)) for i in range(len(columns))]
            table = Table(columns, rows, numeric)
        figures = [
            ExampleCase(_text(f.get("title")), _text(f.get("caption")), f["png"])
            for f in sequence(item.get("figures"))
            if isinstance(f, Mapping) and isinstance(f.get("png"), str)
        ]
        text = item.get("text")
        paragraphs = [text] if isinstance(text, str) else [str(t) for t in sequence(text)]
        anchor = str(item.get("id") or f"section-{number}")
        sections.append(ExtraSection(anchor, _text(item.get("title")), paragraphs, table, figures))
    return sections


def _is_number(cell: str) -> bool:
    try:
        float(cell.replace("%", "").replace("−", "-"))
    except ValueError:
        return False
    return True


def _localization(run: Mapping[str, Any]) -> str | None:
    """Optional ``run["localization"]``: ``{"method", "hits", "n", "hit_rate"}`` (pointing game on lesion masks)."""
    game = mapping(run.get("localization"))
    if not game or as_float(game.get("n")) in (None, 0):
        return None
    text = (
        f"Pointing game ({_text(game.get('method'))}): the heat-map maximum fell inside the lesion mask in "
        f"{fmt_count(game.get('hits'))} of {fmt_count(game.get('n'))} test images with a lesion "
        f"({100 * (as_float(game.get('hit_rate')) or 0):.1f}%)."
    )
    others = mapping(game.get("by_method"))
    if others:
        text += (
            " By method: "
            + "; ".join(
                f"{name} {fmt_count(mapping(v).get('hits'))}/{fmt_count(mapping(v).get('n'))}"
                for name, v in others.items()
            )
            + "."
        )
    return text


@dataclass(frozen=True)
class RunContext:
    """Everything the report and the model card show, as text."""

    title: str
    name: str
    task: str
    task_label: str
    kind: str
    is_external: bool
    created: str
    meddl_version: str
    header: list[tuple[str, str]]
    notice: str
    target_description: str
    warnings: list[str]
    caveats: list[str]
    data: DataSection
    model: ModelSection | None
    performance: PerformanceSection
    importance: list[ImportanceBlock]
    cross_validation: CrossValidationSection | None
    shift: ShiftSection | None
    subgroups: Table | None
    config_yaml: str | None
    config: Mapping[str, Any] = field(default_factory=dict)
    examples: list[ExampleCase] = field(default_factory=list)
    localization: str | None = None
    sections: list[ExtraSection] = field(default_factory=list)


# -- small helpers -----------------------------------------------------------------------------------


def _text(value: object) -> str:
    """Any value as display text; None and empty text become an em dash."""
    if value is None or value == "":
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return fmt_sig(value)
    if isinstance(value, list | tuple):
        return ", ".join(_text(item) for item in value) if value else DASH
    if isinstance(value, Mapping):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _require(run: object) -> Mapping[str, Any]:
    if not isinstance(run, Mapping):
        raise ValueError(f"run record: expected a dict, got {type(run).__name__}")
    for key in ("kind", "name", "task"):
        if run.get(key) in (None, ""):
            raise ValueError(f"run record: required key {key!r} is missing")
    if run["kind"] not in KINDS:
        raise ValueError(f"run record: 'kind' must be one of {list(KINDS)}, got {run['kind']!r}")
    if not isinstance(mapping(run.get("evaluation")).get("model"), Mapping):
        raise ValueError("run record: required key 'evaluation.model' is missing (the model's evaluation)")
    return run


def _parse_config(config_yaml: object) -> Mapping[str, Any]:
    """The experiment file as a dict, or empty when it is absent or not a YAML mapping (it is only shown)."""
    if not isinstance(config_yaml, str) or not config_yaml.strip():
        return {}
    try:
        parsed = yaml.safe_load(config_yaml)
    except yaml.YAMLError:
        return {}
    return parsed if isinstance(parsed, Mapping) else {}


def _positive_label(run: Mapping[str, Any]) -> str | None:
    data = mapping(run.get("data"))
    if data.get("positive_label") is not None:
        return str(data["positive_label"])
    classes = sequence(data.get("classes"))
    if run.get("task") == "binary" and len(classes) == 2:
        return str(classes[1])
    return None


def _target_description(run: Mapping[str, Any]) -> str:
    data = mapping(run.get("data"))
    target = data.get("target")
    if target is None:
        return "the outcome this model was trained on"
    task = run.get("task")
    if task == "binary":
        positive = _positive_label(run)
        return f"'{target}'" + (f" (positive class: {positive})" if positive else "")
    if task == "multiclass":
        classes = sequence(data.get("classes"))
        return f"'{target}'" + (f" (one of: {', '.join(map(str, classes))})" if classes else "")
    return f"the value of '{target}'"


def _main_metric(task: object) -> str | None:
    return {"binary": "auroc", "multiclass": "auroc_macro", "regression": "rmse"}.get(str(task))


def _evaluations(run: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """``(key, label, EVAL)`` for the model first, then each baseline."""
    evaluation = mapping(run.get("evaluation"))
    items = [("model", "Model", mapping(evaluation.get("model")))]
    for key, record in mapping(evaluation.get("baselines")).items():
        if isinstance(record, Mapping):
            items.append((str(key), model_name_label(str(key)), record))
    return items


# -- sections ------------------------------------------------------------------------------------------


def _dropped(data: Mapping[str, Any]) -> tuple[Table | None, str, str | None]:
    dropped = data.get("dropped")
    read, used = as_float(data.get("n_rows_read")), as_float(data.get("n_rows_used"))
    if not isinstance(dropped, Mapping):
        if read is not None and used is not None:
            text = f"{fmt_count(read - used)} rows were dropped; the pipeline did not record the reasons."
        else:
            text = "The pipeline did not record which rows were dropped."
        return None, text, None
    counts = {str(reason): as_float(count) for reason, count in dropped.items()}
    total = sum(count for count in counts.values() if count is not None)
    rows = [[reason, fmt_count(count)] for reason, count in counts.items()]
    rows.append(["Total dropped", fmt_count(total)])
    table = Table(["Reason", "Rows dropped"], rows, [False, True])
    text = "No rows were dropped." if total == 0 else f"{fmt_count(total)} rows were dropped:"
    note = None
    if read is not None and used is not None and round(read - used) != round(total):
        note = (
            f"Rows read minus rows used is {fmt_count(read - used)}, but the reasons listed account for "
            f"{fmt_count(total)}."
        )
    return table, text, note


def _class_balance(data: Mapping[str, Any]) -> Table | None:
    balance = mapping(data.get("class_balance"))
    splits = {str(split): mapping(counts) for split, counts in balance.items() if mapping(counts)}
    if not splits:
        return None
    labels = [str(label) for label in sequence(data.get("classes"))]
    for counts in splits.values():
        labels.extend(str(label) for label in counts if str(label) not in labels)
    rows = []
    for split, counts in splits.items():
        by_label = {str(label): as_float(count) for label, count in counts.items()}
        total = sum(count for count in by_label.values() if count is not None)
        cells = [split.capitalize()]
        for label in labels:
            count = by_label.get(label)
            share = f" ({100 * count / total:.1f}%)" if count is not None and total else ""
            cells.append(fmt_count(count) + share if count is not None else DASH)
        cells.append(fmt_count(total))
        rows.append(cells)
    return Table(["Split", *labels, "Total"], rows, [False] + [True] * (len(labels) + 1))


def _splits(data: Mapping[str, Any]) -> Table | None:
    splits = {str(name): as_float(count) for name, count in mapping(data.get("splits")).items()}
    if not splits:
        return None
    total = sum(count for count in splits.values() if count is not None)
    rows = [
        [name.capitalize(), fmt_count(count), f"{100 * count / total:.1f}%" if count is not None and total else DASH]
        for name, count in splits.items()
    ]
    return Table(["Split", "Rows", "Share"], rows, [False, True, True])


def _columns(data: Mapping[str, Any]) -> Table | None:
    columns = [column for column in sequence(data.get("columns")) if isinstance(column, Mapping)]
    if not columns:
        return None
    rows = []
    for column in columns:
        missing = fmt_count(column.get("n_missing"))
        percent = as_float(column.get("pct_missing"))
        if percent is not None:
            missing += f" ({fmt_percent(percent)})"
        rows.append([_text(column.get("name")), _text(column.get("type")), missing, _text(column.get("summary"))])
    return Table(["Column", "Type", "Missing", "Summary"], rows, [False, False, True, False])


def _data_section(run: Mapping[str, Any], is_external: bool) -> DataSection:
    data = mapping(run.get("data"))
    facts = [("Source", _text(data.get("path"))), ("Outcome (target column)", _text(data.get("target")))]
    if run.get("task") != "regression":
        facts.append(("Classes", _text(sequence(data.get("classes")) or None)))
    if run.get("task") == "binary":
        facts.append(("Positive class", _text(_positive_label(run))))
    facts += [
        ("Rows read", fmt_count(data.get("n_rows_read"))),
        ("Rows used", fmt_count(data.get("n_rows_used"))),
        ("Patients", fmt_count(data.get("n_patients"))),
    ]
    dropped, dropped_text, dropped_note = _dropped(data)
    return DataSection(
        heading="External validation data" if is_external else "Data",
        facts=facts,
        dropped=dropped,
        dropped_text=dropped_text,
        dropped_note=dropped_note,
        splits=_splits(data),
        class_balance=_class_balance(data),
        columns=_columns(data),
        notes=[str(note) for note in sequence(data.get("notes"))],
    )


def _model_section(run: Mapping[str, Any], with_plots: bool) -> ModelSection | None:
    model, training = mapping(run.get("model")), mapping(run.get("training"))
    if not model and not training:
        return None
    facts = [
        ("Architecture", _text(model.get("arch"))),
        ("Trainable parameters", fmt_count(model.get("n_parameters"))),
    ]
    params = mapping(model.get("params"))
    parameters = (
        Table(["Argument", "Value"], [[str(key), _text(value)] for key, value in params.items()], [False, False])
        if params
        else None
    )
    monitor = training.get("monitor")
    stopped = training.get("stopped_early")
    training_facts = [
        ("Epochs run", fmt_count(training.get("epochs_run"))),
        ("Best epoch (weights kept)", fmt_count(training.get("best_epoch"))),
        ("Early stopping on", f"validation {metric_label(str(monitor))}" if monitor else DASH),
        ("Stopped early", _text(stopped) if isinstance(stopped, bool) else DASH),
        ("Training time", fmt_seconds(training.get("seconds"))),
        ("Device", _text(training.get("device"))),
    ]
    history = None
    if with_plots:
        best = as_float(training.get("best_epoch"))
        image = plots.history_plot(
            sequence(training.get("history")),
            str(monitor) if monitor else None,
            best_epoch=round(best) if best is not None else None,
            monitor_label=metric_label(str(monitor)) if monitor else None,
        )
        if image:
            history = Plot(
                "Training history",
                image,
                "Loss on the training and validation splits per epoch, and the validation metric that early "
                "stopping watched; the dashed line marks the epoch whose weights were kept.",
            )
    return ModelSection(facts, parameters, training_facts if training else [], history)


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


def _fine(metric: str, value: object, reference: object) -> str:
    """A metric with one decimal more than in the metrics table, for differences and fold-to-fold spread."""
    if metric in {"mae", "rmse"}:
        return fmt_metric(metric, value, reference)
    return fmt_number(value, 4 if metric in {"brier", "ece", "log_loss"} else 3)


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
    parts = [
        f"{metric_label(name).split(' (')[0]} {fmt_estimate(name, metrics[name])}"
        for name in ("ece", "brier")
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


def _ranking_value(row: Mapping[str, Any], value_key: str) -> float:
    value = as_float(row.get(value_key))
    return value if value is not None else float("-inf")


def _importance(run: Mapping[str, Any], with_plots: bool) -> list[ImportanceBlock]:
    explanations = mapping(run.get("explanations"))
    blocks = []
    specs = (
        (
            "permutation_importance",
            "Permutation importance",
            "importance",
            "std",
            "How much the model's performance drops when one feature's values are shuffled across patients "
            "(mean ± SD over repeats). A larger drop means the model relies more on that feature; it does not "
            "mean the feature causes the outcome.",
            "Drop in performance when shuffled",
        ),
        (
            "integrated_gradients",
            "Integrated gradients",
            "mean_abs_attribution",
            None,
            "Average size of each feature's contribution to individual predictions (mean absolute "
            "attribution), whatever its direction.",
            "Mean |attribution|",
        ),
    )
    for key, title, value_key, error_key, explanation, axis_label in specs:
        rows = [row for row in sequence(explanations.get(key)) if isinstance(row, Mapping)]
        if not rows:
            continue
        ranked = sorted(rows, key=partial(_ranking_value, value_key=value_key), reverse=True)
        table_rows = []
        for rank, row in enumerate(ranked, start=1):
            value = fmt_sig(row.get(value_key))
            if error_key and as_float(row.get(error_key)) is not None:
                value += f" ± {fmt_sig(row.get(error_key))}"
            table_rows.append([str(rank), _text(row.get("feature")), value])
        value_header = "Importance (± SD)" if error_key else "Mean |attribution|"
        table = Table(["Rank", "Feature", value_header], table_rows, [True, False, True])
        plot = None
        if with_plots:
            image = plots.importance_plot(ranked, value_key, title, error_key=error_key, xlabel=axis_label)
            if image:
                plot = Plot(title, image, explanation)
        top = [_text(row.get("feature")) for row in ranked[:5]]
        blocks.append(ImportanceBlock(title, explanation, table, plot, top))
    return blocks


def _cross_validation(run: Mapping[str, Any]) -> CrossValidationSection | None:
    record = mapping(run.get("cross_validation"))
    if not record:
        return None
    metric = str(record.get("metric") or _main_metric(run.get("task")) or "")
    mean, std = as_float(record.get("mean")), as_float(record.get("std"))
    # Folds differ by a few thousandths; one more decimal than in the metric table keeps that visible.
    summary = _fine(metric, mean, mean) + (f" (SD {_fine(metric, std, mean)})" if std is not None else "")
    facts = [
        ("Folds", fmt_count(record.get("folds"))),
        ("Metric", metric_label(metric)),
        ("Mean (SD) across folds", summary),
    ]
    per_fold = sequence(record.get("per_fold"))
    table = (
        Table(
            ["Fold", metric_label(metric)],
            [[str(index), _fine(metric, value, mean)] for index, value in enumerate(per_fold, start=1)],
            [True, True],
        )
        if per_fold
        else None
    )
    return CrossValidationSection(facts, table)


def _shift(run: Mapping[str, Any], with_plots: bool) -> ShiftSection | None:
    rows = [row for row in sequence(run.get("shift")) if isinstance(row, Mapping)]
    if not rows:
        return None
    ranked = sorted(rows, key=lambda row: abs(as_float(row.get("score")) or 0.0), reverse=True)
    shown = ranked[:SHIFT_TOP_K]
    table = Table(
        ["Column", "Type", "Training data", "New data", "Shift score", "Measure"],
        [
            [
                _text(row.get("column")),
                _text(row.get("kind")),
                _text(row.get("train")),
                _text(row.get("new")),
                fmt_number(row.get("score"), 2),
                _text(row.get("measure")),
            ]
            for row in shown
        ],
        [False, False, True, True, True, False],
    )
    of = f"the {len(shown)} of {len(ranked)} columns" if len(ranked) > len(shown) else "the columns"
    intro = (
        f"How the distribution of each column differs between the training data and the evaluated data, "
        f"largest first ({of} that moved most). A large shift means the new patients differ from those the "
        f"model learned from, and its performance and calibration may differ as well."
    )
    plot = None
    if with_plots:
        image = plots.shift_plot(ranked, top_k=SHIFT_TOP_K)
        if image:
            plot = Plot("Data shift", image, "Columns ranked by the size of their shift.")
    return ShiftSection(intro, table, plot, [_text(row.get("column")) for row in shown[:5]])


def _subgroups(run: Mapping[str, Any]) -> Table | None:
    """Optional ``run["subgroups"]``: ``[{"column", "group", "n", "metrics": {name: {"value", "ci"}}}]``."""
    rows = [row for row in sequence(run.get("subgroups")) if isinstance(row, Mapping)]
    if not rows:
        return None
    names = ordered_metrics(run.get("task"), [name for row in rows for name in mapping(row.get("metrics"))])
    body = [
        [
            _text(row.get("column")),
            _text(row.get("group")),
            fmt_count(row.get("n")),
            *[fmt_estimate(name, mapping(row.get("metrics")).get(name)) for name in names],
        ]
        for row in rows
    ]
    headers = ["Characteristic", "Group", "n", *[metric_label(name) for name in names]]
    return Table(headers, body, [False, False, True] + [True] * len(names))


def _caveats(run: Mapping[str, Any], data: DataSection) -> list[str]:
    evaluation = mapping(run.get("evaluation"))
    model = mapping(evaluation.get("model"))
    split = _text(evaluation.get("split"))
    caveats = []
    n = as_float(model.get("n"))
    if n is not None and n < SMALL_TEST_SET:
        caveats.append(
            f"Small evaluation set: {fmt_count(n)} cases in '{split}' (fewer than {SMALL_TEST_SET}). The "
            f"estimates are imprecise and the confidence intervals are wide."
        )
    metrics = mapping(model.get("metrics"))
    for name in ("auroc", "auroc_macro"):
        bounds = ci_bounds(mapping(metrics.get(name)).get("ci"))
        if bounds is not None:
            width = bounds[1] - bounds[0]
            if width > WIDE_AUROC_CI:
                caveats.append(
                    f"Wide confidence interval: the 95% CI of the {metric_label(name)} is "
                    f"{fmt_interval(name, bounds)} (width {width:.2f}); the true discrimination may be much "
                    f"lower than the point estimate."
                )
    if any(
        as_float(mapping(record).get("value")) is not None and fmt_interval(name, mapping(record).get("ci")) is None
        for name, record in metrics.items()
    ):
        caveats.append(
            "Some metrics have no confidence interval (bootstrap switched off, or too few cases to resample)."
        )
    if data.dropped_note:
        caveats.append(f"Dropped rows do not add up: {data.dropped_note}")
    return caveats


# -- entry point ---------------------------------------------------------------------------------------


def build_context(run: Mapping[str, Any], *, with_plots: bool) -> RunContext:
    """Read a run record and format everything the report and the model card show.

    Args:
        run: The run record.
        with_plots: Draw the figures (the HTML report) or skip them (the model card).

    Returns:
        The formatted content.

    Raises:
        ValueError: If a required key (``kind``, ``name``, ``task``, ``evaluation.model``) is missing, ``kind``
            is unknown, or a curve in the record is malformed.
    """
    run = _require(run)
    name, task, kind = str(run["name"]), str(run["task"]), str(run["kind"])
    is_external = kind == "external_evaluation"
    evaluation = mapping(run.get("evaluation"))
    target = _target_description(run)
    title = f"External validation report: {name}" if is_external else f"Model report: {name}"
    header = [
        ("Model", name),
        ("Task", task_label(task)),
        ("Report", "External validation on new data" if is_external else "Model development and internal test"),
        ("Evaluated on", _text(evaluation.get("split"))),
        ("Created", fmt_date(run.get("created"))),
        ("MedDL version", _text(run.get("meddl_version"))),
        ("Bundle hash (SHA-256)", _text(run.get("bundle_hash"))),
    ]
    notice = (
        f"This model estimates {target} to support, not replace, clinical judgement; "
        f"it does not make a diagnosis. A clinician must interpret every output with the patient's full "
        f"clinical picture. It has been evaluated only on the data described in this report and may perform "
        f"differently for other patients, sites or periods."
    )
    data = _data_section(run, is_external)
    return RunContext(
        title=title,
        name=name,
        task=task,
        task_label=task_label(task),
        kind=kind,
        is_external=is_external,
        created=fmt_date(run.get("created")),
        meddl_version=_text(run.get("meddl_version")),
        header=header,
        notice=notice,
        target_description=target,
        warnings=[str(warning) for warning in sequence(run.get("warnings"))],
        caveats=_caveats(run, data),
        data=data,
        model=_model_section(run, with_plots),
        performance=_performance_section(run, with_plots),
        importance=_importance(run, with_plots),
        cross_validation=_cross_validation(run),
        shift=_shift(run, with_plots),
        subgroups=_subgroups(run),
        examples=_examples(run),
        localization=_localization(run),
        sections=_sections(run),
        config_yaml=run.get("config_yaml") if isinstance(run.get("config_yaml"), str) else None,
        config=_parse_config(run.get("config_yaml")),
    )

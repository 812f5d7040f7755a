"""The sections after performance: explanations, cross-validation, data shift, subgroups and caveats.

Also what only one data kind shows: example images with heat maps, the pointing game and extra sections.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from meddl.report import plots
from meddl.report._context_helpers import _fine, _is_number, _main_metric, _text
from meddl.report._context_types import (
    SHIFT_TOP_K,
    SMALL_TEST_SET,
    WIDE_AUROC_CI,
    CrossValidationSection,
    DataSection,
    ExampleCase,
    ExtraSection,
    ImportanceBlock,
    Plot,
    ShiftSection,
    Table,
)
from meddl.report._format import (
    LOWER_IS_BETTER,
    as_float,
    ci_bounds,
    fmt_count,
    fmt_estimate,
    fmt_interval,
    fmt_number,
    fmt_sig,
    mapping,
    metric_label,
    ordered_metrics,
    sequence,
)

__all__: list[str] = []


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
    metric = _main_metric(run.get("task"))
    units = {"regression": "standardised target units", "survival": "risk (log-hazard) units"}.get(
        str(run.get("task")), "logit units"
    )
    for key, title, value_key, error_key, explanation, axis_label in specs:
        if key == "permutation_importance" and metric:
            change = "Increase in" if metric in LOWER_IS_BETTER else "Loss of"
            axis_label = f"{change} {metric_label(metric).split(' (')[0]} when shuffled"
        elif key == "integrated_gradients":
            axis_label = f"Mean |attribution| ({units})"
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


_HEAT_MAP_HEADING = {
    "nav": "Heat maps",
    "title": "Where the model looked",
    "text": "Test cases with the model's heat map over the image (the method is named in each caption): warm colours "
    "mark the regions that raised the score. A heat map shows what drove the model, not where disease is.",
}


def _examples_heading(run: Mapping[str, Any]) -> dict[str, str]:
    """The examples section's link, title and lead: the run's own ``examples_heading`` (a segmentation run shows
    its masks, not heat maps), else the heat maps'."""
    given = mapping(run.get("examples_heading"))
    return {key: str(given.get(key) or default) for key, default in _HEAT_MAP_HEADING.items()}


def _examples(run: Mapping[str, Any]) -> list[ExampleCase]:
    """Optional ``run["examples"]``: ``[{"title", "caption", "overlay_png"}]`` (base64 PNG)."""
    cases = []
    for item in sequence(run.get("examples")):
        if isinstance(item, Mapping) and isinstance(item.get("overlay_png"), str):
            cases.append(ExampleCase(_text(item.get("title")), _text(item.get("caption")), item["overlay_png"]))
    return cases


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

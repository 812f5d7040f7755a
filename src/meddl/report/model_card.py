"""The model card: a Markdown summary of a run with the TRIPOD+AI items that software can fill in."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from meddl.report._context import RunContext, build_context
from meddl.report._format import (
    DASH,
    as_float,
    fmt_count,
    fmt_percent,
    mapping,
    model_name_label,
    sequence,
    write_text_output,
)
from meddl.report._templates import MODEL_CARD_MD

__all__ = ["render_model_card", "write_model_card"]

_HTML_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def _md(value: object) -> str:
    """Escape text for a Markdown table cell or line: pipes, line breaks and anything that starts an HTML tag.

    ``<0.001`` stays as it is; ``<script>`` becomes ``&lt;script>`` so no renderer treats it as HTML.
    """
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    text = " ".join(text.splitlines())
    return _HTML_TAG_START.sub("&lt;", text)


def _md_table(rows: Sequence[Sequence[object]], headers: Sequence[object]) -> str:
    lines = [
        "| " + " | ".join(_md(header) for header in headers) + " |",
        "| " + " | ".join("---" for _ in headers) + " |",
    ]
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    environment = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    environment.filters["md"] = _md
    environment.globals["table"] = _md_table
    return environment.from_string(MODEL_CARD_MD)


def _setting(config: Mapping[str, Any], section: str, key: str) -> str | None:
    value = mapping(config.get(section)).get(key)
    return None if value is None else str(value)


def _development(run: Mapping[str, Any], context: RunContext) -> list[tuple[str, str]]:
    config = context.config
    rows: list[tuple[str, str]] = []
    missing = _setting(config, "preprocess", "missing")
    if missing is not None:
        indicators = mapping(config.get("preprocess")).get("missing_indicators")
        suffix = ", with missing-value indicator columns" if indicators else ""
        rows.append(("Missing values", f"{missing}{suffix} (fitted on the training split only)"))
    for key, label in (("scale", "Scaling of numeric predictors"), ("imbalance", "Class imbalance handling")):
        value = _setting(config, "preprocess", key)
        if value is not None:
            rows.append((label, value))
    model = mapping(run.get("model"))
    if model.get("arch"):
        arguments = ", ".join(f"{key}={value}" for key, value in mapping(model.get("params")).items())
        rows.append(("Architecture", f"{model['arch']}" + (f" ({arguments})" if arguments else "")))
    if model.get("n_parameters") is not None:
        rows.append(("Trainable parameters", fmt_count(model.get("n_parameters"))))
    train = mapping(config.get("train"))
    settings = [
        f"{label} {train[key]}"
        for key, label in (
            ("epochs", "max epochs"),
            ("batch_size", "batch size"),
            ("learning_rate", "learning rate"),
            ("weight_decay", "weight decay"),
            ("scheduler", "scheduler"),
            ("seed", "seed"),
        )
        if train.get(key) is not None
    ]
    if settings:
        rows.append(("Optimisation", ", ".join(settings)))
    if context.model and context.model.training:
        rows += [(label, value) for label, value in context.model.training if value != DASH]
    if context.performance.threshold:
        rows.append(("Decision threshold", context.performance.threshold))
    evaluate = mapping(config.get("evaluate"))
    if evaluate.get("bootstrap") is not None:
        rows.append(("Confidence intervals", f"bootstrap, {evaluate['bootstrap']} resamples"))
    baselines = list(mapping(mapping(run.get("evaluation")).get("baselines")))
    if baselines:
        rows.append(("Baselines", ", ".join(model_name_label(str(name)) for name in baselines)))
    if not rows:
        rows.append(("Details", "not recorded in the run; see config.yaml in the bundle"))
    return rows


def _outcome(run: Mapping[str, Any], context: RunContext) -> str:
    data = mapping(run.get("data"))
    target = data.get("target")
    if target is None:
        return "not recorded in the run."
    classes = [str(label) for label in sequence(data.get("classes"))]
    if context.task == "binary":
        positive = data.get("positive_label") or (classes[1] if len(classes) == 2 else None)
        others = [label for label in classes if label != str(positive)]
        if positive is not None:
            rest = f" against {', '.join(others)}" if others else ""
            return f"column '{target}', positive class '{positive}'{rest}."
    if context.task == "multiclass" and classes:
        return f"column '{target}', one of {len(classes)} classes: {', '.join(classes)}."
    if context.task == "survival":
        time, _, event = str(target).partition(" / ")
        causes = f" (causes: {', '.join(classes)})" if len(classes) > 1 else ""
        return (
            f"time to event: follow-up time in '{time}', event indicator in '{event}'{causes}; censored patients kept."
        )
    return f"column '{target}'" + (" (a continuous value)." if context.task == "regression" else ".")


def _population(run: Mapping[str, Any], context: RunContext) -> str:
    data = mapping(run.get("data"))
    parts = []
    if data.get("n_patients") is not None:
        parts.append(f"{fmt_count(data.get('n_patients'))} patients")
    if data.get("n_rows_used") is not None:
        parts.append(f"{fmt_count(data.get('n_rows_used'))} rows")
    size = f" ({', '.join(parts)})" if parts else ""
    source = f" from {_file_name(data['path'])}" if data.get("path") else ""
    if context.is_external:
        source = "" if str(data.get("path")) == context.performance.split else source
        return (
            f"patients like those the model was developed on. This card reports its external validation on "
            f"{context.performance.split}{size}{source}."
        )
    return f"patients like those in the development data{size}{source}; see the predictor summaries below."


def _file_name(path: object) -> str:
    """A data file as the card names it: its name only — the card travels with the bundle, the local folders of
    the machine that trained it do not."""
    return Path(str(path)).name


def _code(folder: str) -> str:
    """The bundle folder as a shell argument that is safe inside Markdown inline code."""
    return shlex.quote(folder).replace("`", "'")


def _bundle_folder(run: Mapping[str, Any], bundle_path: Path | None) -> str:
    """How to name the bundle in a command: its path from the working directory when the card was written inside
    it, else the folder's name (``runs/<name>`` when no folder is known)."""
    if bundle_path is None:
        return f"runs/{run.get('name', 'model')}"
    folder = bundle_path.resolve()
    try:
        relative = folder.relative_to(Path.cwd().resolve())
    except ValueError:
        return folder.name
    return str(relative) if str(relative) != "." else "."


def _limitations(run: Mapping[str, Any], context: RunContext, folder: str) -> list[str]:
    data = mapping(run.get("data"))
    source = _file_name(data["path"]) if data.get("path") else "one data set"
    items = []
    if context.is_external:
        items.append(
            f"This is an external validation on {context.performance.split}. Agreement with the development "
            f"results at one site does not guarantee performance at others; validate locally before use."
        )
    else:
        items.append(
            f"Single-source development: developed and tested on data from {source}; the test split comes from "
            f"the same source, so this is internal validation only. Performance at other sites, in other periods "
            f"or populations is unknown until the model is externally validated "
            f"(`meddl evaluate {_code(folder)} --data other_site.csv`)."
        )
    patients = fmt_count(data.get("n_patients"))
    if context.performance.n == DASH:
        items.append("Sample size: the number of evaluated cases was not recorded.")
    else:
        size = f"Sample size: {context.performance.n} cases in the evaluation set"
        items.append(size + (f", {patients} patients in all." if patients != DASH else "."))
    items += context.caveats
    columns = [column for column in sequence(data.get("columns")) if isinstance(column, Mapping)]
    target = str(data.get("target"))
    with_missing = sorted(
        (
            column
            for column in columns
            if (as_float(column.get("pct_missing")) or 0) > 0 and str(column.get("name")) != target
        ),
        key=lambda column: as_float(column.get("pct_missing")) or 0.0,
        reverse=True,
    )
    strategy = _setting(context.config, "preprocess", "missing")
    handled = f" They were handled by '{strategy}'." if strategy else ""
    if with_missing:
        worst = ", ".join(
            f"{column.get('name')} {fmt_percent(column.get('pct_missing'))}" for column in with_missing[:5]
        )
        items.append(
            f"Missing data: {len(with_missing)} column(s) had missing values (most: {worst}).{handled} "
            f"Performance may differ where data are missing more often."
        )
    elif columns:
        items.append("Missing data: no missing values in the columns read; missing values at use may degrade it.")
    calibration = context.performance.calibration_note
    measured = f" (measured on {context.performance.split}: {calibration})" if calibration else ""
    items.append(
        f"Calibration drift{measured}: predicted probabilities drift as case mix, prevalence and practice "
        f"change. Recheck calibration locally and periodically, and recalibrate when needed."
    )
    if context.shift:
        items.append(f"Data shift: the columns that moved most were {', '.join(context.shift.top)}.")
    items += [f"Pipeline warning: {warning}" for warning in context.warnings]
    return items


def _details(run: Mapping[str, Any], context: RunContext) -> list[tuple[str, str]]:
    model = mapping(run.get("model"))
    details = [
        ("Name", context.name),
        ("Task", context.task_label),
        ("Architecture", str(model.get("arch") or DASH)),
        ("Trainable parameters", fmt_count(model.get("n_parameters"))),
        ("Architecture arguments", json.dumps(dict(mapping(model.get("params"))), default=str) or DASH),
        ("Created", context.created),
        ("MedDL version", context.meddl_version),
        ("Bundle hash (SHA-256)", str(run.get("bundle_hash") or DASH)),
    ]
    if context.is_external:
        details.append(("This card", f"external validation on {context.performance.split}"))
    return details


def _card(run: Mapping[str, Any], context: RunContext, bundle_path: Path | None = None) -> dict[str, Any]:
    folder = _bundle_folder(run, bundle_path)
    data = mapping(run.get("data"))
    target = data.get("target")
    columns = context.data.columns
    predictors = [row for row in columns.rows if row[0] != str(target)] if columns else []
    data_facts = [[label, _file_name(value) if label == "Source" else value] for label, value in context.data.facts]
    return {
        "details": _details(run, context),
        "population": _population(run, context),
        "data_facts": data_facts,
        "outcome": _outcome(run, context),
        "predictors": predictors,
        "development": [[label, value] for label, value in _development(run, context)],
        "limitations": _limitations(run, context, folder),
        "run_path": _code(folder),
        "run_path_python": json.dumps(folder).replace("`", "'"),
        "usage": mapping(run.get("usage")),
    }


def render_model_card(run: Mapping[str, Any], bundle_path: Path | None = None) -> str:
    """Render the Markdown model card of a run.

    Sections: Model details, Intended use, Data, Model development, Performance, Explainability, Limitations,
    Ethical considerations and fairness, How to use. Limitations gain a line when the evaluation set is small
    (fewer than 100 cases) or the AUROC's 95% CI is wider than 0.2.

    Args:
        run: The run record (see :func:`meddl.report.render_report`).
        bundle_path: The bundle folder the card is written into (its commands name it).

    Returns:
        The Markdown text.

    Raises:
        ValueError: If a required key is missing or ``kind`` is unknown.
    """
    context = build_context(run, with_plots=False)
    return _template().render(ctx=context, card=_card(run, context, bundle_path))


def write_model_card(run: Mapping[str, Any], path: Path, bundle_folder: Path | None = None) -> Path:
    """Write the Markdown model card of a run.

    Args:
        run: The run record.
        path: The file to write, or a folder, in which case ``model_card.md`` is written inside it.
            Missing parent folders are created.
        bundle_folder: where the bundle will be used from, when the card is written elsewhere first (a run is
            staged beside its folder); default: the card's own folder.

    Returns:
        The path of the written file.

    Raises:
        ValueError: As :func:`render_model_card`.
    """
    folder = Path(path) if Path(path).suffix.lower() != ".md" else Path(path).parent
    return write_text_output(render_model_card(run, bundle_folder or folder), path, "model_card.md")

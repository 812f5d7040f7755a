"""The data and model sections of the run context: rows read, used and dropped, splits, columns, training."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meddl.report import plots
from meddl.report._context_helpers import _positive_label, _text
from meddl.report._context_types import DataSection, ModelSection, Plot, Table
from meddl.report._format import DASH, as_float, fmt_count, fmt_percent, fmt_seconds, mapping, metric_label, sequence

__all__: list[str] = []


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


def _repairs(data: Mapping[str, Any]) -> Table | None:
    """What MedDL changed in the data to use it (interpolated samples, converted channels, imputed values…)."""
    repairs = {str(what): as_float(count) for what, count in mapping(data.get("repairs")).items()}
    rows = [[what, fmt_count(count)] for what, count in repairs.items() if count]
    return Table(["Change made to the data", "Count"], rows, [False, True]) if rows else None


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
        repairs=_repairs(data),
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

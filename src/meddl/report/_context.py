"""Turn a run record into the text the report and the model card show.

The run record is the plain dict the pipeline builds (see :func:`meddl.report.render_report`). This module
reads it defensively (any optional section may be absent or None), formats every number once, and returns
small dataclasses that the HTML and Markdown templates only lay out.

The section dataclasses live in :mod:`meddl.report._context_types` and the builders of each section in
:mod:`meddl.report._context_data`, :mod:`meddl.report._context_performance` and
:mod:`meddl.report._context_findings` (with shared helpers in :mod:`meddl.report._context_helpers`); every public
name is importable from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meddl.report._context_data import _data_section, _model_section
from meddl.report._context_findings import (
    _caveats,
    _cross_validation,
    _examples,
    _examples_heading,
    _importance,
    _localization,
    _sections,
    _shift,
    _subgroups,
)
from meddl.report._context_helpers import _parse_config, _require, _target_description, _text
from meddl.report._context_performance import _performance_section
from meddl.report._context_types import (
    KINDS,
    SHIFT_TOP_K,
    SMALL_TEST_SET,
    WIDE_AUROC_CI,
    CrossValidationSection,
    DataSection,
    ExampleCase,
    ExtraSection,
    ImportanceBlock,
    ModelSection,
    PerformanceSection,
    Plot,
    RunContext,
    ShiftSection,
    Table,
)
from meddl.report._format import fmt_date, mapping, sequence, task_label

__all__ = [
    "KINDS",
    "SHIFT_TOP_K",
    "SMALL_TEST_SET",
    "WIDE_AUROC_CI",
    "CrossValidationSection",
    "DataSection",
    "ExampleCase",
    "ExtraSection",
    "ImportanceBlock",
    "ModelSection",
    "PerformanceSection",
    "Plot",
    "RunContext",
    "ShiftSection",
    "Table",
    "build_context",
]


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
        examples_heading=_examples_heading(run),
        localization=_localization(run),
        sections=_sections(run),
        config_yaml=run.get("config_yaml") if isinstance(run.get("config_yaml"), str) else None,
        config=_parse_config(run.get("config_yaml")),
    )

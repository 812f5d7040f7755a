"""The dataclasses a run record is turned into, one per section of the report and the model card.

Built by :func:`meddl.report._context.build_context` (importable from there too); the HTML and Markdown templates
only lay them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
]

KINDS = ("train", "external_evaluation")
SMALL_TEST_SET = 100
WIDE_AUROC_CI = 0.2
SHIFT_TOP_K = 10


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
    repairs: Table | None = None  # what MedDL changed in the data to use it, counted


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


@dataclass(frozen=True)
class ExtraSection:
    """A data kind's own findings (motifs, cohort flow, attention, top genes): text, a table, figures."""

    anchor: str
    title: str
    text: list[str]
    table: Table | None
    figures: list[ExampleCase]


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
    examples_heading: Mapping[str, str] = field(default_factory=dict)
    localization: str | None = None
    sections: list[ExtraSection] = field(default_factory=list)

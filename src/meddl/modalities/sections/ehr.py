"""The ``data`` and ``preprocess`` sections of EHR event stores (``data.kind: ehr``).

Plain pydantic (see :mod:`meddl.sections`): validating an experiment imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from meddl.sections import DataSection, PreprocessSection, Section

__all__ = ["CohortConfig", "Data", "EHRDataConfig", "EHRPreprocessConfig", "Preprocess"]


class CohortConfig(Section):
    """Who is in the cohort, when the prediction is made and what it predicts."""

    outcome: Literal[
        "mortality", "readmission", "long_stay", "next_visit_diagnoses", "time_to_death", "time_to_readmission"
    ] = Field(
        "mortality",
        description="time_to_death: hours from the prediction time to death in hospital (censored at discharge); "
        "time_to_readmission: days from discharge to readmission (death a competing event) — task survival",
    )
    observation_hours: float = Field(48.0, gt=0, description="features from the first N hours of the stay")
    horizon_days: float | None = Field(None, gt=0, description="readmission: days after discharge; long_stay: LOS")
    min_age: float = Field(18.0, ge=0)
    min_stay_hours: float | None = Field(None, ge=0, description="default: observation_hours")
    first_stay_only: bool = True
    stay_selection: Literal["first", "random"] = Field(
        "first", description="which eligible stay per patient is the index stay (random: seeded by train.seed)"
    )
    label_codes_top: int = Field(20, ge=1, description="next-visit diagnoses: the most frequent code categories")


class EHRDataConfig(DataSection):
    """An EHR event store (DuckDB file written by ``meddl ehr import``) and the cohort to draw from it."""

    default_arch: ClassVar[str] = "gru"
    archs: ClassVar[tuple[str, ...]] = ("gru", "lstm", "retain", "event_transformer")

    tasks: ClassVar[tuple[str, ...]] = ("binary", "multilabel", "survival")

    kind: Literal["ehr"]
    path: Path = Field(..., description="the DuckDB event store")
    cohort: CohortConfig = Field(default_factory=CohortConfig)

    def check_task(self, task: str) -> None:
        outcome = self.cohort.outcome
        tasks = {"next_visit_diagnoses": "multilabel", "time_to_death": "survival", "time_to_readmission": "survival"}
        wanted = tasks.get(outcome, "binary")
        if task != wanted:
            raise ValueError(f"data.cohort.outcome {outcome!r} is a {wanted} task; set task: {wanted}")


class EHRPreprocessConfig(PreprocessSection):
    """Features computed inside DuckDB; vocabularies and scaling fitted on training patients only."""

    kind: Literal["ehr"] = "ehr"
    mode: Literal["grid", "visits"] = "grid"
    bin_hours: float = Field(4.0, gt=0)
    max_visits: int = Field(20, ge=1)
    labs: list[str] | None = Field(None, description="lab/vital items (default: the most frequent)")
    top_labs: int = Field(20, ge=1)
    codes_top: int = Field(200, ge=1)
    include_static: bool = True
    include_discharge_codes: bool = Field(
        False, description="predictions at discharge (readmission, next visit): use the stay's own discharge codes"
    )
    scale: Literal["standard", "none"] = "standard"
    imbalance: Literal["none", "class_weight"] = "none"


Data = EHRDataConfig
Preprocess = EHRPreprocessConfig

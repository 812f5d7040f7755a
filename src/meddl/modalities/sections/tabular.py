"""The ``data`` and ``preprocess`` sections of patient tables (``data.kind: tabular``).

Plain pydantic (see :mod:`meddl.sections`): validating an experiment imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from meddl.sections import ColumnType, DataSection, PreprocessSection, SurvivalOutcome

__all__ = ["Data", "DataConfig", "Preprocess", "PreprocessConfig"]


class DataConfig(SurvivalOutcome, DataSection):
    """Where the table is and what the columns mean."""

    tasks: ClassVar[tuple[str, ...]] = ("binary", "multiclass", "regression", "survival")
    group_columns: ClassVar[bool] = True

    kind: Literal["tabular"] = "tabular"
    path: Path = Field(..., description="CSV or Parquet file, relative to the experiment file")
    target: str | None = Field(None, description="the outcome column (every task but survival)")
    positive_label: str | int | float | bool | None = None
    classes: list[str | int | float | bool] | None = None
    patient_id: str | None = None
    features: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    column_types: dict[str, ColumnType] = Field(default_factory=dict)
    units: dict[str, str] = Field(default_factory=dict, description="unit per column, shown in reports and forms")
    na_values: list[str] = Field(default_factory=lambda: ["?", "NA", "N/A", "n/a", "NaN", "nan", "null", ""])

    def check_task(self, task: str) -> None:
        super().check_task(task)
        self.check_survival(task, self.target)


class PreprocessConfig(PreprocessSection):
    """Fitted on the training split only: imputation, missing-value indicators, scaling, encoding, resampling."""

    kind: Literal["tabular"] = "tabular"
    missing: Literal["drop", "mean", "median", "most_frequent", "knn", "iterative"] = "median"
    missing_indicators: bool = True
    scale: Literal["standard", "minmax", "robust", "none"] = "standard"
    imbalance: Literal["none", "class_weight", "oversample", "undersample", "smote"] = "none"
    knn_neighbors: int = Field(5, ge=1)


Data = DataConfig
Preprocess = PreprocessConfig

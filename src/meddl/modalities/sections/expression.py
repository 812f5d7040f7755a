"""The ``data`` and ``preprocess`` sections of gene-expression matrices (``data.kind: expression``).

Plain pydantic (see :mod:`meddl.sections`): validating an experiment imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from meddl.sections import DataSection, PreprocessSection

__all__ = ["Data", "ExpressionDataConfig", "ExpressionPreprocessConfig", "Preprocess"]


class ExpressionDataConfig(DataSection):
    """A samples × genes expression matrix and a label table joined by sample id."""

    tasks: ClassVar[tuple[str, ...]] = ("binary", "multiclass", "regression", "survival")

    kind: Literal["expression"]
    path: Path = Field(..., description="expression matrix: CSV/TSV/Parquet (.h5ad with anndata installed)")
    labels: Path = Field(..., description="label table with the sample id column")
    sample_column: str = "sample_id"
    genes_in_rows: bool = Field(False, description="the matrix has genes as rows and samples as columns")
    target: str = "label"
    positive_label: str | int | float | bool | None = None
    classes: list[str | int | float | bool] | None = None
    patient_id: str | None = None
    gene_names: Path | None = Field(
        None,
        description="a CSV of two columns, gene id (as in the matrix) and its name (e.g. probe → symbol); "
        "explanations then read '219510_at (POLQ)'",
    )
    survival_time: str | None = Field(
        None, description="censored outcome: time column, with survival_event (task survival, or a horizon label)"
    )
    survival_event: str | None = None
    horizon: float | None = Field(None, gt=0, description="event by this time (label table's time unit)")

    def check_task(self, task: str) -> None:
        super().check_task(task)
        if task == "survival":
            if self.survival_time is None or self.survival_event is None:
                raise ValueError("data.survival_time: required for task survival, with data.survival_event")
            if self.horizon is not None:
                raise ValueError(
                    "data.horizon: a survival task keeps the censored follow-up; give evaluate.horizons instead"
                )
            return
        given = [self.survival_time is not None, self.survival_event is not None, self.horizon is not None]
        if any(given) and not all(given):
            raise ValueError("a censored outcome needs survival_time, survival_event and horizon together")


class ExpressionPreprocessConfig(PreprocessSection):
    """Fitted on the training split only: log transform, gene selection by variance, standardisation."""

    kind: Literal["expression"] = "expression"
    log: Literal["auto", "log2", "log1p", "none"] = "auto"
    select: Literal["variance", "none"] = "variance"
    n_genes: int = Field(500, ge=1)
    scale: Literal["standard", "none"] = "standard"
    imbalance: Literal["none", "class_weight"] = "none"


Data = ExpressionDataConfig
Preprocess = ExpressionPreprocessConfig

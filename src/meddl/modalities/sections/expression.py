"""The ``data`` and ``preprocess`` sections of gene-expression matrices (``data.kind: expression``).

Plain pydantic (see :mod:`meddl.sections`): validating an experiment imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from meddl.sections import DataSection, PreprocessSection

__all__ = ["Data", "ExpressionDataConfig", "ExpressionPreprocessConfig", "Preprocess"]


class ExpressionDataConfig(DataSection):
    """A samples × genes expression matrix and a label table joined by sample id."""

    kind: Literal["expression"]
    path: Path = Field(..., description="expression matrix: CSV/TSV/Parquet (.h5ad with anndata installed)")
    labels: Path = Field(..., description="label table with the sample id column")
    sample_column: str = "sample_id"
    genes_in_rows: bool = Field(False, description="the matrix has genes as rows and samples as columns")
    target: str = "label"
    positive_label: str | int | float | bool | None = None
    classes: list[str | int | float | bool] | None = None
    patient_id: str | None = None
    survival_time: str | None = Field(None, description="censored outcome: time column, with survival_event")
    survival_event: str | None = None
    horizon: float | None = Field(None, gt=0, description="event by this time (label table's time unit)")

    @model_validator(mode="after")
    def _survival_complete(self) -> ExpressionDataConfig:
        given = [self.survival_time is not None, self.survival_event is not None, self.horizon is not None]
        if any(given) and not all(given):
            raise ValueError("a censored outcome needs survival_time, survival_event and horizon together")
        return self


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

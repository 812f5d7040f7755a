"""The ``data`` and ``preprocess`` sections of molecules (``data.kind: molecule``).

Plain pydantic (see :mod:`meddl.sections`): validating an experiment imports nothing heavy (not even RDKit).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from meddl.sections import DataSection, PreprocessSection, SplitConfig

__all__ = ["Data", "MoleculeDataConfig", "MoleculePreprocessConfig", "MoleculeSplitConfig", "Preprocess"]


class MoleculeSplitConfig(SplitConfig):
    """How compounds are divided: by Bemis–Murcko scaffold (the default: a random split leaks each scaffold into
    the test set and flatters the model), at random, or stratified by the label. Duplicates of one compound (after
    standardisation) always stay in one split."""

    method: Literal["scaffold", "random", "stratified"] = "scaffold"  # type: ignore[assignment]
    train: float = Field(0.8, gt=0, lt=1)  # MoleculeNet's 80 / 10 / 10
    validation: float = Field(0.1, gt=0, lt=1)
    test: float = Field(0.1, gt=0, lt=1)


class MoleculeDataConfig(DataSection):
    """Molecules: a CSV/TSV/Parquet with a SMILES column, an SDF (its properties as targets) or a ``.smi`` list."""

    tasks: ClassVar[tuple[str, ...]] = ("binary", "multiclass", "multilabel", "regression")
    default_arch: ClassVar[str] = "mpnn"
    archs: ClassVar[tuple[str, ...]] = ("mpnn", "gat", "fingerprint_mlp")
    default_baselines: ClassVar[dict[str, tuple[str, ...]]] = {
        "regression": ("linear_regression", "random_forest"),
        "binary": ("logistic_regression", "random_forest"),
        "multiclass": ("logistic_regression", "random_forest"),
    }

    kind: Literal["molecule"]
    path: Path = Field(..., description="CSV/TSV/Parquet with a SMILES column, SDF (.sdf, .sdf.gz) or .smi")
    smiles: str = Field("smiles", description="the SMILES column of a table (an SDF's structures are read directly)")
    target: str | list[str] = Field(
        "label",
        description="the label column or SDF property; multilabel: a list of 0/1 columns (assays; empty where not run)",
    )
    id_column: str | None = Field(None, description="column or SDF property naming each compound (default: row)")
    positive_label: str | int | float | bool | None = None
    classes: list[str | int | float | bool] | None = None
    on_bad_record: Literal["error", "skip"] = Field(
        "error", description="a SMILES RDKit cannot parse: stop naming its row (error) or skip it, counted (skip)"
    )
    split: MoleculeSplitConfig = Field(default_factory=MoleculeSplitConfig)  # type: ignore[assignment]

    @model_validator(mode="after")
    def _targets(self) -> MoleculeDataConfig:
        if isinstance(self.target, list) and not self.target:
            raise ValueError("target: name at least one column")
        return self

    def check_task(self, task: str) -> None:
        super().check_task(task)
        if task == "multilabel" and not isinstance(self.target, list):
            raise ValueError("data.target: a multilabel task takes a list of 0/1 columns, e.g. [NR-AR, SR-p53]")
        if task != "multilabel" and isinstance(self.target, list):
            raise ValueError(f"data.target: a list of columns is for task multilabel; this is a {task} task")


class MoleculePreprocessConfig(PreprocessSection):
    """Graph featurisation (atoms and bonds; the graph size from the data) and Morgan fingerprints."""

    kind: Literal["molecule"] = "molecule"
    max_atoms: int | None = Field(
        None,
        ge=2,
        le=400,
        description="heavy atoms the graph arrays hold; default: from the data (1.5 × the largest molecule read, "
        "so new compounds up to that size can be scored), written to the run",
    )
    fingerprint_bits: int = Field(2048, ge=64, le=16384, description="Morgan fingerprint length (fingerprint_mlp)")
    fingerprint_radius: int = Field(2, ge=1, le=4, description="Morgan radius (2 = ECFP4)")
    imbalance: Literal["none", "class_weight"] = "none"


Data = MoleculeDataConfig
Preprocess = MoleculePreprocessConfig

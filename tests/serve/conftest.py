"""A small trained tabular bundle shared by the serve tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import fast_config


@pytest.fixture(scope="session")
def served_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A binary bundle on the synthetic clinical table (units set for the form)."""
    from meddl import Experiment
    from meddl.data import synthetic_clinical_table
    from meddl.io import write_table

    folder = tmp_path_factory.mktemp("served")
    csv = write_table(synthetic_clinical_table(250, seed=11), folder / "clinic.csv")
    config = fast_config(csv)
    config["data"]["units"] = {"glucose": "mg/dL", "bmi": "kg/m²", "systolic_bp": "mmHg", "age": "years"}
    Experiment.from_dict(config).run(out=folder / "clinic")
    return folder / "clinic"


@pytest.fixture
def valid_record() -> dict:
    return {
        "age": 61,
        "sex": "F",
        "bmi": 31.2,
        "glucose": 142,
        "systolic_bp": 135,
        "smoker": "current",
        "noise": 0.1,
    }

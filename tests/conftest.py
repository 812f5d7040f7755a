"""Shared fixtures: small real-looking tables written to disk, and a fast experiment config."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# Two pytest workers share two cores: one intra-op thread each keeps them from oversubscribing.
torch.set_num_threads(1)
os.environ.setdefault("MEDDL_DEBUG", "")


@pytest.fixture(scope="session", autouse=True)
def _threads_independent_of_the_other_worker() -> Iterator[None]:
    """A trainer takes the cores no other process keeps busy when it starts (meddl.train.runtime), so beside the
    other pytest worker its thread count, and the last bits of its losses, would change from run to run. Tests
    that compare two runs need one count: here every trainer, module-scoped fixtures' too, sees no other process
    busy (the whole budget, as before that rule). tests/train/test_runtime.py measures the real thing."""
    from meddl.train import runtime

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runtime, "busy_cores", lambda window=0.1: 0)
        yield


@pytest.fixture
def clinical_csv(tmp_path: Path) -> Path:
    """400 synthetic patients, 2 visits each, with missing values — written as a CSV."""
    from meddl.data import synthetic_clinical_table
    from meddl.io import write_table

    return write_table(synthetic_clinical_table(300, seed=3, visits_per_patient=2), tmp_path / "clinic.csv")


def fast_config(path: Path, **overrides: object) -> dict:
    """An experiment dict that trains in a few seconds on the synthetic table."""
    config: dict = {
        "name": "clinic",
        "task": "binary",
        "data": {
            "path": str(path),
            "target": "outcome",
            "positive_label": "yes",
            "patient_id": "patient_id",
            "exclude": ["visit_date"],
        },
        "model": {"arch": "mlp", "hidden": [32]},
        "train": {"epochs": 4, "batch_size": 64, "progress": False},
        "evaluate": {"bootstrap": 50},
        "explain": {"permutation_repeats": 1},
    }
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        if field:
            config.setdefault(section, {})[field] = value
        else:
            config[section] = value
    return config

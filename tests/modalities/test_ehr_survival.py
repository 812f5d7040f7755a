"""EHR stores with time-to-event outcomes: time to in-hospital death (censored at discharge) and time to
readmission (death after discharge a competing event, censored at the end of follow-up)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from meddl import Experiment, load_bundle
from meddl.data.ehr_cohort import CohortSpec, define_cohort
from meddl.data.ehr_synth import synthetic_ehr


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ehr") / "events.duckdb"
    synthetic_ehr(path, n_patients=400, seed=3)
    return path


def test_time_to_death_starts_at_the_prediction_time_and_censors_at_discharge(store: Path) -> None:
    mortality = define_cohort(store, CohortSpec(outcome="mortality", observation_hours=24))
    cohort = define_cohort(store, CohortSpec(outcome="time_to_death", observation_hours=24))
    time, event = cohort.labels[:, 0], cohort.labels[:, 1]
    assert (time > 0).all() and set(np.unique(event)) <= {0.0, 1.0}
    # the same deaths as the binary outcome, among the stays still in hospital after the window
    by_visit = dict(zip(mortality.visit_ids, mortality.labels, strict=True))
    assert all(by_visit[v] == e for v, e in zip(cohort.visit_ids, event, strict=True))
    assert cohort.flow[-2][0].startswith("in hospital after 24 h")


def test_time_to_readmission_has_death_as_a_competing_event(store: Path) -> None:
    cohort = define_cohort(store, CohortSpec(outcome="time_to_readmission"))
    assert cohort.label_names == ["readmission", "death after discharge"]
    event = cohort.labels[:, 1]
    assert (cohort.labels[:, 0] > 0).all() and set(np.unique(event)) <= {0.0, 1.0, 2.0} and (event == 1).any()


def test_a_gru_with_a_cox_head_trains_on_time_to_death(store: Path, tmp_path: Path) -> None:
    experiment = {
        "name": "ehr-surv",
        "task": "survival",
        "data": {"kind": "ehr", "path": str(store), "cohort": {"outcome": "time_to_death", "observation_hours": 24}},
        "preprocess": {"mode": "grid", "bin_hours": 6},
        "model": {"arch": "gru", "hidden": 16},
        "train": {"epochs": 3, "seed": 0, "progress": False},
        "evaluate": {"bootstrap": 20, "baselines": []},
    }
    result = Experiment.from_dict(experiment).run(out=tmp_path / "run")
    assert 0.0 <= result.metrics["test"]["c_index"]["value"] <= 1.0
    predictions = load_bundle(tmp_path / "run").predict(store)
    horizons = [c for c in predictions.columns if c.startswith("surv_")]
    assert horizons and predictions[horizons].stack().between(0, 1).all()
    assert "What drove the risk" in (tmp_path / "run" / "report.html").read_text()

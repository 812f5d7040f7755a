"""The lab vocabulary's errors name the experiment field a user writes (``preprocess.labs``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from meddl.data.ehr_cohort import CohortSpec, FeatureSpec, build_vocabulary, define_cohort
from meddl.errors import MedDLError
from meddl.io.ehr import EventStore

ADMIT = datetime(2020, 1, 1)


def one_stay_store(path: Path) -> Path:
    """One 4-day stay with heart rate and lactate measured inside its first 24 h."""
    with EventStore.create(path) as store:
        con = store.connection
        con.execute("INSERT INTO patients VALUES ('A', 'F', DATE '1960-01-01', NULL)")
        con.execute("INSERT INTO visits VALUES ('A1', 'A', ?, ?, 'inpatient', FALSE)", [ADMIT, ADMIT + timedelta(4)])
        for item, hour in (("heart_rate", 1), ("lactate", 2)):
            con.execute(
                "INSERT INTO measurements VALUES ('A', 'A1', ?, 'lab', 1.0, NULL, ?)",
                [item, ADMIT + timedelta(hours=hour)],
            )
    return path


def test_unknown_lab_names_preprocess_labs(tmp_path: Path) -> None:
    store = one_stay_store(tmp_path / "events.duckdb")
    cohort = define_cohort(store, CohortSpec(outcome="mortality", observation_hours=24))
    spec = FeatureSpec(labs=["heart_rate", "troponin_z", "lactat"])
    with pytest.raises(MedDLError) as error:
        build_vocabulary(store, cohort, spec, np.ones(cohort.n, dtype=bool))
    message = str(error.value)
    assert message.startswith("preprocess.labs: item(s) not in table 'measurements' of ")
    assert "events.duckdb" in message and "'troponin_z': close matches none" in message
    assert "'lactat': close matches ['lactate'" in message and "features.labs" not in message


def test_known_labs_are_kept_in_order(tmp_path: Path) -> None:
    store = one_stay_store(tmp_path / "events.duckdb")
    cohort = define_cohort(store, CohortSpec(outcome="mortality", observation_hours=24))
    spec = FeatureSpec(labs=["lactate", "heart_rate", "lactate"])
    vocabulary = build_vocabulary(store, cohort, spec, np.ones(cohort.n, dtype=bool))
    assert vocabulary.labs == ["lactate", "heart_rate"]

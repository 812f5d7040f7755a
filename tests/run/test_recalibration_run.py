"""evaluate.recalibrate end to end: fitted on validation, kept in the bundle, applied by predict, evaluate and the
report's before/after table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meddl import Experiment, load_bundle
from meddl.evaluate.recalibration import Recalibrator
from meddl.run import evaluate_external
from meddl.train import scores_from_outputs
from tests.conftest import fast_config


@pytest.mark.slow
def test_a_recalibrated_run_keeps_its_map_and_every_path_applies_it(clinical_csv: Path, tmp_path: Path) -> None:
    config = fast_config(clinical_csv)
    config["evaluate"]["recalibrate"] = "auto"
    result = Experiment.from_dict(config).run(tmp_path / "run")
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    recalibrator = Recalibrator.from_json(info["recalibration"])
    assert set(recalibrator.chosen_by) == {"none", "temperature", "platt", "isotonic"}
    section = next(s for s in result.record["sections"] if s["id"] == "recalibration")
    assert [row[0] for row in section["table"]["rows"]][:4] == [
        "ece",
        "brier",
        "calibration_slope",
        "calibration_intercept",
    ]
    assert section["figures"][0]["title"] == "Reliability before and after recalibration"
    report = (tmp_path / "run" / "report.html").read_text()
    assert "Recalibration" in report and 'alt="Reliability before and after recalibration"' in report
    assert "calibration_slope" in result.metrics["test"]

    bundle = load_bundle(tmp_path / "run")
    cases = pd.read_csv(clinical_csv).drop(columns=["outcome"]).head(20)
    read = bundle.read(cases)
    raw = scores_from_outputs("binary", bundle._outputs(read.inputs), None)
    predicted = bundle.predict(cases)["probability_yes"].to_numpy(dtype=float)
    assert np.allclose(predicted[read.usable], recalibrator.apply(raw))

    external = evaluate_external(tmp_path / "run", clinical_csv, tmp_path / "external", n_bootstrap=0)
    brier = float(
        np.mean(
            (
                bundle.predict(pd.read_csv(clinical_csv))["probability_yes"]
                - (pd.read_csv(clinical_csv)["outcome"] == "yes")
            )
            ** 2
        )
    )
    assert external.metrics["test"]["brier"]["value"] == pytest.approx(brier, rel=1e-6)


def test_recalibrate_none_writes_no_map(clinical_csv: Path, tmp_path: Path) -> None:
    Experiment.from_dict(fast_config(clinical_csv)).run(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "model.json").read_text())["recalibration"] is None

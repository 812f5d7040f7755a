"""evaluate.conformal end to end: the calibration part carved from validation by patient, the predictor kept in the
bundle, sets and intervals from predict and the server, the report's coverage table, and config errors before
training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from meddl import Experiment, load_bundle
from meddl.config import parse_config
from meddl.errors import MedDLError
from meddl.run.privacy import local_ids_path
from meddl.serve import Settings, create_app
from tests.conftest import fast_config


@pytest.mark.slow
def test_a_conformal_run_carves_calibration_and_every_path_returns_sets(clinical_csv: Path, tmp_path: Path) -> None:
    config = fast_config(clinical_csv)
    config["evaluate"]["conformal"] = {"alpha": 0.2, "mondrian": "sex"}
    result = Experiment.from_dict(config).run(tmp_path / "run")

    ids = pd.read_csv(local_ids_path(tmp_path / "run"))
    splits = pd.read_csv(tmp_path / "run" / "splits.csv")
    assert set(splits["split"]) == {"train", "validation", "calibration", "test"}
    per_patient = splits.merge(ids, on=[c for c in ids.columns if c in splits.columns]).groupby("patient_id")
    assert (per_patient["split"].nunique() == 1).all()  # a patient's visits stay in one split
    counts = splits["split"].value_counts()
    assert 0.3 < counts["calibration"] / (counts["calibration"] + counts["validation"]) < 0.7

    figures = result.metrics["conformal"]
    assert figures["n_calibration"] == counts["calibration"] and figures["mondrian"] == "sex"
    assert set(figures["test"]["per_group"]["sex"]) == {"F", "M"}
    assert 0.0 < figures["test"]["overall"]["coverage"]["value"] <= 1.0
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    assert info["conformal"]["alpha"] == 0.2 and {"F", "M"} <= set(info["conformal"]["thresholds"])
    report = (tmp_path / "run" / "report.html").read_text()
    assert "Conformal prediction" in report and "sex = F" in report

    bundle = load_bundle(tmp_path / "run")
    cases = pd.read_csv(clinical_csv).drop(columns=["outcome"]).head(30)
    predicted = bundle.predict(cases)
    sets = predicted["prediction_set"].fillna("").map(lambda s: [v for v in s.split(" | ") if v])
    assert (predicted["set_size"] == sets.map(len)).all()
    assert (predicted["uncertain"] == (predicted["set_size"] != 1)).all()
    # the set is the labels whose 1 - p is within the case's group threshold
    thresholds = bundle.conformal.thresholds  # type: ignore[union-attr]
    for (_, row), kept in zip(predicted.iterrows(), sets, strict=True):
        limit = thresholds[str(cases.loc[row["row"], "sex"])]
        p = row["probability_yes"]
        assert kept == [name for name, q in (("no", 1 - p), ("yes", p)) if 1 - q <= limit + 1e-12]
    with pytest.raises(MedDLError, match=r"missing column.*'sex'"):
        bundle.predict(cases.drop(columns=["sex"]))

    client = TestClient(create_app(Settings(bundles=[tmp_path / "run"], audit_log=None)))
    shown = cases.drop(columns=["patient_id", "visit_date"]).head(5)
    records = shown.astype(object).where(shown.notna(), None).to_dict(orient="records")
    body = client.post("/models/clinic/predict", json={"records": records}).json()
    for item, kept in zip(body["predictions"], sets.head(5), strict=True):
        assert item["prediction_set"] == kept and item["uncertain"] == (len(kept) != 1)
    detail = client.get("/models/clinic").json()
    assert detail["conformal"]["coverage"] == pytest.approx(0.8) and "%" in detail["conformal"]["test_coverage"]


@pytest.mark.slow
def test_a_referral_rule_is_chosen_on_validation_and_flags_predictions(clinical_csv: Path, tmp_path: Path) -> None:
    config = fast_config(clinical_csv)
    config["evaluate"]["referral"] = {"metric": "specificity", "at_least": 0.85}
    result = Experiment.from_dict(config).run(tmp_path / "run")
    selective = result.metrics["selective"]
    assert selective["risk_coverage"]["referred"][:3] == [0.0, 0.05, 0.1]
    assert set(selective["risk_coverage"]["metrics"]) == {"sensitivity", "specificity", "accuracy"}
    bundle = load_bundle(tmp_path / "run")
    rule = bundle.referral
    assert rule is not None and selective["referral"]["cutoff"] == rule.cutoff
    predicted = bundle.predict(pd.read_csv(clinical_csv).head(40))
    p, t = predicted["probability_yes"].to_numpy(float), bundle.threshold
    sure = np.where(p >= t, (p - t) / (1 - t), (t - p) / t)
    assert np.allclose(predicted["confidence"].to_numpy(float), sure)
    assert (predicted["refer"] == (sure < rule.cutoff)).all() and (predicted["uncertain"] == predicted["refer"]).all()
    assert "Referring the least confident cases" in (tmp_path / "run" / "report.html").read_text()


@pytest.mark.slow
def test_regression_intervals_and_the_referral_width(clinical_csv: Path, tmp_path: Path) -> None:
    config = fast_config(clinical_csv)
    config.update(task="regression")
    config["data"] = {**config["data"], "target": "glucose", "exclude": ["visit_date", "outcome"]}
    config["data"].pop("positive_label")
    config["evaluate"]["conformal"] = {"alpha": 0.1}
    config["serve"] = {"max_interval": 40.0}
    result = Experiment.from_dict(config).run(tmp_path / "run")
    bundle = load_bundle(tmp_path / "run")
    half = bundle.conformal.thresholds["*"]  # type: ignore[union-attr]
    predicted = bundle.predict(pd.read_csv(clinical_csv).head(10))
    assert np.allclose(predicted["upper"] - predicted["prediction"], half)
    assert np.allclose(predicted["prediction"] - predicted["lower"], half)
    assert (predicted["uncertain"] == (2 * half > 40.0)).all()
    width = result.metrics["conformal"]["test"]["overall"]["mean_width"]["value"]
    assert width == pytest.approx(2 * half)


def test_too_small_a_calibration_part_stops_before_training(clinical_csv: Path, tmp_path: Path) -> None:
    config = fast_config(clinical_csv)
    config["evaluate"]["conformal"] = {"alpha": 0.005}
    with pytest.raises(MedDLError, match=r"calibration part of validation holds \d+ case\(s\); alpha 0.005 needs at"):
        Experiment.from_dict(config).run(tmp_path / "run")
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()
    config["evaluate"]["conformal"] = {"mondrian": "ward"}
    with pytest.raises(MedDLError, match=r"evaluate.conformal.mondrian names 'ward', which is not a column"):
        Experiment.from_dict(config).run(tmp_path / "run")
    config["evaluate"]["conformal"] = {"mondrian": "patient_id"}  # not an input: the server could not know it
    with pytest.raises(MedDLError, match=r"'patient_id' is not one of the model's input columns"):
        Experiment.from_dict(config).run(tmp_path / "run")
    config["evaluate"]["conformal"] = {"mondrian": "noise"}  # a measurement, not a grouping
    with pytest.raises(MedDLError, match=r"'noise' has \d+ distinct values.*categorical column"):
        Experiment.from_dict(config).run(tmp_path / "run")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"evaluate": {"conformal": {"alpha": 1.5}}}, "evaluate.conformal.alpha: Input should be less than 1"),
        ({"evaluate": {"conformal": {"method": "topk"}}}, "evaluate.conformal.method"),
        ({"task": "regression", "evaluate": {"conformal": {"mondrian": "class"}}}, "'class' needs classes"),
        ({"serve": {"max_interval": 5}}, "serve.max_interval: is for regression with evaluate.conformal"),
        ({"task": "multilabel", "evaluate": {"conformal": {"method": "aps"}}}, "takes 'lac'"),
        ({"task": "regression", "evaluate": {"referral": {}}}, "evaluate.referral: is for binary and multiclass"),
        ({"task": "multiclass", "evaluate": {"referral": {}}}, "a multiclass task takes 'accuracy'"),
        (
            {"task": "multilabel", "evaluate": {"conformal": {"mondrian": "class"}}},
            "already calibrated label by label",
        ),
    ],
)
def test_conformal_config_errors_name_the_field(change: dict, message: str) -> None:
    raw: dict = {"data": {"path": "t.csv", "target": "y"}, **change}
    with pytest.raises(MedDLError, match=message):
        parse_config(raw)


def test_a_group_column_needs_a_kind_with_columns() -> None:
    raw = {"data": {"kind": "image", "path": "m.csv"}, "evaluate": {"conformal": {"mondrian": "site"}}}
    with pytest.raises(MedDLError, match=r"evaluate.conformal.mondrian: image data has no columns to group by"):
        parse_config(raw)
    raw = {"task": "survival", "data": {"path": "t.csv", "time": "t", "event": "e"}, "evaluate": {"conformal": {}}}
    raw["evaluate"]["conformal"] = {"mondrian": "class"}
    with pytest.raises(MedDLError, match=r"'class' needs classes; for survival give a categorical column"):
        parse_config(raw)

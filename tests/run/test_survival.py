"""``task: survival`` end to end on real data (scikit-survival's GBSG2): train → metrics with CIs, Cox and random
survival forest baselines, report → bundle → predict (risk, survival at horizons, median) → CLI → server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from meddl import Experiment, load_bundle
from meddl.cli import main
from meddl.config import parse_config
from meddl.data.cohorts import survival_cohort
from meddl.errors import MedDLError
from meddl.io import read_table, write_table
from meddl.serve import Settings, create_app


def _experiment(csv: Path, **overrides: object) -> dict:
    experiment: dict = {
        "name": "gbsg2-surv",
        "task": "survival",
        "data": {"path": str(csv), "time": "time", "event": "event", "patient_id": "patient_id"},
        "model": {"arch": "deepsurv", "hidden": [32], "dropout": 0.1},
        "train": {"epochs": 15, "batch_size": 64, "seed": 0, "progress": False},
        "evaluate": {"bootstrap": 50, "horizons": [365.0, 1095.0, 1825.0]},
        "explain": {"permutation_repeats": 1},
    }
    for key, value in overrides.items():
        experiment[key] = {**experiment.get(key, {}), **value} if isinstance(value, dict) else value
    return experiment


@pytest.fixture(scope="module")
def gbsg2_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_table(survival_cohort("gbsg2").frame, tmp_path_factory.mktemp("gbsg2") / "gbsg2.csv")


@pytest.fixture(scope="module")
def deepsurv_run(gbsg2_csv: Path) -> Path:
    out = gbsg2_csv.parent / "deepsurv"
    Experiment.from_dict(_experiment(gbsg2_csv)).run(out=out)
    return out


def test_no_patient_is_dropped_and_metrics_carry_cis(deepsurv_run: Path) -> None:
    metrics = json.loads((deepsurv_run / "metrics.json").read_text())
    assert metrics["data"]["n_rows_used"] == 686 and sum(metrics["data"]["dropped"].values()) == 0
    test = metrics["test"]
    assert 0.6 < test["c_index"]["value"] < 0.8
    low, high = test["c_index"]["ci"]
    assert low < test["c_index"]["value"] < high
    for name in ("c_index_uno", "auc@1095", "brier@1095", "ibs", "calibration_slope@1095"):
        assert name in test, name
    assert set(metrics["baselines"]) == {"cox", "random_survival_forest"}
    comparison = metrics["comparisons"]["cox"]
    assert comparison["metric"] == "c_index" and len(comparison["ci"]) == 2
    # the deep model is not worse than Cox beyond the CI (the goal on GBSG2)
    assert test["c_index"]["value"] >= metrics["baselines"]["cox"]["c_index"]["ci"][0]
    follow_up = metrics["data"]["follow_up"]
    assert sum(split["n"] for split in follow_up.values()) == 686
    assert metrics["data"]["target"] == "time / event"


def test_report_shows_the_survival_figures(deepsurv_run: Path) -> None:
    html = (deepsurv_run / "report.html").read_text()
    assert "Kaplan" in html and "log-rank" in html
    assert "Calibration at" in html
    assert "What drove each patient&#39;s risk" in html or "What drove each patient's risk" in html


def test_predict_gives_risk_survival_at_each_horizon_and_the_median(deepsurv_run: Path, gbsg2_csv: Path) -> None:
    bundle = load_bundle(deepsurv_run)
    frame = read_table(gbsg2_csv).head(20)
    predictions = bundle.predict(frame)
    assert list(predictions.columns[-5:]) == ["surv_365", "surv_1095", "surv_1825", "median_survival", "note"]
    survival = predictions[["surv_365", "surv_1095", "surv_1825"]].to_numpy()
    assert ((survival > 0) & (survival <= 1)).all() and (np.diff(survival, axis=1) <= 1e-12).all()
    # a higher risk means lower survival at every horizon
    order = np.argsort(predictions["risk"].to_numpy())
    assert survival[order[0], 2] >= survival[order[-1], 2]
    contributions = bundle.contributions(frame.head(3))
    assert len(contributions) == 3 and contributions[0] and "contribution" in contributions[0][0]


def test_cli_predict_writes_the_survival_columns(deepsurv_run: Path, gbsg2_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "predictions.csv"
    try:
        main(["predict", str(deepsurv_run), "--data", str(gbsg2_csv), "--out", str(out)])
    except SystemExit as exc:
        assert not exc.code
    table = read_table(out)
    assert len(table) == 686 and {"risk", "surv_1825", "median_survival"} <= set(table.columns)


def test_server_returns_the_survival_curve(deepsurv_run: Path, gbsg2_csv: Path) -> None:
    client = TestClient(create_app(Settings(bundles=[deepsurv_run], audit_log=None)))
    row = read_table(gbsg2_csv).iloc[0].to_dict()
    record = {k: v for k, v in row.items() if k not in {"patient_id", "time", "event"}}
    answer = client.post("/models/gbsg2-surv/explain", json={"records": [record]})
    assert answer.status_code == 200, answer.text
    item = answer.json()["predictions"][0]
    assert set(item["survival"]) == {"365", "1095", "1825"} and item["label"] is None
    curve = item["survival_curve"]
    assert len(curve["time"]) == len(curve["survival"]) == 40 and curve["survival"][0] == pytest.approx(1.0)
    assert item["contributions"]


def test_deephit_trains_and_predicts(gbsg2_csv: Path, tmp_path: Path) -> None:
    experiment = _experiment(gbsg2_csv, model={"arch": "deephit", "hidden": [32]}, evaluate={"baselines": []})
    result = Experiment.from_dict(experiment).run(out=tmp_path / "deephit")
    assert 0.55 < result.metrics["test"]["c_index"]["value"] < 0.85
    predictions = load_bundle(tmp_path / "deephit").predict(read_table(gbsg2_csv).head(5))
    assert predictions["surv_365"].between(0, 1).all()


def test_horizons_default_to_the_quartiles_of_training_event_times(gbsg2_csv: Path, tmp_path: Path) -> None:
    experiment = _experiment(gbsg2_csv, train={"epochs": 2}, evaluate={"baselines": []})
    del experiment["evaluate"]["horizons"]
    result = Experiment.from_dict(experiment).run(out=tmp_path / "derived")
    derived = result.metrics["derived_defaults"]["evaluate.horizons"]
    assert len(derived["value"]) == 3 and "event times in the training split" in derived["why"]
    assert (
        yaml.safe_load((tmp_path / "derived" / "config.yaml").read_text())["evaluate"]["horizons"] == derived["value"]
    )


def test_competing_risks_need_the_discrete_head(tmp_path: Path) -> None:
    frame = survival_cohort("whas500").frame
    frame["event"] = np.where(frame["event"] == 1, np.where(frame["age"] > 70, 2, 1), 0)
    csv = write_table(frame, tmp_path / "whas.csv")
    experiment = _experiment(csv, train={"epochs": 2}, evaluate={"baselines": []})
    with pytest.raises(MedDLError, match=r"2 causes .* set model\.arch: deephit"):
        Experiment.from_dict(experiment).run(out=tmp_path / "cox")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": {"time": None}}, "data.time: required for task survival"),
        ({"preprocess": {"imbalance": "smote"}}, "a survival task takes 'none'"),
        ({"evaluate": {"baselines": ["logistic_regression"]}}, "are not survival models"),
        ({"evaluate": {"horizons": [365, 100]}}, "strictly increasing"),
        ({"task": "binary", "data": {"target": "event"}}, "are for task survival"),
    ],
)
def test_config_mistakes_name_the_field(tmp_path: Path, change: dict, message: str) -> None:
    experiment = _experiment(tmp_path / "x.csv")
    for key, value in change.items():
        if isinstance(value, dict):
            merged = {**experiment.get(key, {}), **value}
            experiment[key] = {k: v for k, v in merged.items() if v is not None}
        else:
            experiment[key] = value
    with pytest.raises(MedDLError, match=re.escape(message)):
        parse_config(experiment)


def test_bad_follow_up_names_the_row(gbsg2_csv: Path, tmp_path: Path) -> None:
    frame = read_table(gbsg2_csv)
    frame.loc[7, "time"] = -3
    csv = write_table(frame, tmp_path / "bad.csv")
    with pytest.raises(MedDLError, match=r"row 7 has -3\.0 "):
        Experiment.from_dict(_experiment(csv)).run(out=tmp_path / "bad")
    frame = read_table(gbsg2_csv)
    frame["event"] = frame["event"].astype(object)
    frame.loc[3, "event"] = "dead"
    csv = write_table(frame, tmp_path / "text.csv")
    with pytest.raises(MedDLError, match=r"row 3 has 'dead'.*data.event_value"):
        Experiment.from_dict(_experiment(csv)).run(out=tmp_path / "text")


def test_external_evaluation_gives_concordance_and_calibration(deepsurv_run: Path, gbsg2_csv: Path) -> None:
    from meddl import evaluate_external

    frame = read_table(gbsg2_csv).sample(frac=0.5, random_state=1)
    csv = write_table(frame, gbsg2_csv.parent / "other_site.csv")
    result = evaluate_external(deepsurv_run, csv, gbsg2_csv.parent / "external", n_bootstrap=20)
    assert 0.55 < result.metrics["test"]["c_index"]["value"] < 0.85
    assert result.metrics["shift"] and (gbsg2_csv.parent / "external" / "report.html").exists()


def test_any_tabular_backbone_takes_a_survival_head_and_subgroups_get_c(gbsg2_csv: Path, tmp_path: Path) -> None:
    experiment = _experiment(
        gbsg2_csv,
        model={"arch": "ft_transformer", "d_token": 16, "n_blocks": 1, "survival_head": "discrete", "time_bins": 8},
        train={"epochs": 3},
        evaluate={"baselines": [], "subgroups": ["menostat"], "min_subgroup_size": 10},
    )
    experiment["model"] = {k: v for k, v in experiment["model"].items() if k not in {"hidden", "dropout"}}
    result = Experiment.from_dict(experiment).run(out=tmp_path / "ft")
    state = json.loads((tmp_path / "ft" / "model.json").read_text())["survival"]
    assert state["head"] == "discrete" and 2 <= len(state["grid"]) <= 8
    groups = {entry["group"]: entry for entry in result.metrics["subgroups"]}
    assert set(groups) == {"Pre", "Post"} and all("c_index" in g["metrics"] for g in groups.values())


def test_competing_risks_report_each_cause(tmp_path: Path) -> None:
    frame = survival_cohort("whas500").frame
    rng = np.random.default_rng(0)
    # a second cause: half the deaths of the oldest patients become cause 2
    frame["event"] = np.where(
        (frame["event"] == 1) & (frame["age"] > 75) & (rng.random(len(frame)) < 0.5), 2, frame["event"]
    )
    csv = write_table(frame, tmp_path / "whas.csv")
    experiment = _experiment(
        csv, model={"arch": "deephit", "hidden": [32]}, train={"epochs": 5}, evaluate={"baselines": []}
    )
    experiment["evaluate"]["horizons"] = [180.0, 365.0, 730.0]
    result = Experiment.from_dict(experiment).run(out=tmp_path / "cr")
    test = result.metrics["test"]
    assert {"c_index_cause1", "c_index_cause2"} <= set(test)
    assert any(name.startswith("cif_error_cause2@") for name in test)
    predictions = load_bundle(tmp_path / "cr").predict(read_table(csv).head(4))
    assert {"cif_cause_1_365", "cif_cause_2_365"} <= set(predictions.columns)
    cif = predictions[["cif_cause_1_365", "cif_cause_2_365"]].sum(axis=1)
    assert np.allclose(cif + predictions["surv_365"], 1.0, atol=1e-6)
    assert "Cumulative incidence by cause" in (tmp_path / "cr" / "report.html").read_text()


def test_the_report_renders_again_from_the_saved_run_record(deepsurv_run: Path, tmp_path: Path) -> None:
    from meddl.report import write_report

    record = json.loads((deepsurv_run / "run.json").read_text())  # NaN became null on the way to JSON
    write_report(record, tmp_path / "again.html")
    html = (tmp_path / "again.html").read_text()
    assert "Kaplan" in html and "Discrimination and error over time" in html


def test_conformal_lower_bound_on_the_time_to_the_event(gbsg2_csv: Path, tmp_path: Path) -> None:
    """evaluate.conformal on a survival task: each case gets a lower bound on its event time, calibrated on the
    follow-up of the calibration cases (conservative under censoring); coverage on the test split with CIs, exact
    among observed events; predict and the server return the bound."""
    experiment = _experiment(gbsg2_csv, evaluate={"conformal": {"alpha": 0.2, "mondrian": "horTh"}})
    result = Experiment.from_dict(experiment).run(out=tmp_path / "run")
    figures = result.metrics["conformal"]
    assert figures["method"] == "lower_bound" and set(figures["test"]["per_group"]["horTh"]) == {"no", "yes"}
    overall, events = figures["test"]["overall"], figures["test"]["events"]
    assert overall["coverage"]["value"] >= 0.7  # at least 1 - alpha, up to sampling noise; censoring adds
    assert 0 < events["n"] < overall["n"]
    assert overall["mean_lower_bound"]["value"] > 0

    bundle = load_bundle(tmp_path / "run")
    frame = read_table(gbsg2_csv).head(20)
    predicted = bundle.predict(frame)
    read = bundle.read(frame)
    times = bundle.survival.time_to_survival(bundle.scores(read.inputs), 0.8)  # type: ignore[union-attr]
    factor = np.exp(-np.array([bundle.conformal.thresholds[str(g)] for g in frame["horTh"]]))  # type: ignore[union-attr]
    assert np.allclose(predicted["survival_lower_bound"].to_numpy(float), times * factor)
    assert (predicted["survival_lower_bound"] > 0).all()

    client = TestClient(create_app(Settings(bundles=[tmp_path / "run"], audit_log=None)))
    record = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in frame.iloc[0].items()}
    record = {k: v for k, v in record.items() if k not in {"time", "event", "patient_id"}}
    answer = client.post("/models/gbsg2-surv/predict", json={"records": [record]}).json()["predictions"][0]
    assert answer["survival_lower_bound"] == pytest.approx(predicted["survival_lower_bound"].iloc[0])
    assert "Conformal prediction" in (tmp_path / "run" / "report.html").read_text()

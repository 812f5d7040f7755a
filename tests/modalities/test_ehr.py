"""The EHR pipeline end to end: a DuckDB event store in, a leakage-free sequence model with its report out."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from meddl import Experiment, load_bundle
from meddl.cli import main
from meddl.data.ehr_synth import synthetic_ehr
from meddl.run.privacy import local_ids_path

EXCLUDED = "excluded by the cohort definition (see Cohort flow)"


def ehr_config(outcome: str, model: dict[str, Any], task: str = "binary", **preprocess: Any) -> dict[str, Any]:
    """A tiny experiment on ``events.duckdb`` next to it: two epochs, 8-h bins, 20 bootstrap resamples."""
    return {
        "name": f"ehr-{outcome}",
        "task": task,
        "data": {"kind": "ehr", "path": "events.duckdb", "cohort": {"outcome": outcome, "observation_hours": 48}},
        "preprocess": {"mode": "grid", "bin_hours": 8, **preprocess},
        "model": model,
        "train": {"epochs": 2, "batch_size": 64, "learning_rate": 0.003, "seed": 0, "progress": False},
        "evaluate": {"bootstrap": 20},
    }


MORTALITY = ehr_config("mortality", {"arch": "gru", "hidden": 8})


def cli(args: list[Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run ``meddl`` and return its exit code and stderr."""
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def copy_store(store: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(store, folder / "events.duckdb"))


def visit_ids(store: Path) -> list[str]:
    with duckdb.connect(str(store), read_only=True) as con:
        return sorted(str(row[0]) for row in con.execute("SELECT visit_id FROM visits").fetchall())


def cohort_flow(report: str) -> list[tuple[str, int]]:
    """(step, stays) rows of the report's Cohort flow table."""
    section = report[report.index('<section id="cohort-flow"') :]
    section = section[: section.index("</section>")]
    rows = re.findall(r'<tr><td>(.*?)</td><td class="num">(\d+)</td>', section)
    assert rows, "the Cohort flow table has no row"
    return [(step, int(n)) for step, n in rows]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "events.duckdb"
    synthetic_ehr(path, n_patients=400, seed=0)
    return path


@pytest.fixture(scope="module")
def mortality_run(store: Path) -> Path:
    """In-hospital mortality from the first 48 h (GRU on a grid of 8-h bins), through the Python API."""
    run = store.parent / "mortality"
    Experiment.from_dict(MORTALITY, base_dir=store.parent).run(out=run)
    return run


def test_mortality_run_reports_the_cohort_flow_and_splits_by_patient(mortality_run: Path) -> None:
    metrics = json.loads((mortality_run / "metrics.json").read_text())
    data = metrics["data"]
    flow = cohort_flow((mortality_run / "report.html").read_text())
    assert flow[0][1] == data["n_rows_read"] and flow[-1][1] == data["n_rows_used"]
    assert data["dropped"] == {EXCLUDED: flow[0][1] - flow[-1][1]}
    assert sum(data["splits"].values()) == data["n_rows_used"] and metrics["test"]["auroc"]["value"] is not None
    splits = pd.read_csv(local_ids_path(mortality_run), dtype=str)
    assert len(splits) == data["n_rows_used"] and splits["id"].is_unique
    assert splits.groupby("patient_id")["split"].nunique().max() == 1  # no patient in two splits
    report = (mortality_run / "report.html").read_text()
    assert "What drove the risk" in report and "RETAIN attention" not in report


def plant_after_the_window(store: Path, hours: float = 48.0) -> int:
    """Extreme values of every measured item at the end of each stay's observation window and 12 h later, at
    times inside no stay's window of the same patient; a new diagnosis and medication at those times of each
    patient's last stay. Returns the number of planted measurements."""
    with duckdb.connect(str(store)) as con:
        before = con.execute("SELECT count(*) FROM measurements").fetchone()[0]
        planted = " UNION ALL ".join(
            f"SELECT patient_id, visit_id, admit_time + INTERVAL {int((hours + extra) * 60)} MINUTE AS t FROM visits"
            for extra in (0, 12)
        )
        con.execute(
            f"""
            CREATE TEMP TABLE planted AS SELECT p.* FROM ({planted}) p
            WHERE NOT EXISTS (SELECT 1 FROM visits w WHERE w.patient_id = p.patient_id
                              AND p.t >= w.admit_time AND p.t < w.admit_time + INTERVAL {int(hours)} HOUR)
            """
        )
        con.execute(
            """
            INSERT INTO measurements (patient_id, visit_id, item, category, value, unit, time)
            SELECT p.patient_id, p.visit_id, i.item, i.category, 1e6, i.unit, p.t
            FROM planted p CROSS JOIN (SELECT item, any_value(category) AS category, any_value(unit) AS unit
                                       FROM measurements GROUP BY item) i
            """
        )
        # A code stays known for the rest of the patient's history, so it belongs after the last stay's window.
        con.execute(
            f"""
            CREATE TEMP TABLE planted_codes AS SELECT p.* FROM planted p
            WHERE p.t >= (SELECT max(w.admit_time) + INTERVAL {int(hours)} HOUR FROM visits w
                          WHERE w.patient_id = p.patient_id)
            """
        )
        con.execute("INSERT INTO diagnoses SELECT patient_id, visit_id, 'LEAK1', 'ICD10', t FROM planted_codes")
        con.execute("INSERT INTO medications SELECT patient_id, visit_id, 'LEAK2', 'ATC', t, NULL FROM planted_codes")
        return int(con.execute("SELECT count(*) FROM measurements").fetchone()[0] - before)


def test_nothing_after_the_observation_window_reaches_the_model(
    store: Path, mortality_run: Path, tmp_path: Path
) -> None:
    leaky = copy_store(store, tmp_path / "leaky")
    assert plant_after_the_window(leaky) > 1000
    run = tmp_path / "leaky_run"
    Experiment.from_dict(MORTALITY, base_dir=leaky.parent).run(out=run)
    # Same cohort, split, vocabulary, lab items, scaler, weights and test metrics as without the planted events.
    assert raw_splits(run).equals(raw_splits(mortality_run))
    for name in ("preprocess.json", "model.safetensors"):
        assert (run / name).read_bytes() == (mortality_run / name).read_bytes(), name
    assert (
        json.loads((run / "metrics.json").read_text())["test"]
        == json.loads((mortality_run / "metrics.json").read_text())["test"]
    )
    # At prediction time too: every stay of either store gets the same probability.
    clean, planted = load_bundle(mortality_run).predict(store), load_bundle(mortality_run).predict(leaky)
    assert len(clean) == len(visit_ids(store)) and clean["note"].eq("").sum() > len(clean) / 2
    pd.testing.assert_frame_equal(clean, planted)
    # The control: the same extreme values an hour before the window ends do change the predictions.
    inside = copy_store(store, tmp_path / "inside")
    with duckdb.connect(str(inside)) as con:
        con.execute(
            """
            INSERT INTO measurements (patient_id, visit_id, item, category, value, unit, time)
            SELECT v.patient_id, v.visit_id, i.item, i.category, 1e6, i.unit, v.admit_time + INTERVAL 47 HOUR
            FROM visits v CROSS JOIN (SELECT item, any_value(category) AS category, any_value(unit) AS unit
                                      FROM measurements GROUP BY item) i
            """
        )
    changed = load_bundle(mortality_run).predict(inside)["probability_died in hospital"]
    assert (changed != clean["probability_died in hospital"]).mean() > 0.5


def test_vocabulary_is_built_on_training_patients_only(store: Path, mortality_run: Path, tmp_path: Path) -> None:
    splits = pd.read_csv(local_ids_path(mortality_run), dtype=str)
    planted = copy_store(store, tmp_path / "planted")
    with duckdb.connect(str(planted)) as con:
        for split, code in (("train", "ZZTRAIN"), ("validation", "ZZVALID"), ("test", "ZZTEST")):
            con.register("stays", splits.loc[splits["split"] == split, ["id"]])
            con.execute(
                f"""
                INSERT INTO diagnoses SELECT v.patient_id, v.visit_id, '{code}', 'ICD10', v.admit_time + INTERVAL 1 HOUR
                FROM visits v JOIN stays s ON s.id = v.visit_id
                """
            )
            con.execute(
                f"""
                INSERT INTO measurements (patient_id, visit_id, item, category, value, unit, time)
                SELECT v.patient_id, v.visit_id, '{code.lower()}_lab', 'lab', k, 'U', v.admit_time + INTERVAL (k) HOUR
                FROM visits v JOIN stays s ON s.id = v.visit_id CROSS JOIN range(1, 5) r(k)
                """
            )
            con.unregister("stays")
    run = tmp_path / "run"
    Experiment.from_dict(MORTALITY, base_dir=planted.parent).run(out=run)
    assert raw_splits(run).equals(raw_splits(mortality_run))
    vocabulary = json.loads((run / "preprocess.json").read_text())["vocabulary"]
    # A code and a lab item of every training stay are in the vocabulary (fewer labs than top_labs: all count) …
    assert "dx:ICD10:ZZTRAIN" in vocabulary["codes"] and "zztrain_lab" in vocabulary["labs"]
    # … those only validation or test patients have are not.
    assert not {"dx:ICD10:ZZVALID", "dx:ICD10:ZZTEST"} & set(vocabulary["codes"])
    assert not {"zzvalid_lab", "zztest_lab"} & set(vocabulary["labs"])


def test_predict_on_a_store_writes_one_row_per_stay_with_explanations(
    store: Path, mortality_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = cli(["predict", mortality_run, "--data", store, "--out", tmp_path / "p.csv", "--explain"], capsys)
    assert code == 0, err
    predictions = pd.read_csv(tmp_path / "p.csv", dtype={"id": str}, keep_default_na=False)
    assert sorted(predictions["id"]) == visit_ids(store)
    probability = predictions["probability_died in hospital"].astype(float)
    assert probability.between(0, 1).all()
    scored = predictions["note"] == ""
    assert scored.sum() > len(predictions) / 2
    assert predictions.loc[scored, "explanation"].str.contains(" h before the prediction ").all()


def test_cli_evaluate_on_a_store_matches_the_bundles_predictions(
    store: Path, mortality_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = cli(["evaluate", mortality_run, "--data", store, "--out", tmp_path / "ext", "--bootstrap", 10], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "ext" / "metrics.json").read_text())
    cohort = pd.read_csv(local_ids_path(mortality_run), dtype=str)["id"]
    assert metrics["data"]["n_rows_used"] == len(cohort)
    # Features of the labelled cohort (evaluate) and of the same stays read for prediction are the same.
    predictions = load_bundle(mortality_run).predict(store).set_index("id").loc[cohort]
    with duckdb.connect(str(store), read_only=True) as con:
        died = dict(con.execute("SELECT visit_id, died_in_hospital FROM visits").fetchall())
    truth = np.array([float(died[v]) for v in cohort])
    brier = float(np.mean((predictions["probability_died in hospital"].to_numpy(dtype=float) - truth) ** 2))
    assert metrics["test"]["brier"]["value"] == pytest.approx(brier, rel=1e-5)


def test_what_is_not_a_store_is_one_line(
    mortality_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.duckdb"
    duckdb.connect(str(plain)).close()
    table = tmp_path / "cases.csv"
    table.write_text("visit_id,age\n1,50\n")
    for path in (plain, table, tmp_path / "absent.duckdb"):
        code, err = cli(["predict", mortality_run, "--data", path, "--out", tmp_path / "p.csv"], capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and path.name in lines[0] and "internal error" not in err, err
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(yaml.safe_dump({**MORTALITY, "data": {**MORTALITY["data"], "path": str(table)}}))
    code, err = cli(["train", experiment, "--out", tmp_path / "run", "--quiet"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "cases.csv" in err, err


def test_readmission_with_retain_reports_its_attention(store: Path, tmp_path: Path) -> None:
    config = ehr_config("readmission", {"arch": "retain", "embed_dim": 8, "hidden": 8})
    config["data"]["cohort"].update(horizon_days=30, first_stay_only=False)
    result = Experiment.from_dict(config, base_dir=store.parent).run(out=tmp_path / "run")
    assert result.metrics["test"]["auroc"]["value"] is not None
    splits = pd.read_csv(local_ids_path(tmp_path / "run"), dtype=str)
    assert splits.groupby("patient_id").size().max() > 1  # several stays per patient …
    assert splits.groupby("patient_id")["split"].nunique().max() == 1  # … all in one split
    report = (tmp_path / "run" / "report.html").read_text()
    section = report[report.index('<section id="retain"') :]
    assert "RETAIN attention" in section and section.count("<tr><td>") >= 5
    flow = cohort_flow(report)
    assert flow[-1][1] == result.metrics["data"]["n_rows_used"]


def test_next_visit_diagnoses_multilabel_with_event_transformer(store: Path, tmp_path: Path) -> None:
    config = ehr_config(
        "next_visit_diagnoses", {"arch": "event_transformer"}, task="multilabel", mode="visits", max_visits=5
    )
    config["data"]["cohort"]["label_codes_top"] = 5
    result = Experiment.from_dict(config, base_dir=store.parent).run(out=tmp_path / "run")
    metrics = result.metrics
    assert len(metrics["data"]["classes"]) == 5 and len(metrics["per_label"]) == 5
    assert metrics["test"]["auroc_macro"]["value"] is not None
    new_site = synthetic_ehr(tmp_path / "new_site.duckdb", n_patients=30, seed=5).path
    predictions = load_bundle(tmp_path / "run").predict(new_site, explain_dir=tmp_path / "explained")
    assert [c for c in predictions.columns if c.startswith("probability_")] == [
        f"probability_{name}" for name in metrics["data"]["classes"]
    ]
    assert len(predictions) == len(visit_ids(new_site)) and predictions["explanation"].str.len().gt(0).any()
    state = json.loads((tmp_path / "run" / "preprocess.json").read_text())
    assert state["vocabulary"]["mode"] == "visits" and state["vocabulary"]["labs"] == []
    # Each explained stay names the label it is explained for: its most probable one.
    cases = next(s for s in result.record["sections"] if s["id"] == "ehr-cases")["table"]["rows"]
    assert cases and all(risk.split(" ")[0] in metrics["data"]["classes"] for _, risk, _ in cases)


def test_cli_synthetic_store_trains_long_stay_with_lstm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "events.duckdb"
    code, err = cli(["ehr", "synthetic", "--out", store, "--patients", 300, "--seed", 1], capsys)
    assert code == 0 and "300 patients" in err, err
    config = ehr_config("long_stay", {"arch": "lstm", "hidden": 8, "bidirectional": True})
    config["data"]["cohort"]["horizon_days"] = 5
    experiment = tmp_path / "long_stay.yaml"
    experiment.write_text(yaml.safe_dump(config))
    code, err = cli(["train", experiment, "--out", tmp_path / "run", "--quiet"], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["data"]["classes"] == ["short stay", "long stay"] and metrics["test"]["auroc"]["value"] is not None
    flow = cohort_flow((tmp_path / "run" / "report.html").read_text())
    assert flow[0][1] == metrics["data"]["n_rows_read"] and flow[-1][1] == metrics["data"]["n_rows_used"]


def write_mimic(folder: Path, n_patients: int = 60) -> Path:
    """A tiny MIMIC-IV-style extract: one 3–6-day admission per adult patient, a third of them dying in hospital,
    creatinine and glucose every 12 h (higher creatinine in those who die)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    patients, admissions, diagnoses, labs = [], [], [], []
    for i in range(n_patients):
        subject, hadm = 10000 + i, 20000 + i
        died = i % 3 == 0
        admit = pd.Timestamp("2150-01-01 08:00") + pd.Timedelta(days=7 * i)
        discharge = admit + pd.Timedelta(hours=int(rng.integers(72, 144)))
        patients.append({"subject_id": subject, "gender": "FM"[i % 2], "anchor_age": 40 + i % 40, "anchor_year": 2150})
        admissions.append(
            {
                "subject_id": subject,
                "hadm_id": hadm,
                "admittime": admit,
                "dischtime": discharge,
                "deathtime": discharge if died else None,
                "admission_type": "URGENT",
                "hospital_expire_flag": int(died),
            }
        )
        diagnoses.append({"subject_id": subject, "hadm_id": hadm, "seq_num": 1, "icd_code": "I50.9", "icd_version": 10})
        for k, hours in enumerate(range(1, 72, 12)):
            for itemid, value in ((50912, (2.5 if died else 1.0) + 0.1 * rng.standard_normal()), (50931, 120.0 + k)):
                labs.append(
                    {
                        "labevent_id": len(labs) + 1,
                        "subject_id": subject,
                        "hadm_id": hadm,
                        "itemid": itemid,
                        "charttime": admit + pd.Timedelta(hours=hours),
                        "value": f"{value:.2f}",
                        "valuenum": round(value, 2),
                        "valueuom": "mg/dL",
                    }
                )
    tables = {
        "patients": patients,
        "admissions": admissions,
        "diagnoses_icd": diagnoses,
        "labevents": labs,
        "d_labitems": [
            {"itemid": 50912, "label": "Creatinine", "fluid": "Blood", "category": "Chemistry"},
            {"itemid": 50931, "label": "Glucose", "fluid": "Blood", "category": "Chemistry"},
        ],
    }
    for name, rows in tables.items():
        pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False)
    return folder


def test_cli_mimic_import_then_train_and_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "events.duckdb"
    code, err = cli(["ehr", "import", write_mimic(tmp_path / "mimic"), "--format", "mimic", "--out", store], capsys)
    assert code == 0, err
    experiment = tmp_path / "mortality.yaml"
    experiment.write_text(yaml.safe_dump(MORTALITY))
    code, err = cli(["train", experiment, "--out", tmp_path / "run", "--quiet"], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["data"]["n_rows_used"] == 60 and metrics["data"]["dropped"] == {}
    state = json.loads((tmp_path / "run" / "preprocess.json").read_text())
    assert sorted(state["vocabulary"]["labs"]) == ["Creatinine", "Glucose"]
    predictions = load_bundle(tmp_path / "run").predict(store)
    assert len(predictions) == 60 and (predictions["note"] == "").all()


def raw_splits(run: Path) -> pd.DataFrame:
    """Which stay of which patient went to which split (the keys are drawn afresh by every run)."""
    return pd.read_csv(local_ids_path(run), dtype=str).drop(columns=["patient_key", "sample_key"], errors="ignore")


def test_a_lab_value_far_outside_training_is_noted_at_prediction(
    store: Path, mortality_run: Path, tmp_path: Path
) -> None:
    """A stay whose lab values are a thousand times what training saw (another unit, a device fault) is noted."""
    changed = copy_store(store, tmp_path / "units")
    first = visit_ids(changed)[0]
    with duckdb.connect(str(changed)) as con:
        con.execute("UPDATE measurements SET value = value * 1000 + 1e5 WHERE visit_id = ?", [first])
    predictions = load_bundle(mortality_run).predict(changed)
    note = predictions.loc[predictions["id"] == first, "note"].iloc[0]
    assert ": mean value " in note and "is far outside the training range" in note
    assert not predictions.loc[predictions["id"] != first, "note"].str.contains("far outside").any()

"""Multimodal fusion end to end: config errors before any read, a fused run with its comparison and contributions,
the bundle predicting patients who lack an input, external evaluation, and the fusion network's masking."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from meddl import Experiment, load_bundle
from meddl.cli import main
from meddl.config import load_config
from meddl.data.fusion import fusion_data_section, write_fusion_dataset
from meddl.errors import MedDLError
from meddl.models import build_model


def _experiment(files: dict[str, Path], **model: Any) -> dict[str, Any]:
    data = fusion_data_section(files)
    data["inputs"]["scan"]["preprocess"] = {"size": [32, 32]}
    return {
        "name": "fusion-test",
        "task": "binary",
        "data": data,
        "model": {"fusion": "late", "encoder_params": {"scan": {"channels": [8, 16]}}, **model},
        "train": {"epochs": 3, "batch_size": 32, "seed": 0, "progress": False},
        "evaluate": {"bootstrap": 30, "robustness": False},
    }


@pytest.fixture(scope="module")
def fused(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("fusion")
    files = write_fusion_dataset(folder / "data", 160, seed=1, missing={"scan": 0.3})
    result = Experiment.from_dict(_experiment(files)).run(out=folder / "run")
    return {"folder": folder, "files": files, "result": result}


# -- config mistakes: named before any file is read --------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e["data"]["inputs"].pop("scan") and e["data"]["inputs"].pop("tumour"), "at least two inputs"),
        (lambda e: e["data"]["inputs"]["scan"].update(kind="molecule"), "cannot be an input of a fused model"),
        (lambda e: e["data"]["inputs"]["scan"].update(spatial_dims=4), "inputs.scan.spatial_dims"),
        (lambda e: e["data"]["inputs"]["scan"].update(preprocess={"sise": [32, 32]}), "inputs.scan"),
        (lambda e: e.update(task="multilabel"), "multilabel is not available"),
    ],
)
def test_a_wrong_input_is_a_config_error_naming_it(tmp_path: Path, change: Any, message: str) -> None:
    files = {name: tmp_path / f"{name}.csv" for name in ("outcomes", "clinical", "scans", "expression")}
    raw = _experiment(files)
    change(raw)
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(MedDLError, match=message):
        load_config(tmp_path / "exp.yaml")


def test_an_encoder_that_does_not_fit_its_input_is_named_before_reading(tmp_path: Path) -> None:
    files = {name: tmp_path / f"missing-{name}.csv" for name in ("outcomes", "clinical", "scans", "expression")}
    with pytest.raises(MedDLError, match=r"model.encoders.scan: 'mlp' does not encode image data"):
        Experiment.from_dict(_experiment(files, encoders={"scan": "mlp"})).run(out=tmp_path / "run")
    with pytest.raises(MedDLError, match=r"model.encoders: \['lab'\] are not inputs"):
        Experiment.from_dict(_experiment(files, encoders={"lab": "mlp"})).run(out=tmp_path / "run")


def test_relative_input_paths_are_read_from_the_experiment_files_folder(tmp_path: Path) -> None:
    raw = _experiment({n: Path(f"data/{n}.csv") for n in ("outcomes", "clinical", "scans", "expression")})
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(raw))
    config, _ = load_config(tmp_path / "exp.yaml")
    assert config.data.target.path == tmp_path / "data" / "outcomes.csv" == config.data.path
    assert config.data.inputs["scan"].path == tmp_path / "data" / "scans.csv"


# -- bad data: the file and the patient are named ------------------------------------------------------------------
def test_the_outcome_column_inside_an_input_table_is_never_a_predictor(tmp_path: Path) -> None:
    files = write_fusion_dataset(tmp_path / "data", 80, seed=0)
    outcomes = pd.read_csv(files["outcomes"])[["patient_id", "relapse"]]
    clinical = pd.read_csv(files["clinical"]).merge(outcomes, on="patient_id")
    clinical.to_csv(files["clinical"], index=False)  # the clinical table is also the outcome table
    raw = _experiment({**files, "outcomes": files["clinical"]})
    raw["train"]["epochs"] = 1
    result = Experiment.from_dict(raw).run(out=tmp_path / "run")
    info = json.loads((result.path / "model.json").read_text())
    assert set(info["inputs"]["clinical"]["feature_columns"]) == {"age", "sex", "bmi", "marker"}
    assert any("['relapse'] of clinical.csv are not predictors" in note for note in result.record["data"]["notes"])


def test_two_rows_for_one_patient_in_an_input_name_the_file_and_patient(tmp_path: Path) -> None:
    files = write_fusion_dataset(tmp_path / "data", 40, seed=0)
    clinical = pd.read_csv(files["clinical"])
    pd.concat([clinical, clinical.iloc[[3]]]).to_csv(files["clinical"], index=False)
    with pytest.raises(MedDLError, match=r"inputs.clinical: .*clinical.csv has more than one row for .*P0003"):
        Experiment.from_dict(_experiment(files)).run(out=tmp_path / "run")


def test_an_outcome_table_without_the_column_names_it(tmp_path: Path) -> None:
    files = write_fusion_dataset(tmp_path / "data", 40, seed=0)
    pd.read_csv(files["outcomes"]).rename(columns={"relapse": "status"}).to_csv(files["outcomes"], index=False)
    with pytest.raises(MedDLError, match=r"outcomes.csv: no column 'relapse' \(data.target.column\)"):
        Experiment.from_dict(_experiment(files)).run(out=tmp_path / "run")


# -- the run ---------------------------------------------------------------------------------------------------
def test_the_run_counts_inputs_and_compares_the_fused_model_with_each_input_alone(fused: dict[str, Any]) -> None:
    result = fused["result"]
    metrics = json.loads((result.path / "metrics.json").read_text())
    record = json.loads((result.path / "run.json").read_text())
    scans = len(pd.read_csv(fused["files"]["scans"]))
    assert record["data"]["inputs"]["scan"]["patients"] == scans < 160
    assert record["data"]["inputs"]["clinical"]["patients"] == 160
    assert sum(record["data"]["input_combinations"].values()) == 160
    compared = metrics["comparison_models"]
    assert compared["metric"] == "auroc" and set(compared["models"]) == {"clinical", "scan", "tumour"}
    for name, entry in compared["models"].items():
        low, high = entry["ci"]
        assert low <= entry["value"] <= high, name
        assert entry["value"] == pytest.approx(entry["model"] - entry["baseline"])
    assert compared["models"]["scan"]["test_rows"] < compared["models"]["clinical"]["test_rows"]
    contributions = record["explanations"]["inputs"]
    assert set(contributions) == {"clinical", "scan", "tumour"}
    assert sorted(record["explanations"]["ranking"]) == ["clinical", "scan", "tumour"]
    assert "marker" in {row["feature"] for row in record["explanations"]["clinical"]["integrated_gradients"]}
    titles = [section["title"] for section in record["sections"]]
    for title in (
        "Inputs available per patient",
        "The fused model against each input alone",
        "What each input contributed",
        "Test metrics by the inputs a patient has",
    ):
        assert title in titles
    report = (result.path / "report.html").read_text()
    assert "The fused model against each input alone" in report and "clinical+scan+tumour" in report
    assert any("input scan is missing for" in w for w in record["warnings"])


def test_a_patient_without_a_scan_still_gets_a_prediction(fused: dict[str, Any], tmp_path: Path) -> None:
    files, bundle = fused["files"], load_bundle(fused["result"].path)
    scans = pd.read_csv(files["scans"])
    scans.iloc[:5].to_csv(tmp_path / "scans.csv", index=False)
    (tmp_path / "scans.csv").write_text(
        (tmp_path / "scans.csv").read_text().replace("scans/", f"{files['scans'].parent}/scans/")
    )
    pd.read_csv(files["clinical"]).iloc[:8].to_csv(tmp_path / "clinical.csv", index=False)
    (tmp_path / "cases.yaml").write_text("inputs:\n  clinical: clinical.csv\n  scan: scans.csv\n")
    predictions = bundle.predict(tmp_path / "cases.yaml", explain=True)
    with_scan = set(scans.iloc[:5]["patient_id"])
    assert len(predictions) == len(with_scan | set(pd.read_csv(tmp_path / "clinical.csv")["patient_id"]))
    assert predictions["prediction"].notna().all()
    for _, row in predictions.iterrows():
        assert ("scan" in row["inputs"]) == (row["patient_id"] in with_scan)
        assert ("without scan" in row["note"]) == (row["patient_id"] not in with_scan)
        assert "clinical" in row["contributions"] and ("scan " in row["contributions"]) == (
            row["patient_id"] in with_scan
        )


def test_the_prediction_without_an_input_ignores_its_values(fused: dict[str, Any]) -> None:
    bundle = load_bundle(fused["result"].path)
    cases = bundle.read(fused["files"]["cases"])
    packed = np.asarray(cases.inputs)
    modality = bundle.modality
    without = modality.without(packed, "scan")
    noisy = without.copy()
    start, stop = modality._segments()[modality.names.index("scan")]
    noisy[:, start:stop] = np.random.default_rng(0).normal(size=(len(noisy), stop - start))
    np.testing.assert_allclose(modality.outputs(bundle.model, without), modality.outputs(bundle.model, noisy))


def test_cli_predict_explain_and_evaluate(fused: dict[str, Any], tmp_path: Path) -> None:
    run, files = fused["result"].path, fused["files"]
    assert main(["predict", str(run), "--data", str(files["cases"]), "--out", str(tmp_path / "p.csv")]) in (0, None)
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert len(predictions) == 160 and {"patient_id", "inputs", "probability_yes"} <= set(predictions.columns)
    assert main(["explain", str(run), "--input", str(files["cases"]), "--out", str(tmp_path / "e.csv")]) in (0, None)
    explained = pd.read_csv(tmp_path / "e.csv")
    assert set(explained["input"]) == {"clinical", "scan", "tumour"}
    assert (explained.loc[~explained["present"], "change_when_left_out"] == 0).all()
    assert main(["evaluate", str(run), "--data", str(files["labelled"]), "--out", str(tmp_path / "ext")]) in (0, None)
    shift = pd.read_csv(tmp_path / "ext" / "shift.csv")
    assert shift["column"].str.startswith(("clinical: ", "scan: ", "tumour: ")).all()


def test_a_cases_file_naming_an_unknown_input_is_an_error(fused: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "cases.yaml").write_text("inputs:\n  genome: g.vcf\n")
    with pytest.raises(MedDLError, match=r"inputs \['genome'\] are not inputs of this model"):
        load_bundle(fused["result"].path).predict(tmp_path / "cases.yaml")


# -- the network -----------------------------------------------------------------------------------------------
def _network(fusion: str, **params: Any) -> torch.nn.Module:
    layout = [
        {
            "name": "a",
            "kind": "tabular",
            "arch": "mlp",
            "shape": [3],
            "dtype": "float32",
            "arguments": {"in_features": 3},
        },
        {
            "name": "b",
            "kind": "tabular",
            "arch": "mlp",
            "shape": [2],
            "dtype": "float32",
            "arguments": {"in_features": 2},
        },
    ]
    return build_model("fusion", {"fusion": fusion, **params}, in_features=7, out_features=1, modalities=layout)


@pytest.mark.parametrize("fusion", ["late", "attention", "gated"])
def test_every_fusion_masks_a_missing_input(fusion: str) -> None:
    torch.manual_seed(0)
    network = _network(fusion).eval()
    x = torch.randn(4, 7)
    x[:, 5:] = torch.tensor([1.0, 0.0])  # input b missing
    changed = x.clone()
    changed[:, 3:5] = torch.randn(4, 2) * 10
    torch.testing.assert_close(network(x), network(changed))
    x[:, 5:] = 1.0
    changed[:, 5:] = 1.0
    assert not torch.allclose(network(x), network(changed)), "a present input changes the output"


@pytest.mark.parametrize("fusion", ["late", "attention", "gated"])
def test_in_inference_an_encoder_sees_only_the_rows_that_have_its_input(fusion: str) -> None:
    torch.manual_seed(0)
    network = _network(fusion).eval()
    seen: dict[str, list[int]] = {"a": [], "b": []}
    for name, encoder in network.encoders.items():
        encoder.register_forward_hook(lambda module, args, out, name=name: seen[name].append(len(args[0])))
    x = torch.randn(6, 7)
    x[:, 5:] = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    selected = network(x)
    assert seen == {"a": [6], "b": [2]}
    # the reference: every encoder on every row, as in training (and tracing for export) — here with the network
    # flagged as training but every layer in it in inference, so nothing random runs
    network.modality_dropout, network.training = 0.0, True
    full = network(x)
    assert seen == {"a": [6, 6], "b": [2, 6]}
    torch.testing.assert_close(selected, full)
    x[:, 6] = 0.0  # nobody has input b: its encoder does not run at all
    network.eval()
    network(x)
    assert seen["b"] == [2, 6]


def test_modality_dropout_never_hides_every_input_of_a_row() -> None:
    torch.manual_seed(0)
    network = _network("gated", modality_dropout=0.9).train()
    x = torch.randn(512, 7)
    x[:, 5:] = 1.0
    _, mask = network.embed(x)
    assert mask.any(dim=1).all() and (~mask).any(), "some inputs hidden, never all of a row"


def test_a_single_input_network_uses_only_its_input() -> None:
    network = _network("late", use=["b"]).eval()
    assert set(network.encoders) == {"b"}
    x = torch.randn(3, 7)
    x[:, 5:] = 1.0
    changed = x.clone()
    changed[:, :3] = 5.0
    torch.testing.assert_close(network(x), network(changed))
    with pytest.raises(MedDLError, match="not inputs"):
        _network("late", use=["c"])


# -- the server: one patient per request, a JSON record and a file per input ------------------------------------
@pytest.fixture(scope="module")
def client(fused: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    from fastapi.testclient import TestClient

    from meddl.serve import Settings, create_app

    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    app = create_app(Settings(bundles=[fused["result"].path], audit_log=audit))
    return TestClient(app, raise_server_exceptions=False)


def _patient(files: dict[str, Path], with_scan: bool) -> tuple[dict[str, Any], str]:
    clinical = pd.read_csv(files["clinical"]).set_index("patient_id")
    scans = pd.read_csv(files["scans"]).set_index("patient_id")
    patient = next(p for p in clinical.index if (p in scans.index) == with_scan)
    return {"patient_id": patient, "clinical": clinical.loc[patient].to_dict()}, patient


def test_the_server_predicts_a_patient_from_a_record_and_uploads(fused: dict[str, Any], client: Any) -> None:
    files = fused["files"]
    record, patient = _patient(files, with_scan=True)
    scan = pd.read_csv(files["scans"]).set_index("patient_id").loc[patient, "path"]
    expression = pd.read_csv(files["expression"])
    one = expression[expression["patient_id"] == patient].drop(columns=["patient_id"])
    detail = client.get("/models/fusion-test").json()
    assert detail["request_style"] == "upload_inputs"
    assert set(detail["input_schema"]["inputs"]) == {"clinical", "scan", "tumour"}
    answer = client.post(
        "/models/fusion-test/explain",
        data={"record": json.dumps(record)},
        files={
            "scan": ("lesion.png", (files["scans"].parent / scan).read_bytes(), "image/png"),
            "tumour": ("profile.csv", one.to_csv(index=False).encode(), "text/csv"),
        },
    )
    assert answer.status_code == 200, answer.text
    item = answer.json()["predictions"][0]
    assert item["case_id"] == patient and item["inputs"] == "clinical+scan+tumour"
    assert 0 <= item["probability"] <= 1 and item["label"] in ("yes", "no")
    assert all(name in item["contributions"] for name in ("clinical", "scan", "tumour"))
    offline = load_bundle(fused["result"].path).predict(files["cases"]).set_index("patient_id")
    assert item["probability"] == pytest.approx(offline.loc[patient, "probability_yes"], abs=1e-5)


def test_the_server_predicts_without_a_scan_and_names_bad_fields(fused: dict[str, Any], client: Any) -> None:
    record, patient = _patient(fused["files"], with_scan=False)
    answer = client.post("/models/fusion-test/predict", files={"record": (None, json.dumps(record))})
    assert answer.status_code == 200, answer.text
    item = answer.json()["predictions"][0]
    assert item["inputs"] == "clinical" and "without scan, tumour" in item["note"]
    wrong = client.post("/models/fusion-test/predict", files={"record": (None, json.dumps({**record, "genome": {}}))})
    assert wrong.status_code == 422 and "['genome'] are not inputs" in wrong.json()["detail"]
    broken = client.post("/models/fusion-test/predict", files={"record": (None, "{not json")})
    assert broken.status_code == 422 and "record: not JSON" in broken.json()["detail"]
    empty = client.post("/models/fusion-test/predict", files={"record": (None, json.dumps({"patient_id": patient}))})
    assert empty.status_code == 422 and "at least one input" in empty.json()["detail"]


# -- survival: the same fusion with a Cox head ---------------------------------------------------------------------
def test_a_survival_outcome_is_fused_and_compared_by_harrells_c(tmp_path: Path) -> None:
    files = write_fusion_dataset(tmp_path / "data", 160, seed=2, missing={"scan": 0.2})
    raw = _experiment(files)
    raw["task"] = "survival"
    raw["data"]["target"] = {"path": str(files["outcomes"]), "time": "months", "event": "progressed"}
    result = Experiment.from_dict(raw).run(out=tmp_path / "run")
    metrics = result.metrics
    assert "c_index" in metrics["test"]
    compared = metrics["comparison_models"]
    assert compared["metric"] == "c_index" and set(compared["models"]) == {"clinical", "scan", "tumour"}
    for entry in compared["models"].values():
        assert entry["value"] == pytest.approx(entry["model"] - entry["baseline"])
    record = json.loads((result.path / "run.json").read_text())
    assert "c_index_drop_when_left_out" in record["explanations"]["inputs"]["clinical"]
    assert any("not drawn for survival yet" in w for w in record["warnings"])
    predictions = load_bundle(result.path).predict(files["cases"])
    assert predictions["risk"].notna().all() and len(predictions) == 160


def test_a_survival_target_needs_time_and_event(tmp_path: Path) -> None:
    files = {name: tmp_path / f"{name}.csv" for name in ("outcomes", "clinical", "scans", "expression")}
    raw = _experiment(files)
    raw["task"] = "survival"
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(MedDLError, match="a survival task needs time and event"):
        load_config(tmp_path / "exp.yaml")


def test_an_input_only_one_outcome_has_is_named_as_a_leak(tmp_path: Path) -> None:
    files = write_fusion_dataset(tmp_path / "data", 60, seed=0)
    outcomes = pd.read_csv(files["outcomes"]).set_index("patient_id")
    scans = pd.read_csv(files["scans"])
    scans[scans["patient_id"].map(outcomes["relapse"]) == "yes"].to_csv(files["scans"], index=False)
    with pytest.raises(MedDLError, match=r"inputs.scan: every patient in scans.csv has the outcome 'yes'.*give"):
        Experiment.from_dict(_experiment(files)).run(out=tmp_path / "run")

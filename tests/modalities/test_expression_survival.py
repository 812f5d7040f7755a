"""Gene expression with ``task: survival`` on GSE7390 (198 breast cancers): every sample kept, censored or not."""

from __future__ import annotations

from pathlib import Path

import pytest

from meddl import Experiment, evaluate_external, load_bundle
from meddl.config import parse_config
from meddl.data.expression import gse7390_cohort
from meddl.errors import MedDLError
from meddl.io import write_table


@pytest.fixture(scope="module")
def gse7390(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gse7390")
    matrix, labels = gse7390_cohort()
    write_table(matrix.reset_index(names="sample_id"), folder / "expression.csv")
    write_table(labels.drop(columns=["metastasis_5y"]), folder / "labels.csv")
    return folder


def _experiment(folder: Path) -> dict:
    return {
        "name": "gse7390-surv",
        "task": "survival",
        "data": {
            "kind": "expression",
            "path": str(folder / "expression.csv"),
            "labels": "labels.csv",
            "survival_time": "time_days",
            "survival_event": "distant_metastasis",
        },
        "model": {"arch": "deepsurv", "hidden": [32]},
        "train": {"epochs": 20, "seed": 0, "progress": False},
        "evaluate": {"bootstrap": 30, "horizons": [1826.0]},
    }


def test_expression_survival_keeps_every_sample_and_predicts_curves(gse7390: Path, tmp_path: Path) -> None:
    result = Experiment.from_dict(_experiment(gse7390)).run(out=tmp_path / "run")
    metrics = result.metrics
    assert metrics["data"]["n_rows_used"] == 198 and not metrics["data"]["dropped"]
    assert 0.4 < metrics["test"]["c_index"]["value"] <= 1.0
    assert set(metrics["baselines"]) == {"cox", "random_survival_forest"}
    predictions = load_bundle(tmp_path / "run").predict(gse7390 / "expression.csv")
    assert len(predictions) == 198 and predictions["surv_1826"].between(0, 1).all()
    external = evaluate_external(tmp_path / "run", gse7390 / "expression.csv", tmp_path / "ext", n_bootstrap=10)
    assert "c_index" in external.metrics["test"]


def test_a_horizon_label_and_a_survival_task_do_not_mix(gse7390: Path) -> None:
    experiment = _experiment(gse7390)
    experiment["data"]["horizon"] = 1826
    with pytest.raises(MedDLError, match=r"data\.horizon: a survival task keeps the censored follow-up"):
        parse_config(experiment)
    del experiment["data"]["horizon"], experiment["data"]["survival_event"]
    with pytest.raises(MedDLError, match=r"data\.survival_time: required for task survival"):
        parse_config(experiment)


def test_a_negative_follow_up_names_the_sample(gse7390: Path, tmp_path: Path) -> None:
    from meddl.io import read_table

    labels = read_table(gse7390 / "labels.csv")
    labels.loc[labels.index[4], "time_days"] = -1
    write_table(labels, tmp_path / "labels.csv")
    experiment = _experiment(gse7390)
    experiment["data"]["labels"] = str(tmp_path / "labels.csv")
    with pytest.raises(MedDLError, match=r"GSE7390-005 has -1"):
        Experiment.from_dict(experiment).run(out=tmp_path / "bad")


def test_the_server_scores_an_uploaded_matrix(gse7390: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from meddl.serve import Settings, create_app

    experiment = _experiment(gse7390)
    experiment["train"]["epochs"] = 2
    experiment["evaluate"]["baselines"] = []
    Experiment.from_dict(experiment).run(out=tmp_path / "run")
    client = TestClient(create_app(Settings(bundles=[tmp_path / "run"], audit_log=None)))
    rows = (gse7390 / "expression.csv").read_text().splitlines()[:4]
    answer = client.post(
        "/models/gse7390-surv/predict", files={"file": ("three.csv", "\n".join(rows).encode(), "text/csv")}
    )
    assert answer.status_code == 200, answer.text
    items = answer.json()["predictions"]
    assert len(items) == 3 and all(0 <= item["survival"]["1826"] <= 1 for item in items)
    assert all(item["risk"] is not None and item["label"] is None for item in items)


def test_gene_names_label_the_probes_in_every_explanation(gse7390: Path, tmp_path: Path) -> None:
    import pandas as pd

    from meddl.io import read_table

    probes = [c for c in read_table(gse7390 / "expression.csv").columns if c != "sample_id"]
    symbols = pd.DataFrame({"probe": probes, "symbol": [f"GENE{i}" for i in range(len(probes))]})
    write_table(symbols, tmp_path / "symbols.csv")
    experiment = _experiment(gse7390)
    experiment["data"]["gene_names"] = str(tmp_path / "symbols.csv")
    experiment["train"]["epochs"] = 2
    experiment["evaluate"]["baselines"] = []
    Experiment.from_dict(experiment).run(out=tmp_path / "run")
    assert "(GENE" in (tmp_path / "run" / "report.html").read_text()
    explained = load_bundle(tmp_path / "run").predict(gse7390 / "expression.csv", explain=True)
    assert explained["explanation"].str.contains(r"_at \(GENE\d+\)").all()

"""Serving sequence, expression and signal bundles: one uploaded file of cases per request, every case scored,
explanations as base64 PNG (logos, traces) or text (genes), and 4xx (never 500) naming the upload for bad files."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from meddl import Experiment, load_bundle
from meddl.data.ecg import write_ecg_dataset
from meddl.data.expression import synthetic_expression
from meddl.data.motifs import planted_motif_dataset, write_planted_dataset
from meddl.modalities import get_modality
from meddl.serve import Settings, create_app

FAST = {"batch_size": 32, "seed": 0, "progress": False}


def _train(config: dict[str, Any], base_dir: Path, out: Path) -> Path:
    Experiment.from_dict({**config, "evaluate": {"bootstrap": 10, "baselines": []}}, base_dir=base_dir).run(out=out)
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One server over three small bundles: motifs (sequence), response (expression), rhythm (signal)."""
    folder = tmp_path_factory.mktemp("uploads")
    motifs = planted_motif_dataset(120, length=60, motifs=("MA0139.2",), max_sites=1, seed=0)
    fasta = write_planted_dataset(folder / "motifs", motifs, formats=("fasta",))["fasta"]
    sequence_run = _train(
        {
            "name": "motifs",
            "task": "binary",
            "data": {"kind": "sequence", "path": "motifs/sequences.fa", "positive_label": 1},
            "preprocess": {"length": 60},
            "model": {"arch": "sequence_cnn", "filters": [8], "kernel_sizes": [11], "hidden": 8},
            "train": {"epochs": 1, **FAST},
        },
        folder,
        folder / "motifs_run",
    )
    counts, labels, _ = synthetic_expression(80, 30, 6, seed=0)
    counts.reset_index().to_csv(folder / "counts.csv", index=False)
    labels.to_csv(folder / "labels.csv", index=False)
    expression_run = _train(
        {
            "name": "response",
            "task": "binary",
            "data": {
                "kind": "expression",
                "path": "counts.csv",
                "labels": "labels.csv",
                "target": "response",
                "positive_label": "yes",
            },
            "preprocess": {"n_genes": 20},
            "model": {"arch": "mlp", "hidden": [8]},
            "train": {"epochs": 2, **FAST},
        },
        folder,
        folder / "response_run",
    )
    manifest = write_ecg_dataset(folder / "ecg", 40, task="rhythm", fmt="npy", fs=100, duration=4, seed=0)
    signal_run = _train(
        {
            "name": "rhythm",
            "task": "binary",
            "data": {"kind": "signal", "path": "ecg/manifest.csv", "positive_label": "irregular", "sampling_rate": 100},
            "preprocess": {"sampling_rate": 50, "length_seconds": 4, "bandpass": [0.5, 20.0]},
            "model": {"arch": "cnn1d", "channels": [4, 8], "kernel_size": 5},
            "train": {"epochs": 1, **FAST},
        },
        folder,
        folder / "rhythm_run",
    )
    settings = Settings(bundles=[sequence_run, expression_run, signal_run], audit_log=folder / "audit.jsonl")
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    return {
        "client": client,
        "folder": folder,
        "runs": {"motifs": sequence_run, "response": expression_run, "rhythm": signal_run},
        "fasta": fasta,
        "motifs": motifs,
        "counts": counts,
        "records": sorted((manifest.parent / "records").glob("*.npy")),
    }


def upload(client: TestClient, model: str, action: str, name: str, content: bytes) -> Any:
    return client.post(f"/models/{model}/{action}", files={"file": (name, content, "application/octet-stream")})


def _sequence_file(served: dict[str, Any], n: int = 6) -> bytes:
    motifs = served["motifs"]
    return "".join(f">case{i}\n{motifs.sequences[i]}\n" for i in range(n)).encode()


def _expression_file(served: dict[str, Any], n: int = 5) -> bytes:
    counts: pd.DataFrame = served["counts"]
    table = counts.iloc[:n, ::-1].reset_index()  # genes in another order than in training
    return table.to_csv(index=False).encode()


def test_model_detail_shows_the_upload_schema(served: dict[str, Any]) -> None:
    client = served["client"]
    for name, kind in (("motifs", "sequence"), ("response", "expression"), ("rhythm", "signal")):
        detail = client.get(f"/models/{name}").json()
        assert detail["kind"] == kind
        schema = detail["input_schema"]
        assert schema["upload"].startswith("multipart/form-data")
        assert schema["formats"] == list(get_modality(kind).upload_suffixes)
        paths = client.get("/openapi.json").json()["paths"]
        assert "multipart/form-data" in paths[f"/models/{name}/predict"]["post"]["requestBody"]["content"]


def test_sequence_upload_scores_every_record_as_the_bundle_does(served: dict[str, Any], tmp_path: Path) -> None:
    client = served["client"]
    content = _sequence_file(served)
    response = upload(client, "motifs", "predict", "cases.fa", content)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    (tmp_path / "cases.fa").write_bytes(content)
    expected = load_bundle(served["runs"]["motifs"]).predict(tmp_path / "cases.fa")
    assert [p["case_id"] for p in predictions] == [f"case{i}" for i in range(6)]
    np.testing.assert_allclose([p["probability"] for p in predictions], expected["probability_1"], atol=1e-6)
    assert [p["label"] for p in predictions] == expected["prediction"].tolist()
    assert all(set(p["probabilities"]) == {"0", "1"} for p in predictions)
    audit = [json.loads(line) for line in (served["folder"] / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["request_id"] == response.json()["request_id"] and len(audit[-1]["predictions"]) == 6


def test_sequence_explain_returns_a_logo_per_record(served: dict[str, Any]) -> None:
    response = upload(served["client"], "motifs", "explain", "cases.fasta", _sequence_file(served, 3))
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 3
    for item in predictions:
        assert base64.b64decode(item["explanation_png"]).startswith(b"\x89PNG")


def test_expression_upload_matches_genes_by_name_and_explains_with_genes(served: dict[str, Any]) -> None:
    client = served["client"]
    counts: pd.DataFrame = served["counts"]
    response = upload(client, "response", "predict", "new.csv", _expression_file(served))
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["case_id"] for p in predictions] == counts.index[:5].tolist()
    expected = load_bundle(served["runs"]["response"]).predict(served["folder"] / "counts.csv").head(5)
    np.testing.assert_allclose([p["probability"] for p in predictions], expected["probability_yes"], atol=1e-6)

    response = upload(client, "response", "explain", "new.csv", _expression_file(served))
    assert response.status_code == 200, response.text
    for item in response.json()["predictions"]:
        assert "explanation_png" not in item
        assert item["explanation"].count("GENE") == 5


def test_signal_upload_is_scored_and_explained_with_a_trace(served: dict[str, Any]) -> None:
    client = served["client"]
    record: Path = served["records"][0]
    response = upload(client, "rhythm", "predict", record.name, record.read_bytes())
    assert response.status_code == 200, response.text
    (item,) = response.json()["predictions"]
    assert item["case_id"] == record.name and item["note"] == ""
    expected = load_bundle(served["runs"]["rhythm"]).predict(record)
    assert item["probability"] == pytest.approx(float(expected["probability_irregular"].iloc[0]), abs=1e-6)
    assert item["label"] == expected["prediction"].iloc[0]

    response = upload(client, "rhythm", "explain", record.name, record.read_bytes())
    assert response.status_code == 200, response.text
    (item,) = response.json()["predictions"]
    assert base64.b64decode(item["explanation_png"]).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("model", "filename"), [("motifs", "cases.txt"), ("response", "matrix.xlsx"), ("rhythm", "trace.wav")]
)
def test_wrong_suffix_is_415(served: dict[str, Any], model: str, filename: str) -> None:
    response = upload(served["client"], model, "predict", filename, b"anything")
    assert response.status_code == 415
    assert filename in response.json()["detail"]


def _unreadable(served: dict[str, Any]) -> dict[str, tuple[str, bytes, str]]:
    """A file per model that has the right suffix but content that cannot be used, and a word of the reason."""
    counts: pd.DataFrame = served["counts"]
    text = counts.head(3).reset_index().astype({"GENE0004": object})
    text.loc[1, "GENE0004"] = "high"
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((2, 3, 4, 5)))  # a 4-D array is no signal
    return {
        "motifs": ("bad.fa", b">ok\nACGTACGTAC\n>broken\nACGTXACGT\n", "'broken'"),
        "response": ("bad.csv", text.to_csv(index=False).encode(), "'GENE0004'"),
        "rhythm": ("bad.npy", buffer.getvalue(), "bad.npy"),
    }


@pytest.mark.parametrize("model", ["motifs", "response", "rhythm"])
@pytest.mark.parametrize("action", ["predict", "explain"])
def test_unreadable_upload_is_422_naming_the_upload(served: dict[str, Any], model: str, action: str) -> None:
    filename, content, reason = _unreadable(served)[model]
    response = upload(served["client"], model, action, filename, content)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"{filename}: cannot be used") and reason in detail
    assert "/tmp" not in detail and "upload." not in detail  # the server's temporary path is not shown


def test_garbage_bytes_are_422_not_500(served: dict[str, Any]) -> None:
    client = served["client"]
    for model, filename in (("motifs", "x.fa.gz"), ("response", "x.parquet"), ("rhythm", "x.dcm")):
        response = upload(client, model, "predict", filename, b"\x00\x01 not a real file \xff")
        assert response.status_code == 422, (model, response.text)
        assert response.json()["detail"].startswith(f"{filename}: cannot be used")

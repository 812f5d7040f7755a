"""Serving an image bundle: one uploaded file per request, heat maps as base64 PNG, 4xx for bad uploads."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from meddl import Experiment, load_bundle
from meddl.data.phantoms import write_phantom_dataset
from meddl.serve import Settings, create_app


@pytest.fixture(scope="module")
def image_server(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, Path, Path]:
    folder = tmp_path_factory.mktemp("image_serve")
    manifest = write_phantom_dataset(folder / "data", 40, size=32, fmt="dicom", seed=4)
    config = {
        "name": "scans",
        "task": "binary",
        "data": {"kind": "image", "path": str(manifest), "positive_label": "lesion"},
        "preprocess": {"size": [32, 32]},
        "model": {"arch": "small_cnn", "channels": [8, 16]},
        "train": {"epochs": 1, "batch_size": 8, "progress": False},
        "evaluate": {"bootstrap": 10},
    }
    Experiment.from_dict(config).run(out=folder / "run")
    audit = folder / "audit.jsonl"
    client = TestClient(create_app(Settings(bundles=[folder / "run"], audit_log=audit)), raise_server_exceptions=False)
    return client, folder / "run", manifest.parent / "images"


def test_upload_predict_matches_the_bundle_and_is_audited(image_server: tuple[TestClient, Path, Path]) -> None:
    client, run, images = image_server
    scan = sorted(images.glob("*.dcm"))[0]
    response = client.post("/models/scans/predict", files={"file": (scan.name, scan.read_bytes(), "application/dicom")})
    assert response.status_code == 200, response.text
    prediction = response.json()["predictions"][0]
    expected = load_bundle(run).predict([scan])
    assert prediction["probability"] == pytest.approx(float(expected["probability_lesion"].iloc[0]), abs=1e-6)
    assert prediction["label"] == expected["prediction"].iloc[0]
    detail = client.get("/models/scans").json()
    assert detail["kind"] == "image" and detail["input_schema"]["spatial_dims"] == 2
    audit = [json.loads(line) for line in (run.parent / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["request_id"] == response.json()["request_id"]


def test_explain_returns_a_heat_map_png(image_server: tuple[TestClient, Path, Path]) -> None:
    client, _, images = image_server
    scan = sorted(images.glob("*.dcm"))[1]
    response = client.post("/models/scans/explain", files={"file": (scan.name, scan.read_bytes(), "application/dicom")})
    assert response.status_code == 200
    png = base64.b64decode(response.json()["predictions"][0]["heatmap_png"])
    assert png.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("files", "kwargs", "status", "words"),
    [
        ({"file": ("scan.dcm", b"not a dicom", "application/dicom")}, {}, 422, "scan.dcm: cannot be used"),
        ({"file": ("notes.txt", b"hello", "text/plain")}, {}, 415, "expected one of"),
        (None, {"json": {"records": []}}, 422, "file"),
        (None, {"content": b"x", "headers": {"content-type": "text/plain"}}, 415, "multipart"),
    ],
)
def test_bad_uploads_are_4xx_never_500(
    image_server: tuple[TestClient, Path, Path], files: dict | None, kwargs: dict, status: int, words: str
) -> None:
    client, _, _ = image_server
    response = client.post("/models/scans/predict", files=files, **kwargs)
    assert response.status_code == status, response.text
    assert words in response.text


def test_oversized_upload_is_413(image_server: tuple[TestClient, Path, Path]) -> None:
    _, run, _ = image_server
    client = TestClient(create_app(Settings(bundles=[run], audit_log=None, max_body_bytes=1000)))
    response = client.post("/models/scans/predict", files={"file": ("big.dcm", b"0" * 5000, "application/dicom")})
    assert response.status_code == 413

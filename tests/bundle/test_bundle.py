"""One Bundle for every kind, and the bugs the copies it replaced had drifted into (each test failed on the
per-kind bundles): a threshold of 0.0 read as 0.5, ``explain.heatmap: occlusion`` ignored after training, image
bundles that ONNX export refused, ``.dicom`` uploads refused by the server, ``model.json`` without ``kind``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from meddl import Experiment, load_bundle
from meddl.evaluate import decision_threshold, predicted_labels
from meddl.explain.images import grad_cam, occlusion_map
from meddl.export import export_onnx
from meddl.modalities import get_modality
from meddl.serve import Settings, create_app


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("bundle-image")
    example = get_modality("image").example(folder / "data")
    experiment = dict(example.experiment)
    experiment["explain"] = {"heatmap": "occlusion", "occlusion_window": 5, "occlusion_stride": 3}
    Experiment.from_dict(experiment, base_dir=folder / "data").run(out=folder / "run")
    return {"run": folder / "run", "example": example}


@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("bundle-table")
    example = get_modality("tabular").example(folder / "data")
    Experiment.from_dict(example.experiment, base_dir=folder / "data").run(out=folder / "run")
    return {"run": folder / "run", "example": example}


def test_a_threshold_of_zero_is_a_threshold_not_a_missing_one() -> None:
    scores = np.array([0.0, 0.1, 0.7])
    assert decision_threshold(0.0) == 0.0 and decision_threshold(None) == 0.5
    assert predicted_labels("binary", scores, ["no", "yes"], 0.0) == ["yes", "yes", "yes"]
    assert predicted_labels("binary", scores, ["no", "yes"], None) == ["no", "no", "yes"]
    assert predicted_labels("multilabel", np.array([[0.6, 0.4]]), ["a", "b"], 0.9) == ["a"]


def test_bundle_and_server_label_at_a_chosen_threshold_of_zero(table_run: dict[str, Any]) -> None:
    bundle = load_bundle(table_run["run"])
    bundle.info["threshold"] = 0.0  # as if validation had chosen 0.0
    predictions = bundle.predict(table_run["example"].predict)
    scored = predictions["note"] == ""
    assert (predictions.loc[scored, "prediction"] == bundle.classes[1]).all()


def test_model_json_names_the_kind_for_tables_too(table_run: dict[str, Any]) -> None:
    info = json.loads((table_run["run"] / "model.json").read_text())
    assert info["kind"] == "tabular" and info["data_arguments"]["in_features"] > 0


def test_predict_and_explain_draw_the_heat_map_method_the_experiment_chose(image_run: dict[str, Any]) -> None:
    bundle = load_bundle(image_run["run"])
    image = bundle.modality.tensor(image_run["example"].explain)
    score = np.atleast_1d(bundle.scores([image])[0])
    _, heat = bundle.modality.heatmap(bundle.model, image, score)
    x = bundle.config.explain
    occlusion = occlusion_map(bundle.model, image[None], 0, window=x.occlusion_window, stride=x.occlusion_stride)[0]
    np.testing.assert_allclose(heat, occlusion, atol=1e-6)
    assert not np.allclose(heat, grad_cam(bundle.model, image[None], 0)[0], atol=1e-3)


def test_image_bundle_exports_to_onnx_checked_against_pytorch(image_run: dict[str, Any], tmp_path: Path) -> None:
    written = export_onnx(image_run["run"], tmp_path / "scan.onnx")
    sidecar = json.loads(Path(str(written) + ".json").read_text())
    assert sidecar["input"]["shape"] == ["batch", 1, 32, 32]
    import onnxruntime

    session = onnxruntime.InferenceSession(str(written), providers=["CPUExecutionProvider"])
    bundle = load_bundle(image_run["run"])
    image = bundle.modality.tensor(image_run["example"].explain)[None].numpy()
    with torch.no_grad():
        expected = bundle.model(torch.from_numpy(image)).numpy()
    np.testing.assert_allclose(session.run(None, {"features": image})[0], expected, atol=1e-5)


def test_server_accepts_a_dicom_file_named_dot_dicom(image_run: dict[str, Any], tmp_path: Path) -> None:
    client = TestClient(create_app(Settings(bundles=[image_run["run"]], audit_log=None)), raise_server_exceptions=False)
    scan = Path(image_run["example"].explain)
    name = load_bundle(image_run["run"]).name
    response = client.post(
        f"/models/{name}/predict", files={"file": ("scan.dicom", scan.read_bytes(), "application/dicom")}
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["label"] in {"lesion", "normal"}

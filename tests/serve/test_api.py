"""The REST API over a bundle: schemas from the bundle, 4xx (never 500) for bad input, batch requests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from meddl.bundle import load_bundle
from meddl.serve import Settings, create_app


@pytest.fixture
def client(served_bundle: Path, tmp_path: Path) -> TestClient:
    app = create_app(Settings(bundles=[served_bundle], audit_log=tmp_path / "audit.jsonl"))
    return TestClient(app, raise_server_exceptions=False)


def test_health_and_model_listing(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "models": ["clinic"]}
    listing = client.get("/models").json()
    assert [m["name"] for m in listing] == ["clinic"]
    assert listing[0]["task"] == "binary" and listing[0]["classes"] == ["no", "yes"]


def test_model_detail_has_schema_threshold_metrics_and_card(client: TestClient, served_bundle: Path) -> None:
    detail = client.get("/models/clinic").json()
    schema = {f["name"]: f for f in detail["input_schema"]}
    assert schema["glucose"]["type"] == "numeric" and schema["glucose"]["unit"] == "mg/dL"
    assert set(schema["smoker"]["allowed"]) == {"current", "former", "never"}
    assert detail["operating_point"]["threshold"] == load_bundle(served_bundle).threshold
    assert set(detail["operating_point"]["sensitivity"]) == {"value", "ci"}
    assert "auroc" in detail["metrics"] and detail["model_card"].startswith("# Model card")
    assert client.get("/models/clinic/card").text.startswith("# Model card")
    assert "<html" in client.get("/models/clinic/report").text.lower()
    paths = client.get("/openapi.json").json()["paths"]
    body = paths["/models/clinic/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("ClinicRequest")


def test_batch_prediction_matches_the_bundle(client: TestClient, served_bundle: Path, valid_record: dict) -> None:
    records = [valid_record, {**valid_record, "glucose": None, "case_id": "B-2"}, {**valid_record, "age": 30}]
    response = client.post("/models/clinic/predict", json={"records": records})
    assert response.status_code == 200, response.text
    body = response.json()
    predictions = body["predictions"]
    assert len(predictions) == 3 and predictions[1]["case_id"] == "B-2"
    assert predictions[1]["note"] == "imputed (not measured): glucose"
    bundle = load_bundle(served_bundle)
    frame = pd.DataFrame([{k: v for k, v in r.items() if k != "case_id"} for r in records])
    expected = bundle.predict(frame)
    got = np.array([p["probability"] for p in predictions])
    np.testing.assert_allclose(got, expected["probability_yes"].to_numpy(), atol=1e-6)
    assert [p["label"] for p in predictions] == expected["prediction"].tolist()
    assert body["bundle_hash"] == bundle.bundle_hash
    assert response.headers["x-request-id"] == body["request_id"]


def test_explain_returns_top_contributions(client: TestClient, valid_record: dict) -> None:
    response = client.post("/models/clinic/explain", json={"records": [valid_record]})
    contributions = response.json()["predictions"][0]["contributions"]
    assert 1 <= len(contributions) <= 5
    magnitudes = [abs(c["contribution"]) for c in contributions]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert {c["feature"] for c in contributions} <= set(valid_record)


@pytest.mark.parametrize(
    ("change", "status", "field", "words"),
    [
        ({"glucose": "high"}, 422, "records[0].glucose", "valid number"),
        ({"smoker": "vaper"}, 422, "records[0].smoker", "not seen in training"),
        ({"age": "NaN"}, 422, "records[0].age", "finite number"),
        ({"creatinine": 1.2}, 422, "records[0].creatinine", "Extra inputs are not permitted"),
        ({"age": None, "drop": "age"}, 422, "records[0].age", "Field required"),
    ],
)
def test_bad_records_get_422_naming_the_field(
    client: TestClient, valid_record: dict, change: dict, status: int, field: str, words: str
) -> None:
    record = {**valid_record, **change}
    if "drop" in change:
        record.pop(record.pop("drop"))
    response = client.post("/models/clinic/predict", json={"records": [record]})
    assert response.status_code == status, response.text
    assert field in response.json()["message"] and words in response.json()["message"]


def test_nan_literal_is_rejected(client: TestClient, valid_record: dict) -> None:
    import json

    body = json.dumps({"records": [{**valid_record, "age": float("nan")}]})  # Python writes the NaN literal
    assert "NaN" in body
    response = client.post("/models/clinic/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "records[0].age" in response.json()["message"]


def test_other_bad_requests_are_4xx_never_500(client: TestClient, valid_record: dict) -> None:
    cases = [
        (
            client.post("/models/clinic/predict", content=b"{not json", headers={"content-type": "application/json"}),
            422,
        ),
        (client.post("/models/clinic/predict", content=b"age=3", headers={"content-type": "text/plain"}), 415),
        (client.post("/models/clinic/predict", json={"records": []}), 422),
        (client.post("/models/clinic/predict", json={"cases": [valid_record]}), 422),
        (client.post("/models/clinic/predict", json=[valid_record]), 422),
        (client.post("/models/other/predict", json={"records": [valid_record]}), 404),
        (client.get("/models/other"), 404),
        (client.post("/models/clinic/predict", json={"records": [valid_record] * 1001}), 413),
    ]
    for response, status in cases:
        assert response.status_code == status, (status, response.text)


def test_oversized_body_is_413(served_bundle: Path, tmp_path: Path, valid_record: dict) -> None:
    app = create_app(Settings(bundles=[served_bundle], audit_log=None, max_body_bytes=2_000))
    client = TestClient(app)
    response = client.post("/models/clinic/predict", json={"records": [valid_record] * 40})
    assert response.status_code == 413
    assert "exceeds the limit" in response.json()["detail"]


def test_two_bundles_with_one_name_are_refused(served_bundle: Path) -> None:
    from meddl.errors import MedDLError

    with pytest.raises(MedDLError, match="already served"):
        create_app(Settings(bundles=[served_bundle, served_bundle], audit_log=None))


def test_predict_with_nulls_matches_the_bundle_and_notes_the_imputed_fields(
    client: TestClient, served_bundle: Path, valid_record: dict
) -> None:
    """The API encodes records without a DataFrame: its answers must be the bundle's DataFrame answers."""
    records = [valid_record, {**valid_record, "bmi": None, "smoker": None}, {**valid_record, "age": 18}]
    answer = client.post("/models/clinic/predict", json={"records": records})
    assert answer.status_code == 200, answer.text
    items = answer.json()["predictions"]
    bundle = load_bundle(served_bundle)
    expected = bundle.scores(pd.DataFrame(records))
    np.testing.assert_allclose([p["probability"] for p in items], expected, rtol=1e-6)
    assert items[1]["note"] == "imputed (not measured): bmi, smoker" and items[0]["note"] == ""
    explained = client.post("/models/clinic/explain", json={"records": records}).json()["predictions"]
    reference = bundle.contributions(pd.DataFrame(records))
    for item, contributions in zip(explained, reference, strict=True):
        assert item["contributions"] == contributions


def test_concurrent_image_explains_all_succeed(tmp_path: Path) -> None:
    """Grad-CAM hooks the model while it runs; concurrent requests once broke each other's graphs (HTTP 500)."""
    from concurrent.futures import ThreadPoolExecutor

    from meddl import Experiment
    from meddl.data.phantoms import write_phantom_dataset

    manifest = write_phantom_dataset(tmp_path / "data", 24, size=64, fmt="png", seed=4)
    config = {
        "name": "scans",
        "task": "binary",
        "data": {"kind": "image", "path": str(manifest), "positive_label": "lesion"},
        "preprocess": {"size": [64, 64]},
        "model": {"arch": "small_cnn", "pools": 1},
        "train": {"epochs": 1, "batch_size": 8, "progress": False},
        "evaluate": {"bootstrap": 10},
    }
    Experiment.from_dict(config).run(out=tmp_path / "run")
    client = TestClient(create_app(Settings(bundles=[tmp_path / "run"], audit_log=None)), raise_server_exceptions=False)
    image = next((tmp_path / "data" / "images").glob("*.png"))
    data = image.read_bytes()

    def explain(_: int) -> int:
        return client.post("/models/scans/explain", files={"file": (image.name, data)}).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(explain, range(64)))
    assert statuses == [200] * 64

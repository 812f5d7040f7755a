"""Bad requests that used to be answered as if fine (or with a message that named nothing): each one now gets a 4xx
naming the field, the body or the bundle file at fault."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from meddl.bundle import load_bundle
from meddl.errors import MedDLError
from meddl.preprocess import TabularPreprocessor
from meddl.serve import Settings, create_app


@pytest.fixture
def client(served_bundle: Path) -> TestClient:
    return TestClient(create_app(Settings(bundles=[served_bundle], audit_log=None)), raise_server_exceptions=False)


@pytest.mark.parametrize("value", [True, False])
def test_boolean_for_a_number_is_422_not_one(client: TestClient, valid_record: dict, value: bool) -> None:
    """``age: true`` was read as 1.0 and scored."""
    response = client.post("/models/clinic/predict", json={"records": [{**valid_record, "age": value}]})
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert message.startswith("records[0].age:") and "boolean" in message, message


def test_a_number_sent_as_text_is_still_read(client: TestClient, valid_record: dict) -> None:
    """Only booleans are refused: a numeric string stays accepted, and scores as the number."""
    as_number = client.post("/models/clinic/predict", json={"records": [valid_record]}).json()
    as_text = client.post("/models/clinic/predict", json={"records": [{**valid_record, "age": "61"}]})
    assert as_text.status_code == 200, as_text.text
    assert as_text.json()["predictions"][0]["probability"] == as_number["predictions"][0]["probability"]


@pytest.mark.parametrize("age", [1e300, -1e39])
def test_number_beyond_float32_is_422_naming_the_field(client: TestClient, valid_record: dict, age: float) -> None:
    """``age: 1e300`` overflowed in the float32 cast and was answered 200 "not scored: missing values"."""
    response = client.post("/models/clinic/predict", json={"records": [valid_record, {**valid_record, "age": age}]})
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert message.startswith("records[1].age:") and "float32" in message, message


def test_number_beyond_float32_is_named_on_the_cli_path(served_bundle: Path, valid_record: dict) -> None:
    """The DataFrame path (``meddl predict``) and the record path name the column and the row, never 'missing'."""
    bundle = load_bundle(served_bundle)
    frame = pd.DataFrame([valid_record, valid_record, {**valid_record, "age": 1e300}], index=[10, 11, 12])
    with pytest.raises(MedDLError, match=r"column 'age' has 1 value\(s\) beyond ±3\.4e38 .*1e\+300 \(row 12\)"):
        bundle.modality.fitted.transform(frame)
    with pytest.raises(MedDLError, match=r"column 'age' .*float32.*\(row 1\)"):
        bundle.modality.fitted.transform_records([valid_record, {**valid_record, "age": 1e300}])


def test_scaled_value_beyond_float32_is_named() -> None:
    """A number within float32 whose scaled feature is not (a column of tiny spread) must not turn into 'missing'."""
    train = pd.DataFrame({"creatinine": [0.9, 1.0, 1.1, 1.0]})
    preprocessor = TabularPreprocessor(numeric=["creatinine"]).fit(train)
    assert np.isfinite(preprocessor.transform(pd.DataFrame({"creatinine": [1.2]}))).all()
    with pytest.raises(MedDLError, match=r"column 'creatinine' has 1 value\(s\) scaled beyond .*3e\+38 \(row 0\)"):
        preprocessor.transform(pd.DataFrame({"creatinine": [3e38]}))
    with pytest.raises(MedDLError, match=r"column 'creatinine' .*scaled.*\(row 0\)"):
        preprocessor.transform_records([{"creatinine": 3e38}])


def test_upload_to_a_table_model_is_415_saying_it_takes_json(client: TestClient) -> None:
    """A multipart upload used to get 422 "body: Input should be a valid dictionary"."""
    for action in ("predict", "explain"):
        files = {"file": ("cases.csv", b"age,sex\n61,F\n", "text/csv")}
        response = client.post(f"/models/clinic/{action}", files=files)
        assert response.status_code == 415, response.text
        detail = response.json()["detail"]
        assert "takes a JSON body" in detail and "application/json" in detail and "/models/clinic" in detail


def test_body_that_is_not_utf8_is_400_saying_so(client: TestClient, valid_record: dict) -> None:
    """A Latin-1 body got FastAPI's "There was an error parsing the body"."""
    body = json.dumps({"records": [{**valid_record, "smoker": "curr\u00e9nt"}]}, ensure_ascii=False)
    response = client.post(
        "/models/clinic/predict", content=body.encode("latin-1"), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert "not valid UTF-8 JSON" in response.json()["message"] and "0xe9" in response.json()["message"]
    # other HTTP errors keep their own answer
    assert client.get("/models/nope").json()["detail"].startswith("no model named 'nope'")


def _bundle_copy(served_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(served_bundle, tmp_path / "clinic"))


def _rehash(bundle: Path) -> None:
    """Write the manifest again, as if the bundle had been trained with the file as it is now."""
    from meddl.bundle.files import MANIFEST, write_manifest

    write_manifest(bundle, list(json.loads((bundle / MANIFEST).read_text())["files"]))


def test_empty_report_is_not_served_as_a_page(served_bundle: Path, tmp_path: Path) -> None:
    """A 0-byte report.html (the manifest rehashed, so the bundle loads) was served as an empty 200 page."""
    bundle = _bundle_copy(served_bundle, tmp_path)
    (bundle / "report.html").write_bytes(b"")
    _rehash(bundle)
    client = TestClient(create_app(Settings(bundles=[bundle], audit_log=None)))
    response = client.get("/models/clinic/report")
    assert response.status_code == 404, response.text
    assert "report.html" in response.json()["detail"] and "empty or damaged" in response.json()["detail"]


@pytest.mark.parametrize(
    ("name", "route", "damage"),
    [
        ("report.html", "report", b"<html>not the report</html>"),
        ("model_card.md", "card", b"\xff\xfe not text"),
    ],
)
def test_bundle_file_changed_after_loading_is_not_served(
    served_bundle: Path, tmp_path: Path, name: str, route: str, damage: bytes
) -> None:
    """The file is checked against the manifest's sha256 when it is served, not only when the bundle loads."""
    bundle = _bundle_copy(served_bundle, tmp_path)
    client = TestClient(create_app(Settings(bundles=[bundle], audit_log=None)), raise_server_exceptions=False)
    assert client.get(f"/models/clinic/{route}").status_code == 200
    (bundle / name).write_bytes(damage)
    response = client.get(f"/models/clinic/{route}")
    assert response.status_code == 404, response.text
    assert name in response.json()["detail"] and "retrain or restore" in response.json()["detail"]

"""``/models/{name}/predict_sequences`` and ``/explain_sequences``: sequences sent as JSON strings."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from meddl.data.motifs import planted_motif_dataset, write_planted_dataset
from meddl.serve.main import create_app
from meddl.serve.settings import Settings

LENGTH = 60
NAME = "motifs"


@pytest.fixture(scope="module")
def sequence_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A tiny sequence_cnn bundle (binary, 60-bp windows) and a few of its training sequences."""
    from meddl import Experiment

    folder = tmp_path_factory.mktemp("sequences")
    data = planted_motif_dataset(160, length=LENGTH, motifs=("MA0139.2",), seed=0)
    write_planted_dataset(folder / "data", data, seed=0)
    config: dict[str, Any] = {
        "name": NAME,
        "task": "binary",
        "data": {"kind": "sequence", "path": "data/sequences.fa", "positive_label": 1},
        "preprocess": {"length": LENGTH},
        "model": {"arch": "sequence_cnn", "filters": [8], "kernel_sizes": [11], "hidden": 8},
        "train": {"epochs": 2, "batch_size": 32, "learning_rate": 0.01, "seed": 0, "progress": False},
        "evaluate": {"bootstrap": 10},
    }
    Experiment.from_dict(config, base_dir=folder).run(out=folder / "run")
    return folder / "run", list(data.sequences[:3])


@pytest.fixture(scope="module")
def client(sequence_bundle: tuple[Path, list[str]], tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    return TestClient(create_app(Settings(bundles=[sequence_bundle[0]], audit_log=audit)))


def test_predict_sequences_matches_the_bundle_and_the_upload_route(
    client: TestClient, sequence_bundle: tuple[Path, list[str]]
) -> None:
    from meddl.bundle import load_bundle

    path, sequences = sequence_bundle
    body = {"sequences": [{"id": f"s{i}", "sequence": s.lower()} for i, s in enumerate(sequences)]}
    body["sequences"].append({"id": "short", "sequence": sequences[0][:40]})
    answer = client.post(f"/models/{NAME}/predict_sequences", json=body)
    assert answer.status_code == 200, answer.text
    items = answer.json()["predictions"]
    assert [p["case_id"] for p in items] == ["s0", "s1", "s2", "short"]
    bundle = load_bundle(path)
    expected = bundle.scores(bundle.modality.encoder.transform([*sequences, sequences[0][:40]]))
    np.testing.assert_allclose([p["probability"] for p in items], expected, rtol=1e-6)
    assert items[3]["note"] == f"length 40 fitted to the model's {LENGTH}-base window" and items[0]["note"] == ""
    for item in items:
        threshold = bundle.threshold if bundle.threshold is not None else 0.5
        assert item["label"] == bundle.classes[int(item["probability"] >= threshold)]
    fasta = "".join(f">s{i}\n{s}\n" for i, s in enumerate(sequences)).encode()
    upload = client.post(f"/models/{NAME}/predict", files={"file": ("cases.fa", fasta)})
    assert upload.status_code == 200, upload.text
    np.testing.assert_allclose(
        [p["probability"] for p in upload.json()["predictions"]], [p["probability"] for p in items[:3]], rtol=1e-6
    )


def test_explain_sequences_returns_per_base_attributions_and_a_logo(
    client: TestClient, sequence_bundle: tuple[Path, list[str]]
) -> None:
    from meddl.bundle import load_bundle

    path, sequences = sequence_bundle
    answer = client.post(
        f"/models/{NAME}/explain_sequences", json={"sequences": [{"id": "a", "sequence": sequences[0]}]}
    )
    assert answer.status_code == 200, answer.text
    item = answer.json()["predictions"][0]
    assert item["window"] == sequences[0] and len(item["attributions"]) == LENGTH
    bundle = load_bundle(path)
    inputs = bundle.modality.encoder.transform([sequences[0]])
    expected = bundle.modality._contributions(bundle.model, inputs, [sequences[0]])[0]
    np.testing.assert_allclose(item["attributions"], expected, rtol=1e-4, atol=1e-6)
    assert base64.b64decode(item["logo_png"]).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        (
            {"sequences": [{"id": "x", "sequence": "ACGTXACGT"}]},
            "sequences[0].sequence",
            "invalid base 'X' at position 5",
        ),
        ({"sequences": [{"id": "x", "sequence": "  "}]}, "sequences[0].sequence", "the sequence is empty"),
        ({"sequences": [{"sequence": "ACGT"}]}, "sequences[0].id", "Field required"),
        ({"sequences": []}, "sequences", "at least 1"),
        (
            {"sequences": [{"id": "x", "sequence": "ACGT"}, {"id": "x", "sequence": "ACGA"}]},
            "body",
            "sequences[1].id: 'x' is also the id of sequences[0]",
        ),
    ],
)
def test_bad_sequences_get_422_naming_the_field(client: TestClient, body: dict, field: str, text: str) -> None:
    answer = client.post(f"/models/{NAME}/predict_sequences", json=body)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert any(d["field"] == field and text in d["message"] for d in detail), detail


def test_sequence_routes_are_guarded_and_limited(sequence_bundle: tuple[Path, list[str]], tmp_path: Path) -> None:
    path, sequences = sequence_bundle
    app = create_app(Settings(bundles=[path], audit_log=None, max_batch=2))
    client = TestClient(app)
    body = {"sequences": [{"id": str(i), "sequence": sequences[0]} for i in range(3)]}
    assert client.post(f"/models/{NAME}/predict_sequences", json=body).status_code == 413
    text = client.post(f"/models/{NAME}/predict_sequences", content=b"ACGT", headers={"content-type": "text/plain"})
    assert text.status_code == 415


def test_model_detail_and_unknown_action_name_the_json_routes(client: TestClient) -> None:
    detail = client.get(f"/models/{NAME}").json()
    assert "predict_sequences" in detail["input_schema"]["json"] and ".fa" in detail["input_schema"]["formats"]
    answer = client.post(f"/models/{NAME}/classify", json={})
    assert answer.status_code == 404 and "predict_sequences" in answer.json()["detail"]

"""``/models/{name}/predict_molecules`` and ``/explain_molecules``: compounds sent as SMILES strings."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from meddl.serve.main import create_app
from meddl.serve.settings import Settings

NAME = "compounds"
SALT = "[Na+].[O-]C(=O)c1ccccc1"


@pytest.fixture(scope="module")
def molecule_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A tiny mpnn bundle (regression on Crippen logP) and a few of its compounds' SMILES."""
    from meddl import Experiment
    from meddl.data.molecule_synth import synthetic_molecules

    folder = tmp_path_factory.mktemp("molecules")
    frame = synthetic_molecules(120, seed=0)
    frame.to_csv(folder / "molecules.csv", index=False)
    config: dict[str, Any] = {
        "name": NAME,
        "task": "regression",
        "data": {"kind": "molecule", "path": str(folder / "molecules.csv"), "smiles": "smiles", "target": "logp"},
        "model": {"arch": "mpnn", "hidden": 16, "depth": 2},
        "train": {"epochs": 2, "batch_size": 32, "seed": 0, "progress": False},
        "evaluate": {"bootstrap": 10, "robustness": False},
    }
    Experiment.from_dict(config, base_dir=folder).run(out=folder / "run")
    return folder / "run", list(frame["smiles"].iloc[:3])


@pytest.fixture(scope="module")
def client(molecule_bundle: tuple[Path, list[str]], tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    return TestClient(create_app(Settings(bundles=[molecule_bundle[0]], audit_log=audit)))


def test_predict_molecules_matches_the_bundle(
    client: TestClient, molecule_bundle: tuple[Path, list[str]], tmp_path: Path
) -> None:
    from meddl.bundle import load_bundle

    path, smiles = molecule_bundle
    body = {"molecules": [{"id": f"c{i}", "smiles": s} for i, s in enumerate(smiles)]}
    answer = client.post(f"/models/{NAME}/predict_molecules", json=body)
    assert answer.status_code == 200, answer.text
    items = answer.json()["predictions"]
    assert [p["case_id"] for p in items] == ["c0", "c1", "c2"]
    assert all(p["note"] == "" and p["label"] is None for p in items)
    cases = tmp_path / "cases.csv"
    pd.DataFrame({"id": [f"c{i}" for i in range(len(smiles))], "smiles": smiles}).to_csv(cases, index=False)
    expected = load_bundle(path).predict(cases)
    np.testing.assert_allclose(
        [p["prediction"] for p in items], expected["prediction"].to_numpy(dtype=float), rtol=1e-5, atol=1e-6
    )


def test_a_salt_form_is_scored_as_its_parent_with_a_note(
    client: TestClient, molecule_bundle: tuple[Path, list[str]]
) -> None:
    body = {"molecules": [{"id": "salt", "smiles": SALT}, {"id": "parent", "smiles": "OC(=O)c1ccccc1"}]}
    predicted = client.post(f"/models/{NAME}/predict_molecules", json=body)
    assert predicted.status_code == 200, predicted.text
    salt, parent = predicted.json()["predictions"]
    assert "salt or solvent removed" in salt["note"] and parent["note"] == ""
    assert salt["prediction"] == pytest.approx(parent["prediction"], rel=1e-5, abs=1e-6)
    explained = client.post(f"/models/{NAME}/explain_molecules", json={"molecules": [body["molecules"][0]]})
    assert explained.status_code == 200, explained.text
    item = explained.json()["predictions"][0]
    assert item["smiles"] == "O=C(O)c1ccccc1" and "salt or solvent removed" in item["note"]


def test_explain_molecules_returns_atom_attributions_and_a_drawing(
    client: TestClient, molecule_bundle: tuple[Path, list[str]]
) -> None:
    from rdkit import Chem

    smiles = molecule_bundle[1][0]
    answer = client.post(f"/models/{NAME}/explain_molecules", json={"molecules": [{"id": "a", "smiles": smiles}]})
    assert answer.status_code == 200, answer.text
    item = answer.json()["predictions"][0]
    assert item["case_id"] == "a" and isinstance(item["prediction"], float)
    atoms = Chem.MolFromSmiles(smiles).GetNumAtoms()
    assert len(item["atom_attributions"]) == atoms
    assert all(np.isfinite(item["atom_attributions"]))
    assert item["smiles"] == Chem.MolToSmiles(Chem.MolFromSmiles(smiles))
    assert base64.b64decode(item["molecule_png"]).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ({"molecules": [{"id": "x", "smiles": "C1CC"}]}, "molecules[0].smiles", "unclosed ring"),
        ({"molecules": [{"id": "x", "smiles": "  "}]}, "molecules[0].smiles", "the SMILES is empty"),
        ({"molecules": [{"smiles": "CCO"}]}, "molecules[0].id", "Field required"),
        ({"molecules": []}, "molecules", "at least 1"),
        (
            {"molecules": [{"id": "x", "smiles": "CCO"}, {"id": "x", "smiles": "CCN"}]},
            "body",
            "molecules[1].id: 'x' is also the id of molecules[0]",
        ),
    ],
)
def test_bad_molecules_get_422_naming_the_field(client: TestClient, body: dict, field: str, text: str) -> None:
    answer = client.post(f"/models/{NAME}/predict_molecules", json=body)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert any(d["field"] == field and text in d["message"] for d in detail), detail


def test_model_detail_names_the_text_field_and_the_json_routes(client: TestClient) -> None:
    detail = client.get(f"/models/{NAME}").json()
    assert detail["request_style"] == "text"
    assert detail["input_schema"]["text_field"]["items"] == "molecules"
    assert detail["input_schema"]["text_field"]["field"] == "smiles"
    assert detail["json_routes"] == {"predict": "predict_molecules", "explain": "explain_molecules"}


def test_explain_molecules_answers_a_compound_too_big_for_the_model_with_a_note(client: TestClient) -> None:
    body = {"molecules": [{"id": "big", "smiles": "C" * 80}, {"id": "ok", "smiles": "CCO"}]}
    predicted = client.post(f"/models/{NAME}/predict_molecules", json=body)
    assert predicted.status_code == 200 and "heavy atoms" in predicted.json()["predictions"][0]["note"]
    explained = TestClient(client.app, raise_server_exceptions=False).post(
        f"/models/{NAME}/explain_molecules", json=body
    )
    assert explained.status_code == 200, explained.text
    big, ok = explained.json()["predictions"]
    assert big["prediction"] is None and "heavy atoms" in big["note"] and "molecule_png" not in big
    assert ok["case_id"] == "ok" and len(ok["atom_attributions"]) == 3

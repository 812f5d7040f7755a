"""ONNX export of trained bundles: the graph reproduces the PyTorch logits and the sidecar says how to read them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pytest
import torch

from meddl import Experiment, load_bundle
from meddl.bundle import Bundle
from meddl.errors import MedDLError
from meddl.export import export_onnx
from meddl.io import read_table, write_table
from tests.conftest import fast_config

TINY_MODELS = {
    "mlp": {"arch": "mlp", "hidden": [16]},
    "ft_transformer": {"arch": "ft_transformer", "d_token": 8, "n_blocks": 1, "n_heads": 2},
}


@pytest.fixture(scope="module")
def clinic_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from meddl.data import synthetic_clinical_table

    folder = tmp_path_factory.mktemp("data")
    return write_table(synthetic_clinical_table(150, seed=3, visits_per_patient=2), folder / "clinic.csv")


@pytest.fixture(scope="module")
def bundles(clinic_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny bundles: both architectures on the binary outcome, an MLP regressing glucose and an FT-Transformer
    classifying smoking status."""
    folder = tmp_path_factory.mktemp("runs")
    runs: dict[str, Path] = {}
    for name, (task, target, model) in {
        "mlp_binary": ("binary", "outcome", TINY_MODELS["mlp"]),
        "ft_transformer_binary": ("binary", "outcome", TINY_MODELS["ft_transformer"]),
        "mlp_regression": ("regression", "glucose", TINY_MODELS["mlp"]),
        "ft_transformer_multiclass": ("multiclass", "smoker", TINY_MODELS["ft_transformer"]),
    }.items():
        config = fast_config(clinic_csv, task=task, model=model)
        config["data"]["target"] = target
        if task != "binary":
            config["data"]["positive_label"] = None
        config["train"]["epochs"] = 2
        config["evaluate"]["bootstrap"] = 10
        runs[name] = Experiment.from_dict(config).run(out=folder / name).path
    return runs


def _test_split(bundle: Bundle, csv: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The bundle's test rows of the data file and their encoded features."""
    splits = pd.read_csv(bundle.path / "splits.csv")
    rows = splits.loc[splits["split"] == "test", "row"].to_numpy()
    frame = read_table(csv).loc[rows]
    matrix = bundle.modality.fitted.transform(bundle.modality.features_of(frame)).astype(np.float32)
    return frame, matrix


def _onnx_logits(path: Path, matrix: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["features"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    return np.asarray(session.run(["logits"], {"features": matrix})[0])


@pytest.mark.parametrize("run", ["mlp_binary", "ft_transformer_binary", "mlp_regression", "ft_transformer_multiclass"])
def test_onnx_matches_pytorch_on_the_test_split(
    bundles: dict[str, Path], clinic_csv: Path, tmp_path: Path, run: str
) -> None:
    path = export_onnx(bundles[run], tmp_path / "model.onnx")
    assert path == tmp_path / "model.onnx"
    onnx.checker.check_model(onnx.load(str(path)))
    bundle = load_bundle(bundles[run])
    frame, matrix = _test_split(bundle, clinic_csv)
    assert len(matrix) > 20 and np.isfinite(matrix).all()
    got = _onnx_logits(path, matrix)
    with torch.no_grad():
        expected = bundle.model(torch.as_tensor(matrix)).numpy()
    n_outputs = len(bundle.classes) if bundle.task == "multiclass" else 1
    assert got.shape == expected.shape == (len(frame), n_outputs)
    assert np.abs(got - expected).max() <= 1e-5
    # The batch axis is dynamic: one row gives the same logits as in the full batch.
    assert np.abs(_onnx_logits(path, matrix[:1]) - expected[:1]).max() <= 1e-5

    # Following the sidecar's transform turns the ONNX logits into what the bundle itself reports.
    sidecar = json.loads((tmp_path / "model.onnx.json").read_text())
    transform = sidecar["output"]["transform"]
    if bundle.task == "binary":
        assert transform["kind"] == "sigmoid"
        scores = 1 / (1 + np.exp(-got[:, 0].astype(np.float64)))
    elif bundle.task == "multiclass":
        assert transform["kind"] == "softmax"
        assert sidecar["classes"] == bundle.classes == ["current", "former", "never"]
        exp = np.exp(got.astype(np.float64) - got.max(axis=1, keepdims=True))
        scores = exp / exp.sum(axis=1, keepdims=True)
    else:
        assert transform["kind"] == "affine"
        assert [transform["mean"], transform["std"]] == list(bundle.target_scale or ())
        scores = got[:, 0] * transform["std"] + transform["mean"]
    np.testing.assert_allclose(scores, bundle.scores(frame), rtol=1e-4, atol=1e-5)


def test_sidecar_describes_inputs_and_outputs(bundles: dict[str, Path], tmp_path: Path) -> None:
    export_onnx(bundles["ft_transformer_binary"], tmp_path / "risk.onnx", opset=17)
    bundle = load_bundle(bundles["ft_transformer_binary"])
    sidecar = json.loads((tmp_path / "risk.onnx.json").read_text())
    assert sidecar["onnx_file"] == "risk.onnx"
    assert sidecar["opset"] == 17
    assert any(entry.version == 17 for entry in onnx.load(str(tmp_path / "risk.onnx")).opset_import)
    assert sidecar["bundle"]["bundle_hash"] == bundle.bundle_hash
    assert sidecar["task"] == "binary"
    assert sidecar["classes"] == ["no", "yes"]
    assert sidecar["threshold"] == pytest.approx(bundle.threshold)
    assert sidecar["input"]["name"] == "features"
    assert sidecar["input"]["feature_names"] == list(bundle.modality.fitted.feature_names_out_)
    assert sidecar["input"]["shape"] == ["batch", bundle.info["data_arguments"]["in_features"]]
    assert "encoded" in sidecar["input"]["note"] and "preprocess.json" in sidecar["input"]["note"]
    assert sidecar["output"]["name"] == "logits"
    assert sidecar["output"]["shape"] == ["batch", 1]
    assert sidecar["verification"]["max_abs_difference"] <= sidecar["verification"]["tolerance"] == 1e-5


def test_tampered_bundle_is_refused(bundles: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(bundles["mlp_binary"], copy)
    info = json.loads((copy / "model.json").read_text())
    info["threshold"] = 0.01
    (copy / "model.json").write_text(json.dumps(info))
    with pytest.raises(MedDLError, match=r"model\.json.*sha256"):
        export_onnx(copy, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_folder_that_is_not_a_bundle_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    with pytest.raises(MedDLError, match="not a MedDL bundle"):
        export_onnx(tmp_path / "notes", tmp_path / "model.onnx")
    with pytest.raises(MedDLError, match="bundle not found"):
        export_onnx(tmp_path / "absent", tmp_path / "model.onnx")


def test_output_that_is_a_folder_is_refused(bundles: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(MedDLError, match="is a folder"):
        export_onnx(bundles["mlp_binary"], tmp_path)


def test_disagreement_with_pytorch_is_an_error_and_writes_nothing(
    bundles: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import meddl.export

    original = meddl.export._onnxruntime_logits
    monkeypatch.setattr(meddl.export, "_onnxruntime_logits", lambda path, rows: original(path, rows) + 1e-3)
    with pytest.raises(MedDLError, match="disagree"):
        export_onnx(bundles["mlp_binary"], tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []

"""train.ensemble: members trained one after another from their own seeds, one bundle whose probabilities are the
members' average, each case's spread across members, exact resume, ONNX export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
import pytest
import torch

from meddl import Experiment, load_bundle
from meddl.config import parse_config
from meddl.errors import MedDLError
from meddl.export import export_onnx
from meddl.models import Ensemble
from tests.conftest import fast_config


def test_the_ensemble_averages_probabilities_not_logits() -> None:
    class Constant(torch.nn.Module):
        def __init__(self, value: list[float]) -> None:
            super().__init__()
            self.value = torch.nn.Parameter(torch.tensor(value))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.value.expand(len(x), -1)

    x = torch.zeros(2, 3)
    binary = Ensemble([Constant([4.0]), Constant([-1.0])], "binary")
    expected = (torch.sigmoid(torch.tensor(4.0)) + torch.sigmoid(torch.tensor(-1.0))) / 2
    assert torch.allclose(torch.sigmoid(binary(x)), expected.expand(2, 1))
    multiclass = Ensemble([Constant([2.0, 0.0, 0.0]), Constant([0.0, 0.0, 3.0])], "multiclass")
    mean = (torch.softmax(torch.tensor([2.0, 0.0, 0.0]), 0) + torch.softmax(torch.tensor([0.0, 0.0, 3.0]), 0)) / 2
    assert torch.allclose(torch.softmax(multiclass(x), dim=1), mean.expand(2, 3), atol=1e-6)
    assert torch.allclose(Ensemble([Constant([1.0]), Constant([3.0])], "regression")(x), torch.full((2, 1), 2.0))
    with pytest.raises(ValueError, match="at least 2 members"):
        Ensemble([Constant([1.0])], "binary")


@pytest.mark.slow
def test_an_ensemble_run_trains_members_from_their_seeds_and_predicts_their_average(
    clinical_csv: Path, tmp_path: Path
) -> None:
    config = fast_config(clinical_csv)
    config["train"]["ensemble"] = 3
    config["evaluate"]["robustness"] = False
    result = Experiment.from_dict(config).run(tmp_path / "run")
    members = result.record["training"]["members"]
    assert len(members) == 3 and len({m["best_score"] for m in members}) == 3  # three different networks
    assert json.loads((tmp_path / "run" / "model.json").read_text())["ensemble"] == 3

    bundle = load_bundle(tmp_path / "run")
    assert isinstance(bundle.model, Ensemble) and len(bundle.model.members) == 3
    weights = [next(m.parameters()).detach() for m in bundle.model.members]
    assert not torch.equal(weights[0], weights[1])  # seeds seed, seed + 1, ...
    cases = pd.read_csv(clinical_csv).head(30)
    read = bundle.read(cases)
    each = bundle.member_scores(read.inputs)
    assert each is not None and each.shape == (3, int(read.usable.sum()))
    predicted = bundle.predict(cases)
    scored = predicted["probability_yes"].notna().to_numpy()
    assert np.allclose(predicted.loc[scored, "probability_yes"], each.mean(axis=0))
    assert np.allclose(predicted.loc[scored, "ensemble_std"], each.std(axis=0))

    onnx = export_onnx(tmp_path / "run", tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(onnx))
    matrix = np.asarray(read.inputs, dtype=np.float32)
    logits = session.run(None, {session.get_inputs()[0].name: matrix})[0].reshape(-1)
    assert np.allclose(1 / (1 + np.exp(-logits)), each.mean(axis=0), atol=1e-5)

    trained = (tmp_path / "run" / "model.safetensors").read_bytes()
    again = Experiment.from_dict(config).run(tmp_path / "run", resume=True)  # every member from its checkpoint
    assert again.record["training"]["members"][2]["resumed_from_epoch"] == members[2]["epochs_run"]
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == trained


def test_an_ensemble_of_survival_models_is_refused_before_reading() -> None:
    raw = {"task": "survival", "data": {"path": "t.csv", "time": "t", "event": "e"}, "train": {"ensemble": 3}}
    with pytest.raises(MedDLError, match=r"train\.ensemble: not available for survival"):
        parse_config(raw)
    with pytest.raises(MedDLError, match=r"train\.ensemble"):
        parse_config({"data": {"path": "t.csv", "target": "y"}, "train": {"ensemble": 0}})

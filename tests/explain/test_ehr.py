"""EHR explanations: integrated gradients with a mask-preserving baseline, summaries, RETAIN tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from meddl.errors import MedDLError
from meddl.explain.ehr import integrated_gradients_sequence, retain_explanations, summarise_attributions
from meddl.models.ehr import Retain, SequenceGRU


class MaskedLinear(nn.Module):
    """logit = Σ_t mask_t · (w · x_t): integrated gradients from the mask-keeping baseline are w_j · x_tj exactly."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.weights = nn.Parameter(weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, :, :1] * x * self.weights).sum(dim=(1, 2))[:, None]  # (B, 1)


def _batch(lengths: list[int], steps: int = 5, features: int = 4, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), steps, features)
    for row, length in enumerate(lengths):
        x[row, :length, 0] = 1.0
        x[row, :length, 1:] = torch.randn(length, features - 1, generator=generator)
    return x


def test_integrated_gradients_exact_on_a_linear_model() -> None:
    weights = torch.tensor([5.0, 1.0, -2.0, 0.5])
    x = _batch([5, 2, 0])
    attributions = integrated_gradients_sequence(MaskedLinear(weights), x, n_steps=8)
    assert attributions.shape == (3, 5, 4) and attributions.dtype == np.float32
    expected = (x * weights * x[:, :, :1]).numpy()
    expected[:, :, 0] = 0.0  # the mask is the same in the baseline: no attribution to sequence length
    np.testing.assert_allclose(attributions, expected, atol=1e-5)
    assert np.abs(attributions[1, 2:]).max() == 0.0  # padding steps get nothing


def test_integrated_gradients_completeness_on_gru_and_retain() -> None:
    x = _batch([5, 3, 1], seed=1)
    torch.manual_seed(0)
    for model in (SequenceGRU(in_features=4, out_channels=2, hidden=8, dropout=0.0), Retain(4, 2, 8, 8, 0.0)):
        model.eval()
        attributions = integrated_gradients_sequence(model, x, target=1, n_steps=64, batch_size=2)
        baseline = x.clone()
        baseline[:, :, 1:] = 0.0
        with torch.no_grad():
            difference = (model(x) - model(baseline))[:, 1].numpy()
        np.testing.assert_allclose(attributions.sum(axis=(1, 2)), difference, atol=2e-3)
        assert np.abs(attributions[1, 3:]).max() == 0.0 and np.abs(attributions[:, :, 0]).max() == 0.0


def test_summary_orders_features_steps_groups_and_cases() -> None:
    attributions = np.zeros((2, 3, 4))
    attributions[0, 0, 2] = -3.0
    attributions[0, 2, 1] = 1.0
    attributions[1, 1, 2] = 1.0
    attributions[1, 1, 3] = 0.5
    names = ["step_mask", "lab:hr:value", "code:dx:I10", "age/100"]
    summary = summarise_attributions(attributions, names, {"codes": [2], "static": [3]}, top=2, top_per_case=2)
    assert summary["features"] == [
        {"feature": "code:dx:I10", "importance": 2.0},
        {"feature": "lab:hr:value", "importance": 0.5},
    ]
    assert summary["steps"] == [1.5, 0.75, 0.5]
    assert summary["groups"] == {"codes": 2.0, "static": 0.25}
    assert summary["cases"][0] == [
        {"feature": "code:dx:I10", "step": 0, "value": -3.0},
        {"feature": "lab:hr:value", "step": 2, "value": 1.0},
    ]
    assert summary["cases"][1][1] == {"feature": "age/100", "step": 1, "value": 0.5}
    with pytest.raises(MedDLError, match="3 names for 4"):
        summarise_attributions(attributions, names[:3])


def test_retain_explanations_add_up_to_the_logit() -> None:
    torch.manual_seed(0)
    model = Retain(in_features=4, out_channels=1, embed_dim=6, hidden=6, dropout=0.0).eval()
    x = _batch([4, 2], seed=2)
    names = ["step_mask", "a", "b", "c"]
    cases = retain_explanations(model, x, names, top=100)
    with torch.no_grad():
        logits = model(x)[:, 0].numpy()
    assert len(cases) == 2 and len(cases[0]["alpha"]) == 4 and len(cases[1]["alpha"]) == 2
    assert sum(cases[1]["alpha"]) == pytest.approx(1.0, abs=1e-6)
    for case, logit in zip(cases, logits, strict=True):
        assert case["logit"] == pytest.approx(float(logit), abs=1e-5)
        total = case["baseline"] + sum(item["value"] for item in case["contributions"])
        assert total == pytest.approx(float(logit), abs=1e-5)
        assert all(item["feature"] != "step_mask" for item in case["contributions"])
        values = [abs(item["value"]) for item in case["contributions"]]
        assert values == sorted(values, reverse=True)
    assert max(item["step"] for item in cases[1]["contributions"]) <= 1  # padding contributes nothing
    only_b = retain_explanations(model, x, names, top=3, channels=[2])
    assert {item["feature"] for item in only_b[0]["contributions"]} == {"b"} and len(only_b[0]["contributions"]) == 3
    with pytest.raises(MedDLError, match="needs a 'retain' model"):
        retain_explanations(SequenceGRU(4, 1), x, names)

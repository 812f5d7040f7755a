"""Tests of meddl.models.mlp."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from meddl.models import MLP


@pytest.mark.parametrize("out_features", [1, 3])
def test_output_shape(out_features):
    model = MLP(7, out_features, hidden=(16, 8))
    assert model(torch.randn(5, 7)).shape == (5, out_features)


def test_no_hidden_layers_is_a_linear_model():
    model = MLP(4, 2, hidden=())
    assert isinstance(model.head, nn.Linear) and len(model.body) == 0
    x = torch.randn(3, 4)
    torch.testing.assert_close(model(x), x @ model.head.weight.T + model.head.bias)


@pytest.mark.parametrize("activation", ["relu", "gelu", "silu"])
def test_activation_is_used(activation):
    model = MLP(3, 1, hidden=(4,), activation=activation)
    kinds = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}
    assert any(isinstance(m, kinds[activation]) for m in model.modules())


def test_eval_mode_is_deterministic_and_train_mode_drops_out():
    torch.manual_seed(0)
    model = MLP(6, 1, hidden=(64,), dropout=0.5)
    x = torch.randn(8, 6)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize(("kwargs", "message"), [({"activation": "tanh"}, "activation"), ({"dropout": 1.0}, "dropout")])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MLP(3, 1, **kwargs)

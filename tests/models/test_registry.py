"""Tests of meddl.models.registry: names to constructors, argument checks that name the field."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from meddl.errors import MedDLError
from meddl.models import MLP, FTTransformer, available_models, build_model, check_model_params, register_model
from meddl.models import registry as registry_module


@pytest.fixture
def clean_registry() -> Iterator[None]:
    before = dict(registry_module._REGISTRY)
    yield
    registry_module._REGISTRY.clear()
    registry_module._REGISTRY.update(before)


def test_builtin_models_are_registered():
    assert {"mlp", "ft_transformer"} <= set(available_models())
    assert available_models() == sorted(available_models())


def test_build_model_passes_user_and_data_arguments():
    model = build_model("mlp", {"hidden": [16, 8], "dropout": 0.0}, in_features=5, out_features=3)
    assert isinstance(model, MLP)
    assert model(torch.zeros(2, 5)).shape == (2, 3)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(5, 16), (16, 8), (8, 3)]
    assert isinstance(build_model("ft_transformer", {}, in_features=4, out_features=1), FTTransformer)


def test_unknown_arch_lists_the_choices():
    with pytest.raises(MedDLError, match=r"model.arch: unknown architecture 'resnet'.*'mlp'"):
        build_model("resnet", {}, in_features=3, out_features=1)


def test_unknown_param_names_the_field():
    with pytest.raises(MedDLError, match=r"model.hiden: unknown argument for arch 'mlp'.*'hidden'"):
        check_model_params("mlp", {"hiden": [8]}, source="exp.yaml")


@pytest.mark.parametrize("name", ["in_features", "out_features"])
def test_data_derived_params_are_refused(name):
    with pytest.raises(MedDLError, match=f"exp.yaml: model.{name} is set from the data"):
        check_model_params("mlp", {name: 3}, source="exp.yaml")


def test_known_params_pass():
    check_model_params("ft_transformer", {"d_token": 16, "n_heads": 2, "n_blocks": 1})


@pytest.mark.parametrize(
    ("arch", "params"),
    [
        ("ft_transformer", {"d_token": 10, "n_heads": 4}),
        ("mlp", {"activation": "tanh"}),
        ("mlp", {"dropout": 1.5}),
    ],
)
def test_bad_values_become_meddl_errors(arch, params):
    with pytest.raises(MedDLError, match=f"model '{arch}': invalid arguments"):
        build_model(arch, params, in_features=4, out_features=1)


def test_register_model_refuses_a_duplicate_name(clean_registry):
    @register_model("test_only_net")
    class First(nn.Module):
        def __init__(self, in_features: int, out_features: int, width: int = 2) -> None:
            super().__init__()

    assert "test_only_net" in available_models()
    register_model("test_only_net")(First)  # the same class again is fine (module reloads)
    with pytest.raises(ValueError, match="already registered to First"):

        @register_model("test_only_net")
        class Second(nn.Module):
            pass

    check_model_params("test_only_net", {"width": 3})
    with pytest.raises(MedDLError, match=r"model.depth"):
        check_model_params("test_only_net", {"depth": 3})

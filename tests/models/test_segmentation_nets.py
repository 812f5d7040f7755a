"""Segmentation networks under MedDL's constructor convention: one logit map per label at the input's size, the
patch divisor the plan rounds to, the head transfer learning swaps, and bad arguments named."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from meddl.errors import MedDLError
from meddl.models.registry import build_model, check_model_params

_TINY: dict[str, dict[str, Any]] = {
    "unet": {"channels": [4, 8, 16], "num_res_units": 1},
    "segresnet": {"init_filters": 8},
    "unetr": {"feature_size": 4, "hidden_size": 24, "mlp_dim": 48, "num_heads": 2},
    "swin_unetr": {"feature_size": 12, "depths": [1, 1, 1, 1], "num_heads": [1, 2, 2, 4]},
}
_DIVISOR = {"unet": 4, "segresnet": 8, "unetr": 16, "swin_unetr": 32}


def _build(arch: str, dims: int, side: int, **extra: Any) -> torch.nn.Module:
    data: dict[str, Any] = {"spatial_dims": dims, "in_channels": 1, "out_channels": 3}
    if arch == "unetr":
        data["input_size"] = [side] * dims  # filled in from the plan by the segmentation modality
    return build_model(arch, {**_TINY[arch], **extra}, **data)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("arch", sorted(_TINY))
def test_one_logit_map_per_label_at_the_smallest_patch_in_training(arch: str, dims: int) -> None:
    network = _build(arch, dims, 2 * _DIVISOR[arch])
    assert type(network).patch_divisor(_TINY[arch]) == _DIVISOR[arch]  # type: ignore[attr-defined]
    side = 2 * _DIVISOR[arch]  # the plan's smallest patch: the deepest map keeps 2 voxels for instance norm
    network.train()
    logits = network(torch.randn(2, 1, *([side] * dims)))
    assert logits.shape == (2, 3, *([side] * dims))
    logits.float().sum().backward()  # trains: gradients reach the first layer
    first = next(p for p in network.parameters() if p.requires_grad)
    assert first.grad is not None and bool(first.grad.abs().sum() > 0)
    head = network.get_submodule(network.head)  # type: ignore[arg-type]
    assert any(p.shape[0] == 3 for p in head.parameters())  # the head's shape depends on the labels


def test_the_unet_divisor_follows_its_levels() -> None:
    network = build_model("unet", {"channels": [4, 8, 16, 32]}, spatial_dims=2, in_channels=1, out_channels=2)
    assert type(network).patch_divisor({"channels": [4, 8, 16, 32]}) == 8  # type: ignore[attr-defined]


def test_unetr_takes_its_patch_from_the_data_not_from_the_experiment() -> None:
    with pytest.raises(MedDLError, match=r"model\.input_size is set from the data"):
        check_model_params("unetr", {"input_size": [32, 32]})
    with pytest.raises(MedDLError, match="multiple of 16"):
        _build("unetr", 2, 24)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"feature_size": 10}, "feature_size must be a multiple of 12"),
        ({"num_heads": [5, 2, 2, 4]}, "num_heads must divide"),
        ({"depths": [1, 1, 1]}, "four stages"),
    ],
)
def test_swin_unetr_arguments_are_checked_with_a_message(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(MedDLError, match=message):
        _build("swin_unetr", 2, 64, **extra)

"""MONAI networks under MedDL's constructor convention: shapes, Grad-CAM layer, local weights files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from meddl.errors import MedDLError
from meddl.models.monai_nets import DenseNet121, ResNet18, ResNet34, ViT, load_pretrained_weights
from meddl.models.registry import build_model

_TINY_VIT = {"patch_size": 8, "hidden_size": 32, "mlp_dim": 64, "num_layers": 2, "num_heads": 2}
# Smallest inputs each network accepts: DenseNet halves five times with fixed pools, ViT is built for one size.
_CASES: list[tuple[str, dict[str, Any], int]] = [
    ("resnet18", {}, 16),
    ("resnet34", {}, 16),
    ("densenet121", {}, 32),
    ("vit", _TINY_VIT, 16),
]


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("out_channels", [1, 3])
@pytest.mark.parametrize(("arch", "params", "side"), _CASES, ids=[c[0] for c in _CASES])
def test_output_shapes(arch: str, params: dict[str, Any], side: int, spatial_dims: int, out_channels: int) -> None:
    if arch == "vit":
        params = {**params, "image_size": [side] * spatial_dims}
    model = build_model(arch, params, spatial_dims=spatial_dims, in_channels=2, out_channels=out_channels)
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 2, *([side] * spatial_dims)))
    assert isinstance(logits, torch.Tensor)
    assert logits.shape == (2, out_channels)
    assert isinstance(model.target_layer, torch.nn.Module)
    # The Grad-CAM layer is a view into the network, not a second copy in the saved weights.
    assert not any(key.startswith("target_layer") for key in model.state_dict())


def test_target_layers_are_the_last_spatial_stage() -> None:
    resnet = ResNet34(2, 1, 1)
    assert resnet.target_layer is resnet.net.layer4
    densenet = DenseNet121(2, 1, 1)
    assert densenet.target_layer is densenet.net.features
    vit = ViT(2, 1, 1, image_size=16, **_TINY_VIT)
    assert isinstance(vit.target_layer, torch.nn.Conv2d)


def test_vit_returns_logits_not_tanh() -> None:
    vit = ViT(2, 1, 1, image_size=16, **_TINY_VIT)
    with torch.no_grad():
        vit.net.classification_head.bias.fill_(5.0)
        assert float(vit(torch.zeros(1, 1, 16, 16))) > 1.0
    with pytest.raises(ValueError, match="patch_size 8 must divide"):
        ViT(2, 1, 1, image_size=(20, 16), **_TINY_VIT)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_pretrained_weights_round_trip(tmp_path: Path, suffix: str) -> None:
    torch.manual_seed(0)
    trained = ResNet18(2, 1, 3)
    trained.eval()
    path = tmp_path / f"weights{suffix}"
    state = {k: v.contiguous() for k, v in trained.state_dict().items()}
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    torch.manual_seed(1)
    fresh = build_model("resnet18", {"pretrained_weights": str(path)}, spatial_dims=2, in_channels=1, out_channels=3)
    fresh.eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(fresh(x), trained(x))
        assert not torch.equal(ResNet18(2, 1, 3).eval()(x), trained(x))


def test_pretrained_weights_of_the_bare_monai_network(tmp_path: Path) -> None:
    trained = DenseNet121(2, 1, 2)
    trained.eval()
    path = tmp_path / "monai_densenet.pt"
    torch.save({"state_dict": trained.net.state_dict()}, path)  # MONAI keys, nested as in a checkpoint
    fresh = DenseNet121(2, 1, 2, pretrained_weights=str(path))
    fresh.eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(fresh(x), trained(x))


def test_pretrained_weights_errors_name_file_and_key(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.safetensors"
    with pytest.raises(MedDLError, match=r"file not found: .*nowhere\.safetensors"):
        ResNet18(2, 1, 1, pretrained_weights=str(missing))

    state = ResNet18(2, 1, 1).state_dict()
    wrong_keys = tmp_path / "renamed.pt"
    torch.save({k.replace("layer4", "stage4"): v for k, v in state.items()}, wrong_keys)
    with pytest.raises(MedDLError, match=r"renamed\.pt.*'net\.layer4\.0\.conv1\.weight' is missing"):
        ResNet18(2, 1, 1, pretrained_weights=str(wrong_keys))

    wrong_head = tmp_path / "three_classes.safetensors"
    save_file({k: v.contiguous() for k, v in ResNet18(2, 1, 3).state_dict().items()}, str(wrong_head))
    with pytest.raises(MedDLError, match=r"three_classes\.safetensors.*'net\.fc\.weight' has shape \(3, 512\)"):
        ResNet18(2, 1, 1, pretrained_weights=str(wrong_head))

    deeper = tmp_path / "resnet34.pt"
    torch.save(ResNet34(2, 1, 1).state_dict(), deeper)
    with pytest.raises(MedDLError, match=r"resnet34\.pt.*unexpected key 'net\.layer1\.2\."):
        ResNet18(2, 1, 1, pretrained_weights=str(deeper))

    garbage = tmp_path / "notes.pt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(MedDLError, match=r"cannot read weights from .*notes\.pt"):
        load_pretrained_weights(ResNet18(2, 1, 1), garbage)

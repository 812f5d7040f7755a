"""The founding document's CNN and the small demo CNN: sizes, shapes, registry and Grad-CAM hook."""

from __future__ import annotations

import pytest
import torch

from meddl.errors import MedDLError
from meddl.models.cnn import SeedCNN, SmallCNN
from meddl.models.registry import build_model, user_parameters


def test_seed_cnn_has_the_keras_parameter_count() -> None:
    # Keras: Conv2D(32) 896 + Conv2D(64) 18,496 + Conv2D(128) 73,856 + Dense(512) 44,302,848 + Dense(1) 513.
    model = SeedCNN(spatial_dims=2, in_channels=3, out_channels=1, image_size=(224, 224))
    assert sum(p.numel() for p in model.parameters()) == 44_396_609
    assert model.head[1].in_features == 26 * 26 * 128
    with torch.no_grad():
        assert model(torch.randn(2, 3, 224, 224)).shape == (2, 1)


def test_seed_cnn_3d_and_1d() -> None:
    volume = SeedCNN(spatial_dims=3, in_channels=1, out_channels=3, image_size=(24, 28, 32), dense=16)
    with torch.no_grad():
        assert volume(torch.randn(2, 1, 24, 28, 32)).shape == (2, 3)
    assert isinstance(volume.target_layer[0], torch.nn.Conv3d)
    assert volume.target_layer[0].out_channels == 128
    signal = SeedCNN(spatial_dims=1, in_channels=12, out_channels=2, image_size=(64,), dense=8)
    with torch.no_grad():
        assert signal(torch.randn(3, 12, 64)).shape == (3, 2)


@pytest.mark.parametrize(("dims", "size"), [(1, (40,)), (2, (30, 34)), (3, (24, 26, 28))])
def test_seed_cnn_trains_pool_first_with_the_same_outputs_and_gradients(dims: int, size: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = SeedCNN(spatial_dims=dims, in_channels=2, out_channels=3, image_size=size, dense=8)
    x = torch.randn(3, 2, *size)
    results, relu_sizes = [], []
    model.features[0][1].register_forward_hook(lambda m, inputs, out: relu_sizes.append(tuple(out.shape[2:])))
    for training in (True, False):  # pool → ReLU in training, the Keras order in evaluation
        model.train(training)
        model.zero_grad()
        out = model(x)
        (out * torch.arange(1.0, 4.0)).sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    (out_train, grads_train), (out_eval, grads_eval) = results
    assert torch.equal(out_train, out_eval)
    assert all(torch.equal(a, b) for a, b in zip(grads_train, grads_eval, strict=True))
    assert any(float(g.abs().sum()) > 0 for g in grads_train)
    convolved = tuple(s - 2 for s in size)
    assert relu_sizes == [tuple(s // 2 for s in convolved), convolved]  # the first ReLU ran on pooled maps
    model.pool_first = False  # the Keras order in training too (benchmarks/cpu_speedups.py's earlier variants)
    model.train()
    assert torch.equal(model(x).detach(), out_train)
    assert relu_sizes[-1] == convolved


def test_seed_cnn_rejects_wrong_sizes() -> None:
    model = SeedCNN(spatial_dims=2, in_channels=1, out_channels=1, image_size=(32, 32), dense=8)
    with pytest.raises(ValueError, match=r"built for image_size \(32, 32\)"):
        model(torch.randn(1, 1, 48, 48))
    with pytest.raises(ValueError, match="image_size must have 3 entries"):
        SeedCNN(spatial_dims=3, in_channels=1, out_channels=1, image_size=(32, 32))
    with pytest.raises(ValueError, match="too small"):
        SeedCNN(spatial_dims=2, in_channels=1, out_channels=1, image_size=(21, 21))
    # Through the registry, the same problems reach the user as MedDLError.
    with pytest.raises(MedDLError, match="seed_cnn"):
        build_model("seed_cnn", {"image_size": [8, 8]}, spatial_dims=2, in_channels=1, out_channels=1)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("out_channels", [1, 3])
def test_small_cnn_shapes(spatial_dims: int, out_channels: int) -> None:
    model = build_model("small_cnn", {}, spatial_dims=spatial_dims, in_channels=2, out_channels=out_channels)
    assert isinstance(model, SmallCNN)
    x = torch.randn(2, 2, *([16] * spatial_dims))
    with torch.no_grad():
        assert model(x).shape == (2, out_channels)
    # Grad-CAM's layer: the last conv block, at input / 4 resolution with the default three blocks.
    seen: list[torch.Size] = []
    handle = model.target_layer.register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
    with torch.no_grad():
        model(x)
    handle.remove()
    assert seen == [torch.Size([2, 64, *([4] * spatial_dims)])]
    assert not any(key.startswith("target_layer") for key in model.state_dict())


def test_small_cnn_any_input_size_and_widths() -> None:
    model = SmallCNN(spatial_dims=2, in_channels=1, out_channels=4, channels=(8, 8, 16, 16), dropout=0.2)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 40, 56)).shape == (1, 4)
    with pytest.raises(ValueError, match="spatial_dims"):
        SmallCNN(spatial_dims=4, in_channels=1, out_channels=1)


def test_image_size_is_a_user_parameter() -> None:
    assert "image_size" in user_parameters("seed_cnn")
    assert "spatial_dims" not in user_parameters("seed_cnn")
    assert set(user_parameters("small_cnn")) == {"channels", "pools", "global_pool", "dropout"}


def _receptive_field(model: SmallCNN, size: int = 48) -> int:
    """Width of the input region that moves the target layer's centre unit (its receptive field), in pixels."""
    model.eval()
    x = torch.randn(1, 1, size, size, generator=torch.Generator().manual_seed(0), requires_grad=True)
    seen: list[torch.Tensor] = []
    handle = model.target_layer.register_forward_hook(lambda _m, _i, out: seen.append(out))
    model(x)
    handle.remove()
    grid = seen[0].shape[-1]
    seen[0][0, :, grid // 2, grid // 2].sum().backward()
    columns = torch.nonzero(x.grad[0, 0].abs().sum(dim=0))
    return int(columns.max() - columns.min() + 1)


def test_fewer_pools_give_a_finer_grid_with_about_the_same_receptive_field() -> None:
    torch.manual_seed(0)
    grids = {}
    fields = {}
    for pools in (2, 1, 0):
        model = SmallCNN(spatial_dims=2, in_channels=1, out_channels=1, pools=pools)
        with torch.no_grad():
            grids[pools] = tuple(model.features(torch.zeros(1, 1, 64, 64)).shape[2:])  # the target layer's output
        fields[pools] = _receptive_field(model)
    assert grids == {2: (16, 16), 1: (32, 32), 0: (64, 64)}
    # Each pool left out doubles the dilation after it: 3×3 convs at dilation 1, 2, 4 without pools.
    dilations = [m.dilation for m in SmallCNN(2, 1, 1, pools=0).modules() if isinstance(m, torch.nn.Conv2d)]
    assert dilations == [(1, 1), (2, 2), (4, 4)]
    assert fields[2] == 18 and 14 <= fields[1] <= 18 and 14 <= fields[0] <= 18, fields


def test_global_max_pool_head_and_bad_arguments() -> None:
    model = SmallCNN(spatial_dims=2, in_channels=1, out_channels=2, global_pool="max")
    model.eval()
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 13:16, 13:16] = 3.0
    shifted = torch.roll(x, shifts=(8, -4), dims=(2, 3))
    with torch.no_grad():
        # A small bright spot scores the same wherever it lies (away from the edges, on the pooling grid).
        torch.testing.assert_close(model(x), model(shifted))
        assert model(x).shape == (1, 2)
    with pytest.raises(ValueError, match="pools must be between 0 and len\\(channels\\) - 1 = 2, got 3"):
        SmallCNN(spatial_dims=2, in_channels=1, out_channels=1, pools=3)
    with pytest.raises(ValueError, match="global_pool must be 'avg' or 'max', got 'sum'"):
        SmallCNN(spatial_dims=2, in_channels=1, out_channels=1, global_pool="sum")

"""Signal networks: shapes, the founding LSTM's parameter count against Keras', and learning toy tasks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from meddl.models.registry import build_model
from meddl.models.signal import CNN1D, CNNLSTM, SeedLSTM, keras_lstm_parameters


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_keras_parameter_count_of_the_founding_lstm() -> None:
    keras = keras_lstm_parameters(1, 64) + 2 * keras_lstm_parameters(64, 64) + (64 + 1)
    assert (keras_lstm_parameters(1, 64), keras_lstm_parameters(64, 64)) == (16_896, 33_024)
    assert keras == 83_009


def test_seed_lstm_has_keras_count_plus_one_extra_bias_per_gate_and_layer() -> None:
    model = SeedLSTM(in_channels=1, out_channels=1)
    assert _count(model) == 83_777
    extra_biases = sum(p.numel() for name, p in model.lstm.named_parameters() if name.startswith("bias_hh"))
    assert extra_biases == 3 * 4 * 64
    assert _count(model) - extra_biases == 83_009
    assert model.lstm.num_layers == 3 and model.lstm.hidden_size == 64 and model.head.out_features == 1
    forget = model.lstm.bias_ih_l0[64:128]
    assert torch.all(forget == 1.0)  # Keras' unit_forget_bias


@pytest.mark.parametrize(
    ("arch", "params"),
    [
        ("seed_lstm", {}),
        ("seed_lstm", {"downsample": 5, "units": 16}),
        ("cnn1d", {}),
        ("cnn1d", {"channels": [8, 16], "kernel_size": 5}),
        ("cnn_lstm", {}),
    ],
)
def test_registered_models_map_batches_of_signals_to_logits(arch: str, params: dict) -> None:
    torch.manual_seed(0)
    model = build_model(arch, params, in_channels=12, out_channels=3)
    out = model(torch.randn(2, 12, 500))
    assert out.shape == (2, 3) and torch.isfinite(out).all()


def test_downsample_pools_the_input_before_the_lstm() -> None:
    torch.manual_seed(0)
    model = SeedLSTM(1, 1, downsample=5)
    steps: list[int] = []
    model.lstm.register_forward_hook(lambda module, inputs, output: steps.append(inputs[0].shape[1]))
    model(torch.randn(2, 1, 2500))
    assert steps == [500]
    with pytest.raises(ValueError, match="downsample must be a positive integer"):
        SeedLSTM(1, 1, downsample=0)


def test_cnns_expose_a_convolutional_target_layer() -> None:
    cnn = CNN1D(1, 1, channels=(8, 16))
    hybrid = CNNLSTM(1, 1, channels=(8, 16))
    assert cnn.target_layer is cnn.blocks[-1] and hybrid.target_layer is hybrid.features[-1]
    captured: list[torch.Size] = []
    cnn.target_layer.register_forward_hook(lambda module, inputs, output: captured.append(output.shape))
    cnn(torch.randn(1, 1, 256))
    assert captured == [torch.Size([1, 16, 32])]  # stem /2, two blocks /2 each


def _sinusoids(n: int, seed: int, length: int, fs: float, target: str) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    frequency = rng.uniform(1.0, 5.0, n)
    amplitude = rng.uniform(0.5, 2.0, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    time = np.arange(length) / fs
    x = amplitude[:, None] * np.sin(2 * np.pi * frequency[:, None] * time + phase[:, None])  # (n, L)
    x = x + 0.05 * rng.standard_normal(x.shape)
    y = (frequency - 3.0) / 1.15 if target == "frequency" else (amplitude - 1.25) / 0.43  # standardised
    return torch.tensor(x[:, None], dtype=torch.float32), torch.tensor(y[:, None], dtype=torch.float32)


def _r2_after_training(model: nn.Module, target: str, length: int, fs: float, epochs: int, lr: float) -> float:
    x, y = _sinusoids(256, 0, length, fs, target)
    x_test, y_test = _sinusoids(128, 1, length, fs, target)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 32):
            batch = order[start : start + 32]
            optimiser.zero_grad()
            nn.functional.mse_loss(model(x[batch]), y[batch]).backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        prediction = model(x_test)
    return float(1 - ((prediction - y_test) ** 2).mean() / y_test.var())


@pytest.mark.parametrize(
    ("make", "epochs", "lr"),
    [
        (lambda: CNN1D(1, 1, channels=(16, 32)), 6, 1e-2),
        (lambda: CNNLSTM(1, 1, channels=(16, 32), units=32), 8, 1e-2),
    ],
    ids=["cnn1d", "cnn_lstm"],
)
def test_cnns_learn_the_frequency_of_a_sinusoid(make, epochs: int, lr: float) -> None:
    torch.manual_seed(0)
    assert _r2_after_training(make(), "frequency", length=200, fs=50.0, epochs=epochs, lr=lr) > 0.8


def test_seed_lstm_learns_the_amplitude_of_a_sinusoid() -> None:
    torch.manual_seed(0)
    model = SeedLSTM(1, 1, downsample=2)
    assert _r2_after_training(model, "amplitude", length=80, fs=25.0, epochs=10, lr=5e-3) > 0.8

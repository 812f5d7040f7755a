"""Integrated gradients over time and the attribution-coloured trace."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from torch import nn

from meddl.explain.signals import integrated_gradients_signal, trace_png
from meddl.models.signal import SeedLSTM


class _WindowSum(nn.Module):
    """Output k = (k + 1) × the sum of channel 0 over samples 100–149, squared for output 1 (non-linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window = x[:, 0, 100:150].sum(dim=1) * self.scale  # (B,)
        return torch.stack([window, 2 * window**2], dim=1)  # (B, 2)


def test_attribution_lies_where_the_output_looks_and_is_complete() -> None:
    x = torch.randn(3, 2, 300, generator=torch.Generator().manual_seed(0))
    model = _WindowSum()
    attributions = integrated_gradients_signal(model, x, target=0, n_steps=8)
    assert attributions.shape == (3, 2, 300) and attributions.dtype == np.float32
    assert np.all(attributions[:, 1] == 0) and np.all(attributions[:, 0, :100] == 0)
    np.testing.assert_allclose(attributions[:, 0, 100:150], x[:, 0, 100:150].numpy(), rtol=1e-5, atol=1e-6)
    # Completeness on the non-linear output: attributions sum to f(x) − f(0).
    quadratic = integrated_gradients_signal(model, x, target=[1, 1, 1], n_steps=32)
    expected = 2 * x[:, 0, 100:150].sum(dim=1).numpy() ** 2
    np.testing.assert_allclose(quadratic.sum(axis=(1, 2)), expected, rtol=1e-3)


def test_integrated_gradients_on_the_lstm_restores_training_mode() -> None:
    torch.manual_seed(0)
    model = SeedLSTM(1, 1, units=8, downsample=4)
    model.train()
    x = torch.randn(2, 1, 200)
    attributions = integrated_gradients_signal(model, x, n_steps=16)
    assert model.training
    with torch.no_grad():
        model.eval()
        difference = (model(x) - model(torch.zeros_like(x)))[:, 0].numpy()
    np.testing.assert_allclose(attributions.sum(axis=(1, 2)), difference, rtol=0.05, atol=1e-3)
    with pytest.raises(ValueError, match=r"target must be an int or have one entry per signal \(2\)"):
        integrated_gradients_signal(model, x, target=[0, 0, 0])


def _pixels(png: bytes) -> np.ndarray:
    return imread(io.BytesIO(png), format="png")[..., :3]


def _strongly_red(image: np.ndarray) -> int:
    return int(((image[..., 0] > 0.6) & (image[..., 1] < 0.3) & (image[..., 2] < 0.3)).sum())


def test_trace_png_colours_the_line_where_attribution_is_high(tmp_path: Path) -> None:
    fs = 100.0
    trace = np.sin(np.linspace(0, 20, 500))[None].repeat(4, axis=0)  # 4 channels, only 3 drawn
    quiet = np.zeros_like(trace)
    loud = np.zeros_like(trace)
    loud[:, 200:260] = 1.0
    plain = trace_png(trace, quiet, fs, channels=["I", "II", "III", "aVR"], title="rhythm")
    coloured = trace_png(trace, loud, fs, title="rhythm", path=tmp_path / "out" / "trace.png")
    assert plain.startswith(b"\x89PNG\r\n\x1a\n") and (tmp_path / "out" / "trace.png").read_bytes() == coloured
    plain_image, coloured_image = _pixels(plain), _pixels(coloured)
    assert plain_image.shape == coloured_image.shape and plain_image.shape[0] == 640  # 1 + 1.8 × 3 in at 100 dpi
    # Only the colour bar is red in the plain trace; the highlighted segment adds red pixels on three channels.
    assert _strongly_red(coloured_image) > _strongly_red(plain_image) + 300


def test_trace_png_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"must both be \(C, L\)"):
        trace_png(np.zeros((2, 100)), np.zeros((1, 100)), 100.0)

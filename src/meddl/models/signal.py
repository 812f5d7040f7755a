"""Networks for physiological signals: input ``(B, C, L)`` (leads × samples), output ``(B, out_channels)`` logits.

* ``seed_lstm`` — the founding document's time-series regressor: three stacked LSTM(64) layers (the first two
  pass on their whole sequence, the last its final state) and a linear output.
* ``cnn1d`` — a residual 1D CNN (ResNet-style blocks with stride 2, global average pooling, linear head).
* ``cnn_lstm`` — convolution/pooling blocks shorten the sequence, then an LSTM reads it.

The CNNs expose ``target_layer`` (their last convolutional block) for Grad-CAM.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional

from meddl.models.registry import register_model

__all__ = ["CNN1D", "CNNLSTM", "SeedLSTM", "keras_lstm_parameters"]


def keras_lstm_parameters(input_dim: int, units: int) -> int:
    """Parameters of one Keras ``LSTM(units)`` layer: 4 gates × (kernel + recurrent kernel + one bias)."""
    return 4 * (units * (input_dim + units) + units)


def _keras_initialise(lstm: nn.LSTM) -> None:
    """Keras' LSTM initialisation: Glorot-uniform input weights, orthogonal recurrent weights, zero biases
    with the forget gate's bias at 1 (``unit_forget_bias=True``), so the two frameworks start alike."""
    hidden = lstm.hidden_size
    for name, parameter in lstm.named_parameters():
        if name.startswith("weight_ih"):
            for gate in range(4):
                nn.init.xavier_uniform_(parameter.data[gate * hidden : (gate + 1) * hidden])
        elif name.startswith("weight_hh"):
            for gate in range(4):
                nn.init.orthogonal_(parameter.data[gate * hidden : (gate + 1) * hidden])
        elif name.startswith("bias"):
            nn.init.zeros_(parameter.data)
            if name.startswith("bias_ih"):  # PyTorch gate order: input, forget, cell, output
                parameter.data[hidden : 2 * hidden] = 1.0


def _downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Strided average pooling by ``factor`` along time (a remainder shorter than ``factor`` is dropped)."""
    if factor == 1:
        return x
    if x.shape[-1] < factor:
        raise ValueError(f"input of {x.shape[-1]} samples is shorter than downsample={factor}")
    return functional.avg_pool1d(x, kernel_size=factor, stride=factor)


@register_model("seed_lstm")
class SeedLSTM(nn.Module):
    """The founding document's LSTM regressor: LSTM(64) → LSTM(64) → LSTM(64) → Dense(out).

    Keras counterpart::

        Sequential([LSTM(64, return_sequences=True, input_shape=(time_steps, 1)),
                    LSTM(64, return_sequences=True), LSTM(64), Dense(1)])   # loss "mse"

    Here the three layers are one ``nn.LSTM(num_layers=3)`` (each layer reads the full output sequence of the
    one below, as ``return_sequences=True`` does) and the last layer's final hidden state feeds the linear
    output; tanh/sigmoid activations and Keras' initialisation (including the forget-gate bias of 1) are kept.

    Parameter count: Keras has one bias per gate, PyTorch two (``b_ih`` and ``b_hh``), which only ever appear
    as their sum — so the functions the two can represent are identical, but PyTorch has ``4 · units`` more
    parameters per layer. For 1 input channel and 1 output: Keras 16,896 + 33,024 + 33,024 + 65 = 83,009;
    PyTorch 83,777 (= 83,009 + 3 × 256). Both biases are kept trainable rather than freezing ``b_hh`` at 0:
    freezing changes nothing the model can learn, but it would need special cases in the optimiser, the
    checkpoint and the fused kernels. :func:`keras_lstm_parameters` gives the Keras figure.

    An LSTM steps through time one sample at a time, so 10 s at 250 Hz (2,500 steps) is slow on a CPU.
    ``downsample=k`` first averages the input over non-overlapping windows of k samples (strided average
    pooling, a crude low-pass + decimation), e.g. ``downsample=5`` reads 250 Hz as 50 Hz (500 steps).

    Args:
        in_channels: input channels (leads).
        out_channels: 1 for regression or binary, the number of classes for multiclass.
        units: LSTM width (64 in the founding document).
        downsample: integer factor of the average pooling before the LSTM (1: none).
        dropout: dropout between the LSTM layers and before the output (0 in the founding document).
    """

    def __init__(
        self, in_channels: int, out_channels: int, units: int = 64, downsample: int = 1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if units < 1:
            raise ValueError(f"units must be positive, got {units}")
        if int(downsample) != downsample or downsample < 1:
            raise ValueError(f"downsample must be a positive integer, got {downsample}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.downsample = int(downsample)
        self.lstm = nn.LSTM(in_channels, units, num_layers=3, batch_first=True, dropout=dropout)
        _keras_initialise(self.lstm)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(units, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, L) → (B, out_channels)."""
        assert x.ndim == 3, f"expected (B, C, L), got shape {tuple(x.shape)}"
        sequence = _downsample(x, self.downsample).transpose(1, 2)  # (B, T, C)
        _, (hidden, _) = self.lstm(sequence)  # hidden: (3, B, units)
        return self.head(self.dropout(hidden[-1]))  # (B, out_channels)


class _ResidualBlock1d(nn.Module):
    """conv(k, stride) → BN → ReLU → conv(k) → BN, plus a shortcut (1×1 conv + BN when the shape changes), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        padding = kernel_size // 2
        self.body = nn.Sequential(
            nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm1d(out_channels),
            nn.ReLU(),
            nn.Conv1d(out_channels, out_channels, kernel_size, padding=padding, bias=False),
            nn.BatchNorm1d(out_channels),
        )
        self.shortcut: nn.Module = (
            nn.Sequential(
                nn.Conv1d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm1d(out_channels)
            )
            if stride != 1 or in_channels != out_channels
            else nn.Identity()
        )
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(x) + self.shortcut(x))


@register_model("cnn1d")
class CNN1D(nn.Module):
    """A residual 1D CNN: a stem convolution, residual blocks that halve the length, global average pool, linear.

    Each block doubles the receptive field's reach; with the defaults a 2,500-sample record ends at 1/32 of its
    length (about 0.13 s per step at 250 Hz), fine enough for beat-level Grad-CAM.

    Args:
        in_channels: input channels (leads).
        out_channels: 1 for regression or binary, the number of classes for multiclass.
        channels: width of each residual block (each has stride 2).
        kernel_size: odd convolution kernel length.
        dropout: dropout before the linear head.

    Attributes:
        target_layer: the last residual block, the layer Grad-CAM explains.
    """

    bf16 = True  # train.precision: auto trains it in bf16 where the hardware has it (benchmarks/precision.py)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int] = (32, 64, 128, 128),
        kernel_size: int = 7,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must list at least one block width")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        width = int(channels[0])
        self.stem = nn.Sequential(
            nn.Conv1d(in_channels, width, kernel_size, stride=2, padding=kernel_size // 2, bias=False),
            nn.BatchNorm1d(width),
            nn.ReLU(),
        )
        blocks = []
        for size in channels:
            blocks.append(_ResidualBlock1d(width, int(size), kernel_size, stride=2))
            width = int(size)
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),  # (B, C)
            nn.Dropout(dropout),
            nn.Linear(width, out_channels),
        )

    @property
    def target_layer(self) -> nn.Module:
        """The last residual block."""
        return self.blocks[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, L) → (B, out_channels)."""
        return self.head(self.blocks(self.stem(x)))


@register_model("cnn_lstm")
class CNNLSTM(nn.Module):
    """Convolution blocks (conv → BN → ReLU → max pool) shorten the signal, then an LSTM reads the features.

    With the defaults the sequence the LSTM reads is 1/16 of the input (2,500 samples → 156 steps), which
    keeps the recurrent part fast on a CPU.

    Args:
        in_channels: input channels (leads).
        out_channels: 1 for regression or binary, the number of classes for multiclass.
        channels: width of each convolution block.
        kernel_size: odd convolution kernel length.
        pool: max-pooling factor after each block.
        units: LSTM width.
        dropout: dropout before the linear head.

    Attributes:
        target_layer: the last convolution block.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 7,
        pool: int = 4,
        units: int = 64,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must list at least one block width")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
        if pool < 1 or units < 1:
            raise ValueError(f"pool and units must be positive, got pool={pool}, units={units}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        blocks = []
        width = in_channels
        for size in channels:
            blocks.append(
                nn.Sequential(
                    nn.Conv1d(width, int(size), kernel_size, padding=kernel_size // 2, bias=False),
                    nn.BatchNorm1d(int(size)),
                    nn.ReLU(),
                    nn.MaxPool1d(pool, ceil_mode=True),
                )
            )
            width = int(size)
        self.features = nn.Sequential(*blocks)
        self.lstm = nn.LSTM(width, units, batch_first=True)
        _keras_initialise(self.lstm)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(units, out_channels)

    @property
    def target_layer(self) -> nn.Module:
        """The last convolution block."""
        return self.features[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, L) → (B, out_channels)."""
        sequence = self.features(x).transpose(1, 2)  # (B, T, C)
        _, (hidden, _) = self.lstm(sequence)  # hidden: (1, B, units)
        return self.head(self.dropout(hidden[-1]))  # (B, out_channels)

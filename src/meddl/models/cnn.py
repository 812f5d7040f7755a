"""Convolutional networks for images (2D, 3D) and signals (1D), with one code path for every dimensionality.

* ``seed_cnn`` — the founding document's Keras model, layer for layer: three valid 3×3 convolutions (32, 64, 128
  filters) each followed by 2× max pooling, a 512-unit dense layer and the output layer. At 224×224×3 with one
  output it has the Keras parameter count, 44,396,609.
* ``small_cnn`` — a compact network for small images and the demo: conv → batch norm → ReLU blocks, global
  average (or max) pooling and a linear head. It trains on 64×64 phantoms in seconds on a CPU. ``pools`` trades
  2× pools for dilation, so the last block keeps a finer grid for Grad-CAM at about the same receptive field.

Both expose ``target_layer``, the last convolutional block, for Grad-CAM (``meddl.explain.images.grad_cam``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from meddl.models.registry import register_model

__all__ = ["SeedCNN", "SmallCNN"]

_CONV: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_MAX_POOL: dict[int, type[nn.Module]] = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_BATCH_NORM: dict[int, type[nn.Module]] = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_ADAPTIVE_AVG_POOL: dict[int, type[nn.Module]] = {
    1: nn.AdaptiveAvgPool1d,
    2: nn.AdaptiveAvgPool2d,
    3: nn.AdaptiveAvgPool3d,
}
_ADAPTIVE_MAX_POOL: dict[int, type[nn.Module]] = {
    1: nn.AdaptiveMaxPool1d,
    2: nn.AdaptiveMaxPool2d,
    3: nn.AdaptiveMaxPool3d,
}
_GLOBAL_POOL = {"avg": _ADAPTIVE_AVG_POOL, "max": _ADAPTIVE_MAX_POOL}


def _check_spatial_dims(spatial_dims: int) -> None:
    if spatial_dims not in _CONV:
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}")


def spatial_size(image_size: Sequence[int] | int, spatial_dims: int) -> tuple[int, ...]:
    """``image_size`` as one positive length per spatial axis (an int is repeated on every axis).

    Raises:
        ValueError: if the number of entries is not ``spatial_dims`` or a length is not positive.
    """
    size = (int(image_size),) * spatial_dims if isinstance(image_size, int) else tuple(int(s) for s in image_size)
    if len(size) != spatial_dims:
        raise ValueError(f"image_size must have {spatial_dims} entries for spatial_dims={spatial_dims}, got {size}")
    if any(s < 1 for s in size):
        raise ValueError(f"image_size entries must be positive, got {size}")
    return size


@register_model("seed_cnn")
class SeedCNN(nn.Module):
    """The founding document's CNN: 3 × (valid 3×3 conv + ReLU → 2× max pool) → dense 512 + ReLU → output.

    PyTorch counterpart of the Keras ``Sequential`` model (``Conv2D(32) … Dense(512) → Dense(1)``); the output
    layer returns logits (the loss applies the sigmoid or softmax). The dense layer's width depends on the
    input size, so the network is built for one ``image_size`` and refuses other sizes.

    Args:
        spatial_dims: 1 (signals), 2 (images) or 3 (volumes).
        in_channels: input channels (3 for RGB, 1 for CT/MRI).
        out_channels: 1 for binary or regression, the number of classes for multiclass.
        image_size: spatial size the network is built for, e.g. ``(224, 224)``; one entry per spatial axis.
        dense: width of the hidden dense layer (512 in the founding document).
        dropout: dropout before the output layer (0 in the founding document).

    Attributes:
        target_layer: the last convolution + ReLU block, the layer Grad-CAM explains.
    """

    channels_last = True  # the trainer and inference lay 2-D/3-D inputs out NHWC for oneDNN (runtime.py)
    bf16 = True  # train.precision: auto trains it in bf16 where the hardware has it (benchmarks/precision.py)
    pool_first = True  # in training, pool before the ReLU (see forward); False keeps the Keras order throughout

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        image_size: Sequence[int] | int = (224, 224),
        dense: int = 512,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_spatial_dims(spatial_dims)
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        size = spatial_size(image_size, spatial_dims)
        conv, pool = _CONV[spatial_dims], _MAX_POOL[spatial_dims]
        blocks: list[nn.Module] = []
        width = in_channels
        for filters in (32, 64, 128):
            blocks.append(nn.Sequential(conv(width, filters, kernel_size=3), nn.ReLU()))
            blocks.append(pool(kernel_size=2))
            # Valid 3×3 convolution, then floor-halving by the pool, as in Keras.
            size = tuple((s - 2) // 2 for s in size)
            width = filters
        if min(size) < 1:
            raise ValueError(
                f"image_size {spatial_size(image_size, spatial_dims)} is too small for seed_cnn (needs at least 22)"
            )
        self.image_size = spatial_size(image_size, spatial_dims)
        self.features = nn.Sequential(*blocks)
        flat = width * int(torch.tensor(size).prod())
        self.head = nn.Sequential(
            nn.Flatten(),  # (B, C·∏spatial)
            nn.Linear(flat, dense),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(dense, out_channels),
        )

    @property
    def target_layer(self) -> nn.Module:
        """The last convolution + ReLU block (a property, so its weights are not saved twice)."""
        return self.features[-2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *image_size) → (B, out_channels) logits.

        ReLU and max pooling commute (the max of rectified values is the rectified max), so in training each block
        pools first and rectifies the pooled quarter: the same outputs and gradients, bit for bit, with a quarter of
        the ReLU's memory traffic forward and backward (model A: 272 → 226 ms a step on 2 cores). Evaluation keeps
        the Keras order, so Grad-CAM still sees the last block's rectified maps before pooling."""
        if tuple(x.shape[2:]) != self.image_size:
            raise ValueError(f"seed_cnn was built for image_size {self.image_size}, got input {tuple(x.shape[2:])}")
        if not (self.training and self.pool_first):
            return self.head(self.features(x))
        for i in range(0, len(self.features), 2):
            block: nn.Sequential = self.features[i]  # type: ignore[assignment]  # (conv, ReLU), then the pool
            x = block[1](self.features[i + 1](block[0](x)))
        return self.head(x)


@register_model("small_cnn")
class SmallCNN(nn.Module):
    """A compact CNN: conv 3 → batch norm → ReLU blocks, 2× max pool between the first blocks, global pool, linear.

    Any input size works (the global pool removes the spatial axes). By default a 2× max pool sits between every
    two blocks, so the last block has input / 2^(len(channels) − 1) resolution (16×16 on 64×64 images).
    ``pools`` keeps fewer of them, the first ones, and replaces each one left out by doubling the dilation of the
    blocks after it (the "atrous" trick of DeepLab): the receptive field stays the same while the last block, the
    one Grad-CAM explains, keeps a finer grid (``pools=1``: 32×32 on 64×64 images), so heat maps can point at
    lesions a few pixels wide. ``global_pool="max"`` scores an image by its most suspicious location instead of
    the mean over the image, which suits findings that are small and may be anywhere.

    Args:
        spatial_dims: 1 (signals), 2 (images) or 3 (volumes).
        in_channels: input channels.
        out_channels: 1 for binary or regression, the number of classes for multiclass.
        channels: width of each convolution block.
        pools: how many 2× max pools to keep, between the first blocks (0 to ``len(channels) − 1``); default
            ``len(channels) − 1``, one between every two blocks.
        global_pool: ``"avg"`` (global average pooling) or ``"max"`` (global max pooling) before the head.
        dropout: dropout before the linear head.

    Attributes:
        target_layer: the last convolution block, the layer Grad-CAM explains.
    """

    channels_last = True  # the trainer and inference lay 2-D/3-D inputs out NHWC for oneDNN (runtime.py)
    bf16 = True  # train.precision: auto trains it in bf16 where the hardware has it (benchmarks/precision.py)

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int] = (16, 32, 64),
        pools: int | None = None,
        global_pool: str = "avg",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_spatial_dims(spatial_dims)
        if not channels:
            raise ValueError("channels must list at least one block width")
        n_pools = len(channels) - 1 if pools is None else int(pools)
        if not 0 <= n_pools <= len(channels) - 1:
            raise ValueError(f"pools must be between 0 and len(channels) - 1 = {len(channels) - 1}, got {pools}")
        if global_pool not in _GLOBAL_POOL:
            raise ValueError(f"global_pool must be 'avg' or 'max', got {global_pool!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        conv, norm, pool = _CONV[spatial_dims], _BATCH_NORM[spatial_dims], _MAX_POOL[spatial_dims]
        layers: list[nn.Module] = []
        width = in_channels
        dilation = 1
        for i, size in enumerate(channels):
            if 0 < i <= n_pools:
                layers.append(pool(kernel_size=2))
            elif i > n_pools:
                dilation *= 2  # a pool left out: dilate instead, keeping the receptive field
            layers.append(
                nn.Sequential(
                    conv(width, int(size), kernel_size=3, padding=dilation, dilation=dilation, bias=False),
                    norm(int(size)),
                    nn.ReLU(),
                )
            )
            width = int(size)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            _GLOBAL_POOL[global_pool][spatial_dims](1),
            nn.Flatten(),  # (B, C)
            nn.Dropout(dropout),
            nn.Linear(width, out_channels),
        )

    @property
    def target_layer(self) -> nn.Module:
        """The last convolution block (a property, so its weights are not saved twice)."""
        return self.features[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *spatial) → (B, out_channels) logits."""
        return self.head(self.features(x))

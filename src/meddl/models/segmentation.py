"""Segmentation networks: MONAI's U-Net and SegResNet under MedDL's constructor convention.

Every network is built as ``(spatial_dims, in_channels, out_channels, ...)`` and maps ``(B, C, *spatial)`` to
``(B, out_channels, *spatial)`` logits, one channel per label plus the background (channel 0). The input's spatial
size must be divisible by ``2 ** depth`` (the plan step chooses patch sizes that are); sliding-window inference
(:mod:`meddl.modalities.segmentation`) covers images of any size with such patches.

``head`` names the final convolution, whose shape depends on the number of labels: transfer learning
(``model.pretrained``) swaps it when the labels differ and ``freeze: [encoder]`` freezes everything else.
MONAI is imported when a network is built, not with this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from meddl.models.registry import register_model

__all__ = ["SEGMENTATION_ARCHS", "SegResNet", "UNet"]

SEGMENTATION_ARCHS = ("unet", "segresnet")


@register_model("unet")
class UNet(nn.Module):
    """MONAI's residual U-Net (``monai.networks.nets.UNet``), the nnU-Net-like default.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: the labels plus the background.
        channels: feature maps per level, from the top; ``len(channels) - 1`` halvings.
        num_res_units: residual units per block (0: plain convolutions).
        dropout: dropout rate in every block.
        norm: ``instance`` (nnU-Net's choice for small batches) or ``batch``.
    """

    bf16 = True  # train.precision: auto trains it in bf16 where the hardware has it
    segmentation = True  # outputs one map per label, the same size as the input

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int] = (16, 32, 64, 128),
        num_res_units: int = 2,
        dropout: float = 0.0,
        norm: str = "instance",
    ) -> None:
        super().__init__()
        from monai.networks.nets import UNet as MonaiUNet

        if len(channels) < 2:
            raise ValueError(f"channels needs at least two levels, got {list(channels)}")
        self.net = MonaiUNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            channels=tuple(int(c) for c in channels),
            strides=(2,) * (len(channels) - 1),
            num_res_units=num_res_units,
            dropout=dropout,
            norm=norm,
        )
        self.divisor = 2 ** (len(channels) - 1)

    @property
    def head(self) -> str:
        """``net.model.2``: the top up-sampling block, whose convolutions output one map per label."""
        return "net.model.2"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *spatial) → (B, out_channels, *spatial) logits."""
        return self.net(x)


@register_model("segresnet")
class SegResNet(nn.Module):
    """MONAI's SegResNet (Myronenko 2018: a residual encoder and a light decoder).

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: the labels plus the background.
        init_filters: feature maps of the first level (doubled at each of the three halvings).
        dropout: dropout rate after the first convolution.
    """

    bf16 = True
    segmentation = True

    def __init__(
        self, spatial_dims: int, in_channels: int, out_channels: int, init_filters: int = 16, dropout: float = 0.0
    ) -> None:
        super().__init__()
        from monai.networks.nets import SegResNet as MonaiSegResNet

        self.net = MonaiSegResNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            init_filters=init_filters,
            dropout_prob=dropout or None,
        )
        self.divisor = 8

    @property
    def head(self) -> str:
        """``net.conv_final``: the output convolution (its shape depends on the labels)."""
        return "net.conv_final"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *spatial) → (B, out_channels, *spatial) logits."""
        return self.net(x)

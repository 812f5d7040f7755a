"""Segmentation networks: MONAI's U-Net, SegResNet, UNETR and Swin UNETR under MedDL's constructor convention.

Every network is built as ``(spatial_dims, in_channels, out_channels, ...)`` and maps ``(B, C, *spatial)`` to
``(B, out_channels, *spatial)`` logits, one channel per label plus the background (channel 0). The input's spatial
size must be a multiple of the network's :meth:`patch_divisor` (``2 ** depth``, the plan step chooses patch sizes
that are, and at least twice it, so that the deepest feature map keeps more than one voxel for instance norm);
sliding-window inference (:mod:`meddl.modalities.segmentation`) covers images of any size with such patches. UNETR
is built for one input size (its transformer's position embedding): the plan's patch, given as ``input_size``.

``head`` names the final convolution, whose shape depends on the number of labels: transfer learning
(``model.pretrained``) swaps it when the labels differ and ``freeze: [encoder]`` freezes everything else.
MONAI is imported when a network is built, not with this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from meddl.models.registry import register_model

__all__ = ["SEGMENTATION_ARCHS", "UNETR", "SegResNet", "SwinUNETR", "UNet"]

SEGMENTATION_ARCHS = ("unet", "segresnet", "unetr", "swin_unetr")


class _SegmentationNetwork(nn.Module):
    """What the segmentation networks share: a MONAI network in ``net``, the head transfer learning swaps, the patch
    divisor the plan rounds to, and one logit map per label."""

    bf16 = True  # train.precision: auto trains it in bf16 where the hardware has it
    segmentation = True  # outputs one map per label, the same size as the input
    divisor = 8  # every patch axis a multiple of this (see patch_divisor)
    head_name = "net.out"  # the output convolution (its shape depends on the labels)
    net: nn.Module

    @classmethod
    def patch_divisor(cls, params: Mapping[str, Any]) -> int:
        """Every patch axis must be a multiple of this, given the network's ``model.*`` parameters."""
        return cls.divisor

    @property
    def head(self) -> str:
        """The module whose shape depends on the labels (``model.pretrained`` swaps it when they differ)."""
        return self.head_name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *spatial) → (B, out_channels, *spatial) logits."""
        return self.net(x)


@register_model("unet")
class UNet(_SegmentationNetwork):
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

    head_name = "net.model.2"  # the top up-sampling block, whose convolutions output one map per label

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
        self.divisor = self.patch_divisor({"channels": channels})  # this network's, from its levels

    @classmethod
    def patch_divisor(cls, params: Mapping[str, Any]) -> int:
        """2 to the number of halvings (``len(channels) - 1``)."""
        return int(2 ** (len(params.get("channels", (16, 32, 64, 128))) - 1))


@register_model("segresnet")
class SegResNet(_SegmentationNetwork):
    """MONAI's SegResNet (Myronenko 2018: a residual encoder and a light decoder).

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: the labels plus the background.
        init_filters: feature maps of the first level (doubled at each of the three halvings).
        dropout: dropout rate after the first convolution.
    """

    divisor = 8  # three halvings
    head_name = "net.conv_final"

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


@register_model("unetr")
class UNETR(_SegmentationNetwork):
    """MONAI's UNETR (Hatamizadeh 2022): a ViT encoder on 16-voxel patches, its hidden states at layers 3, 6, 9 and
    12 decoded by convolutions. Built for one input size, the plan's patch (``input_size``, filled in by the
    segmentation modality); the defaults are the paper's (about 90 M parameters: give a smaller ``hidden_size``
    and ``mlp_dim`` to train on a CPU).

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: the labels plus the background.
        input_size: the patch size the network is built for (a multiple of 16 per axis).
        feature_size: feature maps of the convolutional decoder's top level.
        hidden_size: the transformer's width.
        mlp_dim: its feed-forward width.
        num_heads: attention heads (dividing ``hidden_size``).
        dropout: dropout rate in the transformer.
    """

    divisor = 16  # the ViT's 16-voxel patches

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        input_size: Sequence[int],
        feature_size: int = 16,
        hidden_size: int = 768,
        mlp_dim: int = 3072,
        num_heads: int = 12,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        from monai.networks.nets import UNETR as MonaiUNETR

        size = [int(v) for v in input_size]
        if len(size) != spatial_dims or any(v % 16 for v in size):
            raise ValueError(f"input_size must give {spatial_dims} sizes, each a multiple of 16; got {size}")
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size ({hidden_size}) must be a multiple of num_heads ({num_heads})")
        self.net = MonaiUNETR(
            in_channels=in_channels,
            out_channels=out_channels,
            img_size=size,
            feature_size=feature_size,
            hidden_size=hidden_size,
            mlp_dim=mlp_dim,
            num_heads=num_heads,
            dropout_rate=dropout,
            spatial_dims=spatial_dims,
        )


@register_model("swin_unetr")
class SwinUNETR(_SegmentationNetwork):
    """MONAI's Swin UNETR (Hatamizadeh 2022): a shifted-window transformer encoder over 2-voxel patches, merged
    four times, with a convolutional decoder. Any input size that is a multiple of 32 (at least 64 per axis).

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: the labels plus the background.
        feature_size: feature maps of the first stage (a multiple of 12; the paper's is 48, 24 trains on a CPU).
        depths: Swin blocks per stage (four stages).
        num_heads: attention heads per stage (each dividing that stage's width, ``feature_size * 2 ** stage``).
        window_size: the attention window, in patches per axis.
        dropout: dropout rate in the transformer.
    """

    divisor = 32  # the 2-voxel patch embedding merged four times

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        feature_size: int = 24,
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        from monai.networks.nets import SwinUNETR as MonaiSwinUNETR

        if feature_size % 12:
            raise ValueError(f"feature_size must be a multiple of 12, got {feature_size}")
        if len(depths) != 4 or len(num_heads) != 4:
            raise ValueError(f"depths and num_heads give the four stages; got {list(depths)} and {list(num_heads)}")
        widths = [feature_size * 2**stage for stage in range(4)]
        bad = [(w, h) for w, h in zip(widths, num_heads, strict=True) if w % int(h)]
        if bad:
            raise ValueError(f"num_heads must divide each stage's width {widths}; got {list(num_heads)}")
        self.net = MonaiSwinUNETR(
            in_channels=in_channels,
            out_channels=out_channels,
            feature_size=feature_size,
            depths=tuple(int(d) for d in depths),
            num_heads=tuple(int(h) for h in num_heads),
            window_size=int(window_size),
            drop_rate=dropout,
            spatial_dims=spatial_dims,
        )

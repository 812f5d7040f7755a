"""MONAI networks under MedDL's constructor convention, trained from scratch or from a local weights file.

``resnet18``, ``resnet34``, ``densenet121`` and ``vit`` wrap ``monai.networks.nets`` so that every network is
built as ``(spatial_dims, in_channels, out_channels, ...)``, returns logits of shape (B, out_channels) and
exposes ``target_layer`` for Grad-CAM. Nothing is ever downloaded: MONAI's ``pretrained=True`` paths are not
used. ``pretrained_weights`` names a file on this machine (``.safetensors``, or a PyTorch state dict read with
``torch.load(weights_only=True)``); its keys may be those of the wrapper (``net.conv1.weight``) or of the bare
MONAI network (``conv1.weight``), and must match the network exactly.

MONAI is imported when a network is built, not with this module, so registering the names costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from meddl.errors import MedDLError
from meddl.models.cnn import spatial_size
from meddl.models.pretrained import _read_state_dict
from meddl.models.registry import register_model

__all__ = ["DenseNet121", "ResNet18", "ResNet34", "ViT", "load_pretrained_weights"]

_PREFIX = "net."


def load_pretrained_weights(model: nn.Module, path: str | Path) -> None:
    """Load a local weights file into ``model`` in place, requiring every key and shape to match.

    Keys written by the bare MONAI network (without the wrapper's ``net.`` prefix) are accepted too.

    Args:
        model: the network to fill.
        path: a ``.safetensors`` file or a PyTorch state dict file.

    Raises:
        MedDLError: the file is missing or unreadable, or a key is missing, unexpected or of another shape;
            the message names the file and the first mismatched key.
    """
    path = Path(path)
    state = _read_state_dict(path)
    expected = model.state_dict()
    if set(state) != set(expected) and all(_PREFIX + k in expected for k in state):
        state = {_PREFIX + k: v for k, v in state.items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        raise MedDLError(
            f"model.pretrained_weights: {path} does not match the network: key {missing[0]!r} is missing "
            f"({len(missing)} missing, {len(unexpected)} unexpected)"
        )
    if unexpected:
        raise MedDLError(
            f"model.pretrained_weights: {path} does not match the network: unexpected key {unexpected[0]!r} "
            f"({len(unexpected)} unexpected)"
        )
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise MedDLError(
                f"model.pretrained_weights: {path} does not match the network: key {key!r} has shape "
                f"{tuple(state[key].shape)}, the network expects {tuple(tensor.shape)}"
            )
    model.load_state_dict(state, strict=True)


class _ResNet(nn.Module):
    """MONAI ResNet (basic blocks) as ``(spatial_dims, in_channels, out_channels)``; thin subclasses set the depth.

    Args:
        spatial_dims: 2 or 3 (1 works too).
        in_channels: input channels.
        out_channels: 1 for binary or regression, the number of classes for multiclass.
        conv1_t_size: kernel size of the first convolution.
        conv1_t_stride: stride of the first convolution. 2, as in the original ResNet (MONAI's default is 1,
            which quadruples the cost in 2D and octuples it in 3D).
        no_max_pool: skip the max pool after the first convolution (for small inputs).
        pretrained_weights: local weights file to start from, or None to train from scratch.

    Attributes:
        target_layer: ``layer4``, the last residual stage, for Grad-CAM. It sits at input / 32 (7×7 at 224
            pixels, 2×2 at 64); for small images ``conv1_t_stride=1`` and ``no_max_pool=True`` give 4× finer maps.
    """

    channels_last = True  # the trainer and inference lay 2-D/3-D inputs out NHWC for oneDNN (runtime.py)
    bf16 = True  # train.precision: auto trains it in bf16 where the hardware has it (benchmarks/precision.py)

    _monai_name = "resnet18"

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        conv1_t_size: int = 7,
        conv1_t_stride: int = 2,
        no_max_pool: bool = False,
        pretrained_weights: str | None = None,
    ) -> None:
        super().__init__()
        from monai.networks import nets

        self.net = getattr(nets, self._monai_name)(
            pretrained=False,
            spatial_dims=spatial_dims,
            n_input_channels=in_channels,
            num_classes=out_channels,
            conv1_t_size=conv1_t_size,
            conv1_t_stride=conv1_t_stride,
            no_max_pool=no_max_pool,
        )
        if pretrained_weights is not None:
            load_pretrained_weights(self, pretrained_weights)

    @property
    def target_layer(self) -> nn.Module:
        """``layer4``, the last residual stage (a property, so its weights are not saved twice)."""
        return self.net.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *spatial) → (B, out_channels) logits."""
        return self.net(x)


@register_model("resnet18")
class ResNet18(_ResNet):
    """MONAI ResNet-18 (2-2-2-2 basic blocks). Arguments as in ``_ResNet``."""

    _monai_name = "resnet18"


@register_model("resnet34")
class ResNet34(_ResNet):
    """MONAI ResNet-34 (3-4-6-3 basic blocks). Arguments as in ``_ResNet``."""

    _monai_name = "resnet34"


@register_model("densenet121")
class DenseNet121(nn.Module):
    """MONAI DenseNet-121 as ``(spatial_dims, in_channels, out_channels)``.

    The input must be at least 32 pixels along every axis (five halvings).

    Args:
        spatial_dims: 2 or 3 (1 works too).
        in_channels: input channels.
        out_channels: 1 for binary or regression, the number of classes for multiclass.
        dropout_prob: dropout inside the dense layers.
        pretrained_weights: local weights file to start from, or None to train from scratch.

    Attributes:
        target_layer: ``features``, the last dense block with its batch norm, for Grad-CAM.
    """

    channels_last = True  # the trainer and inference lay 2-D/3-D inputs out NHWC for oneDNN (runtime.py)
    bf16 = True  # train.precision: auto trains it in bf16 where the hardware has it (benchmarks/precision.py)

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        dropout_prob: float = 0.0,
        pretrained_weights: str | None = None,
    ) -> None:
        super().__init__()
        from monai.networks import nets

        self.net = nets.DenseNet121(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            dropout_prob=dropout_prob,
            pretrained=False,
        )
        # MONAI's head starts with an in-place ReLU that would overwrite the feature map Grad-CAM hooks;
        # an out-of-place ReLU computes the same and has no weights, so state dicts are unchanged.
        self.net.class_layers.relu = nn.ReLU()
        if pretrained_weights is not None:
            load_pretrained_weights(self, pretrained_weights)

    @property
    def target_layer(self) -> nn.Module:
        """``features``: the dense blocks and the final batch norm (a property, so its weights are not saved twice)."""
        return self.net.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *spatial) → (B, out_channels) logits."""
        return self.net(x)


@register_model("vit")
class ViT(nn.Module):
    """MONAI Vision Transformer with a classification token, returning logits (no Tanh on the head).

    The defaults are a small ViT (6 layers, width 384) suited to training from scratch on clinical data sets;
    ViT-Base is ``hidden_size=768, mlp_dim=3072, num_layers=12, num_heads=12``.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: 1 for binary or regression, the number of classes for multiclass.
        image_size: spatial size the network is built for (the learned position embedding fixes it).
        patch_size: patch side; must divide every entry of ``image_size``.
        hidden_size: token width.
        mlp_dim: width of each transformer block's MLP.
        num_layers: transformer blocks.
        num_heads: attention heads; must divide ``hidden_size``.
        dropout: dropout rate in the transformer.
        pretrained_weights: local weights file to start from, or None to train from scratch.

    Attributes:
        target_layer: the patch-embedding convolution, whose (B, hidden, *grid) output is the only spatial map
            in a ViT. Grad-CAM there is shallow; occlusion maps are the better explanation for this network.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        image_size: Sequence[int] | int = (224, 224),
        patch_size: int = 16,
        hidden_size: int = 384,
        mlp_dim: int = 1536,
        num_layers: int = 6,
        num_heads: int = 6,
        dropout: float = 0.0,
        pretrained_weights: str | None = None,
    ) -> None:
        super().__init__()
        size = spatial_size(image_size, spatial_dims)
        if any(s % patch_size for s in size):
            raise ValueError(f"patch_size {patch_size} must divide every entry of image_size {size}")
        if hidden_size % num_heads:
            raise ValueError(f"num_heads {num_heads} must divide hidden_size {hidden_size}")
        from monai.networks import nets

        self.net = nets.ViT(
            in_channels=in_channels,
            img_size=size,
            patch_size=patch_size,
            hidden_size=hidden_size,
            mlp_dim=mlp_dim,
            num_layers=num_layers,
            num_heads=num_heads,
            proj_type="conv",
            classification=True,
            num_classes=out_channels,
            dropout_rate=dropout,
            spatial_dims=spatial_dims,
            post_activation=None,
        )
        if pretrained_weights is not None:
            load_pretrained_weights(self, pretrained_weights)

    @property
    def target_layer(self) -> nn.Module:
        """The patch-embedding convolution (a property, so its weights are not saved twice)."""
        return self.net.patch_embedding.patch_embeddings

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *image_size) → (B, out_channels) logits (MONAI returns them with the hidden states)."""
        logits, _ = self.net(x)
        return logits

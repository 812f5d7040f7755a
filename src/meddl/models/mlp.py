"""A multilayer perceptron for tabular features."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from meddl.models.registry import register_model

__all__ = ["MLP", "DeepHit", "DeepSurv"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


@register_model("mlp")
class MLP(nn.Module):
    """Linear → LayerNorm → activation → dropout blocks, then a linear head.

    Args:
        in_features: number of encoded input features.
        out_features: 1 for binary or regression, the number of classes for multiclass.
        hidden: widths of the hidden layers.
        dropout: dropout probability after each hidden layer.
        activation: relu, gelu or silu.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (128, 64),
        dropout: float = 0.1,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [
                nn.Linear(width, int(size)),
                nn.LayerNorm(int(size)),
                _ACTIVATIONS[activation](),
                nn.Dropout(dropout),
            ]
            width = int(size)
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F) features → (B, out_features) logits."""
        return self.head(self.body(x))


@register_model("deepsurv")
class DeepSurv(MLP):
    """DeepSurv (Katzman et al. 2018): an MLP whose one output is a log-risk, trained with the Cox partial
    likelihood (``task: survival``, ``model.survival_head: cox``); same arguments as :class:`MLP`."""


@register_model("deephit")
class DeepHit(MLP):
    """DeepHit (Lee et al. 2018): an MLP whose outputs are logits over (cause, interval) of a discrete time grid,
    trained with the likelihood and a ranking loss (``task: survival``, ``model.survival_head: discrete``)."""

"""A deep ensemble (Lakshminarayanan et al. 2017): networks of one architecture trained from different seeds, whose
predictive distributions are averaged.

:class:`Ensemble` is itself a network: its output is the logit (binary, multilabel) or log-probability
(multiclass) of the members' *averaged probabilities*, or the members' mean (regression), so everything that turns a
network's outputs into scores — evaluation, prediction, explanations, ONNX export — works on it unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["ENSEMBLE_TASKS", "Ensemble"]

ENSEMBLE_TASKS = ("binary", "multiclass", "multilabel", "regression")
_EPS = 1e-7


class Ensemble(nn.Module):
    """Members of one architecture, combined on the probability scale.

    Args:
        members: the trained networks (same inputs and output width).
        task: binary, multiclass, multilabel or regression: how outputs are combined.
    """

    def __init__(self, members: list[nn.Module], task: str) -> None:
        super().__init__()
        if task not in ENSEMBLE_TASKS:
            raise ValueError(f"an ensemble combines {', '.join(ENSEMBLE_TASKS)} outputs, not {task}")
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)
        self.task = task

    # What explanations and export look up on a network: the first member's (Grad-CAM and token integrated
    # gradients of an ensemble attribute through its first member's layer; see the README's known limits).
    @property
    def target_layer(self) -> nn.Module | None:
        return getattr(self.members[0], "target_layer", None)

    @property
    def embedding(self) -> nn.Module | None:
        return getattr(self.members[0], "embedding", None)

    @property
    def bf16(self) -> bool:
        return bool(getattr(self.members[0], "bf16", False))

    @property
    def channels_last(self) -> bool:
        return bool(getattr(self.members[0], "channels_last", False))

    @property
    def onnx_unsupported(self) -> str | None:
        return getattr(self.members[0], "onnx_unsupported", None)

    def member_outputs(self, *inputs: Any, **keywords: Any) -> torch.Tensor:
        """Each member's own outputs, stacked: (members, N, ...)."""
        return torch.stack([member(*inputs, **keywords) for member in self.members])

    def forward(self, *inputs: Any, **keywords: Any) -> torch.Tensor:
        outputs = self.member_outputs(*inputs, **keywords)
        if self.task == "regression":
            return outputs.mean(dim=0)
        if self.task == "multiclass":
            probabilities = torch.softmax(outputs, dim=-1).mean(dim=0)
            return torch.log(probabilities.clamp_min(_EPS))
        probabilities = torch.sigmoid(outputs).mean(dim=0).clamp(_EPS, 1 - _EPS)
        return torch.log(probabilities) - torch.log1p(-probabilities)

"""Per task: the training loss, and how raw network outputs become probabilities or predictions."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from meddl.errors import MedDLError
from meddl.train.trainer import LossFn

__all__ = ["DiceCELoss", "make_loss", "output_size", "scores_from_outputs", "target_tensor"]


def output_size(task: str, n_classes: int) -> int:
    """Width of the last layer: one logit (binary), one per class or finding (multiclass, multilabel), one value."""
    return n_classes if task in {"multiclass", "multilabel"} else 1


def target_tensor(task: str, target: np.ndarray, scale: tuple[float, float] | None = None) -> torch.Tensor:
    """Targets as the loss expects them; regression targets are standardised with the training (mean, std)."""
    if task == "multiclass":
        return torch.as_tensor(target, dtype=torch.long)
    values = np.asarray(target, dtype=np.float64)
    if task == "regression" and scale is not None:
        values = (values - scale[0]) / scale[1]
    return torch.as_tensor(values, dtype=torch.float32)


def make_loss(task: str, class_weights: np.ndarray | None = None) -> LossFn:
    """BCE-with-logits (binary), cross-entropy (multiclass) or MSE (regression), optionally class-weighted.

    For binary tasks, balanced class weights become a per-sample weight (w_neg, w_pos), which is the
    class-weighted log-likelihood scikit-learn's ``class_weight='balanced'`` optimises too.
    """
    if task == "binary":
        weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)

        def binary_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            logits = outputs.reshape(-1)  # (B, 1) → (B,)
            targets = targets.reshape(-1).float()
            if weights is None:
                return F.binary_cross_entropy_with_logits(logits, targets)
            w = weights.to(logits.device)
            sample_weight = w[0] + (w[1] - w[0]) * targets
            return F.binary_cross_entropy_with_logits(logits, targets, weight=sample_weight) * (
                len(targets) / sample_weight.sum().clamp_min(1e-12)
            )

        return binary_loss
    if task == "multilabel":

        def multilabel_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            # (B, K) independent findings; a missing label (NaN: an assay not run on this compound) adds nothing
            targets = targets.float()
            observed = ~torch.isnan(targets)
            losses = F.binary_cross_entropy_with_logits(
                outputs, torch.where(observed, targets, torch.zeros_like(targets)), reduction="none"
            )
            return (losses * observed).sum() / observed.sum().clamp_min(1)

        return multilabel_loss
    if task == "multiclass":
        weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)

        def multiclass_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            w = None if weights is None else weights.to(outputs.device)
            return F.cross_entropy(outputs, targets.long(), weight=w)

        return multiclass_loss

    def regression_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs.reshape(-1), targets.reshape(-1).float())

    return regression_loss


def scores_from_outputs(task: str, outputs: np.ndarray, scale: Any = None) -> np.ndarray:
    """Logits → P(class 1) (binary, shape (N,)), class probabilities (multiclass, (N, K)), or predictions.

    ``scale`` is what the outputs need besides themselves: the training target's ``(mean, std)`` (regression), or
    the fitted :class:`~meddl.train.survival_outputs.SurvivalOutputs` (survival: ``[risk, S(horizons), median,
    S(curve)]`` per case)."""
    if task == "survival":
        if scale is None:
            raise MedDLError("survival scores need the fitted survival head state")
        return np.asarray(scale.scores(outputs))
    outputs = np.asarray(outputs, dtype=np.float64)
    if task == "binary":
        return 1.0 / (1.0 + np.exp(-outputs.reshape(-1)))
    if task == "multilabel":
        return 1.0 / (1.0 + np.exp(-outputs))  # (N, K)
    if task == "multiclass":
        shifted = outputs - outputs.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        return exp / exp.sum(axis=1, keepdims=True)
    values = outputs.reshape(-1)
    if scale is not None:
        values = values * scale[1] + scale[0]
    return values


class DiceCELoss(torch.nn.Module):
    """Segmentation: MONAI's Dice + cross-entropy loss (nnU-Net's), over logits (B, K + 1, *spatial) and integer
    label maps (B, *spatial); the Dice term ignores the background channel's own Dice, the cross-entropy does not."""

    def __init__(self) -> None:
        super().__init__()
        from monai.losses import DiceCELoss as MonaiDiceCELoss

        self.loss = MonaiDiceCELoss(to_onehot_y=True, softmax=True, include_background=False)

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.loss(outputs, targets.unsqueeze(1))

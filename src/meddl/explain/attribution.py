"""Integrated gradients, once, for every kind of input (captum ``IntegratedGradients``).

``compute_integrated_gradients`` is the one place MedDL calls captum's integrated gradients; the per-kind
explainers (``tabular_integrated_gradients``, ``signal_integrated_gradients``, ``dna_integrated_gradients``,
``token_attributions``, ``ehr_integrated_gradients``) only choose the baseline and the target and shape the
result. It handles:

* float inputs of any shape ``(N, ...)`` — tables ``(N, F)``, signals ``(N, C, L)``, EHR sequences
  ``(N, T, F)``, one-hot DNA ``(N, 4, L)`` — cast to float32 and moved to the model's device;
* a baseline per row (same shape as the inputs), one shared by every row (broadcastable to one row, e.g.
  ``(F,)`` or a scalar), or none (zeros);
* a target per row, one for all rows, or ``None`` for a model with a single output per row;
* models in training mode (evaluated in eval mode, every module's mode restored afterwards) and recurrent
  models on the GPU (cuDNN cannot run an RNN backward in eval mode, so cuDNN is switched off for them);
* token models (k-mers, codes): with ``layer=`` the gradients are integrated on that layer's output (captum
  ``LayerIntegratedGradients``, e.g. on the embedding), the baseline being another token sequence.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TypeAlias

import numpy as np
import torch
from torch import nn

__all__ = ["Target", "compute_integrated_gradients"]

Target: TypeAlias = int | np.integer | Sequence[int] | np.ndarray | torch.Tensor | None
"""Which output to explain: one index for all rows, one per row, or ``None`` for a single-output model."""


def _device(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _targets(target: Target, rows: int, device: torch.device) -> int | torch.Tensor | None:
    """``None``, one int for every row, or an int64 tensor with one index per row (on ``device``)."""
    if target is None:
        return None
    array = np.asarray(target.detach().cpu() if isinstance(target, torch.Tensor) else target)
    if array.ndim == 0:
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"target must be an integer output index, got {target!r}")
        return int(array)
    if array.shape != (rows,) or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise ValueError(f"target must be an int or have one integer entry per row ({rows}), got shape {array.shape}")
    return torch.as_tensor(array.astype(np.int64), device=device)


def _baselines(baselines: torch.Tensor | np.ndarray | float | None, inputs: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The baseline as a tensor like ``inputs`` and whether it has one row per input row."""
    if baselines is None:
        return torch.zeros((), dtype=inputs.dtype, device=inputs.device), False
    base = torch.as_tensor(baselines).to(device=inputs.device, dtype=inputs.dtype)
    if base.shape == inputs.shape:
        return base, True
    row = (1, *inputs.shape[1:])
    try:
        shared = torch.broadcast_shapes(base.shape, row) == torch.Size(row)
    except RuntimeError:
        shared = False
    if not shared:
        raise ValueError(
            f"baselines must have the inputs' shape {tuple(inputs.shape)} or broadcast to one row {row}, "
            f"got {tuple(base.shape)}"
        )
    return base, False


def _cudnn(model: nn.Module, cudnn: bool | None) -> contextlib.AbstractContextManager[object]:
    """Leave cuDNN's settings alone, or switch it off (explicitly, or by default for recurrent models)."""
    if cudnn is None:
        cudnn = not any(isinstance(module, nn.RNNBase) for module in model.modules())
    return contextlib.nullcontext() if cudnn else torch.backends.cudnn.flags(enabled=False)


def compute_integrated_gradients(
    model: nn.Module,
    inputs: torch.Tensor | np.ndarray,
    baselines: torch.Tensor | np.ndarray | float | None = None,
    *,
    target: Target = None,
    n_steps: int = 32,
    batch_size: int = 64,
    internal_batch_size: int | None = None,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
    layer: nn.Module | None = None,
    reduce: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    cudnn: bool | None = None,
) -> np.ndarray:
    """Integrated gradients of one output per row (captum), in chunks of ``batch_size`` rows.

    The attributions are (input − baseline) × the path-averaged gradient, so each row sums (up to the
    integration error) to ``f(x)[target] − f(baseline)[target]`` — the completeness axiom.

    Args:
        model: maps (B, ...) inputs to (B, outputs) — or (B,) / (B, 1) with ``target=None``. Evaluated in eval
            mode; every module's training flag is restored afterwards.
        inputs: (N, ...) rows. Cast to float32, except with ``layer`` (token ids keep their dtype).
        baselines: the path's start: same shape as ``inputs`` (one per row), broadcastable to one row (shared,
            e.g. ``(F,)`` or a scalar), or ``None`` for zeros. Same dtype rules as ``inputs``.
        target: output index — one int for all rows, one per row (multiclass: usually the predicted class), or
            ``None`` when the model has a single output per row.
        n_steps: points on the path (captum's default Gauss–Legendre rule).
        batch_size: rows per captum call (each call evaluates ``batch_size × n_steps`` inputs).
        internal_batch_size: passed to captum (splits the ``batch_size × n_steps`` evaluations); ``None`` = all
            at once.
        forward: the function attributed, default ``model`` itself (e.g. ``lambda x: model(x).softmax(-1)``).
        layer: attribute to this layer's output instead of the inputs (captum ``LayerIntegratedGradients``;
            e.g. the embedding of a token model, whose integer inputs cannot be interpolated).
        reduce: applied to each chunk as ``reduce(attributions, chunk_inputs)`` before it leaves the device,
            e.g. a sum over the embedding dimension.
        cudnn: whether cuDNN may be used; ``None`` switches it off only for models with a recurrent layer
            (cuDNN cannot run an RNN backward in eval mode).

    Returns:
        float32 attributions, shaped like ``inputs`` (or like the layer's output, or as ``reduce`` returns);
        with no rows, float32 zeros of the inputs' shape.

    Raises:
        ValueError: the baselines or the targets do not fit the inputs.
    """
    device = _device(model)
    x = torch.as_tensor(inputs)
    x = (x if layer is not None else x.to(torch.float32)).to(device)
    if x.ndim == 0:
        raise ValueError("inputs must have a leading row dimension, got a scalar")
    base, per_row = _baselines(baselines, x)
    targets = _targets(target, len(x), device)
    if len(x) == 0:
        return np.zeros(tuple(x.shape), dtype=np.float32)
    function = forward if forward is not None else model
    if layer is not None:
        from captum.attr import LayerIntegratedGradients

        attribute = LayerIntegratedGradients(function, layer).attribute
    else:
        from captum.attr import IntegratedGradients

        attribute = IntegratedGradients(function).attribute
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    chunks = []
    try:
        with _cudnn(model, cudnn):
            for start in range(0, len(x), batch_size):
                batch = x[start : start + batch_size]
                reference = base[start : start + batch_size] if per_row else base.expand_as(batch)
                chunk_target = targets[start : start + batch_size] if isinstance(targets, torch.Tensor) else targets
                attributions = attribute(
                    batch,
                    baselines=reference,
                    target=chunk_target,
                    n_steps=n_steps,
                    internal_batch_size=internal_batch_size,
                )
                if reduce is not None:
                    attributions = reduce(attributions, batch)
                chunks.append(attributions.detach().cpu())
    finally:
        for module, training in modes:
            module.training = training
    return torch.cat(chunks).numpy().astype(np.float32)

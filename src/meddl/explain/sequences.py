"""Which bases a sequence model used: per-base attributions of DNA and token models.

* Attributions: integrated gradients (``meddl.explain.attribution.compute_integrated_gradients``) on one-hot
  inputs (``dna_integrated_gradients``), on the token embedding of token models (``token_attributions``), and
  in-silico saturation mutagenesis (the logit change of every single-base substitution).
* ``per_base_contributions`` sums one-hot attributions to one contribution per position, and
  ``attribution_peak_in_site`` checks where the largest contribution falls against planted sites.

Motif discovery on those contributions (seqlets, clustering into motifs, JASPAR matching, sequence logos) lives in
``meddl.explain.motifs``; its public names are re-exported here, so ``from meddl.explain.sequences import …``
keeps working for all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from meddl.explain.attribution import compute_integrated_gradients
from meddl.explain.motifs import BASES as BASES  # kept importable from here; not in __all__, as before
from meddl.explain.motifs import (
    DiscoveredMotif,
    MotifMatch,
    Seqlet,
    discover_motifs,
    find_seqlets,
    focus_window,
    logo_png,
    match_jaspar,
    motif_recovery,
)

__all__ = [
    "DiscoveredMotif",
    "MotifMatch",
    "Seqlet",
    "attribution_peak_in_site",
    "discover_motifs",
    "dna_integrated_gradients",
    "find_seqlets",
    "focus_window",
    "integrated_gradients_sequence",
    "logo_png",
    "match_jaspar",
    "motif_recovery",
    "per_base_contributions",
    "saturation_mutagenesis",
    "token_attributions",
]


def _device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _one_hot_batch(x: np.ndarray | torch.Tensor, model: nn.Module) -> torch.Tensor:
    tensor = torch.as_tensor(x, dtype=torch.float32)
    if tensor.ndim != 3 or tensor.shape[1] != 4:
        raise ValueError(f"expected one-hot sequences (N, 4, L), got shape {tuple(tensor.shape)}")
    return tensor.to(_device(model))


def dna_integrated_gradients(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    target: int | Sequence[int] | np.ndarray = 0,
    n_steps: int = 32,
    baseline: Literal["uniform", "zeros"] = "uniform",
    batch_size: int = 64,
) -> np.ndarray:
    """Integrated gradients of a one-hot DNA model's logit ``target`` (``compute_integrated_gradients``).

    The result is already "actual" (input − baseline) × path-integrated gradient, so ``.sum(axis=1)``
    (``per_base_contributions``) is each position's contribution, and all positions together add up to
    logit(x) − logit(baseline) (the completeness axiom, up to the integral's error). With ``"zeros"`` only the
    present base of a position is non-zero.

    Args:
        model: maps (B, 4, L) to (B, C) logits; evaluated in eval mode, its mode restored afterwards.
        x: (N, 4, L) one-hot.
        target: index into the logits (0 for a binary model), one for all sequences or one per sequence.
        n_steps: integration steps.
        baseline: ``"uniform"`` (0.25 everywhere, an all-N sequence) or ``"zeros"``.
        batch_size: sequences per captum call.

    Returns:
        (N, 4, L) float32 attributions.
    """
    if baseline not in ("uniform", "zeros"):
        raise ValueError(f"baseline must be 'uniform' or 'zeros', got {baseline!r}")
    inputs = _one_hot_batch(x, model)
    reference = 0.25 if baseline == "uniform" else 0.0
    return compute_integrated_gradients(model, inputs, reference, target=target, n_steps=n_steps, batch_size=batch_size)


integrated_gradients_sequence = dna_integrated_gradients
"""The former name of `dna_integrated_gradients` (not to be confused with `meddl.explain.ehr`'s), kept for callers."""


def per_base_contributions(attributions: np.ndarray) -> np.ndarray:
    """(N, 4, L) attributions → (N, L) contribution of each position (sum over the 4 channels)."""
    array = np.asarray(attributions)
    if array.ndim != 3 or array.shape[1] != 4:
        raise ValueError(f"expected (N, 4, L) attributions, got shape {array.shape}")
    return array.sum(axis=1)


def _summed_over_embedding(attributions: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(B, T, E) embedding attributions → (B, T), 0 at padding (token 0)."""
    return attributions.sum(dim=-1) * (tokens != 0)


def token_attributions(
    model: nn.Module,
    tokens: np.ndarray | torch.Tensor,
    target: int | Sequence[int] | np.ndarray = 0,
    n_steps: int = 32,
    batch_size: int = 64,
) -> np.ndarray:
    """Integrated gradients of a token model through its ``embedding`` layer (``compute_integrated_gradients``
    with ``layer=model.embedding``, i.e. captum ``LayerIntegratedGradients``).

    The baseline replaces every real token by ``[UNK]`` (id 1) and keeps padding, so the padding mask is the
    same along the path. Attributions are summed over the embedding dimension.

    Args:
        model: maps (B, T) int64 tokens to (B, C) logits and has an ``embedding`` attribute.
        tokens: (N, T) int64, 0 = padding.
        target: index into the logits, one for all sequences or one per sequence.
        n_steps: integration steps.
        batch_size: sequences per captum call.

    Returns:
        (N, T) float32; 0 at padding.
    """
    layer = getattr(model, "embedding", None)
    if not isinstance(layer, nn.Module):
        raise ValueError(f"{type(model).__name__} has no 'embedding' layer to attribute to")
    ids = torch.as_tensor(tokens, dtype=torch.int64).to(_device(model))
    if ids.ndim != 2:
        raise ValueError(f"expected tokens (N, T), got shape {tuple(ids.shape)}")
    reference = torch.where(ids == 0, ids, torch.ones_like(ids))
    return compute_integrated_gradients(
        model,
        ids,
        reference,
        target=target,
        n_steps=n_steps,
        batch_size=batch_size,
        layer=layer,
        reduce=_summed_over_embedding,
    )


def saturation_mutagenesis(
    model: nn.Module, x_one_hot: np.ndarray | torch.Tensor, target: int = 0, batch_size: int = 256
) -> np.ndarray:
    """In-silico saturation mutagenesis: the logit change of every single-base substitution.

    Args:
        model: maps (B, 4, L) to (B, C) logits; put in eval mode here.
        x_one_hot: (N, 4, L) one-hot.
        target: index into the logits.
        batch_size: mutants per forward pass.

    Returns:
        (N, 4, L) float32: ``[n, b, l]`` = logit(sequence n with base b at position l) − logit(sequence n);
        exactly 0 at the reference base.
    """
    model.eval()
    x = _one_hot_batch(x_one_hot, model)
    n, _, length = x.shape
    result = np.zeros((n, 4, length), dtype=np.float32)
    positions = torch.arange(length, device=x.device).repeat_interleave(4)  # (4L,)
    bases = torch.arange(4, device=x.device).repeat(length)  # (4L,)
    with torch.no_grad():
        reference_logits = torch.cat([model(b)[:, target] for b in x.split(batch_size)])  # (N,)
        for i in range(n):
            mutants = x[i].unsqueeze(0).repeat(4 * length, 1, 1)  # (4L, 4, L)
            rows = torch.arange(4 * length, device=x.device)
            mutants[rows, :, positions] = 0.0
            mutants[rows, bases, positions] = 1.0
            logits = torch.cat([model(b)[:, target] for b in mutants.split(batch_size)])  # (4L,)
            change = (logits - reference_logits[i]).view(length, 4).T  # (4, L)
            result[i] = change.cpu().numpy()
    result[(x == 1).cpu().numpy()] = 0.0
    return result


def attribution_peak_in_site(
    contributions: np.ndarray,
    sites: pd.DataFrame,
    labels: np.ndarray | None = None,
    tolerance: int = 3,
) -> dict[str, float | int]:
    """How often a sequence's largest contribution falls inside one of its planted sites (± ``tolerance``).

    Args:
        contributions: (N, L) per-base contributions.
        sites: ``PlantedMotifs.sites`` (columns ``sequence``, ``start``, ``end``).
        labels: (N,) labels; if given, only positives (label 1) are scored.
        tolerance: bases allowed outside the site.

    Returns:
        ``{"fraction": hits / sequences, "hits": int, "sequences": int}`` over the scored sequences that carry a
        site.
    """
    array = np.asarray(contributions)
    peaks = array.argmax(axis=1)
    hits = scored = 0
    for sequence_index, group in sites.groupby("sequence"):
        i = int(sequence_index)  # type: ignore[call-overload]
        if labels is not None and int(labels[i]) != 1:
            continue
        scored += 1
        peak = int(peaks[i])
        hits += bool(((group["start"] - tolerance <= peak) & (peak < group["end"] + tolerance)).any())
    return {"fraction": hits / scored if scored else 0.0, "hits": hits, "sequences": scored}

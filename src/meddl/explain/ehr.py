"""Explanations of EHR sequence models: integrated gradients per channel and step, RETAIN's attention.

* `ehr_integrated_gradients` — ``compute_integrated_gradients`` from a baseline that is zero on every channel
  except the step mask (channel 0), which keeps the input's values: padding stays padding along the whole path,
  so the attributions explain the values at real steps, never the sequence length. Channel 0 gets 0.
* `summarise_attributions` — the report's view: top channels overall, importance per group and per step, and
  each case's strongest (channel, step) attributions.
* `retain_explanations` — per case: RETAIN's step weights α and the top exact per-channel contributions
  ``ω(t, j)`` to the logit (see ``meddl.models.ehr.Retain.explain``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from meddl.errors import MedDLError
from meddl.explain.attribution import compute_integrated_gradients
from meddl.models.ehr import Retain, step_lengths

__all__ = [
    "ehr_integrated_gradients",
    "integrated_gradients_sequence",
    "retain_explanations",
    "summarise_attributions",
]


def _as_input(x: torch.Tensor | np.ndarray, model: nn.Module) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    if tensor.ndim != 3:
        raise MedDLError(f"EHR explanations need (N, T, F) sequences, got shape {tuple(tensor.shape)}")
    parameter = next(model.parameters(), None)
    return tensor.to(parameter.device if parameter is not None else torch.device("cpu"))


def ehr_integrated_gradients(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    target: int | Sequence[int] | np.ndarray = 0,
    n_steps: int = 32,
    *,
    batch_size: int = 64,
) -> np.ndarray:
    """Integrated gradients of one output for every step and channel (``compute_integrated_gradients``).

    Args:
        model: a network mapping (B, T, F) (channel 0 = step mask) to (B, outputs) logits; evaluated in eval
            mode, its mode restored afterwards.
        x: (N, T, F) inputs, preprocessed as the model sees them.
        target: the output index to explain (0 for a binary model), one for all cases or one per case.
        n_steps: points on the integration path (Gauss-Legendre, captum's default method).
        batch_size: cases per attribution call.

    Returns:
        float32 (N, T, F); channel 0 and padding steps are 0. For each case the sum approximates
        ``logit(x) − logit(baseline)``, the baseline being x with every channel but the mask set to 0.
    """
    inputs = _as_input(x, model)
    baseline = torch.zeros_like(inputs)
    baseline[:, :, 0] = inputs[:, :, 0]
    # cuDNN RNNs refuse backward in eval mode; the native kernels give the same numbers.
    return compute_integrated_gradients(
        model, inputs, baseline, target=target, n_steps=n_steps, batch_size=batch_size, cudnn=False
    )


integrated_gradients_sequence = ehr_integrated_gradients
"""The former name of `ehr_integrated_gradients` (not to be confused with `meddl.explain.sequences`'s), kept for
callers."""


def summarise_attributions(
    attributions: np.ndarray,
    feature_names: Sequence[str],
    groups: Mapping[str, Sequence[int]] | None = None,
    *,
    top: int = 20,
    top_per_case: int = 5,
) -> dict[str, Any]:
    """Summaries of (N, T, F) attributions for a report (JSON-able).

    Args:
        attributions: (N, T, F) attributions (e.g. from `ehr_integrated_gradients`).
        feature_names: F channel names.
        groups: optional channel indices per group (``EHRFeatures.groups``).
        top: channels listed in ``features``.
        top_per_case: (channel, step) entries listed per case.

    Returns:
        ``features``: [{feature, importance}] — mean over cases of Σ_t |attr|, highest first (``top`` of them);
        ``groups``: {group: mean over cases of Σ_t Σ_{j∈group} |attr|}; ``steps``: [mean over cases of
        Σ_j |attr| at step t] (T values); ``cases``: per case a list of {feature, step, value} with the largest
        |value| (signed value).

    Raises:
        MedDLError: the attributions are not 3-D, or the names or groups do not match F.
    """
    attr = np.asarray(attributions, dtype=np.float64)
    if attr.ndim != 3:
        raise MedDLError(f"attributions must be (N, T, F), got shape {attr.shape}")
    n_cases, n_steps, n_features = attr.shape
    if len(feature_names) != n_features:
        raise MedDLError(f"feature_names has {len(feature_names)} names for {n_features} attribution channels")
    magnitude = np.abs(attr)
    per_feature = magnitude.sum(axis=1).mean(axis=0) if n_cases else np.zeros(n_features)  # (F,)
    order = np.argsort(-per_feature, kind="stable")[:top]
    summary: dict[str, Any] = {
        "features": [{"feature": str(feature_names[j]), "importance": float(per_feature[j])} for j in order],
        "steps": [float(v) for v in (magnitude.sum(axis=2).mean(axis=0) if n_cases else np.zeros(n_steps))],
        "groups": {},
        "cases": [],
    }
    for name, channels in (groups or {}).items():
        channels = list(channels)
        if any(not 0 <= c < n_features for c in channels):
            raise MedDLError(f"group {name!r} names channels outside 0..{n_features - 1}: {channels}")
        summary["groups"][name] = float(per_feature[channels].sum()) if channels else 0.0
    flat = attr.reshape(n_cases, n_steps * n_features)  # (N, T·F)
    k = min(top_per_case, n_steps * n_features)
    for case in range(n_cases):
        strongest = np.argsort(-np.abs(flat[case]), kind="stable")[:k]
        summary["cases"].append(
            [
                {
                    "feature": str(feature_names[i % n_features]),
                    "step": int(i // n_features),
                    "value": float(flat[case, i]),
                }
                for i in strongest
                if flat[case, i] != 0
            ]
        )
    return summary


def retain_explanations(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    feature_names: Sequence[str],
    top: int = 10,
    *,
    target: int = 0,
    channels: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Per case: RETAIN's step weights and the channels that contributed most to the logit.

    Args:
        model: a `meddl.models.ehr.Retain`.
        x: (N, T, F) inputs.
        feature_names: F channel names.
        top: contributions listed per case.
        target: the output explained.
        channels: channels eligible for the top list (e.g. ``groups["codes"]``); default every channel but
            the mask (its contribution is folded into ``baseline``).

    Returns:
        One dict per case: ``alpha`` (one weight per real step, summing to 1), ``logit``, ``baseline`` (bias +
        contributions of channels outside ``channels``) and ``contributions`` — [{feature, step, alpha, value}]
        with the largest |value|; ``baseline + Σ contributions over every eligible channel = logit``.

    Raises:
        MedDLError: the model is not RETAIN or the names do not match F.
    """
    if not isinstance(model, Retain):
        raise MedDLError(f"retain_explanations needs a 'retain' model, got {type(model).__name__}")
    inputs = _as_input(x, model)
    n_features = inputs.shape[2]
    if len(feature_names) != n_features:
        raise MedDLError(f"feature_names has {len(feature_names)} names for {n_features} input channels")
    eligible = np.asarray(list(channels) if channels is not None else range(1, n_features), dtype=np.int64)
    if np.any((eligible < 0) | (eligible >= n_features)):
        raise MedDLError(f"channels must lie in 0..{n_features - 1}, got {eligible.tolist()}")
    explanation = model.explain(inputs, target=target)
    alpha = explanation["alpha"].cpu().numpy()
    contributions = explanation["contributions"].cpu().numpy().astype(np.float64)  # (N, T, F)
    logits = explanation["logit"].cpu().numpy()
    bias = float(explanation["bias"])
    lengths = step_lengths(inputs).numpy()
    others = np.setdiff1d(np.arange(n_features), eligible)
    cases = []
    for case in range(len(inputs)):
        chosen = contributions[case][:, eligible]  # (T, K)
        flat = chosen.reshape(-1)
        strongest = np.argsort(-np.abs(flat), kind="stable")[:top]
        listed = [
            {
                "feature": str(feature_names[int(eligible[i % len(eligible)])]),
                "step": int(i // len(eligible)),
                "alpha": float(alpha[case, i // len(eligible)]),
                "value": float(flat[i]),
            }
            for i in strongest
            if flat[i] != 0
        ]
        cases.append(
            {
                "alpha": [float(a) for a in alpha[case, : int(lengths[case])]],
                "logit": float(logits[case]),
                "baseline": bias + float(contributions[case][:, others].sum()),
                "contributions": listed,
            }
        )
    return cases

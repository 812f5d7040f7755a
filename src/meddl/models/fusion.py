"""Multimodal fusion: one network over several inputs of a patient (``model.arch: fusion``).

Each input has its own encoder — the network its kind uses alone (``small_cnn`` for an image, ``mlp`` for a table),
built with ``embed_dim`` outputs — and the embeddings are fused:

* ``late``: the embeddings, zeroed where an input is missing, and the presence flags, concatenated → an MLP head;
* ``attention``: one token per input (its embedding plus a learned type embedding) and a summary token, through a
  transformer encoder that masks the missing inputs out; the summary token → the head;
* ``gated``: a learned gate per input, a softmax over the inputs present; the weighted sum → the head.

The inputs arrive as one flat row per patient — every input's values, flattened, then one presence flag per input
(:class:`~meddl.modalities.multimodal.MultimodalModality` packs them) — so the one trainer, ONNX export and the
attribution methods see a plain (B, F) tensor. ``modality_dropout`` hides each present input of a training row with
that probability (never all of them), so the model learns to predict from whatever a patient has.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from meddl.models.registry import build_model, output_argument, register_model

__all__ = ["ENCODER_DEFAULTS", "FUSIONS", "FusionNet"]

FUSIONS = ("late", "attention", "gated")
# An input's encoder is its kind's network; a fused model has as many patients as each input alone but several
# encoders to fit, so an MLP encoder (a table, an expression profile) starts narrower and more regularised than
# the same network alone: on the benchmark's patients (benchmarks/fusion.py) this raised the test AUROC from 0.93 to
# 0.95 and stopped the vector inputs crowding out the image. ``encoder_params`` replaces these for an input.
ENCODER_DEFAULTS: dict[str, dict[str, Any]] = {"mlp": {"hidden": [32], "dropout": 0.3}}


@register_model("fusion")
class FusionNet(nn.Module):
    """Encoders per input, a fusion of their embeddings, one head.

    Args:
        in_features: width of a packed row (every input's values, then one presence flag per input).
        out_features: 1 for binary or regression, the number of classes for multiclass.
        modalities: the packed layout, from the data: per input ``{"name", "kind", "arch", "shape", "dtype",
            "arguments"}`` (``arguments``: the encoder's data-derived constructor arguments).
        fusion: ``late``, ``attention`` or ``gated``.
        encoders: input name → network name, where an input's kind default is not wanted (``{scan: resnet18}``).
        encoder_params: input name → that encoder's arguments (``{scan: {channels: [8, 16]}}``); default
            :data:`ENCODER_DEFAULTS` for the encoder's network (an MLP: one hidden layer of 32, dropout 0.3).
        embed_dim: width of each input's embedding.
        hidden: width of the head's hidden layer.
        heads, layers: the attention fusion's transformer (heads must divide ``embed_dim``).
        dropout: dropout in the fusion and the head.
        modality_dropout: training only: the probability of hiding each present input of a row.
        use: the inputs this network may see (default all): a single-input model for the run's comparison is the
            same network with ``use: [name]``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        modalities: Sequence[Mapping[str, Any]],
        fusion: str = "attention",
        encoders: dict[str, str] | None = None,
        encoder_params: dict[str, dict[str, Any]] | None = None,
        embed_dim: int = 32,
        hidden: int = 64,
        heads: int = 4,
        layers: int = 1,
        dropout: float = 0.1,
        modality_dropout: float = 0.2,
        use: list[str] | None = None,
    ) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
        if not 0 <= modality_dropout < 1:
            raise ValueError(f"modality_dropout must be in [0, 1), got {modality_dropout}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if fusion == "attention" and embed_dim % heads:
            raise ValueError(f"heads ({heads}) must divide embed_dim ({embed_dim})")
        names = [str(m["name"]) for m in modalities]
        for given, what in ((encoders, "encoders"), (encoder_params, "encoder_params"), (use, "use")):
            unknown = sorted(set(given or ()) - set(names))
            if unknown:
                raise ValueError(f"{what} names {unknown}, which are not inputs; the inputs are {names}")
        self.names = names
        self.fusion = fusion
        self.modality_dropout = float(modality_dropout)
        self.used = [name in (use or names) for name in names]
        self.segments: list[tuple[int, int, tuple[int, ...], bool]] = []
        start = 0
        for m in modalities:
            shape = tuple(int(n) for n in m["shape"])
            stop = start + math.prod(shape)
            self.segments.append((start, stop, shape, str(m.get("dtype", "float32")).startswith("int")))
            start = stop
        self.n_values = start
        if in_features != self.n_values + len(names):
            raise ValueError(
                f"in_features is {in_features}, but the layout holds {self.n_values} values and {len(names)} flags"
            )
        self.encoders = nn.ModuleDict()
        for m, used in zip(modalities, self.used, strict=True):
            if not used:
                continue
            arch = str(m["arch"])
            arguments = {**dict(m.get("arguments") or {}), output_argument(arch): embed_dim}
            self.encoders[str(m["name"])] = build_model(
                arch, dict((encoder_params or {}).get(m["name"], ENCODER_DEFAULTS.get(arch, {}))), **arguments
            )
        count = len(names)
        self.norm = nn.LayerNorm(embed_dim)
        if fusion == "late":
            self.head = nn.Sequential(
                nn.Linear(count * embed_dim + count, hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, out_features),
            )
        else:
            if fusion == "attention":
                self.type_embedding = nn.Parameter(torch.zeros(count, embed_dim))
                self.summary = nn.Parameter(torch.zeros(1, 1, embed_dim))
                nn.init.normal_(self.type_embedding, std=0.02)
                nn.init.normal_(self.summary, std=0.02)
                layer = nn.TransformerEncoderLayer(
                    embed_dim, heads, dim_feedforward=2 * embed_dim, dropout=dropout, batch_first=True
                )
                self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            else:
                self.gate = nn.Linear(embed_dim, 1)
            self.head = nn.Sequential(
                nn.Linear(embed_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out_features)
            )
        self.register_buffer("use_mask", torch.tensor(self.used, dtype=torch.bool), persistent=False)

    def split(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """A packed batch → each input's batch (in its own shape and dtype) and the (B, M) presence mask."""
        parts = []
        for start, stop, shape, integer in self.segments:
            part = x[:, start:stop].reshape(-1, *shape)
            parts.append(part.round().long() if integer else part)
        return parts, x[:, self.n_values :] > 0.5

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, M, embed_dim) embeddings (zero where an input is missing or unused) and the (B, M) mask used."""
        parts, mask = self.split(x)
        use: torch.Tensor = self.use_mask  # type: ignore[assignment]
        mask = mask & use
        if self.training and self.modality_dropout > 0 and len(self.names) > 1:
            keep = mask & (torch.rand(mask.shape, device=x.device) >= self.modality_dropout)
            emptied = ~keep.any(dim=1)
            keep[emptied] = mask[emptied]  # a row keeps its inputs rather than lose all of them
            mask = keep
        # In inference an encoder sees only the rows that have its input: a row without it is zeroed below anyway,
        # and explaining one input (the others left out) or leaving one out no longer runs, say, the image
        # encoder on blank images (most of the fusion demo's explanation time). Training keeps every row (the
        # encoders' batch statistics), and so does tracing for export (no data-dependent branch in the graph).
        select = not (self.training or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export())
        width = self.norm.normalized_shape[0]
        rows = []
        for k, (name, part, used) in enumerate(zip(self.names, parts, self.used, strict=True)):
            blank = (x[:, :1] * 0).expand(-1, width)  # traced batch size stays free
            if not used:
                rows.append(blank)
            elif select and not bool(mask[:, k].all()):
                having = torch.nonzero(mask[:, k]).squeeze(1)
                embedded = blank.to(torch.float32).clone()
                if len(having):
                    embedded[having] = self.norm(self.encoders[name](part[having]).float())
                rows.append(embedded)
            else:
                rows.append(self.norm(self.encoders[name](part).float()))
        embeddings = torch.stack(rows, dim=1) * mask.unsqueeze(-1)
        return embeddings, mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_features) packed rows → (B, out_features) logits."""
        embeddings, mask = self.embed(x)
        if self.fusion == "late":
            return self.head(torch.cat([embeddings.flatten(1), mask.to(embeddings.dtype)], dim=1))
        if self.fusion == "gated":
            scores = self.gate(embeddings).squeeze(-1).masked_fill(~mask, float("-inf"))
            weights = torch.nan_to_num(torch.softmax(scores, dim=1))  # a row with no input: all weights 0
            return self.head((weights.unsqueeze(-1) * embeddings).sum(dim=1))
        batch = x.shape[0]
        tokens = torch.cat([self.summary.expand(batch, -1, -1), embeddings + self.type_embedding], dim=1)
        padding = torch.cat([torch.zeros_like(mask[:, :1]), ~mask], dim=1)
        return self.head(self.transformer(tokens, src_key_padding_mask=padding)[:, 0])

"""Networks for DNA sequences: CNN, CNN + BiLSTM (DanQ), transformer encoder, and the founding LSTM + attention.

One-hot models (``sequence_cnn``, ``danq``) take (B, 4, L) float inputs (channels A, C, G, T); token models
(``sequence_transformer``, ``seed_attention``) take (B, T) int64 k-mer tokens where 0 is padding (masked).
Every ``forward`` returns (B, out_channels) logits. Token models expose their token ``embedding`` (for
captum's ``LayerIntegratedGradients``) and, after each forward, their attention weights as detached tensors.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import torch
from torch import nn

from meddl.models.registry import register_model

__all__ = ["DanQ", "SeedAttention", "SequenceCNN", "SequenceTransformer"]


def _check_dropout(dropout: float) -> None:
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


@register_model("sequence_cnn")
class SequenceCNN(nn.Module):
    """DeepBind/Basset-style CNN: (conv → ReLU → max pool) blocks, global max pool, dense, output.

    The first convolution scans for motifs (its filters are position weight matrices of width
    ``kernel_sizes[0]``); the global max pool makes the score independent of where the motif sits.

    Args:
        in_channels: 4 (one-hot A, C, G, T).
        out_channels: 1 for binary or regression, the number of classes for multiclass.
        filters: filters per convolution block.
        kernel_sizes: kernel width per block (same length as ``filters``).
        pool: max-pool width after every block but the last (the last is pooled globally).
        dropout: dropout before and after the dense layer.
        hidden: width of the dense layer.

    Attributes:
        first_layer: the first ``nn.Conv1d`` (motif scanners) for interpretation.
    """

    bf16 = True  # train.precision: auto trains it in bf16 where the hardware has it (benchmarks/precision.py)

    def __init__(
        self,
        in_channels: int = 4,
        out_channels: int = 1,
        filters: Sequence[int] = (128, 128),
        kernel_sizes: Sequence[int] = (15, 7),
        pool: int = 4,
        dropout: float = 0.2,
        hidden: int = 64,
    ) -> None:
        super().__init__()
        _check_dropout(dropout)
        if not filters or len(filters) != len(kernel_sizes):
            raise ValueError(
                f"filters and kernel_sizes must be non-empty and of equal length, got {filters} and {kernel_sizes}"
            )
        if pool < 1:
            raise ValueError(f"pool must be >= 1, got {pool}")
        blocks: list[nn.Module] = []
        width = in_channels
        for i, (n_filters, kernel) in enumerate(zip(filters, kernel_sizes, strict=True)):
            layers: list[nn.Module] = [
                nn.Conv1d(width, int(n_filters), int(kernel), padding=int(kernel) // 2),
                nn.ReLU(),
            ]
            if i < len(filters) - 1 and pool > 1:
                layers.append(nn.MaxPool1d(pool, ceil_mode=True))
            blocks.append(nn.Sequential(*layers))
            width = int(n_filters)
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveMaxPool1d(1),
            nn.Flatten(),  # (B, C)
            nn.Dropout(dropout),
            nn.Linear(width, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, out_channels),
        )

    @property
    def first_layer(self) -> nn.Conv1d:
        """The first convolution (a property, so its weights are not saved twice)."""
        block = self.features[0]
        assert isinstance(block, nn.Sequential), "the first block must be a Sequential"
        layer = block[0]
        assert isinstance(layer, nn.Conv1d), "the first block must start with a Conv1d"
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 4, L) → (B, out_channels) logits."""
        return self.head(self.features(x))


@register_model("danq")
class DanQ(nn.Module):
    """DanQ (Quang & Xie 2016): convolution (motif scanners) → max pool → dropout → BiLSTM (motif grammar).

    The BiLSTM outputs are pooled over time (max and mean, concatenated), then a dense layer and the output.

    Args:
        in_channels: 4 (one-hot A, C, G, T).
        out_channels: outputs (logits).
        filters: convolution filters.
        kernel_size: convolution width.
        pool: max-pool width after the convolution.
        dropout: dropout after pooling and before the output.
        hidden: LSTM hidden size per direction.
        dense: width of the dense layer.
    """

    def __init__(
        self,
        in_channels: int = 4,
        out_channels: int = 1,
        filters: int = 128,
        kernel_size: int = 19,
        pool: int = 4,
        dropout: float = 0.2,
        hidden: int = 64,
        dense: int = 64,
    ) -> None:
        super().__init__()
        _check_dropout(dropout)
        self.conv = nn.Conv1d(in_channels, filters, kernel_size, padding=kernel_size // 2)
        self.pool = nn.MaxPool1d(pool, ceil_mode=True) if pool > 1 else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(filters, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(
            nn.Linear(4 * hidden, dense), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dense, out_channels)
        )

    @property
    def first_layer(self) -> nn.Conv1d:
        """The convolution (motif scanners)."""
        return self.conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 4, L) → (B, out_channels) logits."""
        h = self.dropout(self.pool(torch.relu(self.conv(x))))  # (B, F, L')
        states, _ = self.lstm(h.transpose(1, 2))  # (B, L', 2H)
        pooled = torch.cat([states.amax(dim=1), states.mean(dim=1)], dim=1)  # (B, 4H)
        return self.head(pooled)


def _masked_mean(states: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean of (B, T, C) ``states`` over the positions where ``keep`` (B, T) is True."""
    weights = keep.unsqueeze(-1).to(states.dtype)  # (B, T, 1)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


@register_model("sequence_transformer")
class SequenceTransformer(nn.Module):
    """Transformer encoder over k-mer tokens: embedding + learned positions → encoder → masked mean pool → output.

    After each forward, ``last_attention`` is (B, T) token importance: the attention each token *receives* in
    the last encoder layer (heads averaged), averaged over the non-padding queries; padding positions are 0 and
    each row sums to 1 over the real tokens. ``last_attention_matrix`` keeps that layer's (B, T, T) weights.

    Args:
        vocab_size: number of token ids (``KmerTokenizer.vocab_size``); id 0 is padding.
        out_channels: outputs (logits).
        d_model: embedding and model width.
        n_heads: attention heads (must divide ``d_model``).
        n_layers: encoder layers.
        max_len: longest token sequence accepted (size of the position table).
        dropout: dropout inside the encoder.
    """

    def __init__(
        self,
        vocab_size: int,
        out_channels: int = 1,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        max_len: int = 512,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        _check_dropout(dropout)
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.max_len = max_len
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=0)
        self.positions = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward=2 * d_model, dropout=dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.output = nn.Linear(d_model, out_channels)
        self.last_attention: torch.Tensor | None = None
        self.last_attention_matrix: torch.Tensor | None = None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) int64 tokens → (B, out_channels) logits."""
        if tokens.shape[1] > self.max_len:
            raise ValueError(f"sequence_transformer takes at most max_len={self.max_len} tokens, got {tokens.shape[1]}")
        padding = tokens == 0  # (B, T), True = ignore
        # A row of only padding would make every attention weight NaN; let it attend to itself instead.
        padding = padding & ~padding.all(dim=1, keepdim=True)
        index = torch.arange(tokens.shape[1], device=tokens.device)
        h = self.embedding(tokens) + self.positions(index).unsqueeze(0)  # (B, T, D)
        layers = list(self.encoder.layers)
        for layer in layers[:-1]:
            h = layer(h, src_key_padding_mask=padding)
        last = layers[-1]
        with torch.no_grad():
            query = last.norm1(h) if last.norm_first else h
            _, weights = last.self_attn(
                query, query, query, key_padding_mask=padding, need_weights=True, average_attn_weights=True
            )  # (B, T, T)
        h = last(h, src_key_padding_mask=padding)
        keep = ~padding
        self.last_attention_matrix = weights.detach()
        self.last_attention = _masked_mean(weights.detach(), keep)  # (B, T): attention received per key
        return self.output(_masked_mean(h, keep))


@register_model("seed_attention")
class SeedAttention(nn.Module):
    """The founding document's genomics model, made correct: embedding → LSTM → self-attention → mean → output.

    The Keras original (``Embedding(vocab, 64) → LSTM(64) → Attention() → Dense(1, sigmoid)``) scored a single
    LSTM vector against itself. Here the LSTM returns every time step; queries, keys and values are linear maps
    of those states; scaled dot-product attention runs over time with padding keys masked; the attended states
    are averaged over the non-padding steps and a linear layer gives the logits.

    After each forward: ``last_attention`` (B, T, T), row q = how query step q spreads its attention over the
    steps (rows sum to 1 over real tokens); ``token_importance`` (B, T) = attention each step receives, averaged
    over the non-padding queries (0 at padding).

    Args:
        vocab_size: number of token ids; id 0 is padding.
        out_channels: outputs (logits).
        embed_dim: embedding width (64 in the founding document).
        units: LSTM width (64 in the founding document).
    """

    # Under train.precision: auto, training runs the attention (not the LSTM) in bf16 autocast on bf16 hardware:
    # the (B, T, T) products are most of a step (benchmarks/precision.py checks the test metrics stay in the fp32 CI)
    bf16_attention = True

    def __init__(self, vocab_size: int, out_channels: int = 1, embed_dim: int = 64, units: int = 64) -> None:
        super().__init__()
        self.attention_autocast = False  # set by the trainer (precision auto); only while training
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(embed_dim, units, batch_first=True)
        self.query = nn.Linear(units, units)
        self.key = nn.Linear(units, units)
        self.value = nn.Linear(units, units)
        self.output = nn.Linear(units, out_channels)
        self.last_attention: torch.Tensor | None = None
        self.token_importance: torch.Tensor | None = None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) int64 tokens → (B, out_channels) logits."""
        keep = tokens != 0  # (B, T)
        keep = keep | ~keep.any(dim=1, keepdim=True)  # an all-padding row attends to everything, not to nothing
        states, _ = self.lstm(self.embedding(tokens))  # (B, T, U)
        # Entered only when wanted: a disabled autocast block would switch off a bf16-mixed run's outer autocast here
        bf16 = self.attention_autocast and self.training
        with torch.autocast(states.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            q, k, v = self.query(states), self.key(states), self.value(states)
            scores = (q / math.sqrt(q.shape[-1])) @ k.transpose(1, 2)  # (B, T, T); scaled on the smaller side
            if not bool(keep.all()):  # a batch without padding has nothing to mask
                scores = scores.masked_fill(~keep.unsqueeze(1), float("-inf"))
            attention = torch.softmax(scores, dim=-1)  # (B, T, T); fp32 under autocast
            context = attention @ v  # (B, T, U)
        context = context.float()
        self.last_attention = attention.detach()
        self.token_importance = _masked_mean(attention.detach(), keep)  # (B, T)
        return self.output(_masked_mean(context, keep))

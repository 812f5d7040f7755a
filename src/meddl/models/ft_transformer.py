"""FT-Transformer-style network: every feature becomes a token, a transformer mixes them, attention pools them.

Gorishniy et al., "Revisiting Deep Learning Models for Tabular Data" (NeurIPS 2021). Features arrive already
encoded (numbers scaled, categories one-hot), so each encoded feature j gets its own token
``x_j * W_j + b_j``; a one-hot level therefore acts as a learned category embedding. Instead of a [CLS]
token the tokens are pooled by a learned attention query, whose weights say which features the model
looked at for each case.
"""

from __future__ import annotations

import torch
from torch import nn

from meddl.models.registry import register_model

__all__ = ["AttentionPooling", "FTTransformer", "FeatureTokenizer"]


class FeatureTokenizer(nn.Module):
    """(B, F) → (B, F, D): a weight vector and a bias vector per feature."""

    def __init__(self, in_features: int, d_token: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, d_token))
        self.bias = nn.Parameter(torch.empty(in_features, d_token))
        bound = d_token**-0.5
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-1) * self.weight + self.bias  # (B, F, 1) * (F, D) → (B, F, D)


class AttentionPooling(nn.Module):
    """Pool (B, T, D) tokens to (B, D) with one learned query; returns the (B, T) weights too."""

    def __init__(self, d_token: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.zeros(d_token))
        self.key = nn.Linear(d_token, d_token)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.key(tokens) @ self.query / tokens.shape[-1] ** 0.5  # (B, T)
        weights = torch.softmax(scores, dim=-1)  # (B, T)
        pooled = (weights.unsqueeze(-1) * tokens).sum(dim=1)  # (B, D)
        return pooled, weights


@register_model("ft_transformer")
class FTTransformer(nn.Module):
    """Feature tokens → transformer encoder → attention pooling → linear head.

    Args:
        in_features: number of encoded input features (one token each).
        out_features: 1 for binary or regression, the number of classes for multiclass.
        d_token: token width.
        n_blocks: transformer encoder layers.
        n_heads: attention heads per layer (must divide ``d_token``).
        attention_dropout: dropout on attention weights.
        ffn_factor: width of the feed-forward sublayer as a multiple of ``d_token``.
        dropout: dropout in the feed-forward sublayer and before the head.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        d_token: int = 32,
        n_blocks: int = 2,
        n_heads: int = 4,
        attention_dropout: float = 0.1,
        ffn_factor: float = 2.0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if d_token % n_heads:
            raise ValueError(f"d_token ({d_token}) must be divisible by n_heads ({n_heads})")
        self.tokenizer = FeatureTokenizer(in_features, d_token)
        layer = nn.TransformerEncoderLayer(
            d_model=d_token,
            nhead=n_heads,
            dim_feedforward=int(d_token * ffn_factor),
            dropout=attention_dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=n_blocks, enable_nested_tensor=False)
        self.pool = AttentionPooling(d_token)
        self.norm = nn.LayerNorm(d_token)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_token, out_features)

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B, F) features → (B, out_features) logits, and the (B, F) pooling weights if asked."""
        tokens = self.encoder(self.tokenizer(x))  # (B, F, D)
        pooled, weights = self.pool(tokens)  # (B, D), (B, F)
        logits = self.head(self.dropout(self.norm(pooled)))
        return (logits, weights) if return_attention else logits

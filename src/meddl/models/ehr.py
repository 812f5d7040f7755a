"""Sequence models for EHR features: recurrent networks, RETAIN and a transformer encoder over events.

Every model takes ``x`` float (B, T, F) whose channel 0 is the step mask (1 real step, 0 padding; real steps
left-aligned, in time order — the layout of ``meddl.data.ehr_cohort.extract_features``) and returns logits
(B, out_channels). A row with no real step is read as length 1 (its step 0), so every row has an output.
Padding never changes an output: recurrent networks run on packed sequences, attention masks padded steps.

* ``gru`` / ``lstm`` — optionally bidirectional; the state after the last real step (and, bidirectional, the
  backward state at step 0) → linear head.
* ``retain`` — RETAIN (Choi et al., NeurIPS 2016): visit-level attention α and variable-level attention β from
  two reverse-time GRUs; ``explain`` decomposes the logit exactly into per-step, per-channel contributions.
* ``event_transformer`` — linear projection + learned positions → transformer encoder with a key padding mask →
  masked mean → linear head; ``last_attention`` holds the attention each step received (eval mode).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from meddl.models.registry import register_model

__all__ = ["EventTransformer", "RecurrentClassifier", "Retain", "SequenceGRU", "SequenceLSTM", "step_lengths"]


def step_lengths(x: torch.Tensor) -> torch.Tensor:
    """Number of real steps per row from mask channel 0, at least 1: (B, T, F) → (B,) int64 on the CPU."""
    assert x.ndim == 3, f"expected (B, T, F) input, got shape {tuple(x.shape)}"
    return (x[:, :, 0] > 0.5).sum(dim=1).clamp(min=1).to(device="cpu", dtype=torch.int64)


def _real_steps(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T) bool: True on the first ``lengths`` steps of each row."""
    steps = torch.arange(x.shape[1], device=x.device)
    return steps[None, :] < lengths.to(x.device)[:, None]


def _check_dropout(dropout: float) -> None:
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


class RecurrentClassifier(nn.Module):
    """GRU or LSTM over the real steps, last state → linear head.

    Args:
        in_features: channels per step (F, mask included).
        out_channels: logits per sequence.
        hidden: hidden units per direction.
        layers: stacked recurrent layers.
        bidirectional: also run backward in time; the head sees both directions' final states.
        dropout: between stacked layers and before the head.
        cell: ``gru`` or ``lstm``.
    """

    onnx_unsupported = (
        "it packs each stay to its own length (pack_padded_sequence), which the ONNX exporter cannot trace"
    )

    def __init__(
        self,
        in_features: int,
        out_channels: int,
        hidden: int = 64,
        layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.1,
        cell: str = "gru",
    ) -> None:
        super().__init__()
        _check_dropout(dropout)
        if hidden < 1 or layers < 1:
            raise ValueError(f"hidden and layers must be positive, got hidden={hidden}, layers={layers}")
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        rnn_class = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn_class(
            in_features,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.layers, self.directions, self.hidden = layers, 2 if bidirectional else 1, hidden
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden * self.directions, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) → (B, out_channels) logits."""
        lengths = step_lengths(x)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        final = state[0] if isinstance(state, tuple) else state  # (layers·dirs, B, H), rows in input order
        final = final.view(self.layers, self.directions, x.shape[0], self.hidden)[-1]  # (dirs, B, H)
        final = final.permute(1, 0, 2).reshape(x.shape[0], self.directions * self.hidden)  # (B, dirs·H)
        return self.head(self.dropout(final))


@register_model("gru")
class SequenceGRU(RecurrentClassifier):
    """GRU over visits or time steps (see `RecurrentClassifier`)."""

    def __init__(
        self,
        in_features: int,
        out_channels: int,
        hidden: int = 64,
        layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(in_features, out_channels, hidden, layers, bidirectional, dropout, cell="gru")


@register_model("lstm")
class SequenceLSTM(RecurrentClassifier):
    """LSTM over visits or time steps (see `RecurrentClassifier`)."""

    def __init__(
        self,
        in_features: int,
        out_channels: int,
        hidden: int = 64,
        layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(in_features, out_channels, hidden, layers, bidirectional, dropout, cell="lstm")


def _reverse_real(sequence: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first ``lengths`` steps of each row of (B, T, C), leaving padding in place (an involution)."""
    steps = torch.arange(sequence.shape[1], device=sequence.device)[None, :]  # (1, T)
    last = lengths.to(sequence.device)[:, None] - 1  # (B, 1)
    index = torch.where(steps <= last, last - steps, steps)  # (B, T)
    return sequence.gather(1, index[:, :, None].expand_as(sequence))


@register_model("retain")
class Retain(nn.Module):
    """RETAIN: reverse-time attention over steps (α) and over embedding dimensions (β).

    ``v_t = W_emb x_t`` (no bias); ``g, h`` = two GRUs run from the last real step back to the first;
    ``α = softmax_t(w_α·g_t + b_α)`` over real steps, ``β_t = tanh(W_β h_t + b_β)``;
    ``c = Σ_t α_t β_t ⊙ v_t``; logits = ``W_out c + b_out``.

    Args:
        in_features: channels per step (F).
        out_channels: logits per sequence.
        embed_dim: size of the step embedding v_t.
        hidden: hidden units of each attention GRU.
        dropout: on the GRUs' input and on the context before the head (training only, so ``explain`` is exact
            in eval mode).
    """

    onnx_unsupported = (
        "it packs each stay to its own length (pack_padded_sequence), which the ONNX exporter cannot trace"
    )

    def __init__(
        self, in_features: int, out_channels: int, embed_dim: int = 64, hidden: int = 64, dropout: float = 0.1
    ) -> None:
        super().__init__()
        _check_dropout(dropout)
        self.embed = nn.Linear(in_features, embed_dim, bias=False)
        self.alpha_rnn = nn.GRU(embed_dim, hidden, batch_first=True)
        self.beta_rnn = nn.GRU(embed_dim, hidden, batch_first=True)
        self.alpha_out = nn.Linear(hidden, 1)
        self.beta_out = nn.Linear(hidden, embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(embed_dim, out_channels)

    def _reverse_gru(self, rnn: nn.GRU, v: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        reversed_v = _reverse_real(self.dropout(v), lengths)
        packed = pack_padded_sequence(reversed_v, lengths, batch_first=True, enforce_sorted=False)
        output, _ = rnn(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=v.shape[1])  # (B, T, H)
        return _reverse_real(output, lengths)

    def attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """α (B, T) (0 on padding, sums to 1 per row), β (B, T, E) and the embeddings v (B, T, E)."""
        lengths = step_lengths(x)
        real = _real_steps(x, lengths)
        v = self.embed(x)  # (B, T, E)
        scores = self.alpha_out(self._reverse_gru(self.alpha_rnn, v, lengths)).squeeze(-1)  # (B, T)
        alpha = torch.softmax(scores.masked_fill(~real, float("-inf")), dim=1)
        beta = torch.tanh(self.beta_out(self._reverse_gru(self.beta_rnn, v, lengths)))  # (B, T, E)
        return alpha, beta * real[:, :, None], v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) → (B, out_channels) logits."""
        alpha, beta, v = self.attention(x)
        context = (alpha[:, :, None] * beta * v).sum(dim=1)  # (B, E)
        return self.head(self.dropout(context))

    @torch.no_grad()
    def explain(self, x: torch.Tensor, target: int = 0) -> dict[str, torch.Tensor]:
        """Attention weights and the exact contribution of each input channel at each step to one logit.

        ``ω(t, j) = α_t · w_outᵀ (β_t ⊙ W_emb[:, j]) · x_{t, j}``; in eval mode Σ_t Σ_j ω(t, j) + b_out equals
        the logit of output ``target``.

        Args:
            x: (B, T, F) input.
            target: the output whose logit is decomposed.

        Returns:
            ``alpha`` (B, T), ``beta`` (B, T, E), ``contributions`` (B, T, F), ``logit`` (B,) and ``bias`` (scalar).
        """
        was_training = self.training
        self.eval()
        try:
            alpha, beta, _ = self.attention(x)
            weighted = beta * self.head.weight[target][None, None, :]  # (B, T, E)
            per_channel = weighted @ self.embed.weight  # (B, T, F)
            contributions = alpha[:, :, None] * per_channel * x
            return {
                "alpha": alpha,
                "beta": beta,
                "contributions": contributions,
                "logit": self.forward(x)[:, target],
                "bias": self.head.bias[target].detach().clone(),
            }
        finally:
            self.train(was_training)


@register_model("event_transformer")
class EventTransformer(nn.Module):
    """Transformer encoder over steps (events, bins or visits) with a key padding mask and masked mean pooling.

    Args:
        in_features: channels per step (F).
        out_channels: logits per sequence.
        d_model: width of the encoder.
        n_heads: attention heads (must divide d_model).
        n_layers: encoder layers (pre-norm).
        dropout: inside the encoder and before the head.
        max_len: most steps a sequence may have (size of the learned positional embedding).

    Attributes:
        last_attention: after a forward pass in eval mode, (B, T) attention each step received in the last
            layer — the softmax weights averaged over heads and over the real query steps; 0 on padding and
            summing to 1 per row. None after a training-mode pass.
    """

    def __init__(
        self,
        in_features: int,
        out_channels: int,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        dropout: float = 0.1,
        max_len: int = 512,
    ) -> None:
        super().__init__()
        _check_dropout(dropout)
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.max_len = max_len
        self.project = nn.Linear(in_features, d_model)
        self.position = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward=2 * d_model, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, out_channels)
        self.last_attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) → (B, out_channels) logits."""
        steps = x.shape[1]
        if steps > self.max_len:
            raise ValueError(f"event_transformer was built for at most max_len={self.max_len} steps, got {steps}")
        real = _real_steps(x, step_lengths(x))  # (B, T)
        padding = ~real
        h = self.project(x) + self.position(torch.arange(steps, device=x.device))[None]  # (B, T, D)
        layers = list(self.encoder.layers)
        self.last_attention = None
        for i, layer in enumerate(layers):
            if i == len(layers) - 1 and not self.training:
                self.last_attention = self._received_attention(layer, h, padding, real)
            h = layer(h, src_key_padding_mask=padding)
        h = self.norm(h)
        weights = real.to(h.dtype)[:, :, None]  # (B, T, 1)
        pooled = (h * weights).sum(dim=1) / weights.sum(dim=1)  # (B, D)
        return self.head(self.dropout(pooled))

    @torch.no_grad()
    def _received_attention(
        self, layer: nn.TransformerEncoderLayer, h: torch.Tensor, padding: torch.Tensor, real: torch.Tensor
    ) -> torch.Tensor:
        query = layer.norm1(h) if layer.norm_first else h
        _, weights = layer.self_attn(
            query, query, query, key_padding_mask=padding, need_weights=True, average_attn_weights=True
        )  # (B, T_query, T_key)
        queries = real.to(weights.dtype)[:, :, None]  # (B, T, 1)
        return (weights * queries).sum(dim=1) / queries.sum(dim=1)  # (B, T)

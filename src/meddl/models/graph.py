"""Graph neural networks for molecules, in plain PyTorch: a directed message-passing network (``mpnn``,
chemprop's D-MPNN), a graph attention network (``gat``, GATv2 attention with bond features) and an MLP on
Morgan fingerprints (``fingerprint_mlp``).

**One array per molecule.** A molecule reaches the network as one float32 array of ``max_atoms + max_edges``
rows (the *packed graph*, see :func:`unpack`): row ``i < max_atoms`` is atom ``i`` (column 0: 1 if the atom
exists, then its features), row ``max_atoms + e`` is directed bond ``e`` (column 0: 1 if it exists, columns 1–3:
its source atom, target atom and the index of the bond running the other way, then the bond's features). Padding
rows are zero. A batch is then a plain ``(B, rows, width)`` tensor, so everything MedDL does with arrays —
batching without a collate step, MC dropout, ensembles, conformal sets, robustness, ONNX export, integrated
gradients against a baseline that zeroes the atom features — works for graphs unchanged.

Messages are gathered and summed with ``torch.gather`` and ``scatter_add`` inside each molecule, in fixed
shapes: no per-batch graph building, no PyTorch Geometric (whose compiled extensions are built per torch
release and would pin ours), and the graph exports to ONNX as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from meddl.models.mlp import MLP
from meddl.models.registry import register_model

__all__ = ["DirectedMPNN", "FingerprintMLP", "GraphAttentionNetwork", "unpack"]

EDGE_COLUMNS = 4  # present, source, target, reverse (meddl.preprocess.molecules packs the same layout)


def unpack(
    x: torch.Tensor, max_atoms: int, atom_features: int, bond_features: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The parts of a batch of packed graphs ``x`` (B, max_atoms + max_edges, width).

    Returns:
        ``atoms`` (B, A, Fa), ``atom_mask`` (B, A), ``bonds`` (B, E, Fb), ``edge_mask`` (B, E), and the int64
        ``source``, ``target`` and ``reverse`` atom/edge indices (B, E) of each directed bond.
    """
    atom_rows, edge_rows = x[:, :max_atoms], x[:, max_atoms:]
    atoms = atom_rows[..., 1 : 1 + atom_features]
    atom_mask = atom_rows[..., 0]
    edge_mask = edge_rows[..., 0]
    # Indices are stored as floats; anything out of range (a hand-made or traced input) is clamped into the
    # molecule, so a bad input cannot index outside the batch.
    index = edge_rows[..., 1:EDGE_COLUMNS].detach().round().long()
    atoms_index = index[..., :2].clamp(0, max_atoms - 1)
    reverse = index[..., 2].clamp(0, edge_rows.shape[1] - 1)
    bonds = edge_rows[..., EDGE_COLUMNS : EDGE_COLUMNS + bond_features]
    return atoms, atom_mask, bonds, edge_mask, atoms_index[..., 0], atoms_index[..., 1], reverse


def _gather(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[b, index[b, e]]`` for (B, N, H) values and (B, E) indices → (B, E, H)."""
    return torch.gather(values, 1, index.unsqueeze(-1).expand(-1, -1, values.shape[-1]))


def _scatter_sum(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Sum of (B, E, H) ``values`` into ``size`` slots by (B, E) ``index`` → (B, size, H)."""
    out = values.new_zeros(values.shape[0], size, values.shape[-1])
    return out.scatter_add(1, index.unsqueeze(-1).expand(-1, -1, values.shape[-1]), values)


class _GraphNetwork(nn.Module):
    """What both graph networks share: the packed layout, the readout over atoms and the prediction head."""

    def __init__(
        self, max_atoms: int, atom_features: int, bond_features: int, hidden: int, out_features: int, dropout: float
    ) -> None:
        super().__init__()
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.max_atoms, self.atom_features, self.bond_features = int(max_atoms), int(atom_features), int(bond_features)
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, out_features),
        )

    def _unpack(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return unpack(x, self.max_atoms, self.atom_features, self.bond_features)

    def _readout(self, atom_states: torch.Tensor, atom_mask: torch.Tensor) -> torch.Tensor:
        """Mean of the atoms' states per molecule (chemprop's default), then the head."""
        pooled = (atom_states * atom_mask.unsqueeze(-1)).sum(1) / atom_mask.sum(1, keepdim=True).clamp(min=1.0)
        return self.head(pooled)


@register_model("mpnn")
class DirectedMPNN(_GraphNetwork):
    """Directed message passing (D-MPNN; Yang et al. 2019, chemprop): hidden states live on directed bonds, and
    a bond's message sums the bonds entering its source atom except its own reverse, so a message never flows
    straight back. After ``depth`` steps each atom sums its incoming bond states, the atoms are averaged and a
    two-layer head predicts.

    Args:
        max_atoms, atom_features, bond_features: the packed layout (set from the data).
        out_features: outputs (set from the task).
        hidden: width of the bond and atom states.
        depth: message-passing steps.
        dropout: dropout in the message updates and the head.
    """

    def __init__(
        self,
        max_atoms: int,
        atom_features: int,
        bond_features: int,
        out_features: int,
        hidden: int = 300,
        depth: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(max_atoms, atom_features, bond_features, hidden, out_features, dropout)
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.depth = int(depth)
        self.bond_input = nn.Linear(atom_features + bond_features, hidden, bias=False)
        self.bond_update = nn.Linear(hidden, hidden, bias=False)
        self.atom_output = nn.Linear(atom_features + hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        atoms, atom_mask, bonds, edge_mask, source, target, reverse = self._unpack(x)
        keep = edge_mask.unsqueeze(-1)
        initial = self.bond_input(torch.cat([_gather(atoms, source), bonds], dim=-1))
        state = torch.relu(initial) * keep
        for _ in range(self.depth - 1):
            incoming = _scatter_sum(state, target, self.max_atoms)  # (B, A, H): every bond entering each atom
            message = _gather(incoming, source) - _gather(state, reverse)  # …entering my source, but my reverse
            state = self.dropout(torch.relu(initial + self.bond_update(message))) * keep
        incoming = _scatter_sum(state, target, self.max_atoms)
        atom_states = self.dropout(torch.relu(self.atom_output(torch.cat([atoms, incoming], dim=-1))))
        return self._readout(atom_states, atom_mask)


@register_model("gat")
class GraphAttentionNetwork(_GraphNetwork):
    """Graph attention (GATv2; Brody et al. 2022) over atoms: each atom attends to its bonded neighbours and
    itself, the attention score of a neighbour depending on both atoms and the bond between them; ``heads``
    attention heads per layer, residual connections and layer norm between layers. Attention is computed on the
    edge list (a softmax over the bonds entering each atom), so its cost grows with the bonds, not atoms².

    Args:
        max_atoms, atom_features, bond_features: the packed layout (set from the data).
        out_features: outputs (set from the task).
        hidden: width of the atom states (divisible by ``heads``).
        layers: attention layers.
        heads: attention heads per layer.
        dropout: dropout on the attention weights and in the head.
    """

    def __init__(
        self,
        max_atoms: int,
        atom_features: int,
        bond_features: int,
        out_features: int,
        hidden: int = 128,
        layers: int = 3,
        heads: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(max_atoms, atom_features, bond_features, hidden, out_features, dropout)
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        if layers < 1:
            raise ValueError(f"layers must be at least 1, got {layers}")
        self.heads, self.width = int(heads), hidden // heads
        self.embed = nn.Linear(atom_features, hidden)
        self.source = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.target = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.bond = nn.ModuleList(nn.Linear(bond_features + 1, hidden, bias=False) for _ in range(layers))
        self.score = nn.ParameterList(nn.Parameter(torch.randn(heads, self.width) * 0.1) for _ in range(layers))
        self.norm = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.attention_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        atoms, atom_mask, bonds, edge_mask, source, target, _ = self._unpack(x)
        b, a = atoms.shape[:2]
        # The edge list plus one "self" edge per atom (its own state takes part, flagged by the last bond column):
        # attention runs over each molecule's bonds only, O(bonds) rather than O(atoms²).
        own = torch.arange(a, device=x.device).expand(b, a)
        source = torch.cat([source, own], dim=1)
        target = torch.cat([target, own], dim=1)
        mask = torch.cat([edge_mask, atom_mask], dim=1).unsqueeze(-1)  # (B, E + A, 1)
        flags = torch.cat([torch.zeros_like(edge_mask), atom_mask], dim=1).unsqueeze(-1)
        edges = torch.cat([torch.cat([bonds, atom_mask.new_zeros(b, a, bonds.shape[-1])], dim=1), flags], dim=-1)
        h = self.embed(atoms)
        for layer in range(len(self.source)):
            sources = _gather(self.source[layer](h), source).view(b, -1, self.heads, self.width)
            targets = _gather(self.target[layer](h), target).view(b, -1, self.heads, self.width)
            edge = self.bond[layer](edges).view(b, -1, self.heads, self.width)
            logits = (nn.functional.leaky_relu(sources + targets + edge, 0.2) * self.score[layer]).sum(-1)
            logits = logits.masked_fill(mask <= 0, -1e4)  # (B, E + A, heads)
            # softmax over the edges entering each atom: shift by the atom's largest logit, then normalise
            largest = logits.new_full((b, a, self.heads), -1e4).scatter_reduce(
                1, target.unsqueeze(-1).expand_as(logits), logits, reduce="amax", include_self=True
            )
            weights = torch.exp(logits - torch.gather(largest, 1, target.unsqueeze(-1).expand_as(logits))) * mask
            total = _scatter_sum(weights, target, a).clamp(min=1e-12)  # padded atoms: nothing enters
            weights = self.attention_dropout(weights / torch.gather(total, 1, target.unsqueeze(-1).expand_as(weights)))
            update = _scatter_sum((weights.unsqueeze(-1) * sources).reshape(b, -1, self.heads * self.width), target, a)
            h = self.norm[layer](h + nn.functional.elu(update)) * atom_mask.unsqueeze(-1)
        return self._readout(h, atom_mask)


@register_model("fingerprint_mlp")
class FingerprintMLP(MLP):
    """An MLP on Morgan (ECFP) fingerprint bits: the classical featurisation, learned by a network.

    Args:
        in_features: fingerprint bits (``preprocess.fingerprint_bits``; set from the data).
        out_features: outputs (set from the task).
        hidden: widths of the hidden layers.
        dropout: dropout after each hidden layer.
        activation: relu, gelu or silu.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (512, 128),
        dropout: float = 0.2,
        activation: str = "relu",
    ) -> None:
        super().__init__(in_features, out_features, hidden, dropout, activation)

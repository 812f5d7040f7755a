"""Sequence networks: shapes, attention bookkeeping, registry, and that each one learns a toy motif task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from meddl.models.registry import build_model
from meddl.models.sequence import DanQ, SeedAttention, SequenceCNN, SequenceTransformer
from meddl.preprocess.sequences import KmerTokenizer, one_hot

MOTIF = "TGACTCAG"


def _toy_motif_task(n: int = 300, length: int = 40, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Random DNA; the positive half carries MOTIF at a random place."""
    rng = np.random.default_rng(seed)
    sequences, labels = [], np.arange(n) % 2
    for label in labels:
        bases = list("".join(rng.choice(list("ACGT"), size=length)))
        if label:
            start = int(rng.integers(0, length - len(MOTIF)))
            bases[start : start + len(MOTIF)] = MOTIF
        sequences.append("".join(bases))
    return sequences, labels.astype(np.float32)


def _train_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float = 3e-3) -> float:
    """Train on the first 240 items, return accuracy on the other 60."""
    torch.manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    train, test = slice(0, 240), slice(240, None)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(240)
        for batch in order.split(32):
            optimiser.zero_grad()
            loss = loss_fn(model(x[train][batch]).squeeze(1), y[train][batch])
            loss.backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        predicted = (model(x[test]).squeeze(1) > 0).float()
    return float((predicted == y[test]).float().mean())


@pytest.fixture(scope="module")
def toy() -> tuple[list[str], torch.Tensor]:
    sequences, labels = _toy_motif_task()
    return sequences, torch.as_tensor(labels)


@pytest.mark.parametrize(
    ("factory", "epochs"),
    [
        (lambda: SequenceCNN(4, 1, filters=(32, 32), kernel_sizes=(9, 5), pool=2, dropout=0.0, hidden=16), 12),
        (lambda: DanQ(4, 1, filters=32, kernel_size=9, hidden=16, dense=16, dropout=0.0), 15),
    ],
    ids=["sequence_cnn", "danq"],
)
def test_one_hot_models_learn_a_motif(factory, epochs, toy) -> None:
    torch.manual_seed(0)
    sequences, y = toy
    x = torch.as_tensor(one_hot(sequences, 40))
    assert _train_accuracy(factory(), x, y, epochs) >= 0.85


@pytest.mark.parametrize(
    ("factory", "epochs"),
    [
        (lambda v: SequenceTransformer(v, 1, d_model=32, n_heads=2, n_layers=1, max_len=64, dropout=0.0), 20),
        (lambda v: SeedAttention(v, 1, embed_dim=32, units=32), 20),
    ],
    ids=["sequence_transformer", "seed_attention"],
)
def test_token_models_learn_a_motif(factory, epochs, toy) -> None:
    torch.manual_seed(0)
    sequences, y = toy
    tokenizer = KmerTokenizer(k=4)
    x = torch.as_tensor(tokenizer.encode(sequences, 40))
    assert _train_accuracy(factory(tokenizer.vocab_size), x, y, epochs) >= 0.85


def test_registered_with_data_arguments() -> None:
    cnn = build_model("sequence_cnn", {"filters": [16, 16], "kernel_sizes": [9, 5]}, in_channels=4, out_channels=3)
    assert isinstance(cnn, SequenceCNN) and isinstance(cnn.first_layer, nn.Conv1d)
    assert cnn.first_layer.weight.shape == (16, 4, 9)
    assert cnn(torch.zeros(2, 4, 200)).shape == (2, 3)
    danq = build_model("danq", {"filters": 16, "hidden": 8}, in_channels=4, out_channels=2)
    assert isinstance(danq, DanQ) and danq(torch.zeros(2, 4, 101)).shape == (2, 2)
    transformer = build_model("sequence_transformer", {"d_model": 16, "n_heads": 2}, vocab_size=66, out_channels=1)
    assert isinstance(transformer, SequenceTransformer)
    seed = build_model("seed_attention", {}, vocab_size=66, out_channels=1)
    assert isinstance(seed, SeedAttention) and seed.embedding.embedding_dim == 64 and seed.lstm.hidden_size == 64


def test_defaults_run_on_200_bases() -> None:
    torch.manual_seed(0)
    assert SequenceCNN(4, 1)(torch.rand(3, 4, 200)).shape == (3, 1)
    assert DanQ(4, 1)(torch.rand(3, 4, 200)).shape == (3, 1)


@pytest.mark.parametrize("cls", [SequenceTransformer, SeedAttention])
def test_token_models_ignore_padding_and_keep_attention(cls) -> None:
    torch.manual_seed(0)
    model = cls(66, 2).eval()
    tokens = torch.randint(2, 66, (2, 10))
    padded = torch.cat([tokens, torch.zeros(2, 5, dtype=torch.int64)], dim=1)
    with torch.no_grad():
        short, long = model(tokens), model(padded)
    torch.testing.assert_close(short, long, atol=1e-5, rtol=1e-5)
    importance = model.last_attention if cls is SequenceTransformer else model.token_importance
    assert importance.shape == (2, 15)
    assert torch.all(importance[:, 10:] == 0)
    torch.testing.assert_close(importance.sum(dim=1), torch.ones(2))
    if cls is SeedAttention:
        assert model.last_attention.shape == (2, 15, 15)
        torch.testing.assert_close(model.last_attention[:, :10].sum(dim=-1), torch.ones(2, 10))
    else:
        assert model.last_attention_matrix.shape == (2, 15, 15)


def test_transformer_rejects_too_long_input() -> None:
    with pytest.raises(ValueError, match="at most max_len=8 tokens, got 9"):
        SequenceTransformer(10, 1, max_len=8)(torch.ones(1, 9, dtype=torch.int64))


def test_all_padding_row_gives_finite_logits() -> None:
    for model in (SequenceTransformer(10, 1).eval(), SeedAttention(10, 1).eval()):
        assert torch.isfinite(model(torch.zeros(2, 6, dtype=torch.int64))).all()

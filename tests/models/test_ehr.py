"""EHR sequence models: padding invariance, a toy task each, RETAIN's exact decomposition, transformer attention."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from meddl.models.ehr import EventTransformer, Retain, step_lengths
from meddl.models.registry import build_model

ARCHS: list[tuple[str, dict[str, object]]] = [
    ("gru", {}),
    ("gru", {"bidirectional": True, "layers": 2}),
    ("lstm", {}),
    ("lstm", {"bidirectional": True}),
    ("retain", {}),
    ("event_transformer", {}),
]


def _batch(lengths: list[int], steps: int, features: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), steps, features)
    for row, length in enumerate(lengths):
        x[row, :length, 0] = 1.0
        x[row, :length, 1:] = torch.randn(length, features - 1, generator=generator)
    return x


def _model(arch: str, params: dict[str, object], features: int = 5, out: int = 2) -> nn.Module:
    torch.manual_seed(0)
    return build_model(arch, {"dropout": 0.0, **params}, in_features=features, out_channels=out).eval()


def test_step_lengths_treat_all_padding_as_one() -> None:
    assert step_lengths(_batch([3, 0, 5], 5, 3)).tolist() == [3, 1, 5]


@pytest.mark.parametrize(("arch", "params"), ARCHS)
def test_padding_changes_nothing(arch: str, params: dict[str, object]) -> None:
    model = _model(arch, params)
    x = _batch([6, 3, 1, 0], 6, 5)
    with torch.no_grad():
        base = model(x)
        longer = torch.cat([x, torch.zeros(4, 4, 5)], dim=1)  # four extra padding steps
        garbage = longer.clone()
        # Non-zero values on padding steps (not on step 0 of the empty row: that row is read as length 1).
        is_padding = torch.arange(10)[None, :] >= step_lengths(x)[:, None]  # (B, T)
        garbage[:, :, 1:] += 7.0 * is_padding[:, :, None]
        assert base.shape == (4, 2)
        torch.testing.assert_close(model(longer), base, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model(garbage), base, atol=1e-5, rtol=1e-5)
        # A real step, by contrast, does change the output of its row.
        changed = x.clone()
        changed[1, 3, 0], changed[1, 3, 1] = 1.0, 3.0
        assert not torch.allclose(model(changed)[1], base[1], atol=1e-4)


def _toy(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Label = the marker channel 1 is on at any real step; lengths 1-8; channels 2-3 are noise."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 9, (n,), generator=generator)
    y = (torch.rand(n, generator=generator) < 0.5).float()
    x = torch.zeros(n, 8, 4)
    for row in range(n):
        length = int(lengths[row])
        x[row, :length, 0] = 1.0
        x[row, :length, 2:] = torch.randn(length, 2, generator=generator)
        if y[row]:
            step = int(torch.randint(0, length, (1,), generator=generator))
            x[row, step, 1] = 1.0
    return x, y


@pytest.mark.parametrize(
    ("arch", "params"),
    [
        ("gru", {"hidden": 32}),
        ("lstm", {"hidden": 32}),
        ("retain", {}),
        ("event_transformer", {"d_model": 32, "n_layers": 1}),
    ],
)
def test_learns_marker_task(arch: str, params: dict[str, object]) -> None:
    torch.manual_seed(0)
    model = build_model(arch, {"dropout": 0.0, **params}, in_features=4, out_channels=1)
    x_train, y_train = _toy(256, seed=1)
    x_test, y_test = _toy(128, seed=2)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    for _ in range(60):
        optimiser.zero_grad()
        loss = loss_fn(model(x_train).squeeze(1), y_train)
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        accuracy = ((model(x_test).squeeze(1) > 0).float() == y_test).float().mean().item()
    assert accuracy > 0.85, f"{arch}: accuracy {accuracy:.2f}"


def test_retain_contributions_sum_to_the_logit() -> None:
    model = Retain(in_features=5, out_channels=3, embed_dim=8, hidden=8, dropout=0.3)
    x = _batch([4, 2, 0], 4, 5, seed=3)
    explanation = model.explain(x, target=2)
    assert model.training, "explain restores the training mode"
    model.eval()
    logits = model(x)
    alpha, beta, contributions = explanation["alpha"], explanation["beta"], explanation["contributions"]
    assert alpha.shape == (3, 4) and beta.shape == (3, 4, 8) and contributions.shape == (3, 4, 5)
    torch.testing.assert_close(contributions.sum(dim=(1, 2)) + explanation["bias"], logits[:, 2], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(explanation["logit"], logits[:, 2])
    torch.testing.assert_close(alpha.sum(dim=1), torch.ones(3))
    assert alpha[1, 2:].abs().max() == 0 and alpha[2, 1:].abs().max() == 0  # padding gets no attention
    assert contributions[1, 2:].abs().max() == 0


def test_retain_alpha_is_reverse_time() -> None:
    """α of an early step depends on later steps (the GRU runs backward), never on padding."""
    model = Retain(in_features=3, out_channels=1, embed_dim=4, hidden=4, dropout=0.0).eval()
    x = _batch([3], 3, 3, seed=4)
    changed = x.clone()
    changed[0, 2, 1] += 2.0  # alter the last step
    alpha, alpha_changed = model.explain(x)["alpha"], model.explain(changed)["alpha"]
    assert not torch.allclose(alpha[0, 0], alpha_changed[0, 0])


def test_transformer_last_attention() -> None:
    model = EventTransformer(in_features=5, out_channels=1, d_model=16, n_heads=2, n_layers=1, dropout=0.0)
    x = _batch([5, 2], 5, 5)
    model.train()
    model(x)
    assert model.last_attention is None
    model.eval()
    with torch.no_grad():
        model(x)
    attention = model.last_attention
    assert attention is not None and attention.shape == (2, 5)
    torch.testing.assert_close(attention.sum(dim=1), torch.ones(2))
    assert attention[1, 2:].abs().max() == 0
    with pytest.raises(ValueError, match="max_len=4"):
        EventTransformer(in_features=5, out_channels=1, max_len=4)(x)

"""The one integrated-gradients routine (meddl.explain.attribution) and the per-kind explainers built on it."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
import torch
from torch import nn

from meddl.explain import compute_integrated_gradients, integrated_gradients, tabular_integrated_gradients
from meddl.explain import ehr as ehr_explain
from meddl.explain import sequences as sequence_explain
from meddl.explain import signals as signal_explain
from meddl.models import MLP
from meddl.models.ehr import SequenceGRU
from meddl.models.sequence import SeedAttention, SequenceCNN
from meddl.preprocess.sequences import KmerTokenizer


def _linear(weights: list[list[float]], bias: list[float]) -> nn.Linear:
    layer = nn.Linear(len(weights[0]), len(weights))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weights))
        layer.bias.copy_(torch.tensor(bias))
    return layer


def _outputs(model: nn.Module, x: np.ndarray | torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(x, dtype=torch.float32)).numpy()


def test_linear_model_is_exact_with_a_shared_baseline() -> None:
    model = _linear([[2.0, -1.0, 0.5], [0.0, 3.0, 1.0]], [0.3, -0.2])
    x = np.array([[1.0, 2.0, 4.0], [-1.0, 0.5, 0.0]], dtype=np.float64)
    baseline = np.array([0.5, 0.0, 1.0])
    attributions = compute_integrated_gradients(model, x, baseline, target=0, n_steps=4)
    assert attributions.dtype == np.float32 and attributions.shape == (2, 3)
    np.testing.assert_allclose(attributions, (x - baseline) * [2.0, -1.0, 0.5], rtol=1e-6)
    # Completeness: the row sums are f(x) − f(baseline) of the target output.
    expected = _outputs(model, x)[:, 0] - _outputs(model, baseline[None])[0, 0]
    np.testing.assert_allclose(attributions.sum(axis=1), expected, rtol=1e-6)


def test_completeness_on_a_nonlinear_model_with_per_row_baselines() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 8), nn.GELU(), nn.Linear(8, 1))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 4)).astype(np.float32)
    baselines = rng.normal(size=(9, 4)).astype(np.float32)
    attributions = compute_integrated_gradients(model, x, baselines, n_steps=64, batch_size=4)  # target=None
    expected = (_outputs(model, x) - _outputs(model, baselines))[:, 0]
    np.testing.assert_allclose(attributions.sum(axis=1), expected, atol=1e-4)
    assert np.abs(attributions).sum() > 0.1


def test_single_output_models_accept_target_none_or_zero() -> None:
    torch.manual_seed(1)

    class Score(nn.Module):  # (B, F) → (B,): a regression head without an output axis
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(3, 5), nn.Softplus(), nn.Linear(5, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)[:, 0]

    model = Score()
    x = torch.randn(4, 3)
    flat = compute_integrated_gradients(model, x, n_steps=16)  # (B,) output
    with_axis = compute_integrated_gradients(model.net, x, target=None, n_steps=16)  # (B, 1) output
    assert flat.shape == with_axis.shape == (4, 3)
    np.testing.assert_allclose(flat, with_axis, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(
        compute_integrated_gradients(model.net, x, target=0, n_steps=16),
        compute_integrated_gradients(model.net, x, target=None, n_steps=16),
    )


def test_multiclass_uses_each_rows_target() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, 3))
    x = torch.randn(7, 5)
    target = np.array([0, 1, 2, 2, 1, 0, 1])
    attributions = compute_integrated_gradients(model, x, 0.0, target=target, n_steps=128, batch_size=3)
    difference = _outputs(model, x) - _outputs(model, torch.zeros(1, 5))
    np.testing.assert_allclose(attributions.sum(axis=1), difference[np.arange(7), target], atol=5e-3)
    # Row by row with a scalar target gives the same numbers as the per-row target.
    for row, output in enumerate(target):
        alone = compute_integrated_gradients(model, x[row : row + 1], 0.0, target=int(output), n_steps=128)
        np.testing.assert_allclose(alone[0], attributions[row], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match=r"one integer entry per row \(7\)"):
        compute_integrated_gradients(model, x, target=[0, 1])
    with pytest.raises(ValueError, match="baselines must have the inputs' shape"):
        compute_integrated_gradients(model, x, np.zeros(4), target=0)


def test_a_model_in_training_mode_is_evaluated_in_eval_mode_and_restored() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.BatchNorm1d(8), nn.Linear(8, 2))
    model.train()
    model[2].eval()  # a frozen normalisation layer keeps its own mode
    x = torch.randn(6, 4)
    first = compute_integrated_gradients(model, x, target=1, n_steps=16)
    second = compute_integrated_gradients(model, x, target=1, n_steps=16)
    assert model.training and model[1].training and not model[2].training
    np.testing.assert_array_equal(first, second)  # dropout was off: deterministic
    model.eval()
    np.testing.assert_array_equal(compute_integrated_gradients(model, x, target=1, n_steps=16), first)
    assert not model.training


def test_no_rows_gives_empty_float32() -> None:
    empty = compute_integrated_gradients(nn.Linear(3, 2), np.zeros((0, 3)), target=0)
    assert empty.shape == (0, 3) and empty.dtype == np.float32


def test_tabular_wrapper_is_the_core() -> None:
    torch.manual_seed(0)
    model = MLP(5, 3, hidden=(8,), dropout=0.0).eval()
    features = np.random.default_rng(0).normal(size=(11, 5))
    baseline = features.mean(axis=0)
    target = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1])
    wrapped = tabular_integrated_gradients(model, features, baseline, target_index=target, steps=16, batch_size=4)
    core = compute_integrated_gradients(model, features, baseline, target=target, n_steps=16, batch_size=4)
    np.testing.assert_array_equal(wrapped, core)
    assert integrated_gradients is tabular_integrated_gradients


def test_signal_wrapper_is_the_core_from_a_zero_baseline() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 4, 5), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 2))
    x = torch.randn(5, 2, 40)
    wrapped = signal_explain.signal_integrated_gradients(model, x, target=[0, 1, 1, 0, 1], n_steps=8, batch_size=2)
    core = compute_integrated_gradients(model, x, 0.0, target=[0, 1, 1, 0, 1], n_steps=8, batch_size=2)
    np.testing.assert_array_equal(wrapped, core)
    assert signal_explain.integrated_gradients_signal is signal_explain.signal_integrated_gradients


def test_dna_wrapper_is_the_core_from_a_uniform_or_zero_baseline() -> None:
    torch.manual_seed(0)
    model = SequenceCNN(4, 2, filters=(4,), kernel_sizes=(5,), dropout=0.0, hidden=4).eval()
    x = np.eye(4, dtype=np.float32)[np.random.default_rng(0).integers(0, 4, (3, 24))].transpose(0, 2, 1)
    cases: tuple[tuple[Literal["uniform", "zeros"], float], ...] = (("uniform", 0.25), ("zeros", 0.0))
    for name, value in cases:
        wrapped = sequence_explain.dna_integrated_gradients(model, x, target=1, n_steps=8, baseline=name)
        core = compute_integrated_gradients(model, x, np.full_like(x, value), target=1, n_steps=8)
        np.testing.assert_array_equal(wrapped, core)
    assert sequence_explain.integrated_gradients_sequence is sequence_explain.dna_integrated_gradients


def test_token_wrapper_is_the_core_on_the_embedding_layer() -> None:
    torch.manual_seed(0)
    tokenizer = KmerTokenizer(k=2)
    model = SeedAttention(tokenizer.vocab_size, 2, embed_dim=8, units=8).eval()
    tokens = tokenizer.encode(["ACGTTGCA", "ACGT"], 8)
    wrapped = sequence_explain.token_attributions(model, tokens, target=1, n_steps=16)
    ids = torch.as_tensor(tokens, dtype=torch.int64)
    per_dimension = compute_integrated_gradients(
        model, ids, torch.where(ids == 0, ids, torch.ones_like(ids)), target=1, n_steps=16, layer=model.embedding
    )  # (N, T, E)
    assert per_dimension.shape == (*tokens.shape, 8)
    np.testing.assert_allclose(wrapped, per_dimension.sum(axis=-1) * (tokens != 0), rtol=1e-5, atol=1e-6)


def test_ehr_wrapper_is_the_core_from_the_mask_keeping_baseline() -> None:
    torch.manual_seed(0)
    model = SequenceGRU(in_features=4, out_channels=2, hidden=8, dropout=0.0).train()
    x = torch.zeros(3, 5, 4)
    for row, length in enumerate([5, 2, 3]):
        x[row, :length, 0] = 1.0
        x[row, :length, 1:] = torch.randn(length, 3)
    baseline = torch.zeros_like(x)
    baseline[:, :, 0] = x[:, :, 0]
    wrapped = ehr_explain.ehr_integrated_gradients(model, x, target=1, n_steps=8, batch_size=2)
    core = compute_integrated_gradients(model, x, baseline, target=1, n_steps=8, batch_size=2)
    np.testing.assert_array_equal(wrapped, core)
    assert model.training
    assert ehr_explain.integrated_gradients_sequence is ehr_explain.ehr_integrated_gradients
    assert ehr_explain.integrated_gradients_sequence is not sequence_explain.integrated_gradients_sequence

"""Tests of meddl.models.ft_transformer."""

from __future__ import annotations

import pytest
import torch

from meddl.models import AttentionPooling, FeatureTokenizer, FTTransformer


def small(out_features: int, in_features: int = 6) -> FTTransformer:
    torch.manual_seed(0)
    return FTTransformer(in_features, out_features, d_token=8, n_blocks=1, n_heads=2)


@pytest.mark.parametrize("out_features", [1, 3])
def test_output_shape(out_features):
    model = small(out_features).eval()
    assert model(torch.randn(5, 6)).shape == (5, out_features)


def test_attention_weights_are_a_distribution_over_features():
    model = small(1).eval()
    # a non-zero query so the weights are not trivially uniform
    with torch.no_grad():
        model.pool.query.normal_()
    x = torch.randn(4, 6)
    logits, weights = model(x, return_attention=True)
    assert logits.shape == (4, 1)
    assert weights.shape == (4, 6)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(4))
    assert not torch.allclose(weights, torch.full_like(weights, 1 / 6))
    torch.testing.assert_close(model(x), logits)


def test_feature_tokenizer_gives_each_feature_its_own_token():
    tokenizer = FeatureTokenizer(3, 4)
    x = torch.tensor([[1.0, 2.0, 0.0]])
    tokens = tokenizer(x)
    assert tokens.shape == (1, 3, 4)
    torch.testing.assert_close(tokens[0, 1], 2.0 * tokenizer.weight[1] + tokenizer.bias[1])
    torch.testing.assert_close(tokens[0, 2], tokenizer.bias[2])


def test_attention_pooling_is_weighted_mean_of_tokens():
    pool = AttentionPooling(4)
    tokens = torch.randn(2, 5, 4)
    pooled, weights = pool(tokens)
    # a zero query gives uniform weights: the plain mean
    torch.testing.assert_close(weights, torch.full((2, 5), 0.2))
    torch.testing.assert_close(pooled, tokens.mean(dim=1))


def test_heads_must_divide_token_width():
    with pytest.raises(ValueError, match="divisible"):
        FTTransformer(4, 1, d_token=10, n_heads=4)


def test_backward_reaches_every_parameter():
    model = small(3)
    model(torch.randn(4, 6)).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert missing == []

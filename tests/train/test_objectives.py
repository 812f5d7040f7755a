"""Tests of meddl.train.objectives: losses against hand computations, output-to-score conversions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import expit, softmax
from torch.nn import functional as F

from meddl.train import make_loss, output_size, scores_from_outputs, target_tensor

LOGITS = torch.tensor([[2.0], [-1.0], [0.5], [-3.0], [1.5]])
LABELS = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0])


def hand_bce(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    p = 1 / (1 + np.exp(-logits))
    return -(labels * np.log(p) + (1 - labels) * np.log(1 - p))


def test_binary_loss_without_weights_is_mean_bce():
    loss = make_loss("binary")(LOGITS, LABELS)
    expected = hand_bce(LOGITS.numpy().ravel(), LABELS.numpy()).mean()
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_binary_class_weights_give_the_weighted_mean():
    w_neg, w_pos = 0.625, 2.5  # balanced weights for 40 % positives
    loss = make_loss("binary", np.array([w_neg, w_pos]))(LOGITS, LABELS)
    per_case = hand_bce(LOGITS.numpy().ravel(), LABELS.numpy())
    w = np.where(LABELS.numpy() == 1, w_pos, w_neg)
    expected = (w * per_case).sum() / w.sum()
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    # the positives are the badly predicted cases here, so up-weighting them raises the loss
    assert float(loss) > float(make_loss("binary")(LOGITS, LABELS))


def test_equal_binary_weights_change_nothing():
    plain = make_loss("binary")(LOGITS, LABELS)
    assert float(make_loss("binary", np.array([3.0, 3.0]))(LOGITS, LABELS)) == pytest.approx(float(plain), rel=1e-6)


def test_multilabel_loss_averages_observed_cells_only():
    logits = torch.tensor([[2.0, -1.0], [0.5, 1.5], [-3.0, 0.2]], requires_grad=True)
    labels = torch.tensor([[1.0, float("nan")], [0.0, 1.0], [float("nan"), float("nan")]])
    loss = make_loss("multilabel")(logits, labels)
    seen = ~np.isnan(labels.numpy())
    expected = hand_bce(logits.detach().numpy()[seen], labels.numpy()[seen]).mean()
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert logits.grad is not None and (logits.grad.numpy()[~seen] == 0).all()  # a gap teaches nothing
    full = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert float(make_loss("multilabel")(logits, full).detach()) == pytest.approx(
        float(F.binary_cross_entropy_with_logits(logits, full).detach()), rel=1e-6
    )


def test_multiclass_loss_with_weights_matches_torch():
    logits = torch.tensor([[2.0, 0.1, -1.0], [0.0, 1.0, 0.5], [0.3, 0.2, 2.0], [1.0, 1.0, 1.0]])
    labels = torch.tensor([0, 2, 2, 1])
    weights = np.array([1.0, 3.0, 0.5])
    loss = make_loss("multiclass", weights)(logits, labels)
    log_p = torch.log_softmax(logits, dim=1).numpy()
    w = weights[labels.numpy()]
    expected = -(w * log_p[np.arange(4), labels.numpy()]).sum() / w.sum()
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(make_loss("multiclass")(logits, labels)) == pytest.approx(float(F.cross_entropy(logits, labels)))


def test_regression_loss_is_mse():
    outputs = torch.tensor([[1.0], [2.0], [4.0]])
    targets = torch.tensor([1.5, 2.0, 3.0])
    assert float(make_loss("regression")(outputs, targets)) == pytest.approx((0.25 + 0 + 1) / 3)


def test_binary_scores_are_sigmoid():
    logits = np.array([[-2.0], [0.0], [3.0]])
    scores = scores_from_outputs("binary", logits)
    assert scores.shape == (3,)
    np.testing.assert_allclose(scores, expit(logits.ravel()))


def test_multiclass_scores_are_softmax_rows_summing_to_one():
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    probabilities = scores_from_outputs("multiclass", logits)
    assert probabilities.shape == (3, 3)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_allclose(probabilities, softmax(logits, axis=1))


def test_regression_scores_undo_target_scaling():
    scale = (120.0, 15.0)
    raw = np.array([100.0, 135.0, 150.0])
    standardised = target_tensor("regression", raw, scale)
    np.testing.assert_allclose(standardised.numpy(), (raw - 120.0) / 15.0, rtol=1e-6)
    back = scores_from_outputs("regression", standardised.numpy().reshape(-1, 1), scale)
    np.testing.assert_allclose(back, raw, rtol=1e-6)
    np.testing.assert_array_equal(scores_from_outputs("regression", np.array([[1.0], [2.0]])), [1.0, 2.0])


def test_target_tensor_dtypes():
    assert target_tensor("multiclass", np.array([0, 2, 1])).dtype == torch.long
    assert target_tensor("binary", np.array([0, 1])).dtype == torch.float32
    np.testing.assert_array_equal(target_tensor("regression", np.array([1.0, 3.0])).numpy(), [1.0, 3.0])


@pytest.mark.parametrize(
    ("task", "n_classes", "expected"), [("binary", 2, 1), ("multiclass", 4, 4), ("regression", 0, 1)]
)
def test_output_size(task, n_classes, expected):
    assert output_size(task, n_classes) == expected

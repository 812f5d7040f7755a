"""Training settings taken from the data when the experiment file leaves them out."""

from __future__ import annotations

import pytest

from meddl.train import batch_size_for


@pytest.mark.parametrize(
    ("n_train", "expected"), [(40, 16), (300, 16), (500, 32), (700, 32), (1000, 64), (100_000, 64)]
)
def test_batch_size_gives_small_data_enough_steps_per_epoch(n_train: int, expected: int) -> None:
    size, why = batch_size_for(n_train)
    assert size == expected and str(n_train) in why
    assert size & (size - 1) == 0, "a power of two"


def test_batch_size_needs_samples() -> None:
    with pytest.raises(ValueError, match="n_train"):
        batch_size_for(0)


def test_survival_takes_large_batches_so_events_have_a_risk_set() -> None:
    from meddl.train import batch_size_for

    assert batch_size_for(480, "survival")[0] == 256
    size, why = batch_size_for(100, "survival")
    assert size == 100 and "at risk" in why

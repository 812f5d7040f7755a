"""Training settings taken from the data when the experiment file leaves them out."""

from __future__ import annotations

import math

__all__ = ["batch_size_for"]

MIN_BATCH, MAX_BATCH = 16, 64
SURVIVAL_BATCH = 256  # Cox and DeepHit losses compare each event with the cases still at risk in its batch
STEPS_PER_EPOCH = 20  # the least optimiser steps an epoch should give before the batch grows


def batch_size_for(n_train: int, task: str = "binary") -> tuple[int, str]:
    """The batch size for ``n_train`` training samples, and why.

    Small medical data sets (a few hundred patients) get small batches, so an epoch still gives about
    ``STEPS_PER_EPOCH`` optimiser steps and early stopping sees progress; from ``STEPS_PER_EPOCH × 64`` samples on,
    64 (the previous fixed default). Always a power of two between 16 and 64.

    A survival task gets large batches instead (up to ``SURVIVAL_BATCH``): its losses rank each event against the
    patients still at risk within the batch, and a small batch leaves few of them to compare with.

    Args:
        n_train: samples in the training split.
        task: the experiment's task.

    Returns:
        ``(batch_size, reason)``.
    """
    if n_train <= 0:
        raise ValueError(f"n_train must be positive, got {n_train}")
    if task == "survival":
        size = min(SURVIVAL_BATCH, n_train)
        return size, (
            f"survival: {n_train} training samples, batch {size} (up to {SURVIVAL_BATCH}: each event is ranked "
            "against the patients at risk in its batch)"
        )
    wanted = n_train / STEPS_PER_EPOCH
    size = 2 ** round(math.log2(max(wanted, 1.0)))
    size = max(MIN_BATCH, min(MAX_BATCH, size))
    steps = math.ceil(n_train / size)
    return (
        size,
        f"{n_train} training samples → {steps} steps per epoch at batch {size} (16–64, ~{STEPS_PER_EPOCH} steps)",
    )

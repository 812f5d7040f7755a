"""Does MedDL's trainer cost training throughput compared with a hand-written PyTorch loop?

Both sides train the same network (``meddl.models.MLP`` and ``meddl.models.FTTransformer``, built from the
same seed) on the same synthetic binary table for the same number of epochs, with AdamW (same learning rate
and weight decay), the same cosine schedule, gradient clipping at 1.0, the same per-epoch shuffling
(``torch.randperm`` seeded with ``seed + epoch``) and the same validation work after every epoch: the loss
and ``meddl.evaluate.binary_metrics`` through the pipeline's own ``validation_metrics('binary')``.

MedDL runs exactly as ``meddl.experiment`` drives it — ``Trainer`` + ``TrainerSettings`` with early stopping
effectively off (patience > epochs), ``checkpoint_dir=None``, ``progress=False`` and
``make_loss('binary')`` — so the two loops do the same arithmetic and their training losses should match.

Samples per second count the training loop only (forward, backward, clip, step, loss bookkeeping); the
validation pass is timed separately and reported as a share of the epoch. Each architecture is measured
``--mlp-repeats`` / ``--ft-repeats`` times, alternating which side runs first; figures are medians and
the ratio is the median of the per-repetition ratios (MedDL / plain, so 1.0 means no overhead);
``best_ratio`` compares each side's fastest run. Wall-clock figures are reported, and
the same figures on process CPU time (``cpu_ratio``), which other work on a shared machine disturbs less.
Torch runs on one thread by default (``--threads``): on a small shared machine extra threads mostly measure
contention.

Prints one JSON line to stdout; progress goes to stderr.

    .venv/bin/python benchmarks/trainer_overhead.py            # full run, a few minutes on 2 CPU cores
    .venv/bin/python benchmarks/trainer_overhead.py --quick    # smoke run, a few seconds
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from functools import partial
from typing import Any

import numpy as np
import torch
from _timing import TARGET_RATIO, compare_training, log  # benchmarks/_timing.py, beside this script
from torch import nn
from torch.utils.data import TensorDataset

from meddl.models import MLP, FTTransformer

LEARNING_RATE = 1e-3  # the train section's default


# -- data and models -------------------------------------------------------------------------------------


def synthetic_binary_table(n_rows: int, n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal float32 features and a logistic binary target with a few interactions."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n_rows, n_features)).astype(np.float32)
    weights = rng.normal(0.0, 1.0 / math.sqrt(n_features), n_features)
    logit = features @ weights + 0.5 * features[:, 0] * features[:, 1] - 0.3
    target = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    return features, target


def build_network(arch: str, in_features: int) -> nn.Module:
    """The network of ``arch``; ``compare_training`` seeds before each build, so both sides start alike."""
    if arch == "mlp":
        return MLP(in_features, 1)
    if arch == "ft_transformer":
        return FTTransformer(in_features, 1, d_token=32, n_blocks=2, n_heads=4)  # as the demo configures it
    raise ValueError(f"arch must be mlp or ft_transformer, got {arch!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run of a few seconds")
    parser.add_argument("--n-train", type=int, default=20_000)
    parser.add_argument("--n-val", type=int, default=5_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64, help="the experiment file's default")
    parser.add_argument("--mlp-epochs", type=int, default=2)
    parser.add_argument("--ft-epochs", type=int, default=1)
    parser.add_argument("--mlp-repeats", type=int, default=11, help="alternating repetitions (cheap, so many)")
    parser.add_argument("--ft-repeats", type=int, default=5, help="alternating repetitions")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads; 1 by default because several threads on a shared 2-core machine thrash",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.n_train, args.n_val, args.mlp_epochs, args.ft_epochs = 2_000, 500, 2, 1
        args.mlp_repeats, args.ft_repeats = 1, 1
    # The user's choice, as MedDL reads it: without it the Trainer would take the idle cores (and the plain loop,
    # run after it, the same count), so the two sides would not be on --threads.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)

    x, y = synthetic_binary_table(args.n_train + args.n_val, args.features, args.seed)
    train = TensorDataset(torch.from_numpy(x[: args.n_train]), torch.from_numpy(y[: args.n_train]))
    val = TensorDataset(torch.from_numpy(x[args.n_train :]), torch.from_numpy(y[args.n_train :]))
    log(f"{args.n_train} training rows, {args.n_val} validation rows, {args.features} features")

    started = time.perf_counter()
    figures: dict[str, Any] = {"benchmark": "trainer_overhead"}
    for arch, epochs, repeats in (
        ("mlp", args.mlp_epochs, args.mlp_repeats),
        ("ft_transformer", args.ft_epochs, args.ft_repeats),
    ):
        figures[arch] = compare_training(
            arch,
            partial(build_network, arch, args.features),
            "binary",
            train,
            val,
            epochs=epochs,
            batch_size=args.batch_size,
            learning_rate=LEARNING_RATE,
            repeats=repeats,
            seed=args.seed,
        )
    figures.update(
        {
            "target_ratio": TARGET_RATIO,
            "meets_target": all(figures[a]["ratio"] >= TARGET_RATIO for a in ("mlp", "ft_transformer")),
            "n_train": args.n_train,
            "n_val": args.n_val,
            "n_features": args.features,
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(),
            "torch_version": torch.__version__,
            "quick": args.quick,
            "wall_s": round(time.perf_counter() - started, 1),
        }
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

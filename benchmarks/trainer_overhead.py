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
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from _timing import TARGET_RATIO, RunTiming, fit_timed, summarise_pairs  # benchmarks/_timing.py, beside this script
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from meddl.models import MLP, FTTransformer
from meddl.pipelines.common import validation_metrics
from meddl.train import Trainer, TrainerSettings, make_loss, seed_everything

LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-4
GRAD_CLIP = 1.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- data and models -------------------------------------------------------------------------------------


def synthetic_binary_table(n_rows: int, n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal float32 features and a logistic binary target with a few interactions."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n_rows, n_features)).astype(np.float32)
    weights = rng.normal(0.0, 1.0 / math.sqrt(n_features), n_features)
    logit = features @ weights + 0.5 * features[:, 0] * features[:, 1] - 0.3
    target = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    return features, target


def build_network(arch: str, in_features: int, seed: int) -> nn.Module:
    seed_everything(seed)  # the same initial weights on both sides
    if arch == "mlp":
        return MLP(in_features, 1)
    if arch == "ft_transformer":
        return FTTransformer(in_features, 1, d_token=32, n_blocks=2, n_heads=4)  # as the demo configures it
    raise ValueError(f"arch must be mlp or ft_transformer, got {arch!r}")


def cosine_factor(epochs: int) -> Callable[[int], float]:
    """The trainer's cosine schedule with no warm-up, stepped once per epoch."""

    def factor(step: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, epochs))))

    return factor


# -- one timed run per side ------------------------------------------------------------------------------


def run_meddl(
    arch: str, train: TensorDataset, val: TensorDataset, *, epochs: int, batch_size: int, seed: int
) -> RunTiming:
    """``Trainer.fit`` as ``Experiment._fit`` calls it; its epoch and validation methods are timed in place."""
    model = build_network(arch, train.tensors[0].shape[1], seed)
    settings = TrainerSettings(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=LEARNING_RATE,
        weight_decay=WEIGHT_DECAY,
        scheduler="cosine",
        patience=epochs + 1,  # early stopping never triggers
        monitor="auroc",
        monitor_mode="max",
        seed=seed,
        device="cpu",
        precision="32",
        grad_clip=GRAD_CLIP,
        progress=False,
    )
    trainer = Trainer(model, make_loss("binary"), settings, metric_fn=validation_metrics("binary"), checkpoint_dir=None)
    return fit_timed(trainer, train, val)


def run_plain(
    arch: str, train: TensorDataset, val: TensorDataset, *, epochs: int, batch_size: int, seed: int
) -> RunTiming:
    """The loop a PyTorch user would write by hand for the same job."""
    model = build_network(arch, train.tensors[0].shape[1], seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_factor(epochs))
    metric_fn = validation_metrics("binary")
    x_train, y_train = train.tensors
    x_val, y_val = val.tensors
    n = len(x_train)
    val_batch = max(batch_size, 256)
    timing = RunTiming()
    started_fit = time.perf_counter()
    torch.manual_seed(seed)  # the dropout stream starts where the trainer's does
    for epoch in range(1, epochs + 1):
        started, started_cpu = time.perf_counter(), time.process_time()
        model.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
        total, count = 0.0, 0
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            inputs, targets = x_train[index], y_train[index]
            loss = F.binary_cross_entropy_with_logits(model(inputs).reshape(-1), targets)  # (B, 1) → (B,)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            optimizer.step()
            total += loss.item() * len(targets)
            count += len(targets)
        timing.train_seconds += time.perf_counter() - started
        timing.train_cpu_seconds += time.process_time() - started_cpu
        timing.samples += count
        timing.train_losses.append(total / count)

        started = time.perf_counter()
        model.eval()
        with torch.no_grad():
            outputs = torch.cat([model(x_val[i : i + val_batch]) for i in range(0, len(x_val), val_batch)])
            val_loss = float(F.binary_cross_entropy_with_logits(outputs.reshape(-1), y_val))
            metrics = metric_fn(outputs.numpy(), y_val.numpy())
        timing.validation_seconds += time.perf_counter() - started
        assert math.isfinite(val_loss) and "auroc" in metrics, "validation produced no usable figures"
        scheduler.step()
    timing.fit_seconds = time.perf_counter() - started_fit
    return timing


# -- the comparison --------------------------------------------------------------------------------------


def compare(
    arch: str, train: TensorDataset, val: TensorDataset, *, epochs: int, batch_size: int, repeats: int, seed: int
) -> dict[str, Any]:
    runners = {"meddl": run_meddl, "plain": run_plain}
    # Warm-up: first calls pay for lazy initialisation (allocator, kernels) that neither side should carry.
    warm = TensorDataset(*(t[: batch_size * 8] for t in train.tensors))
    for runner in runners.values():
        runner(arch, warm, val, epochs=1, batch_size=batch_size, seed=seed)

    results: dict[str, list[RunTiming]] = {"meddl": [], "plain": []}
    for repeat in range(repeats):
        order = ("meddl", "plain") if repeat % 2 == 0 else ("plain", "meddl")
        for side in order:
            timing = runners[side](arch, train, val, epochs=epochs, batch_size=batch_size, seed=seed)
            results[side].append(timing)
            log(
                f"{arch} repeat {repeat + 1}/{repeats} {side:5s}: {timing.samples_per_s:9.0f} samples/s "
                f"(train {timing.train_seconds:.2f}s, validation {timing.validation_seconds:.2f}s)"
            )

    figures = summarise_pairs(results, epochs)
    return figures


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
        figures[arch] = compare(
            arch, train, val, epochs=epochs, batch_size=args.batch_size, repeats=repeats, seed=args.seed
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

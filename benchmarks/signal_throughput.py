"""Does MedDL's trainer cost training throughput on ECG models compared with a hand-written PyTorch loop?

Synthetic single-lead ECGs (``meddl.data.ecg.synthetic_ecg``: 10 s at 250 Hz, heart rate 45–150 bpm, sinus or
irregular rhythm) are preprocessed as the signal demo does (``SignalPipeline``: 50 Hz, 0.5–20 Hz band-pass,
10 s, per-record z-score) into ``(N, 1, 500)`` float32 tensors; the target is the heart rate, standardised as the
array pipeline standardises a regression target. Both sides train the same network, built from the same seed
through ``meddl.models.build_model`` — ``seed_lstm`` with ``downsample=2`` (the demo's) and ``cnn1d`` with its
defaults — on the same ``TensorDataset`` for the same epochs.

MedDL runs as the array pipeline drives it: ``Trainer`` + ``TrainerSettings`` (early stopping effectively off,
``checkpoint_dir=None``, ``progress=False``), ``make_loss('regression')`` and
``metric_fn=validation_metrics('regression')``. The plain loop is what a PyTorch user writes: AdamW (same
learning rate and weight decay, PyTorch's default implementation), the same cosine schedule, gradient clipping
at 1.0, the same per-epoch shuffling (``torch.randperm`` seeded ``seed + epoch``), batches sliced from the
tensors, and the same validation work after every epoch (MSE and ``validation_metrics('regression')``), so the
training losses of the two sides should match.

Samples per second count the training loop only; validation is reported as a share of the epoch. Repetitions
alternate which side runs first; figures are medians, the ratio is the median of per-repetition ratios
(MedDL / plain, 1.0 = no overhead), ``cpu_ratio`` the same on process CPU time. Torch runs on one thread by
default (``--threads``).

``compare_training`` is shared with ``genomics.py`` and ``ehr_scale.py`` (same measurement on other models).

Prints one JSON line to stdout; progress goes to stderr.

    .venv/bin/python benchmarks/signal_throughput.py            # full run, a few minutes on 2 CPU cores
    .venv/bin/python benchmarks/signal_throughput.py --quick    # smoke run, well under a minute
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from _timing import TARGET_RATIO, RunTiming, fit_timed, summarise_pairs  # benchmarks/_timing.py, beside this script
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from meddl.pipelines.common import validation_metrics
from meddl.train import Trainer, TrainerSettings, make_loss, seed_everything

WEIGHT_DECAY = 1e-4  # the train section's default
GRAD_CLIP = 1.0

BuildNetwork = Callable[[], nn.Module]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the shared comparison: MedDL's Trainer against a plain loop on the same tensors -----------------------


def cosine_factor(epochs: int) -> Callable[[int], float]:
    """The trainer's cosine schedule with no warm-up, stepped once per epoch."""

    def factor(step: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, epochs))))

    return factor


def _seeded(build: BuildNetwork, seed: int) -> nn.Module:
    seed_everything(seed)  # the same initial weights on both sides
    return build()


def run_meddl(
    build: BuildNetwork,
    task: str,
    train: Dataset,
    val: Dataset,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
) -> RunTiming:
    """``Trainer.fit`` as ``ArrayPipelineRun.run`` calls it; its epoch and validation methods are timed in place.

    ``train`` may be any dataset the pipeline hands the trainer (e.g. ``AugmentedSequences``), not only tensors.
    """
    monitor, mode = ("auroc", "max") if task == "binary" else ("loss", "min")
    settings = TrainerSettings(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=WEIGHT_DECAY,
        scheduler="cosine",
        patience=epochs + 1,  # early stopping never triggers
        monitor=monitor,
        monitor_mode=mode,  # type: ignore[arg-type]
        seed=seed,
        device="cpu",
        precision="32",
        grad_clip=GRAD_CLIP,
        progress=False,
        num_workers=0,
    )
    model = _seeded(build, seed)
    trainer = Trainer(model, make_loss(task), settings, metric_fn=validation_metrics(task), checkpoint_dir=None)
    return fit_timed(trainer, train, val)


def run_plain(
    build: BuildNetwork,
    task: str,
    train: TensorDataset,
    val: TensorDataset,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
) -> RunTiming:
    """The loop a PyTorch user would write by hand for the same job (binary or regression, one output)."""
    model = _seeded(build, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_factor(epochs))
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = (
        nn.functional.binary_cross_entropy_with_logits if task == "binary" else nn.functional.mse_loss
    )
    metric_fn = validation_metrics(task)
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
            loss = criterion(model(inputs).reshape(-1), targets)  # (B, 1) → (B,)
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
            val_loss = float(criterion(outputs.reshape(-1), y_val))
            metrics = metric_fn(outputs.numpy(), y_val.numpy())
        timing.validation_seconds += time.perf_counter() - started
        assert math.isfinite(val_loss) and metrics, "validation produced no usable figures"
        scheduler.step()
    timing.fit_seconds = time.perf_counter() - started_fit
    return timing


def compare_training(
    name: str,
    build: BuildNetwork,
    task: str,
    train: TensorDataset,
    val: TensorDataset,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    repeats: int,
    seed: int,
) -> dict[str, Any]:
    """MedDL's ``Trainer`` against the plain loop, ``repeats`` alternating pairs after one warm-up run each.

    Args:
        name: label for the progress lines.
        build: makes the network (called after seeding, so both sides start from the same weights).
        task: ``"binary"`` or ``"regression"`` (one output).
        train, val: ``TensorDataset`` of (inputs, float32 targets of shape (N,)).
        epochs, batch_size, learning_rate, seed: the same on both sides.
        repeats: measured pairs.

    Returns:
        The figures of :func:`_timing.summarise_pairs` plus the training and validation sizes and the batch size.
    """
    if task not in ("binary", "regression"):
        raise ValueError(f"task must be 'binary' or 'regression', got {task!r}")
    runners = {"meddl": run_meddl, "plain": run_plain}
    settings = {"batch_size": batch_size, "learning_rate": learning_rate, "seed": seed}
    # Warm-up: first calls pay for lazy initialisation (allocator, kernels) that neither side should carry.
    warm = TensorDataset(*(t[: batch_size * 4] for t in train.tensors))
    for runner in runners.values():
        runner(build, task, warm, val, epochs=1, **settings)  # type: ignore[arg-type]
    results: dict[str, list[RunTiming]] = {"meddl": [], "plain": []}
    for repeat in range(repeats):
        order = ("meddl", "plain") if repeat % 2 == 0 else ("plain", "meddl")
        for side in order:
            timing = runners[side](build, task, train, val, epochs=epochs, **settings)  # type: ignore[arg-type]
            results[side].append(timing)
            log(
                f"{name} repeat {repeat + 1}/{repeats} {side:5s}: {timing.samples_per_s:8.1f} samples/s "
                f"(train {timing.train_seconds:.2f}s, validation {timing.validation_seconds:.2f}s)"
            )
    return {
        **summarise_pairs(results, epochs),
        "n_train": len(train),
        "n_val": len(val),
        "input_shape": list(train.tensors[0].shape[1:]),
        "batch_size": batch_size,
        "learning_rate": learning_rate,
    }


# -- ECG data --------------------------------------------------------------------------------------------


def ecg_tensors(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` synthetic ECGs preprocessed as the signal demo does: (n, 1, 500) float32 and heart rates (n,)."""
    from meddl.data.ecg import HEART_RATE_RANGE, synthetic_ecg
    from meddl.preprocess.signals import SignalPipeline

    rng = np.random.default_rng(seed)
    low, high = HEART_RATE_RANGE
    rates = rng.uniform(low, high, size=n)
    rhythms = rng.choice(["sinus", "irregular"], size=n)
    pipeline = SignalPipeline(fs=50.0, bandpass=(0.5, 20.0), length_seconds=10.0, normalize="zscore")
    signals = [
        synthetic_ecg(10, 250, float(rate), str(rhythm), seed=seed * 1_000_003 + i)
        for i, (rate, rhythm) in enumerate(zip(rates, rhythms, strict=True))
    ]
    pipeline.fit(signals)
    x = np.stack([pipeline.transform(signal) for signal in signals])  # (n, 1, 500)
    return torch.from_numpy(x), torch.from_numpy(rates.astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--n-train", type=int, default=1_200)
    parser.add_argument("--n-val", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32, help="the signal demo's")
    parser.add_argument("--learning-rate", type=float, default=0.003, help="the signal demo's")
    parser.add_argument("--repeats", type=int, default=5, help="alternating repetitions per model")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (extra threads thrash here)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.n_train, args.n_val, args.epochs, args.repeats = 192, 64, 1, 1
    torch.set_num_threads(args.threads)
    from meddl.models import build_model

    load_start = os.getloadavg()
    started = time.perf_counter()
    x, rates = ecg_tensors(args.n_train + args.n_val, args.seed)
    train_rates = rates[: args.n_train]
    target = (rates - train_rates.mean()) / train_rates.std(unbiased=False)  # as the pipeline scales regression
    train = TensorDataset(x[: args.n_train], target[: args.n_train])
    val = TensorDataset(x[args.n_train :], target[args.n_train :])
    log(f"{args.n_train} training and {args.n_val} validation ECGs, tensors {tuple(x.shape[1:])}")

    figures: dict[str, Any] = {"benchmark": "signal_throughput"}
    for arch, params in (("seed_lstm", {"downsample": 2}), ("cnn1d", {})):

        def build(arch: str = arch, params: dict[str, Any] = params) -> nn.Module:
            return build_model(arch, dict(params), in_channels=1, out_channels=1)

        figures[arch] = {
            "params": params,
            **compare_training(
                arch,
                build,
                "regression",
                train,
                val,
                epochs=args.epochs,
                batch_size=args.batch_size,
                learning_rate=args.learning_rate,
                repeats=args.repeats,
                seed=args.seed,
            ),
        }
    figures.update(
        {
            "target_ratio": TARGET_RATIO,
            "meets_target": all(figures[a]["ratio"] >= TARGET_RATIO for a in ("seed_lstm", "cnn1d")),
            "signal": {"fs_hz": 50, "seconds": 10, "leads": 1, "task": "heart-rate regression"},
            "load_average": {"start": [round(v, 2) for v in load_start], "end": [round(v, 2) for v in os.getloadavg()]},
            "torch_threads": torch.get_num_threads(),
            "torch_version": torch.__version__,
            "quick": args.quick,
            "wall_s": round(time.perf_counter() - started, 1),
        }
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

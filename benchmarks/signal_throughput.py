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

``compare_training`` lives in ``_timing.py``, shared with ``trainer_overhead.py``, ``genomics.py`` and
``ehr_scale.py`` (the same measurement on other models).

Prints one JSON line to stdout; progress goes to stderr.

    .venv/bin/python benchmarks/signal_throughput.py            # full run, a few minutes on 2 CPU cores
    .venv/bin/python benchmarks/signal_throughput.py --quick    # smoke run, well under a minute
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np
import torch
from _timing import TARGET_RATIO, compare_training, log  # benchmarks/_timing.py, beside this script
from torch import nn
from torch.utils.data import TensorDataset

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

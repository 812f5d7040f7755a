"""Timing shared by the training benchmarks: the same counters for MedDL's trainer and a hand-written loop."""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from meddl.run.common import validation_metrics
from meddl.train import Trainer, TrainerSettings, make_loss, seed_everything

__all__ = [
    "TARGET_RATIO",
    "RunTiming",
    "compare_training",
    "cosine_factor",
    "fit_timed",
    "run_meddl",
    "run_plain",
    "summarise_pairs",
]

TARGET_RATIO = 0.95  # MedDL samples/s over the plain loop's, every training benchmark
WEIGHT_DECAY = 1e-4  # the train section's default
GRAD_CLIP = 1.0

BuildNetwork = Callable[[], nn.Module]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class RunTiming:
    train_seconds: float = 0.0
    train_cpu_seconds: float = 0.0
    validation_seconds: float = 0.0
    fit_seconds: float = 0.0
    samples: int = 0
    train_losses: list[float] = field(default_factory=list)

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.train_seconds

    @property
    def samples_per_cpu_s(self) -> float:
        return self.samples / self.train_cpu_seconds

    @property
    def validation_share(self) -> float:
        """Validation time as a fraction of training + validation time."""
        return self.validation_seconds / (self.train_seconds + self.validation_seconds)


def fit_timed(trainer: Trainer, train: Any, val: Any) -> RunTiming:
    """``trainer.fit`` with its epoch and validation methods timed in place (training loop time only)."""
    timing = RunTiming()
    train_epoch, validate = trainer._train_epoch, trainer.validate

    def timed_train_epoch(data: Any, epoch: int) -> tuple[float, int]:
        started, started_cpu = time.perf_counter(), time.process_time()
        loss, seen = train_epoch(data, epoch)
        timing.train_seconds += time.perf_counter() - started
        timing.train_cpu_seconds += time.process_time() - started_cpu
        timing.samples += seen
        timing.train_losses.append(loss)
        return loss, seen

    def timed_validate(data: Any) -> tuple[float, dict[str, float]]:
        started = time.perf_counter()
        result = validate(data)
        timing.validation_seconds += time.perf_counter() - started
        return result

    trainer._train_epoch = timed_train_epoch  # type: ignore[method-assign]
    trainer.validate = timed_validate  # type: ignore[method-assign]
    started = time.perf_counter()
    trainer.fit(train, val)
    timing.fit_seconds = time.perf_counter() - started
    return timing


def summarise_pairs(results: dict[str, list[RunTiming]], epochs: int) -> dict[str, Any]:
    """Medians and per-repetition ratios (MedDL / plain) of paired runs ``results["meddl"][i]``,
    ``results["plain"][i]``; the first run of each side gives the training-loss comparison."""

    def median(side: str, value: Callable[[RunTiming], float]) -> float:
        return statistics.median(value(t) for t in results[side])

    pairs = list(zip(results["meddl"], results["plain"], strict=True))
    ratios = [m.samples_per_s / p.samples_per_s for m, p in pairs]
    cpu_ratios = [m.samples_per_cpu_s / p.samples_per_cpu_s for m, p in pairs]
    fit_ratios = [p.fit_seconds / m.fit_seconds for m, p in pairs]
    meddl_losses, plain_losses = results["meddl"][0].train_losses, results["plain"][0].train_losses
    return {
        "meddl_samples_per_s": round(median("meddl", lambda t: t.samples_per_s), 1),
        "plain_samples_per_s": round(median("plain", lambda t: t.samples_per_s), 1),
        "ratio": round(statistics.median(ratios), 4),
        "ratios": [round(r, 4) for r in ratios],
        # The same on process CPU time: less sensitive to other work on a shared machine.
        "meddl_samples_per_cpu_s": round(median("meddl", lambda t: t.samples_per_cpu_s), 1),
        "plain_samples_per_cpu_s": round(median("plain", lambda t: t.samples_per_cpu_s), 1),
        "cpu_ratio": round(statistics.median(cpu_ratios), 4),
        "cpu_ratios": [round(r, 4) for r in cpu_ratios],
        # Fastest run of each side (as timeit does): the least disturbed by other work.
        "best_ratio": round(
            max(t.samples_per_cpu_s for t in results["meddl"]) / max(t.samples_per_cpu_s for t in results["plain"]), 4
        ),
        "meddl_validation_share": round(median("meddl", lambda t: t.validation_share), 4),
        "plain_validation_share": round(median("plain", lambda t: t.validation_share), 4),
        "meddl_validation_s_per_epoch": round(median("meddl", lambda t: t.validation_seconds) / epochs, 4),
        "plain_validation_s_per_epoch": round(median("plain", lambda t: t.validation_seconds) / epochs, 4),
        # Whole fit (training + validation + the trainer's bookkeeping, e.g. copying the best weights).
        "fit_speed_ratio": round(statistics.median(fit_ratios), 4),
        "max_train_loss_difference": float(max(abs(a - b) for a, b in zip(meddl_losses, plain_losses, strict=True))),
        "target_ratio": TARGET_RATIO,
        "meets_target": statistics.median(ratios) >= TARGET_RATIO,
        "epochs": epochs,
        "repeats": len(pairs),
    }


# -- the shared comparison on tensors: MedDL's Trainer against a plain loop on the same tensors -----------------------


def cosine_factor(epochs: int) -> Callable[[int], float]:
    """The trainer's cosine schedule with no warm-up, stepped once per epoch."""

    def factor(step: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, epochs))))

    return factor


def _loss_and_metric(task: str) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], Any]:
    """The training loss on (B, 1) outputs and the validation metrics of ``task``; survival: the Cox partial
    likelihood on ``[time, event]`` targets and Harrell's C, as a survival run uses them."""
    if task == "survival":
        from meddl.evaluate.survival import harrell_c
        from meddl.train.survival import cox_loss

        def c_index(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
            return {"c_index": harrell_c(targets[:, 0], (targets[:, 1] > 0).astype(np.int64), outputs[:, 0])}

        return cox_loss, c_index
    pointwise = nn.functional.binary_cross_entropy_with_logits if task == "binary" else nn.functional.mse_loss
    return (lambda outputs, targets: pointwise(outputs.reshape(-1), targets)), validation_metrics(task)


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
    monitor, mode = {"binary": ("auroc", "max"), "survival": ("c_index", "max")}.get(task, ("loss", "min"))
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
    loss, metric_fn = _loss_and_metric(task)
    trainer = Trainer(
        model, make_loss(task) if task != "survival" else loss, settings, metric_fn=metric_fn, checkpoint_dir=None
    )
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
    criterion, metric_fn = _loss_and_metric(task)
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
            loss = criterion(model(inputs), targets)
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
            val_loss = float(criterion(outputs, y_val))
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
        task: ``"binary"``, ``"regression"`` or ``"survival"`` (one output; a Cox head).
        train, val: ``TensorDataset`` of (inputs, float32 targets of shape (N,), or (N, 2) ``[time, event]``).
        epochs, batch_size, learning_rate, seed: the same on both sides.
        repeats: measured pairs.

    Returns:
        The figures of :func:`_timing.summarise_pairs` plus the training and validation sizes and the batch size.
    """
    if task not in ("binary", "regression", "survival"):
        raise ValueError(f"task must be 'binary', 'regression' or 'survival', got {task!r}")
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

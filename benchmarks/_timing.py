"""Timing shared by the training benchmarks: the same counters for MedDL's trainer and a hand-written loop."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from meddl.train import Trainer

__all__ = ["TARGET_RATIO", "RunTiming", "fit_timed", "summarise_pairs"]

TARGET_RATIO = 0.95  # MedDL samples/s over the plain loop's, every training benchmark


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

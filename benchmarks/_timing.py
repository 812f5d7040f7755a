"""Timing shared by the training benchmarks: the same counters for MedDL's trainer and a hand-written loop."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from meddl.train import Trainer

__all__ = ["RunTiming", "fit_timed"]


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

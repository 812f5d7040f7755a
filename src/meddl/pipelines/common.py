"""What every data kind's pipeline shares: the run result, JSON hygiene, validation metrics for the trainer."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from meddl.bundle import load_bundle
from meddl.evaluate import main_metric
from meddl.evaluate.metrics import binary_metrics, multiclass_metrics, multilabel_metrics, regression_metrics
from meddl.train import scores_from_outputs

__all__ = ["RunResult", "clean_json", "now_utc", "validation_metrics"]


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def clean_json(value: Any) -> Any:
    """NaN/inf → None and NumPy scalars → Python, so JSON stays strict."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def validation_metrics(task: str, threshold: float = 0.5) -> Callable[[np.ndarray, np.ndarray], dict[str, float]]:
    """Validation metrics from raw outputs, as the trainer's early stopping needs them."""

    def compute(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        scores = scores_from_outputs(task, outputs)
        if task == "binary":
            return binary_metrics(targets.astype(np.int64), scores, threshold)
        if task == "multiclass":
            return multiclass_metrics(targets.astype(np.int64), scores)
        if task == "multilabel":
            return multilabel_metrics(targets.astype(np.int64), scores, threshold)
        return regression_metrics(targets, scores)

    return compute


@dataclass
class RunResult:
    """What a run produced: the bundle folder, the metrics and the full run record."""

    path: Path
    record: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)

    def bundle(self) -> Any:
        return load_bundle(self.path)

    def summary(self) -> dict[str, Any]:
        metric = main_metric(self.record["task"])
        row = {"name": self.record["name"], "metric": metric, "model": self.metrics["test"].get(metric)}
        for name, values in self.metrics.get("baselines", {}).items():
            row[name] = values.get(metric)
        return row

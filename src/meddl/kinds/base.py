"""What a data kind (sequences, expression, signals, EHR) tells the shared array pipeline.

The shared pipeline (:mod:`meddl.pipelines.arrays`) splits by patient, trains with the one trainer, evaluates with
bootstrap CIs, runs baselines, writes the report and the bundle. A kind supplies only what differs: how its files
are read into one array per sample, which preprocessing is fitted on the training split, which arguments the
network takes from the data, how it explains a prediction, and how a bundle reads new files at prediction time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, TensorDataset

from meddl.config import ExperimentConfig
from meddl.errors import MedDLError

__all__ = [
    "KindAdapter",
    "PredictionInputs",
    "Prepared",
    "adapter_for",
    "batched_outputs",
    "encode_labels",
    "register_kind",
]

Log = Callable[[str], None]


@dataclass
class Prepared:
    """A data set once read: one input array per sample and what the report needs to say about it.

    ``inputs`` is (N, ...) float32 (or int64 tokens), possibly a NumPy memmap; ``target`` is (N,) class indices or
    values, or (N, K) 0/1 for multilabel.
    """

    inputs: np.ndarray
    target: np.ndarray
    classes: list[str]
    sample_ids: list[str]
    patient_ids: np.ndarray | None
    n_read: int
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    given_splits: np.ndarray | None = None
    sections: list[dict[str, Any]] = field(default_factory=list)  # e.g. the cohort flow table
    extra: dict[str, Any] = field(default_factory=dict)  # kind-specific (planted motif sites, raw sequences …)


@dataclass
class PredictionInputs:
    """New cases read for a bundle: their inputs (rows that could be read) and a note for every case."""

    inputs: np.ndarray
    ids: list[str]
    notes: list[str]  # "" for scored cases; the reason for cases that could not be read
    usable: np.ndarray  # (n_cases,) bool: which cases have a row in ``inputs``
    extra: dict[str, Any] = field(default_factory=dict)


_KINDS: dict[str, type[KindAdapter]] = {}


def register_kind(cls: type[KindAdapter]) -> type[KindAdapter]:
    _KINDS[cls.kind] = cls
    return cls


def adapter_for(kind: str) -> type[KindAdapter]:
    """The adapter class of ``data.kind`` (importing the kinds' modules registers them)."""
    import meddl.kinds  # noqa: F401  (registers every kind)

    if kind not in _KINDS:
        raise MedDLError(f"no pipeline for data.kind {kind!r}; available: {sorted(_KINDS)}")
    return _KINDS[kind]


@torch.no_grad()
def batched_outputs(model: torch.nn.Module, inputs: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Raw outputs (logits) of ``model`` for every row of ``inputs``, in order, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    for start in range(0, len(inputs), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch_size])).to(device)
        outputs.append(model(batch).float().cpu())
    if not outputs:
        return np.zeros((0, 1), dtype=np.float32)
    return torch.cat(outputs).numpy()


class KindAdapter(ABC):
    """One data kind's part of the pipeline; subclasses register with :func:`register_kind`."""

    kind: ClassVar[str]
    explain_title: ClassVar[str] = "Explanations"

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config
        self.workdir: Path | None = None  # scratch space in the run folder (e.g. memory-mapped features)

    # -- training ---------------------------------------------------------------------------------
    @abstractmethod
    def load(self, log: Log) -> Prepared:
        """Read the data set named by ``config.data`` (errors name the file and record)."""

    def fit(self, prepared: Prepared, train_index: np.ndarray) -> None:  # noqa: B027  (optional step)
        """Fit preprocessing on the training rows only (default: nothing to fit)."""

    def transform(self, inputs: np.ndarray) -> np.ndarray:
        """Apply the fitted preprocessing to input rows (default: unchanged)."""
        return inputs

    @abstractmethod
    def model_arguments(self, inputs: np.ndarray) -> dict[str, int]:
        """Constructor arguments that come from the data (``in_channels``, ``vocab_size``, ``in_features``)."""

    def dataset(self, inputs: np.ndarray, target: np.ndarray, *, train: bool) -> Dataset:
        """The torch dataset the trainer iterates (default: tensors; training augmentation overrides this)."""
        y = torch.from_numpy(np.asarray(target, dtype=np.float32 if self._float_target else np.int64))
        return TensorDataset(torch.from_numpy(np.ascontiguousarray(inputs)), y)

    @property
    def _float_target(self) -> bool:
        return self.config.task in {"binary", "multilabel", "regression"}

    def outputs(self, model: torch.nn.Module, inputs: np.ndarray) -> np.ndarray:
        """Raw model outputs for evaluation and prediction (sequences average over both strands)."""
        return batched_outputs(model, inputs)

    def baseline_features(self, prepared: Prepared, inputs: np.ndarray) -> np.ndarray | None:
        """Flat features for the classical baselines (logistic regression, gradient boosting); None: no baseline."""
        return None

    def explain(
        self,
        model: torch.nn.Module,
        prepared: Prepared,
        inputs: np.ndarray,
        test_index: np.ndarray,
        scores: np.ndarray,
        out: Path,
    ) -> dict[str, Any]:
        """Record entries for the report (``sections``, ``explanations``, ``metrics`` of explanation quality)."""
        return {}

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """The fitted preprocessing as JSON (``preprocess.json`` in the bundle)."""

    def prepare_external(self, prepared: Prepared) -> None:  # noqa: B027  (optional step)
        """Finish inputs read for external validation with the fitted state (kinds whose ``fit`` builds inputs)."""

    def cleanup(self) -> None:  # noqa: B027  (optional step)
        """Remove scratch files once the bundle is written (default: none)."""

    # -- prediction -------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def from_state(cls, config: ExperimentConfig, state: dict[str, Any]) -> KindAdapter:
        """Rebuild the fitted adapter from a bundle."""

    @abstractmethod
    def read_for_prediction(self, path: Path) -> PredictionInputs:
        """Read new cases from ``path`` (a file, folder or manifest) into model inputs, a note per case."""

    def explain_cases(
        self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray, out: Path
    ) -> list[str]:
        """Per-case explanation files or text for ``meddl predict --explain`` (one string per usable case)."""
        return [""] * int(cases.usable.sum())


def encode_labels(values: pd.Series, config: ExperimentConfig, source: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Class indices (or values) of ``values`` and the rows that have a label; a missing label is left out and
    counted by the caller, never guessed."""
    from meddl.data import encode_target

    has_label = values.notna().to_numpy() & (values.astype(str).str.strip() != "").to_numpy()
    data = config.data
    target, classes = encode_target(
        values[has_label],
        config.task,
        getattr(data, "positive_label", None),
        getattr(data, "classes", None),
        getattr(data, "target", "label"),
        source,
    )
    return target, classes, has_label

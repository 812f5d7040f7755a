"""Standardisation of EHR sequence features (N, T, F), fitted on the training split's real steps only.

`SequenceScaler` learns a mean and a standard deviation for each *value* channel (e.g. the lab values of
``meddl.data.ehr_cohort.extract_features``; see ``EHRFeatures.value_channels``) from the steps whose mask
channel is 1 — padding never enters the statistics — and leaves every other channel (masks, multi-hot codes,
scaled times, demographics) untouched. It streams over the rows in chunks, so a ``np.memmap`` larger than
memory is fitted and transformed without being loaded whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError

from meddl.errors import MedDLError

__all__ = ["SequenceScaler"]

STATE_KIND = "SequenceScaler"


class SequenceScaler(TransformerMixin, BaseEstimator):
    """Standardise value channels of (N, T, F) sequences over real steps; other channels pass through.

    Args:
        value_channels: channel indices to standardise.
        mask_channel: the step-mask channel (1 real step, 0 padding).
        observed_channels: optional, one per value channel: the statistics then use only steps where that
            channel is 1 (values measured in the bin, not carried forward or the 0 before a first measurement).
            The transform still standardises every real step.
        chunk_rows: rows read at a time.

    Attributes:
        mean_: (K,) float64 mean of each value channel.
        scale_: (K,) float64 standard deviation (1 where it is 0 or no value was seen).
        n_samples_seen_: (K,) int64 number of steps that entered each channel's statistics.
        n_features_in_: F of the fitted data.
    """

    def __init__(
        self,
        *,
        value_channels: Sequence[int] = (),
        mask_channel: int = 0,
        observed_channels: Sequence[int] | None = None,
        chunk_rows: int = 4096,
    ) -> None:
        self.value_channels = value_channels
        self.mask_channel = mask_channel
        self.observed_channels = observed_channels
        self.chunk_rows = chunk_rows

    def _check_channels(self, n_features: int) -> tuple[np.ndarray, np.ndarray | None]:
        values = np.asarray(list(self.value_channels), dtype=np.int64)
        observed = None if self.observed_channels is None else np.asarray(list(self.observed_channels), dtype=np.int64)
        if not 0 <= self.mask_channel < n_features:
            raise MedDLError(f"SequenceScaler: mask_channel {self.mask_channel} is outside 0..{n_features - 1}")
        for name, channels in (("value_channels", values), ("observed_channels", observed)):
            if channels is None:
                continue
            bad = [int(c) for c in channels if not 0 <= c < n_features or c == self.mask_channel]
            if bad:
                raise MedDLError(
                    f"SequenceScaler: {name} {bad} are outside 0..{n_features - 1} or the mask channel "
                    f"{self.mask_channel}"
                )
        if observed is not None and len(observed) != len(values):
            raise MedDLError(
                f"SequenceScaler: observed_channels has {len(observed)} entries, value_channels {len(values)}"
            )
        if self.chunk_rows < 1:
            raise MedDLError(f"SequenceScaler: chunk_rows must be positive, got {self.chunk_rows}")
        return values, observed

    @staticmethod
    def _check_input(x: Any) -> np.ndarray:
        if not isinstance(x, np.ndarray):
            x = np.asarray(x)
        if x.ndim != 3:
            raise MedDLError(f"SequenceScaler: expected (N, T, F) sequences, got shape {x.shape}")
        return x

    def fit(self, x: np.ndarray, y: Any = None) -> Self:
        """Learn mean and standard deviation per value channel from the real steps of ``x`` (N, T, F).

        Raises:
            MedDLError: ``x`` is not 3-D, or a channel index is out of range or is the mask channel.
        """
        x = self._check_input(x)
        values, observed = self._check_channels(x.shape[2])
        k = len(values)
        count = np.zeros(k, dtype=np.int64)
        mean = np.zeros(k, dtype=np.float64)
        m2 = np.zeros(k, dtype=np.float64)
        for start in range(0, x.shape[0], self.chunk_rows):
            chunk = np.asarray(x[start : start + self.chunk_rows], dtype=np.float64)  # (b, T, F)
            weight = np.broadcast_to(chunk[:, :, self.mask_channel, None] > 0.5, (*chunk.shape[:2], k))  # (b, T, K)
            if observed is not None:
                weight = weight & (chunk[:, :, observed] > 0.5)
            data = chunk[:, :, values]
            n_chunk = weight.sum(axis=(0, 1))
            if not n_chunk.any():
                continue
            safe = np.maximum(n_chunk, 1)
            mean_chunk = np.where(weight, data, 0.0).sum(axis=(0, 1)) / safe
            m2_chunk = np.where(weight, (data - mean_chunk) ** 2, 0.0).sum(axis=(0, 1))
            # Chan et al.'s pairwise combination of (count, mean, M2).
            total = count + n_chunk
            delta = mean_chunk - mean
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(total > 0, mean + delta * n_chunk / np.maximum(total, 1), 0.0)
                m2 = m2 + m2_chunk + delta**2 * count * n_chunk / np.maximum(total, 1)
            count = total
        variance = np.where(count > 0, m2 / np.maximum(count, 1), 0.0)
        scale = np.sqrt(variance)
        self.mean_ = mean
        self.scale_ = np.where(scale > 1e-12, scale, 1.0)
        self.n_samples_seen_ = count
        self.n_features_in_ = int(x.shape[2])
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "mean_"):
            raise NotFittedError("SequenceScaler is not fitted yet; call fit on the training sequences first")

    def transform(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Standardise the value channels at real steps; padding and other channels are copied unchanged.

        Args:
            x: (N, T, F) sequences (array or memmap).
            out: optional (N, T, F) float32 array (e.g. a writable memmap) to write into; else a new array.

        Returns:
            float32 (N, T, F): ``out`` when given.
        """
        self._check_fitted()
        x = self._check_input(x)
        if x.shape[2] != self.n_features_in_:
            raise MedDLError(f"SequenceScaler: fitted on {self.n_features_in_} channels, got {x.shape[2]}")
        values, _ = self._check_channels(x.shape[2])
        if out is None:
            out = np.empty(x.shape, dtype=np.float32)
        elif out.shape != x.shape:
            raise MedDLError(f"SequenceScaler: out has shape {out.shape}, expected {x.shape}")
        mean, scale = self.mean_.astype(np.float32), self.scale_.astype(np.float32)
        for start in range(0, x.shape[0], self.chunk_rows):
            chunk = np.array(x[start : start + self.chunk_rows], dtype=np.float32)  # a copy: x stays as it was
            real = chunk[:, :, self.mask_channel, None] > 0.5  # (b, T, 1)
            chunk[:, :, values] = np.where(real, (chunk[:, :, values] - mean) / scale, chunk[:, :, values])
            out[start : start + len(chunk)] = chunk
        return out

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        """Undo `transform` on the value channels at real steps (float32 copy)."""
        self._check_fitted()
        x = np.array(self._check_input(x), dtype=np.float32)
        values, _ = self._check_channels(x.shape[2])
        real = x[:, :, self.mask_channel, None] > 0.5
        x[:, :, values] = np.where(real, x[:, :, values] * self.scale_ + self.mean_, x[:, :, values])
        return x

    def to_state(self) -> dict[str, Any]:
        """JSON-able state: arguments and learned statistics."""
        self._check_fitted()
        return {
            "kind": STATE_KIND,
            "value_channels": [int(c) for c in self.value_channels],
            "mask_channel": int(self.mask_channel),
            "observed_channels": None if self.observed_channels is None else [int(c) for c in self.observed_channels],
            "chunk_rows": int(self.chunk_rows),
            "mean": [float(v) for v in self.mean_],
            "scale": [float(v) for v in self.scale_],
            "n_samples_seen": [int(v) for v in self.n_samples_seen_],
            "n_features_in": int(self.n_features_in_),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], source: str | Path = "preprocess state") -> SequenceScaler:
        """Rebuild a fitted scaler from `to_state`.

        Raises:
            MedDLError: the state is not a SequenceScaler state or lacks a field (``source`` names the file).
        """
        if not isinstance(state, dict) or state.get("kind") != STATE_KIND:
            raise MedDLError(
                f"{source}: not a {STATE_KIND} state (kind {state.get('kind') if isinstance(state, dict) else None!r})"
            )
        try:
            scaler = cls(
                value_channels=list(state["value_channels"]),
                mask_channel=int(state["mask_channel"]),
                observed_channels=state["observed_channels"],
                chunk_rows=int(state["chunk_rows"]),
            )
            scaler.mean_ = np.asarray(state["mean"], dtype=np.float64)
            scaler.scale_ = np.asarray(state["scale"], dtype=np.float64)
            scaler.n_samples_seen_ = np.asarray(state["n_samples_seen"], dtype=np.int64)
            scaler.n_features_in_ = int(state["n_features_in"])
        except KeyError as exc:
            raise MedDLError(f"{source}: {STATE_KIND} state lacks field {exc.args[0]!r}") from None
        if len(scaler.mean_) != len(scaler.value_channels) or len(scaler.scale_) != len(scaler.value_channels):
            raise MedDLError(f"{source}: {STATE_KIND} state has statistics for a different number of channels")
        return scaler

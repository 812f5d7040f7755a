"""Turning a :class:`~meddl.io.signals.Signal` into the fixed-size array a network reads.

Steps, in this order, each optional:

1. **channels** — keep channels by name (``["I", "II"]``) or the first N (``2``).
2. **gaps** — NaN samples (WFDB marks missing samples so) are filled by linear interpolation within their
   channel; the number filled is counted in ``last_filled_``.
3. **resample** to ``fs`` Hz with ``scipy.signal.resample_poly`` (polyphase, with its anti-alias filter), from any
   source rate: the ratio is approximated by a fraction with a denominator of at most 1000.
4. **band-pass** ``(low, high)`` Hz: Butterworth of order 4 as second-order sections, applied forward and
   backward (``sosfiltfilt``: no phase shift). ``low`` None/0 gives a low-pass, ``high`` None a high-pass.
   ``high`` must be below the Nyquist frequency (fs/2).
5. **fixed length** ``length_seconds``: a longer record is centre-cropped (equal parts cut at both ends, one
   extra sample from the end when odd); a shorter one is zero-padded at the end, *after* normalisation, so the
   padding equals the channel mean (0).
6. **normalise** ``"zscore"``: per channel and per record, mean 0 and standard deviation 1 over the kept
   samples (a flat channel is only centred); ``"none"``: physical units.

Nothing is learned from the training records; ``fit`` validates the settings and fixes the channel count
(``n_channels_``) and, with both ``fs`` and ``length_seconds``, the output length (``length_``).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from meddl.errors import MedDLError
from meddl.io.signals import Signal

__all__ = ["SignalPipeline"]

_NORMALIZE = ("zscore", "none")
_BUTTERWORTH_ORDER = 4
_FLAT = 1e-8


class SignalPipeline:
    """Channel selection, resampling, band-pass filtering, fixed length and normalisation of signals.

    Args:
        fs: target sampling rate in Hz; None keeps each record's own rate.
        bandpass: ``(low, high)`` cut-offs in Hz (either may be None for a high- or low-pass); None: no filter.
        length_seconds: fixed output duration (centre-crop or zero-pad); None keeps each record's length.
        channels: channel names to keep, in this order, or the number of leading channels; None keeps all.
        normalize: ``"zscore"`` (per channel, per record) or ``"none"``.

    Attributes:
        n_channels_: number of output channels (from ``channels`` or the first training record).
        length_: output samples per record (``round(length_seconds * fs)``) when both are set, else None.
        last_filled_: NaN samples interpolated in the last transformed record.
    """

    def __init__(
        self,
        *,
        fs: float | None = None,
        bandpass: Sequence[float | None] | None = (0.5, 40.0),
        length_seconds: float | None = None,
        channels: Sequence[str] | int | None = None,
        normalize: str = "zscore",
    ) -> None:
        self.fs = fs
        self.bandpass = bandpass
        self.length_seconds = length_seconds
        self.channels = channels
        self.normalize = normalize

    # -- fitting ----------------------------------------------------------------------------------

    def fit(self, signals: Sequence[Signal] | Signal | None = None) -> SignalPipeline:
        """Validate the settings; the first training signal gives the channel count when ``channels`` is None.

        Args:
            signals: training signals (only the first is looked at), or None when ``channels`` is set.

        Returns:
            self.

        Raises:
            MedDLError: a setting is invalid (e.g. a cut-off at or above Nyquist) or a channel is missing.
        """
        if self.normalize not in _NORMALIZE:
            raise MedDLError(f"preprocess.normalize must be one of {list(_NORMALIZE)}, got {self.normalize!r}")
        if self.fs is not None and not float(self.fs) > 0:
            raise MedDLError(f"preprocess.sampling_rate must be a positive number of Hz, got {self.fs!r}")
        if self.length_seconds is not None and not float(self.length_seconds) > 0:
            raise MedDLError(f"preprocess.length_seconds must be positive, got {self.length_seconds!r}")
        if self.bandpass is not None:
            self._cutoffs(float(self.fs) if self.fs is not None else None, "preprocess")
        first = signals if isinstance(signals, Signal) else (signals[0] if signals else None)
        if isinstance(self.channels, int) and not isinstance(self.channels, bool):
            if self.channels < 1:
                raise MedDLError(
                    f"preprocess.channels must be a positive count or a list of names, got {self.channels}"
                )
            n_channels = int(self.channels)
        elif self.channels is not None:
            names = [str(name) for name in self.channels]  # type: ignore[union-attr]
            if not names or len(set(names)) != len(names):
                raise MedDLError(f"preprocess.channels must list distinct channel names, got {names}")
            n_channels = len(names)
        elif first is not None:
            n_channels = first.data.shape[0]
        else:
            raise MedDLError("SignalPipeline.fit needs a training signal when preprocess.channels is not set")
        if first is not None:
            self._select(first)  # a missing channel fails here, naming the file
        self.n_channels_ = n_channels
        self.length_ = (
            round(float(self.length_seconds) * float(self.fs))
            if self.length_seconds is not None and self.fs is not None
            else None
        )
        self.last_filled_ = 0
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_channels_"):
            raise MedDLError("SignalPipeline is not fitted; call fit() first")

    def _cutoffs(self, fs: float | None, source: str) -> tuple[float | None, float | None]:
        """Validated (low, high) cut-offs; ``fs`` None checks only their order."""
        assert self.bandpass is not None, "_cutoffs called without a band-pass"
        band = list(self.bandpass)
        if len(band) != 2:
            raise MedDLError(f"preprocess.bandpass must be [low, high] in Hz, got {self.bandpass!r}")
        low = float(band[0]) if band[0] not in (None, 0) else None
        high = float(band[1]) if band[1] is not None else None
        if low is None and high is None:
            raise MedDLError(f"preprocess.bandpass needs at least one cut-off, got {self.bandpass!r}")
        if (low is not None and low < 0) or (high is not None and high <= 0):
            raise MedDLError(f"preprocess.bandpass cut-offs must be positive, got {self.bandpass!r}")
        if low is not None and high is not None and low >= high:
            raise MedDLError(f"preprocess.bandpass low cut-off must be below the high one, got {self.bandpass!r}")
        if fs is not None:
            nyquist = fs / 2
            if (high if high is not None else low or 0.0) >= nyquist:
                raise MedDLError(
                    f"{source}: preprocess.bandpass {self.bandpass!r} reaches the Nyquist frequency {nyquist:g} Hz "
                    f"of a {fs:g} Hz signal; lower the cut-off or raise preprocess.sampling_rate"
                )
        return low, high

    # -- transforming -----------------------------------------------------------------------------

    def transform(self, signal: Signal) -> np.ndarray:
        """One record → ``(C, L)`` float32, L = ``length_`` when the length is fixed.

        Raises:
            MedDLError: not fitted, a channel is missing, the record is too short to filter, or a cut-off
                reaches the record's Nyquist frequency.
        """
        data, fs = self._filtered(signal)
        if self.length_seconds is not None:
            length = round(float(self.length_seconds) * fs)
            data = self._normalise(_centre_crop(data, length))
            return _pad_end(data, length)
        return self._normalise(data)

    def windows(self, signal: Signal, length_seconds: float, stride_seconds: float) -> np.ndarray:
        """Cut a long record into windows: ``(K, C, L)`` float32 with L = ``round(length_seconds * fs)``.

        Channels, gaps, resampling and filtering are applied to the whole record first (so the filter has no
        edge effect at each window's border); each window is then normalised on its own. Windows start at
        0, stride, 2·stride, … and a final partial window is dropped; a record shorter than one window gives
        one zero-padded window. ``length_seconds`` of the pipeline is not used here.

        Raises:
            MedDLError: as :meth:`transform`, or a non-positive window length or stride.
        """
        if not length_seconds > 0 or not stride_seconds > 0:
            raise MedDLError(
                f"windows: length_seconds and stride_seconds must be positive, got {length_seconds}, {stride_seconds}"
            )
        data, fs = self._filtered(signal)
        length = max(1, round(length_seconds * fs))
        stride = max(1, round(stride_seconds * fs))
        if data.shape[1] <= length:
            return _pad_end(self._normalise(data), length)[None]  # (1, C, L)
        starts = range(0, data.shape[1] - length + 1, stride)
        return np.stack([self._normalise(data[:, s : s + length]) for s in starts])  # (K, C, L)

    def _filtered(self, signal: Signal) -> tuple[np.ndarray, float]:
        """Channels, gaps, resampling and band-pass: ``(C, L)`` float64 and its sampling rate."""
        from scipy.signal import butter, resample_poly, sosfiltfilt

        self._check_fitted()
        source = signal.source or "signal"
        data = self._select(signal).astype(np.float64)
        data, self.last_filled_ = _fill_gaps(data)
        fs = signal.fs
        if self.fs is not None and abs(float(self.fs) - fs) > 1e-9 * fs:
            ratio = Fraction(float(self.fs) / fs).limit_denominator(1000)
            data = resample_poly(data, ratio.numerator, ratio.denominator, axis=1)
            fs = float(self.fs)
        if self.bandpass is not None:
            low, high = self._cutoffs(fs, source)
            if low is not None and high is not None:
                sos = butter(_BUTTERWORTH_ORDER, [low, high], btype="bandpass", fs=fs, output="sos")
            elif high is not None:
                sos = butter(_BUTTERWORTH_ORDER, high, btype="lowpass", fs=fs, output="sos")
            else:
                sos = butter(_BUTTERWORTH_ORDER, low, btype="highpass", fs=fs, output="sos")
            needed = 3 * (2 * len(sos) + 1)  # sosfiltfilt's default padding
            if data.shape[1] <= needed:
                raise MedDLError(
                    f"{source}: {data.shape[1]} samples at {fs:g} Hz are too few to band-pass filter (more than "
                    f"{needed} needed)"
                )
            data = sosfiltfilt(sos, data, axis=1)
        return data, fs

    def _select(self, signal: Signal) -> np.ndarray:
        source = signal.source or "signal"
        if self.channels is None:
            if hasattr(self, "n_channels_") and signal.data.shape[0] != self.n_channels_:
                raise MedDLError(
                    f"{source}: has {signal.data.shape[0]} channels, the pipeline was fitted on {self.n_channels_}; "
                    "set preprocess.channels to choose them"
                )
            return signal.data
        if isinstance(self.channels, int):
            if signal.data.shape[0] < self.channels:
                raise MedDLError(
                    f"{source}: has {signal.data.shape[0]} channel(s) {signal.channels}, preprocess.channels asks "
                    f"for the first {self.channels}"
                )
            return signal.data[: self.channels]
        missing = [name for name in self.channels if name not in signal.channels]
        if missing:
            raise MedDLError(f"{source}: channel(s) {missing} not found; the record has {signal.channels}")
        return signal.data[[signal.channels.index(name) for name in self.channels]]

    def _normalise(self, data: np.ndarray) -> np.ndarray:
        if self.normalize == "zscore" and data.shape[1]:
            mean = data.mean(axis=1, keepdims=True)
            std = data.std(axis=1, keepdims=True)
            data = (data - mean) / np.where(std > _FLAT, std, 1.0)
        return np.ascontiguousarray(data, dtype=np.float32)

    # -- state ------------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """JSON-able settings and fitted attributes."""
        self._check_fitted()
        return {
            "fs": None if self.fs is None else float(self.fs),
            "bandpass": None if self.bandpass is None else [None if v is None else float(v) for v in self.bandpass],
            "length_seconds": None if self.length_seconds is None else float(self.length_seconds),
            "channels": self.channels
            if self.channels is None or isinstance(self.channels, int)
            else list(self.channels),
            "normalize": self.normalize,
            "n_channels": int(self.n_channels_),
            "length": self.length_,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SignalPipeline:
        """Rebuild a fitted pipeline from :meth:`to_state`."""
        pipeline = cls(
            fs=state["fs"],
            bandpass=state["bandpass"],
            length_seconds=state["length_seconds"],
            channels=state["channels"],
            normalize=state["normalize"],
        )
        pipeline.n_channels_ = int(state["n_channels"])
        pipeline.length_ = state["length"]
        pipeline.last_filled_ = 0
        return pipeline


def _fill_gaps(data: np.ndarray) -> tuple[np.ndarray, int]:
    """Linear interpolation over NaN samples per channel (ends take the nearest valid value)."""
    gaps = ~np.isfinite(data)
    count = int(gaps.sum())
    if not count:
        return data, 0
    data = data.copy()
    positions = np.arange(data.shape[1])
    for channel in np.flatnonzero(gaps.any(axis=1)):
        valid = ~gaps[channel]
        if not valid.any():
            data[channel] = 0.0
            continue
        data[channel, ~valid] = np.interp(positions[~valid], positions[valid], data[channel, valid])
    return data, count


def _centre_crop(data: np.ndarray, length: int) -> np.ndarray:
    excess = data.shape[1] - length
    if excess <= 0:
        return data
    start = excess // 2
    return data[:, start : start + length]


def _pad_end(data: np.ndarray, length: int) -> np.ndarray:
    missing = length - data.shape[1]
    if missing <= 0:
        return data
    return np.pad(data, ((0, 0), (0, missing)))

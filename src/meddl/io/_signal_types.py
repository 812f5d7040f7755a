"""The :class:`Signal` every signal reader returns, the twelve ECG lead names and the checks the readers share.

They live apart from the readers so that :mod:`meddl.io.signals` and the DICOM waveform reader in
:mod:`meddl.io._signal_dicom` both import them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from meddl.errors import MedDLError

__all__ = ["ECG_12_LEADS", "Signal"]

ECG_12_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


@dataclass
class Signal:
    """A multichannel physiological recording.

    Attributes:
        data: ``(C, L)`` float32 samples in physical units (C channels, L samples).
        fs: sampling rate in Hz.
        channels: one name per channel, e.g. ``["I", "II", …]``.
        units: one unit per channel, e.g. ``"mV"``; ``""`` where the file does not say.
        source: the file (or record) it was read from, ``""`` for a synthetic signal.
    """

    data: np.ndarray
    fs: float
    channels: list[str]
    units: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        data = np.asarray(self.data, dtype=np.float32)
        if data.ndim == 1:
            data = data[None]  # (1, L)
        if data.ndim != 2:
            raise ValueError(f"Signal data must be (C, L), got shape {data.shape}")
        self.data = np.ascontiguousarray(data)
        self.fs = float(self.fs)
        if not self.fs > 0:
            raise ValueError(f"Signal fs must be positive, got {self.fs}")
        self.channels = [str(c) for c in self.channels]
        if len(self.channels) != data.shape[0]:
            raise ValueError(f"Signal has {data.shape[0]} channels but {len(self.channels)} channel names")
        self.units = [str(u) for u in self.units] if self.units else [""] * data.shape[0]
        if len(self.units) != data.shape[0]:
            raise ValueError(f"Signal has {data.shape[0]} channels but {len(self.units)} units")

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.data.shape[1] / self.fs


def _check_not_all_nan(data: np.ndarray, names: list[str], source: Path) -> None:
    """Every channel has a valid sample, and no sample is too large for the float32 :class:`Signal` (it would
    turn infinite)."""
    empty = [names[i] for i in range(data.shape[0]) if not np.any(np.isfinite(data[i]))]
    if empty:
        raise MedDLError(f"{source}: channel(s) {empty} hold no valid sample (all NaN)")
    with np.errstate(invalid="ignore"):
        too_large = np.abs(data) > np.finfo(np.float32).max
    if too_large.any():
        channel, sample = (int(k) for k in np.argwhere(too_large)[0])
        raise MedDLError(
            f"{source}: {int(too_large.sum())} sample(s) beyond ±3.4e38 (the float32 range), e.g. channel "
            f"{names[channel]!r}, sample {sample}: {data[channel, sample]:g}"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

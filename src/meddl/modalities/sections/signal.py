"""The ``data`` and ``preprocess`` sections of physiological signals (``data.kind: signal``).

Plain pydantic (see :mod:`meddl.sections`): validating an experiment imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from meddl.sections import DataSection, PreprocessSection

__all__ = ["Data", "Preprocess", "SignalDataConfig", "SignalPreprocessConfig"]


class SignalDataConfig(DataSection):
    """Physiological signals (ECG): a manifest CSV ``path,label[,patient_id]`` naming WFDB records, DICOM
    waveforms, ``.npy`` or CSV arrays."""

    default_arch: ClassVar[str] = "seed_lstm"
    archs: ClassVar[tuple[str, ...]] = ("seed_lstm", "cnn1d", "cnn_lstm")

    classical_baselines: ClassVar[bool] = False  # no classical baseline on raw traces by default

    kind: Literal["signal"]
    path: Path
    path_column: str = "path"
    target: str = "label"
    positive_label: str | int | float | bool | None = None
    classes: list[str | int | float | bool] | None = None
    patient_id: str | None = None
    sampling_rate: float | None = Field(None, gt=0, description="Hz, for .npy / CSV arrays without a time column")
    on_bad_file: Literal["error", "skip"] = "error"


class SignalPreprocessConfig(PreprocessSection):
    """scipy resampling and band-pass filtering, a fixed length, per-channel normalisation."""

    kind: Literal["signal"] = "signal"
    sampling_rate: float = Field(100.0, gt=0, description="resample every record to this rate (Hz)")
    bandpass: list[float] | None = Field(default_factory=lambda: [0.5, 40.0], description="[low, high] Hz or null")
    length_seconds: float = Field(10.0, gt=0)
    channels: list[str] | int | None = Field(None, description="channel names, or the first N channels")
    normalize: Literal["zscore", "none"] = "zscore"
    imbalance: Literal["none", "class_weight"] = "none"

    @field_validator("bandpass")
    @classmethod
    def _low_below_high(cls, value: list[float] | None) -> list[float] | None:
        """``[low, high]`` in Hz, low (0: no high-pass) below high: checked with the other settings, before any
        record is read (the Nyquist limit, which needs sampling_rate, is checked when the data are loaded)."""
        if value is None:
            return None
        if len(value) != 2:
            raise ValueError(f"expected [low, high] in Hz, got {value}")
        low, high = value
        if low < 0 or high <= 0:
            raise ValueError(f"cut-offs must be positive (low 0: no high-pass), got {value}")
        if low > high:
            raise ValueError(f"the low cut-off must be below the high one, got {value}; write [{high:g}, {low:g}]")
        if low == high:
            raise ValueError(f"the low cut-off must be below the high one, got {value}")
        return value


Data = SignalDataConfig
Preprocess = SignalPreprocessConfig

"""Synthetic ECGs: the heart rate and rhythm asked for, determinism, leads, and datasets in real formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.signal import find_peaks

from meddl.data.ecg import synthetic_ecg, write_ecg_dataset
from meddl.errors import MedDLError
from meddl.io.signals import ECG_12_LEADS, read_signal, signal_manifest


def _rr_intervals(trace: np.ndarray, fs: float) -> np.ndarray:
    """R-R intervals (s) from R peaks: above half the maximum, at least 0.25 s apart."""
    peaks, _ = find_peaks(trace, height=0.5 * trace.max(), distance=int(0.25 * fs))
    return np.diff(peaks) / fs


@pytest.mark.parametrize("heart_rate", [45.0, 72.0, 110.0, 150.0])
def test_sinus_heart_rate_matches_the_request_within_3_bpm(heart_rate: float) -> None:
    for seed in range(3):
        signal = synthetic_ecg(duration=10, fs=250, heart_rate=heart_rate, rhythm="sinus", seed=seed)
        assert signal.data.shape == (1, 2500) and signal.data.dtype == np.float32 and signal.units == ["mV"]
        measured = 60.0 / _rr_intervals(signal.data[0], signal.fs).mean()
        assert measured == pytest.approx(heart_rate, abs=3.0)


def test_irregular_rhythm_has_much_higher_rr_variability() -> None:
    def variation(rhythm: str, seed: int) -> float:
        rr = _rr_intervals(synthetic_ecg(duration=20, heart_rate=80, rhythm=rhythm, seed=seed).data[0], 250)
        return float(rr.std() / rr.mean())

    sinus = [variation("sinus", seed) for seed in range(5)]
    irregular = [variation("irregular", seed) for seed in range(5)]
    assert max(sinus) < 0.05
    assert min(irregular) > 0.1
    irregular_rate = 60.0 / _rr_intervals(synthetic_ecg(duration=60, heart_rate=80, rhythm="irregular").data[0], 250)
    assert irregular_rate.mean() == pytest.approx(80.0, rel=0.15)


def test_same_seed_same_record_and_twelve_leads_obey_einthoven() -> None:
    a = synthetic_ecg(seed=4, noise=0.05)
    np.testing.assert_array_equal(a.data, synthetic_ecg(seed=4, noise=0.05).data)
    assert not np.array_equal(a.data, synthetic_ecg(seed=5, noise=0.05).data)
    twelve = synthetic_ecg(leads=12, noise=0.0, fs=500, duration=5)
    assert twelve.data.shape == (12, 2500) and twelve.channels == list(ECG_12_LEADS)
    lead = dict(zip(twelve.channels, twelve.data.astype(np.float64), strict=True))
    np.testing.assert_allclose(lead["III"], lead["II"] - lead["I"], atol=1e-5)
    np.testing.assert_allclose(lead["aVR"] + lead["aVL"] + lead["aVF"], 0.0, atol=1e-5)


def test_invalid_arguments_are_named() -> None:
    with pytest.raises(MedDLError, match=r"rhythm must be one of \['sinus', 'irregular'\], got 'afib'"):
        synthetic_ecg(rhythm="afib")
    with pytest.raises(MedDLError, match=r"leads must be 1 or 12, got 3"):
        synthetic_ecg(leads=3)


@pytest.mark.parametrize("fmt", ["wfdb", "dicom", "npy"])
def test_dataset_records_and_manifest_read_back(tmp_path: Path, fmt: str) -> None:
    manifest_path = write_ecg_dataset(tmp_path / fmt, 6, task="heart_rate", fmt=fmt, duration=4, seed=1, patients=3)
    table = pd.read_csv(manifest_path)
    assert list(table.columns) == ["path", "label", "heart_rate", "rhythm", "patient_id"]
    assert table["label"].between(45, 150).all() and (table["label"] == table["heart_rate"]).all()
    assert table["patient_id"].tolist() == ["P00001", "P00002", "P00003"] * 2
    manifest = signal_manifest(manifest_path, patient_id="patient_id")
    for path, rate in zip(manifest["path"], manifest["label"], strict=True):
        signal = read_signal(path, fs=250)
        assert signal.data.shape == (1, 1000) and signal.fs == 250.0
        assert 60.0 / _rr_intervals(signal.data[0], 250).mean() == pytest.approx(rate, abs=6.0)  # 4-s records


def test_rhythm_dataset_has_both_classes_and_is_deterministic(tmp_path: Path) -> None:
    first = pd.read_csv(write_ecg_dataset(tmp_path / "a", 40, task="rhythm", fmt="npy", duration=2, seed=3))
    second = pd.read_csv(write_ecg_dataset(tmp_path / "b", 40, task="rhythm", fmt="npy", duration=2, seed=3))
    assert set(first["label"]) == {"sinus", "irregular"}
    assert (first["label"] == first["rhythm"]).all() and first["heart_rate"].between(60, 110).all()
    pd.testing.assert_frame_equal(first, second)
    np.testing.assert_array_equal(
        np.load(tmp_path / "a" / first["path"][0]), np.load(tmp_path / "b" / second["path"][0])
    )

"""SignalPipeline: resampling, band-pass, fixed length, channels, normalisation, windows and saved state."""

from __future__ import annotations

import json

import numpy as np
import pytest

from meddl.errors import MedDLError
from meddl.io.signals import Signal
from meddl.preprocess.signals import SignalPipeline


def _sine(frequency: float, fs: float, seconds: float, channels: int = 1) -> Signal:
    time = np.arange(round(fs * seconds)) / fs
    data = np.stack([np.sin(2 * np.pi * frequency * time) * (i + 1) for i in range(channels)])
    return Signal(data, fs, [f"ch{i}" for i in range(channels)], ["mV"] * channels, "sine.npy")


def _dominant_frequency(x: np.ndarray, fs: float) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / fs)[np.argmax(spectrum)])


@pytest.mark.parametrize("source_fs", [360.0, 500.0, 128.0, 257.0])
def test_resampling_preserves_a_sinusoids_frequency(source_fs: float) -> None:
    pipeline = SignalPipeline(fs=100.0, bandpass=None, normalize="none").fit(_sine(7.0, source_fs, 10.0))
    out = pipeline.transform(_sine(7.0, source_fs, 10.0))
    assert out.shape == (1, 1000) and out.dtype == np.float32
    assert _dominant_frequency(out[0], 100.0) == pytest.approx(7.0, abs=0.1)
    np.testing.assert_allclose(out[0, 100:-100].std() * np.sqrt(2), 1.0, atol=0.02)  # amplitude kept


def test_bandpass_removes_drift_and_mains_hum_but_keeps_the_band() -> None:
    fs = 250.0
    time = np.arange(int(fs * 20)) / fs
    wanted = np.sin(2 * np.pi * 10.0 * time)
    drift = 2.0 * np.sin(2 * np.pi * 0.1 * time)
    hum = 0.5 * np.sin(2 * np.pi * 60.0 * time)
    signal = Signal(wanted + drift + hum, fs, ["II"], ["mV"], "")
    out = SignalPipeline(bandpass=(0.5, 40.0), normalize="none").fit(signal).transform(signal)[0]
    inner = slice(500, -500)  # away from the edges
    np.testing.assert_allclose(out[inner], wanted[inner], atol=0.05)
    spectrum = np.abs(np.fft.rfft(out)) / len(out)
    frequencies = np.fft.rfftfreq(len(out), 1 / fs)
    at = {f: spectrum[np.argmin(np.abs(frequencies - f))] for f in (0.1, 10.0, 60.0)}
    # Spectral amplitude before filtering: drift 1.0, wanted 0.5, hum 0.25 (half the sine amplitude).
    assert at[0.1] < 0.01 * 1.0  # drift down more than 100×
    assert at[60.0] < 0.02 * 0.25  # hum down more than 50×
    assert at[10.0] > 0.45  # the band kept


def test_bandpass_at_or_above_nyquist_is_an_error_naming_the_setting() -> None:
    with pytest.raises(MedDLError, match=r"bandpass .* reaches the Nyquist frequency 50 Hz"):
        SignalPipeline(fs=100.0, bandpass=(0.5, 60.0)).fit(_sine(5.0, 500.0, 2.0))
    pipeline = SignalPipeline(bandpass=(0.5, 40.0)).fit(_sine(5.0, 500.0, 2.0))  # keeps each record's rate
    with pytest.raises(MedDLError, match=r"sine\.npy: .*Nyquist frequency 30 Hz of a 60 Hz signal"):
        pipeline.transform(_sine(5.0, 60.0, 2.0))
    with pytest.raises(MedDLError, match=r"low cut-off must be below the high one"):
        SignalPipeline(bandpass=(40.0, 0.5)).fit(_sine(5.0, 500.0, 2.0))


def test_centre_crop_and_zero_pad_to_a_fixed_length() -> None:
    pipeline = SignalPipeline(fs=100.0, bandpass=None, length_seconds=4.0, normalize="none")
    ramp = Signal(np.arange(1000, dtype=float), 100.0, ["ch0"], ["mV"], "")
    pipeline.fit(ramp)
    assert pipeline.length_ == 400
    cropped = pipeline.transform(ramp)
    assert cropped.shape == (1, 400) and cropped[0, 0] == 300.0 and cropped[0, -1] == 699.0  # 300 cut each side
    short = Signal(np.ones(250), 100.0, ["ch0"], ["mV"], "")
    padded = pipeline.transform(short)
    assert padded.shape == (1, 400)
    assert np.all(padded[0, :250] == 1.0) and np.all(padded[0, 250:] == 0.0)  # zeros appended at the end


def test_zscore_per_channel_and_padding_after_normalisation() -> None:
    signal = _sine(3.0, 100.0, 3.0, channels=2)
    signal.data += np.array([[5.0], [-2.0]], dtype=np.float32)
    out = SignalPipeline(bandpass=None, length_seconds=4.0).fit(signal).transform(signal)
    assert out.shape == (2, 400)
    np.testing.assert_allclose(out[:, :300].mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[:, :300].std(axis=1), 1.0, atol=1e-4)
    assert np.all(out[:, 300:] == 0.0)
    flat = Signal(np.full(100, 3.0), 100.0, ["ch0"], ["mV"], "")
    assert np.all(SignalPipeline(bandpass=None).fit(flat).transform(flat) == 0.0)  # centred, not divided by 0


def test_channels_by_name_by_count_and_a_missing_channel_names_the_file() -> None:
    signal = Signal(np.arange(3)[:, None] * np.ones((3, 200)), 100.0, ["I", "II", "V1"], ["mV"] * 3, "rec7.hea")
    by_name = SignalPipeline(bandpass=None, channels=["V1", "I"], normalize="none").fit(signal)
    out = by_name.transform(signal)
    assert by_name.n_channels_ == 2 and out[:, 0].tolist() == [2.0, 0.0]
    by_count = SignalPipeline(bandpass=None, channels=2, normalize="none").fit(signal)
    assert by_count.transform(signal)[:, 0].tolist() == [0.0, 1.0]
    other = Signal(np.ones((2, 200)), 100.0, ["I", "II"], ["mV"] * 2, "rec8.hea")
    with pytest.raises(MedDLError, match=r"rec8\.hea: channel\(s\) \['V1'\] not found; the record has \['I', 'II'\]"):
        by_name.transform(other)


def test_nan_gaps_are_interpolated_and_counted() -> None:
    data = np.linspace(0.0, 1.0, 101)
    data[40:45] = np.nan
    signal = Signal(data, 100.0, ["ch0"], ["mV"], "")
    pipeline = SignalPipeline(bandpass=None, normalize="none").fit(signal)
    out = pipeline.transform(signal)
    assert pipeline.last_filled_ == 5
    np.testing.assert_allclose(out[0], np.linspace(0.0, 1.0, 101), atol=1e-6)


def test_windows_of_a_long_record() -> None:
    signal = _sine(1.0, 100.0, 30.0)
    pipeline = SignalPipeline(bandpass=(0.5, 40.0)).fit(signal)
    windows = pipeline.windows(signal, length_seconds=10.0, stride_seconds=5.0)
    assert windows.shape == (5, 1, 1000) and windows.dtype == np.float32  # starts at 0, 5, 10, 15, 20 s
    np.testing.assert_allclose(windows.std(axis=2), 1.0, atol=1e-4)
    one = pipeline.windows(_sine(1.0, 100.0, 6.0), length_seconds=10.0, stride_seconds=5.0)
    assert one.shape == (1, 1, 1000) and np.all(one[0, 0, 600:] == 0.0)


def test_state_round_trip_through_json_gives_the_same_output() -> None:
    signal = _sine(5.0, 360.0, 12.0, channels=3)
    pipeline = SignalPipeline(fs=125.0, bandpass=(0.5, 40.0), length_seconds=10.0, channels=["ch2", "ch0"]).fit(signal)
    restored = SignalPipeline.from_state(json.loads(json.dumps(pipeline.to_state())))
    assert restored.n_channels_ == 2 and restored.length_ == 1250
    np.testing.assert_array_equal(restored.transform(signal), pipeline.transform(signal))


def test_unfitted_and_invalid_settings() -> None:
    with pytest.raises(MedDLError, match="not fitted"):
        SignalPipeline().transform(_sine(1.0, 100.0, 5.0))
    with pytest.raises(MedDLError, match=r"normalize must be one of \['zscore', 'none'\], got 'minmax'"):
        SignalPipeline(normalize="minmax").fit(_sine(1.0, 100.0, 5.0))
    with pytest.raises(MedDLError, match=r"too few to band-pass filter"):
        SignalPipeline().fit(_sine(1.0, 100.0, 0.2)).transform(_sine(1.0, 100.0, 0.2))

"""SequenceScaler: statistics from real steps only, pass-through channels, memmap chunks, state round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from meddl.errors import MedDLError
from meddl.preprocess.ehr import SequenceScaler


def _sequences(seed: int = 0) -> np.ndarray:
    """(20, 6, 5): mask, two value channels, an observed flag for channel 1, a multi-hot code; padding = 999."""
    rng = np.random.default_rng(seed)
    x = np.zeros((20, 6, 5), dtype=np.float32)
    lengths = rng.integers(1, 7, 20)
    for row, length in enumerate(lengths):
        x[row, :length, 0] = 1
        x[row, :length, 1] = rng.normal(100, 10, length)
        x[row, :length, 2] = rng.normal(-5, 2, length)
        x[row, :length, 3] = rng.random(length) < 0.5
        x[row, :length, 4] = rng.random(length) < 0.3
        x[row, length:, 1:] = 999.0  # padding content must not matter
    return x


def test_statistics_use_real_steps_only() -> None:
    x = _sequences()
    scaler = SequenceScaler(value_channels=[1, 2]).fit(x)
    real = x[:, :, 0] == 1
    np.testing.assert_allclose(scaler.mean_, [x[:, :, 1][real].mean(), x[:, :, 2][real].mean()], rtol=1e-6)
    np.testing.assert_allclose(scaler.scale_, [x[:, :, 1][real].std(), x[:, :, 2][real].std()], rtol=1e-5)
    assert scaler.n_samples_seen_.tolist() == [int(real.sum())] * 2


def test_transform_standardises_values_and_leaves_the_rest() -> None:
    x = _sequences()
    original = x.copy()
    z = SequenceScaler(value_channels=[1, 2]).fit_transform(x)
    real = x[:, :, 0] == 1
    assert z.dtype == np.float32
    np.testing.assert_allclose(z[:, :, 1][real].mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(z[:, :, 2][real].std(), 1.0, atol=1e-4)
    np.testing.assert_array_equal(z[:, :, [0, 3, 4]], x[:, :, [0, 3, 4]])  # mask and flags untouched
    np.testing.assert_array_equal(z[~real], x[~real])  # padding untouched
    np.testing.assert_array_equal(x, original)  # the input is not modified


def test_observed_channels_restrict_the_statistics() -> None:
    x = _sequences()
    scaler = SequenceScaler(value_channels=[1], observed_channels=[3]).fit(x)
    measured = (x[:, :, 0] == 1) & (x[:, :, 3] == 1)
    np.testing.assert_allclose(scaler.mean_, [x[:, :, 1][measured].mean()], rtol=1e-6)
    assert scaler.n_samples_seen_.tolist() == [int(measured.sum())]


def test_memmap_in_chunks_matches_in_memory(tmp_path: Path) -> None:
    x = _sequences(seed=1)
    np.save(tmp_path / "x.npy", x)
    on_disk = np.load(tmp_path / "x.npy", mmap_mode="r")
    chunked = SequenceScaler(value_channels=[1, 2], chunk_rows=3).fit(on_disk)
    whole = SequenceScaler(value_channels=[1, 2]).fit(x)
    np.testing.assert_allclose(chunked.mean_, whole.mean_, rtol=1e-10)
    np.testing.assert_allclose(chunked.scale_, whole.scale_, rtol=1e-9)
    out = np.lib.format.open_memmap(tmp_path / "z.npy", mode="w+", dtype=np.float32, shape=x.shape)
    result = chunked.transform(on_disk, out=out)
    assert result is out
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), whole.transform(x), rtol=1e-6)


def test_state_round_trip_through_json() -> None:
    x = _sequences()
    scaler = SequenceScaler(value_channels=[1, 2], observed_channels=[3, 3]).fit(x)
    restored = SequenceScaler.from_state(json.loads(json.dumps(scaler.to_state())))
    np.testing.assert_array_equal(restored.transform(x), scaler.transform(x))
    np.testing.assert_allclose(restored.inverse_transform(restored.transform(x))[:, :, 1:3], x[:, :, 1:3], atol=1e-3)
    with pytest.raises(MedDLError, match="lacks field 'mean'"):
        SequenceScaler.from_state({k: v for k, v in scaler.to_state().items() if k != "mean"})


def test_bad_use_is_reported() -> None:
    x = _sequences()
    with pytest.raises(NotFittedError):
        SequenceScaler(value_channels=[1]).transform(x)
    with pytest.raises(MedDLError, match=r"value_channels \[0\]"):
        SequenceScaler(value_channels=[0]).fit(x)
    with pytest.raises(MedDLError, match=r"value_channels \[7\]"):
        SequenceScaler(value_channels=[7]).fit(x)
    with pytest.raises(MedDLError, match="fitted on 5 channels, got 4"):
        SequenceScaler(value_channels=[1]).fit(x).transform(x[:, :, :4])
    with pytest.raises(MedDLError, match=r"expected \(N, T, F\)"):
        SequenceScaler(value_channels=[1]).fit(x[0])

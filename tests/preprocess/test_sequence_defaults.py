"""Defaults a sequence run takes from its training data, and the features of the sequence baselines."""

from __future__ import annotations

import numpy as np
import pytest

from meddl.errors import MedDLError
from meddl.evaluate import fit_baseline, predict_baseline
from meddl.io.sequences import reverse_complement
from meddl.preprocess.sequences import (
    KmerTokenizer,
    baseline_sequence_features,
    fit_length,
    kmer_spectrum,
    positional_composition,
    sequence_length_choice,
    sequence_length_default,
)


def test_fixed_length_sequences_keep_their_length() -> None:
    # 60-base windows (the splice-junction shape) were padded to 200 by the old fixed default.
    assert sequence_length_default(np.full(3186, 60)) == 60
    assert sequence_length_default([150] * 10) == 150


def test_varied_lengths_fit_the_longest_unless_a_few_outliers() -> None:
    assert sequence_length_default(np.arange(100, 301)) == 300  # spread evenly: all fit whole
    assert sequence_length_default([100] * 90 + [105] * 10) == 105
    # 5 % of sequences ten times longer do not pad the other 95 % with N; they are centre-cropped
    assert sequence_length_default([50] * 95 + [500] * 5) == 50
    assert sequence_length_default([50] * 94 + [500] * 6) == 500


def test_length_default_bounds_and_errors() -> None:
    assert sequence_length_default([3, 4, 5]) == 8  # the config's minimum
    assert sequence_length_default([100_000]) == 2048  # memory cap
    with pytest.raises(MedDLError, match="no sequence"):
        sequence_length_default([])
    with pytest.raises(MedDLError, match="non-negative"):
        sequence_length_default([10, -1])


def test_sequence_length_choice_says_why() -> None:
    length, why = sequence_length_choice(np.full(100, 60))
    assert length == 60 and "60 bases" in why


def test_kmer_spectrum_counts_real_bases_only() -> None:
    spectrum = kmer_spectrum(["ACGTAC", fit_length("ACGTAC", 200), "ACGTNGTACA", "AC"], k=4)
    assert spectrum.shape == (4, 256)
    vocabulary = KmerTokenizer(k=4).vocabulary[2:]
    expected = np.zeros(256)
    for kmer in ("ACGT", "CGTA", "GTAC"):
        expected[vocabulary.index(kmer)] = 1 / 3
    np.testing.assert_allclose(spectrum[0], expected, rtol=1e-6)
    # N padding (the old 200-base window around 6 bases) changes nothing: it was 97 % of the old features
    np.testing.assert_allclose(spectrum[1], spectrum[0], rtol=1e-6)
    # windows across the N are skipped: ACGT, GTAC and TACA remain
    assert np.flatnonzero(spectrum[2]).tolist() == sorted(vocabulary.index(k) for k in ("ACGT", "GTAC", "TACA"))
    assert spectrum[2].sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(spectrum[3], 0.0)  # shorter than k


def test_kmer_spectrum_keeps_the_strand() -> None:
    forward = "AAAACCCGGT"
    spectrum = kmer_spectrum([forward, reverse_complement(forward)], k=4)
    assert not np.allclose(spectrum[0], spectrum[1])


def test_positional_composition_is_the_window_one_hot_with_n_zero() -> None:
    block = positional_composition(["ACGT"], 6).reshape(6, 4)  # centred: N A C G T N
    np.testing.assert_array_equal(block, np.vstack([np.zeros(4), np.eye(4), np.zeros(4)]))
    binned = positional_composition(["A" * 100 + "C" * 100], 200, max_positions=2).reshape(2, 4)
    np.testing.assert_allclose(binned, [[1, 0, 0, 0], [0, 1, 0, 0]])


def test_baseline_sequence_features_shape() -> None:
    features = baseline_sequence_features(["ACGT" * 15] * 3, 60)
    assert features.shape == (3, 256 + 4 * 60)
    assert baseline_sequence_features(["ACGT" * 50], 200).shape == (1, 256 + 4 * 100)  # 100 position bins


def _three_class_kmer_task(n: int = 700, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """60-base random sequences; class 1 carries an AP-1 site (TGACTCA), class 2 an octamer (ATGCAAAT), each at
    a random place; class 0 (52 %, as N in the splice-junction set) carries neither."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.52, 0.24, 0.24])
    sequences = []
    for label in y:
        bases = "".join(rng.choice(list("ACGT"), size=60))
        if label:
            site = "TGACTCA" if label == 1 else "ATGCAAAT"
            start = int(rng.integers(0, 60 - len(site)))
            bases = bases[:start] + site + bases[start + len(site) :]
        sequences.append(bases)
    return sequences, y


def test_sequence_baseline_learns_every_class_of_a_60_base_task() -> None:
    sequences, y = _three_class_kmer_task()
    features = baseline_sequence_features(sequences, sequence_length_default([len(s) for s in sequences]))
    estimator = fit_baseline("logistic_regression", "multiclass", features[:500], y[:500])
    predicted = predict_baseline(estimator, "multiclass", features[500:]).argmax(axis=1)
    assert len(np.unique(predicted)) == 3
    recall = [np.mean(predicted[y[500:] == k] == k) for k in range(3)]
    assert np.mean(recall) > 0.8  # balanced accuracy

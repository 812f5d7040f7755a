"""One-hot and k-mer encodings, augmentation and reverse-complement averaging."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from meddl.errors import MedDLError
from meddl.io.sequences import reverse_complement
from meddl.preprocess.sequences import (
    AugmentedSequences,
    KmerTokenizer,
    SequenceEncoder,
    fit_length,
    one_hot,
    rc_average,
    reverse_complement_one_hot,
)


def test_fit_length_crops_and_pads_around_the_centre() -> None:
    assert fit_length("AACCGGTT", 4) == "CCGG"
    assert fit_length("AACCGGTTA", 4) == "CCGG"
    assert fit_length("AC", 5) == "NACNN"
    assert fit_length("ACG", 3) == "ACG"


def test_one_hot_channels_and_ambiguity() -> None:
    x = one_hot(["ACGTN", "racgt"], 5)
    assert x.shape == (2, 4, 5) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0, :, :4], np.eye(4))
    np.testing.assert_allclose(x[0, :, 4], [0.25] * 4)
    np.testing.assert_allclose(x[1, :, 0], [0.5, 0, 0.5, 0])  # R = A or G
    np.testing.assert_allclose(one_hot(["B"], 1)[0, :, 0], [0, 1 / 3, 1 / 3, 1 / 3])
    zeros = one_hot(["ANR"], 3, ambiguous="zeros")
    np.testing.assert_array_equal(zeros[0, :, 1:], 0)
    np.testing.assert_array_equal(zeros[0, :, 0], [1, 0, 0, 0])


def test_one_hot_pads_short_sequences_with_n() -> None:
    x = one_hot(["AC"], 4)
    np.testing.assert_allclose(x[0, :, 0], 0.25)
    np.testing.assert_array_equal(x[0, :, 1], [1, 0, 0, 0])


def test_one_hot_rejects_invalid_characters() -> None:
    with pytest.raises(MedDLError, match=r"sequence 1: invalid base '-' at position 3"):
        one_hot(["ACGT", "AC-T"], 4)


def test_reverse_complement_one_hot_matches_string_reverse_complement() -> None:
    sequences = ["ACGGTRN", "TTGCAAC"]
    x = one_hot(sequences, 7)
    expected = one_hot([reverse_complement(s) for s in sequences], 7)
    np.testing.assert_array_equal(reverse_complement_one_hot(x), expected)
    np.testing.assert_array_equal(reverse_complement_one_hot(torch.as_tensor(x)).numpy(), expected)


def test_kmer_tokenizer_vocabulary_and_padding() -> None:
    tokenizer = KmerTokenizer(k=2)
    assert tokenizer.vocab_size == 18
    vocabulary = tokenizer.vocabulary
    tokens = tokenizer.encode(["ACGTA", "ACN", "ac"], 5)
    assert tokens.dtype == np.int64 and tokens.shape == (3, 4)
    assert [vocabulary[t] for t in tokens[0]] == ["AC", "CG", "GT", "TA"]
    assert tokens[1].tolist() == [vocabulary.index("AC"), KmerTokenizer.UNK, 0, 0]
    assert tokens[2].tolist() == [vocabulary.index("AC"), 0, 0, 0]
    cropped = tokenizer.encode(["TTACGTT"], 3)  # centre 3 bases: ACG
    assert [vocabulary[t] for t in cropped[0]] == ["AC", "CG"]
    state = json.loads(json.dumps(tokenizer.to_state()))
    np.testing.assert_array_equal(KmerTokenizer.from_state(state).encode(["ACGTA"], 5), tokens[:1])


def test_kmer_tokenizer_rejects_bad_k() -> None:
    with pytest.raises(MedDLError, match="k-mer length k must be an integer from 1 to 8"):
        KmerTokenizer(k=0).fit()


def test_sequence_encoder_onehot_and_kmer_round_trip() -> None:
    sequences = ["ACGTACGTAA", "GGGCCCAATT"]
    onehot = SequenceEncoder(encoding="onehot", length=8).fit(sequences)
    assert onehot.input_kind == "onehot" and onehot.in_channels == 4 and onehot.vocab_size is None
    assert onehot.model_arguments() == {"in_channels": 4}
    assert onehot.transform(sequences).shape == (2, 4, 8)
    kmer = SequenceEncoder(encoding="kmer", length=8, k=3).fit(sequences)
    assert kmer.input_kind == "tokens" and kmer.vocab_size == 66 and kmer.model_arguments() == {"vocab_size": 66}
    tokens = kmer.transform(sequences)
    assert tokens.shape == (2, 6) and tokens.dtype == np.int64
    restored = SequenceEncoder.from_state(json.loads(json.dumps(kmer.to_state())))
    np.testing.assert_array_equal(restored.transform(sequences), tokens)
    with pytest.raises(MedDLError, match=r"preprocess\.encoding must be 'onehot' or 'kmer', got 'bpe'"):
        SequenceEncoder(encoding="bpe").fit()  # type: ignore[arg-type]


def test_augmented_sequences_reproducible_and_label_preserving() -> None:
    x = torch.as_tensor(one_hot(["ACGTTGCAAC", "GGGGAAAACC", "TTTTACGTAC"], 10))
    y = torch.tensor([1.0, 0.0, 1.0])
    data = AugmentedSequences(x, y, max_shift=2, seed=3)
    first = [data[i][0] for i in range(3)]
    again = [AugmentedSequences(x, y, max_shift=2, seed=3)[i][0] for i in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    seen_changes = 0
    for epoch in range(6):
        data.set_epoch(epoch)
        for i in range(3):
            item, label = data[i]
            assert item.shape == (4, 10) and item.dtype == torch.float32 and label == y[i]
            np.testing.assert_allclose(item.sum(dim=0).numpy(), 1.0)  # a base or a 0.25-padded column
            seen_changes += int(not torch.equal(item, x[i]))
            candidates = [x[i], torch.flip(x[i], dims=(0, 1))]
            # Unshifted columns of the item equal the original or its reverse complement somewhere.
            assert any(
                torch.equal(item[:, 2:-2], torch.roll(c, s, dims=1)[:, 2:-2]) for c in candidates for s in range(-2, 3)
            )
    assert seen_changes > 6
    data.set_epoch(0)
    assert all(torch.equal(data[i][0], first[i]) for i in range(3))


def test_rc_average_of_a_strand_symmetric_model_is_unchanged() -> None:
    weights = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    x = one_hot(["ACGGTA", "TTACGC"], 6)

    def linear(batch: np.ndarray) -> np.ndarray:
        return (batch * weights).sum(axis=(1, 2))[:, None]

    expected = (linear(x) + linear(x[:, ::-1, ::-1].copy())) / 2
    np.testing.assert_allclose(rc_average(linear, x), expected, rtol=1e-6)
    assert rc_average(linear, torch.as_tensor(x)).shape == (2, 1)

"""Sequence attributions, seqlets, motif discovery and JASPAR matching, down to motif recovery end to end."""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from meddl.data.motifs import jaspar_motif, planted_motif_dataset
from meddl.explain.sequences import (
    DiscoveredMotif,
    Seqlet,
    attribution_peak_in_site,
    discover_motifs,
    find_seqlets,
    integrated_gradients_sequence,
    logo_png,
    match_jaspar,
    motif_recovery,
    per_base_contributions,
    saturation_mutagenesis,
    token_attributions,
)
from meddl.models.sequence import SeedAttention, SequenceCNN, SequenceTransformer
from meddl.preprocess.sequences import KmerTokenizer, one_hot


class _Linear(nn.Module):
    """logit = sum(W * x): its ISM and integrated gradients are known exactly."""

    def __init__(self, weights: np.ndarray) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.as_tensor(weights, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weights).sum(dim=(1, 2)).unsqueeze(1)


@pytest.fixture
def linear() -> tuple[_Linear, np.ndarray, np.ndarray]:
    weights = np.random.default_rng(0).normal(size=(4, 12)).astype(np.float32)
    x = one_hot(["ACGTACGTTGCA", "GGGAAATTTCCC"], 12)
    return _Linear(weights), weights, x


def test_saturation_mutagenesis_of_a_linear_model(linear) -> None:
    model, weights, x = linear
    ism = saturation_mutagenesis(model, x, batch_size=7)
    assert ism.shape == (2, 4, 12) and ism.dtype == np.float32
    reference = (weights * x).sum(axis=1)  # (N, L) weight of the present base
    np.testing.assert_allclose(ism, weights[None] - reference[:, None, :], atol=1e-5)
    assert np.all(ism[x == 1] == 0)


def test_integrated_gradients_of_a_linear_model(linear) -> None:
    model, weights, x = linear
    zeros = integrated_gradients_sequence(model, x, baseline="zeros", n_steps=8)
    np.testing.assert_allclose(zeros, weights[None] * x, atol=1e-5)  # only the present base is non-zero
    uniform = integrated_gradients_sequence(model, x, baseline="uniform", n_steps=8)
    np.testing.assert_allclose(uniform, weights[None] * (x - 0.25), atol=1e-5)
    contributions = per_base_contributions(uniform)
    assert contributions.shape == (2, 12)
    logits = model(torch.as_tensor(x)).detach().numpy()[:, 0]
    baseline = model(torch.full((2, 4, 12), 0.25)).detach().numpy()[:, 0]
    np.testing.assert_allclose(contributions.sum(axis=1), logits - baseline, atol=1e-4)  # completeness


def test_token_attributions_are_zero_at_padding_and_complete() -> None:
    torch.manual_seed(0)
    model = SeedAttention(KmerTokenizer(k=2).vocab_size, 1, embed_dim=8, units=8)
    tokens = KmerTokenizer(k=2).encode(["ACGTTGCA", "ACGT"], 8)
    attributions = token_attributions(model, tokens, n_steps=64)
    assert attributions.shape == tokens.shape
    assert np.all(attributions[tokens == 0] == 0) and np.any(attributions[1, :3] != 0)
    with torch.no_grad():
        logits = model(torch.as_tensor(tokens))[:, 0].numpy()
        baseline = model(torch.as_tensor(np.where(tokens == 0, 0, 1)))[:, 0].numpy()
    np.testing.assert_allclose(attributions.sum(axis=1), logits - baseline, atol=2e-2)


def test_token_attributions_on_the_transformer() -> None:
    torch.manual_seed(0)
    model = SequenceTransformer(66, 2, d_model=16, n_heads=2, n_layers=1)
    tokens = KmerTokenizer(k=3).encode(["ACGTTGCAAC", "ACGTA"], 10)
    attributions = token_attributions(model, tokens, target=1)
    assert attributions.shape == (2, 8) and np.all(attributions[tokens == 0] == 0)
    assert np.abs(attributions[tokens != 0]).max() > 0


def test_find_seqlets_locates_bumps() -> None:
    rng = np.random.default_rng(0)
    contributions = rng.normal(0, 0.01, size=(3, 60))
    contributions[0, 20:30] += 1.0
    contributions[1, 5:15] += 0.8
    contributions[1, 40:50] += 0.6
    x = one_hot(["".join(rng.choice(list("ACGT"), 60)) for _ in range(3)], 60)
    seqlets = find_seqlets(contributions, x, window=10, flank=3)
    found = sorted((s.sequence_index, s.start, s.end) for s in seqlets)
    assert found == [(0, 17, 33), (1, 2, 18), (1, 37, 53)]
    assert seqlets[0].sequence_index == 0 and seqlets[0].one_hot.shape == (4, 16)
    np.testing.assert_array_equal(seqlets[0].one_hot, x[0, :, 17:33])
    assert len(find_seqlets(contributions, x, window=10, flank=3, max_per_sequence=1)) == 2
    assert len(find_seqlets(contributions, x, window=10, flank=3, threshold=7.0)) == 2


def _synthetic_seqlets(consensus: dict[str, int], rng: np.random.Generator) -> list[Seqlet]:
    """Seqlets carrying a consensus at a jittered place, on a random strand, with random flanks."""
    width = 24
    seqlets = []
    for text, count in consensus.items():
        for _ in range(count):
            bases = list(rng.choice(list("ACGT"), width))
            start = int(rng.integers(3, width - len(text) - 3))
            bases[start : start + len(text)] = text
            weights = np.full(width, 0.05)
            weights[start : start + len(text)] = 1.0
            sequence = "".join(bases)
            if rng.random() < 0.5:  # reverse strand: the seqlet holds the reverse complement
                sequence = sequence.translate(str.maketrans("ACGT", "TGCA"))[::-1]
                weights = weights[::-1].copy()
            seqlets.append(Seqlet(0, 0, width, one_hot([sequence], width)[0], weights, float(weights.sum())))
    return seqlets


def test_discover_motifs_separates_two_motifs_across_strands() -> None:
    seqlets = _synthetic_seqlets({"CCACCAGGGGGCG": 30, "TGACTCATT": 20, "AAT": 2}, np.random.default_rng(1))
    motifs = discover_motifs(seqlets, min_seqlets=5)
    assert [m.support for m in motifs] == [30, 20]
    consensus = ["".join("ACGT"[i] for i in m.pfm.argmax(axis=0)) for m in motifs]
    reverse = [c.translate(str.maketrans("ACGT", "TGCA"))[::-1] for c in consensus]
    assert "CCACCAGGGGGCG" in (consensus[0], reverse[0])
    assert "TGACTCATT" in (consensus[1], reverse[1])
    assert sorted(i for m in motifs for i in m.seqlets) == list(range(50))
    np.testing.assert_allclose(motifs[0].pfm.sum(axis=0), 1.0)


def test_match_jaspar_finds_itself_on_both_strands_and_with_flanks() -> None:
    ctcf = jaspar_motif("MA0139.2").pfm
    (best,) = match_jaspar(ctcf, top=1)
    assert (best.matrix_id, best.name, best.strand, best.offset) == ("MA0139.2", "CTCF", "+", 0)
    assert best.score == pytest.approx(1.0)
    reverse = match_jaspar(ctcf[::-1, ::-1], top=3)
    assert reverse[0].matrix_id == "MA0139.2" and reverse[0].strand == "-"
    assert reverse[0].score >= reverse[1].score
    flanked = np.concatenate([np.full((4, 3), 0.25), ctcf, np.full((4, 2), 0.25)], axis=1)
    top = match_jaspar(flanked, top=1)[0]
    assert (top.matrix_id, top.offset) == ("MA0139.2", -3)
    p53 = match_jaspar(jaspar_motif("MA0106.3").pfm, top=1)[0]
    assert p53.matrix_id == "MA0106.3"


def test_motif_recovery_counts_top_matches() -> None:
    discovered = [DiscoveredMotif(jaspar_motif("MA0139.2").pfm, jaspar_motif("MA0139.2").pfm, 12)]
    result = motif_recovery(["MA0139.2", "MA0106.3"], discovered)
    assert result["recovered"] == {"MA0139.2": True, "MA0106.3": False}
    assert result["rate"] == 0.5
    assert result["top_matches"][0]["matrix_id"] == "MA0139.2" and result["top_matches"][0]["support"] == 12


def test_attribution_peak_in_site() -> None:
    contributions = np.zeros((3, 50))
    contributions[0, 12] = 1.0  # inside site 10-20
    contributions[1, 40] = 1.0  # outside site 5-15
    contributions[2, 22] = 1.0  # negative: ignored when labels are given
    sites = pd.DataFrame({"sequence": [0, 1, 2], "start": [10, 5, 20], "end": [20, 15, 25]})
    result = attribution_peak_in_site(contributions, sites, labels=np.array([1, 1, 0]))
    assert result == {"fraction": 0.5, "hits": 1, "sequences": 2}
    assert attribution_peak_in_site(contributions, sites)["sequences"] == 3


def test_logo_png_draws_both_kinds() -> None:
    pfm = jaspar_motif("MA0139.2").pfm
    narrow, wide = logo_png(pfm[:, :5], title="CTCF"), logo_png(pfm, kind="weight")
    for png in (narrow, wide):
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width = struct.unpack(">I", narrow[16:20])[0], struct.unpack(">I", wide[16:20])[0]
    assert width[1] > width[0]
    with pytest.raises(ValueError, match="rows A, C, G, T"):
        logo_png(np.ones((3, 5)))


def test_trained_cnn_motifs_match_the_planted_jaspar_motifs() -> None:
    planted = ("MA0139.2", "MA0106.3")
    data = planted_motif_dataset(600, length=100, motifs=planted, seed=0)
    x = torch.as_tensor(one_hot(data.sequences, 100))
    y = torch.as_tensor(data.labels, dtype=torch.float32)
    torch.manual_seed(0)
    model = SequenceCNN(4, 1, filters=(32,), kernel_sizes=(15,), dropout=0.0, hidden=16)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(6):
        model.train()
        for batch in torch.randperm(600).split(32):
            optimiser.zero_grad()
            nn.functional.binary_cross_entropy_with_logits(model(x[batch]).squeeze(1), y[batch]).backward()
            optimiser.step()
    positives = np.flatnonzero(data.labels == 1)
    contributions = per_base_contributions(integrated_gradients_sequence(model, x[positives], n_steps=16))
    full = np.zeros((600, 100), dtype=np.float32)
    full[positives] = contributions
    assert attribution_peak_in_site(full, data.sites, data.labels)["fraction"] > 0.8
    motifs = discover_motifs(find_seqlets(contributions, x[positives].numpy()))
    recovery = motif_recovery(list(planted), motifs)
    assert recovery["rate"] >= 0.5, recovery

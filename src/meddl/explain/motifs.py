"""Motif discovery on per-base contributions: seqlets, motifs, JASPAR matches and sequence logos.

* Motif discovery (a light TF-MoDISco): ``find_seqlets`` cuts windows of high per-base contribution;
  ``discover_motifs`` clusters them greedily — seed with the strongest seqlet, align every other seqlet to the
  cluster's contribution-weighted matrix by cross-correlation over shifts and both strands, keep those above a
  cosine similarity, re-estimate, repeat — and turns each cluster into a PFM trimmed to its contributing core.
* ``match_jaspar`` compares a PFM with every matrix of a JASPAR collection Tomtom-style: for every offset and
  both strands, Pearson correlation of aligned columns, summed over the overlap and divided by
  sqrt(query width × JASPAR width) — a short partial overlap, or a much longer matrix that merely contains the
  query, scores below a full match of equal width; score in [0, 1], 1 only for an identical matrix.
  ``motif_recovery`` scores discovered motifs against the JASPAR motifs planted in a synthetic data set.
* ``logo_png`` draws sequence logos with logomaker on a matplotlib ``Figure`` (no pyplot).

The per-base contributions these start from come from ``meddl.explain.sequences``, which re-exports every public
name here so ``from meddl.explain.sequences import …`` keeps working.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from meddl.data.motifs import JasparMotif, jaspar_collection

__all__ = [
    "BASES",
    "DiscoveredMotif",
    "MotifMatch",
    "Seqlet",
    "discover_motifs",
    "find_seqlets",
    "logo_png",
    "match_jaspar",
    "motif_recovery",
]

BASES = "ACGT"
"""Row order of one-hot, PFM and CWM matrices (A, C, G, T)."""


@dataclass
class Seqlet:
    """A window of high contribution.

    Attributes:
        sequence_index: which sequence.
        start: 0-based start in the sequence (half-open ``[start, end)``).
        end: end.
        one_hot: (4, W) the bases of the window as they are in the sequence (no strand flipping).
        contributions: (W,) per-base contributions in the window.
        score: summed contribution of the core window (without flanks).
    """

    sequence_index: int
    start: int
    end: int
    one_hot: np.ndarray = field(repr=False)
    contributions: np.ndarray = field(repr=False)
    score: float = 0.0


def find_seqlets(
    contributions: np.ndarray,
    sequences_one_hot: np.ndarray,
    window: int = 10,
    flank: int = 5,
    threshold: float | None = None,
    max_per_sequence: int = 3,
) -> list[Seqlet]:
    """High-contribution segments: the best ``window``-base windows, widened by ``flank`` on each side.

    Per sequence, the window with the largest summed contribution above ``threshold`` becomes a seqlet, its
    neighbourhood (± ``window`` + ``flank``) is excluded, and this repeats up to ``max_per_sequence`` times.
    Windows whose flanks would leave the sequence are shifted inward.

    Args:
        contributions: (N, L) per-base contributions (e.g. ``per_base_contributions``).
        sequences_one_hot: (N, 4, L) one-hot.
        window: core width.
        flank: bases added on each side (seqlet width ``window + 2 * flank``).
        threshold: minimum summed contribution of the core; ``None`` sets it from the data: 5 noise units above
            the median window score, the unit being median − 16th percentile (the lower half is background, the
            upper tail signal), and at least 10 % of the largest window score.
        max_per_sequence: most seqlets per sequence.

    Returns:
        Seqlets, strongest first.
    """
    scores_per_base = np.asarray(contributions, dtype=np.float64)
    sequences = np.asarray(sequences_one_hot)
    if scores_per_base.ndim != 2 or sequences.shape != (scores_per_base.shape[0], 4, scores_per_base.shape[1]):
        raise ValueError(
            f"contributions (N, L) and sequences (N, 4, L) must agree, "
            f"got {scores_per_base.shape} and {sequences.shape}"
        )
    n, length = scores_per_base.shape
    width = window + 2 * flank
    if window < 1 or flank < 0 or width > length:
        raise ValueError(f"window ({window}) + 2 × flank ({flank}) must fit in the sequence length {length}")
    cumulative = np.concatenate([np.zeros((n, 1)), np.cumsum(scores_per_base, axis=1)], axis=1)
    window_scores = cumulative[:, window:] - cumulative[:, :-window]  # (N, L - window + 1)
    if threshold is None:
        # Noise scale from the lower half only (the upper tail is the signal): median - 16th percentile ≈ 1 SD.
        median = float(np.median(window_scores))
        spread = median - float(np.percentile(window_scores, 16))
        threshold = max(median + 5 * spread, 0.1 * float(window_scores.max()), 1e-12)
    seqlets: list[Seqlet] = []
    for i in range(n):
        available = window_scores[i].copy()
        for _ in range(max_per_sequence):
            best = int(np.argmax(available))
            if available[best] < threshold:
                break
            start = min(max(best - flank, 0), length - width)
            seqlets.append(
                Seqlet(
                    i,
                    start,
                    start + width,
                    sequences[i, :, start : start + width].astype(np.float32),
                    scores_per_base[i, start : start + width].astype(np.float32),
                    float(window_scores[i, best]),
                )
            )
            available[max(0, best - window - flank) : best + window + flank] = -np.inf
    seqlets.sort(key=lambda s: -s.score)
    return seqlets


@dataclass
class DiscoveredMotif:
    """A cluster of aligned seqlets.

    Attributes:
        pfm: (4, W) base probabilities of the aligned seqlets, trimmed to the columns that carry contribution.
        cwm: (4, W) mean contribution-weighted one-hot (one-hot × contribution) over the same columns (what a
            ``"weight"`` logo draws).
        support: number of seqlets in the cluster.
        seqlets: indices into the list given to ``discover_motifs``.
    """

    pfm: np.ndarray = field(repr=False)
    cwm: np.ndarray = field(repr=False)
    support: int
    seqlets: list[int] = field(default_factory=list, repr=False)


def _align(template: np.ndarray, patterns: np.ndarray, max_shift: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best cosine similarity of each (S, 4, W) pattern with the (4, W) template over shifts and both strands.

    Returns (similarity (S,), shift (S,), reverse (S,) bool); pattern column c sits at template column c + shift.
    """
    count, _, width = patterns.shape
    norms = np.linalg.norm(patterns.reshape(count, -1), axis=1) * np.linalg.norm(template) + 1e-12
    best = np.full(count, -np.inf)
    best_shift = np.zeros(count, dtype=np.int64)
    best_reverse = np.zeros(count, dtype=bool)
    for reverse in (False, True):
        oriented = patterns[:, ::-1, ::-1] if reverse else patterns
        for shift in range(-max_shift, max_shift + 1):
            lo, hi = max(0, -shift), min(width, width - shift)  # pattern columns that land on the template
            score = np.einsum("sbw,bw->s", oriented[:, :, lo:hi], template[:, lo + shift : hi + shift]) / norms
            better = score > best
            best[better], best_shift[better], best_reverse[better] = score[better], shift, reverse
    return best, best_shift, best_reverse


def _aligned_stack(
    arrays: np.ndarray, shifts: np.ndarray, reverse: np.ndarray, max_shift: int
) -> tuple[np.ndarray, np.ndarray]:
    """Place (S, 4, W) arrays on a canvas (S, 4, W + 2·max_shift) at their shifts; returns canvas and coverage."""
    count, _, width = arrays.shape
    canvas = np.zeros((count, 4, width + 2 * max_shift))
    covered = np.zeros((count, width + 2 * max_shift), dtype=bool)
    for i in range(count):
        oriented = arrays[i, ::-1, ::-1] if reverse[i] else arrays[i]
        offset = max_shift + int(shifts[i])
        canvas[i, :, offset : offset + width] = oriented
        covered[i, offset : offset + width] = True
    return canvas, covered


def discover_motifs(
    seqlets: Sequence[Seqlet],
    max_motifs: int = 10,
    min_seqlets: int = 5,
    seed: int = 0,
    similarity: float = 0.7,
    max_seqlets: int = 3000,
    iterations: int = 3,
) -> list[DiscoveredMotif]:
    """Cluster seqlets into motifs (greedy seed-and-grow on contribution-weighted one-hots).

    Each seqlet is represented by its centred one-hot (0.75 at the present base, −0.25 elsewhere) times its
    per-base contribution. Each round seeds a cluster with the strongest unassigned seqlet, aligns all unassigned
    seqlets to the cluster's mean representation (shift up to a third of the width, both strands) and keeps those
    with cosine similarity ≥ ``similarity``; the template is re-estimated ``iterations`` times. A cluster with at
    least ``min_seqlets`` members becomes a motif and its members leave the pool; otherwise only the seed leaves.

    Args:
        seqlets: from ``find_seqlets`` (all the same width).
        max_motifs: most motifs returned.
        min_seqlets: smallest cluster kept.
        seed: seeds the random subsample when there are more than ``max_seqlets`` seqlets.
        similarity: cosine similarity needed to join a cluster.
        max_seqlets: seqlets used at most (a random subsample beyond that, for speed).
        iterations: template re-estimations per cluster.

    Returns:
        Motifs, largest support first; each PFM is trimmed to columns whose mean absolute contribution is at
        least 20 % of the strongest column's.
    """
    if not seqlets:
        return []
    widths = {s.one_hot.shape[1] for s in seqlets}
    if len(widths) != 1:
        raise ValueError(f"all seqlets must have the same width, got widths {sorted(widths)}")
    indices = np.arange(len(seqlets))
    if len(seqlets) > max_seqlets:
        indices = np.sort(np.random.default_rng(seed).choice(len(seqlets), size=max_seqlets, replace=False))
    chosen = [seqlets[int(i)] for i in indices]
    one_hots = np.stack([s.one_hot for s in chosen]).astype(np.float64)  # (S, 4, W)
    weights = np.stack([s.contributions for s in chosen]).astype(np.float64)  # (S, W)
    # Centred one-hot (present base 0.75, others -0.25) × contribution: unrelated bases correlate to 0 on average.
    patterns = (one_hots - 0.25) * weights[:, None, :]  # (S, 4, W)
    strength = np.array([s.score for s in chosen])
    width = one_hots.shape[2]
    max_shift = max(1, width // 3)
    unassigned = np.ones(len(indices), dtype=bool)
    motifs: list[DiscoveredMotif] = []
    while unassigned.any() and len(motifs) < max_motifs:
        pool = np.flatnonzero(unassigned)
        seed_index = pool[int(np.argmax(strength[pool]))]
        template = patterns[seed_index]
        members = np.array([seed_index])
        shifts, reverse = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=bool)
        for _ in range(iterations):
            scores, all_shifts, all_reverse = _align(template, patterns[pool], max_shift)
            keep = scores >= similarity
            if not keep.any():
                break
            members, shifts, reverse = pool[keep], all_shifts[keep], all_reverse[keep]
            canvas, _ = _aligned_stack(patterns[members], shifts, reverse, max_shift)
            template = canvas.mean(axis=0)[:, max_shift : max_shift + width]
        if len(members) < min_seqlets:
            unassigned[seed_index] = False
            continue
        unassigned[members] = False
        motifs.append(_motif_from_members(one_hots, weights, members, shifts, reverse, max_shift, indices))
    motifs.sort(key=lambda m: -m.support)
    return motifs


def _motif_from_members(
    one_hots: np.ndarray,
    contributions: np.ndarray,
    members: np.ndarray,
    shifts: np.ndarray,
    reverse: np.ndarray,
    max_shift: int,
    indices: np.ndarray,
) -> DiscoveredMotif:
    bases, covered = _aligned_stack(one_hots[members], shifts, reverse, max_shift)
    weighted, _ = _aligned_stack(one_hots[members] * contributions[members][:, None, :], shifts, reverse, max_shift)
    coverage = covered.sum(axis=0)  # (canvas,)
    counts = bases.sum(axis=0)  # (4, canvas)
    cwm = weighted.sum(axis=0) / np.maximum(coverage, 1)  # (4, canvas)
    strength = np.abs(cwm).sum(axis=0) * (coverage >= 0.5 * len(members))
    core = np.flatnonzero(strength >= 0.2 * strength.max()) if strength.max() > 0 else np.arange(counts.shape[1])
    lo, hi = int(core.min()), int(core.max()) + 1
    pfm = (counts[:, lo:hi] + 0.01) / (counts[:, lo:hi].sum(axis=0, keepdims=True) + 0.04)
    return DiscoveredMotif(pfm, cwm[:, lo:hi], len(members), [int(indices[m]) for m in members])


@dataclass(frozen=True)
class MotifMatch:
    """A JASPAR matrix similar to a query PFM.

    Attributes:
        matrix_id: JASPAR id (``"MA0139.2"``).
        name: transcription factor.
        score: column Pearson correlations summed over the overlap / sqrt(query width × JASPAR width), clipped
            to [0, 1] (1 = identical).
        offset: JASPAR column aligned with the query's first column (query column i ↔ JASPAR column i + offset,
            the query reverse-complemented first when ``strand`` is ``-``).
        strand: ``+`` or ``-`` (the query's orientation that matched).
        overlap: number of aligned columns.
    """

    matrix_id: str
    name: str
    score: float
    offset: int
    strand: str
    overlap: int


@dataclass(frozen=True)
class _JasparIndex:
    motifs: tuple[JasparMotif, ...]
    columns: np.ndarray  # (total columns, 4) standardised
    motif_of_column: np.ndarray  # (total,)
    column_in_motif: np.ndarray  # (total,)
    widths: np.ndarray  # (M,)


def _standardise(columns: np.ndarray) -> np.ndarray:
    """(K, 4) columns → z-scores per column (all-equal columns → 0), so a dot product / 4 is Pearson's r."""
    centred = columns - columns.mean(axis=1, keepdims=True)
    spread = columns.std(axis=1, keepdims=True)
    return np.where(spread > 1e-9, centred / np.where(spread > 1e-9, spread, 1.0), 0.0)


@functools.cache
def _jaspar_index(collection: str, tax_group: str) -> _JasparIndex:
    motifs = jaspar_collection(collection, tax_group)
    widths = np.array([m.pfm.shape[1] for m in motifs])
    columns = np.concatenate([m.pfm.T for m in motifs])  # (total, 4)
    return _JasparIndex(
        motifs,
        _standardise(columns),
        np.repeat(np.arange(len(motifs)), widths),
        np.concatenate([np.arange(w) for w in widths]),
        widths,
    )


def match_jaspar(
    pfm: np.ndarray,
    top: int = 3,
    collection: str = "CORE",
    tax_group: str = "vertebrates",
    min_overlap: int = 5,
) -> list[MotifMatch]:
    """The JASPAR matrices most similar to a PFM, Tomtom-style, over all offsets and both strands.

    The collection is read once per process and kept (``jaspar_collection``); a query against the ~900
    vertebrate CORE matrices then takes ~10–30 ms (first call ~0.3 s).

    Args:
        pfm: (4, W) probabilities (or counts; columns are compared by correlation), rows A, C, G, T.
        top: matches returned.
        collection: JASPAR collection (``"CORE"``, ``"UNVALIDATED"``).
        tax_group: JASPAR taxonomic group (``"vertebrates"``, ``"plants"``, …).
        min_overlap: fewest aligned columns considered (lowered to the narrower width when needed).

    Returns:
        Up to ``top`` matches, best first, one per JASPAR matrix (its best offset and strand).
    """
    query = np.asarray(pfm, dtype=np.float64)
    if query.ndim != 2 or query.shape[0] != 4 or query.shape[1] < 1:
        raise ValueError(f"pfm must be (4, W) with rows A, C, G, T, got shape {query.shape}")
    index = _jaspar_index(collection, tax_group)
    width = query.shape[1]
    n_motifs = len(index.motifs)
    span = width + int(index.widths.max())  # offsets from -(width - 1) to max width - 1
    best_score = np.full(n_motifs, -np.inf)
    best_offset = np.zeros(n_motifs, dtype=np.int64)
    best_strand = np.zeros(n_motifs, dtype=np.int64)
    best_overlap = np.zeros(n_motifs, dtype=np.int64)
    for strand, oriented in enumerate((query, query[::-1, ::-1])):
        correlation = _standardise(oriented.T) @ index.columns.T / 4.0  # (W, total)
        rows, cols = np.indices(correlation.shape)
        offsets = index.column_in_motif[cols] - rows  # (W, total)
        keys = (index.motif_of_column[cols] * span + offsets + width - 1).ravel()
        sums = np.bincount(keys, weights=correlation.ravel(), minlength=n_motifs * span).reshape(n_motifs, span)
        overlap = np.bincount(keys, minlength=n_motifs * span).reshape(n_motifs, span)
        needed = np.minimum(min_overlap, np.minimum(width, index.widths))[:, None]
        scale = np.sqrt(width * index.widths)[:, None]  # (M, 1)
        score = np.where(overlap >= needed, sums / scale, -np.inf)  # (M, span)
        column = score.argmax(axis=1)
        value = score[np.arange(n_motifs), column]
        better = value > best_score
        best_score[better] = value[better]
        best_offset[better] = column[better] - (width - 1)
        best_strand[better] = strand
        best_overlap[better] = overlap[np.arange(n_motifs), column][better]
    order = np.argsort(-best_score, kind="stable")[:top]
    return [
        MotifMatch(
            index.motifs[m].matrix_id,
            index.motifs[m].name,
            float(np.clip(best_score[m], 0.0, 1.0)),
            int(best_offset[m]),
            "+-"[int(best_strand[m])],
            int(best_overlap[m]),
        )
        for m in order
    ]


def _same_factor(planted: str, match: MotifMatch, names: dict[str, str]) -> bool:
    if match.matrix_id.split(".")[0] == planted.split(".")[0]:
        return True
    name = names.get(planted, "")
    return bool(name) and name.upper() == match.name.upper()


def motif_recovery(
    planted_ids: Sequence[str],
    discovered: Sequence[DiscoveredMotif],
    collection: str = "CORE",
    tax_group: str = "vertebrates",
) -> dict[str, object]:
    """Which planted JASPAR motifs came back as the top JASPAR match of a discovered motif.

    A planted motif counts as recovered when some discovered motif's top match is the same JASPAR matrix, another
    version of it (same base id, e.g. MA0139.1 for MA0139.2) or a matrix of the same transcription factor
    (same name, case-insensitive).

    Args:
        planted_ids: JASPAR ids of the planted motifs (``"MA0139.2"``).
        discovered: from ``discover_motifs``.
        collection: JASPAR collection searched for each discovered motif's top match.
        tax_group: JASPAR taxonomic group searched.

    Returns:
        ``{"recovered": {planted id: bool}, "rate": fraction recovered, "top_matches": [per discovered motif:
        {"matrix_id", "name", "score", "support"}]}``.
    """
    from meddl.data.motifs import jaspar_motif

    names = {p: jaspar_motif(p).name for p in planted_ids}
    tops = []
    for motif in discovered:
        best = match_jaspar(motif.pfm, top=1, collection=collection, tax_group=tax_group)
        if best:
            tops.append((best[0], motif.support))
    recovered = {p: any(_same_factor(p, match, names) for match, _ in tops) for p in planted_ids}
    return {
        "recovered": recovered,
        "rate": float(np.mean(list(recovered.values()))) if recovered else 0.0,
        "top_matches": [
            {"matrix_id": m.matrix_id, "name": m.name, "score": m.score, "support": support} for m, support in tops
        ],
    }


LOGO_WINDOW = 60  # bases a per-sequence attribution logo shows: around its strongest region, readable at page width


def focus_window(matrix: np.ndarray, width: int = LOGO_WINDOW) -> tuple[np.ndarray, int]:
    """The ``width`` consecutive positions of a (4, L) attribution matrix with the largest total |attribution|,
    and the 0-based start of that window (the whole matrix when it is no wider)."""
    array = np.asarray(matrix, dtype=np.float64)
    length = array.shape[1]
    if length <= width:
        return array, 0
    weight = np.abs(array).sum(axis=0)
    sums = np.convolve(weight, np.ones(width), mode="valid")  # sums[i] = weight[i : i + width].sum()
    start = int(np.argmax(sums))
    return array[:, start : start + width], start


def logo_png(
    matrix: np.ndarray,
    title: str = "",
    kind: Literal["information", "weight"] = "information",
    height: float = 2.0,
    first_position: int | None = None,
) -> bytes:
    """A sequence logo as PNG bytes (logomaker on a matplotlib ``Figure``; no pyplot).

    Args:
        matrix: (4, W), rows A, C, G, T: probabilities for ``"information"`` (letters scaled to bits), any signed
            weights (e.g. a CWM or attributions) for ``"weight"`` (letters drawn at their value).
        title: figure title.
        kind: ``"information"`` or ``"weight"``.
        height: figure height in inches (the width grows with W).
        first_position: label the x axis with sequence positions starting here (1-based), e.g. for a window
            cut with :func:`focus_window`; None leaves logomaker's 0-based columns.

    Returns:
        PNG bytes.
    """
    import logomaker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    array = np.asarray(matrix, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != 4:
        raise ValueError(f"matrix must be (4, W) with rows A, C, G, T, got shape {array.shape}")
    if kind not in ("information", "weight"):
        raise ValueError(f"kind must be 'information' or 'weight', got {kind!r}")
    frame = pd.DataFrame(array.T, columns=list(BASES))
    if first_position is not None:
        frame.index = range(first_position, first_position + len(frame))
    if kind == "information":
        probabilities = frame.clip(lower=0)
        probabilities = probabilities.div(probabilities.sum(axis=1).replace(0, 1), axis=0)
        frame = logomaker.transform_matrix(probabilities, from_type="probability", to_type="information")
    figure = Figure(figsize=(max(2.5, 0.35 * array.shape[1] + 0.8), height), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    logomaker.Logo(frame, ax=axes, color_scheme="classic")
    axes.set_ylabel("bits" if kind == "information" else "contribution (logit)")
    if first_position is not None:
        axes.set_xlabel("position in the sequence")
    if kind == "information":
        axes.set_ylim(0, 2)
    if title:
        axes.set_title(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()

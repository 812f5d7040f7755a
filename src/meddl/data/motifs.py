"""JASPAR motifs and synthetic DNA with planted motif instances (for tests, the demo and benchmarks).

JASPAR matrices come from pyjaspar's bundled SQLite release (no network). ``planted_motif_dataset`` draws a
human-like background (a 2nd-order Markov chain with the requested GC content, CpG depleted to ~25 % of its
expected rate and a mild A/T run preference) and plants instances sampled column by column from real JASPAR
PFMs, on a random strand. ``write_planted_dataset`` writes it as FASTA/CSV, as a small reference genome + BED
(some intervals on the ``-`` strand) that cut back to the same sequences, and a VCF of motif-destroying variants.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from meddl.errors import MedDLError
from meddl.io.sequences import reverse_complement

__all__ = [
    "DEFAULT_MOTIFS",
    "JasparMotif",
    "PlantedMotifs",
    "jaspar_collection",
    "jaspar_motif",
    "planted_motif_dataset",
    "write_planted_dataset",
]

# CTCF, TP53, REST, SRF, NFKB1: latest JASPAR CORE versions of distinct families, 16–23 bits each, long and
# informative enough to stand out of 200 background bases. Lower-information motifs such as GATA1 (MA0035, ~10
# bits) or FOXA1 (MA0148, ~11 bits) occur by chance about once per 200 bases, which caps any model near 75 %
# accuracy. SPI1 (MA0080.7, 14.5 bits) also works but a small CNN reaches ~88 % instead of ~94 % test accuracy.
DEFAULT_MOTIFS = ("MA0139.2", "MA0106.3", "MA0138.3", "MA0083.3", "MA0105.4")
BASES = "ACGT"


@dataclass(frozen=True)
class JasparMotif:
    """A JASPAR matrix as base probabilities.

    Attributes:
        matrix_id: e.g. ``"MA0139.2"``.
        name: the transcription factor, e.g. ``"CTCF"``.
        pfm: (4, W) float64 probabilities, rows A, C, G, T, columns summing to 1.
    """

    matrix_id: str
    name: str
    pfm: np.ndarray = field(repr=False)

    @property
    def base_id(self) -> str:
        """The id without version (``"MA0139"``)."""
        return self.matrix_id.split(".")[0]

    @property
    def consensus(self) -> str:
        """Most likely base per column."""
        return "".join(BASES[i] for i in self.pfm.argmax(axis=0))


def _counts_to_pfm(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=0, keepdims=True)
    return counts / np.where(total > 0, total, 1.0)


@functools.cache
def _database() -> Any:
    from pyjaspar import jaspardb

    return jaspardb()


def jaspar_motif(matrix_id: str) -> JasparMotif:
    """One JASPAR matrix by id (``"MA0139.2"``) from pyjaspar's bundled release.

    Raises:
        MedDLError: the id is not in the bundled release.
    """
    try:
        with warnings.catch_warnings():  # pyjaspar warns before failing on an unknown id; the error below says it
            warnings.simplefilter("ignore")
            motif = _database().fetch_motif_by_id(matrix_id)
    except Exception:  # pyjaspar raises bare Exceptions / IndexErrors for unknown ids
        motif = None
    if motif is None:
        raise MedDLError(f"JASPAR matrix {matrix_id!r} is not in the bundled JASPAR release (pyjaspar)")
    counts = np.array([motif.counts[base] for base in BASES], dtype=np.float64)  # (4, W)
    return JasparMotif(matrix_id, str(motif.name), _counts_to_pfm(counts))


@functools.cache
def jaspar_collection(collection: str = "CORE", tax_group: str = "vertebrates") -> tuple[JasparMotif, ...]:
    """All matrices of a JASPAR collection and taxonomic group, latest version of each, read once and cached.

    Reads pyjaspar's SQLite tables directly (about 0.2 s for ~900 vertebrate CORE matrices, against ~3 s
    through ``fetch_motifs``).

    Raises:
        MedDLError: nothing matches ``collection`` and ``tax_group``.
    """
    cursor = _database().conn.cursor()
    rows = cursor.execute(
        "SELECT m.ID, m.BASE_ID, m.VERSION, m.NAME FROM MATRIX m JOIN MATRIX_ANNOTATION a ON a.ID = m.ID "
        "WHERE m.COLLECTION = ? AND a.TAG = 'tax_group' AND lower(a.VAL) = lower(?)",
        (collection, tax_group),
    ).fetchall()
    latest: dict[str, tuple[int, int, str]] = {}
    for internal_id, base_id, version, name in rows:
        if base_id not in latest or int(version) > latest[base_id][1]:
            latest[base_id] = (int(internal_id), int(version), str(name))
    if not latest:
        raise MedDLError(f"no JASPAR matrices for collection {collection!r} and tax_group {tax_group!r}")
    ids = [v[0] for v in latest.values()]
    placeholders = ",".join("?" * len(ids))
    data = cursor.execute(f"SELECT ID, row, col, val FROM MATRIX_DATA WHERE ID IN ({placeholders})", ids).fetchall()
    columns: dict[int, dict[tuple[str, int], float]] = {}
    for internal_id, row, col, value in data:
        columns.setdefault(int(internal_id), {})[(str(row).upper(), int(col))] = float(value)
    motifs = []
    for base_id in sorted(latest):
        internal_id, version, name = latest[base_id]
        cells = columns.get(internal_id, {})
        width = max((c for _, c in cells), default=0)
        if width == 0:
            continue
        counts = np.array([[cells.get((b, c), 0.0) for c in range(1, width + 1)] for b in BASES])  # (4, W)
        motifs.append(JasparMotif(f"{base_id}.{version}", name, _counts_to_pfm(counts)))
    return tuple(motifs)


@dataclass
class PlantedMotifs:
    """A synthetic motif data set.

    Attributes:
        sequences: N upper-case DNA strings.
        labels: (N,) int64, 1 = positive.
        sites: one row per planted instance: ``sequence`` (index), ``matrix_id``, ``name``, ``start``, ``end``
            (0-based half-open in the sequence), ``strand`` ("+"/"-").
        motifs: the JASPAR motifs used.
        rule: ``"any"`` or ``"pair"``.
    """

    sequences: list[str]
    labels: np.ndarray
    sites: pd.DataFrame
    motifs: list[JasparMotif]
    rule: str = "any"

    @property
    def ids(self) -> list[str]:
        """Record ids ``seq0``, ``seq1``, …"""
        return [f"seq{i}" for i in range(len(self.sequences))]


def _markov_transitions(gc: float) -> np.ndarray:
    """(4, 4, 4) P(next | two previous bases), ACGT order: GC content ``gc``, CpG depleted, A/T runs a bit longer."""
    base = np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])
    transitions = np.tile(base, (4, 4, 1))
    transitions[:, 1, 2] *= 0.25  # C → G: CpG depletion
    for run in (0, 3):  # AA → A and TT → T a little more likely (poly-A/T tracts)
        transitions[run, run, run] *= 1.3
    return transitions / transitions.sum(axis=-1, keepdims=True)


def _background(n: int, length: int, gc: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    """(n, length) int8 base codes 0..3."""
    base = np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])
    if kind == "iid":
        return rng.choice(4, size=(n, length), p=base).astype(np.int8)
    transitions = np.cumsum(_markov_transitions(gc), axis=-1)  # (4, 4, 4)
    codes = np.zeros((n, length), dtype=np.int8)
    codes[:, : min(2, length)] = rng.choice(4, size=(n, min(2, length)), p=base)
    draws = rng.random((n, length))
    for position in range(2, length):
        cumulative = transitions[codes[:, position - 2], codes[:, position - 1]]  # (n, 4)
        codes[:, position] = (draws[:, position, None] > cumulative).sum(axis=1).clip(max=3)
    return codes


def _sample_instance(motif: JasparMotif, rng: np.random.Generator) -> np.ndarray:
    cumulative = np.cumsum(motif.pfm, axis=0)  # (4, W)
    draws = rng.random(int(motif.pfm.shape[1]))  # (W,)
    return np.asarray((draws[None, :] > cumulative).sum(axis=0).clip(max=3), dtype=np.int8)


def _place(widths: Sequence[int], length: int, rng: np.random.Generator) -> list[int] | None:
    """Non-overlapping start positions (with a 2-base gap) for motifs of the given widths, or None."""
    for _ in range(100):
        starts = [int(rng.integers(0, length - w + 1)) for w in widths]
        spans = sorted(zip(starts, widths, strict=True))
        if all(a + wa + 2 <= b for (a, wa), (b, _) in itertools.pairwise(spans)):
            return starts
    return None


def planted_motif_dataset(
    n: int,
    length: int = 200,
    motifs: Sequence[str] = DEFAULT_MOTIFS,
    rule: Literal["any", "pair"] = "any",
    seed: int = 0,
    gc: float = 0.42,
    background: Literal["markov", "iid"] = "markov",
    positive_fraction: float = 0.5,
    max_sites: int = 2,
) -> PlantedMotifs:
    """Synthetic sequences whose label is decided by planted JASPAR motif instances.

    * ``rule="any"``: a positive carries 1 to ``max_sites`` instances of motifs drawn from ``motifs`` (cycling
      through them so each is used about equally); a negative carries none.
    * ``rule="pair"``: a positive carries one instance of each of the first two motifs; half the negatives carry
      exactly one of the pair (decoys: the model must learn the conjunction), the other half carry none.

    Instances are sampled from the PFM column by column and planted on a random strand (reverse complement on
    ``-``).

    Args:
        n: number of sequences.
        length: bases per sequence (must fit the planted motifs).
        motifs: JASPAR matrix ids.
        rule: ``"any"`` or ``"pair"``.
        seed: the one seed of every random draw.
        gc: GC content of the background.
        background: ``"markov"`` (2nd-order chain, CpG depleted) or ``"iid"``.
        positive_fraction: share of positives.
        max_sites: most instances in one positive (``"any"``).

    Returns:
        ``PlantedMotifs`` with ``sequences``, ``labels``, ``sites``, ``motifs``.

    Raises:
        MedDLError: an unknown motif id or rule, too few motifs for ``"pair"``, or ``length`` too short.
    """
    if rule not in ("any", "pair"):
        raise MedDLError(f"rule must be 'any' or 'pair', got {rule!r}")
    if background not in ("markov", "iid"):
        raise MedDLError(f"background must be 'markov' or 'iid', got {background!r}")
    if not motifs or (rule == "pair" and len(motifs) < 2):
        raise MedDLError(f"rule {rule!r} needs {'2' if rule == 'pair' else '1'} or more motifs, got {list(motifs)}")
    if not 0 < gc < 1 or not 0 < positive_fraction < 1 or n < 2:
        raise MedDLError(f"need n >= 2, 0 < gc < 1, 0 < positive_fraction < 1; got {n}, {gc}, {positive_fraction}")
    chosen = [jaspar_motif(m) for m in motifs]
    widths = [m.pfm.shape[1] for m in chosen]
    needed = sum(sorted(widths)[-2:]) + 4 if rule == "pair" or max_sites > 1 else max(widths)
    if length < needed:
        raise MedDLError(f"length {length} is too short for the planted motifs (need at least {needed} bases)")
    rng = np.random.default_rng(seed)
    codes = _background(n, length, gc, background, rng)
    labels = np.zeros(n, dtype=np.int64)
    labels[rng.permutation(n)[: round(n * positive_fraction)]] = 1
    sites: list[tuple[int, str, str, int, int, str]] = []
    next_motif = 0
    for index in range(n):
        if rule == "any":
            if not labels[index]:
                continue
            count = int(rng.integers(1, max_sites + 1))
            picked = [(next_motif + j) % len(chosen) for j in range(count)]
            next_motif = (next_motif + count) % len(chosen)
        else:
            if labels[index]:
                picked = [0, 1]
            elif rng.random() < 0.5:
                picked = [int(rng.integers(0, 2))]
            else:
                continue
        starts = _place([widths[j] for j in picked], length, rng)
        if starts is None:
            starts = _place([widths[picked[0]]], length, rng) or [0]
            picked = picked[:1]
        for j, start in zip(picked, starts, strict=True):
            instance = _sample_instance(chosen[j], rng)
            strand = "+" if rng.random() < 0.5 else "-"
            if strand == "-":
                instance = (3 - instance)[::-1]
            codes[index, start : start + widths[j]] = instance
            sites.append((index, chosen[j].matrix_id, chosen[j].name, start, start + widths[j], strand))
    alphabet = np.frombuffer(BASES.encode(), dtype=np.uint8)
    sequences = [row.tobytes().decode() for row in alphabet[codes]]
    frame = pd.DataFrame(sites, columns=["sequence", "matrix_id", "name", "start", "end", "strand"])
    order = ["sequence", "start"]
    frame = frame.sort_values(order, kind="stable").reset_index(drop=True)
    return PlantedMotifs(sequences, labels, frame, chosen, rule)


def write_planted_dataset(
    folder: str | Path,
    data: PlantedMotifs,
    formats: Sequence[str] = ("fasta", "csv", "bed", "vcf"),
    seed: int = 0,
    n_variants: int = 5,
) -> dict[str, Path]:
    """Write a planted data set in the formats a bioinformatician brings.

    Args:
        folder: output folder (created).
        data: from ``planted_motif_dataset``.
        formats: any of ``"fasta"`` (``sequences.fa``, headers ``>seqI label=L``), ``"csv"`` (``sequences.csv``:
            id, sequence, label), ``"bed"`` (``genome.fa`` — the sequences as segments of a 2-chromosome genome
            separated by background spacers, every third one written reverse-complemented — and
            ``intervals.bed`` with ``-`` strand for those, so ``cut_intervals`` gives back the sequences, named
            by id, score = label) and ``"vcf"`` (``variants.vcf`` on ``genome.fa``: up to ``n_variants`` SNVs
            that replace the most informative base of a planted site by its least likely base; INFO names the
            sequence, motif and site; ``"vcf"`` implies ``"bed"``).
        seed: seed of the genome spacers and the variant choice.
        n_variants: how many variants to write.

    Returns:
        Paths by key: ``fasta``, ``csv``, ``reference``, ``bed``, ``vcf`` (those written).
    """
    unknown = set(formats) - {"fasta", "csv", "bed", "vcf"}
    if unknown:
        raise MedDLError(f"formats: unknown {sorted(unknown)}; choose from fasta, csv, bed, vcf")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    ids = data.ids
    if "fasta" in formats:
        paths["fasta"] = out / "sequences.fa"
        with paths["fasta"].open("w") as handle:
            for record_id, sequence, label in zip(ids, data.sequences, data.labels, strict=True):
                handle.write(f">{record_id} label={int(label)}\n")
                for i in range(0, len(sequence), 80):
                    handle.write(sequence[i : i + 80] + "\n")
    if "csv" in formats:
        paths["csv"] = out / "sequences.csv"
        pd.DataFrame({"id": ids, "sequence": data.sequences, "label": data.labels}).to_csv(paths["csv"], index=False)
    if "bed" in formats or "vcf" in formats:
        paths.update(_write_genome(out, data, seed, n_variants if "vcf" in formats else 0))
    return paths


def _write_genome(out: Path, data: PlantedMotifs, seed: int, n_variants: int) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    n = len(data.sequences)
    chromosomes: dict[str, list[str]] = {"chr1": [], "chr2": []}
    offsets = {"chr1": 0, "chr2": 0}
    placed: list[tuple[str, int, int, str]] = []  # chrom, start, end, strand per sequence
    alphabet = np.frombuffer(BASES.encode(), dtype=np.uint8)
    for index, sequence in enumerate(data.sequences):
        chrom = "chr1" if index < (n + 1) // 2 else "chr2"
        spacer = alphabet[_background(1, int(rng.integers(20, 60)), 0.42, "markov", rng)[0]].tobytes().decode()
        chromosomes[chrom].append(spacer)
        offsets[chrom] += len(spacer)
        strand = "-" if index % 3 == 2 else "+"
        chromosomes[chrom].append(reverse_complement(sequence) if strand == "-" else sequence)
        placed.append((chrom, offsets[chrom], offsets[chrom] + len(sequence), strand))
        offsets[chrom] += len(sequence)
    for chrom in chromosomes:
        chromosomes[chrom].append(alphabet[_background(1, 50, 0.42, "markov", rng)[0]].tobytes().decode())
    genome = {chrom: "".join(parts) for chrom, parts in chromosomes.items()}
    reference = out / "genome.fa"
    with reference.open("w") as handle:
        for chrom, bases in genome.items():
            handle.write(f">{chrom}\n")
            for i in range(0, len(bases), 60):
                handle.write(bases[i : i + 60] + "\n")
    bed = out / "intervals.bed"
    with bed.open("w") as handle:
        handle.write('track name=planted description="synthetic planted motifs"\n')
        for (chrom, start, end, strand), record_id, label in zip(placed, data.ids, data.labels, strict=True):
            handle.write(f"{chrom}\t{start}\t{end}\t{record_id}\t{int(label)}\t{strand}\n")
    paths = {"reference": reference, "bed": bed}
    if n_variants > 0:
        paths["vcf"] = _write_variants(out, data, genome, placed, rng, n_variants)
    return paths


def _write_variants(
    out: Path,
    data: PlantedMotifs,
    genome: dict[str, str],
    placed: list[tuple[str, int, int, str]],
    rng: np.random.Generator,
    n_variants: int,
) -> Path:
    motifs = {m.matrix_id: m for m in data.motifs}
    candidates = data.sites[data.labels[data.sites["sequence"].to_numpy()] == 1] if len(data.sites) else data.sites
    chosen = candidates.iloc[rng.permutation(len(candidates))[:n_variants]] if len(candidates) else candidates
    rows = []
    for site in chosen.itertuples(index=False):
        pfm = motifs[site.matrix_id].pfm
        if site.strand == "-":
            pfm = pfm[::-1, ::-1]  # the site reads as the reverse complement on the sequence's + strand
        column = int(np.argmax(pfm.max(axis=0)))  # the most conserved position
        position = int(site.start) + column  # 0-based in the sequence
        sequence = data.sequences[int(site.sequence)]
        alt = BASES[int(np.argmin(pfm[:, column]))]
        if alt == sequence[position]:
            alt = next(b for b in BASES if b != sequence[position])
        chrom, start, end, strand = placed[int(site.sequence)]
        if strand == "+":
            genome_position = start + position
        else:
            genome_position = end - 1 - position
            alt = reverse_complement(alt)
        ref = genome[chrom][genome_position]
        info = f"SEQ=seq{int(site.sequence)};MOTIF={site.matrix_id};SITE={int(site.start)}-{int(site.end)}{site.strand}"
        rows.append((chrom, genome_position + 1, ref, alt, info))
    rows.sort(key=lambda r: (r[0], r[1]))
    path = out / "variants.vcf"
    with path.open("w") as handle:
        handle.write("##fileformat=VCFv4.2\n##source=meddl.data.motifs\n")
        for chrom, bases in genome.items():
            handle.write(f"##contig=<ID={chrom},length={len(bases)}>\n")
        handle.write('##INFO=<ID=SEQ,Number=1,Type=String,Description="Synthetic sequence">\n')
        handle.write('##INFO=<ID=MOTIF,Number=1,Type=String,Description="JASPAR id of the destroyed site">\n')
        handle.write('##INFO=<ID=SITE,Number=1,Type=String,Description="Site in the sequence, 0-based">\n')
        handle.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for i, (chrom, pos, ref, alt, info) in enumerate(rows, start=1):
            handle.write(f"{chrom}\t{pos}\tvar{i}\t{ref}\t{alt}\t.\tPASS\t{info}\n")
    return path

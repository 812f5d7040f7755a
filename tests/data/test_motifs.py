"""JASPAR access and the planted-motif generator: labels follow the rule, files read back to the same data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from meddl.data.motifs import (
    DEFAULT_MOTIFS,
    jaspar_collection,
    jaspar_motif,
    planted_motif_dataset,
    write_planted_dataset,
)
from meddl.errors import MedDLError
from meddl.io.sequences import (
    cut_intervals,
    header_labels,
    read_bed,
    read_fasta,
    read_sequence_table,
    reverse_complement,
)
from meddl.io.variants import read_vcf, variant_windows


def test_jaspar_motif_is_a_probability_matrix() -> None:
    ctcf = jaspar_motif("MA0139.2")
    assert ctcf.name == "CTCF" and ctcf.base_id == "MA0139"
    assert ctcf.pfm.shape == (4, 15)
    np.testing.assert_allclose(ctcf.pfm.sum(axis=0), 1.0)
    assert "CCAGGGGGCGC" in ctcf.consensus
    with pytest.raises(MedDLError, match=r"'MA9999\.9' is not in the bundled JASPAR release"):
        jaspar_motif("MA9999.9")


def test_jaspar_collection_latest_versions_only() -> None:
    motifs = jaspar_collection()
    ids = [m.matrix_id for m in motifs]
    assert len(motifs) > 500 and len(ids) == len(set(ids))
    assert "MA0139.2" in ids and "MA0139.1" not in ids
    assert all(m in ids for m in DEFAULT_MOTIFS)
    assert jaspar_collection() is motifs  # cached


def _site_text(sequence: str, site: dict) -> str:
    text = sequence[site["start"] : site["end"]]
    return reverse_complement(text) if site["strand"] == "-" else text


def test_planted_any_rule() -> None:
    data = planted_motif_dataset(60, length=80, motifs=("MA0139.2", "MA0106.3"), seed=1)
    assert len(data.sequences) == 60 and all(len(s) == 80 and set(s) <= set("ACGT") for s in data.sequences)
    assert data.labels.sum() == 30
    with_sites = set(data.sites["sequence"])
    assert with_sites == set(np.flatnonzero(data.labels == 1))  # negatives carry no site
    motifs = {m.matrix_id: m for m in data.motifs}
    # Each planted instance reads (on its strand) like a sample of its PFM: mostly the PFM's likely bases.
    for site in data.sites.to_dict("records"):
        text = _site_text(data.sequences[site["sequence"]], site)
        pfm = motifs[site["matrix_id"]].pfm
        likelihood = np.mean([pfm["ACGT".index(b), j] for j, b in enumerate(text)])
        assert likelihood > 0.4
    again = planted_motif_dataset(60, length=80, motifs=("MA0139.2", "MA0106.3"), seed=1)
    assert again.sequences == data.sequences
    assert planted_motif_dataset(60, length=80, motifs=("MA0139.2", "MA0106.3"), seed=2).sequences != data.sequences


def test_planted_pair_rule_has_decoys() -> None:
    data = planted_motif_dataset(200, length=80, motifs=("MA0139.2", "MA0106.3"), rule="pair", seed=0)
    per_sequence = data.sites.groupby("sequence")["matrix_id"].apply(set)
    for index, label in enumerate(data.labels):
        planted = per_sequence.get(index, set())
        assert (planted == {"MA0139.2", "MA0106.3"}) == bool(label)
    decoys = [i for i in range(200) if data.labels[i] == 0 and len(per_sequence.get(i, set())) == 1]
    assert 30 < len(decoys) < 70


def test_background_gc_and_cpg_depletion() -> None:
    data = planted_motif_dataset(200, length=200, motifs=("MA0139.2",), seed=0, gc=0.42, positive_fraction=0.01)
    text = "".join(data.sequences)
    gc = (text.count("G") + text.count("C")) / len(text)
    assert 0.36 < gc < 0.46
    expected_cpg = (text.count("C") / len(text)) * (text.count("G") / len(text))
    assert text.count("CG") / len(text) < 0.5 * expected_cpg


def test_planted_rejects_bad_arguments() -> None:
    with pytest.raises(MedDLError, match="too short"):
        planted_motif_dataset(10, length=12, motifs=("MA0139.2",))
    with pytest.raises(MedDLError, match="rule 'pair' needs 2 or more motifs"):
        planted_motif_dataset(10, motifs=("MA0139.2",), rule="pair")


def test_written_files_read_back_to_the_same_data(tmp_path: Path) -> None:
    data = planted_motif_dataset(30, length=60, motifs=("MA0139.2", "MA0106.3"), seed=0)
    paths = write_planted_dataset(tmp_path, data)
    assert set(paths) == {"fasta", "csv", "reference", "bed", "vcf"}
    records = read_fasta(paths["fasta"])
    assert [r.sequence for r in records] == data.sequences
    assert [int(v) for v in header_labels(records).values()] == data.labels.tolist()
    table = read_sequence_table(paths["csv"], id_column="id")
    assert table["sequence"].tolist() == data.sequences and table["label"].tolist() == data.labels.tolist()
    bed = read_bed(paths["bed"])
    assert (bed["strand"] == "-").sum() == 10
    cut = cut_intervals(bed, paths["reference"])
    assert [r.sequence for r in cut] == data.sequences and [r.id for r in cut] == data.ids
    variants = read_vcf(paths["vcf"])
    windows = variant_windows(variants, paths["reference"], length=21)
    assert len(variants) == 5 and windows.table["ref_matches"].all()
    # Each variant changes one base inside a planted site of a positive sequence.
    for ref, alt in zip(windows.ref, windows.alt, strict=True):
        assert sum(a != b for a, b in zip(ref, alt, strict=True)) == 1 and ref[10] != alt[10]

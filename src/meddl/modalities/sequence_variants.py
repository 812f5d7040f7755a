"""Variant effects for sequence models (``meddl predict --variants``): REF and ALT windows of a VCF scored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from meddl.errors import MedDLError

__all__ = ["score_variants"]


def score_variants(bundle: Any, vcf: Path, reference: Path | None = None) -> pd.DataFrame:
    """REF and ALT predictions and their difference for every variant of a VCF (sequence models).

    The model sees a window of its training length centred on each variant. A variant whose VCF REF does not
    match the reference genome is flagged in ``ref_matches`` / ``note`` and not scored: its effect would be
    computed against a sequence nobody observed.
    """
    from meddl.io.variants import read_vcf, variant_windows

    adapter: Any = bundle.modality  # a SequenceModality
    genome = reference or adapter.data.reference
    if genome is None:
        raise MedDLError("--variants needs the reference genome FASTA: pass --reference genome.fa")
    if not genome.is_absolute() and reference is None:
        genome = (adapter.data.path.parent / genome).resolve()
    windows = variant_windows(read_vcf(vcf), genome, adapter.window)
    table = windows.table[["chrom", "pos", "id", "ref", "alt", "ref_matches", "reference_base"]].copy()
    table["note"] = [
        "" if ok else f"VCF REF {ref!r} differs from the reference {base!r}: not scored"
        for ok, ref, base in zip(table["ref_matches"], table["ref"], table["reference_base"], strict=True)
    ]
    usable = table["ref_matches"].to_numpy(dtype=bool)
    name = bundle.classes[1] if bundle.task == "binary" else "score"
    for column in (f"ref_{name}", f"alt_{name}", "difference"):
        table[column] = np.nan
    if usable.any():
        ref_inputs = adapter.encoder.transform([s for s, ok in zip(windows.ref, usable, strict=True) if ok])
        alt_inputs = adapter.encoder.transform([s for s, ok in zip(windows.alt, usable, strict=True) if ok])
        ref_scores, alt_scores = bundle.scores(ref_inputs), bundle.scores(alt_inputs)
        if ref_scores.ndim == 2:  # multiclass: the probability of the class the REF allele is called
            chosen = np.argmax(ref_scores, axis=1)
            ref_scores = ref_scores[np.arange(len(chosen)), chosen]
            alt_scores = alt_scores[np.arange(len(chosen)), chosen]
        rows = np.flatnonzero(usable)
        table.loc[rows, f"ref_{name}"] = ref_scores
        table.loc[rows, f"alt_{name}"] = alt_scores
        table.loc[rows, "difference"] = alt_scores - ref_scores
    return table

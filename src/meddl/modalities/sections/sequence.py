"""The ``data`` and ``preprocess`` sections of DNA sequences (``data.kind: sequence``).

Plain pydantic (see :mod:`meddl.sections`): validating an experiment imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from meddl.sections import DataSection, PreprocessSection

__all__ = ["Data", "Preprocess", "SequenceDataConfig", "SequencePreprocessConfig"]


class SequenceDataConfig(DataSection):
    """DNA sequences: a FASTA (labels in a CSV by record id, or ``label=`` in each header), a CSV of sequences, or
    BED intervals cut from a reference FASTA (strand-aware)."""

    default_arch: ClassVar[str] = "sequence_cnn"
    archs: ClassVar[tuple[str, ...]] = ("sequence_cnn", "danq", "sequence_transformer", "seed_attention")

    kind: Literal["sequence"]
    path: Path = Field(..., description="FASTA (.fa/.fasta/.fa.gz), CSV/TSV/Parquet of sequences, or BED")
    format: Literal["auto", "fasta", "table", "bed"] = "auto"
    labels: Path | None = Field(None, description="FASTA/BED: a CSV with the record id and label columns")
    id_column: str = Field("id", description="record id column (labels file, or the sequence table)")
    sequence_column: str = "sequence"
    target: str = Field("label", description="label column (or the key of `label=` in FASTA headers)")
    reference: Path | None = Field(None, description="BED: the reference genome FASTA")
    positive_label: str | int | float | bool | None = None
    classes: list[str | int | float | bool] | None = None
    patient_id: str | None = Field(None, description="column of the labels/sequence table grouping records")


class SequencePreprocessConfig(PreprocessSection):
    """Encoding of bases; augmentation on the training split only."""

    kind: Literal["sequence"] = "sequence"
    length: int | None = Field(
        None,
        ge=8,
        description="every sequence is centre-cropped or N-padded to this length; default: from the training "
        "sequences' lengths (the longest, or the 95th percentile when a few are much longer), written to the run",
    )
    encoding: Literal["onehot", "kmer"] = Field("onehot", description="kmer: tokens for embedding models")
    k: int = Field(3, ge=1, le=8, description="k-mer size (encoding: kmer)")
    ambiguous: Literal["uniform", "zeros"] = Field("uniform", description="N and IUPAC codes: base fractions or 0")
    reverse_complement: bool = Field(True, description="RC augmentation in training and RC-averaged prediction")
    max_shift: int = Field(0, ge=0, description="random shift jitter (bases) in training")
    imbalance: Literal["none", "class_weight"] = "none"


Data = SequenceDataConfig
Preprocess = SequencePreprocessConfig

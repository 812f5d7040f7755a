"""FASTA, sequence tables, BED and reference cutting: correct reads and errors that name the record or line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from meddl.errors import MedDLError
from meddl.io.sequences import (
    cut_intervals,
    header_labels,
    read_bed,
    read_fasta,
    read_sequence_table,
    reverse_complement,
)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_read_fasta_multiline_headers_and_case(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.fa", ">s1 label=1 cell=K562\nacgt\nNNRY\n\n>s2\nGGCC\n")
    records = read_fasta(path)
    assert [(r.id, r.sequence, r.description, r.line) for r in records] == [
        ("s1", "ACGTNNRY", "label=1 cell=K562", 1),
        ("s2", "GGCC", "", 5),
    ]


def test_read_fasta_gz(tmp_path: Path) -> None:
    path = tmp_path / "a.fa.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(">x label=0\nACGT\n")
    assert read_fasta(path)[0].sequence == "ACGT"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "no FASTA records"),
        ("\n\n", "no FASTA records"),
        ("ACGT\n>s1\nACGT\n", "line 1: sequence data before the first '>' header"),
        (">s1\n>s2\nACGT\n", "record 's1' (line 1) has an empty sequence"),
        (">s1\nACGT\n>s2\nAC\n>s1\nGG\n", "record id 's1' appears twice (lines 1 and 5)"),
        (">s1\nACGT\n>s2 x\nACGTAC\nGTXA\n", "record 's2' (line 3): invalid base 'X' at position 9"),
        (">s1\nAC-GT\n", "invalid base '-' at position 3"),
        (">\nACGT\n", "line 1: FASTA header has no record id"),
    ],
)
def test_read_fasta_errors_name_the_record(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path / "bad.fa", text)
    with pytest.raises(MedDLError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        read_fasta(path)


def test_read_fasta_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MedDLError, match="FASTA file not found"):
        read_fasta(tmp_path / "none.fa")


def test_header_labels(tmp_path: Path) -> None:
    records = read_fasta(_write(tmp_path / "a.fa", ">a label=1 x=2\nAC\n>b x=3 label=0\nGT\n>c\nAA\n"))
    assert header_labels(records[:2]) == {"a": "1", "b": "0"}
    assert header_labels(records[:2], key="x") == {"a": "2", "b": "3"}
    with pytest.raises(MedDLError, match=r"no 'label=' in their header: 'c' \(line 5\)"):
        header_labels(records)


def test_read_sequence_table(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", "name,seq,y\nr1,acgt,1\nr2,GGNN,0\n")
    frame = read_sequence_table(path, sequence_column="seq", label_column="y", id_column="name")
    assert frame.to_dict("list") == {"id": ["r1", "r2"], "sequence": ["ACGT", "GGNN"], "label": [1, 0], "row": [2, 3]}
    no_ids = read_sequence_table(path, sequence_column="seq", label_column=None)
    assert list(no_ids.columns) == ["id", "sequence", "row"]
    assert list(no_ids["id"]) == ["row2", "row3"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sequence,label\nACGT,1\nACZT,0\n", r"row 3: column 'sequence': invalid base 'Z' at position 3"),
        ("sequence,label\nACGT,1\n,0\n", r"row 3: column 'sequence' is empty"),
        ("seq,label\nACGT,1\n", r"no column 'sequence'"),
        ("id,sequence,label\na,ACGT,1\nb,AC,0\na,GG,1\n", r"id 'a' in column 'id' appears twice \(rows 2 and 4\)"),
    ],
)
def test_read_sequence_table_errors_name_the_row(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path / "s.csv", text)
    with pytest.raises(MedDLError, match=expected):
        read_sequence_table(path, id_column="id" if text.startswith("id") else None)


def test_read_bed_skips_headers_and_fills_defaults(tmp_path: Path) -> None:
    text = "track name=x\nbrowser position chr1\n# comment\nchr1\t0\t4\nchr1\t2\t6\tpeak\t5.5\t-\n"
    frame = read_bed(_write(tmp_path / "a.bed", text))
    assert frame[["chrom", "start", "end", "name", "strand", "line"]].to_dict("list") == {
        "chrom": ["chr1", "chr1"],
        "start": [0, 2],
        "end": [4, 6],
        "name": ["", "peak"],
        "strand": [".", "-"],
        "line": [4, 5],
    }
    assert pd.isna(frame["score"][0]) and frame["score"][1] == 5.5


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("chr1\tten\t20", r"line 2: start and end must be integers, got 'ten' and '20'"),
        ("chr1\t20\t20", r"line 2: start \(20\) must be smaller than end \(20\)"),
        ("chr1\t-1\t20", r"line 2: start must be >= 0"),
        ("chr1\t1\t20\tx\t0\t*", r"line 2: strand must be '\+', '-' or '\.', got '\*'"),
        ("chr1\t1", r"line 2: expected at least 3 fields"),
    ],
)
def test_read_bed_errors_name_the_line(tmp_path: Path, line: str, expected: str) -> None:
    with pytest.raises(MedDLError, match=expected):
        read_bed(_write(tmp_path / "bad.bed", f"chr1\t0\t5\n{line}\n"))


def test_read_bed_without_intervals(tmp_path: Path) -> None:
    with pytest.raises(MedDLError, match="no intervals"):
        read_bed(_write(tmp_path / "empty.bed", "track name=x\n"))


@pytest.fixture
def genome(tmp_path: Path) -> Path:
    return _write(tmp_path / "genome.fa", ">chr1\nAACCGGTTAC\nGTACGTAC\n>chr2\nTTTTGGGG\n")


def test_cut_intervals_strand_and_ids(tmp_path: Path, genome: Path) -> None:
    bed = read_bed(
        _write(tmp_path / "a.bed", "chr1\t2\t6\tp1\t0\t+\nchr1\t2\t6\tdup\t0\t-\nchr2\t0\t3\tdup\nchr2\t4\t8\n")
    )
    records = cut_intervals(bed, genome)
    assert [r.sequence for r in records] == ["CCGG", "CCGG", "TTT", "GGGG"]  # CCGG is its own reverse complement
    assert [r.id for r in records] == ["p1", "chr1:2-6(-)", "chr2:0-3(.)", "chr2:4-8(.)"]
    assert [r.line for r in records] == [1, 2, 3, 4]
    minus = cut_intervals(read_bed(_write(tmp_path / "m.bed", "chr1\t0\t3\tm\t0\t-\n")), genome)
    assert minus[0].sequence == "GTT"  # reverse complement of AAC


def test_cut_intervals_recentres_to_length(tmp_path: Path, genome: Path) -> None:
    bed = read_bed(_write(tmp_path / "a.bed", "chr1\t4\t6\tp\n"))
    (record,) = cut_intervals(bed, genome, length=6)
    assert record.sequence == "CCGGTT" and record.description == "chr1:2-8(.)"


def test_cut_intervals_unknown_chromosome(tmp_path: Path, genome: Path) -> None:
    bed = read_bed(_write(tmp_path / "a.bed", "chr1\t0\t4\nchrX\t0\t4\n"))
    with pytest.raises(MedDLError, match=r"a.bed, line 2: chromosome 'chrX' is not in the reference .*'chr1', 'chr2'"):
        cut_intervals(bed, genome)


def test_cut_intervals_outside_chromosome(tmp_path: Path, genome: Path) -> None:
    bed = read_bed(_write(tmp_path / "a.bed", "chr2\t4\t9\n"))
    with pytest.raises(MedDLError, match=r"line 1: interval chr2:4-9 falls outside chromosome 'chr2' \(length 8\)"):
        cut_intervals(bed, genome)
    near_end = read_bed(_write(tmp_path / "b.bed", "chr2\t6\t8\n"))
    with pytest.raises(MedDLError, match=r"re-centred window chr2:4-10 .*length 8"):
        cut_intervals(near_end, genome, length=6)


def test_reverse_complement_iupac() -> None:
    assert reverse_complement("ACGTRYKMBVDHNSW") == "WSNDHBVKMRYACGT"
    assert reverse_complement("acgN") == "Ncgt"
    assert reverse_complement(reverse_complement("GATTACARYN")) == "GATTACARYN"

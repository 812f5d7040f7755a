"""Readers name the file and the place of a bad value: the first infinite expression value (gene, sample, row and
column), the label file a DataFrame was read from, and the FASTA file whose headers lack a label."""

from __future__ import annotations

from pathlib import Path

import pytest

from meddl.errors import MedDLError
from meddl.io.expression import join_labels, read_expression
from meddl.io.sequences import header_labels, read_fasta
from meddl.io.tables import read_table


def test_infinite_expression_value_names_gene_sample_row_and_column(tmp_path: Path) -> None:
    counts = tmp_path / "counts.csv"
    counts.write_text("sample_id,G1,G2,G3\nS1,1,2,3\nS2,4,inf,6\nS3,7,8,-inf\n")
    with pytest.raises(
        MedDLError, match=r"counts\.csv: .*2 NaN or infinite .*gene 'G2', sample 'S2' \(row 3, column 3\)"
    ):
        read_expression(counts)


def test_infinite_expression_value_with_genes_in_rows_names_the_gene_row_and_sample_column(tmp_path: Path) -> None:
    counts = tmp_path / "counts.csv"
    counts.write_text("gene_id,S1,S2\nG1,1,2\nG2,-inf,4\n")
    with pytest.raises(MedDLError, match=r"counts\.csv: .*gene 'G2', sample 'S1' \(row 3, column 2\): -inf"):
        read_expression(counts, genes_in_rows=True)


def test_join_labels_names_the_label_file_a_table_was_read_from(tmp_path: Path) -> None:
    counts = tmp_path / "counts.csv"
    counts.write_text("sample_id,G1\nS1,1\nS2,2\nS3,3\n")
    matrix = read_expression(counts)
    labels = tmp_path / "labels.csv"
    labels.write_text("sample_id,response\nS1,yes\nS2,no\nS1,no\n")
    table = read_table(labels)
    with pytest.raises(MedDLError, match=r"labels\.csv: target column 'outcome' not found"):
        join_labels(matrix, table, "sample_id", "outcome", source=labels)
    with pytest.raises(MedDLError, match=r"labels\.csv: sample_column column 'sample' not found"):
        join_labels(matrix, table, "sample", "response", source=labels)
    with pytest.raises(MedDLError, match=r"labels\.csv: duplicated sample id\(s\) .*'S1' \(rows 2, 4\)"):
        join_labels(matrix, table, "sample_id", "response", source=labels)
    with pytest.raises(MedDLError, match=r"labels\.csv: duplicated"):  # a path names itself
        join_labels(matrix, labels, "sample_id", "response")


def test_header_labels_names_the_fasta_file(tmp_path: Path) -> None:
    fasta = tmp_path / "sequences.fa"
    fasta.write_text(">a label=1\nACGT\n>b\nACGT\n")
    with pytest.raises(MedDLError, match=r"sequences\.fa: 1 FASTA record\(s\) have no 'label=' .*'b' \(line 3\)"):
        header_labels(read_fasta(fasta), source=fasta)

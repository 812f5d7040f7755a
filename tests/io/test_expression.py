"""Expression matrices: layouts, the counts flag, every bad input, and joining labels without silent drops."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meddl.errors import MedDLError
from meddl.io.expression import ExpressionMatrix, join_labels, read_expression


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_samples_in_rows_csv(tmp_path: Path) -> None:
    path = _write(tmp_path / "expr.csv", "sample,TP53,BRCA1,ESR1\nS1,5,0,12\nS2,3,7,1\nS3,0,2,8\n")
    matrix = read_expression(path)
    assert matrix.samples == ["S1", "S2", "S3"] and matrix.genes == ["TP53", "BRCA1", "ESR1"]
    assert matrix.values.dtype == np.float32 and matrix.values.shape == (3, 3)
    assert matrix.values[1].tolist() == [3.0, 7.0, 1.0]
    assert matrix.looks_like_counts and matrix.rows == [2, 3, 4] and matrix.source == str(path)
    assert list(matrix.to_frame().index) == ["S1", "S2", "S3"]


def test_genes_in_rows_tsv_and_log_scaled_values(tmp_path: Path) -> None:
    path = _write(tmp_path / "series.tsv", "gene\tS1\tS2\nTP53\t5.5\t-0.25\nESR1\t1.0\t2.0\n")
    matrix = read_expression(path, genes_in_rows=True)
    assert matrix.samples == ["S1", "S2"] and matrix.genes == ["TP53", "ESR1"]
    np.testing.assert_array_equal(matrix.values, np.array([[5.5, 1.0], [-0.25, 2.0]], dtype=np.float32))
    assert not matrix.looks_like_counts  # negative and fractional values: already log-scaled


def test_parquet_with_named_sample_column(tmp_path: Path) -> None:
    frame = pd.DataFrame({"GENE1": [1.5, 2.5], "id": ["a", "b"], "GENE2": [3.0, 4.0]})
    frame.to_parquet(tmp_path / "expr.parquet")
    matrix = read_expression(tmp_path / "expr.parquet", sample_column="id")
    assert matrix.samples == ["a", "b"] and matrix.genes == ["GENE1", "GENE2"]
    assert not matrix.looks_like_counts


def test_duplicated_genes_are_named_with_their_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "dup.csv", "sample,TP53,ESR1,TP53,MYC,ESR1\nS1,1,2,3,4,5\n")
    with pytest.raises(MedDLError, match=r"dup\.csv: duplicated gene name\(s\) in the header \(2 in all\): "
                       r"'TP53' \(columns 2, 4\); 'ESR1' \(columns 3, 6\)"):  # fmt: skip
        read_expression(path)
    rows = _write(tmp_path / "rows.csv", "gene,S1,S2\nTP53,1,2\nMYC,3,4\nTP53,5,6\n")
    with pytest.raises(MedDLError, match=r"rows\.csv: duplicated gene name\(s\) \(1 in all\): 'TP53' \(rows 2, 4\)"):
        read_expression(rows, genes_in_rows=True)


def test_duplicated_sample_ids_are_named_with_their_rows(tmp_path: Path) -> None:
    path = _write(tmp_path / "dup.csv", "sample,TP53\nS1,1\nS2,2\nS1,3\n")
    with pytest.raises(MedDLError, match=r"duplicated sample id\(s\) \(1 in all\): 'S1' \(rows 2, 4\)"):
        read_expression(path)


def test_non_numeric_cells_name_gene_sample_row_value_and_count(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.csv", "sample,TP53,ESR1\nS1,1,2\nS2,n/d,3\nS3,4,high\n")
    with pytest.raises(
        MedDLError,
        match=r"bad\.csv: 2 non-numeric cell\(s\) in the expression values, e\.g\. gene 'TP53', sample 'S2' "
        r"\(row 3\): 'n/d'",
    ):
        read_expression(path)
    blank = _write(tmp_path / "blank.csv", "sample,TP53,ESR1\nS1,1,\nS2,2,3\n")
    with pytest.raises(MedDLError, match=r"1 blank cell\(s\) .* gene 'ESR1', sample 'S1' \(row 2\)"):
        read_expression(blank)


def test_empty_matrix_and_missing_anndata(tmp_path: Path) -> None:
    only_ids = _write(tmp_path / "ids.csv", "sample\nS1\nS2\n")
    with pytest.raises(MedDLError, match=r"ids\.csv: the matrix is empty: no gene columns"):
        read_expression(only_ids)
    header_only = _write(tmp_path / "header.csv", "sample,TP53\n")
    with pytest.raises(MedDLError, match=r"header\.csv: has a header but no rows"):
        read_expression(header_only)
    if importlib.util.find_spec("anndata") is not None:  # pragma: no cover - anndata is not installed here
        pytest.skip("anndata is installed; the missing-package message cannot be shown")
    with pytest.raises(MedDLError, match=r"cells\.h5ad: reading AnnData \(\.h5ad\) files needs the anndata "
                       r"package: pip install anndata"):  # fmt: skip
        read_expression(tmp_path / "cells.h5ad")


def _matrix() -> ExpressionMatrix:
    return ExpressionMatrix(np.arange(8, dtype=float).reshape(4, 2), ["S1", "S2", "S3", "S4"], ["A", "B"], "m.csv")


def test_join_labels_counts_both_kinds_of_unmatched_samples(tmp_path: Path) -> None:
    labels = pd.DataFrame({"id": ["S4", "S2", "S9", "S1"], "response": ["yes", "no", "yes", None]})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    matrix, series, dropped = join_labels(_matrix(), tmp_path / "labels.csv", "id", "response")
    assert matrix.samples == ["S1", "S2", "S4"] and matrix.values[:, 0].tolist() == [0.0, 2.0, 6.0]
    assert matrix.rows == [2, 3, 5]
    assert series.index.tolist() == ["S1", "S2", "S4"] and series.name == "response"
    assert series.isna().tolist() == [True, False, False] and series["S4"] == "yes"  # blank label kept
    assert dropped["samples_without_label"] == 1 and dropped["labels_without_sample"] == 1
    assert dropped["examples"] == {"samples_without_label": ["S3"], "labels_without_sample": ["S9"]}


def test_join_labels_errors() -> None:
    with pytest.raises(MedDLError, match=r"no sample id appears in both .* \['s1', 's2'\] vs \['S1', 'S2', 'S3'\]"):
        join_labels(_matrix(), pd.DataFrame({"id": ["s1", "s2"], "y": [1, 0]}), "id", "y")
    with pytest.raises(MedDLError, match=r"duplicated sample id\(s\) in column 'id' \(1 in all\): 'S1' \(rows 0, 2\)"):
        join_labels(_matrix(), pd.DataFrame({"id": ["S1", "S2", "S1"], "y": [1, 0, 1]}), "id", "y")
    with pytest.raises(MedDLError, match=r"target column 'outcome' not found"):
        join_labels(_matrix(), pd.DataFrame({"id": ["S1"], "y": [1]}), "id", "outcome")

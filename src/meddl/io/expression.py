"""Reading gene-expression matrices (samples × genes) and joining them to a label table.

* CSV/TSV/Parquet through :func:`meddl.io.tables.read_table`: one row per sample, the first column (or
  ``sample_column``) holding the sample id, every other column a gene. ``genes_in_rows=True`` reads the
  transposed layout common in GEO series matrices: one row per gene (gene id in the first column), one column
  per sample.
* ``.h5ad`` (AnnData) through the ``anndata`` package when it is installed (``X`` with ``obs_names`` as samples
  and ``var_names`` as genes).

Errors name the file and what is wrong: duplicated gene names (with their columns, or rows when genes are in
rows), duplicated sample ids (with their rows), non-numeric or blank cells (gene, sample, row, value and how
many), an empty matrix. Negative values are allowed (already log-scaled data); ``looks_like_counts`` records
whether every value is a non-negative integer, as raw sequencing counts are.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from meddl.errors import MedDLError
from meddl.io.tables import FIRST_DATA_ROW, read_table

__all__ = ["ExpressionMatrix", "join_labels", "read_expression"]

_EXAMPLES = 5


@dataclass
class ExpressionMatrix:
    """A samples × genes expression matrix.

    Attributes:
        values: ``(N, G)`` float32.
        samples: N sample ids (unique).
        genes: G gene names (unique).
        source: the file it was read from (``""`` if built in memory).
        looks_like_counts: every value is a non-negative integer (raw counts, not yet log-transformed).
        rows: the spreadsheet row (or, with genes in rows, column) number of each sample in the file.
    """

    values: np.ndarray
    samples: list[str]
    genes: list[str]
    source: str = ""
    looks_like_counts: bool = False
    rows: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.values = np.ascontiguousarray(self.values, dtype=np.float32)
        if self.values.shape != (len(self.samples), len(self.genes)):
            raise ValueError(
                f"values {self.values.shape} must be (samples, genes) = ({len(self.samples)}, {len(self.genes)})"
            )
        if not self.rows:
            self.rows = list(range(FIRST_DATA_ROW, FIRST_DATA_ROW + len(self.samples)))

    def to_frame(self) -> pd.DataFrame:
        """The matrix as a DataFrame indexed by sample id (index name ``sample_id``), one column per gene."""
        return pd.DataFrame(self.values, index=pd.Index(self.samples, name="sample_id"), columns=self.genes)

    def subset(self, samples: list[str]) -> ExpressionMatrix:
        """The rows of the named samples, in that order."""
        position = {sample: i for i, sample in enumerate(self.samples)}
        index = [position[sample] for sample in samples]
        return ExpressionMatrix(
            self.values[index], list(samples), list(self.genes), self.source, self.looks_like_counts,
            [self.rows[i] for i in index],
        )  # fmt: skip


def read_expression(
    path: str | Path, *, sample_column: str | None = None, genes_in_rows: bool = False
) -> ExpressionMatrix:
    """Read an expression matrix.

    Args:
        path: ``.csv``, ``.tsv``, ``.parquet`` or ``.h5ad``.
        sample_column: the column of sample ids (samples in rows) or of gene ids (``genes_in_rows``); default
            the first column.
        genes_in_rows: the file has one row per gene and one column per sample.

    Returns:
        The :class:`ExpressionMatrix` (values float32 (N samples, G genes)).

    Raises:
        MedDLError: the file is missing or unreadable; ``.h5ad`` without anndata installed; duplicated gene
            names or sample ids; blank ids; non-numeric or blank value cells; no samples or no genes.
    """
    path = Path(path)
    if path.suffix.lower() == ".h5ad":
        return _read_h5ad(path)
    if path.exists() and path.is_file() and path.stat().st_size > 0:
        _check_header_duplicates(path, genes_in_rows)
    frame = read_table(path)
    id_column = sample_column if sample_column is not None else str(frame.columns[0])
    if id_column not in frame.columns:
        raise MedDLError(f"{path}: sample_column {id_column!r} not found; columns are {list(frame.columns)[:10]}")
    ids = frame[id_column]
    blank = frame.index[ids.isna() | (ids.astype(str).str.strip() == "")]
    what = "gene" if genes_in_rows else "sample"
    if len(blank):
        raise MedDLError(f"{path}: {len(blank)} row(s) have no {what} id in column {id_column!r}, e.g. row {blank[0]}")
    ids = ids.astype(str).str.strip()
    repeated = _repeats(ids.tolist(), frame.index.tolist())
    if repeated:
        noun = "gene name(s)" if genes_in_rows else "sample id(s)"
        raise MedDLError(f"{path}: duplicated {noun} {_describe(repeated, 'rows')}")
    body = frame.drop(columns=id_column)
    if body.shape[1] == 0:
        raise MedDLError(f"{path}: the matrix is empty: no {'sample' if genes_in_rows else 'gene'} columns")
    numeric = body.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna()
    if bad.to_numpy().any():
        non_numeric = bad & body.notna()
        count_text = int(non_numeric.to_numpy().sum())
        count_blank = int((bad & body.isna()).to_numpy().sum())
        kind = non_numeric if count_text else bad
        row, column = next((r, c) for c in kind.columns for r in kind.index[kind[c].to_numpy()])
        gene, sample = (ids[row], column) if genes_in_rows else (column, ids[row])
        parts = [f"{count_text} non-numeric cell(s)"] if count_text else []
        parts += [f"{count_blank} blank cell(s)"] if count_blank else []
        value = body.at[row, column]
        shown = "a blank cell" if pd.isna(value) else repr(value)
        raise MedDLError(
            f"{path}: {' and '.join(parts)} in the expression values, e.g. gene {gene!r}, sample {sample!r} "
            f"(row {row}): {shown}; every value must be a number"
        )
    values = numeric.to_numpy(dtype=np.float64)
    # Spreadsheet column of each value column (the header row is row 1, the first column column 1).
    columns = [int(frame.columns.get_loc(c)) + 1 for c in body.columns]
    if genes_in_rows:
        genes, samples = ids.tolist(), [str(c) for c in body.columns]
        values = values.T  # (genes, samples) → (samples, genes)
        rows = [i + 2 for i in range(len(samples))]  # spreadsheet column numbers: the id column is column 1
        gene_rows = [int(r) for r in frame.index]
        return _matrix(values, samples, genes, path, rows, lambda i, j: f" (row {gene_rows[j]}, column {columns[i]})")
    genes, samples = [str(c) for c in body.columns], ids.tolist()
    rows = [int(r) for r in frame.index]
    return _matrix(values, samples, genes, path, rows, lambda i, j: f" (row {rows[i]}, column {columns[j]})")


def _matrix(
    values: np.ndarray,
    samples: list[str],
    genes: list[str],
    path: Path,
    rows: list[int],
    cell: Callable[[int, int], str] = lambda i, j: "",
) -> ExpressionMatrix:
    """The checked matrix; ``cell(i, j)`` says where value ``[i, j]`` sits in the file (e.g. `` (row 9, column 8)``)."""
    if values.size == 0:
        raise MedDLError(f"{path}: the matrix is empty ({len(samples)} samples × {len(genes)} genes)")
    not_finite = ~np.isfinite(values)
    if not_finite.any():
        i, j = (int(k) for k in np.argwhere(not_finite)[0])
        raise MedDLError(
            f"{path}: the matrix holds {int(not_finite.sum())} NaN or infinite value(s), e.g. gene {genes[j]!r}, "
            f"sample {samples[i]!r}{cell(i, j)}: {values[i, j]:g}; every value must be a finite number"
        )
    too_large = np.abs(values) > np.finfo(np.float32).max  # would turn infinite in the float32 matrix
    if too_large.any():
        i, j = (int(k) for k in np.argwhere(too_large)[0])
        raise MedDLError(
            f"{path}: {int(too_large.sum())} value(s) beyond ±3.4e38 (the float32 range), e.g. gene {genes[j]!r}, "
            f"sample {samples[i]!r}{cell(i, j)}: {values[i, j]:g}"
        )
    counts = bool(np.all(values >= 0) and np.all(values == np.round(values)))
    return ExpressionMatrix(values.astype(np.float32), samples, genes, str(path), counts, rows)


def _check_header_duplicates(path: Path, genes_in_rows: bool) -> None:
    """Duplicated column names, with every column each appears in (read_table names only the first)."""
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        try:
            import pyarrow.parquet as pq

            header = [str(name) for name in pq.read_schema(path).names]
        except Exception:  # an unreadable file: read_table gives the message
            return
    elif suffix in {".csv", ".tsv"}:
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                header = [h.strip() for h in next(csv.reader(handle, delimiter="\t" if suffix == ".tsv" else ","), [])]
        except UnicodeDecodeError:
            return
    else:
        return
    repeated = _repeats(header, list(range(1, len(header) + 1)))
    if repeated:
        noun = "sample id(s)" if genes_in_rows else "gene name(s)"
        raise MedDLError(f"{path}: duplicated {noun} in the header {_describe(repeated, 'columns')}")


def _repeats(names: list[str], positions: list[int]) -> dict[str, list[int]]:
    where: dict[str, list[int]] = defaultdict(list)
    for name, position in zip(names, positions, strict=True):
        if name:
            where[name].append(position)
    return {name: places for name, places in where.items() if len(places) > 1}


def _describe(repeated: dict[str, list[int]], unit: str) -> str:
    shown = "; ".join(f"{name!r} ({unit} {', '.join(map(str, places))})" for name, places in list(repeated.items())[:5])
    more = f"; and {len(repeated) - _EXAMPLES} more" if len(repeated) > _EXAMPLES else ""
    return f"({len(repeated)} in all): {shown}{more}"


def _read_h5ad(path: Path) -> ExpressionMatrix:
    try:
        import anndata
    except ImportError:
        raise MedDLError(
            f"{path}: reading AnnData (.h5ad) files needs the anndata package: pip install anndata "
            "(or export the matrix as CSV/Parquet with one row per sample)"
        ) from None
    if not path.exists():
        raise MedDLError(f"expression file not found: {path}")
    try:
        data = anndata.read_h5ad(path)
    except Exception as exc:  # h5py raises OSError, KeyError… on a bad file
        raise MedDLError(f"{path}: cannot be read as AnnData: {str(exc).strip().splitlines()[0]}") from None
    matrix = data.X.toarray() if hasattr(data.X, "toarray") else np.asarray(data.X)
    samples = [str(s) for s in data.obs_names]
    genes = [str(g) for g in data.var_names]
    for noun, names, unit in (("sample id(s)", samples, "rows"), ("gene name(s)", genes, "columns")):
        repeated = _repeats(names, list(range(1, len(names) + 1)))
        if repeated:
            raise MedDLError(f"{path}: duplicated {noun} {_describe(repeated, unit)}")
    return _matrix(np.asarray(matrix, dtype=np.float64), samples, genes, path, list(range(1, len(samples) + 1)))


def join_labels(
    matrix: ExpressionMatrix,
    labels: str | Path | pd.DataFrame,
    sample_column: str,
    target: str,
    *,
    source: str | Path | None = None,
) -> tuple[ExpressionMatrix, pd.Series, dict[str, object]]:
    """Keep the samples that have a row in the label table, aligned with their label.

    Samples without a label row and label rows without a sample are counted (and the first few named) in the
    returned ``dropped`` dict, never dropped silently. A label row whose target cell is blank is kept (its
    label is missing), so the pipeline drops and counts it with the other missing targets.

    Args:
        matrix: the expression matrix.
        labels: the label table (a file read with ``read_table``, or a DataFrame).
        sample_column: the label table's column of sample ids.
        target: the label column.
        source: the label file named in messages when ``labels`` is a DataFrame read from it (default: the
            path given as ``labels``, or ``"labels"``).

    Returns:
        ``(matrix, labels, dropped)``: the matrix restricted to labelled samples (file order kept); the labels
        as a Series indexed by sample id (name ``target``), in the same order; ``dropped`` with
        ``samples_without_label`` and ``labels_without_sample`` (counts) and ``examples`` (the first few ids
        of each).

    Raises:
        MedDLError: a column is missing, a sample id is repeated in the label table (its rows are named), or
            no sample id appears in both.
    """
    if source is None:
        source = labels if isinstance(labels, (str, Path)) else "labels"
    table = read_table(labels) if isinstance(labels, (str, Path)) else labels
    for role, column in (("sample_column", sample_column), ("target", target)):
        if column not in table.columns:
            raise MedDLError(f"{source}: {role} column {column!r} not found; columns are {list(table.columns)[:10]}")
    ids = table[sample_column]
    blank = ids.isna() | (ids.astype(str).str.strip() == "")
    if blank.any():
        raise MedDLError(f"{source}: {int(blank.sum())} row(s) have no sample id, e.g. row {table.index[blank][0]}")
    ids = ids.astype(str).str.strip()
    repeated = _repeats(ids.tolist(), [int(r) for r in table.index])
    if repeated:
        raise MedDLError(f"{source}: duplicated sample id(s) in column {sample_column!r} {_describe(repeated, 'rows')}")
    label_of = dict(zip(ids, table[target].tolist(), strict=True))
    kept = [sample for sample in matrix.samples if sample in label_of]
    unlabelled = [sample for sample in matrix.samples if sample not in label_of]
    in_matrix = set(matrix.samples)
    orphaned = [sample for sample in ids if sample not in in_matrix]
    if not kept:
        raise MedDLError(
            f"{source}: no sample id appears in both the label table and {matrix.source or 'the matrix'} "
            f"(e.g. {ids.tolist()[:3]} vs {matrix.samples[:3]}); check column {sample_column!r} and the id format"
        )
    dropped: dict[str, object] = {
        "samples_without_label": len(unlabelled),
        "labels_without_sample": len(orphaned),
        "examples": {"samples_without_label": unlabelled[:_EXAMPLES], "labels_without_sample": orphaned[:_EXAMPLES]},
    }
    series = pd.Series([label_of[s] for s in kept], index=pd.Index(kept, name="sample_id"), name=target)
    return matrix.subset(kept), series, dropped

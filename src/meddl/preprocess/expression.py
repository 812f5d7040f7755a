"""Log-transform, gene selection and standardisation of expression matrices, fitted on training samples only.

Order: log → select → scale. Every statistic (whether to log, gene variances, means and standard
deviations) comes from the rows passed to ``fit`` — the training split — so nothing about the test samples
leaks into the model.

* ``log="auto"`` applies ``log2(x + 1)`` when the training data look raw: every value is non-negative and the
  largest exceeds 100 (counts, TPM/FPKM or linear microarray intensities reach thousands; log-scaled data stay
  below about 20). Otherwise (any negative value, or a maximum of at most 100) the data are taken as already
  logged and left alone. ``"log2"`` and ``"log1p"`` (natural log of x + 1) force a transform, ``"none"`` none.
* ``select="variance"`` keeps the ``n_genes`` genes of highest variance (population variance after the log,
  on the training rows); ties are broken by gene name, and the kept genes stay in their original order.
* ``scale="standard"`` centres each kept gene to mean 0 and divides by its standard deviation (ddof 0, like
  scikit-learn's ``StandardScaler``); a constant gene is only centred.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from meddl.errors import MedDLError

__all__ = ["ExpressionTransform"]

_LOGS = ("auto", "log2", "log1p", "none")
_SELECTS = ("variance", "none")
_SCALES = ("standard", "none")
_RAW_MAXIMUM = 100.0  # "auto": a non-negative matrix whose maximum exceeds this is logged


class ExpressionTransform:
    """Log-transform, variance-based gene selection and standardisation (scikit-learn contract).

    Args:
        log: ``"auto"``, ``"log2"`` (log2(x + 1)), ``"log1p"`` (ln(x + 1)) or ``"none"``.
        select: ``"variance"`` (keep the ``n_genes`` most variable genes) or ``"none"``.
        n_genes: genes to keep with ``select="variance"`` (all when the matrix has fewer).
        scale: ``"standard"`` (per-gene z-score) or ``"none"``.

    Attributes:
        log_: the log actually applied: ``"log2"``, ``"log1p"`` or ``"none"``.
        genes_in_: the names of the G input genes (``g0``, ``g1``, … when none were given).
        n_features_in_: G.
        selected_index_: column indices of the kept genes, ascending.
        selected_genes_: their names.
        variances_: the training variance (after the log) of every input gene.
        mean_, scale_: per kept gene, the centring and scaling applied (0 and 1 with ``scale="none"``).
    """

    def __init__(
        self, *, log: str = "auto", select: str = "variance", n_genes: int = 500, scale: str = "standard"
    ) -> None:
        self.log = log
        self.select = select
        self.n_genes = n_genes
        self.scale = scale

    def fit(self, X: np.ndarray, genes: Sequence[str] | None = None) -> ExpressionTransform:
        """Learn the log rule, the kept genes and their mean and standard deviation from training rows.

        Args:
            X: (N, G) training expression values (a DataFrame's columns are the default gene names).
            genes: the G gene names (for ``selected_genes_`` and for reordering at transform time).

        Returns:
            self.

        Raises:
            MedDLError: an invalid setting, an empty or non-finite matrix, negative values with a forced log,
                or a gene list of the wrong length or with duplicates.
        """
        for name, value, allowed in (("log", self.log, _LOGS), ("select", self.select, _SELECTS)):
            if value not in allowed:
                raise MedDLError(f"preprocess.{name} must be one of {list(allowed)}, got {value!r}")
        if self.scale not in _SCALES:
            raise MedDLError(f"preprocess.scale must be one of {list(_SCALES)}, got {self.scale!r}")
        if isinstance(self.n_genes, bool) or not isinstance(self.n_genes, int) or self.n_genes < 1:
            raise MedDLError(f"preprocess.n_genes must be a positive integer, got {self.n_genes!r}")
        values = self._as_matrix(X, "fit")
        if values.shape[0] < 2:
            raise MedDLError(f"fit needs at least 2 training samples to estimate variances, got {values.shape[0]}")
        if genes is None and hasattr(X, "columns"):
            genes = [str(c) for c in X.columns]
        names = [str(g) for g in genes] if genes is not None else [f"g{i}" for i in range(values.shape[1])]
        if len(names) != values.shape[1]:
            raise MedDLError(f"genes lists {len(names)} names for a matrix of {values.shape[1]} genes")
        if len(set(names)) != len(names):
            duplicate = next(name for name in names if names.count(name) > 1)
            raise MedDLError(f"genes: {duplicate!r} appears more than once")
        if self.log == "auto":
            raw = bool(values.min() >= 0 and values.max() > _RAW_MAXIMUM)
            self.log_ = "log2" if raw else "none"
        else:
            self.log_ = self.log
        logged = self._log(values, "fit")
        self.genes_in_ = names
        self.n_features_in_ = values.shape[1]
        self.variances_ = logged.var(axis=0)
        if self.select == "variance" and self.n_genes < values.shape[1]:
            # Highest variance first; equal variances in gene-name order.
            order = sorted(range(values.shape[1]), key=lambda i: (-float(self.variances_[i]), names[i]))
            self.selected_index_ = np.sort(np.asarray(order[: self.n_genes], dtype=np.int64))
        else:
            self.selected_index_ = np.arange(values.shape[1], dtype=np.int64)
        self.selected_genes_ = [names[i] for i in self.selected_index_]
        kept = logged[:, self.selected_index_]
        if self.scale == "standard":
            self.mean_ = kept.mean(axis=0)
            std = kept.std(axis=0)
            self.scale_ = np.where(std > 1e-12, std, 1.0)
        else:
            self.mean_ = np.zeros(kept.shape[1])
            self.scale_ = np.ones(kept.shape[1])
        return self

    def transform(self, X: np.ndarray, genes: Sequence[str] | None = None) -> np.ndarray:
        """Apply the fitted log, selection and scaling.

        Args:
            X: (N, G) expression values with the training genes' columns, or any columns when ``genes`` names
                them (they are then matched to the training genes by name; extra genes are ignored).
            genes: the column names of ``X``.

        Returns:
            (N, n kept genes) float32.

        Raises:
            MedDLError: not fitted, a wrong number of columns, training genes missing from ``genes``, or values
                the log cannot take.
        """
        if not hasattr(self, "selected_index_"):
            raise MedDLError("ExpressionTransform is not fitted; call fit() first")
        values = self._as_matrix(X, "transform")
        if genes is not None:
            names = [str(g) for g in genes]
            if len(names) != values.shape[1]:
                raise MedDLError(f"genes lists {len(names)} names for a matrix of {values.shape[1]} genes")
            position = {name: i for i, name in enumerate(names)}
            missing = [g for g in self.selected_genes_ if g not in position]
            if missing:
                raise MedDLError(
                    f"{len(missing)} gene(s) the model uses are not in the data, e.g. {missing[:5]}; the model "
                    f"needs the {len(self.selected_genes_)} genes in selected_genes_"
                )
            kept = values[:, [position[g] for g in self.selected_genes_]]
        else:
            if values.shape[1] != self.n_features_in_:
                raise MedDLError(
                    f"expected {self.n_features_in_} genes (as in training), got {values.shape[1]}; pass genes= "
                    "to match columns by name"
                )
            kept = values[:, self.selected_index_]
        kept = self._log(kept, "transform")
        return ((kept - self.mean_) / self.scale_).astype(np.float32)

    def fit_transform(self, X: np.ndarray, genes: Sequence[str] | None = None) -> np.ndarray:
        """``fit(X, genes)`` then ``transform(X)``."""
        return self.fit(X, genes).transform(X)

    @staticmethod
    def _as_matrix(X: np.ndarray, step: str) -> np.ndarray:
        values = np.asarray(X, dtype=np.float64)
        if values.ndim != 2 or values.size == 0:
            raise MedDLError(f"{step}: expected a non-empty (samples, genes) matrix, got shape {values.shape}")
        if not np.all(np.isfinite(values)):
            raise MedDLError(f"{step}: the matrix holds {int((~np.isfinite(values)).sum())} NaN or infinite value(s)")
        return values

    def _log(self, values: np.ndarray, step: str) -> np.ndarray:
        if self.log_ == "none":
            return values
        if values.min() <= -1:
            raise MedDLError(
                f"{step}: log {self.log_}(x + 1) needs values above -1, got a minimum of {values.min():g}; the data "
                "look already log-scaled: set preprocess.log to 'none' or 'auto'"
            )
        return np.log2(values + 1.0) if self.log_ == "log2" else np.log1p(values)

    def to_state(self) -> dict[str, Any]:
        """JSON-able settings and fitted statistics."""
        if not hasattr(self, "selected_index_"):
            raise MedDLError("ExpressionTransform is not fitted; call fit() first")
        return {
            "log": self.log,
            "select": self.select,
            "n_genes": self.n_genes,
            "scale": self.scale,
            "log_": self.log_,
            "genes_in": list(self.genes_in_),
            "selected_index": [int(i) for i in self.selected_index_],
            "variances": [float(v) for v in self.variances_],
            "mean": [float(v) for v in self.mean_],
            "scale_values": [float(v) for v in self.scale_],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ExpressionTransform:
        """Rebuild a fitted transform from :meth:`to_state`."""
        transform = cls(log=state["log"], select=state["select"], n_genes=state["n_genes"], scale=state["scale"])
        transform.log_ = state["log_"]
        transform.genes_in_ = list(state["genes_in"])
        transform.n_features_in_ = len(transform.genes_in_)
        transform.selected_index_ = np.asarray(state["selected_index"], dtype=np.int64)
        transform.selected_genes_ = [transform.genes_in_[i] for i in transform.selected_index_]
        transform.variances_ = np.asarray(state["variances"], dtype=np.float64)
        transform.mean_ = np.asarray(state["mean"], dtype=np.float64)
        transform.scale_ = np.asarray(state["scale_values"], dtype=np.float64)
        return transform

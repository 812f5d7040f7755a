"""Attributions: which inputs drove a prediction, for the model and for each case."""

from meddl.explain.tabular import (
    format_top_features,
    group_attributions,
    integrated_gradients,
    permutation_importance_table,
)

__all__ = [
    "format_top_features",
    "group_attributions",
    "integrated_gradients",
    "permutation_importance_table",
]

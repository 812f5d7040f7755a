"""Attributions: which inputs drove a prediction, for the model and for each case.

``compute_integrated_gradients`` (``meddl.explain.attribution``) is the one integrated-gradients routine; each
kind's explainer (``tabular_integrated_gradients`` here, ``meddl.explain.signals.signal_integrated_gradients``,
``meddl.explain.sequences.dna_integrated_gradients`` / ``token_attributions``,
``meddl.explain.ehr.ehr_integrated_gradients``) builds on it. ``integrated_gradients`` is the tabular one's
former name. Motif discovery on sequence attributions (seqlets, motifs, JASPAR matches, logos) is in
``meddl.explain.motifs``, its names re-exported by ``meddl.explain.sequences``.
"""

from meddl.explain.attribution import compute_integrated_gradients
from meddl.explain.tabular import (
    format_top_features,
    group_attributions,
    integrated_gradients,
    permutation_importance_table,
    tabular_integrated_gradients,
)

__all__ = [
    "compute_integrated_gradients",
    "format_top_features",
    "group_attributions",
    "integrated_gradients",
    "permutation_importance_table",
    "tabular_integrated_gradients",
]

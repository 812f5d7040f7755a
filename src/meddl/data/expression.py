"""Expression cohorts: GSE7390 breast cancer (scikit-survival's copy) and synthetic counts with a known signature.

GSE7390 (Desmedt et al., 2007; TRANSBIG): 198 node-negative breast-cancer patients without adjuvant therapy,
76 Affymetrix probes (the Wang et al. 76-gene signature) already log2-scaled, clinical columns ``age``, ``er``,
``grade`` and ``size`` (tumour size, cm), and the time to distant metastasis ``t.tdm`` in **days** with its
event indicator ``e.tdm``. scikit-survival stores the probe ids with R's ``X`` prefix (``X200726_at``); it is
removed here so the genes carry their Affymetrix ids (``200726_at``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from meddl.data.cohorts import fixed_horizon_labels
from meddl.errors import MedDLError

__all__ = ["gse7390_cohort", "synthetic_expression"]

_DAYS_PER_YEAR = 365.25
_CLINICAL = ("age", "er", "grade", "size")


def gse7390_cohort(horizon_years: float = 5.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """GSE7390 as an expression matrix and a label table with "distant metastasis within N years".

    The label ``metastasis_<N>y`` is ``"yes"`` for a distant metastasis at or before the horizon, ``"no"`` for
    metastasis-free follow-up reaching the horizon, and blank (None) for patients censored before it — their
    outcome is unknown, so the pipeline excludes and counts them as missing targets. Their number is in
    ``labels.attrs["censored_before_horizon"]`` and described in ``labels.attrs["note"]``.

    Args:
        horizon_years: the horizon in years (follow-up times in days are divided by 365.25).

    Returns:
        ``(matrix, labels)``: ``matrix`` 198 samples × 76 genes (float, index ``sample_id``); ``labels`` with
        columns ``sample_id``, ``age``, ``er``, ``grade``, ``size``, ``time_days``, ``distant_metastasis``
        (bool event indicator) and the label column, in the same sample order.
    """
    from sksurv.datasets import load_breast_cancer

    if not horizon_years > 0:
        raise MedDLError(f"horizon_years must be positive, got {horizon_years!r}")
    features, outcome = load_breast_cancer()
    samples = pd.Index([f"GSE7390-{i + 1:03d}" for i in range(len(features))], name="sample_id")
    gene_columns = [c for c in features.columns if c not in _CLINICAL]
    matrix = features[gene_columns].astype(np.float64).set_axis(samples, axis=0)
    matrix.columns = [c[1:] if c.startswith("X") and c[1:2].isdigit() else c for c in gene_columns]
    time = np.asarray(outcome["t.tdm"], dtype=np.float64)  # days
    event = np.asarray(outcome["e.tdm"], dtype=bool)
    label, known = fixed_horizon_labels(time, event, horizon_years * _DAYS_PER_YEAR)
    name = f"metastasis_{horizon_years:g}y"
    labels = pd.DataFrame({"sample_id": samples})
    for column in _CLINICAL:
        values = features[column]
        labels[column] = (
            values.astype(str).to_numpy() if isinstance(values.dtype, pd.CategoricalDtype) else values.to_numpy()
        )
    labels["time_days"] = time
    labels["distant_metastasis"] = event
    labels[name] = pd.Series(np.where(label == 1, "yes", "no"), dtype=object).where(known, None)
    excluded = int((~known).sum())
    labels.attrs["censored_before_horizon"] = excluded
    labels.attrs["note"] = (
        f"{horizon_years:g}-year distant-metastasis-free survival: {excluded} of {len(known)} patients were "
        f"censored before {horizon_years:g} years (outcome unknown); their label is left blank, so they are "
        "excluded and counted as 'missing target'"
    )
    return matrix, labels


def synthetic_expression(
    n_samples: int = 200, n_genes: int = 1000, n_informative: int = 20, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Raw RNA-seq-like counts in which a known set of genes separates responders from non-responders.

    Each gene has a baseline mean drawn log-normally (median about 100 counts, a few in the thousands);
    counts are negative binomial (dispersion 0.1, i.e. biological noise on top of Poisson). Half the samples
    (at random) respond; in responders the informative genes — the first half up-, the second half
    down-regulated — change by a factor 3.

    Args:
        n_samples: samples (rows).
        n_genes: genes (columns), named ``GENE0001``, ….
        n_informative: genes that carry the signal (at most ``n_genes``); chosen at random.
        seed: random seed.

    Returns:
        ``(counts, labels, informative)``: counts (samples × genes, int64, index ``sample_id`` ``S0001``, …);
        labels with columns ``sample_id`` and ``response`` (``"yes"``/``"no"``); the informative gene names.
    """
    if n_samples < 2 or n_genes < 1 or not 0 <= n_informative <= n_genes:
        raise MedDLError(
            f"need n_samples >= 2, n_genes >= 1 and 0 <= n_informative <= n_genes; got {n_samples}, {n_genes}, "
            f"{n_informative}"
        )
    rng = np.random.default_rng(seed)
    genes = [f"GENE{i + 1:04d}" for i in range(n_genes)]
    baseline = np.exp(rng.normal(np.log(100.0), 1.0, n_genes))  # (G,)
    responder = rng.random(n_samples) < 0.5  # (N,)
    informative = np.sort(rng.choice(n_genes, size=n_informative, replace=False))
    fold = np.ones(n_genes)
    fold[informative[: n_informative // 2]] = 3.0
    fold[informative[n_informative // 2 :]] = 1.0 / 3.0
    mean = baseline[None, :] * np.where(responder[:, None], fold[None, :], 1.0)  # (N, G)
    dispersion = 0.1
    # Negative binomial as a gamma–Poisson mixture with shape 1/dispersion.
    counts = rng.poisson(rng.gamma(1.0 / dispersion, mean * dispersion))
    samples = pd.Index([f"S{i + 1:04d}" for i in range(n_samples)], name="sample_id")
    matrix = pd.DataFrame(counts.astype(np.int64), index=samples, columns=genes)
    labels = pd.DataFrame({"sample_id": samples, "response": np.where(responder, "yes", "no")})
    return matrix, labels, [genes[i] for i in informative]

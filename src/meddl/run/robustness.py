"""The robustness suite of a training run: the test split scored again under the corruptions its modality declares,
each at rising severities — the figures for ``metrics.json`` and the report's section."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from meddl.config import ExperimentConfig
from meddl.evaluate.robustness import evaluate_robustness
from meddl.modalities import Modality, Prepared
from meddl.report.robustness_plots import robustness_section

__all__ = ["ROBUSTNESS_RESAMPLES", "robustness_report"]

ROBUSTNESS_RESAMPLES = 200


def robustness_report(
    config: ExperimentConfig,
    modality: Modality,
    model: torch.nn.Module,
    prepared: Prepared,
    test_index: np.ndarray,
    scores_fn: Callable[[np.ndarray], np.ndarray],
    threshold: float | None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``evaluate.robustness``: the test rows' main metric, with bootstrap CIs, clean and under each corruption of
    :meth:`Modality.corruptions` at each severity, and the worst-case drop.

    Args:
        config: The experiment (``evaluate.bootstrap``, ``evaluate.confidence_level`` and ``train.seed`` are used).
        modality: The fitted modality of the run.
        model: The trained network.
        prepared: The data set read for the run.
        test_index: The test split's rows.
        scores_fn: Raw model outputs → the scores the run evaluates (probabilities after any recalibration;
            survival: the risk first).
        threshold: The binary decision threshold chosen on validation (threshold metrics only), or None.

    Returns:
        (the figures for ``metrics.json``, the report's section), or (None, None) when ``evaluate.robustness`` is
        off or the modality declares no corruption.
    """
    if not config.evaluate.robustness:
        return None, None
    corruptions = modality.corruptions()
    if not corruptions:
        return None, None
    e = config.evaluate
    groups = prepared.patient_ids[test_index] if prepared.patient_ids is not None else None
    figures = evaluate_robustness(
        config.task,
        prepared.target[test_index],
        lambda inputs: scores_fn(modality.outputs(model, inputs)),
        modality.robustness_inputs(prepared, test_index),
        corruptions,
        threshold=threshold,
        groups=groups,
        # each severity is one more bootstrap (18 for images): 200 resamples draw the bands and the worst drop's
        # paired CI, at a fifth of the cost of evaluate.bootstrap's default 1000
        n_bootstrap=min(e.bootstrap, ROBUSTNESS_RESAMPLES),
        level=e.confidence_level,
        seed=config.train.seed,
    )
    figures["bootstrap_resamples"] = min(e.bootstrap, ROBUSTNESS_RESAMPLES)
    return figures, robustness_section(figures, e.confidence_level, modality.title or modality.kind)

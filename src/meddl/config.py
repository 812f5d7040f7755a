"""The experiment file: one YAML document, validated by pydantic, defaults for everything.

The public name of :mod:`meddl.modalities.schema` (the schema is assembled from every data kind's own sections,
so it lives with the modalities): ``load_config``, ``parse_config``, ``ExperimentConfig`` and the shared sections.
"""

from __future__ import annotations

from meddl.modalities.schema import (
    KINDS,
    DataSection,
    EarlyStoppingConfig,
    EvaluateConfig,
    ExperimentConfig,
    ExplainConfig,
    ModelConfig,
    PreprocessSection,
    SplitConfig,
    TrainConfig,
    format_validation_error,
    load_config,
    parse_config,
)

__all__ = [
    "KINDS",
    "DataSection",
    "EarlyStoppingConfig",
    "EvaluateConfig",
    "ExperimentConfig",
    "ExplainConfig",
    "ModelConfig",
    "PreprocessSection",
    "SplitConfig",
    "TrainConfig",
    "format_validation_error",
    "load_config",
    "parse_config",
]

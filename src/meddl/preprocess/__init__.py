"""Preprocessing fitted on the training split only, with state saved as JSON + NumPy (never pickle)."""

from meddl.preprocess.encode import BinaryEncoder, CategoricalEncoder
from meddl.preprocess.imbalance import IMBALANCE_METHODS, class_weights, resample
from meddl.preprocess.impute import Imputer
from meddl.preprocess.indicators import MissingIndicators
from meddl.preprocess.scale import NumericScaler
from meddl.preprocess.tabular import MISSING_STRATEGIES, SCALERS, TabularPreprocessor

__all__ = [
    "IMBALANCE_METHODS",
    "MISSING_STRATEGIES",
    "SCALERS",
    "BinaryEncoder",
    "CategoricalEncoder",
    "Imputer",
    "MissingIndicators",
    "NumericScaler",
    "TabularPreprocessor",
    "class_weights",
    "resample",
]

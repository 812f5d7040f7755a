"""Networks, one file per family, registered by the name used as ``model.arch``."""

from meddl.models.ft_transformer import AttentionPooling, FeatureTokenizer, FTTransformer
from meddl.models.mlp import MLP
from meddl.models.registry import available_models, build_model, check_model_params, register_model

__all__ = [
    "MLP",
    "AttentionPooling",
    "FTTransformer",
    "FeatureTokenizer",
    "available_models",
    "build_model",
    "check_model_params",
    "register_model",
]

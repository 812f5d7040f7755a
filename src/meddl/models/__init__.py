"""Networks, one file per family, registered by the name used as ``model.arch``."""

from meddl.models.cnn import SeedCNN, SmallCNN
from meddl.models.ehr import EventTransformer, Retain, SequenceGRU, SequenceLSTM
from meddl.models.ensemble import ENSEMBLE_TASKS, Ensemble
from meddl.models.ft_transformer import AttentionPooling, FeatureTokenizer, FTTransformer
from meddl.models.fusion import FusionNet
from meddl.models.graph import DirectedMPNN, FingerprintMLP, GraphAttentionNetwork
from meddl.models.mlp import MLP
from meddl.models.monai_nets import DenseNet121, ResNet18, ResNet34, ViT
from meddl.models.registry import available_models, build_model, check_model_params, register_model
from meddl.models.segmentation import SegResNet, UNet
from meddl.models.sequence import DanQ, SeedAttention, SequenceCNN, SequenceTransformer
from meddl.models.signal import CNN1D, CNNLSTM, SeedLSTM

__all__ = [
    "CNN1D",
    "CNNLSTM",
    "ENSEMBLE_TASKS",
    "MLP",
    "AttentionPooling",
    "DanQ",
    "DenseNet121",
    "DirectedMPNN",
    "Ensemble",
    "EventTransformer",
    "FTTransformer",
    "FeatureTokenizer",
    "FingerprintMLP",
    "FusionNet",
    "GraphAttentionNetwork",
    "ResNet18",
    "ResNet34",
    "Retain",
    "SeedAttention",
    "SeedCNN",
    "SeedLSTM",
    "SegResNet",
    "SequenceCNN",
    "SequenceGRU",
    "SequenceLSTM",
    "SequenceTransformer",
    "SmallCNN",
    "UNet",
    "ViT",
    "available_models",
    "build_model",
    "check_model_params",
    "register_model",
]

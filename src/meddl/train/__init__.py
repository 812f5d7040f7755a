"""One trainer for every model family (early stopping, checkpoints, resume, DDP)."""

from meddl.train.defaults import batch_size_for
from meddl.train.distributed import (
    DistributedContext,
    current_context,
    init_distributed,
    shutdown_distributed,
)
from meddl.train.objectives import make_loss, output_size, scores_from_outputs, target_tensor
from meddl.train.trainer import Trainer, TrainerSettings, TrainResult, resolve_device, seed_everything, subset

__all__ = [
    "DistributedContext",
    "TrainResult",
    "Trainer",
    "TrainerSettings",
    "batch_size_for",
    "current_context",
    "init_distributed",
    "make_loss",
    "output_size",
    "resolve_device",
    "scores_from_outputs",
    "seed_everything",
    "shutdown_distributed",
    "subset",
    "target_tensor",
]

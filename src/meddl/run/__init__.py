"""One training run and one external evaluation for every data kind and task (the layer above bundles)."""

from meddl.run.common import RunResult
from meddl.run.external import evaluate_external
from meddl.run.training import TrainingRun

__all__ = ["RunResult", "TrainingRun", "evaluate_external"]

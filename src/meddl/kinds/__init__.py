"""Data kinds beyond tables and images, each an adapter to the shared array pipeline.

Importing this package registers every kind (``data.kind`` in the experiment file).
"""

from meddl.kinds.base import KindAdapter, PredictionInputs, Prepared, adapter_for, register_kind
from meddl.kinds.ehr import EHRKind
from meddl.kinds.expression import ExpressionKind
from meddl.kinds.sequence import SequenceKind
from meddl.kinds.signal import SignalKind

__all__ = [
    "EHRKind",
    "ExpressionKind",
    "KindAdapter",
    "PredictionInputs",
    "Prepared",
    "SequenceKind",
    "SignalKind",
    "adapter_for",
    "register_kind",
]

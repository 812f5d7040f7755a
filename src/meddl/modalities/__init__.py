"""Data kinds, one module each, behind one :class:`~meddl.modalities.base.Modality` interface and a registry.

``get_modality("image")`` imports only the module of that kind, so a command that needs one kind does not pay for
the others' imports (nor, for ``kinds()``, for torch). Adding a data kind is one module here (named in
``registry._MODULES``) plus its readers in ``io/``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meddl.modalities.registry import get_modality, kinds, register

if TYPE_CHECKING:
    from meddl.modalities.base import Modality, PredictionInputs, Prepared, batched_outputs, encode_labels

__all__ = [
    "Modality",
    "PredictionInputs",
    "Prepared",
    "batched_outputs",
    "encode_labels",
    "get_modality",
    "kinds",
    "register",
]


def __getattr__(name: str) -> Any:
    # The interface imports torch; the registry's list of kinds must not (``meddl init``, ``meddl --help``).
    if name in {"Modality", "PredictionInputs", "Prepared", "batched_outputs", "encode_labels"}:
        from meddl.modalities import base

        return getattr(base, name)
    raise AttributeError(f"module 'meddl.modalities' has no attribute {name!r}")

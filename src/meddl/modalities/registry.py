"""The registry of data kinds: ``data.kind`` → its :class:`~meddl.modalities.base.Modality` class, its
experiment-file sections and its ``meddl init`` template."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from meddl.modalities.kinds import kinds, modality_module, section_module, template

if TYPE_CHECKING:
    from meddl.modalities.base import Modality

__all__ = ["get_modality", "kinds", "register", "section_module", "template"]

_REGISTERED: dict[str, type[Modality]] = {}


def register(cls: type[Modality]) -> type[Modality]:
    """Class decorator: make ``cls`` the modality of ``data.kind == cls.kind``."""
    _REGISTERED[cls.kind] = cls
    return cls


def get_modality(kind: str) -> type[Modality]:
    """The modality class of ``data.kind`` (imports its module on first use).

    Raises:
        MedDLError: no modality is registered for ``kind``.
    """
    if kind not in _REGISTERED:
        import_module(modality_module(kind))
    return _REGISTERED[kind]

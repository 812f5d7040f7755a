"""The registry of data kinds: ``data.kind`` → its :class:`~meddl.modalities.base.Modality` class, its
experiment-file sections and its ``meddl init`` template."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from meddl.modalities.kinds import has_variant, kinds, modality_module, section_module, template

if TYPE_CHECKING:
    from meddl.modalities.base import Modality

__all__ = ["get_modality", "kinds", "register", "section_module", "template"]

_REGISTERED: dict[tuple[str, str], type[Modality]] = {}


def register(cls: type[Modality]) -> type[Modality]:
    """Class decorator: make ``cls`` the modality of ``data.kind == cls.kind`` (and, for a task variant such as
    segmentation, of ``task == cls.task_variant``)."""
    _REGISTERED[(cls.kind, cls.task_variant or "")] = cls
    return cls


def get_modality(kind: str, task: str | None = None) -> type[Modality]:
    """The modality class of ``data.kind`` for ``task`` (its variant for that task when it has one; imports its
    module on first use).

    Raises:
        MedDLError: no modality is registered for ``kind``.
    """
    key = (kind, task or "") if has_variant(kind, task) else (kind, "")
    if key not in _REGISTERED:
        import_module(modality_module(kind, key[1] or None))
    return _REGISTERED[key]

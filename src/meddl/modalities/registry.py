"""The registry of data kinds: ``data.kind`` → its :class:`~meddl.modalities.base.Modality` class."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from meddl.errors import MedDLError

if TYPE_CHECKING:
    from meddl.modalities.base import Modality

__all__ = ["get_modality", "kinds", "register"]

# data.kind → the module that defines (and registers) its modality
_MODULES: dict[str, str] = {
    "tabular": "meddl.modalities.tabular",
    "image": "meddl.modalities.image",
    "sequence": "meddl.modalities.sequence",
    "expression": "meddl.modalities.expression",
    "signal": "meddl.modalities.signal",
    "ehr": "meddl.modalities.ehr",
}
_REGISTERED: dict[str, type[Modality]] = {}


def register(cls: type[Modality]) -> type[Modality]:
    """Class decorator: make ``cls`` the modality of ``data.kind == cls.kind``."""
    _REGISTERED[cls.kind] = cls
    return cls


def kinds() -> list[str]:
    """Every registered data kind, in the order the documentation lists them."""
    return list(_MODULES)


def get_modality(kind: str) -> type[Modality]:
    """The modality class of ``data.kind`` (imports its module on first use).

    Raises:
        MedDLError: no modality is registered for ``kind``.
    """
    if kind not in _REGISTERED:
        if kind not in _MODULES:
            raise MedDLError(f"unknown data kind {kind!r}; choose one of {', '.join(_MODULES)}")
        import_module(_MODULES[kind])
    return _REGISTERED[kind]

"""The registry of data kinds: ``data.kind`` → its :class:`~meddl.modalities.base.Modality` class, its
experiment-file sections and its ``meddl init`` template."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from meddl.errors import MedDLError

if TYPE_CHECKING:
    from meddl.modalities.base import Modality

__all__ = ["get_modality", "kinds", "register", "section_module", "template"]

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


def _known(kind: str) -> str:
    if kind not in _MODULES:
        raise MedDLError(f"unknown data kind {kind!r}; choose one of {', '.join(_MODULES)}")
    return kind


def section_module(kind: str) -> str:
    """The module holding ``kind``'s experiment-file sections (``Data``, ``Preprocess``): plain pydantic, so the
    experiment file is validated without importing the kind's code."""
    return f"meddl.modalities.sections.{_known(kind)}"


def template(kind: str) -> str:
    """``kind``'s annotated example experiment, as ``meddl init <kind>`` prints it."""
    from importlib import resources

    return resources.files("meddl.modalities").joinpath("templates", f"{_known(kind)}.yaml").read_text(encoding="utf-8")


def get_modality(kind: str) -> type[Modality]:
    """The modality class of ``data.kind`` (imports its module on first use).

    Raises:
        MedDLError: no modality is registered for ``kind``.
    """
    if kind not in _REGISTERED:
        import_module(_MODULES[_known(kind)])
    return _REGISTERED[kind]

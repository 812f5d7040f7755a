"""The list of data kinds and where each keeps its parts; imports nothing heavy (``meddl init``, config checks).

Adding a data kind: one line in ``_MODULES``, then ``meddl/modalities/<kind>.py`` (the modality),
``meddl/modalities/sections/<kind>.py`` (its experiment-file sections), ``meddl/modalities/templates/<kind>.yaml``
(its ``meddl init`` template) and its readers in ``io/``.
"""

from __future__ import annotations

from meddl.errors import MedDLError

__all__ = [
    "ALIASES",
    "TASK_TEMPLATES",
    "canonical",
    "has_variant",
    "kinds",
    "modality_module",
    "section_module",
    "template",
]

# data.kind → the module that defines (and registers) its modality
_MODULES: dict[str, str] = {
    "tabular": "meddl.modalities.tabular",
    "image": "meddl.modalities.image",
    "sequence": "meddl.modalities.sequence",
    "expression": "meddl.modalities.expression",
    "signal": "meddl.modalities.signal",
    "ehr": "meddl.modalities.ehr",
    "molecule": "meddl.modalities.molecule",
    "multimodal": "meddl.modalities.multimodal",
}


# (data.kind, task) → the module of a kind's variant for a task whose data differ in shape (a segmentation run
# reads an image *and its mask* per case); the variant subclasses the kind's modality
_TASK_VARIANTS: dict[tuple[str, str], str] = {
    ("image", "segmentation"): "meddl.modalities.segmentation",
}


def kinds() -> list[str]:
    """Every registered data kind, in the order the documentation lists them."""
    return list(_MODULES)


# what people also call a kind (the demo's part names among them): `meddl init tables` is `meddl init tabular`
ALIASES: dict[str, str] = {
    "table": "tabular",
    "tables": "tabular",
    "images": "image",
    "sequences": "sequence",
    "dna": "sequence",
    "genomics": "sequence",
    "signals": "signal",
    "ecg": "signal",
    "genes": "expression",
    "molecules": "molecule",
    "compounds": "molecule",
    "chemistry": "molecule",
    "fusion": "multimodal",
}


def canonical(kind: str) -> str:
    """``kind`` itself, or the kind an alias names (``tables`` → ``tabular``)."""
    return ALIASES.get(kind, kind)


def _known(kind: str) -> str:
    kind = canonical(kind)
    if kind not in _MODULES:
        raise MedDLError(f"unknown data kind {kind!r}; choose one of {', '.join(_MODULES)}")
    return kind


def section_module(kind: str) -> str:
    """The module holding ``kind``'s experiment-file sections (``Data``, ``Preprocess``): plain pydantic, so the
    experiment file is validated without importing the kind's code."""
    return f"meddl.modalities.sections.{_known(kind)}"


# `meddl init <task>` for a task with a template of its own (the kind it runs on is in the template)
TASK_TEMPLATES: dict[str, str] = {"segmentation": "image_segmentation"}


def template(kind: str) -> str:
    """``kind``'s annotated example experiment, as ``meddl init <kind>`` prints it (or a task's: ``segmentation``)."""
    from importlib import resources

    name = TASK_TEMPLATES.get(kind) or _known(kind)
    return resources.files("meddl.modalities").joinpath("templates", f"{name}.yaml").read_text(encoding="utf-8")


def modality_module(kind: str, task: str | None = None) -> str:
    """The module that defines (and registers) ``kind``'s modality, or its variant for ``task`` if it has one."""
    kind = _known(kind)
    return _TASK_VARIANTS.get((kind, task or ""), _MODULES[kind])


def has_variant(kind: str, task: str | None) -> bool:
    """Whether ``kind`` has a modality of its own for ``task``."""
    return (canonical(kind), task or "") in _TASK_VARIANTS

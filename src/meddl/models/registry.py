"""Architecture names in the experiment file (``model.arch``) mapped to network constructors.

A bundle stores the name and the constructor's arguments next to the weights, so a model is rebuilt from
its bundle alone (no code from the run that trained it is needed).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from torch import nn

from meddl.errors import MedDLError

__all__ = [
    "available_models",
    "build_model",
    "check_model_params",
    "model_class",
    "output_argument",
    "register_model",
    "takes_argument",
]

_REGISTRY: dict[str, type[nn.Module]] = {}
# Arguments the pipeline fills in from the data; a user does not set them in model.*.
DATA_ARGUMENTS = (
    "in_features",
    "out_features",
    "in_channels",
    "out_channels",
    "spatial_dims",
    "vocab_size",
    "max_atoms",
    "atom_features",
    "bond_features",  # a molecule graph's packed layout (models/graph.py)
    "modalities",  # a fused model's packed layout of inputs (models/fusion.py)
    "input_size",  # the segmentation plan's patch, for a network built for one input size (UNETR)
)

M = TypeVar("M", bound=type[nn.Module])


def register_model(name: str) -> Callable[[M], M]:
    """Class decorator: make a network available as ``model.arch: <name>``."""

    def decorate(cls: M) -> M:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered to {_REGISTRY[name].__name__}")
        _REGISTRY[name] = cls
        return cls

    return decorate


def available_models() -> list[str]:
    return sorted(_REGISTRY)


def _constructor(arch: str, source: str) -> type[nn.Module]:
    if arch not in _REGISTRY:
        raise MedDLError(f"{source}: model.arch: unknown architecture {arch!r}; choose one of {available_models()}")
    return _REGISTRY[arch]


def model_class(arch: str) -> type[nn.Module]:
    """The network class registered as ``arch`` (a MedDLError naming ``model.arch`` when there is none)."""
    return _constructor(arch, "model")


def takes_argument(arch: str, name: str) -> bool:
    """Whether ``arch``'s constructor has an argument ``name`` (one the data fills in for some networks only)."""
    return name in inspect.signature(_constructor(arch, "model").__init__).parameters


def user_parameters(arch: str, source: str = "model") -> dict[str, inspect.Parameter]:
    """The constructor arguments a user may set for ``arch`` (data-derived ones excluded)."""
    signature = inspect.signature(_constructor(arch, source).__init__)
    return {
        name: p
        for name, p in signature.parameters.items()
        if name != "self" and name not in DATA_ARGUMENTS and p.kind is not inspect.Parameter.VAR_KEYWORD
    }


def check_model_params(arch: str, params: Mapping[str, Any], source: str = "model") -> None:
    """Raise a MedDLError naming the field if ``params`` are not arguments of ``arch``."""
    allowed = user_parameters(arch, source)
    for name in params:
        if name in DATA_ARGUMENTS:
            raise MedDLError(f"{source}: model.{name} is set from the data; remove it from the experiment file")
        if name not in allowed:
            raise MedDLError(
                f"{source}: model.{name}: unknown argument for arch {arch!r}; its arguments are {sorted(allowed)}"
            )
    _check_param_types(arch, params, source)


def _check_param_types(arch: str, params: Mapping[str, Any], source: str) -> None:
    """Each argument against the constructor's annotation (``hidden: "64"`` would otherwise build layers of 6 and
    4 units): a value of the wrong type is an error naming the field and what it takes."""
    import typing

    from pydantic import TypeAdapter, ValidationError

    try:
        hints = typing.get_type_hints(_constructor(arch, "model").__init__)
    except Exception:  # an annotation that cannot be resolved is not checked here; the constructor still is
        return
    for name, value in params.items():
        hint = hints.get(name)
        if hint is None or hint is Any:
            continue
        try:
            adapter: TypeAdapter[Any] = TypeAdapter(hint)
        except Exception:  # a type pydantic cannot describe (a torch module): leave it to the constructor
            continue
        try:
            adapter.validate_python(value, strict=isinstance(value, str) and hint is not str)
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
            shown = hint.__name__ if isinstance(hint, type) else str(hint)
            shown = shown.replace("typing.", "").replace("collections.abc.", "")
            raise MedDLError(
                f"{source}: model.{name}: {value!r} is not a valid {shown} for arch {arch!r} ({reason})"
            ) from None


def output_argument(arch: str) -> str:
    """The constructor argument that sets the number of outputs: ``out_features`` (tabular networks) or
    ``out_channels`` (convolutional and sequence networks)."""
    parameters = inspect.signature(_constructor(arch, "model").__init__).parameters
    return "out_features" if "out_features" in parameters else "out_channels"


def build_model(arch: str, params: Mapping[str, Any], **data_arguments: Any) -> nn.Module:
    """Instantiate ``arch`` with user ``params`` and data-derived arguments (e.g. ``in_features``)."""
    cls = _constructor(arch, "model")
    check_model_params(arch, params)
    try:
        return cls(**data_arguments, **params)
    except (TypeError, ValueError) as exc:
        raise MedDLError(f"model {arch!r}: invalid arguments {dict(params)}: {exc}") from None

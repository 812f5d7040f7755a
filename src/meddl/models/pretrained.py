"""Transfer learning from a local weights file, for every network MedDL builds.

``model.pretrained: {path: weights.safetensors, freeze: [encoder], strict: false}`` starts training from the
tensors of a file on this machine (nothing is ever downloaded): another run's ``model.safetensors``, or any
PyTorch state dict (read with ``weights_only=True``, so no pickled code runs). Names are matched after
stripping the prefixes that wrappers add (``module.`` from DataParallel/DDP, ``_orig_mod.`` from
``torch.compile``, ``net.`` from MedDL's MONAI wrappers), so weights of a bare MONAI network fit its wrapper.

* Every tensor whose name and shape match is loaded. One whose shape differs — typically the head of a network
  trained for another number of classes — keeps its fresh initialisation and is listed as ``swapped``.
  ``strict: true`` turns any missing, unexpected or swapped tensor into an error.
* ``freeze`` stops parts from training (``requires_grad=False``; the optimiser never updates a parameter that
  gets no gradient): ``encoder`` is every parameter outside the head, ``head`` the head, and any other entry a
  module name or prefix (``features.0``). Batch-norm running statistics are buffers, not parameters: they still
  adapt to the new data in frozen parts.

The head is the network's ``head``: a submodule of that name (most MedDL networks) or a string naming the head
module (the segmentation wrappers). Failing that, for a MONAI ``UNet`` / ``SegResNet`` anywhere in the network, its
output block (``model.2``, ``conv_final``); otherwise the last module with parameters of its own, in registration
order (``net.fc`` of a ResNet, ``net.class_layers.out`` of a DenseNet, ``output`` of a sequence transformer).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from meddl._hashing import file_sha256
from meddl.errors import MedDLError

if TYPE_CHECKING:
    from meddl.sections import PretrainedConfig

__all__ = ["apply_pretrained", "describe_pretrained", "head_modules"]

# prefixes wrappers add to parameter names: DataParallel/DDP, torch.compile, MedDL's MONAI wrappers
KNOWN_PREFIXES = ("module.", "_orig_mod.", "net.")
_LISTED = 20  # names kept in each list of the record; the n_* count says how many there were


def _read_state_dict(path: Path, field: str = "model.pretrained_weights") -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or of a ``torch.save``-d state dict (no pickled code is run).

    Args:
        path: the weights file.
        field: the experiment-file field that named it, for the error messages.

    Raises:
        MedDLError: the file is missing, unreadable, or does not hold a state dict of tensors.
    """
    if not path.is_file():
        raise MedDLError(f"{field}: file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded: Any = load_file(str(path), device="cpu")
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file: say which, without a traceback
        raise MedDLError(f"{field}: cannot read weights from {path}: {exc}") from None
    # Training checkpoints often nest the weights: {"state_dict": {...}} or {"model": {...}}.
    for key in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise MedDLError(f"{field}: {path} does not hold a state dict of tensors")
    return {str(k): v for k, v in loaded.items()}


def _canonical(name: str) -> str:
    """``name`` without the wrapper prefixes it starts with (``module.net.fc.weight`` → ``fc.weight``)."""
    stripped = True
    while stripped:
        stripped = False
        for prefix in KNOWN_PREFIXES:
            if name.startswith(prefix):
                name, stripped = name[len(prefix) :], True
    return name


def _inside(name: str, module: str) -> bool:
    """Whether the parameter or module ``name`` is ``module`` or lies inside it (``""`` is the whole network)."""
    return not module or name == module or name.startswith(module + ".")


def _listed(names: list[str]) -> list[str]:
    return names[:_LISTED]


def head_modules(model: nn.Module) -> list[str]:
    """The module names that make up ``model``'s head (see the module docstring for the rule).

    Args:
        model: the network.

    Returns:
        Qualified module names (``["head"]``, ``["net.fc"]``, ``["net.model.2"]``); ``[""]`` when the network
        has parameters on its root only.
    """
    declared = getattr(model, "head", None)
    if isinstance(declared, str):  # a network that names its head (the segmentation wrappers: ``net.conv_final``)
        return [declared]
    if isinstance(declared, nn.Module) and "head" in dict(model.named_children()):
        return ["head"]
    segmentation = []
    for name, module in model.named_modules():
        kind = type(module)
        if not kind.__module__.startswith("monai."):
            continue
        prefix = f"{name}." if name else ""
        blocks = getattr(module, "model", None)
        if kind.__name__ == "UNet" and isinstance(blocks, nn.Sequential) and len(blocks):
            segmentation.append(f"{prefix}model.{len(blocks) - 1}")  # the last up-sampling block: the output conv
        elif kind.__name__ == "SegResNet" and isinstance(getattr(module, "conv_final", None), nn.Module):
            segmentation.append(f"{prefix}conv_final")
    if segmentation:
        return segmentation
    with_parameters = [name for name, module in model.named_modules() if any(True for _ in module.parameters(False))]
    return with_parameters[-1:]


def _top_level_parts(model: nn.Module) -> list[str]:
    """The names a user sees at the top of the network, below single-child wrappers (``net.conv1``, not ``net``)."""
    module, prefix = model, ""
    while True:
        children = list(module.named_children())
        if len(children) == 1 and not any(True for _ in module.parameters(False)):
            name, module = children[0]
            prefix = f"{prefix}{name}."
            continue
        return [f"{prefix}{name}" for name, _ in children]


def _frozen_parts(model: nn.Module) -> list[str]:
    """The largest modules whose parameters are all frozen, and frozen parameters held by a module not wholly
    frozen (a ViT's ``cls_token``) — the shortest list that names everything frozen."""

    def visit(module: nn.Module, name: str) -> list[str]:
        parameters = list(module.parameters())
        if name and parameters and not any(p.requires_grad for p in parameters):  # the root: name its parts
            return [name]
        found = [f"{name}.{n}" if name else n for n, p in module.named_parameters(recurse=False) if not p.requires_grad]
        for child_name, child in module.named_children():
            found.extend(visit(child, f"{name}.{child_name}" if name else child_name))
        return found

    return visit(model, "")


def _load(model: nn.Module, settings: PretrainedConfig) -> tuple[int, list[str], list[str], list[str]]:
    """Match the file's tensors to the network's and load those that fit; the network is left untouched when
    ``strict`` finds a mismatch. Returns how many were loaded and the missing, unexpected and swapped names."""
    path = Path(settings.path)
    state = _read_state_dict(path, "model.pretrained.path")
    expected = model.state_dict()
    by_canonical: dict[str, str | None] = {}
    for key in expected:  # None marks a canonical name two of the network's tensors share: exact names only
        by_canonical[_canonical(key)] = None if _canonical(key) in by_canonical else key
    matched: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for key, tensor in state.items():
        target = key if key in expected else by_canonical.get(_canonical(key))
        if target is None or target in matched:
            unexpected.append(key)
        else:
            matched[target] = tensor
    swapped = {  # in the network's order (a safetensors file lists its keys sorted)
        key: (tuple(matched[key].shape), tuple(tensor.shape))
        for key, tensor in expected.items()
        if key in matched and tuple(matched[key].shape) != tuple(tensor.shape)
    }
    missing = [key for key in expected if key not in matched]
    if settings.strict and (missing or unexpected or swapped):
        counts = f"({len(missing)} missing, {len(unexpected)} unexpected, {len(swapped)} of another shape)"
        if missing:
            problem = f"key {missing[0]!r} is missing"
        elif unexpected:
            problem = f"unexpected key {unexpected[0]!r}"
        else:
            first, (found, wanted) = next(iter(swapped.items()))
            problem = f"key {first!r} has shape {found} in the file, the network expects {wanted}"
        raise MedDLError(
            f"model.pretrained.path: {path} does not match the network: {problem} {counts}; "
            "set model.pretrained.strict: false to load what matches"
        )
    fitting = {key: tensor for key, tensor in matched.items() if key not in swapped}
    model.load_state_dict(fitting, strict=False)
    return len(fitting), missing, unexpected, list(swapped)


def _freeze(model: nn.Module, entries: list[str], head: list[str]) -> None:
    """Set ``requires_grad=False`` on the parameters each entry names; an entry naming nothing is an error."""
    parameters = dict(model.named_parameters())
    in_head = {name: any(_inside(name, module) for module in head) for name in parameters}
    for entry in entries:
        if entry == "encoder":
            chosen = [name for name in parameters if not in_head[name]]
        elif entry == "head":
            chosen = [name for name in parameters if in_head[name]]
        else:
            chosen = [name for name in parameters if _inside(name, entry) or _inside(_canonical(name), entry)]
        if not chosen:
            why = {"encoder": "every parameter is in the head", "head": "the network has no head parameters"}
            raise MedDLError(
                f"model.pretrained.freeze: {entry!r} matches no parameter of the network"
                + (f" ({why[entry]})" if entry in why else "")
                + f"; use encoder, head or a module name: {', '.join(_top_level_parts(model))}"
            )
        for name in chosen:
            parameters[name].requires_grad_(False)


def apply_pretrained(model: nn.Module, settings: PretrainedConfig | None) -> dict[str, Any] | None:
    """Load ``model.pretrained``'s weights into ``model`` in place and freeze the parts it names.

    Args:
        model: a freshly built network (its initialisation stays where the file does not fit).
        settings: ``path``, ``freeze`` and ``strict`` (the experiment file's ``model.pretrained``), or None.

    Returns:
        None when ``settings`` is None; else the run record's ``model.pretrained``: ``path``, ``sha256`` of the
        file, ``loaded`` (tensors loaded), ``missing`` (the network's tensors the file lacks), ``unexpected``
        (the file's tensors the network lacks), ``swapped`` (tensors of another shape, left fresh), each list
        at most 20 names with its count in ``n_missing`` / ``n_unexpected`` / ``n_swapped``; ``head`` (the
        modules taken as the head), ``freeze`` (as asked), ``frozen`` (the parts frozen) and
        ``n_frozen_parameters``.

    Raises:
        MedDLError: the file is missing or unreadable; ``strict`` and a tensor is missing, unexpected or of another
            shape (naming the file and the first such key); a ``freeze`` entry matches no parameter (listing the
            network's top-level parts).
    """
    if settings is None:
        return None
    path = Path(settings.path)
    head = head_modules(model)
    loaded, missing, unexpected, swapped = _load(model, settings)
    _freeze(model, list(settings.freeze), head)
    frozen = _frozen_parts(model)
    return {
        "path": str(path),
        "sha256": file_sha256(path),
        "loaded": loaded,
        "missing": _listed(missing),
        "n_missing": len(missing),
        "unexpected": _listed(unexpected),
        "n_unexpected": len(unexpected),
        "swapped": _listed(swapped),
        "n_swapped": len(swapped),
        "head": head,
        "freeze": list(settings.freeze),
        "frozen": _listed(frozen),
        "n_frozen_parameters": int(sum(p.numel() for p in model.parameters() if not p.requires_grad)),
    }


def describe_pretrained(record: dict[str, Any]) -> str:
    """One log line for :func:`apply_pretrained`'s record, e.g. ``loaded 42 tensors from weights.safetensors
    (2 swapped: head for another output size; froze encoder: 120,000 parameters)``."""
    notes = []
    if record["n_swapped"]:
        in_head = all(any(_inside(key, module) for module in record["head"]) for key in record["swapped"])
        what = "head for another output size" if in_head else f"another shape, e.g. {record['swapped'][0]!r}"
        notes.append(f"{record['n_swapped']} swapped: {what}")
    if record["n_missing"]:
        notes.append(f"{record['n_missing']} not in the file, left fresh, e.g. {record['missing'][0]!r}")
    if record["n_unexpected"]:
        notes.append(f"{record['n_unexpected']} of the file unused, e.g. {record['unexpected'][0]!r}")
    if record["freeze"]:
        notes.append(f"froze {', '.join(record['freeze'])}: {record['n_frozen_parameters']:,} parameters")
    line = f"loaded {record['loaded']} tensors from {Path(record['path']).name}"
    return f"{line} ({'; '.join(notes)})" if notes else line

"""A run folder is a bundle: everything needed to rebuild the model and predict, checked by sha256 on load.

Layout::

    runs/pima/
      config.yaml        the experiment as run
      model.json         architecture, its arguments, task, classes, threshold, feature schema
      model.safetensors  weights (no pickle)
      preprocess.json    fitted preprocessing state (+ preprocess.npz when it holds arrays)
      metrics.json       test metrics with CIs, baselines, data summary
      model_card.md, report.html, splits.csv
      manifest.json      sha256 of every file above and the bundle hash

Nothing is unpickled: weights are safetensors, state is JSON/NumPy, so loading a bundle runs no code from it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from meddl._hashing import file_sha256
from meddl.errors import MedDLError

__all__ = [
    "BUNDLE_FORMAT",
    "MANIFEST",
    "REQUIRED",
    "load_weights",
    "save_weights",
    "verify_manifest",
    "write_manifest",
]

BUNDLE_FORMAT = "meddl-bundle-1"
MANIFEST = "manifest.json"
REQUIRED = ("config.yaml", "model.json", "model.safetensors", "preprocess.json", "metrics.json")


def write_manifest(folder: Path, files: list[str]) -> str:
    """Hash ``files`` (relative to ``folder``) into ``manifest.json``; returns the bundle hash."""
    hashes = {name: file_sha256(folder / name) for name in sorted(files)}
    bundle_hash = hashlib.sha256("\n".join(f"{k}:{v}" for k, v in hashes.items()).encode()).hexdigest()
    (folder / MANIFEST).write_text(
        json.dumps({"format": BUNDLE_FORMAT, "files": hashes, "bundle_hash": bundle_hash}, indent=2) + "\n"
    )
    return bundle_hash


def verify_manifest(folder: Path) -> str:
    """Check every file against ``manifest.json``; returns the bundle hash."""
    path = folder / MANIFEST
    if not path.exists():
        raise MedDLError(f"{folder}: not a MedDL bundle (no {MANIFEST}); train one with `meddl train`")
    try:
        manifest = json.loads(path.read_text())
        files: dict[str, str] = manifest["files"]
        bundle_hash = str(manifest["bundle_hash"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise MedDLError(f"{path}: unreadable manifest ({exc})") from None
    for name in REQUIRED:
        if name not in files:
            raise MedDLError(f"{path}: the manifest does not list {name}")
    for name, expected in files.items():
        file = folder / name
        if not file.exists():
            raise MedDLError(f"{folder}: bundle file {name} is missing")
        if file_sha256(file) != expected:
            raise MedDLError(
                f"{file}: sha256 does not match the manifest; the bundle was modified after training and will not load"
            )
    return bundle_hash


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """Weights as safetensors. A tensor reachable under two names (a layer also exposed as ``target_layer``
    for Grad-CAM) is stored once, under its first name."""
    stored: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, tensor in model.state_dict().items():
        pointer = tensor.data_ptr()
        if tensor.numel() and pointer in seen:
            continue
        seen.add(pointer)
        stored[name] = tensor.detach().cpu().contiguous()
    save_file(stored, str(path))


def load_weights(model: torch.nn.Module, path: Path, arch: str) -> None:
    """Load safetensors weights into ``model``; a mismatch is an error naming the file.

    Names left out at saving because they alias a stored tensor are filled through that tensor.
    """
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise MedDLError(f"{path}: damaged weights file, cannot be read ({str(exc).splitlines()[0]})") from None
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise MedDLError(f"{path}: weights do not fit {arch}: {str(exc).splitlines()[0]}") from None
    current = model.state_dict()
    loaded_pointers = {current[name].data_ptr() for name in state if name in current}
    really_missing = [name for name in missing if current[name].data_ptr() not in loaded_pointers]
    if really_missing or unexpected:
        raise MedDLError(
            f"{path}: weights do not fit {arch} (missing {sorted(really_missing)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]})"
        )

"""MedDL: deep learning for medicine — clinical tables in, a validated and explainable model out.

The Python API mirrors the CLI::

    import meddl
    result = meddl.Experiment.from_yaml("exp.yaml").run(out="runs/pima")
    predictions = meddl.load_bundle("runs/pima").predict(new_patients)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meddl._version import __version__

__all__ = ["Experiment", "MedDLError", "RunResult", "__version__", "evaluate_external", "load_bundle"]

if TYPE_CHECKING:
    from meddl.bundle import load_bundle
    from meddl.errors import MedDLError
    from meddl.experiment import Experiment, RunResult, evaluate_external

_LAZY = {
    "Experiment": "meddl.experiment",
    "RunResult": "meddl.experiment",
    "evaluate_external": "meddl.experiment",
    "load_bundle": "meddl.bundle",
    "MedDLError": "meddl.errors",
}


def __getattr__(name: str) -> Any:
    # Importing torch takes a second or two; `meddl --help` and `meddl init` should not pay for it.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'meddl' has no attribute {name!r}")

"""Export a bundle's network to ONNX, checked against PyTorch, with a sidecar that says how to use it.

The ONNX graph holds the network only: it takes the bundle's *encoded* features (after imputation,
scaling and one-hot encoding by the preprocessing state in ``preprocess.json``) and returns logits.
``<out>.json`` next to the ``.onnx`` file names the encoded features in order and says how to turn the
logits into probabilities or predictions, so that a runtime without MedDL can read the output correctly.

Example:
    >>> export_onnx("runs/pima", "model.onnx")  # doctest: +SKIP
    PosixPath('model.onnx')
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meddl.bundle import Bundle, load_bundle
from meddl.errors import MedDLError

__all__ = ["ONNX_FORMAT", "TOLERANCE", "export_onnx"]

ONNX_FORMAT = "meddl-onnx-1"
"""Version of the sidecar JSON layout."""

TOLERANCE = 1e-5
"""Largest absolute difference between ONNX Runtime and PyTorch logits that an export may show."""

INPUT_NAME = "features"
OUTPUT_NAME = "logits"
_TRACE_ROWS = 2  # the batch size the graph is traced with; checked on other sizes to prove the axis is dynamic
_CHECK_ROWS = 7


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_batch(bundle: Bundle) -> np.ndarray:
    """(N, ...) rows to compare ONNX Runtime with PyTorch on, shaped as the model's ``input_spec``: for float
    inputs the training mean (tables), zeros and random rows around it; for token inputs random tokens of the
    vocabulary (fixed seed, so an export is reproducible)."""
    spec = bundle.info["input_spec"]
    shape, rng = [int(n) for n in spec["shape"]], np.random.default_rng(0)
    if spec["dtype"].startswith("int"):
        vocabulary = int(bundle.info["data_arguments"].get("vocab_size", 2))
        return rng.integers(0, vocabulary, size=(_CHECK_ROWS, *shape)).astype(np.int64)
    baseline = np.asarray(bundle.info.get("explain_baseline") or np.zeros(shape), dtype=np.float32).reshape(shape)
    random_rows = rng.normal(size=(_CHECK_ROWS - 2, *shape)).astype(np.float32)
    return np.concatenate([baseline[None], np.zeros((1, *shape), dtype=np.float32), baseline + random_rows])


def _output_transform(bundle: Bundle) -> dict[str, Any]:
    """How the ``logits`` output becomes what ``meddl predict`` reports."""
    task, classes = bundle.task, bundle.classes
    if task == "binary":
        threshold = 0.5 if bundle.threshold is None else float(bundle.threshold)
        return {
            "kind": "sigmoid",
            "formula": "probability = 1 / (1 + exp(-logits[:, 0]))",
            "reads_as": f"probability of {classes[1]!r}; predict {classes[1]!r} when probability >= "
            f"{threshold:g} (the bundle's threshold), else {classes[0]!r}",
        }
    if task == "multiclass":
        return {
            "kind": "softmax",
            "axis": 1,
            "formula": "probabilities = softmax(logits, axis=1)",
            "reads_as": f"column k is the probability of classes[k] ({', '.join(map(repr, classes))}); "
            "the prediction is the class with the highest probability",
        }
    scale = bundle.target_scale
    if scale is None:
        return {
            "kind": "identity",
            "formula": "prediction = logits[:, 0]",
            "reads_as": f"the predicted {bundle.info.get('target', 'target')} in its own units",
        }
    mean, std = scale
    return {
        "kind": "affine",
        "mean": mean,
        "std": std,
        "formula": f"prediction = logits[:, 0] * {std!r} + {mean!r}",
        "reads_as": f"the predicted {bundle.info.get('target', 'target')} in its own units "
        "(the network predicts the standardised target)",
    }


def _sidecar(bundle: Bundle, onnx_path: Path, opset: int, max_difference: float) -> dict[str, Any]:
    spec = bundle.info["input_spec"]
    arguments = bundle.info["data_arguments"]
    n_out = int(arguments.get("out_features", arguments.get("out_channels", 1)))
    return {
        "format": ONNX_FORMAT,
        "onnx_file": onnx_path.name,
        "onnx_sha256": _sha256(onnx_path),
        "opset": opset,
        "exporter": f"torch.onnx.export (TorchScript, dynamo=False), torch {torch.__version__}",
        "bundle": {
            "path": str(bundle.path),
            "name": bundle.name,
            "bundle_hash": bundle.bundle_hash,
            "arch": bundle.info["arch"],
            "meddl_version": bundle.info.get("meddl_version"),
        },
        "task": bundle.task,
        "classes": bundle.classes,
        "threshold": bundle.threshold,
        "threshold_rule": bundle.info.get("threshold_rule"),
        "target": bundle.info.get("target"),
        "input": {
            "name": INPUT_NAME,
            "dtype": spec["dtype"],
            "shape": ["batch", *spec["shape"]],
            "kind": bundle.kind,
            **bundle.modality.export_description(),
        },
        "output": {
            "name": OUTPUT_NAME,
            "dtype": "float32",
            "shape": ["batch", n_out],
            "transform": _output_transform(bundle),
        },
        "verification": {
            "rows": _CHECK_ROWS,
            "max_abs_difference": max_difference,
            "tolerance": TOLERANCE,
        },
    }


def _export_graph(model: torch.nn.Module, example_rows: np.ndarray, path: Path, opset: int | None) -> None:
    """Trace ``model`` to ``path`` with the TorchScript exporter and a dynamic batch axis.

    The TorchScript exporter handles ``nn.TransformerEncoder`` without extra packages; its deprecation
    warnings and the tracer's warnings about shape assertions inside ``multi_head_attention_forward`` are
    silenced because the export is checked numerically at other batch sizes afterwards.
    """
    example = torch.as_tensor(example_rows[:_TRACE_ROWS])  # (B, ...) as the model's input_spec
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
        )


def _onnxruntime_logits(path: Path, matrix: np.ndarray) -> np.ndarray:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run([OUTPUT_NAME], {INPUT_NAME: matrix})[0])


def _verify(path: Path, model: torch.nn.Module, matrix: np.ndarray, label: Path) -> float:
    """Check the ONNX file and compare ONNX Runtime with PyTorch on ``matrix`` and one row of it.

    Returns:
        The largest absolute difference between the two sets of logits.

    Raises:
        MedDLError: the file fails ``onnx.checker`` or the logits differ by more than `TOLERANCE`.
    """
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise MedDLError(f"{label}: the exported ONNX model is invalid: {exc}") from None
    worst = 0.0
    with torch.no_grad():
        for rows in (matrix, matrix[:1]):
            expected = model(torch.as_tensor(rows)).float().numpy()
            got = _onnxruntime_logits(path, rows)
            if got.shape != expected.shape:
                raise MedDLError(
                    f"{label}: ONNX Runtime returned logits of shape {got.shape} for {len(rows)} row(s); "
                    f"PyTorch returned {expected.shape}"
                )
            difference = float(np.abs(got - expected).max())
            if not math.isfinite(difference) or difference > TOLERANCE:
                raise MedDLError(
                    f"{label}: ONNX Runtime and PyTorch disagree by {difference:.3g} on {len(rows)} row(s) "
                    f"(allowed {TOLERANCE:g}); the export is not kept"
                )
            worst = max(worst, difference)
    return worst


def _check_out(out: Path) -> None:
    if out.is_dir():
        raise MedDLError(f"{out}: is a folder; give a file name for the ONNX model, e.g. {out / 'model.onnx'}")
    if not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)


def export_onnx(bundle: str | Path, out: str | Path, *, opset: int | None = None) -> Path:
    """Export a bundle's network to ONNX and write ``<out>.json`` describing its input and output.

    The graph takes ``features``, float32 of shape (batch, n_encoded_features): rows already encoded by
    the bundle's preprocessing (``preprocess.json``). It returns ``logits`` of shape (batch, out_features):
    apply sigmoid (binary), softmax (multiclass) or ``* std + mean`` (regression) as the sidecar says.
    The export is checked with ``onnx.checker`` and ONNX Runtime must reproduce the PyTorch logits to
    within `TOLERANCE` (absolute); otherwise nothing is written.

    Args:
        bundle: the run folder written by ``meddl train`` (verified by sha256 on load).
        out: the ``.onnx`` file to write; the sidecar goes to ``<out>.json`` (e.g. ``model.onnx.json``).
        opset: ONNX opset version; the exporter's default when None.

    Returns:
        The path of the ``.onnx`` file.

    Raises:
        MedDLError: the bundle does not load or verify, ``out`` is a folder, ``opset`` is not supported,
            or the exported graph fails its checks.
    """
    if opset is not None and (isinstance(opset, bool) or not isinstance(opset, int)):
        raise MedDLError(f"opset must be an integer ONNX opset version; got {opset!r}")
    loaded = load_bundle(bundle)
    out = Path(out)
    _check_out(out)
    model = loaded.model.float().eval()
    reason = getattr(model, "onnx_unsupported", None)
    if reason:  # known before trying: the exporter would fail with a message about its own internals
        raise MedDLError(
            f"{loaded.path}: ONNX cannot express arch {loaded.info['arch']!r} ({loaded.kind} model): {reason}"
        )
    check = _check_batch(loaded)
    # Written beside the target and moved into place only after every check passes.
    handle, temporary = tempfile.mkstemp(suffix=".onnx", prefix=f".{out.name}.", dir=out.parent)
    os.close(handle)
    staging = Path(temporary)
    try:
        try:
            _export_graph(model, check, staging, opset)
        except Exception as exc:  # the exporter raises many types (ValueError, OnnxExporterError, ...)
            raise MedDLError(
                f"{loaded.path}: ONNX cannot express arch {loaded.info['arch']!r} ({loaded.kind} model)"
                + (f" at opset {opset}" if opset is not None else "")
                + f": {type(exc).__name__}: {exc}"
            ) from None
        max_difference = _verify(staging, model, check, out)
        import onnx

        written_opset = next(
            (entry.version for entry in onnx.load(str(staging)).opset_import if entry.domain in ("", "ai.onnx")),
            opset or 0,
        )
        staging.replace(out)
    finally:
        staging.unlink(missing_ok=True)
    sidecar = out.with_name(out.name + ".json")
    sidecar.write_text(json.dumps(_sidecar(loaded, out, int(written_opset), max_difference), indent=2) + "\n")
    return out

"""What the JSON routes of array bundles (sequences, EHR stays) share: prediction items and the audited answer."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from meddl.serve.schemas import NOTICE
from meddl.serve.settings import Settings

__all__ = ["check_batch", "prediction_item", "respond"]


def check_batch(n: int, settings: Settings, what: str) -> None:
    """413 when one request holds more than ``settings.max_batch`` cases."""
    if n > settings.max_batch:
        raise HTTPException(413, detail=f"{n} {what} in one request; the limit is {settings.max_batch}")


def prediction_item(bundle: Any, case_id: str, score: np.ndarray | float, note: str = "") -> dict[str, Any]:
    """One scored case as the API's prediction item (the shape of ``schemas.Prediction``).

    Args:
        bundle: A :class:`~meddl.bundle.Bundle` (task, classes, threshold; its ``labels`` applies the threshold).
        case_id: The client's id of the case, echoed back.
        score: Its output of ``bundle.scores``: P(positive) (binary), class probabilities (multiclass,
            multilabel) or the predicted value (regression).
        note: Anything the client should know about how the case was read ("" when nothing).

    Returns:
        ``case_id``, ``label`` (the class at the bundle's threshold), ``probability`` (binary),
        ``probabilities``, ``prediction`` (regression), ``threshold`` and ``note``.
    """
    classes = bundle.classes
    item: dict[str, Any] = {
        "case_id": case_id,
        "label": None,
        "probability": None,
        "probabilities": None,
        "prediction": None,
        "threshold": bundle.threshold,
        "note": note,
    }
    values = np.atleast_1d(np.asarray(score, dtype=np.float64))
    if bundle.task == "regression":
        item["prediction"] = float(values[0])
    elif bundle.task == "binary":
        positive = float(values[0])
        item.update(
            probability=positive,
            probabilities={classes[0]: 1.0 - positive, classes[1]: positive},
            label=bundle.labels(values[:1])[0],
        )
    else:  # multiclass: the most probable class; multilabel: every class at 0.5
        item["probabilities"] = {c: float(p) for c, p in zip(classes, values, strict=True)}
        item["label"] = bundle.labels(values[None, :])[0]
    return item


def respond(request: Request, bundle: Any, items: list[dict[str, Any]], *, explain: bool) -> JSONResponse:
    """Record the predictions in the audit log (outputs only, never inputs) and answer them."""
    request_id = request.state.request_id
    request.app.state.audit.record(
        request_id=request_id,
        model=bundle.name,
        bundle_hash=bundle.bundle_hash,
        endpoint="explain" if explain else "predict",
        outputs=[{k: item.get(k) for k in ("case_id", "label", "probability", "prediction")} for item in items],
    )
    body = {"model": bundle.name, "bundle_hash": bundle.bundle_hash, "request_id": request_id, "predictions": items}
    return JSONResponse({**body, "notice": NOTICE})

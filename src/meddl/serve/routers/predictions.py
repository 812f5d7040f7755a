"""``POST /models/{name}/predict`` and ``/explain``, one typed route pair per served model.

The body schema of each route is generated from that model's bundle (see ``meddl.serve.schemas``), so the
OpenAPI page documents every input column and FastAPI answers a wrong type, a missing field or an unseen
category with 422 naming it.
"""

# No `from __future__ import annotations` here: FastAPI must see the generated model classes, which are
# local variables of `add_model_routes`, as real annotations.

from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from meddl.serve.registry import ServedModel
from meddl.serve.schemas import NOTICE, PredictResponse
from meddl.serve.settings import Settings, get_settings

__all__ = ["add_model_routes"]


def _frame(served: ServedModel, body: BaseModel) -> tuple[pd.DataFrame, list[Any]]:
    records = [record.model_dump(by_alias=True) for record in body.records]  # type: ignore[attr-defined]
    case_ids = [record.pop("case_id", None) for record in records]
    columns = list(served.bundle.info["column_types"])
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame.index = pd.RangeIndex(len(frame))
    return frame, case_ids


def _predictions(served: ServedModel, frame: pd.DataFrame, case_ids: list[Any], explain: bool) -> list[dict[str, Any]]:
    """Score validated records. The schema already refused unseen categories and (for models trained with
    ``missing: drop``) nulls, so every row is scorable; a null sent for an imputing model is noted."""
    bundle = served.bundle
    matrix, usable = bundle.encode(frame)
    scores = bundle.scores_of(matrix[usable]) if usable.any() else np.zeros((0,))
    score_of = dict(zip(np.flatnonzero(usable).tolist(), scores, strict=True))
    missing = frame.isna().to_numpy()
    columns = frame.columns
    contributions = bundle.contributions(frame, source="request") if explain else None
    classes = bundle.classes
    out = []
    for i in range(len(frame)):
        imputed = [str(columns[j]) for j in np.flatnonzero(missing[i])]
        item: dict[str, Any] = {
            "case_id": case_ids[i],
            "label": None,
            "probability": None,
            "probabilities": None,
            "prediction": None,
            "threshold": None,
            "note": f"imputed (not measured): {', '.join(imputed)}" if imputed else "",
            "contributions": None,
        }
        score = score_of.get(i)
        if score is None:
            item["note"] = "not scored: " + (item["note"] or "missing values")
        elif bundle.task == "regression":
            item["prediction"] = float(score)
        elif bundle.task == "binary":
            positive = float(score)
            item["probabilities"] = {classes[0]: 1.0 - positive, classes[1]: positive}
            item["probability"] = positive
            item["threshold"] = bundle.threshold
            item["label"] = classes[1] if positive >= float(bundle.threshold or 0.5) else classes[0]
        else:
            item["probabilities"] = {c: float(p) for c, p in zip(classes, score, strict=True)}
            item["label"] = classes[int(np.argmax(score))]
        if contributions is not None:
            item["contributions"] = contributions[i]
        out.append(item)
    return out


def add_model_routes(router: APIRouter, served: ServedModel) -> None:
    """Register the predict and explain routes of one model, typed with its generated request model."""
    RequestBody = served.request_model
    name = served.name

    def run(body: BaseModel, request: Request, settings: Settings, explain: bool) -> JSONResponse:
        n = len(body.records)  # type: ignore[attr-defined]
        if n > settings.max_batch:
            raise HTTPException(413, detail=f"{n} records in one request; the limit is {settings.max_batch}")
        frame, case_ids = _frame(served, body)
        predictions = _predictions(served, frame, case_ids, explain)
        request_id = request.state.request_id
        request.app.state.audit.record(
            request_id=request_id,
            model=name,
            bundle_hash=served.bundle.bundle_hash,
            endpoint="explain" if explain else "predict",
            outputs=[{k: p[k] for k in ("case_id", "label", "probability", "prediction")} for p in predictions],
        )
        # Built as plain data and returned as JSON directly: PredictResponse documents the shape in OpenAPI,
        # but validating our own output again would cost a second pass per request.
        return JSONResponse(
            {
                "model": name,
                "bundle_hash": served.bundle.bundle_hash,
                "request_id": request_id,
                "predictions": predictions,
                "notice": NOTICE,
            }
        )

    # predict is a short CPU step (one forward pass): run it on the event loop, no thread hand-off.
    async def predict(body: RequestBody, request: Request, settings: Settings = Depends(get_settings)) -> JSONResponse:  # type: ignore[valid-type]
        return run(body, request, settings, explain=False)

    # explain integrates gradients (tens of ms): keep it in the thread pool so it cannot stall other requests.
    def explain(body: RequestBody, request: Request, settings: Settings = Depends(get_settings)) -> JSONResponse:  # type: ignore[valid-type]
        return run(body, request, settings, explain=True)

    router.add_api_route(
        f"/models/{name}/predict",
        predict,
        methods=["POST"],
        response_model=PredictResponse,
        summary=f"Predict with {name}",
        description="Probabilities and the label at the model's threshold for one or more cases.",
        tags=[name],
        operation_id=f"predict_{served.record_model.__name__}",
    )
    router.add_api_route(
        f"/models/{name}/explain",
        explain,
        methods=["POST"],
        response_model=PredictResponse,
        summary=f"Predict and explain with {name}",
        description="As predict, plus each case's top contributing variables (integrated gradients).",
        tags=[name],
        operation_id=f"explain_{served.record_model.__name__}",
    )

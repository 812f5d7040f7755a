"""``POST /models/{name}/predict`` and ``/explain``, one typed route pair per served model.

The body schema of each route is generated from that model's bundle (see ``meddl.serve.schemas``), so the
OpenAPI page documents every input column and FastAPI answers a wrong type, a missing field or an unseen
category with 422 naming it.
"""

# No `from __future__ import annotations` here: FastAPI must see the generated model classes, which are
# local variables of `add_model_routes`, as real annotations.

import threading
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from meddl.serve.registry import ServedModel
from meddl.serve.routers._arrays import prediction_item
from meddl.serve.schemas import NOTICE, PredictResponse
from meddl.serve.settings import Settings, get_settings

__all__ = ["add_file_routes", "add_model_routes"]


def _records(served: ServedModel, body: BaseModel) -> tuple[list[dict[str, Any]], list[Any]]:
    """The validated records as plain dicts keyed by column name, and their case ids."""
    records = [record.model_dump(by_alias=True) for record in body.records]  # type: ignore[attr-defined]
    case_ids = [record.pop("case_id", None) for record in records]
    return records, case_ids


def _predictions(
    served: ServedModel, records: list[dict[str, Any]], case_ids: list[Any], explain: bool
) -> list[dict[str, Any]]:
    """Score validated records. The schema already refused unseen categories and (for models trained with
    ``missing: drop``) nulls, so every row is scorable; a null sent for an imputing model is noted.

    The records are encoded directly, without a DataFrame: a few records per request, where pandas would cost
    more than the model."""
    bundle = served.bundle
    modality: Any = bundle.modality  # a records-style modality: encode_records, contributions
    matrix, usable = modality.encode_records(records)
    scores = bundle.scores(matrix[usable]) if usable.any() else np.zeros((0,))
    score_of = dict(zip(np.flatnonzero(usable).tolist(), scores, strict=True))
    columns = list(bundle.info["column_types"])
    contributions = modality.contributions(bundle.model, records, matrix, usable) if explain else None
    out = []
    for i, record in enumerate(records):
        imputed = [column for column in columns if record.get(column) is None]
        note = f"imputed (not measured): {', '.join(imputed)}" if imputed else ""
        score = score_of.get(i)
        if score is None:
            item: dict[str, Any] = {**prediction_item(bundle, case_ids[i], 0.0), "label": None}
            item.update(probability=None, probabilities=None, prediction=None, threshold=None)
            item["note"] = "not scored: " + (note or "missing values")
        else:
            item = prediction_item(bundle, case_ids[i], score, note)
            if bundle.task != "binary":
                item["threshold"] = None
        item["contributions"] = None
        if contributions is not None:
            item["contributions"] = contributions[i]
        out.append(item)
    return out


def add_model_routes(router: APIRouter, served: ServedModel) -> None:
    """Register the predict and explain routes of one model, typed with its generated request model."""
    RequestBody = served.request_model
    record_name = served.record_model.__name__ if served.record_model is not None else served.name
    name = served.name

    def run(body: BaseModel, request: Request, settings: Settings, explain: bool) -> JSONResponse:
        n = len(body.records)  # type: ignore[attr-defined]
        if n > settings.max_batch:
            raise HTTPException(413, detail=f"{n} records in one request; the limit is {settings.max_batch}")
        records, case_ids = _records(served, body)
        predictions = _predictions(served, records, case_ids, explain)
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
        operation_id=f"predict_{record_name}",
    )
    router.add_api_route(
        f"/models/{name}/explain",
        explain,
        methods=["POST"],
        response_model=PredictResponse,
        summary=f"Predict and explain with {name}",
        description="As predict, plus each case's top contributing variables (integrated gradients).",
        tags=[name],
        operation_id=f"explain_{record_name}",
    )


def add_file_routes(router: APIRouter, served: ServedModel) -> None:
    """Predict / explain for every model that takes an uploaded file (multipart field ``file``): an image, or a
    file of cases (sequences, an expression matrix, signal records) — whatever the modality's ``upload_suffixes``
    accept and its ``read_for_prediction`` reads.

    Every case in the file gets a prediction (or a note saying why it could not be scored); explain adds each
    case's explanation as its modality draws it — a heat map (images, ``heatmap_png``), an attribution logo
    (sequences) or the trace with attribution over time (signals) as ``explanation_png``, the top genes as text."""
    import tempfile
    from pathlib import Path

    from fastapi import File, UploadFile

    from meddl.errors import MedDLError

    name = served.name
    bundle = served.bundle
    suffixes = bundle.modality.upload_suffixes
    probability_columns = [f"probability_{c}" for c in bundle.classes]
    # Grad-CAM hooks the model's target layer while it runs: a forward pass of another request in between (the
    # routes run in the thread pool) would feed the hook its activations and break the gradient graph. Model work
    # of one served model is therefore serialised; reading and decoding uploads stays concurrent.
    model_lock = threading.Lock()

    def run(upload: UploadFile, request: Request, settings: Settings, explain: bool) -> JSONResponse:
        filename = upload.filename or "upload"
        suffix = next((s for s in suffixes if filename.lower().endswith(s)), None)
        if suffix is None:
            raise HTTPException(
                415, detail=f"{filename!r}: expected one of {', '.join(suffixes)} (what a {served.kind} model takes)"
            )
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"upload{suffix}"
            path.write_bytes(upload.file.read())

            def shown(text: str) -> str:
                """The server's temporary path never reaches the client: the upload's own name stands for it."""
                return text.replace(str(path), filename)

            try:
                cases = bundle.read(path)
                # Counted before any scoring or explaining, so an oversized file costs no model time.
                if len(cases.ids) > settings.max_batch:
                    raise HTTPException(
                        413, detail=f"{len(cases.ids)} cases in one file; the limit is {settings.max_batch}"
                    )
                if not cases.usable.any():  # e.g. a single signal record that cannot be read
                    reasons = "; ".join(dict.fromkeys(n.removeprefix("not scored: ") for n in cases.notes if n))
                    raise MedDLError(reasons or "no case in the file can be scored")
                with model_lock:
                    frame = bundle.predict_cases(cases, explain_dir=Path(folder) / "explained" if explain else None)
            except MedDLError as exc:
                raise HTTPException(422, detail=f"{filename}: cannot be used: {shown(str(exc))}") from None
            items = [_file_item(bundle, row, probability_columns, explain) for row in frame.to_dict("records")]
        for item in items:
            item["case_id"] = shown(str(item["case_id"]))
            item["note"] = shown(str(item["note"]))
        request_id = request.state.request_id
        request.app.state.audit.record(
            request_id=request_id,
            model=name,
            bundle_hash=bundle.bundle_hash,
            endpoint="explain" if explain else "predict",
            outputs=[{k: item.get(k) for k in ("case_id", "label", "probability", "prediction")} for item in items],
        )
        body = {"model": name, "bundle_hash": bundle.bundle_hash, "request_id": request_id, "predictions": items}
        return JSONResponse({**body, "notice": NOTICE})

    described = f"one {served.kind} file ({', '.join(suffixes)})"

    def predict(
        request: Request,
        file: UploadFile = File(..., description=described),
        settings: Settings = Depends(get_settings),
    ) -> JSONResponse:
        return run(file, request, settings, explain=False)

    def explain(
        request: Request,
        file: UploadFile = File(..., description=described),
        settings: Settings = Depends(get_settings),
    ) -> JSONResponse:
        return run(file, request, settings, explain=True)

    for action, endpoint in (("predict", predict), ("explain", explain)):
        router.add_api_route(
            f"/models/{name}/{action}",
            endpoint,
            methods=["POST"],
            summary=f"{action.title()} with {name} ({served.kind} file upload)",
            description=f"Upload {described}; every case in it is scored. Explain adds each case's explanation.",
            tags=[name],
            operation_id=f"{action}_{name.replace('-', '_')}",
        )


def _file_item(bundle: Any, row: dict[str, Any], probability_columns: list[str], explain: bool) -> dict[str, Any]:
    """One case of an uploaded file as the API's prediction item."""
    import base64
    from pathlib import Path

    note = str(row.get("note") or "")
    item: dict[str, Any] = {"case_id": row.get("id", row.get("path")), "note": note, "threshold": bundle.threshold}
    scored = not note.startswith("not scored")
    if bundle.task == "regression":
        item["prediction"] = float(row["prediction"]) if scored else None
    elif scored:
        probabilities = {
            c: float(row[col]) for c, col in zip(bundle.classes, probability_columns, strict=True) if col in row
        }
        if bundle.task == "binary":
            positive = float(row[probability_columns[1]])
            probabilities = {bundle.classes[0]: 1.0 - positive, bundle.classes[1]: positive}
            item["probability"] = positive
        item["probabilities"] = probabilities
        item["label"] = row.get("prediction")
    if explain and scored:
        column = bundle.modality.explanation_column  # "explanation", or "heatmap" for images
        explanation = str(row.get(column) or "")
        if explanation.endswith(".png") and Path(explanation).is_file():
            item[f"{column}_png"] = base64.b64encode(Path(explanation).read_bytes()).decode("ascii")
        else:
            item[column] = explanation
    return item

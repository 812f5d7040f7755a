"""``POST /models/{name}/predict`` and ``/explain``: the one prediction router, for every data kind.

What a route accepts comes from the model's modality: a JSON body typed by its ``request_model`` (table records,
EHR stays as event-store rows, DNA sequences as text) on its ``json_route``, and an uploaded file (an image, a file
of cases) on ``/predict`` when it has ``upload_suffixes``. The body schema is generated per served model, so the
OpenAPI page documents every input field and FastAPI answers a wrong type, a missing field or an unseen category
with a 422 naming it. Every answer is audited (outputs only) and carries the decision-support notice.
"""

# No `from __future__ import annotations` here: FastAPI must see the generated model classes, which are
# local variables of `add_json_routes`, as real annotations.

import threading
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from meddl.serve.registry import ServedModel
from meddl.serve.schemas import NOTICE, PredictResponse
from meddl.serve.settings import Settings, get_settings

__all__ = ["add_model_routes", "prediction_item"]


def add_model_routes(router: APIRouter, served: ServedModel) -> None:
    """Register every prediction route of one served model: its JSON routes and its upload routes."""
    if served.request_model is not None:
        add_json_routes(router, served)
    if served.bundle.modality.upload_suffixes:
        add_file_routes(router, served)
    if served.request_style == "upload_inputs":
        add_input_routes(router, served)


def check_batch(n: int, settings: Settings, what: str) -> None:
    """413 when one request holds more than ``settings.max_batch`` cases."""
    if n > settings.max_batch:
        raise HTTPException(413, detail=f"{n} {what} in one request; the limit is {settings.max_batch}")


def prediction_item(bundle: Any, case_id: Any, score: np.ndarray | float | None, note: str = "") -> dict[str, Any]:
    """One case as the API's prediction item (the shape of ``schemas.Prediction``).

    Args:
        bundle: A :class:`~meddl.bundle.Bundle` (task, classes, threshold; its ``labels`` applies the threshold).
        case_id: The client's id of the case, echoed back.
        score: Its output of ``bundle.scores``: P(positive) (binary), class probabilities (multiclass,
            multilabel) or the predicted value (regression); None for a case that could not be scored.
        note: Anything the client should know about how the case was read ("" when nothing).

    Returns:
        ``case_id``, ``label`` (the class at the bundle's threshold), ``probability`` (binary),
        ``probabilities``, ``prediction`` (regression), ``threshold`` and ``note``; a survival model gives
        ``risk``, ``survival`` (S at each horizon), ``median_survival`` (None when not reached) and
        ``survival_curve`` (``time``, ``survival``) instead of a label.
    """
    classes = bundle.classes
    item: dict[str, Any] = {
        "case_id": case_id,
        "label": None,
        "probability": None,
        "probabilities": None,
        "prediction": None,
        "threshold": bundle.threshold if score is not None else None,
        "note": note,
    }
    if score is None:
        return item
    values = np.atleast_1d(np.asarray(score, dtype=np.float64))
    state = bundle.survival
    if state is not None:  # risk, survival at each horizon, median survival time and the survival curve
        parts = state.split(values[None, :])
        median = float(parts["median"][0])
        item.update(
            threshold=None,
            risk=float(parts["risk"][0]),
            survival={f"{h:g}": float(v) for h, v in zip(state.horizons, parts["survival"][0], strict=True)},
            median_survival=median if np.isfinite(median) else None,
            survival_curve={"time": state.curve_times, "survival": [float(v) for v in parts["curve"][0]]},
        )
        if "cif" in parts:  # competing causes: each cause's cumulative incidence by each horizon
            item["cumulative_incidence"] = {
                cause: {f"{h:g}": float(v) for h, v in zip(state.horizons, parts["cif"][0, k], strict=True)}
                for k, cause in enumerate(state.causes)
            }
    elif bundle.task == "regression":
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
    """Record the predictions in the audit log (outputs only, never inputs) and answer them.

    Built as plain data and returned as JSON directly: ``PredictResponse`` documents the shape in OpenAPI, but
    validating our own output again would cost a second pass per request. A case whose output holds a number
    that is not finite (an input so far outside the training range that the model overflows) is answered as not
    scored, with a note: its label would be meaningless, and JSON has no NaN."""
    items = [item if _all_finite(item) else _not_finite(bundle, item) for item in items]
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


_NOT_FINITE = (
    "not scored: the model's output for this case is not a finite number (is an input far outside the training "
    "range, or in another unit?)"
)


def _all_finite(value: Any) -> bool:
    """Whether every number in a prediction item (nested dicts and lists included) is finite."""
    if isinstance(value, float | np.floating):
        return bool(np.isfinite(value))
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_all_finite(v) for v in value)
    return True


def _not_finite(bundle: Any, item: dict[str, Any]) -> dict[str, Any]:
    note = str(item.get("note") or "")
    return prediction_item(bundle, item.get("case_id"), None, f"{_NOT_FINITE}; {note}" if note else _NOT_FINITE)


def json_items(served: ServedModel, body: BaseModel, *, explain: bool) -> list[dict[str, Any]]:
    """Score every case of a validated JSON body, in the body's order; explain adds what the modality's
    ``explain_request`` gives each case (contributions, attributions and a picture)."""
    bundle = served.bundle
    modality = bundle.modality
    cases = modality.read_request(body)
    rows = np.flatnonzero(cases.usable)
    scores = bundle.scores(cases.inputs) if len(rows) else np.zeros((0,))
    score_of = dict(zip(rows.tolist(), scores, strict=True))
    sets_of: dict[int, dict[str, Any]] = {}
    if bundle.judges_uncertainty and len(rows):
        matrix = np.asarray(scores, dtype=np.float64).reshape(len(rows), -1)
        # a survival model's median may be infinite (never reached): only its risk must be a number
        finite = np.isfinite(matrix[:, :1] if bundle.survival is not None else matrix).all(axis=1)
        groups = bundle.case_groups(cases)
        groups = groups[finite] if groups is not None else None
        judged = bundle.uncertainty(scores[finite], groups)
        if groups is not None:  # a group without its own threshold: the note says the pooled one was used
            for item, pooled in zip(judged, bundle.group_notes(groups), strict=True):
                if pooled:
                    item["group_note"] = pooled
        sets_of = dict(zip(rows[finite].tolist(), judged, strict=True))
    items = []
    for i, (case_id, note) in enumerate(zip(cases.ids, cases.notes, strict=True)):
        judged_case = dict(sets_of.get(i, {}))
        group_note = judged_case.pop("group_note", "")
        if group_note:
            note = f"{note}; {group_note}" if note else group_note
        items.append({**prediction_item(bundle, case_id, score_of.get(i), note), **judged_case})
    if explain:
        for item, extra in zip(items, modality.explain_request(bundle.model, cases, scores), strict=True):
            item.update(extra)
    return items


def add_json_routes(router: APIRouter, served: ServedModel) -> None:
    """Register the modality's JSON route pair (``json_route`` and its explain twin), typed with its generated
    request model."""
    RequestBody = served.request_model
    name = served.name
    modality = served.bundle.modality
    predict_action = str(modality.json_route)
    explain_action = predict_action.replace("predict", "explain", 1)
    counted = modality.request_items

    def run(body: BaseModel, request: Request, settings: Settings, explain: bool) -> JSONResponse:
        check_batch(len(getattr(body, counted)), settings, counted)
        errors = modality.request_errors(body)
        if errors:
            raise RequestValidationError(errors)
        items = json_items(served, body, explain=explain)
        return respond(request, served.bundle, items, explain=explain)

    # Explain (integrated gradients) and slow reads (a DuckDB store) run in the thread pool, where they cannot stall
    # other requests; a quick predict (one forward pass over a few encoded records) runs on the event loop, with no
    # thread hand-off.
    if modality.quick_requests:

        async def predict(
            body: RequestBody,  # type: ignore[valid-type]
            request: Request,
            settings: Settings = Depends(get_settings),
        ) -> JSONResponse:
            return run(body, request, settings, explain=False)

    else:

        def predict(body: RequestBody, request: Request, settings: Settings = Depends(get_settings)) -> JSONResponse:  # type: ignore[valid-type, misc]
            return run(body, request, settings, explain=False)

    def explain(body: RequestBody, request: Request, settings: Settings = Depends(get_settings)) -> JSONResponse:  # type: ignore[valid-type]
        return run(body, request, settings, explain=True)

    operation = name.replace("-", "_")
    what = f"{served.kind} cases as JSON"
    for action, endpoint, text in (
        (predict_action, predict, "Probabilities and the label at the model's threshold for every case."),
        (explain_action, explain, "As predict, plus each case's explanation (integrated gradients)."),
    ):
        router.add_api_route(
            f"/models/{name}/{action}",
            endpoint,
            methods=["POST"],
            response_model=PredictResponse,
            summary=f"{action.replace('_', ' ').capitalize()} with {name} ({what})",
            description=text,
            tags=[name],
            operation_id=f"{action}_{operation}",
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
                segmentation = bundle.task == "segmentation"  # the mask and its overlay are the prediction
                with model_lock:
                    frame = bundle.predict_cases(
                        cases,
                        explain_dir=Path(folder) / "explained" if explain or segmentation else None,
                        mask_dir=Path(folder) / "masks" if segmentation else None,
                    )
            except MedDLError as exc:
                raise HTTPException(422, detail=f"{filename}: cannot be used: {shown(str(exc))}") from None
            items = [_file_item(bundle, row, probability_columns, explain) for row in frame.to_dict("records")]
        for item in items:
            item["case_id"] = shown(str(item["case_id"]))
            item["note"] = shown(str(item["note"]))
            if "mask_file" in item:  # named after the upload: scan.nii.gz → scan_mask.nii.gz
                stem = filename[: -len(suffix)] if filename.lower().endswith(suffix) else filename
                item["mask_file"]["name"] = item["mask_file"]["name"].replace("upload", stem, 1)
        return respond(request, bundle, items, explain=explain)

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


def add_input_routes(router: APIRouter, served: ServedModel) -> None:
    """Predict / explain one patient of a model over several inputs (a fused model): a multipart form with a JSON
    ``record`` field (the patient id and inputs given as values, e.g. a table's columns) and one file field per
    input given as a file (an image, an expression profile). The modality's ``read_upload`` turns them into the
    inputs layout; an input left out is missing for that patient, and the prediction uses the others."""
    import json
    import tempfile
    from pathlib import Path

    from fastapi.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile

    from meddl.errors import MedDLError

    name, bundle = served.name, served.bundle
    probability_columns = [f"probability_{c}" for c in bundle.classes]
    model_lock = threading.Lock()

    def score(record: dict[str, Any], uploads: dict[str, tuple[str, bytes]], explain: bool) -> list[dict[str, Any]]:
        with tempfile.TemporaryDirectory() as folder:
            files = {}
            for field, (filename, content) in uploads.items():
                safe = Path(filename).name or field
                path = Path(folder) / f"{field}-{safe}"
                path.write_bytes(content)
                files[field] = path
            try:
                cases = bundle.modality.read_upload(record, files)
                if not cases.usable.any():
                    reasons = "; ".join(dict.fromkeys(n.removeprefix("not scored: ") for n in cases.notes if n))
                    raise MedDLError(reasons or "no input could be read")
                with model_lock:
                    frame = bundle.predict_cases(cases, explain=explain)
            except MedDLError as exc:
                raise HTTPException(422, detail=str(exc).replace(folder + "/", "")) from None
            items = []
            for row in frame.to_dict("records"):
                item = _file_item(bundle, row, probability_columns, explain)
                item["case_id"] = str(row.get("patient_id", item["case_id"]))
                item["inputs"] = str(row.get("inputs", ""))
                items.append(item)
            return items

    async def run(request: Request, explain: bool) -> JSONResponse:
        form = await request.form()
        record: dict[str, Any] = {}
        if form.get("record") is not None:
            try:
                record = json.loads(str(form.get("record")))
            except json.JSONDecodeError as exc:
                raise HTTPException(422, detail=f"record: not JSON ({exc.msg} at character {exc.pos})") from None
            if not isinstance(record, dict):
                raise HTTPException(422, detail="record: expected a JSON object of the patient's inputs")
        uploads = {}
        for field, value in form.multi_items():
            if isinstance(value, UploadFile):
                uploads[field] = (value.filename or field, await value.read())
        items = await run_in_threadpool(score, record, uploads, explain)
        return respond(request, bundle, items, explain=explain)

    async def predict(request: Request) -> JSONResponse:
        return await run(request, explain=False)

    async def explain(request: Request) -> JSONResponse:
        return await run(request, explain=True)

    fields = bundle.modality.request_schema()
    for action, endpoint in (("predict", predict), ("explain", explain)):
        router.add_api_route(
            f"/models/{name}/{action}",
            endpoint,
            methods=["POST"],
            summary=f"{action.title()} one patient with {name} (multipart: a JSON record and a file per input)",
            description=(
                "multipart/form-data: `record` (JSON: the patient id and the inputs given as values) and one file "
                f"field per input given as a file. Inputs: {json.dumps(fields.get('inputs', {}))}. Explain adds "
                "each input's contribution."
            ),
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
    if bundle.task == "segmentation":
        if scored:
            item.update(_segmentation_item(row))
        return item
    if bundle.survival is not None:
        if scored:
            columns = bundle.survival.columns()
            item.update(prediction_item(bundle, item["case_id"], np.array([row[c] for c in columns]), note))
            item.pop("survival_curve", None)  # the file's table carries no curve; explain per case for it
            if row.get("survival_lower_bound") is not None:
                item["survival_lower_bound"] = float(row["survival_lower_bound"])
    elif bundle.task == "regression":
        item["prediction"] = float(row["prediction"]) if scored else None
        if scored and "lower" in row:
            item["interval"] = {"lower": float(row["lower"]), "upper": float(row["upper"])}
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
        if "prediction_set" in row:
            item["prediction_set"] = [v for v in str(row["prediction_set"] or "").split(" | ") if v]
        sets = {c: str(row[f"set_{c}"] or "") for c in bundle.classes if f"set_{c}" in row}
        if sets:
            item["label_sets"] = {c: [v for v in kept.split(" | ") if v] for c, kept in sets.items()}
    if scored and row.get("uncertain") is not None:
        item["uncertain"] = bool(row["uncertain"])
    if scored and row.get("refer") is not None:
        item.update(confidence=float(row["confidence"]), refer=bool(row["refer"]))
    if explain and scored:
        column = bundle.modality.explanation_column  # "explanation", or "heatmap" for images
        explanation = str(row.get(column) or "")
        if explanation.endswith(".png") and Path(explanation).is_file():
            item[f"{column}_png"] = base64.b64encode(Path(explanation).read_bytes()).decode("ascii")
        else:
            item[column] = explanation
    return item


def _segmentation_item(row: dict[str, Any]) -> dict[str, Any]:
    """A segmented case: each label's volume (mL, or area in mm² for 2-D images) and lesion count, the overlay
    PNG and the mask file (NIfTI with the input's affine, DICOM-SEG for DICOM), both base64."""
    import base64
    from pathlib import Path

    measures = {}
    for column, value in row.items():
        for suffix, unit in (("_volume_ml", "mL"), ("_area_mm2", "mm²")):
            if column.endswith(suffix):
                label = column.removesuffix(suffix)
                measures[label] = {"size": float(value), "unit": unit, "lesions": int(row[f"{label}_count"])}
    mask = Path(str(row["mask_path"]))
    return {
        "segmentation": measures,
        "overlay_png": base64.b64encode(Path(str(row["overlay"])).read_bytes()).decode("ascii"),
        "mask_file": {
            "name": mask.name.split("_", 1)[-1],
            "base64": base64.b64encode(mask.read_bytes()).decode("ascii"),
        },
    }

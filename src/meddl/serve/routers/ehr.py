"""``POST /models/{name}/predict`` and ``/explain`` for EHR bundles: stays sent as JSON event-store rows.

The body holds the six tables of the event store (:mod:`meddl.io.ehr_schema`) as lists of rows —
``{"patients": [...], "visits": [...], "measurements": [...], "diagnoses": [...], "medications": [...],
"procedures": [...]}`` — with the schema's columns; times are ISO 8601 (an offset is converted to UTC, a time
without one is taken as the store's local time). The rows are checked (every visit of a known patient, discharge
not before admission, every event of a visit in the request and of that visit's patient, ids unique), written to
a temporary DuckDB store with the schema's SQL and featurised exactly as ``meddl predict`` featurises a store:
every visit is scored with the training vocabulary. Explain adds each stay's largest contributions
(integrated gradients per channel and time step).
"""

# No `from __future__ import annotations` here: FastAPI must see the request model, generated per served model
# from the tables its modality declares, as a real annotation.

import datetime as dt
import functools
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from meddl.serve.registry import ServedModel
from meddl.serve.routers._arrays import check_batch, prediction_item, respond
from meddl.serve.settings import Settings, get_settings

__all__ = ["add_ehr_routes", "check_stays", "ehr_items", "ehr_request"]

TOP_CONTRIBUTIONS = 5  # (channel, step) entries listed per stay by explain
_SQL_TYPES: dict[str, Any] = {
    "VARCHAR": str,
    "TIMESTAMP": dt.datetime,
    "DATE": dt.date,
    "BOOLEAN": bool,
    "DOUBLE": float,
}


def _utc_naive(value: Any) -> Any:
    """DuckDB TIMESTAMP has no zone: an aware time becomes UTC, a naive one is kept as given."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _strip_text(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _row_model(table: str, columns: dict[str, str]) -> type[BaseModel]:
    """A pydantic model of one row of ``table``: NOT NULL columns required, the others optional (null)."""
    fields: dict[str, Any] = {}
    for column, sql in columns.items():
        python_type = _SQL_TYPES[sql.split()[0]]
        if "NOT NULL" in sql:
            fields[column] = (python_type, Field(..., description=sql))
        else:
            fields[column] = (python_type | None, Field(None, description=sql))
    timestamps = [c for c, sql in columns.items() if sql.startswith("TIMESTAMP")]
    texts = [c for c, sql in columns.items() if sql.startswith("VARCHAR")]
    validators: dict[str, Any] = {}
    if timestamps:
        validators["utc_times"] = field_validator(*timestamps)(_utc_naive)
    validators["stripped_text"] = field_validator(*texts, mode="before")(_strip_text)
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"EHR{table.title()}Row",
        __config__=ConfigDict(extra="forbid"),
        __validators__=validators,
        **fields,
    )


@functools.cache
def _request_model(tables: tuple[tuple[str, tuple[tuple[str, str], ...]], ...], required: tuple[str, ...]) -> Any:
    fields: dict[str, Any] = {}
    for table, columns in tables:
        model = _row_model(table, dict(columns))
        fields[table] = (
            list[model],  # type: ignore[valid-type]
            Field(..., min_length=1, description=f"{table} rows (at least one)")
            if table in required
            else Field(default_factory=list, description=f"{table} rows"),
        )
    return create_model("EHRRequest", __config__=ConfigDict(extra="forbid"), **fields)


def ehr_request(served: ServedModel) -> type[BaseModel]:
    """The request body for a served model: one list of rows per event-store table its modality declares (the
    required tables at least one row each)."""
    schema = served.bundle.modality.request_schema()
    tables = tuple((table, tuple(columns.items())) for table, columns in schema["tables"].items())
    return _request_model(tables, tuple(schema["required_tables"]))  # type: ignore[no-any-return]


def _error(table: str, index: int, column: str, message: str) -> dict[str, Any]:
    return {"loc": ("body", table, index, column), "msg": message, "type": "value_error"}


def check_stays(body: BaseModel) -> list[dict[str, Any]]:
    """Consistency of the rows across tables, as validation errors naming the field (empty: consistent).

    Checks: patient and visit ids unique; every visit's patient among ``patients``; discharge not before
    admission; medication end not before start; every event's visit among ``visits`` and of the same patient;
    every event's patient among ``patients``.
    """
    errors: list[dict[str, Any]] = []
    patients: dict[str, int] = {}
    for i, row in enumerate(body.patients):  # type: ignore[attr-defined]
        if row.patient_id in patients:
            errors.append(
                _error("patients", i, "patient_id", f"{row.patient_id!r} is also patients[{patients[row.patient_id]}]")
            )
        patients.setdefault(row.patient_id, i)
    visits: dict[str, Any] = {}
    for i, row in enumerate(body.visits):  # type: ignore[attr-defined]
        if row.visit_id in visits:
            errors.append(_error("visits", i, "visit_id", f"{row.visit_id!r} is given twice"))
        visits.setdefault(row.visit_id, row)
        if row.patient_id not in patients:
            errors.append(_error("visits", i, "patient_id", f"{row.patient_id!r} is not among the request's patients"))
        if row.discharge_time is not None and row.discharge_time < row.admit_time:
            errors.append(
                _error(
                    "visits",
                    i,
                    "discharge_time",
                    f"discharge {row.discharge_time.isoformat()} is before admission {row.admit_time.isoformat()}",
                )
            )
    for table in ("measurements", "diagnoses", "medications", "procedures"):
        for i, row in enumerate(getattr(body, table)):
            if row.patient_id not in patients:
                errors.append(_error(table, i, "patient_id", f"{row.patient_id!r} is not among the request's patients"))
            if row.visit_id is not None:
                visit = visits.get(row.visit_id)
                if visit is None:
                    errors.append(_error(table, i, "visit_id", f"{row.visit_id!r} is not among the request's visits"))
                elif visit.patient_id != row.patient_id:
                    errors.append(
                        _error(
                            table,
                            i,
                            "patient_id",
                            f"{row.patient_id!r} differs from the patient of visit {row.visit_id!r} "
                            f"({visit.patient_id!r})",
                        )
                    )
            if table == "medications" and row.start_time and row.end_time and row.end_time < row.start_time:
                errors.append(
                    _error(
                        table,
                        i,
                        "end_time",
                        f"end {row.end_time.isoformat()} is before start {row.start_time.isoformat()}",
                    )
                )
    return errors


def ehr_items(served: ServedModel, body: BaseModel, *, explain: bool) -> list[dict[str, Any]]:
    """Score every visit of the request with an EHR bundle, in the request's order of visits.

    Args:
        served: A served EHR bundle (``bundle.modality`` is an ``EHRModality``).
        body: A validated, consistent `EHRRequest` (see `check_stays`).
        explain: Add ``contributions`` to each item: the ``TOP_CONTRIBUTIONS`` (channel, time step) entries
            with the largest integrated-gradient attribution to the first output (binary: the positive class),
            each ``{"feature", "step", "hours_from_start" (grid mode), "contribution"}`` in logit units.

    Returns:
        One prediction item per visit; ``case_id`` is the visit id.
    """
    bundle = served.bundle
    modality: Any = bundle.modality  # an events-style modality: read_event_rows, stay_contributions
    rows = {table: [row.model_dump() for row in getattr(body, table)] for table in type(body).model_fields}
    cases = modality.read_event_rows(rows)  # every visit, ordered by visit_id
    scores = bundle.scores(cases.inputs)
    position = {visit: i for i, visit in enumerate(cases.ids)}
    contributions: list[list[dict[str, Any]]] | None = None
    if explain:
        # each stay towards its explained output (its most probable label for multilabel models)
        contributions = modality.stay_contributions(bundle.model, cases, scores, TOP_CONTRIBUTIONS)
    items = []
    for row in body.visits:  # type: ignore[attr-defined]
        i = position[row.visit_id]
        item = prediction_item(bundle, row.visit_id, np.asarray(scores[i]), cases.notes[i])
        if contributions is not None:
            item["contributions"] = contributions[i]
        items.append(item)
    return items


def add_ehr_routes(router: APIRouter, served: ServedModel) -> None:
    """Register ``/models/{name}/predict`` and ``/explain`` (JSON stays) for an EHR bundle."""
    name = served.name
    EHRRequest = ehr_request(served)

    def run(body: BaseModel, request: Request, settings: Settings, explain: bool) -> JSONResponse:
        check_batch(len(body.visits), settings, "visits")  # type: ignore[attr-defined]
        errors = check_stays(body)
        if errors:
            raise RequestValidationError(errors)
        items = ehr_items(served, body, explain=explain)
        return respond(request, served.bundle, items, explain=explain)

    # Writing a DuckDB store and featurising takes tens of ms: plain `def`, run in the thread pool.
    def predict(body: EHRRequest, request: Request, settings: Settings = Depends(get_settings)) -> JSONResponse:  # type: ignore[valid-type]
        return run(body, request, settings, explain=False)

    def explain(body: EHRRequest, request: Request, settings: Settings = Depends(get_settings)) -> JSONResponse:  # type: ignore[valid-type]
        return run(body, request, settings, explain=True)

    operation = name.replace("-", "_")
    for action, endpoint, text in (
        ("predict", predict, "Risk for every visit of the stays sent as event-store rows."),
        ("explain", explain, "As predict, plus each stay's largest contributions (channel and time step)."),
    ):
        router.add_api_route(
            f"/models/{name}/{action}",
            endpoint,
            methods=["POST"],
            summary=f"{action.title()} with {name} (EHR stays as JSON)",
            description=text,
            tags=[name],
            operation_id=f"{action}_{operation}",
        )

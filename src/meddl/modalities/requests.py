"""Pydantic models of the JSON bodies the server accepts, built from what a modality knows about its inputs.

Each modality's ``request_model`` returns one of these; the server's one predict/explain router
(:mod:`meddl.serve.routers.predictions`) types its JSON routes with it, so FastAPI answers a wrong type, a missing
field or an unseen category with a 422 naming it, and the OpenAPI page documents every field.

* :func:`records_request` — ``{"records": [...]}``: one object per case with the model's input columns (tables).
  Numeric columns are finite numbers within the float32 range of the model's inputs (``null`` allowed when the model
  imputes; ``true``/``false`` refused, never read as 1/0), binary and categorical columns accept only the values
  seen in training; every column is required, so a forgotten lab value is a 422 naming it rather than a silent
  imputation.
* :func:`event_rows_request` — one list of rows per event-store table (EHR stays), plus :func:`event_rows_errors`,
  the cross-table checks a field validator cannot make.
* :func:`sequences_request` — ``{"sequences": [{"id", "sequence"}, ...]}`` (DNA as text).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)

__all__ = [
    "event_rows_errors",
    "event_rows_request",
    "level_text",
    "molecules_request",
    "python_name",
    "records_request",
    "sequences_request",
]


def python_name(column: str, taken: set[str]) -> str:
    """A valid Python identifier for a column (the JSON key stays the column name via an alias)."""
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in column) or "field"
    if name[0].isdigit() or name.startswith("_"):
        name = f"f_{name}"
    while name in taken:
        name += "_"
    taken.add(name)
    return name


# -- records (tables) ------------------------------------------------------------------------------------------
def level_text(value: Any) -> str:
    """A category level as the text it is known by: ``1.0`` is ``'1'``, ``True`` is ``'True'``."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _allowed_values(allowed: list[str]) -> Any:
    known = set(allowed)

    def check(value: Any) -> Any:
        if value is None:
            return None
        text = level_text(value)
        if text not in known:
            shown = ", ".join(repr(a) for a in allowed[:20]) + (" …" if len(allowed) > 20 else "")
            raise ValueError(f"{value!r} was not seen in training; allowed values: {shown}")
        return text

    return check


_FLOAT32_MAX = 3.4028234663852886e38  # the model's inputs are float32: a larger number would turn infinite


def _not_boolean(value: Any) -> Any:
    """Refuse ``true``/``false`` where a number is expected: lax pydantic would read them as 1.0/0.0."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got the boolean {str(value).lower()}")
    return value


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if value is not None and abs(value) > _FLOAT32_MAX:
        raise ValueError(f"{value:g} is beyond ±3.4e38 (the float32 range of the model's inputs); check the value")
    return value


def records_request(model_name: str, input_schema: list[dict[str, Any]]) -> type[BaseModel]:
    """``{"records": [...]}`` for a model whose inputs are the columns of ``input_schema`` (one entry per column:
    ``name``, ``type`` numeric | binary | categorical, ``nullable``, ``unit``, ``typical_range`` and ``median``
    or ``allowed``); each record may carry a ``case_id`` that is echoed back."""
    fields: dict[str, Any] = {}
    taken: set[str] = {"case_id"}
    for entry in input_schema:
        annotated: Any
        name = python_name(entry["name"], taken)
        description = entry["type"] + (f", unit {entry['unit']}" if entry.get("unit") else "")
        if entry["type"] == "numeric":
            base: Any = float | None if entry["nullable"] else float
            annotated = Annotated[base, BeforeValidator(_not_boolean), AfterValidator(_finite)]
            low, high = entry.get("typical_range") or [None, None]
            if low is not None:
                description += f"; 5th–95th percentile in training {low:.4g}–{high:.4g}"
            example = entry.get("median")
        else:
            allowed = entry["allowed"]
            base = str | int | float | bool | None if entry["nullable"] else str | int | float | bool
            annotated = Annotated[base, AfterValidator(_allowed_values(allowed))]
            description += f"; one of {allowed}"
            example = allowed[0] if allowed else None
        fields[name] = (annotated, Field(..., alias=entry["name"], description=description, examples=[example]))
    fields["case_id"] = (str | None, Field(None, description="your reference for this case, echoed back"))
    title = python_name(model_name, set()).title().replace("_", "")
    record = create_model(
        f"{title}Case",
        __config__=ConfigDict(extra="forbid", populate_by_name=False, str_strip_whitespace=True),
        **fields,
    )
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"{title}Request",
        __config__=ConfigDict(extra="forbid"),
        records=(list[record], Field(..., min_length=1, description="one or more cases")),  # type: ignore[valid-type]
    )


# -- event-store rows (EHR stays) --------------------------------------------------------------------------------
_SQL_TYPES: dict[str, Any] = {
    "VARCHAR": str,
    "TIMESTAMP": dt.datetime,
    "DATE": dt.date,
    "BOOLEAN": bool,
    "DOUBLE": Annotated[float, BeforeValidator(_not_boolean)],
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
def _event_rows_request(
    tables: tuple[tuple[str, tuple[tuple[str, str], ...]], ...], required: tuple[str, ...]
) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for table, columns in tables:
        model = _row_model(table, dict(columns))
        fields[table] = (
            list[model],  # type: ignore[valid-type]
            Field(..., min_length=1, description=f"{table} rows (at least one)")
            if table in required
            else Field(default_factory=list, description=f"{table} rows"),
        )
    return create_model("EHRRequest", __config__=ConfigDict(extra="forbid"), **fields)  # type: ignore[call-overload, no-any-return]


def event_rows_request(tables: dict[str, dict[str, str]], required: list[str]) -> type[BaseModel]:
    """One list of rows per event-store table (``tables``: table → column → SQL type, NOT NULL columns
    required); the ``required`` tables need at least one row. Times are ISO 8601; an offset is converted to UTC,
    a time without one is taken as the store's local time."""
    frozen = tuple((table, tuple(columns.items())) for table, columns in tables.items())
    return _event_rows_request(frozen, tuple(required))


def _error(table: str, index: int, column: str, message: str) -> dict[str, Any]:
    return {"loc": ("body", table, index, column), "msg": message, "type": "value_error"}


def event_rows_errors(body: Any) -> list[dict[str, Any]]:
    """Consistency of an event-rows request across its tables, as validation errors naming the field (empty:
    consistent).

    Checks: patient and visit ids unique; every visit's patient among ``patients``; discharge not before
    admission; medication end not before start; every event's visit among ``visits`` and of the same patient;
    every event's patient among ``patients``.
    """
    errors: list[dict[str, Any]] = []
    patients: dict[str, int] = {}
    for i, row in enumerate(body.patients):
        if row.patient_id in patients:
            errors.append(
                _error("patients", i, "patient_id", f"{row.patient_id!r} is also patients[{patients[row.patient_id]}]")
            )
        patients.setdefault(row.patient_id, i)
    visits: dict[str, Any] = {}
    for i, row in enumerate(body.visits):
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
        for i, row in enumerate(getattr(body, table, [])):
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


# -- sequences as text -------------------------------------------------------------------------------------------
MAX_SEQUENCE_LENGTH = 100_000  # bases per sequence; the model sees its own window of it


def _unique_ids(self: Any) -> Any:
    items = "sequences" if hasattr(self, "sequences") else "molecules"
    seen: dict[str, int] = {}
    for i, case in enumerate(getattr(self, items)):
        if case.id in seen:
            raise ValueError(f"{items}[{i}].id: {case.id!r} is also the id of {items}[{seen[case.id]}]")
        seen[case.id] = i
    return self


@functools.cache
def sequences_request(allowed_bases: str, clean: Callable[[str], str]) -> type[BaseModel]:
    """``{"sequences": [{"id", "sequence"}, ...]}``: ids unique within the request; ``clean`` turns a pasted
    sequence into bases or raises ``ValueError`` naming the first character that is not one of ``allowed_bases``."""
    case = create_model(
        "SequenceCase",
        __config__=ConfigDict(extra="forbid"),
        __doc__="One DNA sequence to score.",
        __validators__={"bases_only": field_validator("sequence")(lambda cls, value: clean(value))},
        id=(str, Field(..., min_length=1, max_length=200, description="your reference for this sequence, echoed back")),
        sequence=(
            str,
            Field(
                ...,
                min_length=1,
                max_length=MAX_SEQUENCE_LENGTH,
                description=f"bases {allowed_bases} (IUPAC codes, case-insensitive); fitted to the model's window",
            ),
        ),
    )
    return create_model(  # type: ignore[call-overload, no-any-return]
        "SequencesRequest",
        __config__=ConfigDict(extra="forbid"),
        __doc__='``{"sequences": [...]}``: one or more sequences, ids unique within the request.',
        __validators__={"unique_ids": model_validator(mode="after")(_unique_ids)},  # type: ignore[dict-item]
        sequences=(list[case], Field(..., min_length=1, description="one or more DNA sequences")),  # type: ignore[valid-type]
    )


@functools.cache
def molecules_request(clean: Callable[[str], str]) -> type[BaseModel]:
    """``{"molecules": [{"id", "smiles"}, ...]}``: ids unique within the request; ``clean`` checks that RDKit reads
    a SMILES or raises ``ValueError`` with RDKit's reason (unclosed ring, valence)."""
    from meddl.io.molecules import MAX_SMILES_LENGTH  # the reader's limit, so both refuse the same text

    case = create_model(
        "MoleculeCase",
        __config__=ConfigDict(extra="forbid"),
        __doc__="One compound to score.",
        __validators__={"readable": field_validator("smiles")(lambda cls, value: clean(value))},
        id=(str, Field(..., min_length=1, max_length=200, description="your reference for this compound, echoed back")),
        smiles=(
            str,
            Field(
                ..., min_length=1, max_length=MAX_SMILES_LENGTH, description="the compound as SMILES (any salt form)"
            ),
        ),
    )
    return create_model(  # type: ignore[call-overload, no-any-return]
        "MoleculesRequest",
        __config__=ConfigDict(extra="forbid"),
        __doc__='``{"molecules": [...]}``: one or more compounds as SMILES, ids unique within the request.',
        __validators__={"unique_ids": model_validator(mode="after")(_unique_ids)},  # type: ignore[dict-item]
        molecules=(list[case], Field(..., min_length=1, description="one or more compounds")),  # type: ignore[valid-type]
    )

"""Request and response models generated from each bundle's input schema.

A tabular bundle knows every input column: numeric columns become floats (``null`` allowed when the model
imputes), binary and categorical columns accept only the values seen in training. Every field is required, so
a forgotten lab value is a 422 naming it rather than a silent imputation; send ``null`` to say "not measured".
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from meddl.bundle import Bundle

__all__ = ["PredictResponse", "Prediction", "build_request_model", "python_name"]

NOTICE = "Decision support, not a diagnosis: interpret with the full clinical picture."


def python_name(column: str, taken: set[str]) -> str:
    """A valid Python identifier for a column (the JSON key stays the column name via an alias)."""
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in column) or "field"
    if name[0].isdigit() or name.startswith("_"):
        name = f"f_{name}"
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _level(value: Any) -> str:
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
        text = _level(value)
        if text not in known:
            shown = ", ".join(repr(a) for a in allowed[:20]) + (" …" if len(allowed) > 20 else "")
            raise ValueError(f"{value!r} was not seen in training; allowed values: {shown}")
        return text

    return check


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def build_request_model(bundle: Bundle) -> tuple[type[BaseModel], type[BaseModel]]:
    """The record model (one case) and the request model (``{"records": [...]}``) for ``bundle``."""
    fields: dict[str, Any] = {}
    taken: set[str] = {"case_id"}
    for entry in bundle.modality.input_schema():  # type: ignore[attr-defined]
        annotated: Any
        name = python_name(entry["name"], taken)
        description = entry["type"] + (f", unit {entry['unit']}" if entry.get("unit") else "")
        if entry["type"] == "numeric":
            base: Any = float | None if entry["nullable"] else float
            annotated = Annotated[base, AfterValidator(_finite)]
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
    model_name = python_name(bundle.name, set()).title().replace("_", "")
    record = create_model(
        f"{model_name}Case",
        __config__=ConfigDict(extra="forbid", populate_by_name=False, str_strip_whitespace=True),
        **fields,
    )
    request = create_model(
        f"{model_name}Request",
        __config__=ConfigDict(extra="forbid"),
        records=(list[record], Field(..., min_length=1, description="one or more cases")),  # type: ignore[valid-type]
    )
    return record, request


class Contribution(BaseModel):
    feature: str
    value: Any = None
    contribution: float = Field(description="integrated gradients, logit units; positive pushes towards the label")


class Prediction(BaseModel):
    case_id: str | None = None
    label: str | None = Field(None, description="the suggestion: the class at the model's threshold")
    probability: float | None = Field(None, description="binary: probability of the positive class")
    probabilities: dict[str, float] | None = None
    prediction: float | None = Field(None, description="regression: the predicted value")
    threshold: float | None = None
    note: str = ""
    contributions: list[Contribution] | None = None


class PredictResponse(BaseModel):
    model: str
    bundle_hash: str
    request_id: str
    predictions: list[Prediction]
    notice: str = NOTICE

"""The response models of the prediction routes (their request models come from each model's modality, see
:mod:`meddl.modalities.requests`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["NOTICE", "PredictResponse", "Prediction"]

NOTICE = "Decision support, not a diagnosis: interpret with the full clinical picture."


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
    risk: float | None = Field(None, description="survival: the risk score (higher = earlier event)")
    survival: dict[str, float] | None = Field(None, description="survival: probability of no event by each horizon")
    median_survival: float | None = Field(None, description="survival: median survival time, when reached")
    survival_curve: dict[str, list[float]] | None = Field(None, description="survival: {time, survival} points")
    cumulative_incidence: dict[str, dict[str, float]] | None = Field(
        None, description="competing risks: each cause's probability of having occurred by each horizon"
    )
    prediction_set: list[str] | None = Field(
        None, description="conformal set: the labels that cannot be ruled out at the model's coverage level"
    )
    label_sets: dict[str, list[str]] | None = Field(None, description="multilabel conformal sets: per label, yes/no")
    interval: dict[str, float] | None = Field(None, description="regression conformal interval: lower and upper")
    survival_lower_bound: float | None = Field(
        None,
        description="survival with evaluate.conformal: the event comes no earlier than this, at the coverage level",
    )
    uncertain: bool | None = Field(
        None,
        description="the set holds other than one label, or the interval is wider than serve.max_interval: "
        "refer for review",
    )
    confidence: float | None = Field(
        None, description="with evaluate.referral: distance from the decision (0 at the threshold, 1 at certainty)"
    )
    refer: bool | None = Field(None, description="with evaluate.referral: confidence below the referral cut-off")
    note: str = ""
    contributions: list[Contribution] | None = None


class PredictResponse(BaseModel):
    model: str
    bundle_hash: str
    request_id: str
    predictions: list[Prediction]
    notice: str = NOTICE

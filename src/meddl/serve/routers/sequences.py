"""``POST /models/{name}/predict_sequences`` and ``/explain_sequences``: DNA sequences sent as JSON strings.

The upload routes (``/predict``, ``/explain``) take a FASTA or sequence-table file; these take the sequences
themselves, ``{"sequences": [{"id": "s1", "sequence": "ACGT…"}, …]}``. Each sequence is upper-cased and fitted to
the model's window as in training (centre-cropped or N-padded, noted per case); a character that is not a base
(ACGT, N, IUPAC codes) is a 422 naming the sequence and the position. Explain adds, per sequence, the
integrated-gradient contribution of every base of the window and the attribution logo as a base64 PNG.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from meddl.explain.sequences import logo_png
from meddl.io.sequences import ALLOWED_BASES, first_invalid_base
from meddl.preprocess.sequences import fit_length, one_hot
from meddl.serve.registry import ServedModel
from meddl.serve.routers._arrays import check_batch, prediction_item, respond
from meddl.serve.settings import Settings, get_settings

__all__ = ["SequenceCase", "SequencesRequest", "add_sequence_routes", "sequence_items"]

MAX_SEQUENCE_LENGTH = 100_000  # bases per sequence; the model sees its own window of it


class SequenceCase(BaseModel):
    """One DNA sequence to score."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., min_length=1, max_length=200, description="your reference for this sequence, echoed back")
    sequence: str = Field(
        ...,
        min_length=1,
        max_length=MAX_SEQUENCE_LENGTH,
        description=f"bases {ALLOWED_BASES} (IUPAC codes, case-insensitive); fitted to the model's window",
    )

    @field_validator("sequence")
    @classmethod
    def _bases_only(cls, value: str) -> str:
        sequence = "".join(value.split()).upper()  # line breaks and spaces of a pasted sequence are not bases
        if not sequence:
            raise ValueError("the sequence is empty")
        invalid = first_invalid_base(sequence)
        if invalid is not None:
            position, character = invalid
            raise ValueError(
                f"invalid base {character!r} at position {position}; allowed are {ALLOWED_BASES} "
                "(IUPAC codes, case-insensitive)"
            )
        return sequence


class SequencesRequest(BaseModel):
    """``{"sequences": [...]}``: one or more sequences, ids unique within the request."""

    model_config = ConfigDict(extra="forbid")

    sequences: list[SequenceCase] = Field(..., min_length=1, description="one or more DNA sequences")

    @model_validator(mode="after")
    def _unique_ids(self) -> SequencesRequest:
        seen: dict[str, int] = {}
        for i, case in enumerate(self.sequences):
            if case.id in seen:
                raise ValueError(f"sequences[{i}].id: {case.id!r} is also the id of sequences[{seen[case.id]}]")
            seen[case.id] = i
        return self


def sequence_items(served: ServedModel, cases: list[SequenceCase], *, explain: bool) -> list[dict[str, Any]]:
    """Score sequences with a sequence bundle; with ``explain`` add per-base attributions and the logo.

    Args:
        served: A served sequence bundle (``bundle.modality`` is a ``SequenceModality``).
        cases: Validated sequences (upper-case bases).
        explain: Add ``window`` (the fitted sequence the model saw, ``length`` bases), ``attributions``
            (``length`` floats: integrated gradients per base of the window, to the first output — the positive
            class of a binary model — in logit units) and ``logo_png`` (base64 PNG) to each item.

    Returns:
        One prediction item per sequence, in order.
    """
    bundle = served.bundle
    modality: Any = bundle.modality  # the style-specific API of this route's modality
    length = int(modality.prep.length)
    windows = [fit_length(case.sequence, length) for case in cases]
    inputs = modality.encoder.transform(windows)  # (N, 4, L) one-hot or (N, L - k + 1) tokens
    scores = bundle.scores(inputs)
    items = []
    for case, score in zip(cases, scores, strict=True):
        size = len(case.sequence)
        note = "" if size == length else f"length {size} fitted to the model's {length}-base window"
        items.append(prediction_item(bundle, case.id, score, note))
    if explain:
        # each case towards its explained logit (its predicted class for multiclass models)
        contributions = modality._contributions(bundle.model, inputs, windows, modality.explained_logits(scores))
        bases = one_hot(windows, length, ambiguous="zeros")  # (N, 4, L)
        for j, item in enumerate(items):
            drawn = bases[j] * contributions[j][None, :]  # (4, L): each base's contribution drawn on it
            item["window"] = windows[j]
            item["attributions"] = [float(v) for v in contributions[j]]
            item["logo_png"] = base64.b64encode(logo_png(drawn, title=str(cases[j].id), kind="weight")).decode("ascii")
    return items


def add_sequence_routes(router: APIRouter, served: ServedModel) -> None:
    """Register ``/models/{name}/predict_sequences`` and ``/explain_sequences`` for a sequence bundle."""
    name = served.name

    def run(body: SequencesRequest, request: Request, settings: Settings, explain: bool) -> JSONResponse:
        check_batch(len(body.sequences), settings, "sequences")
        items = sequence_items(served, body.sequences, explain=explain)
        return respond(request, served.bundle, items, explain=explain)

    # Sequence models and integrated gradients take milliseconds: plain `def`, run in the thread pool.
    def predict(body: SequencesRequest, request: Request, settings: Settings = Depends(get_settings)) -> JSONResponse:
        return run(body, request, settings, explain=False)

    def explain(body: SequencesRequest, request: Request, settings: Settings = Depends(get_settings)) -> JSONResponse:
        return run(body, request, settings, explain=True)

    operation = name.replace("-", "_")
    router.add_api_route(
        f"/models/{name}/predict_sequences",
        predict,
        methods=["POST"],
        summary=f"Predict with {name} (sequences as JSON)",
        description='Body `{"sequences": [{"id": "s1", "sequence": "ACGT…"}]}`; every sequence is scored.',
        tags=[name],
        operation_id=f"predict_sequences_{operation}",
    )
    router.add_api_route(
        f"/models/{name}/explain_sequences",
        explain,
        methods=["POST"],
        summary=f"Predict and explain with {name} (sequences as JSON)",
        description="As predict_sequences, plus per-base attributions of the model's window and the attribution "
        "logo (base64 PNG) of each sequence.",
        tags=[name],
        operation_id=f"explain_sequences_{operation}",
    )

"""``POST /models/{name}/predict_sequences`` and ``/explain_sequences``: DNA sequences sent as JSON strings.

The upload routes (``/predict``, ``/explain``) take a FASTA or sequence-table file; these take the sequences
themselves, ``{"sequences": [{"id": "s1", "sequence": "ACGT…"}, …]}``. Each sequence is upper-cased and fitted to
the model's window as in training (centre-cropped or N-padded, noted per case); a character that is not a base
(ACGT, N, IUPAC codes) is a 422 naming the sequence and the position. Explain adds, per sequence, the
integrated-gradient contribution of every base of the window and the attribution logo as a base64 PNG.
"""

# No `from __future__ import annotations` here: FastAPI must see the request models, generated per served model
# from its modality (which bases it accepts), as real annotations.

import functools
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from meddl.serve.registry import ServedModel
from meddl.serve.routers._arrays import check_batch, prediction_item, respond
from meddl.serve.settings import Settings, get_settings

__all__ = ["add_sequence_routes", "sequence_items", "sequences_request"]

MAX_SEQUENCE_LENGTH = 100_000  # bases per sequence; the model sees its own window of it


def _unique_ids(self: Any) -> Any:
    seen: dict[str, int] = {}
    for i, case in enumerate(self.sequences):
        if case.id in seen:
            raise ValueError(f"sequences[{i}].id: {case.id!r} is also the id of sequences[{seen[case.id]}]")
        seen[case.id] = i
    return self


@functools.cache
def _request_model(allowed_bases: str, clean: Any) -> type[BaseModel]:
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


def sequences_request(served: ServedModel) -> type[BaseModel]:
    """The request body of ``predict_sequences`` for a served model: its modality says which bases it accepts."""
    modality: Any = served.bundle.modality
    return _request_model(modality.allowed_bases, modality.clean_sequence)


def sequence_items(served: ServedModel, cases: list[Any], *, explain: bool) -> list[dict[str, Any]]:
    """Score sequences with a sequence bundle; with ``explain`` add per-base attributions and the logo.

    Args:
        served: A served model whose modality takes sequences as text (``read_texts``, ``base_explanations``).
        cases: Validated sequences (upper-case bases).
        explain: Add ``window`` (the fitted sequence the model saw), ``attributions`` (integrated gradients per
            base of the window, in logit units) and ``logo_png`` (base64 PNG) to each item.

    Returns:
        One prediction item per sequence, in order.
    """
    bundle = served.bundle
    modality: Any = bundle.modality
    read = modality.read_texts([case.id for case in cases], [case.sequence for case in cases])
    scores = bundle.scores(read.inputs)
    items = [
        prediction_item(bundle, case_id, score, note)
        for case_id, score, note in zip(read.ids, scores, read.notes, strict=True)
    ]
    if explain:
        for item, extra in zip(items, modality.base_explanations(bundle.model, read, scores), strict=True):
            item.update(extra)
    return items


def add_sequence_routes(router: APIRouter, served: ServedModel) -> None:
    """Register ``/models/{name}/predict_sequences`` and ``/explain_sequences`` for a sequence bundle."""
    name = served.name
    SequencesRequest = sequences_request(served)

    def run(body: BaseModel, request: Request, settings: Settings, explain: bool) -> JSONResponse:
        check_batch(len(body.sequences), settings, "sequences")  # type: ignore[attr-defined]
        items = sequence_items(served, body.sequences, explain=explain)  # type: ignore[attr-defined]
        return respond(request, served.bundle, items, explain=explain)

    # Sequence models and integrated gradients take milliseconds: plain `def`, run in the thread pool.
    def predict(body: SequencesRequest, request: Request, settings: Settings = Depends(get_settings)) -> JSONResponse:  # type: ignore[valid-type]
        return run(body, request, settings, explain=False)

    def explain(body: SequencesRequest, request: Request, settings: Settings = Depends(get_settings)) -> JSONResponse:  # type: ignore[valid-type]
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

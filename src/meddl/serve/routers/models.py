"""``GET /models`` and ``GET /models/{name}``: what each served model is, takes, and how well it did."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from meddl.bundle.files import MANIFEST
from meddl.serve.registry import ServedModel

router = APIRouter(prefix="/models", tags=["models"])


def _served(request: Request, name: str) -> ServedModel:
    models: dict[str, ServedModel] = request.app.state.models
    if name not in models:
        raise HTTPException(404, detail=f"no model named {name!r}; served: {sorted(models)}")
    return models[name]


def _bundle_text(served: ServedModel, name: str, what: str) -> str:
    """A text file of a served bundle (``model_card.md``, ``report.html``), served only when it is what was trained:
    404 when the bundle has none, and 404 naming it when it is empty, not UTF-8, or differs from the sha256 the
    bundle's manifest holds (or the manifest is no longer the one checked when the bundle was loaded)."""
    bundle = served.bundle
    path = bundle.path / name
    if not path.is_file():
        raise HTTPException(404, detail=f"this bundle has no {what}")
    data = path.read_bytes()
    try:
        manifest = json.loads((bundle.path / MANIFEST).read_text(encoding="utf-8"))
        expected = manifest["files"].get(name)  # None: a file the manifest does not list
        damaged = manifest["bundle_hash"] != bundle.bundle_hash or (
            expected is not None and hashlib.sha256(data).hexdigest() != expected
        )
        text = data.decode("utf-8")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # unreadable manifest, text not UTF-8
        damaged, text = True, ""
    if damaged or not text.strip():
        raise HTTPException(
            404,
            detail=f"{name} of model {bundle.name!r} is empty or damaged; retrain or restore the bundle",
        )
    return text


@router.get("")
def list_models(request: Request) -> list[dict[str, Any]]:
    return [served.summary() for served in request.app.state.models.values()]


@router.get("/{name}")
def model_detail(name: str, request: Request) -> dict[str, Any]:
    """Model card, input schema, threshold with its sensitivity/specificity, test metrics with 95% CIs."""
    return _served(request, name).detail()


@router.get("/{name}/card", response_class=PlainTextResponse)
def model_card(name: str, request: Request) -> PlainTextResponse:
    """The model card (Markdown)."""
    card = _bundle_text(_served(request, name), "model_card.md", "model card")
    return PlainTextResponse(card, media_type="text/markdown; charset=utf-8")


@router.get("/{name}/report", response_class=HTMLResponse)
def model_report(name: str, request: Request) -> HTMLResponse:
    """The self-contained HTML report of the training run."""
    return HTMLResponse(_bundle_text(_served(request, name), "report.html", "report"))


@router.post("/{name}/{action}", include_in_schema=False)
def unknown_model(name: str, action: str, request: Request) -> None:
    """Reached only when no model route matched: name the models that are served."""
    actions = _served(request, name).actions
    raise HTTPException(404, detail=f"unknown action {action!r}; use {', '.join(actions[:-1])} or {actions[-1]}")

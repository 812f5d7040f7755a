"""``GET /models`` and ``GET /models/{name}``: what each served model is, takes, and how well it did."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from meddl.serve.registry import ServedModel

router = APIRouter(prefix="/models", tags=["models"])


def _served(request: Request, name: str) -> ServedModel:
    models: dict[str, ServedModel] = request.app.state.models
    if name not in models:
        raise HTTPException(404, detail=f"no model named {name!r}; served: {sorted(models)}")
    return models[name]


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
    path = _served(request, name).bundle.path / "model_card.md"
    if not path.exists():
        raise HTTPException(404, detail="this bundle has no model card")
    return PlainTextResponse(path.read_text(encoding="utf-8"), media_type="text/markdown; charset=utf-8")


@router.get("/{name}/report", response_class=HTMLResponse)
def model_report(name: str, request: Request) -> HTMLResponse:
    """The self-contained HTML report of the training run."""
    path = _served(request, name).bundle.path / "report.html"
    if not path.exists():
        raise HTTPException(404, detail="this bundle has no report")
    return HTMLResponse(path.read_text(encoding="utf-8"))


@router.post("/{name}/{action}", include_in_schema=False)
def unknown_model(name: str, action: str, request: Request) -> None:
    """Reached only when no model route matched: name the models that are served."""
    actions = _served(request, name).actions
    raise HTTPException(404, detail=f"unknown action {action!r}; use {', '.join(actions[:-1])} or {actions[-1]}")

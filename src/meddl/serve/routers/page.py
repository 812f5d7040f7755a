"""``GET /``: the clinicians' page (placeholder list until the form lands)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["page"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(request: Request) -> HTMLResponse:
    names = ", ".join(sorted(request.app.state.models))
    return HTMLResponse(f"<!doctype html><title>MedDL</title><p>Models: {names}</p>")

"""``GET /``: the clinicians' page, one static self-contained document that reads the JSON API."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from meddl.serve._page import PAGE_HEADERS, PAGE_HTML

router = APIRouter(tags=["page"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> HTMLResponse:
    """The form for one case per served model; the template, script and styles live in ``meddl.serve._page``."""
    return HTMLResponse(PAGE_HTML, headers=dict(PAGE_HEADERS))

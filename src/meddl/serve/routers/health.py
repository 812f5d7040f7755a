"""``GET /health``: liveness, open without a token so load balancers can probe it."""

from __future__ import annotations

from fastapi import APIRouter, Request

router = APIRouter(tags=["health"])


@router.get("/health")
def health(request: Request) -> dict[str, object]:
    return {"status": "ok", "models": sorted(request.app.state.models)}

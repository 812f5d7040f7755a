"""Builds the FastAPI app over one or more bundles: thin — routers do the work, settings come from a dependency."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from meddl._version import __version__
from meddl.errors import MedDLError
from meddl.serve.observability import AuditLog, GuardMiddleware
from meddl.serve.registry import load_models
from meddl.serve.routers import health, models, page, predictions
from meddl.serve.settings import Settings, configure

__all__ = ["create_app", "run_server"]

log = logging.getLogger("meddl.serve")


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    text = "body" if parts and parts[0].isdigit() else ""
    for part in parts:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text or "body"


def create_app(settings: Settings) -> FastAPI:
    """The app serving ``settings.bundles``; bundles are loaded and hash-checked here, before any request."""
    configure(settings)
    served = load_models(list(settings.bundles))
    torch.set_num_threads(1)  # small models, many concurrent requests: threads would only contend

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.audit.close()

    app = FastAPI(
        title="MedDL",
        version=__version__,
        description="Clinical decision support models. Every output is a suggestion for a clinician, not a diagnosis.",
        lifespan=lifespan,
    )
    app.state.models = served
    app.state.audit = AuditLog(settings.audit_log)
    app.add_middleware(GuardMiddleware, token=settings.token, max_body_bytes=settings.max_body_bytes)

    app.include_router(health.router)
    prediction_router = APIRouter()
    for model in served.values():
        predictions.add_model_routes(prediction_router, model)
    app.include_router(prediction_router)  # before models.router, whose catch-all answers unknown names
    app.include_router(models.router)
    app.include_router(page.router)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        texts = [str(e["msg"]).removeprefix("Value error, ") for e in errors]  # pydantic's prefix says nothing
        message = "; ".join(f"{_field(e['loc'])}: {text}" for e, text in zip(errors[:10], texts, strict=False))
        detail = [
            {"field": _field(e["loc"]), "message": text, "type": e["type"]}
            for e, text in zip(errors, texts, strict=True)
        ]
        return JSONResponse({"message": message, "detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        cause = exc.__cause__
        if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError):  # FastAPI's "error parsing the body"
            message = (
                f"body: not valid UTF-8 JSON (byte 0x{cause.object[cause.start]:02x} at position {cause.start} "
                "cannot be decoded); send the JSON encoded as UTF-8"
            )
            return JSONResponse({"message": message, "detail": message}, status_code=400)
        return await http_exception_handler(request, exc)

    @app.exception_handler(MedDLError)
    async def bad_input(request: Request, exc: MedDLError) -> JSONResponse:
        return JSONResponse({"message": str(exc), "detail": str(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("request_id=%s unexpected %s", getattr(request.state, "request_id", "-"), type(exc).__name__)
        return JSONResponse({"message": "internal error; the request id is in the x-request-id header"}, 500)

    return app


def run_server(settings: Settings) -> None:
    """Run uvicorn with our access log only: uvicorn's own would print query strings."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app(settings)
    # torch, pandas, scikit-learn and the bundles leave ~10^6 long-lived objects: a full garbage collection
    # walking them all stalls every request in flight (the p99 tail). Freeze them out of the collector's view.
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_level="warning")

"""Request ids, access logs without patient data, the audit trail, and the guards every request passes.

The access log carries request id, model name, method, route, status and latency — never a body, a query
string or a header value, so patient data and tokens cannot reach it. The audit log records each prediction
(time, request id, model, bundle hash, output) as one JSON line.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["AuditLog", "GuardMiddleware", "access_logger"]

access_logger = logging.getLogger("meddl.serve.access")
TOKEN_COOKIE = "meddl_token"
OPEN_PATHS = {"/health"}


class AuditLog:
    """Append-only JSON lines; one writer lock so concurrent requests never interleave lines."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._handle = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = path.open("a", encoding="utf-8", buffering=1)

    def record(self, *, request_id: str, model: str, bundle_hash: str, endpoint: str, outputs: list[dict]) -> None:
        if self._handle is None:
            return
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": request_id,
            "model": model,
            "bundle_hash": bundle_hash,
            "endpoint": endpoint,
            "predictions": outputs,
        }
        line = json.dumps(entry, separators=(",", ":"), allow_nan=False)
        with self._lock:
            self._handle.write(line + "\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _model_name(path: str) -> str:
    parts = path.strip("/").split("/")
    return parts[1] if len(parts) >= 2 and parts[0] == "models" else "-"


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(TOKEN_COOKIE)


class GuardMiddleware(BaseHTTPMiddleware):
    """Request id, token check, body-size limit and the access log, in that order."""

    def __init__(self, app: Any, *, token: str | None, max_body_bytes: int) -> None:
        super().__init__(app)
        self.token = token
        self.max_body_bytes = max_body_bytes

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        if not request_id.isalnum() or len(request_id) > 64:  # never echo arbitrary text into logs
            request_id = uuid.uuid4().hex[:16]
        request.state.request_id = request_id
        started = time.perf_counter()
        response = await self._guarded(request, call_next)
        latency_ms = (time.perf_counter() - started) * 1000
        response.headers["x-request-id"] = request_id
        route = request.scope.get("route")
        access_logger.info(
            "request_id=%s model=%s method=%s route=%s status=%d latency_ms=%.2f",
            request_id,
            _model_name(request.url.path),
            request.method,
            getattr(route, "path", "-"),
            response.status_code,
            latency_ms,
        )
        return response

    async def _guarded(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        if self.token is not None and path not in OPEN_PATHS:
            presented = _presented_token(request)
            query_token = request.query_params.get("token") if path == "/" else None
            if query_token is not None and hmac.compare_digest(query_token, self.token):
                # The page is opened once as /?token=…; a cookie then carries the token, off the URL.
                response = Response(status_code=303, headers={"location": "/"})
                response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
                return response
            if presented is None or not hmac.compare_digest(presented, self.token):
                return JSONResponse(
                    {"detail": "missing or wrong access token: send 'Authorization: Bearer <token>'"},
                    status_code=401,
                    headers={"www-authenticate": "Bearer"},
                )
        if request.method == "POST" and path.startswith("/models/") and path.endswith(("/predict", "/explain")):
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != "application/json":
                return JSONResponse(
                    {"detail": f"expected a JSON body (content-type application/json), got {content_type or 'none'!r}"},
                    status_code=415,
                )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return JSONResponse(
                {"detail": f"request body of {int(declared)} bytes exceeds the limit of {self.max_body_bytes}"},
                status_code=413,
            )
        if request.method in {"POST", "PUT"} and declared is None:
            body = await request.body()  # chunked upload: measure it (Starlette caches it for the route)
            if len(body) > self.max_body_bytes:
                return JSONResponse(
                    {"detail": f"request body exceeds the limit of {self.max_body_bytes} bytes"}, status_code=413
                )
        return await call_next(request)

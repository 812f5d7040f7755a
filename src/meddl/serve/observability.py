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
from urllib.parse import parse_qs

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AuditLog", "GuardMiddleware", "access_logger"]

access_logger = logging.getLogger("meddl.serve.access")
TOKEN_COOKIE = "meddl_token"
OPEN_PATHS = {"/health"}
PREDICTION_SUFFIXES = ("/predict", "/explain", "/predict_sequences", "/explain_sequences")


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


def _json_only_route(scope: Scope, path: str) -> str | None:
    """Why a multipart upload to ``path`` is refused (415) when the served model takes only a JSON body there (a
    table model's ``/predict``, a sequence model's ``/predict_sequences``); None when the route takes uploads or is
    not a served model's (the app answers those: 404 naming the models)."""
    parts = path.strip("/").split("/")  # models, name, action
    served = getattr(getattr(scope.get("app"), "state", None), "models", {}).get(parts[1]) if len(parts) == 3 else None
    if served is None or served.request_model is None:
        return None
    modality, action = served.bundle.modality, parts[2]
    json_actions = {modality.json_route, str(modality.json_route).replace("predict", "explain", 1)}
    if action not in json_actions or (modality.upload_suffixes and action in {"predict", "explain"}):
        return None
    return (
        f"model {parts[1]!r} takes a JSON body on /{action} (content-type application/json; its fields are listed "
        f"at GET /models/{parts[1]}), not a multipart/form-data file upload"
    )


def _presented_token(headers: Headers) -> str | None:
    header = headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return cookie_parser(headers.get("cookie", "")).get(TOKEN_COOKIE)


class GuardMiddleware:
    """Request id, token check, content type, body-size limit and the access log — plain ASGI.

    Written as raw ASGI rather than Starlette's ``BaseHTTPMiddleware``, which runs the app in a separate task and
    re-streams every response (measured: the largest single cost MedDL added to a prediction request).
    """

    def __init__(self, app: ASGIApp, *, token: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.token = token
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = headers.get("x-request-id") or uuid.uuid4().hex[:16]
        if not request_id.isalnum() or len(request_id) > 64:  # never echo arbitrary text into logs
            request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message).append("x-request-id", request_id)
            await send(message)

        rejection, receive = await self._check(scope, headers, receive)
        if rejection is not None:
            await rejection(scope, receive, send_with_id)
        else:
            await self.app(scope, receive, send_with_id)
        route = scope.get("route")
        access_logger.info(
            "request_id=%s model=%s method=%s route=%s status=%d latency_ms=%.2f",
            request_id,
            _model_name(scope["path"]),
            scope["method"],
            getattr(route, "path", "-"),
            status,
            (time.perf_counter() - started) * 1000,
        )

    async def _check(self, scope: Scope, headers: Headers, receive: Receive) -> tuple[Response | None, Receive]:
        path, method = scope["path"], scope["method"]
        if self.token is not None and path not in OPEN_PATHS:
            if path == "/":
                query_token = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
                if query_token and hmac.compare_digest(query_token[0], self.token):
                    # The page is opened once as /?token=…; a cookie then carries the token, off the URL.
                    response = Response(status_code=303, headers={"location": "/"})
                    response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
                    return response, receive
            presented = _presented_token(headers)
            if presented is None or not hmac.compare_digest(presented, self.token):
                return (
                    JSONResponse(
                        {"detail": "missing or wrong access token: send 'Authorization: Bearer <token>'"},
                        status_code=401,
                        headers={"www-authenticate": "Bearer"},
                    ),
                    receive,
                )
        if method == "POST" and path.startswith("/models/") and path.endswith(PREDICTION_SUFFIXES):
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type not in {"application/json", "multipart/form-data"}:
                shown = content_type or "none"
                return (
                    JSONResponse(
                        {
                            "detail": "expected a JSON body (tables) or a multipart/form-data upload (images), "
                            f"got {shown!r}"
                        },
                        status_code=415,
                    ),
                    receive,
                )
            if content_type == "multipart/form-data" and (only_json := _json_only_route(scope, path)):
                return JSONResponse({"detail": only_json}, status_code=415), receive
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return self._too_large(f"request body of {int(declared)} bytes exceeds the limit"), receive
        if method in {"POST", "PUT"} and declared is None:
            # A chunked upload has no declared size: read it (up to the limit) and replay it to the app.
            chunks, size = [], 0
            while True:
                message = await receive()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body_bytes:
                    return self._too_large("request body exceeds the limit"), receive
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            return None, replay
        return None, receive

    def _too_large(self, text: str) -> Response:
        return JSONResponse({"detail": f"{text} of {self.max_body_bytes} bytes"}, status_code=413)

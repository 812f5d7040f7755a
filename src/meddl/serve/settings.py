"""Server settings, read once at start-up and handed to routes through the ``get_settings`` dependency."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from meddl.errors import MedDLError

__all__ = ["LOOPBACK_HOSTS", "Settings", "get_settings", "is_loopback", "read_token"]

LOOPBACK_HOSTS = {"localhost"}


class Settings(BaseModel):
    """What ``meddl serve`` was started with.

    Attributes:
        bundles: run folders to serve; each is routed by its experiment name.
        host: the address to bind; anything but loopback requires ``token``.
        token: the shared secret clients send as ``Authorization: Bearer <token>``.
        audit_log: JSON-lines file recording every prediction (no inputs); None turns it off.
        max_body_bytes: larger request bodies get 413.
        max_batch: most records in one request.
    """

    model_config = ConfigDict(frozen=True)

    bundles: list[Path] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    audit_log: Path | None = Path("meddl-audit.jsonl")
    max_body_bytes: int = 1_000_000
    max_batch: int = 1000


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(token_file: Path | None) -> str | None:
    """The access token from ``--token-file`` or, failing that, the ``MEDDL_TOKEN`` environment variable."""
    if token_file is not None:
        if not token_file.is_file():
            raise MedDLError(f"token file not found: {token_file}")
        token = token_file.read_text(encoding="utf-8").strip()
        if not token:
            raise MedDLError(f"{token_file}: the token file is empty")
    else:
        token = os.environ.get("MEDDL_TOKEN", "").strip()
    if token and len(token) < 16:
        raise MedDLError("the access token must be at least 16 characters long")
    return token or None


_SETTINGS: Settings | None = None


def configure(settings: Settings) -> None:
    global _SETTINGS
    _SETTINGS = settings


async def get_settings() -> Settings:
    """FastAPI dependency; tests override it with ``app.dependency_overrides``.

    ``async`` only so that FastAPI calls it on the event loop: a plain ``def`` dependency is run in the thread
    pool, one thread hand-off per request for returning a global (measured: 1,200 → 1,700 tabular predictions/s)."""
    if _SETTINGS is None:
        raise RuntimeError("serve settings are not configured; build the app with create_app(settings)")
    return _SETTINGS

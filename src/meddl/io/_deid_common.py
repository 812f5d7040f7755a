"""What every kind of de-identification shares: the salt, the keyed hashes made from it, and the output rules.

Every replacement value is an HMAC-SHA256 keyed with the salt, so the same original value always gives the same
replacement under the same salt (records stay linked across files and runs), and without the salt nobody can
recompute — or test a guess of — the original. The salt itself is never written anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
import uuid
from pathlib import Path
from typing import Any

from meddl.errors import MedDLError

__all__ = [
    "KEY_LENGTH",
    "LOG_NAME",
    "MAX_SHIFT_DAYS",
    "SALT_ENV",
    "date_offset_days",
    "load_salt",
    "new_uid",
    "normalize_id",
    "prepare_file_output",
    "prepare_folder_output",
    "pseudonym",
    "write_log",
]

SALT_ENV = "MEDDL_DEID_SALT"
LOG_NAME = "deid_log.json"
KEY_LENGTH = 16
"""Hex characters of a pseudonym: 64 bits, so a million patients collide with probability ~3e-8 (checked anyway)."""
MAX_SHIFT_DAYS = 365
"""Dates move back by 1 to this many days: within a year a birthday, weekday or season cannot be read back exactly,
and no date is pushed into the future."""

_MIN_SALT_CHARS = 16


def load_salt(salt_file: str | Path | None = None) -> tuple[bytes, str | None]:
    """The salt, from ``salt_file`` or else the ``MEDDL_DEID_SALT`` environment variable.

    A ``salt_file`` that does not exist is created with 32 random bytes (hex) and mode 0600.

    Returns:
        The salt and, when a new salt file was created, a sentence saying so (to show the user).

    Raises:
        MedDLError: no salt given, the file cannot be read or written, or the salt is shorter than 16 characters.
    """
    created = None
    if salt_file is not None:
        path = Path(salt_file).expanduser()
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                    handle.write(secrets.token_hex(32) + "\n")
            except OSError as error:
                raise MedDLError(f"cannot create salt file {path}: {error.strerror or error}") from None
            created = (
                f"created a new salt in {path} (mode 0600): keep it secret and keep it — the same salt gives the "
                "same keys, UIDs and date shifts in later runs; without it they cannot be reproduced"
            )
        if path.is_dir():
            raise MedDLError(f"salt file {path} is a folder")
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise MedDLError(f"cannot read salt file {path}: {error}") from None
        source = f"salt file {path}"
    else:
        text = os.environ.get(SALT_ENV, "").strip()
        if not text:
            raise MedDLError(f"no salt: give --salt-file PATH (created if missing) or set {SALT_ENV}")
        source = f"${SALT_ENV}"
    if len(text) < _MIN_SALT_CHARS:
        raise MedDLError(f"the salt in {source} has {len(text)} characters; use at least {_MIN_SALT_CHARS}")
    return text.encode("utf-8"), created


def _digest(salt: bytes, purpose: bytes, value: str) -> bytes:
    return hmac.new(salt, purpose + b"\x00" + value.encode("utf-8"), hashlib.sha256).digest()


def pseudonym(salt: bytes, value: str) -> str:
    """The key that replaces an identifier: HMAC-SHA256(salt, value), hex, first :data:`KEY_LENGTH` characters.

    The same for a table cell, an event store id and a DICOM Patient ID, so joins across them still work.
    """
    return _digest(salt, b"id", value).hex()[:KEY_LENGTH]


def date_offset_days(salt: bytes, patient_id: str) -> int:
    """The patient's date shift, a whole number of days in [-MAX_SHIFT_DAYS, -1], from HMAC(salt, patient id)."""
    return -(1 + int.from_bytes(_digest(salt, b"date-offset", patient_id)[:8], "big") % MAX_SHIFT_DAYS)


def new_uid(salt: bytes, uid: str) -> str:
    """The UID that replaces ``uid``: ``2.25.<integer>``, the UUID form of HMAC-SHA256(salt, uid) (ISO/IEC 9834-8)."""
    return f"2.25.{uuid.UUID(bytes=_digest(salt, b'uid', uid)[:16], version=4).int}"


def normalize_id(value: Any) -> str | None:
    """An identifier as text, or None when missing; 123, 123.0 and ' 123 ' are all '123' (CSV vs Parquet vs DICOM)."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    text = str(value).strip()
    return text or None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _check_salt_outside(out: Path, salt_file: str | Path | None) -> None:
    if salt_file is not None and _inside(Path(salt_file).resolve(), out.resolve()):
        raise MedDLError(f"the salt file {salt_file} lies inside the output {out}; keep the salt out of the output")


def prepare_folder_output(
    out: str | Path, source: str | Path, overwrite: bool, salt_file: str | Path | None = None
) -> Path:
    """Check (and make) an output folder; with ``overwrite``, remove only the files a previous run listed in its log.

    Raises:
        MedDLError: ``out`` is the input, lies inside it or holds it; is a file; is not empty and ``overwrite`` is
            False; or would hold the salt file.
    """
    out, source = Path(out), Path(source)
    resolved_out, resolved_source = out.resolve(), source.resolve()
    if _inside(resolved_out, resolved_source) or _inside(resolved_source, resolved_out):
        raise MedDLError(f"--out {out} must be a new folder apart from the input {source}; the input is never changed")
    _check_salt_outside(out, salt_file)
    if out.exists() and not out.is_dir():
        raise MedDLError(f"--out {out} is a file; give a folder for the de-identified output")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise MedDLError(f"--out {out} is not empty; choose a new folder or pass --overwrite")
        _remove_previous_run(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MedDLError(f"cannot create --out {out}: {error.strerror or error}") from None
    return out


def prepare_file_output(
    out: str | Path, source: str | Path, overwrite: bool, salt_file: str | Path | None = None
) -> Path:
    """Check an output file (and its log beside it): not the input, not existing unless ``overwrite``.

    Returns:
        The log's path: ``<out without suffix>.deid_log.json``.
    """
    out, source = Path(out), Path(source)
    log = out.with_name(f"{out.stem}.{LOG_NAME}")
    if out.resolve() == source.resolve():
        raise MedDLError(f"--out {out} is the input file; the input is never changed")
    _check_salt_outside(out, salt_file)
    if out.is_dir():
        raise MedDLError(f"--out {out} is a folder; give the file to write, e.g. {out / source.name}")
    for path in (out, log):
        if path.exists() and not overwrite:
            raise MedDLError(f"{path} already exists; choose another --out or pass --overwrite")
    return log


def _remove_previous_run(out: Path) -> None:
    log = out / LOG_NAME
    if not log.is_file():
        return
    try:
        written = json.loads(log.read_text(encoding="utf-8")).get("files_written", [])
    except (OSError, ValueError, AttributeError):
        return
    folders: set[Path] = set()
    for name in [*written, LOG_NAME]:
        path = (out / str(name)).resolve()
        if _inside(path, out.resolve()) and path.is_file():
            path.unlink()
            folders.update(p for p in path.parents if _inside(p, out.resolve()) and p != out.resolve())
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def write_log(path: Path, log: dict[str, Any]) -> Path:
    """Write the de-identification log as JSON (it holds counts and new names only: no identifier, no salt)."""
    path.write_text(json.dumps(log, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    return path

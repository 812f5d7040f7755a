"""No raw patient identifier leaves the machine in a bundle.

A bundle is made to be handed on (to a colleague, a registry, a server), so its ``splits.csv`` names patients and
samples by keys — HMAC-SHA256 under a random key drawn for the run and never written anywhere — which still show
which rows belong to one patient. The raw identifiers go to one clearly named local file beside the run folder,
``<run>.local-ids.csv`` (raw id → key → split), which stays with the data it came from.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

import pandas as pd

__all__ = ["IDENTIFYING_COLUMNS", "local_ids_path", "pseudonymise_splits"]

# splits-table columns that may identify a person: patient ids, sample ids (stay, sample or accession numbers),
# file paths (files are often named by a record number)
IDENTIFYING_COLUMNS = {"patient_id": "patient_key", "id": "sample_key", "path": "sample_key"}


def local_ids_path(run_folder: Path) -> Path:
    """Where a run's raw identifiers are kept: beside the run folder, never inside the bundle."""
    return run_folder.parent / f"{run_folder.name}.local-ids.csv"


def pseudonymise_splits(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The splits table as the bundle keeps it (keys in place of identifiers) and the local table that maps each
    raw identifier to its key (None when the table holds no identifier)."""
    present = [column for column in IDENTIFYING_COLUMNS if column in table.columns and table[column].notna().any()]
    shared = table.drop(columns=[c for c in IDENTIFYING_COLUMNS if c in table.columns])
    if not present:
        return shared, None
    secret = secrets.token_bytes(32)

    def key(value: object) -> str | None:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return None
        return hmac.new(secret, str(value).encode("utf-8"), hashlib.sha256).hexdigest()[:16]

    local = table.copy()
    position = 1 if "row" in shared.columns else 0
    for column in present:
        keys = table[column].map(key)
        name = IDENTIFYING_COLUMNS[column]
        if name not in shared.columns:
            shared.insert(position, name, keys)
            position += 1
        local[name] = keys
    return shared, local

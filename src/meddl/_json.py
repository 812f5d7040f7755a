"""Strict JSON for everything MedDL writes: NaN/inf become null and NumPy scalars become Python numbers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["clean_json"]


def clean_json(value: Any) -> Any:
    """NaN/inf → None and NumPy scalars → Python, so JSON stays strict."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

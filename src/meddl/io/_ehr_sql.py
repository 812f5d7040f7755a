"""Small SQL-building helpers and the unit conversions shared by the EHR importers of :mod:`meddl.io.ehr`."""

from __future__ import annotations

# Multiplicative unit conversions, keyed by (item family, from unit, to unit) with normalised unit spellings
# (lower case, no spaces, µ → u). Family "*" applies to every item.
_UNIT_FACTORS: dict[tuple[str, str, str], float] = {
    ("*", "g/dl", "g/l"): 10.0,
    ("*", "g/l", "g/dl"): 0.1,
    ("*", "mg/dl", "mg/l"): 10.0,
    ("*", "mg/l", "mg/dl"): 0.1,
    ("glucose", "mg/dl", "mmol/l"): 0.0555,
    ("glucose", "mmol/l", "mg/dl"): 1 / 0.0555,
    ("creatinine", "mg/dl", "umol/l"): 88.4,
    ("creatinine", "umol/l", "mg/dl"): 1 / 88.4,
    **{
        (ion, a, b): 1.0
        for ion in ("sodium", "potassium", "chloride", "bicarbonate")
        for a, b in (("meq/l", "mmol/l"), ("mmol/l", "meq/l"))
    },
}
_FAMILIES = {
    "glucose": ("glucose",),
    "creatinine": ("creatinine",),
    "sodium": ("sodium",),
    "potassium": ("potassium",),
    "chloride": ("chloride",),
    "bicarbonate": ("bicarbonate", "hco3"),
}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ts(expression: str) -> str:
    """SQL reading a VARCHAR as a TIMESTAMP: ISO dates and times, a UTC offset converted to UTC (TimeZone=UTC)."""
    return f"TRY_CAST(TRY_CAST({expression} AS TIMESTAMPTZ) AS TIMESTAMP)"


def _day_end(expression: str) -> str:
    """A date-only end time read as the end of that day (a visit ending "on 3 May" ends at 23:59:59)."""
    return f"(TRY_CAST({expression} AS DATE) + INTERVAL 1 DAY - INTERVAL 1 SECOND)"


_PARSERS = {
    "timestamp": (_ts, "a timestamp"),
    "date": (lambda e: f"TRY_CAST({e} AS DATE)", "a date"),
    "double": (lambda e: f"TRY_CAST({e} AS DOUBLE)", "a number"),
    "integer": (lambda e: f"TRY_CAST(TRY_CAST({e} AS DOUBLE) AS BIGINT)", "an integer"),
}


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _unit_factor(family: str, unit_key: str, target_key: str | None) -> float | None:
    if target_key is None:
        return None
    return _UNIT_FACTORS.get((family, unit_key, target_key), _UNIT_FACTORS.get(("*", unit_key, target_key)))


def _family(item: str) -> str:
    lowered = item.lower()
    for family, words in _FAMILIES.items():
        if any(word in lowered for word in words):
            return family
    return "*"


def _snippet(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")

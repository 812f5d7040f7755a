"""Choosing the lab items and codes of an EHR feature layout from the training stays only (:func:`build_vocabulary`).

Importable from :mod:`meddl.data.ehr_cohort`.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np

from meddl.data.ehr_cohort_spec import Connection, EHRCohort, FeatureSpec, StoreLike, Vocabulary
from meddl.data.ehr_cohort_sql import _check_schema, _codes_sql, _cohort_columns, _connect, _register, _store_name
from meddl.errors import MedDLError

__all__ = ["build_vocabulary"]

# --------------------------------------------------------------------------------------------------------------
# Vocabulary


def _code_cutoff(cohort: EHRCohort, spec: FeatureSpec) -> str:
    """SQL comparison of a code's known time with the window end: ``<``, or ``<=`` for discharge codes."""
    if not spec.include_discharge_codes:
        return "<"
    if cohort.spec.observation != "stay":
        raise MedDLError(
            "features.include_discharge_codes: only for cohorts predicting at discharge (observation='stay'); "
            f"this cohort's window ends {cohort.spec.observation_hours:g} h after admission"
        )
    return "<="


def build_vocabulary(
    con_or_path: StoreLike, cohort: EHRCohort, spec: FeatureSpec, train_mask: np.ndarray
) -> Vocabulary:
    """Choose lab items and codes from the training stays only.

    Labs (grid mode): ``spec.labs`` as given (checked against the store), else the ``top_labs`` items with the
    most measurements inside the training stays' windows. Codes: the ``codes_top`` tokens known before the
    window end in the most training stays. Ties are broken by name, so the result is deterministic.

    Args:
        con_or_path: DuckDB connection or store path.
        cohort: the cohort.
        spec: the feature specification.
        train_mask: (N,) bool, True for the cohort rows of training patients.

    Raises:
        MedDLError: ``train_mask`` has the wrong shape or selects no row; an item of ``spec.labs`` is not in
            the store (the message names ``preprocess.labs``, where an experiment file sets it, and lists close
            matches).
    """
    mask = np.asarray(train_mask)
    if mask.dtype != bool or mask.shape != (cohort.n,):
        raise MedDLError(f"train_mask must be a bool array of shape ({cohort.n},), got {mask.dtype} {mask.shape}")
    if not mask.any():
        raise MedDLError("train_mask selects no cohort row; the vocabulary is chosen on training patients")
    rows = np.flatnonzero(mask)
    with _connect(con_or_path) as con:
        labs: list[str] = []
        if spec.mode == "grid":
            _check_schema(con, ["measurements"])
            if spec.labs is not None:
                labs = _check_lab_names(con, spec.labs)
        _register(con, "_meddl_train", _cohort_columns(cohort, rows))
        try:
            if spec.mode == "grid" and spec.labs is None and spec.top_labs > 0:
                labs = [
                    str(r[0])
                    for r in con.execute(
                        f"""
                        SELECT m.item, count(*) AS n FROM measurements m JOIN _meddl_train c
                          ON m.patient_id = c.patient_id AND m.time >= c.index_time AND m.time < c.window_end
                        GROUP BY m.item ORDER BY n DESC, m.item LIMIT {int(spec.top_labs)}
                        """
                    ).fetchall()
                ]
            codes: list[str] = []
            if (spec.mode == "visits" or spec.include_codes) and spec.codes_top > 0:
                codes = [
                    str(r[0])
                    for r in con.execute(
                        f"""
                        SELECT k.token, count(DISTINCT c.rid) AS n FROM ({_codes_sql(con)}) k JOIN _meddl_train c
                          ON k.patient_id = c.patient_id AND k.known_time {_code_cutoff(cohort, spec)} c.window_end
                        GROUP BY k.token ORDER BY n DESC, k.token LIMIT {int(spec.codes_top)}
                        """
                    ).fetchall()
                ]
        finally:
            con.unregister("_meddl_train")
    return Vocabulary(labs=labs, codes=codes, mode=spec.mode)


def _check_lab_names(con: Connection, names: Sequence[str]) -> list[str]:
    """``names`` in order without repeats; an unknown one is an error naming ``preprocess.labs``.

    :class:`FeatureSpec` holds the experiment's ``preprocess`` section (``labs`` is ``preprocess.labs`` there), and
    the experiment file is what a user edits when an item is not in the store.
    """
    items = [str(r[0]) for r in con.execute("SELECT DISTINCT item FROM measurements").fetchall()]
    known = set(items)
    unknown = [name for name in names if name not in known]
    if unknown:
        hints = "; ".join(
            f"{name!r}: close matches {difflib.get_close_matches(name, items, n=3, cutoff=0.5) or 'none'}"
            for name in unknown
        )
        raise MedDLError(
            f"preprocess.labs: item(s) not in table 'measurements' of {_store_name(con)}: {hints} "
            "(leave preprocess.labs out to use the preprocess.top_labs most measured items)"
        )
    return list(dict.fromkeys(names))

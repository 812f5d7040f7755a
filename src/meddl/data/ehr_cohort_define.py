"""Defining an EHR cohort: index stays, the exclusion steps (the cohort flow) and the labels of each outcome.

:func:`define_cohort` and :func:`index_stays` are importable from :mod:`meddl.data.ehr_cohort`, whose docstring
describes the outcomes and their windows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from meddl.data.ehr_cohort_spec import (
    _US_PER_HOUR,
    COHORT_TABLE,
    SURVIVAL_OUTCOMES,
    CohortSpec,
    Connection,
    EHRCohort,
    StoreLike,
    format_flow,
)
from meddl.data.ehr_cohort_sql import _check_schema, _connect, _interval_us, _store_name
from meddl.errors import MedDLError

__all__ = ["define_cohort", "index_stays"]


def define_cohort(con_or_path: StoreLike, spec: CohortSpec) -> EHRCohort:
    """Select index stays, apply the exclusions in order (counted in ``flow``) and compute the labels.

    Exclusion steps: discharge time recorded (and not before admission); age known and ≥ ``min_age``; stay ≥
    ``min_stay_hours``; mortality / long stay: alive at the window end (deaths inside the window are not
    predictions; a death time is the patient's ``death_time``, else the discharge of a stay that ended in
    death); readmission: discharged alive, and the label known — readmitted within the horizon, or the store
    covers the whole horizon after discharge (the store's end is its last admission or discharge time), or the
    patient died within the horizon without readmission (label 0); next-visit diagnoses: a later visit exists;
    then one eligible stay per patient (the first, or a seeded random one). A readmission is a visit admitted
    strictly after the discharge (a transfer at the same instant is not) no later than ``horizon_days`` after it.
    Post-discharge deaths without readmission count as negatives; next-visit labels are the categories of the
    first visit admitted after the discharge, and the label vocabulary is chosen on the whole cohort.

    Args:
        con_or_path: an open DuckDB connection (the temp table ``meddl_cohort`` is created in it) or a store path.
        spec: the cohort specification.

    Returns:
        The cohort; rows ordered by patient id, then index time.

    Raises:
        MedDLError: the store lacks a needed table or column, or no stay remains (the message shows the flow).
    """
    with _connect(con_or_path) as con:
        tables = ["patients", "visits"] + (["diagnoses"] if spec.outcome == "next_visit_diagnoses" else [])
        _check_schema(con, tables)
        window_mode = spec.observation == "window"
        assert spec.horizon_days is not None and spec.min_stay_hours is not None, "resolved in __post_init__"
        horizon_us = round(float(spec.horizon_days) * 24 * _US_PER_HOUR)
        type_filter, parameters = "", []
        if spec.visit_types is not None:
            type_filter, parameters = "WHERE visit_type IN (SELECT unnest(?))", [list(spec.visit_types)]
        window_end = (
            f"s.admit_time + to_microseconds(CAST({_interval_us(spec.observation_hours)} AS BIGINT))"
            if window_mode
            else "s.discharge_time"
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _meddl_stays AS
            WITH v AS (SELECT * FROM visits {type_filter}),
            nxt AS (
                SELECT a.visit_id, min(b.admit_time) AS next_admit_time,
                       arg_min(b.visit_id, (b.admit_time, b.visit_id)) AS next_visit_id
                FROM v a JOIN v b ON a.patient_id = b.patient_id AND b.admit_time > a.discharge_time
                GROUP BY a.visit_id
            ),
            s AS (
                SELECT v.visit_id, v.patient_id, v.admit_time, v.discharge_time,
                       p.birth_date, v.died_in_hospital AS died_flag, p.death_time AS patient_death_time,
                       nxt.next_admit_time, nxt.next_visit_id
                FROM v LEFT JOIN patients p ON p.patient_id = v.patient_id
                LEFT JOIN nxt ON nxt.visit_id = v.visit_id
            )
            SELECT s.visit_id, s.patient_id, s.admit_time, s.discharge_time, s.next_admit_time, s.next_visit_id,
                   s.admit_time AS index_time,
                   {window_end} AS window_end,
                   (epoch_us(s.discharge_time) - epoch_us(s.admit_time)) / {_US_PER_HOUR} AS los_hours,
                   date_sub('year', s.birth_date, CAST(s.admit_time AS DATE)) AS age_years,
                   coalesce(s.patient_death_time,
                            CASE WHEN s.died_flag THEN s.discharge_time END) AS death_time,
                   coalesce(s.died_flag,
                            s.patient_death_time >= s.admit_time AND s.patient_death_time <= s.discharge_time,
                            false) AS died_in_hospital,
                   (SELECT max(greatest(admit_time, coalesce(discharge_time, admit_time))) FROM visits) AS store_end
            FROM s
            """,
            parameters,
        )
        steps: list[tuple[str, str]] = [
            ("discharge time recorded", "discharge_time IS NOT NULL AND discharge_time >= admit_time"),
            (
                f"age known and ≥ {spec.min_age:g} at admission",
                f"age_years IS NOT NULL AND age_years >= {spec.min_age}",
            ),
        ]
        if spec.min_stay_hours > 0:
            steps.append((f"stay ≥ {spec.min_stay_hours:g} h", f"los_hours >= {float(spec.min_stay_hours)}"))
        if spec.outcome in ("mortality", "long_stay", "time_to_death"):
            steps.append((f"alive at {spec.observation_hours:g} h", "death_time IS NULL OR death_time >= window_end"))
        if spec.outcome == "time_to_death":  # follow-up starts at the prediction time and must be positive
            steps.append((f"in hospital after {spec.observation_hours:g} h", "discharge_time > window_end"))
        if spec.outcome == "time_to_readmission":
            steps.append(("discharged alive", "NOT died_in_hospital"))
            steps.append(("followed up after discharge", "epoch_us(store_end) > epoch_us(discharge_time)"))
        readmitted = (
            f"(next_admit_time IS NOT NULL AND epoch_us(next_admit_time) - epoch_us(discharge_time) <= {horizon_us})"
        )
        if spec.outcome == "readmission":
            steps.append(("discharged alive", "NOT died_in_hospital"))
            steps.append(
                (
                    f"readmission status known for {spec.horizon_days:g} days",
                    f"{readmitted} OR epoch_us(store_end) - epoch_us(discharge_time) >= {horizon_us} OR "
                    f"(death_time IS NOT NULL AND epoch_us(death_time) - epoch_us(discharge_time) <= {horizon_us})",
                )
            )
        if spec.outcome == "next_visit_diagnoses":
            steps.append(("has a later visit", "next_visit_id IS NOT NULL"))
        counts_sql = ", ".join(
            ["count(*)"]
            + [
                "count(*) FILTER (WHERE " + " AND ".join(f"({c})" for _, c in steps[: i + 1]) + ")"
                for i in range(len(steps))
            ]
        )
        counts = con.execute(f"SELECT {counts_sql} FROM _meddl_stays").fetchone()
        assert counts is not None, "an aggregate query returns one row"
        store_label = "stays in the store" if spec.visit_types is None else f"{spec.visit_types} stays in the store"
        flow = [(store_label, int(counts[0]))] + [
            (desc, int(c)) for (desc, _), c in zip(steps, counts[1:], strict=True)
        ]
        where = " AND ".join(f"({c})" for _, c in steps) or "true"
        rank_filter = "WHERE stay_rank = 1" if spec.first_stay_only else ""
        stay_order = (
            "admit_time, visit_id"
            if spec.stay_selection == "first"
            else f"md5(visit_id || ':{int(spec.seed)}'), visit_id"
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {COHORT_TABLE} AS
            SELECT CAST(row_number() OVER (ORDER BY patient_id, index_time, visit_id) - 1 AS BIGINT) AS rid, *
            FROM (
                SELECT *, row_number() OVER (PARTITION BY patient_id ORDER BY {stay_order}) AS stay_rank,
                       {readmitted} AS readmitted
                FROM _meddl_stays WHERE {where}
            ) {rank_filter}
            ORDER BY rid
            """
        )
        con.execute("DROP TABLE IF EXISTS _meddl_stays")
        if spec.first_stay_only:
            n_left = con.execute(f"SELECT count(*) FROM {COHORT_TABLE}").fetchone()
            step = (
                "first eligible stay per patient"
                if spec.stay_selection == "first"
                else f"one random eligible stay per patient (seed {spec.seed})"
            )
            flow.append((step, int(n_left[0]) if n_left else 0))
        if flow[-1][1] == 0:
            raise MedDLError(
                f"EHR store {_store_name(con)}: no index stay is left after the exclusions of the cohort "
                f"(outcome {spec.outcome!r}):\n{format_flow(flow)}"
            )
        columns = con.execute(
            f"SELECT patient_id, visit_id, index_time, window_end, died_in_hospital, los_hours, readmitted, "
            f"discharge_time, death_time, next_admit_time, store_end FROM {COHORT_TABLE} ORDER BY rid"
        ).fetchnumpy()
        label_names: list[str]
        if spec.outcome in SURVIVAL_OUTCOMES:
            labels, label_names = _time_to_event(spec.outcome, columns)
        elif spec.outcome == "mortality":
            labels, label_names = np.asarray(columns["died_in_hospital"], dtype=np.float32), ["mortality"]
        elif spec.outcome == "long_stay":
            threshold = float(spec.horizon_days) * 24
            labels = (np.asarray(columns["los_hours"], dtype=np.float64) > threshold).astype(np.float32)
            label_names = ["long_stay"]
        elif spec.outcome == "readmission":
            labels, label_names = np.asarray(columns["readmitted"], dtype=np.float32), ["readmission"]
        else:
            labels, label_names = _next_visit_labels(con, spec, len(columns["visit_id"]))
        return EHRCohort(
            spec=spec,
            flow=flow,
            labels=labels,
            label_names=label_names,
            patient_ids=np.asarray(columns["patient_id"], dtype=object),
            visit_ids=np.asarray(columns["visit_id"], dtype=object),
            index_times=np.asarray(columns["index_time"], dtype="datetime64[us]"),
            window_ends=np.asarray(columns["window_end"], dtype="datetime64[us]"),
        )


def _time_to_event(outcome: str, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """``[time, event code]`` per index stay. ``time_to_death``: hours from the window end to death in hospital
    (event 1) or discharge (censored). ``time_to_readmission``: days from discharge to the next admission (event 1),
    to death without readmission (event 2, competing) or to the end of the store's follow-up (censored)."""

    def us(name: str) -> np.ndarray:
        """Microseconds since the epoch; a missing time (NULL: a masked or NaT value) is +inf."""
        column = columns[name]
        missing = np.ma.getmaskarray(column)
        values = np.asarray(np.ma.getdata(column), dtype="datetime64[us]")
        micros = values.astype(np.int64).astype(np.float64)
        return np.where(missing | np.isnat(values), np.inf, micros)

    died = np.asarray(columns["died_in_hospital"], dtype=bool)
    if outcome == "time_to_death":
        end = np.where(died, np.minimum(us("death_time"), us("discharge_time")), us("discharge_time"))
        hours = (end - us("window_end")) / _US_PER_HOUR
        return np.column_stack([np.maximum(hours, 1e-3), died.astype(np.float64)]).astype(np.float32), [
            "in-hospital death"
        ]
    discharge = us("discharge_time")
    readmit, death, end = us("next_admit_time"), us("death_time"), us("store_end")
    death = np.where(death > discharge, death, np.inf)  # a death recorded at or before discharge is no follow-up event
    first = np.minimum(np.minimum(readmit, death), end)
    event = np.where(first == readmit, 1, np.where(first == death, 2, 0))
    days = (first - discharge) / (24 * _US_PER_HOUR)
    return np.column_stack([days, event]).astype(np.float32), ["readmission", "death after discharge"]


def _next_visit_labels(con: Connection, spec: CohortSpec, n: int) -> tuple[np.ndarray, list[str]]:
    """Multi-hot (n, K) of the K most frequent diagnosis categories of each index stay's next visit."""
    prefix = f"left(replace(d.code, '.', ''), {int(spec.label_code_prefix)})"
    pairs = con.execute(
        f"""
        SELECT DISTINCT c.rid, {prefix} AS category
        FROM {COHORT_TABLE} c JOIN diagnoses d ON d.visit_id = c.next_visit_id
        WHERE d.code IS NOT NULL AND {prefix} <> ''
        """
    ).fetchnumpy()
    rids = np.asarray(pairs["rid"], dtype=np.int64)
    categories = np.asarray(pairs["category"], dtype=object)
    counts = Counter(str(c) for c in categories)
    label_names = sorted(counts, key=lambda name: (-counts[name], name))[: spec.label_codes_top]
    column = {name: j for j, name in enumerate(label_names)}
    labels = np.zeros((n, len(label_names)), dtype=np.float32)
    keep = np.array([c in column for c in categories.astype(str)], dtype=bool)
    if keep.any():
        labels[rids[keep], [column[str(c)] for c in categories[keep]]] = 1.0
    return labels, label_names


def index_stays(con_or_path: StoreLike, spec: CohortSpec, visit_ids: Sequence[str]) -> EHRCohort:
    """Index rows for given stays without labels or exclusions — for predicting new patients.

    The window is the one ``spec`` defines (``window``: admit + observation_hours; ``stay``: up to discharge).

    Raises:
        MedDLError: a visit id is not in the store, or a ``stay`` window needs a discharge time that is missing.
    """
    ids = [str(v) for v in visit_ids]
    with _connect(con_or_path) as con:
        _check_schema(con, ["patients", "visits"])
        rows = con.execute(
            "SELECT patient_id, visit_id, admit_time, discharge_time FROM visits "
            "WHERE visit_id IN (SELECT unnest(?)) ORDER BY patient_id, admit_time, visit_id",
            [ids],
        ).fetchall()
        found = {str(r[1]) for r in rows}
        missing = [v for v in ids if v not in found]
        if missing:
            raise MedDLError(f"EHR store {_store_name(con)}: visit_id(s) {missing[:10]} not found in table 'visits'")
        if spec.observation == "stay":
            open_stays = [str(r[1]) for r in rows if r[3] is None]
            if open_stays:
                raise MedDLError(
                    f"EHR store {_store_name(con)}: visit_id(s) {open_stays[:10]} have no discharge_time, which the "
                    "cohort's observation='stay' window needs"
                )
    index_times = np.array([r[2] for r in rows], dtype="datetime64[us]")
    if spec.observation == "window":
        window_ends = index_times + np.timedelta64(_interval_us(spec.observation_hours), "us")
    else:
        window_ends = np.array([r[3] for r in rows], dtype="datetime64[us]")
    return EHRCohort(
        spec=spec,
        flow=[("requested stays", len(rows))],
        labels=np.zeros((len(rows), 0), dtype=np.float32),
        label_names=[],
        patient_ids=np.array([str(r[0]) for r in rows], dtype=object),
        visit_ids=np.array([str(r[1]) for r in rows], dtype=object),
        index_times=index_times,
        window_ends=window_ends,
    )
